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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import node_ids
from ..analysis.graph import REACH_EDGES
from ..analysis.reach import EXPOSED, REACHED, blast_radius
from ..analysis.scope import attack_scope
from ..context.inventory import resolve_workload
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


# The figure's geometry is measured in pixels: the report's output column is 1214 px wide in a
# 1280 px window (nbconvert's lab template, measured in Chromium), so the figure is drawn at a
# fixed 1180 px and its axes run in pixels — the layout can then place every label where it
# overlaps no other label or node.
FIGURE_WIDTH = 1180
MARGIN = {"l": 16, "r": 16}  # the top fits the title, the bottom the axis and the legend
SUBTITLE_CHARS = 150
FONT_PX = 11
# a label's estimated width per character: above what the fonts plotly falls back to take on
# average at 11 px (Open Sans, DejaVu Sans, Liberation Sans: 6–6.8 px), so estimates err wide
CHAR_PX = 7.0
LEGEND_CHAR_PX = 6.5  # the legend's text, measured at 5.3 px a character in Chromium
LABEL_CHARS = 30  # longer labels are shortened; the hover has the full text
MARKER_PX = 14
LABEL_LIFT = 10  # from a node's centre to the bottom of its label, which sits above it
LABEL_PX = 17  # a label's height with its background
ROW_PX = 40  # a row: the node and its label above it, with room to spare
GAP_PX = 10  # between two labels side by side
MAX_COLUMNS = 22  # columns of time before neighbouring times share one
MAX_PER_COLUMN = 12  # a column's tail beyond this folds into one "+N more" node
LAYOUT_COLUMNS = [
    "node",
    "kind",
    "status",
    "x",
    "y",
    "reached",
    "hops",
    "parent",
    "via",
    "label",
    "text",
    "members",
    "folded",
    "group",
    "column",
    "row",
]
_STATUS_ORDER = {"compromised": 0, "accessed": 1, "possible": 2}
_KIND_ORDER = {k: i for i, k in enumerate(["ip", "user", "sa", "pod", "node", "secret", "binding", "workload"])}


def compromised(graph: nx.MultiDiGraph, source: str | None = None) -> pd.DataFrame:
    """The nodes control reached over observed edges, with when: the attack's scope from
    ``source`` (by default from the way in the graph shows: ``attack_scope``), else — no way in
    known — every node an observed control edge reached, at that edge's first time. ``how`` is
    the scope's (``source``, ``reached``, or ``exposed``: only within reach, e.g. a pod on a node
    the attacker took)."""
    scope = attack_scope(graph, sources=None if source is None else [source])
    if scope.sources:
        return scope.paths[["node", "reached", "parent", "via", "how"]]
    rows: dict[str, tuple[Any, str | None, str | None]] = {}
    for u, v, d in graph.edges(data=True):
        if d.get("observed") and d["type"] in REACH_EDGES:
            for n, t in ((u, d["first_seen"] - pd.Timedelta(microseconds=1)), (v, d["first_seen"])):
                if n not in rows or t < rows[n][0]:
                    rows[n] = (t, u if n == v else None, d["type"] if n == v else None)
    return pd.DataFrame(
        [(n, t, p, via, REACHED) for n, (t, p, via) in rows.items()],
        columns=["node", "reached", "parent", "via", "how"],
    )


@dataclass
class _Item:
    """One thing the figure draws: a node, a workload's runs drawn as one (``group``), or a
    column's tail (``kind == "more"``); ``folded`` are the nodes drawn behind it."""

    node: str
    kind: str
    status: str
    how: str | None
    reached: Any
    hops: int
    parent: str | None
    via: str | None
    members: list[str]
    group: str | None = None
    folded: list[str] = field(default_factory=list)
    column: int = 0
    row: int = 0


def layout(
    graph: nx.MultiDiGraph,
    *,
    source: str | None = None,
    possible: bool = True,
    max_per_column: int = MAX_PER_COLUMN,
    width: int = FIGURE_WIDTH,
) -> pd.DataFrame:
    """What the figure draws and where, one row per drawn node (columns ``LAYOUT_COLUMNS``).

    ``status`` is ``compromised`` (control reached it), ``accessed`` (an outside address a
    compromised node connected to — C2, exfiltration — or a secret it read) or ``possible``
    (where control could still go, with the ``parent`` and edge ``via`` which). Columns run by
    time of first compromise or contact, then by hops. Repeated runs of one workload (the pods
    of a CronJob, a Deployment, a DaemonSet …) are drawn as one node (``group``, ``members``);
    pods merely on a node the attacker took and their service accounts, and wildcard targets
    (``role:*``, ``secret:*/*``), are ``folded`` behind the node that reached them; a column
    beyond ``max_per_column`` folds its tail into one "+N more" node. ``x``/``y`` are pixels of
    a plot ``width`` wide, placed so no two labels (``label``, shortened from ``text``) overlap."""
    rows = _scope_rows(graph, source=source, possible=possible)
    if rows.empty:
        return pd.DataFrame(columns=LAYOUT_COLUMNS)
    items = _fold(graph, rows)
    _columns(items)
    items = _cap_columns(items, max(2, max_per_column))
    return _place(graph, items, width=width - MARGIN["l"] - MARGIN["r"])


def _scope_rows(graph: nx.MultiDiGraph, *, source: str | None, possible: bool) -> pd.DataFrame:
    """node, status, how, reached, hops, parent, via: the scope, what it contacted, and (with
    ``possible``) the blast radius beyond."""
    reached = compromised(graph, source).assign(status="compromised", hops=0)
    if reached.empty:
        return reached
    done = set(reached["node"])
    # an address or secret contacted by a node the attacker held, once they held it: a pod
    # merely exposed, or a node before the attack got there, shows its own traffic
    held = {n: t for n, t, how in zip(reached["node"], reached["reached"], reached["how"]) if how != EXPOSED}
    contacts: dict[str, tuple[Any, str, str]] = {}
    for u, v, d in graph.edges(data=True):
        if u not in held or v in done or not d.get("observed"):
            continue
        if not ((d["type"] == "flow" and node_ids.is_a(v, "ip")) or d["type"] == "read_secret"):
            continue
        since = held[u]
        if pd.notna(since) and d["last_seen"] < since:
            continue
        t = d["first_seen"] if pd.isna(since) else max(d["first_seen"], since)
        if v not in contacts or t < contacts[v][0]:
            contacts[v] = (t, u, d["type"])
    contacted = pd.DataFrame(
        [(v, t, u, via) for v, (t, u, via) in contacts.items()], columns=["node", "reached", "parent", "via"]
    ).assign(status="accessed", how=REACHED, hops=0)
    frames = [reached, contacted]
    if possible:
        radius = blast_radius(graph, reached["node"].tolist())
        radius = radius[~radius["node"].isin(done | set(contacts))]
        frames.append(
            pd.DataFrame(
                {
                    "node": radius["node"],
                    "reached": pd.NaT,
                    "parent": radius["parent"],
                    "via": radius["via"],
                    "status": "possible",
                    "how": None,
                    "hops": radius["hops"].astype(int),
                }
            )
        )
    out = pd.concat([f for f in frames if len(f)], ignore_index=True)
    out["reached"] = pd.to_datetime(out["reached"], utc=True)
    return out[["node", "status", "how", "reached", "hops", "parent", "via"]]


def _wildcard(node: str) -> bool:
    """A target that stands for every object of a kind (``role:*``, ``secret:*/*``, ``secret:ns/*``)."""
    name = node_ids.parse(node).name
    return name == "*" or name.endswith("/*")


def _run_key(graph: nx.MultiDiGraph, node: str) -> tuple[str, str, str] | None:
    """(kind, namespace, "Kind name") of the workload whose run ``node`` is: a pod's from the
    graph's ``workload`` attribute (the inventory's owner chain), a Job's from its CronJob the
    way the inventory derives it (``context.inventory.resolve_workload``); None otherwise."""
    attrs = graph.nodes[node]
    if node_ids.is_a(node, "pod"):
        owner = attrs.get("workload")
        if isinstance(owner, str) and owner:
            return ("pod", attrs.get("namespace") or node_ids.parse(node).namespace or "", owner)
        return None
    parsed = node_ids.parse(node)
    if parsed.kind == "workload" and parsed.resource == "jobs":
        kind, name = resolve_workload(None, parsed.namespace, ("Job", parsed.name), None, {})
        if kind == "CronJob":
            return ("workload", parsed.namespace or "", f"{kind} {name}")
    return None


def _fold(graph: nx.MultiDiGraph, rows: pd.DataFrame) -> list[_Item]:
    """The drawn items: wildcards and co-tenants folded behind what reached them, each
    workload's runs (two or more) drawn as one."""
    info = {r.node: r for r in rows.itertuples(index=False)}
    order = list(info)
    behind: dict[str, str] = {}  # a folded node → the node it is drawn behind
    for n in order:
        p = info[n].parent
        if _wildcard(n) and isinstance(p, str) and p in info:
            behind[n] = p
    changed = True
    while changed:  # a co-tenant's service account folds where its pod did
        changed = False
        for n in order:
            r = info[n]
            if n in behind or r.how != EXPOSED or not isinstance(r.parent, str) or r.parent not in info:
                continue
            if (r.via == "hosts" and node_ids.is_a(r.parent, "node")) or (
                r.parent in behind and not _wildcard(r.parent)
            ):
                behind[n] = r.parent
                changed = True

    def root(n: str) -> str:
        for _ in range(len(behind) + 1):  # the bound guards against a cycle
            if n not in behind:
                break
            n = behind[n]
        return n

    runs: dict[tuple[Any, ...], list[str]] = {}
    for n in order:
        if n not in behind:
            key = _run_key(graph, n)
            group_key = (info[n].status, info[n].how, *key) if key else (n,)
            runs.setdefault(group_key, []).append(n)
    items: list[_Item] = []
    drawn: dict[str, _Item] = {}
    for key, members in runs.items():
        members = sorted(members, key=lambda m: (pd.isna(info[m].reached), info[m].reached, info[m].hops, m))
        first = info[members[0]]
        item = _Item(
            node=first.node,
            kind=str(graph.nodes[first.node].get("kind") or node_ids.kind(first.node)),
            status=first.status,
            how=first.how,
            reached=first.reached,
            hops=int(min(info[m].hops for m in members)),
            parent=first.parent if isinstance(first.parent, str) else None,
            via=first.via if isinstance(first.via, str) else None,
            members=members,
            group=key[-1] if len(members) > 1 else None,
        )
        items.append(item)
        drawn.update(dict.fromkeys(members, item))
    for n in order:
        if n in behind:
            drawn[root(n)].folded.append(n)
    return items


def _columns(items: list[_Item]) -> None:
    """Columns by time of first compromise or contact (the source, with no time, first), then
    the possible nodes by hops; more than ``MAX_COLUMNS`` times share columns."""
    seen = [i for i in items if i.status != "possible"]
    times = pd.Series([i.reached for i in seen], dtype="datetime64[ns, UTC]")
    rank = (times.rank(method="dense", na_option="top").astype(int) - 1).tolist()
    n = max(rank, default=-1) + 1
    for item, r in zip(seen, rank):
        item.column = r * MAX_COLUMNS // n if n > MAX_COLUMNS else r
    last = max((i.column for i in seen), default=-1)
    for item in items:
        if item.status == "possible":
            item.column = last + item.hops


def _priority(item: _Item) -> tuple[Any, ...]:
    return (
        _STATUS_ORDER.get(item.status, 3),
        item.how == EXPOSED,
        _KIND_ORDER.get(item.kind, len(_KIND_ORDER)),
        item.node,
    )


def _cap_columns(items: list[_Item], most: int) -> list[_Item]:
    """Each column keeps its first ``most - 1`` items (the compromised first) when it holds more
    than ``most``; the rest fold into one "+N more" node."""
    out: list[_Item] = []
    by_column: dict[int, list[_Item]] = {}
    for item in items:
        by_column.setdefault(item.column, []).append(item)
    for column in sorted(by_column):
        col = sorted(by_column[column], key=_priority)
        if len(col) <= most:
            out += col
            continue
        keep, rest = col[: most - 1], col[most - 1 :]
        out += keep
        times = [i.reached for i in rest if pd.notna(i.reached)]
        out.append(
            _Item(
                node=rest[0].node,
                kind="more",
                status=rest[0].status,
                how=rest[0].how,
                reached=min(times) if times else pd.NaT,
                hops=min(i.hops for i in rest),
                parent=None,
                via=None,
                members=[m for i in rest for m in i.members],
                folded=[f for i in rest for f in i.folded],
                column=column,
            )
        )
    return out


def _label(graph: nx.MultiDiGraph, item: _Item) -> str:
    """The full label of an item (plain text)."""
    if item.kind == "more":
        return f"+{len(item.members)} more"
    if item.group is not None:
        namespace = graph.nodes[item.node].get("namespace") or node_ids.parse(item.node).namespace
        name = item.group.partition(" ")[2]  # the graph's "Kind name"
        return f"{namespace}/{name} ×{len(item.members)}" if namespace else f"{name} ×{len(item.members)}"
    text = str(graph.nodes[item.node].get("label") or node_ids.label(item.node))
    pods = sum(node_ids.is_a(f, "pod") for f in item.folded)
    return text + (f" +{pods} pod{'s' if pods != 1 else ''}" if pods else "")


def _short_label(graph: nx.MultiDiGraph, item: _Item, text: str) -> str:
    """``text`` within ``LABEL_CHARS``: a node by its host name, the counts kept whole."""
    if len(text) <= LABEL_CHARS:
        return text
    suffix = ""
    if item.group is not None:
        text, _, count = text.rpartition(" ")
        suffix = " " + count
    elif any(node_ids.is_a(f, "pod") for f in item.folded):
        text, _, count = text.rpartition(" +")
        suffix = " +" + count
    if item.kind == "node" and item.group is None:
        text = text.split(".", 1)[0]  # a cloud node's host name without its domain
    return _short(text, max(8, LABEL_CHARS - len(suffix))) + suffix


def label_px(label: str) -> float:
    """A label's estimated width in pixels (with its background's padding)."""
    return len(label) * CHAR_PX + 6


def _place(graph: nx.MultiDiGraph, items: list[_Item], *, width: int) -> pd.DataFrame:
    """x (the column's pixel) and y (the row's) of each item: columns spread over ``width``, and
    each item on the row nearest its parent's where its label overlaps nothing."""
    where: dict[str, _Item] = {}
    for item in items:
        where.update(dict.fromkeys([*item.members, *item.folded], item))
    full = {id(i): _label(graph, i) for i in items}
    short = {id(i): _short_label(graph, i, full[id(i)]) for i in items}
    half = {id(i): max(label_px(short[id(i)]), MARKER_PX) / 2 for i in items}
    columns = max(i.column for i in items) + 1

    def spread(pitch: float) -> tuple[float, float]:
        left = max(0.0, *(half[id(i)] - i.column * pitch for i in items))
        right = max(0.0, *(half[id(i)] - (columns - 1 - i.column) * pitch for i in items))
        return left, right

    lo, hi = 0.0, float(width)
    for _ in range(40):  # the widest pitch at which the outer labels still fit (the need grows with it)
        mid = (lo + hi) / 2
        left, right = spread(mid)
        lo, hi = (mid, hi) if left + right + (columns - 1) * mid <= width else (lo, mid)
    pitch = min(lo, 240.0)  # few columns stay close enough to read as one path
    left, right = spread(pitch)
    offset = left + (width - left - right - (columns - 1) * pitch) / 2
    taken: dict[int, list[tuple[float, float]]] = {}
    parents: dict[int, str | None] = {}
    placed: list[_Item] = []
    for item in sorted(items, key=lambda i: (i.column, i.kind == "more", *_priority(i))):
        x = offset + item.column * pitch
        span = (x - half[id(item)] - GAP_PX / 2, x + half[id(item)] + GAP_PX / 2)
        parent = where.get(item.parent) if item.parent else None
        parents[id(item)] = parent.node if parent is not None and parent is not item else None
        want = parent.row if parent is not None and parent is not item and parent.column < item.column else 0
        if item.kind == "more":  # a column's tail at its foot
            want = max((i.row for i in placed if i.column == item.column), default=0) + 1
        for step in range(len(items) + 1):
            row = want + (step + 1) // 2 * (1 if step % 2 else -1)
            if all(span[1] <= a or b <= span[0] for a, b in taken.get(row, [])):
                break
        item.row = row
        taken.setdefault(row, []).append(span)
        placed.append(item)
    return pd.DataFrame(
        [
            {
                "node": i.node,
                "kind": i.kind,
                "status": i.status,
                "x": offset + i.column * pitch,
                "y": -i.row * ROW_PX,
                "reached": i.reached,
                "hops": i.hops,
                "parent": parents[id(i)],
                "via": i.via,
                "label": short[id(i)],
                "text": full[id(i)],
                "members": tuple(i.members),
                "folded": tuple(i.folded),
                "group": i.group,
                "column": i.column,
                "row": i.row,
            }
            for i in sorted(items, key=lambda i: (i.column, *_priority(i)))
        ],
        columns=LAYOUT_COLUMNS,
    )


def lateral_movement_figure(
    graph: nx.MultiDiGraph,
    *,
    source: str | None = None,
    observed: bool = True,
    possible: bool = True,
    max_per_column: int = MAX_PER_COLUMN,
    title: str = "Lateral movement",
) -> go.Figure:
    """The graph around the attack: what control reached and the outside addresses it talked
    to (solid edges: every observed edge among them) and, with ``possible=True``, where control
    could still go (dashed: the possible edge that reaches each such node first). ``source`` is
    where to start (default: the way in, ``attack_scope``). What ``layout`` folds is counted in
    the labels, the hover and the subtitle; legend below the plot, 1180 px wide."""
    import plotly.graph_objects as go

    pos = layout(graph, source=source, possible=possible, max_per_column=max_per_column)
    fig = go.Figure()
    if pos.empty:
        fig.update_layout(title=escape(title) + " — nothing reached", template="plotly_white", width=FIGURE_WIDTH)
        return fig
    at = {n: (x, y) for n, x, y in zip(pos["node"], pos["x"], pos["y"])}
    rep: dict[str, str] = {}  # every graph node the figure accounts for → the node drawn for it
    for n, members, folded in zip(pos["node"], pos["members"], pos["folded"]):
        rep.update(dict.fromkeys([*members, *folded], n))
    seen_nodes = {m for ms, st in zip(pos["members"], pos["status"]) if st != "possible" for m in ms}
    seen_nodes |= {f for fs, st in zip(pos["folded"], pos["status"]) if st != "possible" for f in fs}
    scope = _scope_rows(graph, source=source, possible=possible)
    # the edge each node was reached over: for a node in the scope without an observed one, the
    # configuration's edge the scope inferred it from (a workload runs its pods, a node holds its pods)
    tree = {(p, n, via): st for n, p, via, st in zip(scope["node"], scope["parent"], scope["via"], scope["status"])}
    groups: dict[tuple[str, str], dict[tuple[str, str], list[tuple[str, str, dict[str, Any]]]]] = {}
    seen_edges = {(u, v, d["type"]) for u, v, d in graph.edges(data=True) if d.get("observed")}
    for u, v, d in graph.edges(data=True):
        if u not in rep or v not in rep or rep[u] == rep[v]:
            continue
        status = tree.get((u, v, d["type"]))
        if d.get("observed") and observed and u in seen_nodes and v in seen_nodes:
            key = (d["type"], "observed")
        elif status == "possible" and (possible or d.get("observed")):
            key = (d["type"], "observed" if d.get("observed") else "possible")
        elif status is not None and observed and (u, v, d["type"]) not in seen_edges:
            key = (d["type"], "inferred")
        else:
            continue
        groups.setdefault(key, {}).setdefault((rep[u], rep[v]), []).append((u, v, d))
    order = {"observed": 0, "inferred": 1, "possible": 2}
    for (kind, how), edges in sorted(groups.items(), key=lambda g: (order[g[0][1]], g[0][0])):
        fig.add_traces(_edge_traces(kind, how, edges, at))
    for kind, g in pos.groupby("kind", sort=False):
        fig.add_trace(
            go.Scatter(
                x=g["x"],
                y=g["y"],
                mode="markers",
                name=escape("+N more (folded)" if kind == "more" else kind),
                hovertext=[_item_hover(graph, r) for r in g.itertuples(index=False)],
                hoverinfo="text",
                marker={
                    "size": [MARKER_PX + (4 if r.group or r.folded else 0) for r in g.itertuples(index=False)],
                    "symbol": [
                        "circle-open" if kind == "more" else "diamond" if s == "accessed" else "circle"
                        for s in g["status"]
                    ],
                    "opacity": [0.55 if s == "possible" else 1.0 for s in g["status"]],
                    "color": KIND_COLOURS.get(str(kind), "#888888"),
                    "line": {"width": [2.5 if r.group or r.folded else 1 for r in g.itertuples()], "color": "#333"},
                },
                legendgroup="node " + escape(kind),
            )
        )
    fig.update_layout(annotations=[_label_annotation(r) for r in pos.itertuples(index=False)])
    _frame(fig, graph, pos, title=title, possible=possible)
    return fig


def _label_annotation(r: Any) -> dict[str, Any]:
    """A node's label above it, on a background that keeps it readable over the edges."""
    return {
        "x": r.x,
        "y": r.y,
        "xref": "x",
        "yref": "y",
        "text": escape(r.label),
        "hovertext": escape(r.text),
        "showarrow": False,
        "xanchor": "center",
        "yanchor": "bottom",
        "yshift": LABEL_LIFT,
        "font": {"size": FONT_PX, "color": "#888" if r.status == "possible" else "#222"},
        "bgcolor": "rgba(255,255,255,0.85)",
        "borderpad": 1,
    }


def legend_px(names: list[str], width: int = FIGURE_WIDTH) -> int:
    """The estimated height of a horizontal legend of ``names`` across ``width`` px."""
    lines, used = 1, 0.0
    for name in names:
        w = 46 + len(name) * LEGEND_CHAR_PX  # the symbol, the text, the gap to the next
        if used and used + w > width - 20:
            lines, used = lines + 1, 0.0
        used += w
    return 30 * lines + 8


def _frame(fig: go.Figure, graph: nx.MultiDiGraph, pos: pd.DataFrame, *, title: str, possible: bool) -> None:
    """Axes in pixels, time ticks, the legend below the plot and the subtitle's count of what is
    drawn and folded."""
    width = FIGURE_WIDTH - MARGIN["l"] - MARGIN["r"]
    top = float(pos["y"].max()) + LABEL_LIFT + LABEL_PX + 6
    bottom = float(pos["y"].min()) - MARKER_PX / 2 - 8
    ticks = pos.groupby("column").agg(x=("x", "first"), reached=("reached", "min"), hops=("hops", "min"))
    tick_text, day = [], None
    for t, h in zip(ticks["reached"], ticks["hops"]):
        if pd.isna(t):
            tick_text.append("start" if h == 0 else f"+{h} hop{'s' if h > 1 else ''}")
            continue
        t = pd.Timestamp(t)
        tick_text.append(t.strftime("%H:%M:%S" if t.date() == day else "%m-%d %H:%M:%S"))
        day = t.date()
    pitch = float(ticks["x"].diff().min()) if len(ticks) > 1 else float(width)
    angle = 0 if pitch >= 84 else -45 if pitch >= 40 else -90  # tick texts are ≤ 14 characters
    tick_px = 30 if angle == 0 else 70 if angle == -45 else 100
    names = [t.name for t in fig.data if t.showlegend is not False and t.name]
    legend_h = legend_px(names)
    shown = {m for ms in pos["members"] for m in ms}
    folded = [f for fs in pos["folded"] for f in fs]
    wild = sum(_wildcard(f) for f in folded)
    more = sum(len(ms) for k, ms in zip(pos["kind"], pos["members"]) if k == "more")
    runs = sum(len(ms) for g, ms in zip(pos["group"], pos["members"]) if isinstance(g, str))
    outside = graph.number_of_nodes() - len(shown) - len(folded)
    parts = [f"{len(shown) - more} of the graph's {graph.number_of_nodes()} nodes drawn"]
    if runs:
        parts.append(
            f"{runs} runs of {sum(isinstance(g, str) for g in pos['group'])} workload(s) as one node each (×N)"
        )
    if len(folded) - wild:
        parts.append(
            f"{len(folded) - wild} co-tenant(s) (on a node the attacker took, not seen used) behind their node"
        )
    if wild:
        parts.append(f"{wild} wildcard target(s) (role:*, secret:*/* …) behind what reaches them")
    if more:
        parts.append(f"{more} in “+N more”")
    parts.append(f"{outside} outside the attack's reach" + ("" if possible else " or only possible"))
    lines = [parts[0]]
    for part in parts[1:]:  # the subtitle is one SVG text a line: wrap it within the figure
        if len(lines[-1]) + len(part) + 2 > SUBTITLE_CHARS:
            lines.append(part)
        else:
            lines[-1] += "; " + part
    top_px = 56 + 18 * len(lines)
    fig.update_layout(
        title={
            "text": escape(title),
            "subtitle": {"text": "<br>".join(escape(line) for line in lines)},
            "x": 0.01,
            "xanchor": "left",
            "y": 1,
            "yanchor": "top",
            "yref": "container",
            "pad": {"t": 12},
        },
        template="plotly_white",
        width=FIGURE_WIDTH,
        height=int(top - bottom) + top_px + tick_px + 26 + legend_h,
        margin={**MARGIN, "t": top_px, "b": tick_px + 26 + legend_h, "autoexpand": False},
        xaxis={
            "range": [0, width],
            "tickvals": ticks["x"].tolist(),
            "ticktext": [escape(t) for t in tick_text],
            "tickangle": angle,
            "tickfont": {"size": 10},
            "title": {"text": "first compromise (UTC) → could still reach", "standoff": 4},
            "showgrid": False,
            "zeroline": False,
            "fixedrange": True,
        },
        yaxis={"range": [bottom, top], "visible": False, "fixedrange": True},
        hovermode="closest",
        showlegend=True,
        legend={
            "orientation": "h",
            "yref": "container",
            "y": 0,
            "yanchor": "bottom",
            "x": 0,
            "xanchor": "left",
            "font": {"size": FONT_PX},
        },
    )


def _edge_traces(
    kind: str,
    how: str,
    edges: dict[tuple[str, str], list[tuple[str, str, dict[str, Any]]]],
    at: dict[str, tuple[float, float]],
) -> list[Any]:
    import plotly.graph_objects as go

    xs: list[Any] = []
    ys: list[Any] = []
    mx: list[Any] = []
    my: list[Any] = []
    sizes: list[int] = []
    hover: list[str] = []
    for (u, v), under in edges.items():
        (x0, y0), (x1, y1) = at[u], at[v]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
        # the arrow: a marker at the middle pointing along the edge (angle from the point before it)
        mx += [x0, (x0 + x1) / 2, None]
        my += [y0, (y0 + y1) / 2, None]
        sizes += [0, 12, 0]
        text = "<br>—<br>".join(_edge_hover(a, b, d) for a, b, d in under[:3])
        if len(under) > 3:
            text += f"<br>… and {len(under) - 3} more such edges"
        hover += [text, text, ""]
    # observed: solid; inferred by the scope from the configuration (a workload runs its pods): dotted;
    # possible: dashed
    name = f"{kind} ({how})"
    colour = EDGE_COLOURS.get(kind, "#999999")
    seen = how != "possible"
    line = {
        "color": colour,
        "width": 2.5 if seen else 1.2,
        "dash": {"observed": "solid", "inferred": "dot"}.get(how, "dash"),
    }
    return [
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            line=line,
            name=escape(name),
            hoverinfo="skip",
            legendgroup=escape(name),
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
            legendgroup=escape(name),
        ),
    ]


def _short(label: str, n: int = LABEL_CHARS) -> str:
    """``label`` within ``n`` characters, cut in the middle: Kubernetes names differ at the end
    (a pod's hash, a node's pool suffix) and say where at the start (the namespace)."""
    if len(label) <= n:
        return label
    head = (n - 1) * 2 // 5
    return label[:head] + "…" + label[len(label) - (n - 1 - head) :]


def _item_hover(graph: nx.MultiDiGraph, r: Any) -> str:
    """The hover of a drawn item: the node, or a group's runs, or a column's tail; then what is
    folded behind it (every value escaped)."""
    if r.kind == "more":
        lines = [f"<b>{len(r.members)} more</b> ({escape(r.status)}) — the column's tail:"]
        lines += [escape(m) for m in r.members[:20]]
        if len(r.members) > 20:
            lines.append(f"… and {len(r.members) - 20} more")
    elif r.group:
        namespace = graph.nodes[r.node].get("namespace") or node_ids.parse(r.node).namespace
        lines = [f"<b>{len(r.members)} runs of {escape(r.group)}</b> ({escape(namespace)})", escape(r.status)]
        for m in r.members[:15]:
            when = graph.nodes[m].get("host")
            lines.append(escape(node_ids.label(m)) + (f" · on {escape(when)}" if when else ""))
        if len(r.members) > 15:
            lines.append(f"… and {len(r.members) - 15} more")
        if pd.notna(r.reached):
            lines.append("first compromised " + escape(pd.Timestamp(r.reached).strftime("%Y-%m-%d %H:%M:%S")) + " UTC")
    else:
        lines = [_node_hover(graph, r.node, r.reached)]
        if r.via:
            lines.append(f"via {escape(r.via)}" + (f" from {escape(r.parent)}" if r.parent else ""))
    wild = [f for f in r.folded if _wildcard(f)]
    tenants = [f for f in r.folded if not _wildcard(f)]
    if wild:
        lines.append(
            "<b>can also reach</b> (wildcards): " + escape(", ".join(wild[:8])) + (" …" if len(wild) > 8 else "")
        )
    if tenants:
        lines.append(f"<b>{len(tenants)} co-tenants</b> (exposed: on this node, not seen used):")
        lines += [escape(t) for t in tenants[:12]]
        if len(tenants) > 12:
            lines.append(f"… and {len(tenants) - 12} more")
    return "<br>".join(lines)


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
