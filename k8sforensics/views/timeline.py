"""The kill-chain timeline as a plotly figure, and the HTML pieces of a report.

Evidence strings (user agents, commands, pod and user names) are attacker-controlled: every
string that reaches a figure or HTML passes through ``html.escape`` here. Plotly shows
``&lt;`` as a literal ``<`` and never turns it back into markup.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..detect.engine import PHASES

PHASE_COLOURS = {
    "Reconnaissance": "#6c757d",
    "Weaponization": "#8e6c8a",
    "Delivery": "#1f77b4",
    "Exploitation": "#d62728",
    "Installation": "#ff7f0e",
    "Command & Control": "#9467bd",
    "Actions on Objectives": "#2ca02c",
}
SEVERITY_SIZE = {"low": 8, "medium": 11, "high": 14, "critical": 18}


def escape(value: Any) -> str:
    """A value as HTML-safe text ('' for missing values)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return html.escape(str(value), quote=True)


def kill_chain_figure(timeline: pd.DataFrame, *, title: str = "Kill chain", max_label: int = 48) -> go.Figure:
    """Swim lanes: one lane per entity, findings placed in time and coloured by kill-chain
    phase (a bar from first to last event when a finding spans time), sized by severity.
    Hover text is escaped."""
    f = timeline[timeline["kind"] == "finding"] if "kind" in timeline.columns else timeline
    fig = go.Figure()
    if f.empty:
        fig.update_layout(title=escape(title) + " — no findings", template="plotly_white")
        return fig
    lanes = list(dict.fromkeys(f.sort_values("time")["entity"].fillna("(unknown)")))
    label = {e: escape(e if len(e) <= max_label else e[: max_label - 1] + "…") for e in lanes}
    for phase in PHASES:
        g = f[f["kill_chain_phase"] == phase]
        if g.empty:
            continue
        y = g["entity"].fillna("(unknown)").map(label)
        hover = [
            f"<b>{escape(r.title)}</b><br>{escape(r.kill_chain_phase)} · {escape(r.tactic)} · {escape(r.technique_id)} {escape(r.attack_id)}"
            f"<br>{escape(pd.Timestamp(r.time).strftime('%Y-%m-%d %H:%M:%S'))} UTC · {escape(r.severity)}"
            f"<br>{escape(_wrap(r.summary))}<br>evidence: {len(r.event_ids) if r.event_ids is not None else 0} event(s)"
            for r in g.itertuples()
        ]
        fig.add_trace(
            go.Scatter(
                x=g["time"],
                y=y,
                mode="markers",
                name=escape(phase),
                legendgroup=phase,
                marker={
                    "color": PHASE_COLOURS[phase],
                    "size": g["severity"].map(SEVERITY_SIZE).fillna(10).tolist(),
                    "line": {"width": 1, "color": "#222"},
                },
                hovertext=hover,
                hoverinfo="text",
            )
        )
        spans = g[g["time_end"] > g["time"]]
        if len(spans):
            xs: list[Any] = []
            ys: list[Any] = []
            for r, lane in zip(spans.itertuples(), spans["entity"].fillna("(unknown)").map(label)):
                xs += [r.time, r.time_end, None]
                ys += [lane, lane, None]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"color": PHASE_COLOURS[phase], "width": 4},
                    opacity=0.5,
                    legendgroup=phase,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
    fig.update_layout(
        title=escape(title),
        template="plotly_white",
        height=max(320, 60 + 28 * len(lanes)),
        xaxis_title="time (UTC)",
        yaxis={"categoryorder": "array", "categoryarray": [label[e] for e in reversed(lanes)], "title": ""},
        legend={"title": "kill-chain phase", "traceorder": "normal"},
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
    )
    return fig


def _wrap(text: Any, width: int = 90) -> str:
    s = "" if text is None else str(text)
    return "\n".join(s[i : i + width] for i in range(0, len(s), width))


def figure_html(fig: go.Figure, *, include_plotlyjs: bool = True) -> str:
    """A figure as a self-contained HTML fragment (plotly.js inlined once per page: pass
    ``include_plotlyjs=False`` for the figures after the first)."""
    return str(fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs, config={"displaylogo": False}))


def narrative_html(text: str) -> str:
    """The narrative (plain text, evidence strings inside) as escaped HTML: a paragraph per
    line, the ``  - `` lines under a heading as a list, wrapped between words (an evidence id
    is never split)."""
    parts: list[str] = []
    items: list[str] = []
    for line in text.splitlines():
        if line.startswith("  - "):
            items.append(f"<li>{escape(line[4:])}</li>")
            continue
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if line.strip():
            parts.append(f"<p>{escape(line)}</p>")
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    return "<div class='k8sf-narrative'>" + "".join(parts) + "</div>"


def table_html(frame: pd.DataFrame, *, max_rows: int = 200, interactive: bool = False) -> str:
    """A DataFrame as an escaped HTML table a responder can read: strings left-aligned and
    wrapped, numbers right-aligned, times as compact UTC (``2026-03-10 10:10:00Z``), lists of
    evidence ids collapsed behind their count. ``interactive``: sortable and searchable with
    itables (offline: the page must have run ``itables.init_notebook_mode(connected=False)``),
    all rows kept; otherwise the first ``max_rows`` and a line saying how many were left out."""
    shown = frame if interactive else frame.head(max_rows)
    cells = {c: [_cell(v) for v in shown[c]] for c in shown.columns}
    if interactive:
        from itables import to_html_datatable

        # every cell is escaped here, so the library may render the little markup we add
        display = pd.DataFrame({escape(c): [html for html, _ in cells[c]] for c in shown.columns})
        # a column takes the alignment of its first non-empty cell: times unbroken, numbers right
        kinds = [next((k for h, k in cells[c] if h), "k8sf-text") for c in shown.columns]
        align = {"k8sf-num": "dt-right", "k8sf-time": "dt-left k8sf-time"}
        return str(
            to_html_datatable(
                display,
                connected=False,
                allow_html=True,
                showIndex=False,
                classes="display compact k8sf-table",
                maxBytes=0,
                columnDefs=[{"className": align.get(k, "dt-left"), "targets": [i]} for i, k in enumerate(kinds)],
            )
        )
    head = "".join(f"<th>{escape(c)}</th>" for c in shown.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td class='{cells[c][i][1]}'>{cells[c][i][0]}</td>" for c in shown.columns) + "</tr>"
        for i in range(len(shown))
    )
    more = len(frame) - len(shown)
    tail = f"<p class='k8sf-more'>{more:,} more rows not shown</p>" if more > 0 else ""
    return f"<table class='k8sf-table'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{tail}"


def compact_time(value: Any) -> str:
    """A time as compact UTC text: ``2026-03-10 10:10:00Z``, with milliseconds only when it has
    them ('' for a missing time)."""
    if value is None or (not isinstance(value, (list, tuple, np.ndarray)) and pd.isna(value)):
        return ""
    t = pd.Timestamp(value)
    t = t.tz_convert("UTC") if t.tzinfo is not None else t
    text = t.strftime("%Y-%m-%d %H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond // 1000:03d}"
    return text + "Z"


def _cell(value: Any) -> tuple[str, str]:
    """A value's escaped HTML and its cell class."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [str(v) for v in value if v is not None]
        if len(items) <= 1:
            return escape(items[0] if items else ""), "k8sf-text"
        listed = escape(", ".join(items))
        return (
            f"<details class='k8sf-ids'><summary>show {len(items)}</summary><code>{listed}</code></details>",
            "k8sf-ids",
        )
    if isinstance(value, dict):
        return escape(", ".join(f"{k}={v}" for k, v in value.items())), "k8sf-text"
    if isinstance(value, (pd.Timestamp, dt.datetime, np.datetime64)):
        return escape(compact_time(value)), "k8sf-time"
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT or value is pd.NA:
        return "", "k8sf-text"
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), "k8sf-text"
    if isinstance(value, (int, float, np.integer, np.floating)):
        # no thousands separator: most integers here are ports, codes and counts read as ids
        return escape(f"{value}" if isinstance(value, (int, np.integer)) else f"{value:.4g}"), "k8sf-num"
    return escape(value), "k8sf-text"
