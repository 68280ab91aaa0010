"""Detection over the audit log a chunk at a time (``reduced_audit``) finds what detection over
the whole table finds, including when what a rule joins lies in another chunk."""

from __future__ import annotations

import pandas as pd

from k8sforensics.detect import BUILTIN_RULES, Evidence
from k8sforensics.detect.engine import run_rules
from k8sforensics.detect.reduction import reduced
from tests.event_frames import audit, frame

COLUMNS = ["finding_id", "rule_id", "time", "entity", "summary", "event_ids"]


def _both(rows: list[dict], flows: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Findings over the whole table, and over it cut into one chunk per five-minute window."""
    table = frame("audit", *rows)
    whole, _ = run_rules(Evidence(audit=table, flows=flows), BUILTIN_RULES)
    ev = Evidence(audit=table, flows=flows, chunk_rows=5)  # an audit chunk: one row, or one window
    assert len(list(ev.audit_chunks())) > 1
    chunked, _ = run_rules(reduced(ev), BUILTIN_RULES)
    return whole[COLUMNS].reset_index(drop=True), chunked[COLUMNS].reset_index(drop=True)


def test_a_first_create_inside_the_learning_window_still_makes_later_creates_not_first() -> None:
    whole, chunked = _both(
        [
            audit("2026-01-01T08:00:00Z", "system:node:n1", "update", "leases"),
            audit(
                "2026-01-01T08:10:00Z",
                "ci-bot",
                "create",
                "deployments",
                object_namespace="a",
                object_name="d",
                api_group="apps",
            ),
            audit(
                "2026-01-01T10:00:00Z",
                "ci-bot",
                "create",
                "deployments",
                object_namespace="a",
                object_name="d2",
                api_group="apps",
            ),
            audit("2026-01-01T10:20:00Z", "mallory", "create", "pods", object_namespace="a", object_name="p"),
        ]
    )
    assert "k8s-new-pod-creator" in set(whole["rule_id"])
    pd.testing.assert_frame_equal(chunked, whole)


def test_a_binding_used_in_a_later_chunk() -> None:
    crb = {
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "mallory"}],
    }
    whole, chunked = _both(
        [
            audit(
                "2026-01-01T10:00:00Z",
                "alice",
                "create",
                "clusterrolebindings",
                object_name="backdoor",
                request_object=crb,
            ),
            audit("2026-01-01T10:12:00Z", "system:node:n1", "update", "leases"),
            audit(
                "2026-01-01T10:31:00Z",
                "mallory",
                "get",
                "nodes",
                object_name="n1",
                authz_reason='RBAC: allowed by ClusterRoleBinding "backdoor" of ClusterRole "cluster-admin" to User "mallory"',
            ),
        ]
    )
    assert "k8s-cluster-admin-binding-first-use" in set(whole["rule_id"])
    pd.testing.assert_frame_equal(chunked, whole)


def test_an_rbac_change_and_the_workload_write_after_it_across_a_chunk_boundary() -> None:
    whole, chunked = _both(
        [
            audit(
                "2026-01-01T10:04:50Z",
                "mallory",
                "create",
                "rolebindings",
                object_namespace="a",
                object_name="rb",
                request_object={"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": []},
            ),
            audit(
                "2026-01-01T10:05:10Z",
                "mallory",
                "patch",
                "deployments",
                object_namespace="a",
                object_name="d",
                api_group="apps",
            ),
        ]
    )
    assert "k8s-rbac-then-workload" in set(whole["rule_id"])
    pd.testing.assert_frame_equal(chunked, whole)


def test_an_exec_the_flow_rules_join_to_is_kept_whatever_its_verb() -> None:
    flows = frame(
        "flows",
        {
            "time": "2026-01-01T10:01:00Z",
            "src_ip": "10.0.0.7",
            "src_namespace": "a",
            "src_pod": "p",
            "src_kind": "pod",
            "dst_ip": "203.0.113.50",
            "dst_port": 443,
            "verdict": "allowed",
            "is_reply": False,
        },
    )
    whole, chunked = _both(
        [
            audit(
                "2026-01-01T10:00:00Z",
                "mallory",
                "connect",
                "pods",
                subresource="exec",
                object_namespace="a",
                object_name="p",
            ),
            audit("2026-01-01T10:12:00Z", "system:node:n1", "update", "leases"),
        ],
        flows,
    )
    assert "net-exec-then-egress" in set(whole["rule_id"])
    pd.testing.assert_frame_equal(chunked, whole)
