"""Patient zero for every shape of entry: an exploited pod, an identity used from outside with
no exploited pod, nothing found yet — and never an address inside the cluster."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import networkx as nx
import pandas as pd

import k8sforensics as kf
from k8sforensics.analysis import attack_scope, attack_sources, findings_patient_zero, graph_patient_zero
from k8sforensics.analysis.entry import PATIENT_ZERO_COLUMNS

T0 = pd.Timestamp("2026-05-12T10:00:00Z")


def finding(
    i: int,
    *,
    entity_type: str,
    entity: str,
    minute: int,
    severity: str = "high",
    phase: str = "Installation",
    namespace: str | None = None,
    pod: str | None = None,
    user: str | None = None,
    source_ip: str | None = None,
) -> dict:
    return {
        "finding_id": f"f{i}",
        "time": T0 + pd.Timedelta(minutes=minute),
        "entity_type": entity_type,
        "entity": entity,
        "namespace": namespace,
        "pod": pod,
        "user": user,
        "source_ip": source_ip,
        "severity": severity,
        "kill_chain_phase": phase,
        "title": f"rule {i}",
        "event_ids": [f"e{i}"],
    }


def test_a_leaked_kubeconfig_ranks_the_user_with_its_outside_address() -> None:
    f = pd.DataFrame(
        [
            finding(
                1,
                entity_type="object",
                entity="secrets/ci/ci-token",
                minute=2,
                severity="medium",
                phase="Actions on Objectives",
                user="alice@corp.example",
                source_ip="198.51.100.7",
            ),
            finding(
                2,
                entity_type="workload",
                entity="daemonsets/kube-system/node-agent",
                minute=5,
                user="alice@corp.example",
                source_ip="198.51.100.7",
            ),
            # a workload the DaemonSet's pod did later, from a pod address: not a way in
            finding(
                3,
                entity_type="pod",
                entity="kube-system/node-agent-a1",
                minute=7,
                severity="medium",
                phase="Actions on Objectives",
                namespace="kube-system",
                pod="node-agent-a1",
                source_ip="10.0.3.9",
            ),
        ]
    )
    p0 = findings_patient_zero(f)
    assert list(p0.columns) == PATIENT_ZERO_COLUMNS
    first = p0.iloc[0]
    assert (first["rank"], first["entity_type"], first["entity"], first["came_from"]) == (
        1,
        "user",
        "alice@corp.example",
        "198.51.100.7",
    )
    assert pd.isna(
        p0.set_index("entity").loc["kube-system/node-agent-a1", "came_from"]
    )  # a pod address is never came_from


def test_a_stolen_token_used_from_outside_is_a_service_account_entry() -> None:
    f = pd.DataFrame(
        [
            finding(
                1,
                entity_type="service_account",
                entity="ci/deployer",
                minute=1,
                severity="critical",
                phase="Actions on Objectives",
                user="system:serviceaccount:ci:deployer",
                source_ip="203.0.113.40",
            )
        ]
    )
    first = findings_patient_zero(f).iloc[0]
    assert (first["entity_type"], first["entity"], first["namespace"], first["came_from"]) == (
        "service_account",
        "ci/deployer",
        "ci",
        "203.0.113.40",
    )


def test_a_node_address_is_never_patient_zero() -> None:
    # an internal scan from a node (no pod behind the address) that a rule fell back to calling a pod
    f = pd.DataFrame(
        [
            finding(
                1,
                entity_type="pod",
                entity="10.0.1.20",
                minute=0,
                severity="high",
                phase="Exploitation",
                source_ip="10.0.1.20",
            ),
            finding(
                2,
                entity_type="pod",
                entity="shop/web-1",
                minute=3,
                severity="critical",
                phase="Exploitation",
                namespace="shop",
                pod="web-1",
                source_ip="10.0.1.20",
            ),
            finding(
                3,
                entity_type="object",
                entity="pods/kube-system/x",
                minute=4,
                user="system:node:n1",
                source_ip="203.0.113.50",
            ),
        ]
    )
    p0 = findings_patient_zero(
        f, networks=[ipaddress.ip_network("203.0.113.50/32")]
    )  # the node's public address is the cluster's
    assert p0["entity"].tolist() == ["shop/web-1"] and pd.isna(p0["came_from"].iloc[0])


def test_nothing_found_yet_is_an_empty_ranking(tmp_path: Path) -> None:
    assert findings_patient_zero(pd.DataFrame()).columns.tolist() == PATIENT_ZERO_COLUMNS
    assert findings_patient_zero(pd.DataFrame(columns=["kind", "entity_type"])).empty
    case = kf.Case.create(tmp_path / "case")  # no evidence, no pods, no detection run
    assert kf.patient_zero(case).empty
    assert graph_patient_zero(nx.MultiDiGraph()).empty and attack_scope(nx.MultiDiGraph()).sources == []


def graph(*edges: tuple[str, str, str, int]) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    for u, v, kind, minute in edges:
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
    return g


def test_graph_ranks_an_identity_used_from_outside_when_no_pod_was_exploited() -> None:
    g = graph(
        ("ip:198.51.100.7", "user:alice", "credential_use", 0),
        ("user:alice", "secret:ci/t", "read_secret", 1),
        ("ip:10.0.0.5", "user:bob", "credential_use", 0),  # a VPC address: an administrator's bastion
        ("sa:ci/deployer", "pod:kube-system/agent-1", "create_pod", 3),
        ("pod:kube-system/agent-1", "node:n1", "host_escape", 4),
    )
    p0 = graph_patient_zero(g)
    assert (p0.iloc[0]["entity_type"], p0.iloc[0]["entity"], p0.iloc[0]["came_from"]) == (
        "user",
        "alice",
        "198.51.100.7",
    )
    assert "bob" not in set(p0["entity"])
    assert attack_scope(g).sources == ["ip:198.51.100.7"]


def test_graph_never_takes_an_inside_address_for_the_source() -> None:
    # behind a load balancer the exploit arrives from the balancer's VPC address
    g = graph(
        ("ip:10.0.0.137", "pod:shop/web-1", "flow", 0),
        ("pod:shop/web-1", "sa:shop/web", "token_use", 2),
        ("sa:shop/web", "pod:pay/api-1", "exec", 3),
    )
    p0 = graph_patient_zero(g)
    assert p0.iloc[0]["entity"] == "shop/web-1" and pd.isna(p0.iloc[0]["came_from"])
    assert attack_scope(g).sources == ["pod:shop/web-1"]  # no outside address: the foothold is the way in
    # the foothold itself is the way in; a later hop is not
    f = pd.DataFrame(
        [
            finding(1, entity_type="pod", entity="shop/web-1", minute=1, namespace="shop", pod="web-1"),
            finding(2, entity_type="pod", entity="pay/api-1", minute=3, namespace="pay", pod="api-1"),
        ]
    )
    assert attack_sources(g, findings=f) == ["pod:shop/web-1"]
    how = kf.paths(g, attack_sources(g, findings=f)).set_index("node")["how"]
    assert how["pod:pay/api-1"] == "reached"
