"""Sigma rules as DuckDB SQL: the pipeline's field mapping, each modifier, values quoted as
literals whatever they hold, the query pushed down to the case's Parquet, and correlations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sigma.collection import SigmaCollection

import k8sforensics as kf
from k8sforensics.detect import Evidence, load_sigma_rules
from k8sforensics.detect.sigma_backend import DuckDBBackend
from k8sforensics.detect.sigma_pipeline import case_pipeline
from tests.event_frames import audit, frame

from ..conftest import FIXTURES

AUDIT = "logsource:\n  product: kubernetes\n  service: audit\n"
EXEC = "logsource:\n  product: linux\n  category: process_creation\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yml"
    path.write_text(text, encoding="utf-8")
    return path


def rule(folder: Path, detection: str, *, logsource: str = AUDIT, name: str = "r", extra: str = "") -> Path:
    return write(
        folder,
        name,
        f"title: {name}\nname: {name}\nid: 00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}\nstatus: test\n"
        f"{logsource}detection:\n{detection}\nlevel: high\n{extra}",
    )


def matches(path: Path, evidence: Evidence) -> list[str]:
    loaded = load_sigma_rules(path)
    assert loaded.skipped.empty, loaded.skipped["reason"].tolist()
    hits = loaded.rules[0].logic(evidence)
    return sorted(i for ids in hits.get("event_ids", []) for i in ids)


EVENTS = frame(
    "audit",
    audit(
        "2026-01-01T10:00:00Z",
        "alice",
        "get",
        "secrets",
        event_id="a",
        user_agent="kubectl/v1.30",
        user_groups=["system:authenticated", "devs"],
        source_ips=["10.244.1.9"],
        object_name="db-creds",
    ),
    audit(
        "2026-01-01T10:01:00Z",
        "system:serviceaccount:ci:runner",
        "create",
        "pods",
        event_id="b",
        user_agent="curl/8.0 it's -- fine",
        source_ips=["192.168.0.1", "10.244.0.3"],
        request_object={
            "spec": {
                "containers": [
                    {"securityContext": {"privileged": True}, "image": "x"},
                    {"image": "evil.io/miner:latest"},
                ]
            }
        },
    ),
    audit(
        "2026-01-01T10:02:00Z",
        "bob",
        "delete",
        "pods",
        event_id="c",
        user_agent=None,
        source_ips=[],
        request_object="not json {",
    ),
)
EV = Evidence(audit=EVENTS)


@pytest.mark.parametrize(
    "detection, want",
    [
        ("  sel:\n    user.username: ALICE\n  condition: sel", ["a"]),  # case-insensitive equality
        ("  sel:\n    user.username|cased: ALICE\n  condition: sel", []),  # |cased
        ("  sel:\n    userAgent|contains: CURL\n  condition: sel", ["b"]),
        ("  sel:\n    userAgent|startswith: kubectl/\n  condition: sel", ["a"]),
        ("  sel:\n    objectRef.name|endswith: -creds\n  condition: sel", ["a"]),
        ("  sel:\n    userAgent: 'kube*v1.??'\n  condition: sel", ["a"]),  # wildcards
        ("  sel:\n    userAgent: '50%'\n  condition: sel", []),  # a literal %: no wildcard
        ("  sel:\n    user.username|re: '^(alice|bob)$'\n  condition: sel", ["a", "c"]),
        ("  sel:\n    user.groups|contains|all:\n      - authenticated\n      - dev\n  condition: sel", ["a"]),
        ("  sel:\n    sourceIPs|cidr: 10.244.0.0/16\n  condition: sel", ["a", "b"]),  # any element of the list
        ("  sel:\n    sourceIPs|cidr: 192.168.0.0/31\n  condition: sel", ["b"]),
        ("  sel:\n    userAgent: null\n  condition: sel", ["c"]),
        ("  sel:\n    userAgent|exists: false\n  condition: sel", ["c"]),
        ("  sel:\n    responseStatus.code|gte: 200\n  condition: sel", ["a", "b", "c"]),
        ("  sel:\n    requestObject.spec.containers.securityContext.privileged: true\n  condition: sel", ["b"]),
        ("  sel:\n    requestObject.spec.containers.image|startswith: 'evil.io/'\n  condition: sel", ["b"]),
        ("  sel:\n    requestObject.spec.containers.image: null\n  condition: sel", ["a", "c"]),  # absent or unreadable
        ("  sel:\n    verb: delete\n  condition: not sel", ["a", "b"]),
        ("  sel:\n    userAgent|contains: curl\n  condition: not sel", ["a", "c"]),  # NOT over a null is true
        ("  s1:\n    verb: get\n  s2:\n    verb: create\n  s3:\n    verb: patch\n  condition: 1 of s*", ["a", "b"]),
        ("  s1:\n    verb: create\n  s2:\n    objectRef.resource: pods\n  condition: all of s*", ["b"]),
        ("  keywords:\n    - 'kubectl*'\n  condition: keywords", ["a"]),  # keywords: the free-text columns
    ],
)
def test_modifiers_and_conditions(tmp_path: Path, detection: str, want: list[str]) -> None:
    assert matches(rule(tmp_path, detection), EV) == want


def test_generated_sql_maps_fields_onto_columns(tmp_path: Path) -> None:
    loaded = load_sigma_rules(
        rule(
            tmp_path,
            "  sel:\n    objectRef.resource: pods\n    user.username|startswith: x\n"
            "    requestObject.spec.hostPID: true\n  condition: sel",
        )
    )
    query = DuckDBBackend(case_pipeline()).convert_rule(
        SigmaCollection.from_yaml((tmp_path / "r.yml").read_text()).rules[0]
    )[0]
    sql = query.select()
    assert query.table == "audit" and query.bodies == {"request_object"}
    assert sql.startswith("SELECT time, event_id, user, ") and " FROM audit WHERE " in sql
    assert "\"resource\" AS VARCHAR) ILIKE 'pods'" in sql and "ILIKE 'x%'" in sql and "'/hostPID'" in sql
    assert "objectRef" not in sql and "user.username" not in sql
    assert len(loaded.rules) == 1 and loaded.rules[0].table == "audit" and loaded.rules[0].reads == "sql"


def test_values_are_literals_never_sql(tmp_path: Path) -> None:
    """A rule's value with a quote, a comment and a statement separator is one string literal."""
    hostile = "x' OR 1=1; DROP TABLE audit; --"
    path = rule(tmp_path, f'  sel:\n    userAgent|contains: "{hostile}"\n  condition: sel')
    sql = load_sigma_rules(path).rules[0]
    assert matches(path, EV) == []
    # and the same text in an event is found, exactly
    ev = Evidence(
        audit=frame("audit", audit("2026-01-01T10:00:00Z", "u", "get", "pods", event_id="h", user_agent=f"a{hostile}b"))
    )
    assert matches(path, ev) == ["h"]
    assert matches(
        rule(tmp_path, '  sel:\n    userAgent|contains: "it\'s -- fine"\n  condition: sel', name="q"), EV
    ) == ["b"]
    assert sql.reads == "sql"
    # a regex with a quote stays inside its literal too
    assert matches(rule(tmp_path, '  sel:\n    userAgent|re: "it\'s"\n  condition: sel', name="re"), EV) == ["b"]


def test_unsupported_rules_are_skipped_with_a_reason(tmp_path: Path) -> None:
    rule(tmp_path, "  sel:\n    user.username|re: '(?=a)b'\n  condition: sel", name="lookahead")
    rule(tmp_path, "  sel:\n    sourceIPs|cidr: 'fd00::/8'\n  condition: sel", name="ipv6")
    rule(tmp_path, "  sel:\n    nope.field: 1\n    other: 2\n  condition: sel", name="unmapped")
    rule(tmp_path, "  sel:\n    CommandLine|contains: x\n  condition: sel", name="exec_field_on_audit")
    rule(
        tmp_path,
        "  sel:\n    Image|endswith: /sh\n  condition: sel",
        logsource="logsource:\n  product: aws\n  service: cloudtrail\n",
        name="aws",
    )
    loaded = load_sigma_rules(tmp_path)
    assert loaded.rules == []
    reasons = dict(zip(loaded.skipped["title"], loaded.skipped["reason"]))
    assert "(?=a)b" in reasons["lookahead"]  # RE2 (pySigma and DuckDB alike) has no look-around
    assert "IPv6" in reasons["ipv6"]
    assert reasons["unmapped"] == "fields with no column mapping: nope.field, other"
    assert reasons["exec_field_on_audit"] == "fields with no column mapping: CommandLine"
    assert reasons["aws"] == "log source aws/cloudtrail is not read"
    fields = dict(zip(loaded.skipped["title"], loaded.skipped["fields"]))
    assert fields["unmapped"] == ["nope.field", "other"]


def test_process_creation_reads_only_exec_events(tmp_path: Path) -> None:
    runtime = frame(
        "runtime",
        {
            "time": "2026-01-01T10:00:00Z",
            "event_id": "e1",
            "event_type": "exec",
            "process": "/usr/bin/nsenter",
            "cmdline": "nsenter -t 1 -m sh",
            "namespace": "kube-system",
            "pod": "p",
        },
        {
            "time": "2026-01-01T10:00:01Z",
            "event_id": "e2",
            "event_type": "alert",
            "process": "/usr/bin/nsenter",
            "cmdline": "nsenter -t 1 -m sh",
            "namespace": "kube-system",
            "pod": "p",
        },
    )
    path = rule(tmp_path, "  sel:\n    Image|endswith: /nsenter\n  condition: sel", logsource=EXEC)
    hits = load_sigma_rules(path).rules[0].logic(Evidence(runtime=runtime))
    assert hits["event_ids"].tolist() == [["e1"]] and hits["entity"].tolist() == ["kube-system/p"]


def test_unreadable_bodies_are_recorded(tmp_path: Path) -> None:
    ev = Evidence(audit=EVENTS)
    matches(rule(tmp_path, "  sel:\n    requestObject.spec.x: 1\n  condition: sel"), ev)
    assert ev.unreadable.summary()["by_where"] == {"sigma:request_object": 1}
    assert ev.unreadable.examples[0]["event_id"] == "c"


def test_pushed_down_to_the_case_no_table_read_whole(sample_case: kf.Case, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over a case the Sigma queries run on its Parquet: with max_rows below the audit table's size
    and every table read refused, the rules still run and find what they find in memory."""
    loaded = load_sigma_rules(FIXTURES / "sigma")
    expected = kf.detect(sample_case, rules=loaded.rules, save=False)

    def refuse(name: str, **_: object) -> pd.DataFrame:
        raise AssertionError(f"the {name} table was read whole")

    monkeypatch.setattr(sample_case, "max_rows", 2)
    monkeypatch.setattr(sample_case, "table", refuse)
    monkeypatch.setattr(sample_case, "chunks", refuse)
    ev = Evidence.from_case(sample_case)
    for r in loaded.rules:
        r.logic(ev)
    assert not {"audit", "runtime", "flows"} & set(ev.__dict__)
    assert (
        len(sample_case.sql("SELECT count(*) AS n FROM audit"))
        and sample_case.sql("SELECT count(*) AS n FROM audit")["n"][0] > 2
    )
    found = kf.detect(sample_case, rules=loaded.rules, save=False)
    assert found["finding_id"].tolist() == expected["finding_id"].tolist() and len(found) >= 4


# ---------------------------------------------------------------------- correlations

BURST = frame(
    "audit",
    *[
        audit(f"2026-01-01T10:0{m}:00Z", user, "get", "secrets", event_id=f"{user}{m}", object_name=f"s{m}")
        for user, minutes in (("mallory", (0, 1, 2, 3)), ("alice", (0, 5)))
        for m in minutes
    ],
)


def correlation(folder: Path, body: str) -> Path:
    rule(folder, "  sel:\n    objectRef.resource: secrets\n    verb: get\n  condition: sel", name="secret_read")
    return write(
        folder,
        "corr",
        "title: many secret reads\nid: 00000000-0000-4000-8000-00000000c011\nstatus: test\n"
        f"correlation:\n  rules:\n    - secret_read\n{body}\nlevel: high\n"
        "tags:\n  - attack.credential-access\n  - attack.t1552.007\n",
    )


def test_event_count_correlation(tmp_path: Path) -> None:
    correlation(
        tmp_path, "  type: event_count\n  group-by:\n    - user.username\n  timespan: 3m\n  condition:\n    gte: 3"
    )
    loaded = load_sigma_rules(tmp_path)
    assert loaded.skipped.empty and [r.title for r in loaded.rules] == [
        "many secret reads"
    ]  # generate: false hides the base rule
    hits = loaded.rules[0].logic(Evidence(audit=BURST))
    assert hits["entity"].tolist() == ["mallory"]
    assert sorted(hits["event_ids"][0]) == ["mallory0", "mallory1", "mallory2", "mallory3"]
    assert loaded.rules[0].attack_id == "T1552.007" and loaded.rules[0].tactic == "Credential Access"


def test_value_count_and_temporal_correlations(tmp_path: Path) -> None:
    correlation(
        tmp_path,
        "  type: value_count\n  group-by:\n    - user.username\n  timespan: 10m\n"
        "  condition:\n    gt: 1\n    field: objectRef.name",
    )
    hits = load_sigma_rules(tmp_path).rules[0].logic(Evidence(audit=BURST))
    assert sorted(hits["entity"]) == ["alice", "mallory"]
    write(
        tmp_path,
        "delete",
        f"title: pod delete\nname: pod_delete\n{AUDIT}detection:\n  sel:\n    verb: delete\n  condition: sel\n",
    )
    write(
        tmp_path,
        "corr",
        "title: read then delete\nstatus: test\ncorrelation:\n  type: temporal\n  rules:\n    - secret_read\n"
        "    - pod_delete\n  group-by:\n    - user.username\n  timespan: 5m\nlevel: high\n",
    )
    events = pd.concat(
        [
            BURST,
            frame(
                "audit",
                audit("2026-01-01T10:04:00Z", "mallory", "delete", "pods", event_id="d1"),
                audit("2026-01-01T11:00:00Z", "alice", "delete", "pods", event_id="d2"),
            ),
        ],
        ignore_index=True,
    )
    loaded = load_sigma_rules(tmp_path)
    temporal = next(r for r in loaded.rules if r.title == "read then delete")
    hits = temporal.logic(Evidence(audit=events))
    assert hits["entity"].tolist() == ["mallory"] and "d1" in hits["event_ids"][0]


def test_correlations_it_cannot_express_are_skipped(tmp_path: Path) -> None:
    correlation(
        tmp_path, "  type: event_count\n  group-by:\n    - user.username\n  timespan: 3m\n  condition:\n    lt: 3"
    )
    write(
        tmp_path,
        "dangling",
        "title: dangling\nstatus: test\ncorrelation:\n  type: event_count\n  rules:\n    - nowhere\n"
        "  timespan: 1m\n  condition:\n    gte: 2\nlevel: low\n",
    )
    loaded = load_sigma_rules(tmp_path)
    reasons = dict(zip(loaded.skipped["title"], loaded.skipped["reason"]))
    assert "only gt, gte" in reasons["many secret reads"]
    assert reasons["dangling"] == "correlated rules not found: nowhere"
