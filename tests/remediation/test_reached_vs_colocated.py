"""A host escape onto a node that also runs system pods: the pods the attacker reached are
isolated, the co-tenants of the escaped node are only exposed — their tokens are rotated and
the node rebuilt, never a deny-all quarantine or a redeploy of DNS, the load-balancer
controller or Prometheus."""

from __future__ import annotations

import ipaddress

import networkx as nx
import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.analysis import attack_scope
from k8sforensics.analysis.reach import EXPOSED, REACHED
from k8sforensics.remediation.actions import (
    isolated_pods,
    remediation_actions,
    system_component,
)

T0 = pd.Timestamp("2026-05-12T10:00:00Z")
WEB, COREDNS, LBC, PROM, HOSTNET = (
    "pod:shop/web-1",
    "pod:kube-system/coredns-5d78c9869d-abcde",
    "pod:kube-system/aws-load-balancer-controller-7f9c-x2",
    "pod:monitoring/prometheus-0",
    "pod:kube-system/aws-node-q8x7z",
)


def escape_graph() -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()

    def node(n: str, **attrs: object) -> None:
        g.add_node(n, kind=n.split(":")[0], label=n.split(":", 1)[1], **attrs)

    def seen(u: str, v: str, kind: str, minute: int) -> None:
        for n in (u, v):
            if n not in g:
                node(n)
        g.add_edge(
            u,
            v,
            key=kind,
            type=kind,
            observed=True,
            first_seen=T0 + pd.Timedelta(minutes=minute),
            last_seen=T0 + pd.Timedelta(minutes=minute + 1),
            count=1,
            bytes=0,
            event_ids=[f"ev:{u}>{v}:{kind}"],
        )

    def may(u: str, v: str, kind: str) -> None:
        for n in (u, v):
            if n not in g:
                node(n)
        g.add_edge(
            u,
            v,
            key=f"{kind}?",
            type=kind,
            observed=False,
            first_seen=T0 - pd.Timedelta(days=1),
            last_seen=pd.NaT,
            count=0,
            bytes=0,
            event_ids=[],
            reason=kind,
            basis="x",
            fix="y",
            cuttable=kind != "hosts",
        )

    node(WEB, workload="Deployment web", host="n1")
    node(COREDNS, workload="Deployment coredns", host="n1")
    node(LBC, workload="Deployment aws-load-balancer-controller", host="n1")
    node(PROM, workload="StatefulSet prometheus", host="n1")
    node(HOSTNET, workload="DaemonSet aws-node", host="n1")
    for pod, sa in (
        (WEB, "sa:shop/web"),
        (COREDNS, "sa:kube-system/coredns"),
        (LBC, "sa:kube-system/aws-load-balancer-controller"),
        (PROM, "sa:monitoring/prometheus"),
        (HOSTNET, "sa:kube-system/aws-node"),
    ):
        may(pod, sa, "token_steal")
        may("node:n1", pod, "hosts")
    seen(COREDNS, "sa:kube-system/coredns", "token_use", -60)  # DNS watching endpoints, long before the attack
    seen("ip:203.0.113.9", WEB, "flow", 0)  # the exploit
    seen(WEB, "sa:shop/web", "token_steal", 2)
    seen(WEB, "node:n1", "host_escape", 5)
    # two tokens taken from the node's disk: one used from outside, one from the node's address (a host-network pod's)
    seen("ip:203.0.113.9", "sa:monitoring/prometheus", "token_use", 8)
    seen(HOSTNET, "sa:kube-system/aws-load-balancer-controller", "token_use", 9)
    seen("sa:monitoring/prometheus", "workload:monitoring/cronjobs/compactor", "create_workload", 10)
    seen("sa:kube-system/aws-load-balancer-controller", "sa:kube-system/backdoor", "create_serviceaccount", 11)
    seen(WEB, "ip:198.51.100.200", "flow", 12)  # C2
    seen(WEB, "ip:10.0.0.137", "flow", 13)  # a VPC address (the load balancer's): never blocked
    seen(PROM, "ip:192.0.2.80", "flow", -30)  # Prometheus' own remote-write peer, long before
    return g


@pytest.fixture(scope="module")
def graph() -> nx.MultiDiGraph:
    return escape_graph()


@pytest.fixture(scope="module")
def actions(graph: nx.MultiDiGraph) -> pd.DataFrame:
    return remediation_actions(
        pd.DataFrame(columns=["finding_id", "event_ids"]), graph, networks=[ipaddress.ip_network("10.0.0.0/16")]
    )


def test_paths_tell_reached_from_exposed(graph: nx.MultiDiGraph) -> None:
    how = kf.paths(graph, "ip:203.0.113.9").set_index("node")["how"].to_dict()
    assert how[WEB] == REACHED and how["node:n1"] == REACHED
    assert {how[p] for p in (COREDNS, LBC, PROM, HOSTNET)} == {EXPOSED}
    assert how["sa:kube-system/coredns"] == EXPOSED  # its token sat on the node; nothing shows it used
    # the two stolen tokens: used from outside, and from the node's address through a host-network pod
    assert how["sa:monitoring/prometheus"] == REACHED and how["sa:kube-system/aws-load-balancer-controller"] == REACHED
    assert how["workload:monitoring/cronjobs/compactor"] == REACHED and how["sa:kube-system/backdoor"] == REACHED


def test_co_tenants_are_never_quarantined_nor_redeployed(actions: pd.DataFrame, graph: nx.MultiDiGraph) -> None:
    isolated = set(actions.loc[actions["action"].str.startswith("isolate pod"), "target"])
    assert isolated == {WEB}
    assert (
        not actions["action"]
        .str.contains("coredns|aws-load-balancer-controller|prometheus", regex=True)[
            actions["control"].isin(["NetworkPolicy", "redeploy"])
        ]
        .any()
    )
    assert isolated_pods(kf.paths(graph, "ip:203.0.113.9"), graph) == [WEB]


def test_exposed_tokens_are_rotated_and_the_node_rebuilt(actions: pd.DataFrame) -> None:
    rotate = actions[actions["control"] == "credential rotation"].set_index("target")["action"]
    dns = rotate["sa:kube-system/coredns"]
    assert (
        "within the attacker's reach" in dns
        and "do not isolate" in dns.lower()
        and "drain and deletion of the node" in dns
    )
    assert "do not delete the pods one by one" in dns  # a DaemonSet pod would come back on the node the attacker holds
    # the stolen ones are rotated as credentials the attacker held: a new account, a new UID
    assert rotate["sa:monitoring/prometheus"].startswith(
        "rotate service account monitoring/prometheus: delete it and create it again"
    )
    assert rotate["sa:kube-system/aws-load-balancer-controller"].startswith(
        "rotate service account kube-system/aws-load-balancer-controller"
    )
    assert ((actions["target"] == "node:n1") & (actions["kind"] == "rebuild")).any()


def test_what_the_attacker_made_is_deleted_and_only_outside_addresses_blocked(actions: pd.DataFrame) -> None:
    eradicate = actions[actions["phase"] == "eradicate"]["action"].str.cat(sep="\n")
    assert (
        "delete the cronjob monitoring/compactor" in eradicate
        and "delete the service account kube-system/backdoor" in eradicate
    )
    blocked = set(actions.loc[actions["control"] == "network block", "target"])
    assert blocked == {
        "ip:203.0.113.9",
        "ip:198.51.100.200",
    }  # source and C2; not the VPC address, not Prometheus' old peer


def test_a_reached_system_pod_is_replaced_and_drained_not_quarantined() -> None:
    g = escape_graph()
    g.add_edge(
        "sa:shop/web",
        COREDNS,
        key="exec",
        type="exec",
        observed=True,
        first_seen=T0 + pd.Timedelta(minutes=3),
        last_seen=T0 + pd.Timedelta(minutes=3),
        count=1,
        bytes=0,
        event_ids=["ev:exec-dns"],
    )
    g.remove_edge(WEB, "node:n1", key="host_escape")  # no escape this time: only the exec into DNS
    g.add_edge(
        WEB,
        "sa:shop/web",
        key="token_use",
        type="token_use",
        observed=True,
        first_seen=T0 + pd.Timedelta(minutes=2),
        last_seen=T0 + pd.Timedelta(minutes=2),
        count=1,
        bytes=0,
        event_ids=["ev:use"],
    )
    a = remediation_actions(
        pd.DataFrame(columns=["finding_id", "event_ids"]), g, scope=attack_scope(g, sources=["ip:203.0.113.9"])
    )
    dns = a[a["target"] == COREDNS]
    assert len(dns) == 1 and dns["control"].iloc[0] == "replace system component"
    text = dns["action"].iloc[0]
    assert "never quarantine" in text and "k8s-app" not in text  # said why, from what the graph knows
    assert "answers every name lookup" in text and "Corefile" in text  # the component's own risk and safe procedure
    assert ((a["target"] == "node:n1") & (a["kind"] == "cordon")).any() and (
        (a["target"] == "node:n1") & (a["kind"] == "rebuild")
    ).any()
    assert not ((a["target"] == COREDNS) & a["action"].str.startswith("isolate")).any()
    assert not a["target"].str.contains("Deployment/coredns").any()  # no redeploy either


def test_a_look_alike_the_attacker_created_in_kube_system_is_isolated() -> None:
    g = escape_graph()
    fake = "pod:kube-system/kube-proxy-x7k2p"
    g.add_node(fake, kind="pod", label=fake[4:], host="n1")
    g.add_edge(
        WEB,
        "sa:shop/web",
        key="token_use",
        type="token_use",
        observed=True,
        first_seen=T0 + pd.Timedelta(minutes=1),
        last_seen=T0 + pd.Timedelta(minutes=1),
        count=1,
        bytes=0,
        event_ids=["ev:use"],
    )
    g.add_edge(
        "sa:shop/web",
        fake,
        key="create_pod",
        type="create_pod",
        observed=True,
        first_seen=T0 + pd.Timedelta(minutes=4),
        last_seen=T0 + pd.Timedelta(minutes=4),
        count=1,
        bytes=0,
        event_ids=["ev:mk"],
    )
    a = remediation_actions(
        pd.DataFrame(columns=["finding_id", "event_ids"]), g, scope=attack_scope(g, sources=["ip:203.0.113.9"])
    )
    assert ((a["target"] == fake) & a["action"].str.startswith("isolate pod")).any()
    assert ((a["target"] == fake) & a["action"].str.startswith("delete the pod")).any()


@pytest.mark.parametrize(
    "namespace, name, labels, workload, priority, system",
    [
        ("kube-system", "coredns-5d78c9869d-abcde", {"k8s-app": "kube-dns"}, "coredns", None, True),
        ("monitoring", "prometheus-0", {"app.kubernetes.io/name": "prometheus"}, "prometheus", None, True),
        ("calico-system", "calico-node-x1", {}, "calico-node", None, True),
        ("ingress", "lb-1", {}, "aws-load-balancer-controller", None, True),
        ("storage", "ebs-csi-node-abc", {}, "ebs-csi-node", None, True),
        ("tools", "agent-1", {}, "agent", "system-node-critical", True),
        ("shop", "web-7d9f-x2", {"app": "web"}, "web", None, False),
        ("payments", "api-5h-88", {"app": "api"}, "api", "high", False),
        ("shop", "promo-banner-1", {"app": "promo-banner"}, "promo-banner", None, False),
    ],
)
def test_system_components_are_told_generally(
    namespace: str, name: str, labels: dict[str, str], workload: str, priority: str | None, system: bool
) -> None:
    assert bool(system_component(namespace, name, labels=labels, workload=workload, priority_class=priority)) is system
