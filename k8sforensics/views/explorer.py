"""ipywidgets controls over the kill-chain timeline, for JupyterLab: time range, phase and
namespace filters, and an entity picker that pivots to that entity's events. The widgets
update a plotly FigureWidget and escaped HTML in place; nothing here calls ``display()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from ..analysis.kill_chain import entity_events, phases
from ..detect.engine import PHASES
from .timeline import escape, kill_chain_figure, table_html

if TYPE_CHECKING:
    import ipywidgets

    from ..case import Case


def kill_chain_explorer(timeline: pd.DataFrame, *, case: Case | None = None) -> ipywidgets.VBox:
    """A widget: filters on top, the swim-lane figure, the phase table, and the events of the
    picked entity (from the case when given, else from the timeline's evidence rows)."""
    import ipywidgets as w
    import plotly.graph_objects as go

    f = timeline[timeline["kind"] == "finding"]
    times = sorted(pd.to_datetime(pd.concat([f["time"], f["time_end"]])).dropna().unique()) or [
        pd.Timestamp.now(tz="UTC")
    ]
    options = [(pd.Timestamp(t).strftime("%m-%d %H:%M:%S"), pd.Timestamp(t)) for t in times]
    window = w.SelectionRangeSlider(
        options=options, index=(0, len(options) - 1), description="time", layout={"width": "95%"}
    )
    phase_pick = w.SelectMultiple(
        options=[p for p in PHASES if p in set(f["kill_chain_phase"])], description="phases", rows=7
    )
    namespaces = ["(all)"] + sorted(set(f["namespace"].dropna()))
    ns_pick = w.Dropdown(options=namespaces, description="namespace")
    entity_pick = w.Dropdown(
        options=["(none)"] + sorted(set(f["entity"].dropna())), description="entity", layout={"width": "60%"}
    )
    figure = go.FigureWidget(kill_chain_figure(timeline))
    phase_table = w.HTML(table_html(phases(timeline)))
    events = w.HTML()

    def selected() -> pd.DataFrame:
        lo, hi = window.value
        m = (f["time_end"] >= lo) & (f["time"] <= hi)
        if phase_pick.value:
            m &= f["kill_chain_phase"].isin(phase_pick.value)
        if ns_pick.value != "(all)":
            m &= f["namespace"] == ns_pick.value
        return timeline[timeline["finding_id"].isin(set(f.loc[m, "finding_id"]))]

    def refresh(_: Any = None) -> None:
        sub = selected()
        new = kill_chain_figure(sub)
        with figure.batch_update():
            figure.data = []
            for trace in new.data:
                figure.add_trace(trace)
            figure.layout = new.layout
        phase_table.value = table_html(phases(sub))

    def pivot(_: Any = None) -> None:
        entity = entity_pick.value
        if entity == "(none)":
            events.value = ""
            return
        if case is not None:
            rows = entity_events(
                case,
                entity,
                start=window.value[0] - pd.Timedelta(minutes=30),
                end=window.value[1] + pd.Timedelta(minutes=30),
            )
        else:
            rows = timeline[(timeline["entity"] == entity) & (timeline["kind"] != "finding")][
                ["time", "source_table", "event_id", "summary"]
            ]
        events.value = f"<h4>events of {escape(entity)}</h4>" + table_html(rows, max_rows=500)

    for control in (window, phase_pick, ns_pick):
        control.observe(refresh, names="value")
    entity_pick.observe(pivot, names="value")
    return w.VBox([window, w.HBox([phase_pick, w.VBox([ns_pick, entity_pick])]), figure, phase_table, events])
