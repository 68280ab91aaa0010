"""Blast radius and edges to cut on small hand-built graphs whose answers are known."""

from __future__ import annotations

import networkx as nx
import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.analysis import graph_patient_zero

T0 = pd.Timestamp("2026-03-10T10:00:00Z")


def graph(*edges: tuple) -> nx.MultiDiGraph:
    """Edges as (source, target, type, "observed" | "possible" | "structure")."""
    g = nx.MultiDiGraph()
    for i, (u, v, kind, status) in enumerate(edges):
        for n in (u, v):
            g.add_node(n, kind=n.split(":")[0], label=n.split(":", 1)[1])
        if status == "observed":
            g.add_edge(
                u,
                v,
                key=kind,
                type=kind,
                observed=True,
                first_seen=T0 + pd.Timedelta(minutes=i),
                last_seen=T0 + pd.Timedelta(minutes=i),
                count=1,
                bytes=0,
                event_ids=[f"ev:{i}"],
            )
        else:
            g.add_edge(
                u,
                v,
                key=f"{kind}?{i}",
                type=kind,
                observed=False,
                first_seen=pd.NaT,
                last_seen=pd.NaT,
                count=0,
                bytes=0,
                event_ids=[],
                reason=f"grant {i}",
                basis=f"binding {i}",
                fix=f"remove grant {i}",
                cuttable=status == "possible",
            )
    return g


def test_blast_radius_observed_only_and_possible() -> None:
    g = graph(
        ("pod:a", "sa:a", "token_steal", "observed"),
        ("sa:a", "pod:b", "exec", "possible"),
        ("pod:b", "node:n", "host_escape", "possible"),
        ("node:n", "pod:c", "hosts", "structure"),
        ("pod:a", "pod:z", "flow", "observed"),
        ("pod:x", "pod:a", "exec", "observed"),
    )
    observed = kf.blast_radius(g, "pod:a", observed_only=True)
    assert observed["node"].tolist() == ["sa:a"]
    full = kf.blast_radius(g, "pod:a").set_index("node")
    assert full["hops"].to_dict() == {"sa:a": 1, "pod:b": 2, "node:n": 3, "pod:c": 4}
    assert full.loc["sa:a", "observed"] and not full.loc["pod:b", "observed"]
    assert full.loc["pod:c", "parent"] == "node:n" and full.loc["pod:c", "via"] == "hosts"
    assert full.loc["sa:a", "event_ids"] == ["ev:0"] and full.loc["pod:b", "reason"] == "grant 1"
    # a pod-to-pod flow is not control, and nothing flows backwards
    assert "pod:z" not in full.index and "pod:x" not in full.index


def test_blast_radius_takes_the_fewest_hops_and_prefers_observed_edges() -> None:
    g = graph(
        ("sa:s", "pod:p", "exec", "possible"),
        ("sa:s", "pod:p", "exec", "observed"),
        ("sa:s", "sa:m", "impersonate", "possible"),
        ("sa:m", "node:n", "create_pod", "possible"),
        ("pod:p", "sa:q", "token_steal", "possible"),
        ("sa:q", "node:n", "node_proxy", "possible"),
    )
    r = kf.blast_radius(g, "sa:s").set_index("node")
    assert r.loc["pod:p", "via"] == "exec" and r.loc["pod:p", "observed"]
    assert r.loc["node:n", "hops"] == 2 and r.loc["node:n", "parent"] == "sa:m"


def test_blast_radius_from_an_outside_address_enters_through_its_flows() -> None:
    g = graph(
        ("ip:203.0.113.9", "pod:web", "flow", "observed"),
        ("pod:web", "sa:web", "token_steal", "possible"),
        ("pod:web", "pod:db", "flow", "observed"),
    )
    r = kf.blast_radius(g, "ip:203.0.113.9")
    assert r["node"].tolist() == ["pod:web", "sa:web"]


def test_cut_at_the_bottleneck() -> None:
    # two ways from s to t, both through one grant s → a
    g = graph(
        ("sa:s", "sa:a", "impersonate", "possible"),
        ("sa:a", "pod:b1", "exec", "possible"),
        ("sa:a", "pod:b2", "exec", "possible"),
        ("pod:b1", "node:t", "host_escape", "possible"),
        ("pod:b2", "node:t", "host_escape", "possible"),
    )
    cut = kf.edges_to_cut(g, "sa:s", "node:t")
    assert cut[["source", "target", "type"]].values.tolist() == [["sa:s", "sa:a", "impersonate"]]
    assert cut["cuttable"].all() and cut["fix"].tolist() == ["remove grant 0"]
    # removing the listed edge really disconnects them
    g.remove_edge("sa:s", "sa:a")
    assert kf.blast_radius(g, "sa:s").empty


def test_a_diamond_needs_both_branches_cut() -> None:
    g = graph(
        ("sa:s", "pod:a", "exec", "possible"),
        ("sa:s", "pod:b", "exec", "possible"),
        ("pod:a", "node:t", "host_escape", "possible"),
        ("pod:b", "node:t", "host_escape", "possible"),
        ("node:t", "pod:c", "hosts", "structure"),
    )
    cut = kf.edges_to_cut(g, "sa:s", "pod:c")
    assert len(cut) == 2 and set(cut["type"]) in ({"exec"}, {"host_escape"})


def test_parallel_grants_count_and_observed_edges_are_not_configuration() -> None:
    # s → a happened (observed, nothing in the inventory explains it); a → t is granted twice
    g = graph(
        ("ip:198.51.100.1", "sa:a", "token_use", "observed"),
        ("sa:a", "pod:t", "exec", "possible"),
        ("sa:a", "pod:t", "exec", "possible"),
        ("sa:a", "sa:m", "impersonate", "possible"),
        ("sa:m", "pod:t", "exec", "possible"),
        ("sa:m", "pod:t", "attach", "possible"),
        ("sa:m", "pod:t", "port_forward", "possible"),
    )
    cut = kf.edges_to_cut(g, "ip:198.51.100.1", "pod:t")
    assert sorted(map(tuple, cut[["source", "target"]].values.tolist())) == [
        ("sa:a", "pod:t"),
        ("sa:a", "pod:t"),
        ("sa:a", "sa:m"),
    ]
    assert cut["fix"].tolist() == ["remove grant 1", "remove grant 2", "remove grant 3"]


def test_an_observed_only_link_is_listed_as_not_cuttable() -> None:
    g = graph(
        ("pod:a", "sa:x", "token_use", "observed"),
        ("sa:x", "node:n", "create_pod", "observed"),
        ("node:n", "pod:b", "hosts", "structure"),
    )
    cut = kf.edges_to_cut(g, "pod:a", "pod:b")
    assert len(cut) == 1 and not cut["cuttable"].iloc[0] and cut["observed"].iloc[0]
    assert "rotate" in cut["fix"].iloc[0] or "delete" in cut["fix"].iloc[0]


def test_structure_is_never_cut() -> None:
    g = graph(("sa:s", "node:n", "create_pod", "possible"), ("node:n", "pod:p", "hosts", "structure"))
    cut = kf.edges_to_cut(g, "sa:s", "pod:p")
    assert cut[["source", "target", "type", "cuttable"]].values.tolist() == [["sa:s", "node:n", "create_pod", True]]


def test_several_sources_and_targets() -> None:
    g = graph(
        ("pod:a", "sa:a", "token_steal", "possible"),
        ("pod:b", "sa:b", "token_steal", "possible"),
        ("sa:a", "pod:x", "exec", "possible"),
        ("sa:b", "pod:y", "exec", "possible"),
    )
    assert len(kf.edges_to_cut(g, ["pod:a", "pod:b"], ["pod:x", "pod:y"])) == 2
    assert len(kf.edges_to_cut(g, "pod:a", ["pod:x", "pod:y"])) == 1


def test_unreachable_unknown_and_same_node() -> None:
    g = graph(("sa:s", "pod:a", "exec", "possible"), ("sa:t", "pod:b", "exec", "possible"))
    assert kf.edges_to_cut(g, "sa:s", "pod:b").empty
    with pytest.raises(KeyError, match="not in the graph"):
        kf.edges_to_cut(g, "sa:s", "pod:nope")
    with pytest.raises(ValueError, match="both sides"):
        kf.edges_to_cut(g, ["sa:s", "pod:a"], "pod:a")
    with pytest.raises(KeyError, match="not in the graph"):
        kf.blast_radius(g, "sa:nope")


def test_patient_zero_from_a_graph_ranks_the_pod_control_left_from() -> None:
    g = graph(
        ("ip:198.51.100.1", "pod:shop/web", "flow", "observed"),
        ("ip:198.51.100.1", "node:n1", "flow_denied", "observed"),
        ("ip:192.0.2.50", "pod:shop/web", "flow", "observed"),
        ("pod:shop/web", "sa:shop/web", "token_use", "observed"),
        ("sa:shop/web", "pod:pay/api", "exec", "observed"),
        ("pod:pay/api", "sa:pay/api", "token_steal", "observed"),
        ("ip:192.0.2.7", "pod:shop/cart", "flow", "observed"),
    )
    p0 = graph_patient_zero(g)
    assert p0["entity"].tolist() == ["shop/web", "pay/api"]
    assert p0.iloc[0]["came_from"] == "198.51.100.1"  # the one that also probed a node
    assert "token_use → sa:shop/web" in p0.iloc[0]["reason"] and "ev:3" in p0.iloc[0]["reason"]
