"""Containment every breach shape needs, here a leaked kubeconfig with no exploited pod: the
user is used from an outside address, a CI token is read from a Secret, a privileged DaemonSet
takes the nodes, a static pod is written through a hostPath, a mutating webhook is installed.
Each identity used is rotated, each object made is deleted by its real kind, each node taken is
rebuilt, each outside address blocked — and nothing inside the cluster is."""

from __future__ import annotations

import ipaddress

import networkx as nx
import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.analysis import graph_patient_zero
from k8sforensics.analysis.reach import EXPOSED, REACHED
from k8sforensics.remediation.actions import remediation_actions

T0 = pd.Timestamp("2026-05-12T10:00:00Z")
OUTSIDE = "ip:198.51.100.7"
NETS = [
    ipaddress.ip_network("10.0.0.0/16"),
    ipaddress.ip_network("203.0.113.50/32"),
]  # pods, and a node's public address


def leaked_kubeconfig_graph() -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()

    def seen(u: str, v: str, kind: str, minute: int) -> None:
        for n in (u, v):
            g.add_node(n, kind=n.split(":")[0], label=n.split(":", 1)[1])
        g.add_edge(
            u,
            v,
            key=kind,
            type=kind,
            observed=True,
            first_seen=T0 + pd.Timedelta(minutes=minute),
            last_seen=T0 + pd.Timedelta(minutes=minute),
            count=1,
            bytes=0,
            event_ids=[f"ev{minute}"],
        )

    def may(u: str, v: str, kind: str, first: pd.Timestamp | None = None) -> None:
        for n in (u, v):
            g.add_node(n, kind=n.split(":")[0], label=n.split(":", 1)[1])
        g.add_edge(
            u,
            v,
            key=f"{kind}?",
            type=kind,
            observed=False,
            first_seen=first if first is not None else pd.NaT,
            last_seen=pd.NaT,
            count=0,
            bytes=0,
            event_ids=[],
            reason=kind,
            basis="x",
            fix="y",
            cuttable=kind not in ("hosts", "runs"),
        )

    # an edge type this code does not know: the address acted as the user (the kubeconfig used from outside)
    seen(OUTSIDE, "user:alice@corp.example", "credential_use", 0)
    seen("user:alice@corp.example", "secret:ci/ci-deployer-token", "read_secret", 2)
    may("secret:ci/ci-deployer-token", "sa:ci/deployer", "holds_token")  # a legacy token Secret
    seen(OUTSIDE, "sa:ci/deployer", "token_use", 4)
    seen("sa:ci/deployer", "workload:kube-system/daemonsets/node-agent", "create_workload", 5)
    may(
        "workload:kube-system/daemonsets/node-agent",
        "pod:kube-system/node-agent-a1",
        "runs",
        T0 + pd.Timedelta(minutes=6),
    )
    may(
        "pod:kube-system/node-agent-a1", "node:n1", "host_escape", T0 + pd.Timedelta(minutes=6)
    )  # privileged, hostPath /
    may("pod:kube-system/node-agent-a1", "sa:kube-system/default", "token_steal", T0 + pd.Timedelta(minutes=6))
    may("node:n1", "pod:payments/api-1", "hosts")
    may("pod:payments/api-1", "sa:payments/api", "token_steal", T0 - pd.Timedelta(days=2))
    g.nodes["pod:payments/api-1"]["workload"] = "Deployment api"
    seen(
        "user:system:node:n1", "pod:kube-system/etcd-backup-n1", "create_pod", 8
    )  # the kubelet registers the planted static pod
    seen(
        "user:system:node:n1", "sa:payments/api", "token_request", 8
    )  # the kubelet fetching a pod's token: exposed, not used
    seen("sa:ci/deployer", "webhook:pod-defaults", "create_mutatingwebhookconfiguration", 9)
    seen(
        "pod:kube-system/node-agent-a1", "ip:203.0.113.50", "flow", 10
    )  # the node's own public address: not an attacker's
    seen("pod:kube-system/node-agent-a1", "ip:192.0.2.66", "flow", 11)  # C2
    return g


@pytest.fixture(scope="module")
def graph() -> nx.MultiDiGraph:
    return leaked_kubeconfig_graph()


@pytest.fixture(scope="module")
def actions(graph: nx.MultiDiGraph) -> pd.DataFrame:
    created = pd.DataFrame(
        {
            "resource": ["clusterrolebindings", "certificatesigningrequests", "secrets"],
            "namespace": [None, None, "ci"],
            "name": ["ci-admin", "alice-2", "deployer-token-2"],
            "actor": ["sa:ci/deployer"] * 3,
            "event_id": ["a1", "a2", "a3"],
        }
    )
    return remediation_actions(
        pd.DataFrame(columns=["finding_id", "event_ids"]),
        graph,
        networks=NETS,
        created=created,
        attacker_ips={"10.0.4.4", "203.0.113.50"},
    )


def test_the_way_in_is_the_identity_used_from_outside(graph: nx.MultiDiGraph) -> None:
    p0 = graph_patient_zero(graph, networks=NETS)
    first = p0.iloc[0]
    assert (first["entity_type"], first["entity"], first["came_from"]) == ("user", "alice@corp.example", "198.51.100.7")
    how = kf.paths(graph, OUTSIDE).set_index("node")["how"]
    assert how["user:alice@corp.example"] == REACHED and how["sa:ci/deployer"] == REACHED
    assert how["node:n1"] == REACHED and how["pod:kube-system/etcd-backup-n1"] == REACHED
    assert how["pod:payments/api-1"] == EXPOSED and how["sa:payments/api"] == EXPOSED


def test_every_identity_used_is_rotated(actions: pd.DataFrame) -> None:
    rotate = actions[actions["control"] == "credential rotation"].set_index("target")["action"]
    alice = rotate["user:alice@corp.example"]
    assert "identity provider" in alice and "client certificate cannot be revoked" in alice and "RBAC bindings" in alice
    deployer = actions[actions["target"] == "sa:ci/deployer"].iloc[0]
    assert (
        deployer["kind"] == "rotate"
        and "delete it and create it again" in deployer["action"]
        and "new UID" in deployer["action"]
    )
    assert deployer["check"]["expect"] == "replaced"
    assert (
        deployer["command"]
        == "kubectl -n ci delete serviceaccount deployer && kubectl -n ci create serviceaccount deployer"
    )
    assert "secret:ci/ci-deployer-token" in rotate.index  # the secret it was read from
    assert "sa:payments/api" in rotate.index  # exposed on the node the DaemonSet took
    assert "user:system:node:n1" not in rotate.index or "Node object" in rotate.get("user:system:node:n1", "")


def test_every_object_made_is_deleted_by_its_kind(actions: pd.DataFrame) -> None:
    text = actions["action"].str.cat(sep="\n")
    assert "delete the daemonset kube-system/node-agent the attacker created" in text
    hook = actions[actions["target"] == "webhook:pod-defaults"]
    # the webhook goes first of all containment: it sees every object the checklist creates after it
    contain = actions[actions["phase"] == "contain"]
    assert (
        len(hook) == 1
        and hook["phase"].iloc[0] == "contain"
        and contain.index[0] == hook.index[0]
        and "mutatingwebhookconfigurations,validatingwebhookconfigurations" in hook["command"].iloc[0]
    )
    static = actions[(actions["target"] == "pod:kube-system/etcd-backup-n1") & (actions["kind"] == "delete")][
        "action"
    ].iloc[0]
    assert "manifest" in static and "node n1" in static and "mirror pod" in static
    assert "delete the binding ci-admin" in text and "delete the secret ci/deployer-token-2" in text
    assert actions["command"].str.contains("kubectl delete clusterrolebinding ci-admin", regex=False).any()
    csr = actions[actions["target"] == "certificatesigningrequests:alice-2"]["action"].iloc[0]
    assert "cannot be revoked" in csr


def test_every_node_taken_is_rebuilt_and_co_tenants_left_running(actions: pd.DataFrame) -> None:
    rebuild = actions[(actions["target"] == "node:n1") & (actions["kind"] == "rebuild")]
    cordon = actions[(actions["target"] == "node:n1") & (actions["kind"] == "cordon")]
    assert (
        len(rebuild) == 1
        and "rebuild it from a clean image" in rebuild["action"].iloc[0]
        and "PodDisruptionBudgets" in rebuild["action"].iloc[0]
    )
    assert len(cordon) == 1 and cordon["step"].iloc[0] < rebuild["step"].iloc[0]
    assert not actions["target"].isin(["pod:payments/api-1", "workload:payments/Deployment/api"]).any()


def test_only_outside_addresses_are_blocked(actions: pd.DataFrame) -> None:
    blocked = set(actions.loc[actions["control"] == "network block", "target"])
    assert blocked == {OUTSIDE, "ip:192.0.2.66"}  # never 10.0.4.4 nor the node's public address


def test_no_graph_no_way_in_no_crash() -> None:
    a = remediation_actions(pd.DataFrame(columns=["finding_id", "event_ids"]), nx.MultiDiGraph())
    assert set(a["phase"]) == {"verify"}  # nothing to do but to check


def test_a_webhook_the_audit_log_names_is_deleted_once_by_its_real_kind(graph: nx.MultiDiGraph) -> None:
    created = pd.DataFrame(
        {
            "resource": ["mutatingwebhookconfigurations"],
            "namespace": [None],
            "name": ["pod-defaults"],
            "actor": ["sa:ci/deployer"],
            "event_id": ["w1"],
        }
    )
    a = remediation_actions(pd.DataFrame(columns=["finding_id", "event_ids"]), graph, networks=NETS, created=created)
    hook = a[a["action"].str.contains("admission webhook")]
    assert (
        len(hook) == 1
        and hook["command"].iloc[0] == "kubectl delete mutatingwebhookconfigurations pod-defaults --ignore-not-found"
    )
    assert (
        "SUSPICIOUS" not in hook["action"].iloc[0]
        and hook["check"].iloc[0]["resource"] == "mutatingwebhookconfigurations"
    )
