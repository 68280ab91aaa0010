"""Evidence removal: a pod deleted by a person or a pod identity after a rule flagged it (its
creation, or what ran in it) is a finding; a controller replacing a pod, or a pod nothing flagged,
is not. And a bare pod is a new thing for an identity that had only deployed workloads before."""

from __future__ import annotations

import pandas as pd

from k8sforensics.detect import BUILTIN_RULES, Evidence
from k8sforensics.detect import audit_rules as ar
from k8sforensics.detect.engine import run_rules
from k8sforensics.detect.reduction import reduced
from tests.event_frames import audit, frame

MALLORY = "system:serviceaccount:shop:web"
PRIVILEGED = {"spec": {"containers": [{"name": "c", "image": "alpine:3.19", "securityContext": {"privileged": True}}]}}
PLAIN = {"spec": {"containers": [{"name": "c", "image": "alpine:3.19"}]}}


def _rows() -> list[dict]:
    return [
        audit("2026-01-01T08:00:00Z", "system:node:n1", "update", "leases"),
        audit(
            "2026-01-01T10:00:00Z",
            MALLORY,
            "create",
            "pods",
            object_namespace="kube-system",
            object_name="kube-proxy-x1",
            request_object=PRIVILEGED,
        ),
        audit(
            "2026-01-01T10:01:00Z",
            "alice",
            "create",
            "pods",
            object_namespace="dev",
            object_name="scratch",
            request_object=PLAIN,
        ),
        audit(
            "2026-01-01T08:05:00Z",
            "alice",
            "create",
            "pods",
            object_namespace="dev",
            object_name="old",
            request_object=PLAIN,
        ),
        # an hour later, in other audit chunks: the attacker removes their pod; alice removes hers
        audit(
            "2026-01-01T11:00:00Z",
            MALLORY,
            "delete",
            "pods",
            object_namespace="kube-system",
            object_name="kube-proxy-x1",
        ),
        audit("2026-01-01T11:00:10Z", "alice", "delete", "pods", object_namespace="dev", object_name="scratch"),
        audit(
            "2026-01-01T11:00:20Z",
            "system:serviceaccount:kube-system:replicaset-controller",
            "delete",
            "pods",
            object_namespace="kube-system",
            object_name="kube-proxy-x1",
        ),
    ]


def test_a_flagged_pod_deleted_by_its_creator_but_not_an_unflagged_one_or_a_controllers_delete() -> None:
    hits = ar.flagged_pod_deleted(Evidence(audit=frame("audit", *_rows())))
    assert hits["entity"].tolist() == ["kube-system/kube-proxy-x1"] and hits["user"].tolist() == [MALLORY]
    assert "privileged" in hits.loc[0, "summary"]


def test_a_pod_flagged_at_run_time_then_deleted() -> None:
    runtime = frame(
        "runtime",
        {
            "time": "2026-01-01T10:30:00Z",
            "event_type": "exec",
            "namespace": "dev",
            "pod": "scratch",
            "container_id": "c1",
            "process": "/usr/bin/nsenter",
            "cmdline": "nsenter -t 1 -m -u -n -i sh",
            "node": "n1",
        },
    )
    hits = ar.flagged_pod_deleted(Evidence(audit=frame("audit", *_rows()), runtime=runtime))
    assert set(hits["entity"]) == {"kube-system/kube-proxy-x1", "dev/scratch"}


def test_the_deletion_is_found_when_the_creation_lies_in_an_earlier_chunk() -> None:
    table = frame("audit", *_rows())
    whole, _ = run_rules(Evidence(audit=table), BUILTIN_RULES)
    ev = Evidence(audit=table, chunk_rows=5)
    chunked, _ = run_rules(reduced(ev), BUILTIN_RULES)
    assert "k8s-flagged-pod-deleted" in set(whole["rule_id"])
    cols = ["rule_id", "time", "entity", "event_ids"]
    pd.testing.assert_frame_equal(chunked[cols].reset_index(drop=True), whole[cols].reset_index(drop=True))


def test_a_bare_pod_after_a_daemonset_is_new_for_its_creator() -> None:
    rows = [
        audit("2026-01-01T08:00:00Z", "system:node:n1", "update", "leases"),
        audit(
            "2026-01-01T10:00:00Z",
            MALLORY,
            "create",
            "daemonsets",
            api_group="apps",
            object_namespace="kube-system",
            object_name="node-cache",
        ),
        audit("2026-01-01T10:05:00Z", MALLORY, "create", "pods", object_namespace="default", object_name="debug-tools"),
        audit(
            "2026-01-01T10:06:00Z", MALLORY, "create", "pods", object_namespace="default", object_name="debug-tools-2"
        ),
    ]
    hits = ar.new_pod_creator(Evidence(audit=frame("audit", *rows)))
    assert hits["entity"].tolist() == ["daemonsets/kube-system/node-cache", "default/debug-tools"]
