"""Burst rules count over a sliding window per identity, not fixed clock buckets: a burst that
straddles a five-minute (or one-minute) boundary is still a burst, including when the boundary
also cuts the audit log into two chunks."""

from __future__ import annotations

import pandas as pd

from k8sforensics.detect import BUILTIN_RULES, Evidence
from k8sforensics.detect import audit_rules as ar
from k8sforensics.detect.engine import run_rules
from k8sforensics.detect.reduction import reduced
from tests.event_frames import audit, frame

MALLORY = "system:serviceaccount:shop:web"


def run(logic, *rows) -> pd.DataFrame:
    return logic(Evidence(audit=frame("audit", *rows)))


def _teardown(start_second: int) -> list[dict]:
    """A deployment, its volume claim, service, config and secret deleted three seconds apart."""
    kinds = [
        ("deployments", "api"),
        ("persistentvolumeclaims", "data-0"),
        ("services", "api"),
        ("configmaps", "api-config"),
        ("secrets", "tls"),
    ]
    out = []
    for k, (res, name) in enumerate(kinds):
        s = start_second + 3 * k
        out.append(
            audit(
                f"2026-01-01T10:{4 + s // 60:02d}:{s % 60:02d}Z",
                MALLORY,
                "delete",
                res,
                object_namespace="payments",
                object_name=name,
            )
        )
    return out


def test_a_teardown_across_a_five_minute_boundary_is_destruction() -> None:
    rows = _teardown(50)  # 10:04:50 … 10:05:02: two deletions before 10:05, three after
    hits = run(ar.destruction, *rows)
    assert len(hits) == 1 and len(hits.loc[0, "event_ids"]) == 5


def test_services_count_towards_destruction_but_four_deletions_are_not_a_burst() -> None:
    rows = _teardown(0)
    assert len(run(ar.destruction, *rows)) == 1
    assert run(ar.destruction, *rows[:4]).empty
    # five deletions spread over more than five minutes are not one burst
    slow = [
        audit(f"2026-01-01T1{k}:00:00Z", MALLORY, "delete", "configmaps", object_namespace="a", object_name=f"c{k}")
        for k in range(5)
    ]
    assert run(ar.destruction, *slow).empty


def test_a_pod_deletion_burst_across_a_boundary() -> None:
    rows = [
        audit(
            f"2026-01-01T10:04:5{k}Z" if k < 2 else f"2026-01-01T10:05:0{k}Z",
            "mallory",
            "delete",
            "pods",
            object_namespace="shop",
            object_name=f"p{k}",
        )
        for k in range(5)
    ]
    assert len(run(ar.pod_deletion_burst, *rows)) == 1


def test_forbidden_and_enumeration_bursts_across_a_minute_boundary() -> None:
    denied = [
        audit(
            f"2026-01-01T10:00:{55 + k}Z" if k < 5 else f"2026-01-01T10:01:0{k - 5}Z",
            "system:anonymous",
            "get",
            "secrets",
            code=403,
            source_ip="198.51.100.7",
        )
        for k in range(6)
    ]
    assert len(run(ar.forbidden_burst, *denied)) == 1
    lists = [
        audit(t, MALLORY, "list", res)
        for t, res in (
            ("2026-01-01T10:00:50Z", "pods"),
            ("2026-01-01T10:01:05Z", "secrets"),
            ("2026-01-01T10:01:20Z", "configmaps"),
        )
    ]
    assert len(run(ar.api_enumeration, *lists)) == 1
    # the same three kinds spread over three minutes are not enumeration
    spread = [
        audit(f"2026-01-01T10:0{k * 2}:00Z", MALLORY, "list", res)
        for k, res in enumerate(("pods", "secrets", "configmaps"))
    ]
    assert run(ar.api_enumeration, *spread).empty


def test_a_burst_split_across_two_audit_chunks_is_found_chunk_by_chunk() -> None:
    rows = [audit("2026-01-01T09:00:00Z", "system:node:n1", "update", "leases"), *_teardown(50)]
    table = frame("audit", *rows)
    whole, _ = run_rules(Evidence(audit=table), BUILTIN_RULES)
    ev = Evidence(audit=table, chunk_rows=5)  # an audit chunk: one row, or one five-minute window
    assert len(list(ev.audit_chunks())) > 1
    chunked, _ = run_rules(reduced(ev), BUILTIN_RULES)
    assert "k8s-destruction" in set(whole["rule_id"])
    cols = ["rule_id", "time", "entity", "event_ids"]
    pd.testing.assert_frame_equal(chunked[cols].reset_index(drop=True), whole[cols].reset_index(drop=True))
