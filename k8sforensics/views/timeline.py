"""The kill-chain timeline as a plotly figure, and the HTML pieces of a report.

Evidence strings (user agents, commands, pod and user names) are attacker-controlled: every
string that reaches a figure or HTML passes through ``html.escape`` here. Plotly shows
``&lt;`` as a literal ``<`` and never turns it back into markup.
"""

from __future__ import annotations

import html
from typing import Any

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
    """The narrative (plain text, evidence strings inside) as escaped HTML."""
    return "<div class='k8sf-narrative'><pre style='white-space: pre-wrap'>" + escape(text) + "</pre></div>"


def table_html(frame: pd.DataFrame, *, max_rows: int = 200) -> str:
    """A DataFrame as an escaped HTML table."""
    return str(frame.head(max_rows).to_html(index=False, escape=True, na_rep="", border=0, classes="k8sf-table"))
