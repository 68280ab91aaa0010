"""The remediation checklist as a page and as a JupyterLab panel: one row per action, numbered
in the order to carry them out and grouped by phase (preserve → contain → invalidate
credentials → eradicate → recover → harden → verify), each ticked off and annotated by the
analyst; ticks and notes go straight to ``<case>/remediation/checklist.json``
(``remediation.Checklist``)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..remediation.actions import PHASE
from ..remediation.checklist import Checklist
from .timeline import escape

if TYPE_CHECKING:
    import ipywidgets


def checklist_html(actions: pd.DataFrame) -> str:
    """A static checklist (for the report): per phase, each action numbered by its step with its
    box (ticked when ``done``), kind, control, why, command, references, evidence counts, the
    verdict of ``--verify`` when there is one, and the analyst's note."""
    parts = ['<div class="k8sf-checklist">']
    for priority, phase in PHASE.items():
        g = actions[actions["priority"] == priority]
        if g.empty:
            continue
        parts.append(f"<h3>{priority}. {escape(phase)} ({len(g)})</h3><ol>")
        for r in g.itertuples(index=False):
            box = "☑" if getattr(r, "done", False) else "☐"
            extra = []
            if r.why:
                extra.append(f"why: {escape(r.why)}")
            if r.command:
                extra.append(f"<code>{escape(r.command)}</code>")
            if r.artifact:
                extra.append(f"artifact: <code>{escape(r.artifact)}</code>")
            if r.references:
                extra.append(f"references: {escape(r.references)}")
            if len(r.finding_ids) or len(r.event_ids):
                extra.append(
                    f"{len(r.finding_ids)} finding(s), {len(r.event_ids)} evidence event(s): {escape(', '.join(list(r.event_ids)[:3]))}"
                )
            verdict = getattr(r, "verdict", None)
            if isinstance(verdict, str):
                extra.append(f"verified: <b>{escape(verdict)}</b> — {escape(getattr(r, 'evidence', ''))}")
            note = getattr(r, "note", "")
            if note:
                extra.append(f"<em>note: {escape(note)}</em>")
            step = getattr(r, "step", None)
            number = f' value="{int(step)}"' if isinstance(step, (int, np.integer)) else ""
            kind = f"{escape(r.kind)} · " if isinstance(getattr(r, "kind", None), str) else ""
            parts.append(
                f'<li{number} data-action="{escape(r.action_id)}"><b>{box} {escape(r.action)}</b> <small>[{kind}{escape(r.control)}]</small>'
                f"<br><small>{'<br>'.join(extra)}</small></li>"
            )
        parts.append("</ol>")
    parts.append("</div>")
    return "".join(parts)


def checklist_panel(actions: pd.DataFrame, *, case_dir: str | os.PathLike[str]) -> ipywidgets.VBox:
    """The checklist as widgets: a checkbox and a note per action, saved to the case as soon as
    they change; a summary line; previews of the generated artifacts."""
    import ipywidgets as w

    checklist = Checklist(case_dir)
    state = checklist.apply(actions)
    summary = w.HTML()

    def count() -> None:
        done = sum(bool(v.get("done")) for k, v in checklist.items.items() if k in set(actions["action_id"]))
        summary.value = f"<b>{done} of {len(actions)} actions done</b> — saved in {escape(checklist.path)}"

    def tick(action_id: str, change: dict[str, Any]) -> None:
        checklist.mark(action_id, done=change["new"])
        count()

    rows: list[Any] = []
    for priority, phase in PHASE.items():
        g = state[state["priority"] == priority]
        if g.empty:
            continue
        rows.append(w.HTML(f"<h3>{priority}. {escape(phase)}</h3>"))
        for r in g.itertuples(index=False):
            step = getattr(r, "step", None)
            box = w.Checkbox(
                value=bool(r.done),
                description=f"{int(step)}. {r.action}" if isinstance(step, (int, np.integer)) else r.action,
                indent=False,
                layout={"width": "70%"},
            )
            note = w.Text(value=r.note, placeholder="note", layout={"width": "28%"})
            box.add_class("k8sf-action")
            box.observe(functools.partial(tick, r.action_id), names="value")
            note.observe(lambda change, i=r.action_id: checklist.mark(i, note=change["new"]), names="value")
            detail = w.HTML(
                f"<small>[{escape(r.control)}] {escape(r.why)} {('<code>' + escape(r.command) + '</code>') if r.command else ''}</small>"
            )
            rows.append(w.VBox([w.HBox([box, note]), detail]))
    count()
    return w.VBox([summary, *rows, artifacts_panel(Path(case_dir) / "remediation")])


def artifacts_panel(folder: Path) -> ipywidgets.VBox:
    """A picker over the generated files and an escaped preview of the one picked."""
    import ipywidgets as w

    files = sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []
    pick = w.Dropdown(options=files or ["(no artifacts written yet)"], description="artifact")
    preview = w.HTML()

    def show(_: Any = None) -> None:
        path = folder / str(pick.value)
        preview.value = f"<pre>{escape(path.read_text()[:20000])}</pre>" if path.is_file() else ""

    pick.observe(show, names="value")
    show()
    return w.VBox([pick, preview])
