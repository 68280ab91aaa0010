"""The built-in rule catalogue: well-formed metadata and coverage of the Microsoft Threat Matrix for Kubernetes
(https://microsoft.github.io/Threat-Matrix-for-Kubernetes/)."""

from __future__ import annotations

import ast
import inspect
import re
from types import ModuleType

import pytest

from k8sforensics.detect import BUILTIN_RULES, PHASES, Evidence, Rule, audit_rules, flow_rules, runtime_rules
from k8sforensics.detect.engine import TACTIC_PHASES, run_rules
from k8sforensics.detect.runtime_rules import FALCO_MAP
from tests.event_frames import frame

# the Threat Matrix's 40 current techniques (MS-TA9032 retired)
MATRIX = {f"MS-TA90{n:02d}" for n in range(1, 42)} - {"MS-TA9032"}
# the techniques the audit log, runtime events and flows can show. Not here:
# 9001/9003 (stolen cloud credentials, kubeconfig: the evidence is in cloud audit logs),
# 9024 (proxy/TOR: needs threat intelligence), 9020 and 9037 (cloud-side use of credentials),
# 9040 (denial of service: no rule in any public set either).
COVERED = {
    "MS-TA9002",
    "MS-TA9004",
    "MS-TA9005",
    "MS-TA9006",
    "MS-TA9007",
    "MS-TA9008",
    "MS-TA9010",
    "MS-TA9011",
    "MS-TA9012",
    "MS-TA9013",
    "MS-TA9014",
    "MS-TA9015",
    "MS-TA9016",
    "MS-TA9017",
    "MS-TA9018",
    "MS-TA9019",
    "MS-TA9021",
    "MS-TA9022",
    "MS-TA9023",
    "MS-TA9025",
    "MS-TA9026",
    "MS-TA9027",
    "MS-TA9028",
    "MS-TA9029",
    "MS-TA9030",
    "MS-TA9031",
    "MS-TA9033",
    "MS-TA9034",
    "MS-TA9035",
    "MS-TA9036",
    "MS-TA9038",
    "MS-TA9039",
    "MS-TA9041",
}


def test_rule_metadata_is_well_formed() -> None:
    ids = [r.id for r in BUILTIN_RULES]
    assert len(ids) == len(set(ids))
    for r in BUILTIN_RULES:
        assert r.technique_id is None or r.technique_id in MATRIX, r.id
        assert r.id == "rt-falco-alert" or re.fullmatch(r"T\d{4}(\.\d{3})?", r.attack_id), r.id
        assert r.kill_chain_phase in PHASES and r.table in ("audit", "runtime", "flows")
        assert r.logic.__doc__ or r.description or r.title, r.id


def test_catalogue_covers_the_techniques_the_data_can_show() -> None:
    techniques = (
        {r.technique_id for r in BUILTIN_RULES} | {m[0] for m in FALCO_MAP.values()} | {"MS-TA9009"}
    )  # 9009: rt-shell-from-app
    assert techniques >= COVERED, sorted(COVERED - techniques)


def test_bad_metadata_is_refused() -> None:
    with pytest.raises(ValueError, match="MS-TA90xx"):
        Rule(
            id="x",
            title="x",
            severity="high",
            technique_id="MS-T1234",
            attack_id="T1",
            tactic="Execution",
            kill_chain_phase="Exploitation",
            table="audit",
            logic=lambda ev: None,
        )  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="phase"):
        Rule(
            id="x",
            title="x",
            severity="high",
            technique_id=None,
            attack_id="T1",
            tactic="Execution",
            kill_chain_phase="Pwned",
            table="audit",
            logic=lambda ev: None,
        )  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="reads"):
        Rule(
            id="x",
            title="x",
            severity="high",
            technique_id=None,
            attack_id="T1",
            tactic="Execution",
            kill_chain_phase="Exploitation",
            table="audit",
            logic=lambda ev: None,
            reads="everything",
        )  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError):  # metadata by position: which value is which is not said
        Rule("x", "x", "high", None, "T1", "Execution", "Exploitation", "audit", lambda ev: None)  # type: ignore[arg-type,misc,return-value]


@pytest.mark.parametrize("module", [audit_rules, runtime_rules, flow_rules])
def test_every_builtin_rule_is_declared_with_its_metadata_by_name(module: ModuleType) -> None:
    """Each rule of the tables is ``Rule(id=..., title=..., ...)`` with every field a finding
    needs, says it runs on the reduced rows, and its id says the table it reads."""
    tree = ast.parse(inspect.getsource(module))
    table = next(
        n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "").endswith("_RULES")
    )
    assert isinstance(table.value, ast.List)
    needed = {
        "id",
        "title",
        "severity",
        "technique_id",
        "attack_id",
        "tactic",
        "kill_chain_phase",
        "table",
        "logic",
        "reads",
    }
    for call in table.value.elts:
        assert isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Rule" and not call.args, ast.unparse(
            call
        )[:80]
        assert needed <= {k.arg for k in call.keywords}, ast.unparse(call)[:80]
    prefix = {"audit": "k8s-", "runtime": "rt-", "flows": "net-"}
    for rule in next(v for k, v in vars(module).items() if k.endswith("_RULES")):
        assert rule.reads == "reduced" and rule.source == "builtin", rule.id
        assert rule.id.startswith(prefix[rule.table]) and rule.title and rule.tactic in TACTIC_PHASES, rule.id
        assert rule.table != "flows" or rule.flow_rows, rule.id  # a flow rule keeps its own rows


def test_each_rule_reads_the_flows_once_when_its_own_flow_rows_are_planned(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule's ``flow_rows`` are all it reads of the flows: planned, they are kept in one pass
    (a part it reads but does not declare would cost another pass over the table)."""
    pod = {
        "src_ip": "10.0.0.7",
        "src_namespace": "a",
        "src_pod": "p",
        "src_kind": "pod",
        "verdict": "allowed",
        "is_reply": False,
    }
    flows = frame(
        "flows",
        *[{**pod, "time": f"2026-01-01T10:0{i}:00Z", "dst_ip": "203.0.113.50", "dst_port": 443} for i in range(5)],
        {
            **pod,
            "time": "2026-01-01T11:30:00Z",
            "dst_ip": "10.0.0.8",
            "dst_namespace": "b",
            "dst_pod": "q",
            "dst_port": 8080,
        },
        {**pod, "time": "2026-01-01T11:40:00Z", "dst_ip": "198.51.100.9", "dst_port": 443, "bytes": 60 * 2**20},
    )
    passes = []
    chunks = Evidence.flow_chunks
    monkeypatch.setattr(Evidence, "flow_chunks", lambda self: passes.append(1) or chunks(self))
    for rule in BUILTIN_RULES:
        if not rule.flow_rows:
            continue
        passes.clear()
        ev = Evidence(flows=flows)
        ev.plan_flow_rows(rule.flow_rows)
        rule.logic(ev)
        assert len(passes) <= 1, rule.id


def test_every_builtin_rule_runs_on_empty_evidence() -> None:
    findings, runs = run_rules(Evidence(), BUILTIN_RULES)  # no table at all: e.g. a case of audit logs only
    assert findings.empty and len(runs) == len(BUILTIN_RULES)
