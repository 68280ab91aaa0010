"""The attack's scope, computed once: the ways in, what control reached from them (held or only
exposed), and where it could still go — on small graphs whose answers are known."""

from __future__ import annotations

import networkx as nx
import pandas as pd

from k8sforensics.analysis import attack_scope, paths
from k8sforensics.analysis.reach import EXPOSED, REACHED, SOURCE

T0 = pd.Timestamp("2026-05-12T10:00:00Z")


def graph(*edges: tuple[str, str, str, int], possible: tuple[tuple[str, str, str], ...] = ()) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    for u, v, kind, minute in edges:
        for n in (u, v):
            g.add_node(n, kind=n.split(":")[0])
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
    for u, v, kind in possible:
        for n in (u, v):
            g.add_node(n, kind=n.split(":")[0])
        g.add_edge(
            u,
            v,
            key=f"{kind}?",
            type=kind,
            observed=False,
            first_seen=pd.NaT,
            last_seen=pd.NaT,
            count=0,
            bytes=0,
            event_ids=[],
            reason="a grant",
            basis="RoleBinding x/y",
            fix="remove it",
            cuttable=True,
        )
    return g


WEB_RCE = graph(
    ("ip:198.51.100.7", "pod:shop/web-1", "flow", 0),
    ("pod:shop/web-1", "sa:shop/web", "token_use", 2),
    ("sa:shop/web", "pod:pay/api-1", "exec", 3),
    possible=(("sa:shop/web", "pod:pay/db-1", "exec"),),
)


def finding(
    entity_type: str,
    entity: str,
    *,
    minute: int,
    severity: str = "high",
    phase: str = "Exploitation",
    user: str | None = None,
    source_ip: str | None = None,
) -> dict:
    ns, _, pod = entity.partition("/") if entity_type == "pod" else (None, "", None)
    return {
        "finding_id": f"f{minute}",
        "kind": "finding",
        "time": T0 + pd.Timedelta(minutes=minute),
        "entity_type": entity_type,
        "entity": entity,
        "namespace": ns,
        "pod": pod,
        "user": user,
        "source_ip": source_ip,
        "severity": severity,
        "kill_chain_phase": phase,
        "title": "t",
        "event_ids": [f"e{minute}"],
    }


def test_the_scope_starts_at_the_way_in_and_follows_control() -> None:
    scope = attack_scope(WEB_RCE)
    assert scope.sources == ["ip:198.51.100.7"] and scope.held_since == {}
    pd.testing.assert_frame_equal(scope.paths, paths(WEB_RCE, ["ip:198.51.100.7"]))
    assert set(scope.held) == {"ip:198.51.100.7", "pod:shop/web-1", "sa:shop/web", "pod:pay/api-1"}
    assert scope.nodes(REACHED, kind="pod") == ["pod:shop/web-1", "pod:pay/api-1"]
    counts = scope.by_kind().set_index("kind")
    assert counts.loc["pod", REACHED] == 2 and counts.loc["ip", SOURCE] == 1 and counts[EXPOSED].sum() == 0
    # where control could still go: a pod the account it holds may exec into
    assert scope.possible[["node", "parent", "via"]].values.tolist() == [["pod:pay/db-1", "sa:shop/web", "exec"]]


def test_given_sources_are_taken_as_they_are() -> None:
    scope = attack_scope(WEB_RCE, sources=["pod:pay/api-1"])
    assert scope.sources == ["pod:pay/api-1"] and scope.nodes() == ["pod:pay/api-1"]
    none = attack_scope(WEB_RCE, sources=[])
    assert none.sources == [] and none.paths.empty and none.possible.empty and none.held == {}


def test_nothing_found_is_an_empty_scope() -> None:
    scope = attack_scope(nx.MultiDiGraph())
    assert scope.sources == [] and list(scope.paths.columns) == [
        "node",
        "kind",
        "reached",
        "parent",
        "via",
        "event_ids",
        "how",
    ]


def test_findings_add_a_foothold_pod_nothing_reaches_and_an_identity_used_from_outside() -> None:
    # an implant that calls out (no way in over the network), and a token used from outside later
    g = graph(
        ("pod:shop/cart-1", "ip:203.0.113.9", "flow", 0),
        ("ip:198.51.100.7", "sa:ci/deployer", "token_use", 5),
        ("sa:ci/deployer", "pod:ci/runner-1", "exec", 6),
    )
    f = pd.DataFrame(
        [
            finding("pod", "shop/cart-1", minute=0, phase="Command & Control"),
            finding(
                "service_account",
                "ci/deployer",
                minute=5,
                severity="critical",
                phase="Actions on Objectives",
                user="system:serviceaccount:ci:deployer",
                source_ip="198.51.100.7",
            ),
        ]
    )
    graph_only = attack_scope(g)
    scope = attack_scope(g, findings=f)
    assert "pod:shop/cart-1" not in graph_only.sources and "pod:shop/cart-1" in scope.sources
    assert "ip:198.51.100.7" in scope.sources  # the address the account was used from, confirmed by the finding
    assert scope.nodes(REACHED) == ["sa:ci/deployer", "pod:ci/runner-1"]


def test_an_identity_only_the_findings_name_is_held_from_its_first_finding() -> None:
    # no edge from outside: the identity is a way in of its own, from the time its finding says
    g = graph(("sa:ci/deployer", "pod:ci/runner-1", "exec", 6), ("sa:ci/deployer", "pod:ci/old-1", "exec", 1))
    f = pd.DataFrame(
        [
            finding(
                "service_account",
                "ci/deployer",
                minute=4,
                severity="critical",
                user="system:serviceaccount:ci:deployer",
                source_ip="198.51.100.7",
            )
        ]
    )
    scope = attack_scope(g, findings=f)
    assert scope.sources == ["sa:ci/deployer"] and scope.held_since == {"sa:ci/deployer": T0 + pd.Timedelta(minutes=4)}
    assert "pod:ci/runner-1" in scope.held and "pod:ci/old-1" not in scope.held  # before it was the attacker's
