"""The lateral-movement picture, panel and exports: the layout follows the attack, observed
edges are solid and possible ones dashed, attacker strings are escaped, and the files open in
networkx again with every attribute."""

from __future__ import annotations

import html
import json
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics import node_ids, views
from k8sforensics.analysis import attack_scope
from k8sforensics.views.network import compromised, layout, legend_px

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
    nodes = {t.name for t in fig.data if t.mode == "markers" and t.showlegend is not False}
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


# ------------------------------------------------------------------ the figure as a report

T0 = pd.Timestamp("2026-03-10T10:00:00Z")


def _edge(g: nx.MultiDiGraph, u: str, v: str, kind: str, minutes: float, *, observed: bool = True, **attrs) -> None:
    for n in (u, v):
        if n not in g:
            g.add_node(n, kind=node_ids.kind(n), label=node_ids.label(n))
    t = T0 + pd.Timedelta(minutes=minutes)
    if observed:
        g.add_edge(
            u, v, key=kind, type=kind, observed=True, first_seen=t, last_seen=t, count=1, bytes=0, event_ids=["e1"]
        )
    else:
        g.add_edge(
            u,
            v,
            key=f"{kind}?",
            type=kind,
            observed=False,
            first_seen=attrs.get("first_seen", pd.NaT),
            last_seen=attrs.get("last_seen", pd.NaT),
            count=0,
            bytes=0,
            event_ids=[],
            reason=attrs.get("reason", "rbac"),
            basis="",
            fix="",
            cuttable=True,
        )


@pytest.fixture()
def breach() -> nx.MultiDiGraph:
    """A web pod broken into from outside; its account makes a CronJob that runs eleven times,
    execs into a pod and escapes to its node (three more pods and their accounts live there),
    and may bind any role and read every secret; from there forty workloads could be patched."""
    g = nx.MultiDiGraph()
    web, sa, cron = (
        node_ids.pod("shop", "web-1"),
        node_ids.service_account("shop", "web"),
        node_ids.workload("ops", "cronjobs", "backup"),
    )
    _edge(g, node_ids.ip("198.51.100.7"), web, "flow", 0)
    _edge(g, web, sa, "token_steal", 2)
    _edge(g, sa, cron, "create_workload", 5)
    for i in range(11):
        run = node_ids.pod("ops", f"backup-2955{i:04d}-x{i}")
        start = T0 + pd.Timedelta(minutes=30 * (i + 1))
        _edge(g, cron, run, "runs", 0, observed=False, first_seen=start, last_seen=start + pd.Timedelta(minutes=1))
        g.nodes[run].update(namespace="ops", workload="CronJob backup", host="node-1")
    api = node_ids.pod("pay", "api-1")
    _edge(g, sa, api, "exec", 8)
    _edge(g, api, node_ids.node("node-2"), "host_escape", 9)
    g.nodes[api].update(namespace="pay", workload="Deployment api", host="node-2")
    for name in ("db-0", "cache-1", "<img src=x onerror=alert(1)>"):
        pod = node_ids.pod("data", name)
        _edge(g, node_ids.node("node-2"), pod, "hosts", 0, observed=False)
        _edge(g, pod, node_ids.service_account("data", name), "token_steal", 0, observed=False)
        g.nodes[pod].update(namespace="data", workload=None, host="node-2")
    _edge(g, sa, node_ids.role(None, "*"), "bind_role", 0, observed=False)
    _edge(g, sa, node_ids.secret("*", "*"), "read_secret", 0, observed=False)
    for i in range(40):
        _edge(
            g,
            sa,
            node_ids.workload("team", "deployments", f"service-with-a-rather-long-name-{i}"),
            "patch",
            0,
            observed=False,
        )
    _edge(g, node_ids.user("operator"), node_ids.pod("ops", "unrelated"), "exec", 1)  # outside the attack
    return g


def test_the_runs_of_one_workload_are_one_node_with_a_count(breach) -> None:
    pos = layout(breach, source="ip:198.51.100.7")
    runs = pos[pos["group"].notna()]
    assert len(runs) == 1 and runs.iloc[0]["label"] == "ops/backup ×11" and len(runs.iloc[0]["members"]) == 11
    assert runs.iloc[0]["status"] == "compromised" and "backup" in _hover(
        views.lateral_movement_figure(breach, source="ip:198.51.100.7"), "11 runs of CronJob backup"
    )


def test_demo_cronjob_runs_are_one_node(graph) -> None:
    pos = layout(graph)
    runs = pos[pos["group"] == "CronJob log-rotate"]
    assert len(runs) == 1 and runs.iloc[0]["label"].endswith("×6")
    assert not pos["label"].str.contains("log-rotate-2955").any()


def test_co_tenants_and_wildcards_fold_behind_their_node(breach) -> None:
    pos = layout(breach, source="ip:198.51.100.7").set_index("node")
    drawn = {m for ms in pos["members"] for m in ms}
    tenants = {node_ids.pod("data", "db-0"), node_ids.service_account("data", "db-0")}
    assert not tenants & drawn and tenants <= set(pos.loc[node_ids.node("node-2"), "folded"])
    assert pos.loc[node_ids.node("node-2"), "label"] == "node-2 +3 pods"
    wild = {node_ids.role(None, "*"), node_ids.secret("*", "*")}
    assert not wild & drawn and wild <= set(pos.loc[node_ids.service_account("shop", "web"), "folded"])
    assert not pos["label"].isin(["*", "*/*"]).any()


def test_every_node_is_drawn_or_accounted_for(breach, graph) -> None:
    for g, source in ((breach, "ip:198.51.100.7"), (graph, None)):
        pos = layout(g, source=source)
        drawn = [m for ms in pos["members"] for m in ms]
        folded = [f for fs in pos["folded"] for f in fs]
        everything = drawn + folded
        assert len(everything) == len(set(everything))  # nothing twice
        scope = compromised(g, source)
        assert set(scope["node"]) <= set(everything)
        outside = set(g) - set(everything)
        fig = views.lateral_movement_figure(g, source=source)
        assert f"{len(outside)} outside the attack's reach" in html.unescape(fig.layout.title.subtitle.text)
    pos = layout(breach, source="ip:198.51.100.7", max_per_column=8)
    more = pos[pos["kind"] == "more"]
    assert len(more) == 1 and more.iloc[0]["label"] == f"+{len(more.iloc[0]['members'])} more"
    assert (pos.groupby("column").size() <= 8).all()


def _label_boxes(fig) -> list[tuple[float, float, float, float, str]]:
    """Each label's box in plot pixels, from the figure alone: its axes run in pixels (checked),
    the text is estimated at 6.5 px a character (Chromium measures 5.3–5.9 at 11 px)."""
    m = fig.layout.margin
    assert fig.layout.xaxis.range[1] - fig.layout.xaxis.range[0] == pytest.approx(fig.layout.width - m.l - m.r)
    assert fig.layout.yaxis.range[1] - fig.layout.yaxis.range[0] == pytest.approx(fig.layout.height - m.t - m.b, abs=1)
    boxes = []
    for a in fig.layout.annotations:
        w = len(html.unescape(a.text)) * 6.5 + 4
        bottom = a.y + a.yshift
        boxes.append((a.x - w / 2, bottom, a.x + w / 2, bottom + 15, a.text))
    return boxes


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("which", ["demo", "breach", "crowded"])
def test_no_two_labels_overlap_and_all_fit(which, graph, breach) -> None:
    g, source, most = {
        "demo": (graph, None, 12),
        "breach": (breach, "ip:198.51.100.7", 12),
        "crowded": (breach, "ip:198.51.100.7", 40),
    }[which]
    fig = views.lateral_movement_figure(g, source=source, max_per_column=most)
    boxes = _label_boxes(fig)
    markers = [
        (x - 7, y - 7, x + 7, y + 7)
        for t in fig.data
        if t.mode == "markers" and t.showlegend is not False
        for x, y in zip(t.x, t.y)
    ]
    assert len(boxes) == len(markers) > 5
    for i, a in enumerate(boxes):
        assert a[0] >= 0 and a[2] <= fig.layout.xaxis.range[1], a[4]  # inside the plot
        assert not [b[4] for b in boxes[i + 1 :] if _overlap(a, b)], a[4]
        assert not [mk for mk in markers if _overlap(a, mk)], a[4]
    assert fig.layout.width <= 1214  # the report's column at a 1280 px window


def test_legend_is_below_the_plot(graph) -> None:
    fig = views.lateral_movement_figure(graph)
    legend = fig.layout.legend
    assert legend.orientation == "h" and legend.yref == "container" and legend.y == 0 and legend.yanchor == "bottom"
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert fig.layout.margin.b >= legend_px(names) + 20 and fig.layout.margin.autoexpand is False


def test_long_labels_are_shortened_with_the_full_text_in_the_hover(breach) -> None:
    fig = views.lateral_movement_figure(breach, source="ip:198.51.100.7", max_per_column=40)
    long = [a for a in fig.layout.annotations if "rather-long" in a.hovertext]
    assert long and all(len(a.text) <= 30 and "…" in a.text and a.text != a.hovertext for a in long)
    text = json.dumps(fig.to_plotly_json(), default=str)
    assert "<img" not in text and "&lt;img" in text  # the co-tenant's name, escaped in the node's hover


def _hover(fig, needle: str) -> str:
    return next(h for t in fig.data if t.hovertext is not None for h in t.hovertext if needle in h)
