"""Detection and the lateral-movement graph over request bodies nested 2,000 levels deep or
50 MB large: such a body is left unread (recorded in ``evidence.unreadable``), the other rows
are judged as before, nothing raises."""

from __future__ import annotations

import orjson
import pandas as pd

from k8sforensics.analysis import lateral_movement
from k8sforensics.bodies import TOO_DEEP, TOO_LARGE
from k8sforensics.detect import BUILTIN_RULES, Evidence, load_sigma_rules
from k8sforensics.detect.engine import run_rules
from k8sforensics.detect.reduction import reduced
from tests.event_frames import audit, frame

from ..conftest import FIXTURES

DEEP = '{"a":' * 2000 + "1" + "}" * 2000
BIG = (
    '{"kind": "Pod", "spec": {"containers": [{"name": "c", "securityContext": {"privileged": true}}]}, "x": "'
    + "x" * (50 * 1024 * 1024)
    + '"}'
)
BINDING = {
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "evil"},
    "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
    "subjects": [{"kind": "User", "name": "mallory"}],
}


def _rows() -> pd.DataFrame:
    return frame(
        "audit",
        # readable: still found
        audit(
            "2026-01-01T10:00:00Z",
            "mallory",
            "create",
            "clusterrolebindings",
            object_name="evil",
            code=201,
            request_object=BINDING,
        ),
        # the same kinds of request with bodies that must not be read
        audit(
            "2026-01-01T10:01:00Z",
            "mallory",
            "create",
            "clusterrolebindings",
            object_name="deep",
            code=201,
            request_object='{"roleRef": {"name": "cluster-admin"}, "subjects": ' + DEEP + "}",
        ),
        audit(
            "2026-01-01T10:02:00Z",
            "mallory",
            "create",
            "pods",
            object_namespace="n",
            object_name="deep",
            code=201,
            request_object='{"kind": "Pod", "spec": {"containers": [' + DEEP + "]}}",
        ),
        audit(
            "2026-01-01T10:03:00Z",
            "mallory",
            "create",
            "pods",
            object_namespace="n",
            object_name="big",
            code=201,
            request_object=BIG,
        ),
        audit(
            "2026-01-01T10:04:00Z", "mallory", "create", "clusterroles", object_name="r", code=201, request_object=DEEP
        ),
    )


def test_builtin_rules_leave_deep_and_large_bodies_unread() -> None:
    a = _rows()
    ev = Evidence(audit=a)
    findings, _ = run_rules(ev, BUILTIN_RULES)
    admin = findings[findings["rule_id"] == "k8s-cluster-admin-binding"]
    assert admin["entity"].tolist() == [
        "clusterrolebindings/evil"
    ]  # the readable binding; the deep one is not guessed at
    assert a.loc[3, "event_id"] not in {
        i for ids in findings[findings["rule_id"] == "k8s-privileged-pod"]["event_ids"] for i in ids
    }
    assert ev.unreadable.by_reason == {TOO_DEEP: 3, TOO_LARGE: 1}  # each body once, however many rules read it
    assert {e["event_id"] for e in ev.unreadable.examples} == set(a.loc[1:, "event_id"])


def test_reduced_evidence_shares_the_record() -> None:
    ev = Evidence(audit=_rows(), chunk_rows=5)
    kept = reduced(ev)
    run_rules(kept, BUILTIN_RULES)
    assert kept.unreadable is ev.unreadable and ev.unreadable.total == 4


def test_sigma_rules_over_request_fields_leave_them_unread() -> None:
    rules = load_sigma_rules(FIXTURES / "sigma" / "privileged_from_request.yml").rules
    ev = Evidence(audit=_rows())
    hits = rules[0].logic(ev)
    assert hits.empty  # the only privileged containers are in the bodies that are not read
    assert ev.unreadable.by_where == {"sigma:request_object": 4} and ev.unreadable.by_reason == {
        TOO_DEEP: 3,
        TOO_LARGE: 1,
    }


def test_the_graph_leaves_a_deep_binding_unread() -> None:
    g = lateral_movement(Evidence(audit=_rows()), possible=False)
    assert g.has_edge("binding:evil", "user:mallory")
    assert not any(u == "binding:deep" and d["type"] == "grants" for u, _, d in g.edges(data=True))
    assert g.graph["unreadable_bodies"]["by_reason"] == {TOO_DEEP: 1}
    orjson.dumps(g.graph["unreadable_bodies"])
