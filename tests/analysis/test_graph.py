"""The observed lateral-movement graph on the sample breach (issue 7, first part): the path
from the attacker's address follows the ground truth, in order, every hop backed by evidence."""

from __future__ import annotations

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.analysis import graph_patient_zero

KIND = {"ip": "ip", "pod": "pod", "service_account": "sa", "node": "node"}


@pytest.fixture(scope="module")
def graph(sample_case: kf.Case):
    return kf.lateral_movement(sample_case)


def test_observed_path_matches_the_ground_truth(graph, sample_truth: dict) -> None:
    truth = [f"{KIND[h['kind']]}:{h['id']}" for h in sample_truth["lateral_path"]]
    hops = kf.paths(graph, truth[0], truth[-1])
    assert hops["node"].tolist() == truth
    assert hops["reached"].iloc[1:].is_monotonic_increasing
    # the web pod's token is read (Falco's alert names the file) before it is used: the theft is the hop
    assert hops["via"].tolist()[1:] == ["flow", "token_steal", "exec", "token_steal", "create_pod", "host_escape"]
    assert all(len(ids) for ids in hops["event_ids"].iloc[1:])


def test_ip_reuse_does_not_put_the_innocent_pod_on_the_path(graph, sample_truth: dict) -> None:
    innocent = next(a for a in sample_truth["ip_attribution"] if "innocent" in a["note"])
    reached = kf.paths(graph, "ip:198.51.100.66")
    assert f"pod:{innocent['namespace']}/{innocent['pod']}" not in set(reached["node"])
    # what else the attacker reached: persistence
    assert {
        "binding:system:monitoring-agents",
        "sa:kube-system/default",
        "workload:kube-system/cronjobs/log-rotate",
    } <= set(reached["node"])


def test_edges_are_aggregated_per_pair_and_type(graph) -> None:
    edges = [(u, v, d) for u, v, d in graph.edges(data=True)]
    keys = [(u, v, d["type"], d["observed"]) for u, v, d in edges]
    assert len(keys) == len(set(keys))
    beacons = graph.get_edge_data("pod:kube-system/kube-proxy-x7k2p", "ip:203.0.113.77")["flow"]
    assert (
        beacons["count"] == 10
        and beacons["first_seen"] == pd.Timestamp("2026-03-10T10:35:00Z")
        and len(beacons["event_ids"]) == 10
    )
    assert graph.nodes["sa:shop/web"]["kind"] == "sa"


def test_unknown_source_is_a_clear_error(graph) -> None:
    with pytest.raises(KeyError, match="not in the graph"):
        kf.paths(graph, "ip:192.0.2.1")


def test_time_window(sample_case: kf.Case) -> None:
    early = kf.lateral_movement(sample_case, end="2026-03-10T10:20:00Z")
    assert "node:node-2" not in kf.paths(early, "ip:198.51.100.66")["node"].tolist()
    assert "sa:shop/web" in kf.paths(early, "ip:198.51.100.66")["node"].tolist()


# ---------------------------------------------------------------- observed and possible together

WEB = "pod:shop/web-q7rclvtq89-mtpxj"


def test_possible_edges_sit_beside_the_observed_ones(graph) -> None:
    # the exec the attacker made was granted by the web-debug RoleBinding: both edges are there
    both = graph.get_edge_data("sa:shop/web", "pod:payments/api-5hftq2dbls-88flg")
    assert both["exec"]["observed"] and not both["exec?"]["observed"]
    assert both["exec?"]["basis"] == "RoleBinding payments/web-debug" and both["exec?"]["cuttable"]
    escape = graph.get_edge_data("pod:kube-system/kube-proxy-x7k2p", "node:node-2")
    assert set(escape) == {"host_escape", "host_escape?"} and "privileged" in escape["host_escape?"]["reason"]
    assert graph.has_edge("node:node-2", "pod:payments/api-5hftq2dbls-88flg")  # a node holds its pods


def test_without_possible_edges_only_evidence_remains(sample_case: kf.Case) -> None:
    g = kf.lateral_movement(sample_case, possible=False)
    assert all(d["observed"] and d["event_ids"] for _, _, d in g.edges(data=True))


def test_patient_zero_from_the_graph(graph, sample_truth: dict) -> None:
    p0 = graph_patient_zero(graph)
    first = p0.iloc[0]
    assert f"pod:{first['namespace']}/{first['pod']}" == WEB and first["came_from"] == "198.51.100.66"
    assert first["rank"] == 1 and "token_steal" in first["reason"]  # the token read, the first onward move


def test_blast_radius_of_the_foothold(graph) -> None:
    r = kf.blast_radius(graph, WEB).set_index("node")
    # what the attacker did reach, over observed edges alone
    assert r.loc["sa:payments/payments-api", "observed"] and r.loc["node:node-2", "observed"]
    # and where they could still go: the other nodes, every pod through the cluster-admin binding they made
    assert not r.loc["node:node-3", "observed"] and "role:*" in r.index
    assert r.loc["pod:monitoring/prometheus-0", "hops"] >= 3


def test_edges_to_cut_between_the_foothold_and_the_node(graph) -> None:
    cut = kf.edges_to_cut(graph, WEB, "node:node-2")
    assert len(cut) and cut["cuttable"].all()
    assert ("pod:kube-system/kube-proxy-x7k2p", "host_escape") in set(zip(cut["source"], cut["type"]))
    # cutting them disconnects the two over control edges
    g = graph.copy()
    for r in cut.itertuples():
        for key in [
            k for k, d in g.get_edge_data(r.source, r.target).items() if d["type"] == r.type and not d["observed"]
        ]:
            g.remove_edge(r.source, r.target, key=key)
        for key in [k for k, d in (g.get_edge_data(r.source, r.target) or {}).items() if d["type"] == r.type]:
            g.remove_edge(r.source, r.target, key=key)  # the observed twin happened through the same grant
    assert "node:node-2" not in set(kf.blast_radius(g, WEB)["node"])


def test_a_binding_is_created_grants_and_is_used() -> None:
    from k8sforensics.detect import Evidence
    from tests.event_frames import audit, frame

    attacker, sa = "system:serviceaccount:payments:api", "system:serviceaccount:kube-system:default"
    body = {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "backdoor"},
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "namespace": "kube-system", "name": "default"}],
    }
    reason = 'RBAC: allowed by ClusterRoleBinding "backdoor" of ClusterRole "cluster-admin" to ServiceAccount "default/kube-system"'
    a = frame(
        "audit",
        audit(
            "2026-03-10T10:40:00Z",
            attacker,
            "create",
            "clusterrolebindings",
            object_name="backdoor",
            request_object=body,
        ),
        audit("2026-03-10T10:45:00Z", sa, "list", "secrets", authz_reason=reason),
        audit(
            "2026-03-10T10:46:00Z",
            sa,
            "get",
            "secrets",
            object_namespace="kube-system",
            object_name="x",
            authz_reason=reason,
        ),
        audit(
            "2026-03-10T10:47:00Z",
            sa,
            "get",
            "pods",
            authz_reason='RBAC: allowed by ClusterRoleBinding "view" of ClusterRole',
        ),
    )
    g = kf.lateral_movement(Evidence(audit=a), possible=False)
    assert g.get_edge_data("sa:payments/api", "binding:backdoor")["bind_role"]["count"] == 1
    assert g.has_edge("binding:backdoor", "sa:kube-system/default")
    used = g.get_edge_data("sa:kube-system/default", "binding:backdoor")["use_binding"]
    assert used["count"] == 2 and used["first_seen"] == pd.Timestamp("2026-03-10T10:45:00Z")
    assert g.has_edge("sa:kube-system/default", "binding:view")


def test_debug_token_request_and_impersonation_hand_over_control() -> None:
    from k8sforensics.detect import Evidence
    from tests.event_frames import audit, frame

    who = "system:serviceaccount:shop:web"
    a = frame(
        "audit",
        audit(
            "2026-03-10T10:00:00Z",
            who,
            "patch",
            "pods",
            subresource="ephemeralcontainers",
            object_namespace="pay",
            object_name="api",
        ),
        audit(
            "2026-03-10T10:01:00Z",
            who,
            "create",
            "serviceaccounts",
            subresource="token",
            object_namespace="kube-system",
            object_name="admin",
        ),
        audit(
            "2026-03-10T10:02:00Z",
            "alice",
            "get",
            "secrets",
            impersonated_user="system:serviceaccount:kube-system:admin",
        ),
        audit("2026-03-10T10:03:00Z", "alice", "get", "nodes", impersonated_user="bob"),
    )
    g = kf.lateral_movement(Evidence(audit=a), possible=False)
    assert g.has_edge("sa:shop/web", "pod:pay/api", key="debug")
    assert g.has_edge("sa:shop/web", "sa:kube-system/admin", key="token_request")
    assert g.has_edge("user:alice", "sa:kube-system/admin", key="impersonate") and g.has_edge(
        "user:alice", "user:bob", key="impersonate"
    )
    assert set(kf.paths(g, "sa:shop/web")["node"]) == {"sa:shop/web", "pod:pay/api", "sa:kube-system/admin"}


def test_edges_do_not_depend_on_how_the_audit_log_and_the_flows_are_chunked(sample_case: kf.Case) -> None:
    from k8sforensics.analysis import graph_evidence, observed_edges

    whole = observed_edges(graph_evidence(sample_case))
    small = graph_evidence(sample_case)
    small.chunk_rows = 25
    assert len(list(small.flow_chunks())) > 3 and len(list(small.audit_chunks())) > 3
    chunked = observed_edges(small)
    assert (whole["type"] == "flow").sum() >= 5 and (whole["count"] > 1).any()  # merged counts are compared
    pd.testing.assert_frame_equal(chunked, whole)


def test_parts_of_an_edge_merge_into_its_first_events_in_time_order() -> None:
    from k8sforensics.analysis.graph import _aggregate, _merge

    def rows(times: list[str], ids: list[str]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "source": "sa:a/x",
                "target": "pod:a/p",
                "type": "exec",
                "time": pd.to_datetime(times, utc=True),
                "bytes": 0,
                "event_id": ids,
            }
        )

    audit = _aggregate(rows(["2026-01-01T10:00:00Z", "2026-01-01T10:02:00Z"], ["e1", "e3"]))
    runtime = _aggregate(rows(["2026-01-01T10:01:00Z"], ["e2"]))  # a part whose events fall between another's
    merged = _merge([runtime, audit])
    assert len(merged) == 1 and list(merged.loc[0, "event_ids"]) == ["e1", "e2", "e3"] and merged.loc[0, "count"] == 3
    assert merged.loc[0, "first_seen"] == pd.Timestamp("2026-01-01T10:00:00Z")
