"""The lateral-movement graph as a picture, a JupyterLab panel, and files other tools open.

The figure lays the graph out left to right by time of first compromise: the attacker's source,
then each node in the order control reached it (``paths``), then — further right, by hops —
where control could still go over possible edges (``blast_radius``). Nodes are coloured by
kind, edges by type; observed edges are solid, possible ones dashed; an arrow at each edge's
middle carries its hover text (type, times, count, evidence ids or the grant behind it). Every
string from the evidence is escaped before plotly sees it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import node_ids
from ..analysis.graph import REACH_EDGES
from ..analysis.reach import blast_radius
from ..analysis.scope import attack_scope
from .timeline import escape, table_html

if TYPE_CHECKING:
    import ipywidgets
    import networkx as nx
    import plotly.graph_objects as go

KIND_COLOURS = {
    "ip": "#d62728",
    "pod": "#1f77b4",
    "sa": "#ff7f0e",
    "user": "#9467bd",
    "group": "#c5b0d5",
    "node": "#2ca02c",
    "secret": "#8c564b",
    "binding": "#e377c2",
    "workload": "#17becf",
    "role": "#7f7f7f",
}
EDGE_COLOURS = {
    "flow": "#9ecae1",
    "flow_denied": "#fdae6b",
    "exec": "#d62728",
    "attach": "#d62728",
    "debug": "#d62728",
    "port_forward": "#ff9896",
    "node_proxy": "#d62728",
    "token_use": "#ff7f0e",
    "token_steal": "#ff7f0e",
    "token_request": "#ff7f0e",
    "impersonate": "#ff7f0e",
    "create_pod": "#2ca02c",
    "create_workload": "#2ca02c",
    "patch": "#bcbd22",
    "read_secret": "#8c564b",
    "bind_role": "#e377c2",
    "grants": "#e377c2",
    "use_binding": "#f7b6d2",
    "host_escape": "#000000",
    "hosts": "#98df8a",
    "runs": "#17becf",
    "member_of": "#c5b0d5",
}


def compromised(graph: nx.MultiDiGraph, source: str | None = None) -> pd.DataFrame:
    """The nodes control reached over observed edges, with when: the attack's scope from
    ``source`` (by default from the way in the graph shows: ``attack_scope``), else — no way in
    known — every node an observed control edge reached, at that edge's first time."""
    scope = attack_scope(graph, sources=None if source is None else [source])
    if scope.sources:
        return scope.paths[["node", "reached", "parent", "via"]]
    rows: dict[str, tuple[Any, str | None, str | None]] = {}
    for u, v, d in graph.edges(data=True):
        if d.get("observed") and d["type"] in REACH_EDGES:
            for n, t in ((u, d["first_seen"] - pd.Timedelta(microseconds=1)), (v, d["first_seen"])):
                if n not in rows or t < rows[n][0]:
                    rows[n] = (t, u if n == v else None, d["type"] if n == v else None)
    return pd.DataFrame(
        [(n, t, p, via) for n, (t, p, via) in rows.items()], columns=["node", "reached", "parent", "via"]
    )


def layout(
    graph: nx.MultiDiGraph, *, source: str | None = None, possible: bool = True, max_nodes: int = 120
) -> pd.DataFrame:
    """Which nodes the figure shows and where: ``node, kind, status, x, y, reached, hops, parent,
    via``. ``status`` is ``compromised`` (control reached it), ``accessed`` (an outside address a
    compromised node connected to — C2, exfiltration — or a secret it read) or ``possible`` (where control could still go,
    with the ``parent`` and edge ``via`` which). x is the order of first compromise or contact;
    possible nodes sit to the right, by hops; y spreads a column."""
    reached = compromised(graph, source).assign(status="compromised", hops=0)
    done = set(reached["node"])
    contacts: dict[str, Any] = {}
    for u, v, d in graph.edges(data=True):
        if (
            u in done
            and v not in done
            and d.get("observed")
            and ((d["type"] == "flow" and node_ids.is_a(v, "ip")) or d["type"] == "read_secret")
        ):
            contacts[v] = min(contacts.get(v, d["first_seen"]), d["first_seen"])
    contacted = pd.DataFrame(
        {
            "node": list(contacts),
            "reached": list(contacts.values()),
            "parent": None,
            "via": None,
            "status": "accessed",
            "hops": 0,
        }
    )
    shown = pd.concat([x for x in (reached, contacted) if len(x)], ignore_index=True) if len(reached) else reached
    if shown.empty:
        return pd.DataFrame(columns=["node", "kind", "status", "x", "y", "reached", "hops", "parent", "via"])
    times = pd.to_datetime(shown["reached"], utc=True)
    shown = shown.assign(x=times.rank(method="dense", na_option="top").astype(int) - 1)  # the source (no time) first
    if possible:
        radius = blast_radius(graph, reached["node"].tolist())
        radius = radius[~radius["node"].isin(set(shown["node"]))].head(max(0, max_nodes - len(shown)))
        shown = pd.concat(
            [
                shown,
                pd.DataFrame(
                    {
                        "node": radius["node"],
                        "reached": pd.NaT,
                        "parent": radius["parent"],
                        "via": radius["via"],
                        "status": "possible",
                        "hops": radius["hops"],
                        "x": int(shown["x"].max()) + radius["hops"],
                    }
                ),
            ],
            ignore_index=True,
        )
    shown = shown.head(max_nodes).assign(kind=lambda d: [graph.nodes[n].get("kind") for n in d["node"]])
    shown = shown.sort_values(["x", "kind", "node"], kind="stable")
    shown["y"] = shown.groupby("x").cumcount() - (shown.groupby("x")["node"].transform("size") - 1) / 2
    return shown.reset_index(drop=True)[["node", "kind", "status", "x", "y", "reached", "hops", "parent", "via"]]


def lateral_movement_figure(
    graph: nx.MultiDiGraph,
    *,
    source: str | None = None,
    observed: bool = True,
    possible: bool = True,
    max_nodes: int = 120,
    title: str = "Lateral movement",
) -> go.Figure:
    """The graph around the attack: what control reached and the outside addresses it talked
    to (solid edges: every observed edge among them) and, with ``possible=True``, where control
    could still go (dashed: the possible edge that reaches each such node first). ``source`` is
    where to start (default: the way in, ``attack_scope``)."""
    import plotly.graph_objects as go

    pos = layout(graph, source=source, possible=possible, max_nodes=max_nodes)
    fig = go.Figure()
    if pos.empty:
        fig.update_layout(title=escape(title) + " — nothing reached", template="plotly_white")
        return fig
    at = {n: (x, y) for n, x, y in zip(pos["node"], pos["x"], pos["y"])}
    seen_nodes = set(pos.loc[pos["status"] != "possible", "node"])
    tree = {
        (p, n, via) for n, p, via, st in zip(pos["node"], pos["parent"], pos["via"], pos["status"]) if st == "possible"
    }
    groups: dict[tuple[str, bool], list[tuple[str, str, dict[str, Any]]]] = {}
    for u, v, d in graph.edges(data=True):
        if u == v or u not in at or v not in at:
            continue
        if d.get("observed") and observed and u in seen_nodes and v in seen_nodes:
            groups.setdefault((d["type"], True), []).append((u, v, d))
        elif (u, v, d["type"]) in tree and (possible or d.get("observed")):
            groups.setdefault((d["type"], bool(d.get("observed"))), []).append((u, v, d))
    for (kind, seen), edges in sorted(groups.items(), key=lambda g: (not g[0][1], g[0][0])):
        fig.add_traces(_edge_traces(kind, seen, edges, at))
    for kind, g in pos.groupby("kind", sort=False):
        hover = [_node_hover(graph, n, t) for n, t in zip(g["node"], g["reached"])]
        labels = [escape(_short(graph.nodes[n].get("label", n))) for n in g["node"]]
        # neighbouring columns label above and below, so long names do not run into each other
        where = ["top center" if x % 2 == 0 else "bottom center" for x in g["x"]]
        fig.add_trace(
            go.Scatter(
                x=g["x"],
                y=g["y"],
                mode="markers+text",
                name=escape(kind),
                text=labels,
                textposition=where,
                hovertext=hover,
                hoverinfo="text",
                marker={
                    "size": 16,
                    "color": KIND_COLOURS.get(str(kind), "#bbbbbb"),
                    "line": {"width": 1, "color": "#333"},
                },
                legendgroup="nodes",
                legendgrouptitle_text="nodes",
            )
        )
    ticks = pos.drop_duplicates("x").sort_values("x")
    tick_text = [
        escape(pd.Timestamp(t).strftime("%H:%M:%S")) if pd.notna(t) else ("start" if h == 0 else f"+{h} hop(s)")
        for t, h in zip(ticks["reached"], ticks["hops"])
    ]
    fig.update_layout(
        title=escape(title),
        template="plotly_white",
        height=max(420, 60 * int(pos.groupby("x").size().max()) + 160),
        xaxis={
            "tickvals": ticks["x"].tolist(),
            "ticktext": tick_text,
            "title": "first compromise (UTC) → could still reach",
            "showgrid": False,
            "zeroline": False,
        },
        yaxis={"visible": False},
        hovermode="closest",
        legend={"groupclick": "toggleitem"},
    )
    return fig


def _edge_traces(
    kind: str, seen: bool, edges: list[tuple[str, str, dict[str, Any]]], at: dict[str, tuple[float, float]]
) -> list[Any]:
    import plotly.graph_objects as go

    xs: list[Any] = []
    ys: list[Any] = []
    mx: list[Any] = []
    my: list[Any] = []
    sizes: list[int] = []
    hover: list[str] = []
    for u, v, d in edges:
        (x0, y0), (x1, y1) = at[u], at[v]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
        # the arrow: a marker at the middle pointing along the edge (angle from the point before it)
        mx += [x0, (x0 + x1) / 2, None]
        my += [y0, (y0 + y1) / 2, None]
        sizes += [0, 12, 0]
        text = _edge_hover(u, v, d)
        hover += [text, text, ""]
    name = f"{kind} ({'observed' if seen else 'possible'})"
    colour = EDGE_COLOURS.get(kind, "#999999")
    line = {"color": colour, "width": 2.5 if seen else 1.2, "dash": "solid" if seen else "dash"}
    group = "observed" if seen else "possible"
    return [
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            line=line,
            name=escape(name),
            hoverinfo="skip",
            legendgroup=group,
            legendgrouptitle_text=group,
            opacity=1.0 if seen else 0.6,
        ),
        go.Scatter(
            x=mx,
            y=my,
            mode="markers",
            marker={"symbol": "arrow", "angleref": "previous", "size": sizes, "color": colour},
            hovertext=hover,
            hoverinfo="text",
            showlegend=False,
            legendgroup=group,
        ),
    ]


def _short(label: str, n: int = 28) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def _node_hover(graph: nx.MultiDiGraph, node: str, reached: Any) -> str:
    attrs = graph.nodes[node]
    lines = [f"<b>{escape(node)}</b>", escape(attrs.get("kind"))]
    if attrs.get("workload"):
        lines.append("workload " + escape(attrs["workload"]))
    if attrs.get("host"):
        lines.append("on node " + escape(attrs["host"]))
    if pd.notna(reached):
        lines.append("first compromised " + escape(pd.Timestamp(reached).strftime("%Y-%m-%d %H:%M:%S")) + " UTC")
    return "<br>".join(lines)


def _edge_hover(u: str, v: str, d: dict[str, Any]) -> str:
    head = f"<b>{escape(d['type'])}</b> {'observed' if d.get('observed') else 'possible'}<br>{escape(u)} → {escape(v)}"
    if d.get("observed"):
        ids = list(d.get("event_ids", []))
        when = f"{pd.Timestamp(d['first_seen']).strftime('%m-%d %H:%M:%S')} – {pd.Timestamp(d['last_seen']).strftime('%m-%d %H:%M:%S')}"
        more = f" +{len(ids) - 5}" if len(ids) > 5 else ""
        return f"{head}<br>{escape(when)} · ×{d.get('count', 0)}<br>evidence: {escape(', '.join(ids[:5]))}{more}"
    return f"{head}<br>{escape(d.get('reason', ''))}"


def lateral_movement_panel(graph: nx.MultiDiGraph, *, source: str | None = None) -> ipywidgets.VBox:
    """A JupyterLab panel: pick the start node, a time window and observed/possible edges; the
    figure and the blast-radius table follow."""
    import ipywidgets as w
    import plotly.graph_objects as go

    starts = sorted(
        {u for u, _, d in graph.edges(data=True) if d.get("observed") and d["type"] in REACH_EDGES | {"flow"}},
        key=lambda n: (not node_ids.is_a(n, "ip"), str(n)),
    )
    auto = "(patient zero's source)"
    pick = w.Dropdown(
        options=[auto, *starts],
        value=source if source in starts else auto,
        description="start",
        layout={"width": "60%"},
    )
    times = sorted({d["first_seen"] for _, _, d in graph.edges(data=True) if d.get("observed")}) or [
        pd.Timestamp.now(tz="UTC")
    ]
    options = [(pd.Timestamp(t).strftime("%m-%d %H:%M:%S"), pd.Timestamp(t)) for t in times]
    window = w.SelectionRangeSlider(
        options=options, index=(0, len(options) - 1), description="window", layout={"width": "95%"}
    )
    show = w.ToggleButtons(
        options=["observed", "observed + possible", "possible"], value="observed + possible", description="edges"
    )
    figure = go.FigureWidget()
    table = w.HTML()

    def refresh(_: Any = None) -> None:
        lo, hi = window.value
        keep = [
            (u, v, k)
            for u, v, k, d in graph.edges(keys=True, data=True)
            if not d.get("observed") or (d["last_seen"] >= lo and d["first_seen"] <= hi)
        ]
        sub: nx.MultiDiGraph = graph.edge_subgraph(keep)
        start = None if pick.value == auto else pick.value
        new = lateral_movement_figure(
            sub,
            source=start if start in sub else None,
            observed=show.value != "possible",
            possible=show.value != "observed",
        )
        with figure.batch_update():
            figure.data = []
            figure.add_traces(list(new.data))
            figure.layout = new.layout
        if start is not None and start in sub:
            table.value = (
                "<h4>blast radius of "
                + escape(start)
                + "</h4>"
                + table_html(
                    blast_radius(sub, start, observed_only=show.value == "observed").drop(columns="event_ids"),
                    max_rows=200,
                )
            )
        else:
            table.value = ""

    for control in (pick, window, show):
        control.observe(refresh, names="value")
    refresh()
    return w.VBox([w.HBox([pick, show]), window, figure, table])


# ---------------------------------------------------------------------------------- export


def _flat(value: Any) -> Any:
    """An attribute as GraphML can hold it: times as ISO 8601, lists as JSON text."""
    if isinstance(value, pd.Timestamp):
        return "" if pd.isna(value) else value.isoformat()
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return ""
    if isinstance(value, (list, tuple)):
        return json.dumps([str(v) for v in value])
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def write_graphml(graph: nx.MultiDiGraph, path: str | os.PathLike[str]) -> Path:
    """The graph as GraphML (Gephi, Cytoscape, yEd): every attribute kept, times in ISO 8601,
    evidence ids as a JSON list."""
    import networkx as nx

    flat = nx.MultiDiGraph()
    for n, d in graph.nodes(data=True):
        flat.add_node(n, **{k: _flat(v) for k, v in d.items()})
    for u, v, k, d in graph.edges(keys=True, data=True):
        flat.add_edge(u, v, key=k, **{a: _flat(x) for a, x in d.items()})
    out = Path(path)
    nx.write_graphml(flat, out)
    return out


def write_cytoscape_json(graph: nx.MultiDiGraph, path: str | os.PathLike[str]) -> Path:
    """The graph as Cytoscape JSON (``{"elements": {"nodes": [...], "edges": [...]}}``, what
    Cytoscape desktop imports as .cyjs and Cytoscape.js loads); Gephi opens the GraphML."""
    nodes = [
        {"data": {"id": n, "name": d.get("label", n), **{k: _flat(v) for k, v in d.items()}}}
        for n, d in graph.nodes(data=True)
    ]
    edges = []
    for i, (u, v, k, d) in enumerate(graph.edges(keys=True, data=True)):
        data = {a: (list(map(str, x)) if isinstance(x, (list, tuple)) else _flat(x)) for a, x in d.items()}
        edges.append(
            {"data": {"id": f"e{i}", "source": u, "target": v, "key": str(k), "interaction": d.get("type"), **data}}
        )
    doc = {
        "format_version": "1.0",
        "generated_by": "k8sforensics",
        "target_cytoscapejs_version": "~3",
        "data": {"name": "lateral movement"},
        "elements": {"nodes": nodes, "edges": edges},
    }
    out = Path(path)
    out.write_text(json.dumps(doc, indent=1))
    return out
