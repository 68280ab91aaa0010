"""The lateral-movement picture, panel and exports: the layout follows the attack, observed
edges are solid and possible ones dashed, attacker strings are escaped, and the files open in
networkx again with every attribute."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics import views
from k8sforensics.analysis import attack_scope
from k8sforensics.views.network import compromised, layout

WEB = "pod:shop/web-q7rclvtq89-mtpxj"


@pytest.fixture(scope="module")
def graph(sample_case: kf.Case) -> nx.MultiDiGraph:
    return kf.lateral_movement(sample_case)


def test_layout_runs_left_to_right_in_the_order_of_compromise(graph, sample_truth: dict) -> None:
    pos = layout(graph).set_index("node")
    path = [
        "ip:198.51.100.66",
        WEB,
        "sa:shop/web",
        "pod:payments/api-5hftq2dbls-88flg",
        "pod:kube-system/kube-proxy-x7k2p",
        "node:node-2",
    ]
    xs = [pos.loc[n, "x"] for n in path]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    assert (pos.loc[path, "status"] == "compromised").all()
    assert pos.loc["ip:203.0.113.77", "status"] == "accessed"  # the C2 address the escaped pod called
    possible = pos[pos["status"] == "possible"]
    assert len(possible) and possible["x"].min() > pos.loc[pos["status"] != "possible", "x"].max()
    assert "pod:shop/cart-6nrgvm7tk2-dlgzj" not in set(pos.index[pos["status"] == "compromised"])  # the IP-reuse trap


def test_figure_styles_observed_solid_and_possible_dashed(graph) -> None:
    fig = views.lateral_movement_figure(graph)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert {t.line.dash for t in lines if "(observed)" in t.name} == {"solid"}
    assert {t.line.dash for t in lines if "(possible)" in t.name} == {"dash"}
    hover = " ".join(h for t in fig.data if t.mode == "markers" and t.hovertext for h in t.hovertext)
    assert "host_escape" in hover and "evidence: " in hover and "RoleBinding" in hover
    nodes = {t.name for t in fig.data if t.mode == "markers+text"}
    assert {"ip", "pod", "sa", "node"} <= nodes
    observed_only = views.lateral_movement_figure(graph, possible=False)
    assert not [t for t in observed_only.data if t.mode == "lines" and "(possible)" in t.name]


def test_figure_escapes_attacker_strings() -> None:
    evil = "<img src=x onerror=alert(1)>"
    g = nx.MultiDiGraph()
    t = pd.Timestamp("2026-03-10T10:00:00Z")
    for n in ("ip:198.51.100.9", f"pod:ns/{evil}", f"user:{evil}"):
        g.add_node(n, kind=n.split(":")[0], label=n.split(":", 1)[1])
    g.add_edge(
        "ip:198.51.100.9",
        f"pod:ns/{evil}",
        key="flow",
        type="flow",
        observed=True,
        first_seen=t,
        last_seen=t,
        count=1,
        bytes=0,
        event_ids=[evil],
    )
    g.add_edge(
        f"user:{evil}",
        f"pod:ns/{evil}",
        key="exec?",
        type="exec",
        observed=False,
        first_seen=pd.NaT,
        last_seen=pd.NaT,
        count=0,
        bytes=0,
        event_ids=[],
        reason=evil,
        basis=evil,
        fix="",
        cuttable=True,
    )
    fig = views.lateral_movement_figure(g, source="ip:198.51.100.9")
    text = json.dumps(fig.to_plotly_json(), default=str)
    assert "<img" not in text and "&lt;img" in text


def test_panel_redraws_for_start_window_and_edge_kind(graph) -> None:
    panel = views.lateral_movement_panel(graph)
    (pick, show), window, figure, table = panel.children[0].children, *panel.children[1:]
    both = {t.name for t in figure.data}
    show.value = "observed"
    assert not any("(possible)" in t.name for t in figure.data if t.name)
    show.value = "observed + possible"
    pick.value = WEB
    assert "blast radius of pod:shop/web" in table.value and "node:node-2" in table.value
    window.index = (0, 0)  # the first instant: nothing but the scan
    assert {t.name for t in figure.data} != both


def test_exports_keep_every_edge_and_its_evidence(graph, tmp_path: Path) -> None:
    back = nx.read_graphml(views.write_graphml(graph, tmp_path / "g.graphml"), force_multigraph=True)
    assert back.number_of_nodes() == graph.number_of_nodes() and back.number_of_edges() == graph.number_of_edges()
    escape = back.get_edge_data("pod:kube-system/kube-proxy-x7k2p", "node:node-2")
    observed = next(d for d in escape.values() if d["observed"] is True)
    assert json.loads(observed["event_ids"]) and observed["first_seen"].startswith("2026-03-10T10:33")
    doc = json.loads(views.write_cytoscape_json(graph, tmp_path / "g.cyjs").read_text())
    edges = doc["elements"]["edges"]
    assert len(doc["elements"]["nodes"]) == graph.number_of_nodes() and len(edges) == graph.number_of_edges()
    e = next(x["data"] for x in edges if x["data"]["source"] == WEB and x["data"]["type"] == "token_use")
    assert e["observed"] is True and e["event_ids"] and e["interaction"] == "token_use"
    assert {x["data"]["id"] for x in doc["elements"]["nodes"]} >= {e["source"], e["target"]}


def test_the_picture_reads_the_attack_scope(graph) -> None:
    # the same nodes, times and parents as the scope remediation reads
    scope = attack_scope(graph)
    shown = compromised(graph).set_index("node")
    assert (
        list(shown.index) == list(scope.paths["node"])
        and shown.loc[WEB, "parent"] == scope.paths.set_index("node").loc[WEB, "parent"]
    )


def test_with_no_outside_address_the_foothold_is_the_start() -> None:
    t = pd.Timestamp("2026-01-01T10:00:00Z")
    g = nx.MultiDiGraph()
    for u, v, kind in (
        ("ip:10.0.0.137", "pod:shop/web-1", "flow"),
        ("pod:shop/web-1", "sa:shop/web", "token_use"),
        ("sa:shop/web", "pod:pay/api-1", "exec"),
        ("sa:ops/admin", "pod:ops/tool-1", "exec"),
    ):
        for n in (u, v):
            g.add_node(n, kind=n.split(":")[0])
        g.add_edge(
            u, v, key=kind, type=kind, observed=True, first_seen=t, last_seen=t, count=1, bytes=0, event_ids=["e"]
        )
    shown = compromised(g)
    assert shown["node"].tolist() == [
        "pod:shop/web-1",
        "sa:shop/web",
        "pod:pay/api-1",
    ]  # not the operator's unrelated exec
    assert set(compromised(nx.MultiDiGraph(g.subgraph(["sa:ops/admin", "pod:ops/tool-1"])))["node"]) == {
        "sa:ops/admin",
        "pod:ops/tool-1",
    }
