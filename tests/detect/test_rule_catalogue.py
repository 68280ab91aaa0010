"""The built-in rule catalogue: well-formed metadata and coverage of the Microsoft Threat Matrix for Kubernetes
(https://microsoft.github.io/Threat-Matrix-for-Kubernetes/)."""

from __future__ import annotations

import re

import pytest

from k8sforensics.detect import BUILTIN_RULES, PHASES, Rule
from k8sforensics.detect.runtime_rules import FALCO_MAP

# the Threat Matrix's 40 current techniques (MS-TA9032 retired)
MATRIX = {f"MS-TA90{n:02d}" for n in range(1, 42)} - {"MS-TA9032"}
# the techniques the audit log, runtime events and flows can show. Not here:
# 9001/9003 (stolen cloud credentials, kubeconfig: the evidence is in cloud audit logs),
# 9024 (proxy/TOR: needs threat intelligence), 9020 and 9037 (cloud-side use of credentials),
# 9040 (denial of service: no rule in any public set either).
COVERED = {"MS-TA9002", "MS-TA9004", "MS-TA9005", "MS-TA9006", "MS-TA9007", "MS-TA9008", "MS-TA9010", "MS-TA9011", "MS-TA9012",
           "MS-TA9013", "MS-TA9014", "MS-TA9015", "MS-TA9016", "MS-TA9017", "MS-TA9018", "MS-TA9019", "MS-TA9021", "MS-TA9022",
           "MS-TA9023", "MS-TA9025", "MS-TA9026", "MS-TA9027", "MS-TA9028", "MS-TA9029", "MS-TA9030", "MS-TA9031", "MS-TA9033",
           "MS-TA9034", "MS-TA9035", "MS-TA9036", "MS-TA9038", "MS-TA9039", "MS-TA9041"}


def test_rule_metadata_is_well_formed() -> None:
    ids = [r.id for r in BUILTIN_RULES]
    assert len(ids) == len(set(ids))
    for r in BUILTIN_RULES:
        assert r.technique_id is None or r.technique_id in MATRIX, r.id
        assert r.id == "rt-falco-alert" or re.fullmatch(r"T\d{4}(\.\d{3})?", r.attack_id), r.id
        assert r.kill_chain_phase in PHASES and r.table in ("audit", "runtime", "flows")
        assert r.logic.__doc__ or r.description or r.title, r.id


def test_catalogue_covers_the_techniques_the_data_can_show() -> None:
    techniques = {r.technique_id for r in BUILTIN_RULES} | {m[0] for m in FALCO_MAP.values()} | {"MS-TA9009"}  # 9009: rt-shell-from-app
    assert COVERED <= techniques, sorted(COVERED - techniques)


def test_bad_metadata_is_refused() -> None:
    with pytest.raises(ValueError, match="MS-TA90xx"):
        Rule("x", "x", "high", "MS-T1234", "T1", "Execution", "Exploitation", "audit", lambda ev: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="phase"):
        Rule("x", "x", "high", None, "T1", "Execution", "Pwned", "audit", lambda ev: None)  # type: ignore[arg-type,return-value]


def test_every_builtin_rule_runs_on_empty_evidence() -> None:
    from k8sforensics.detect import BUILTIN_RULES, Evidence
    from k8sforensics.detect.engine import run_rules

    findings, runs = run_rules(Evidence(), BUILTIN_RULES)  # no table at all: e.g. a case of audit logs only
    assert findings.empty and len(runs) == len(BUILTIN_RULES)
