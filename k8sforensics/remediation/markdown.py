"""The checklist as Markdown a responder pastes into a ticket: per phase, in order, each
action as a task-list item with its why, command and check. Everything in it comes from
evidence, so every cell is escaped: no Markdown or HTML an attacker wrote is rendered."""

from __future__ import annotations

import re

import pandas as pd

from .actions import PHASE

# characters that mean something to CommonMark / GitHub-flavoured Markdown outside code
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def escape(text: object) -> str:
    """``text`` as literal Markdown: special characters backslash-escaped, one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def code(text: object) -> str:
    """``text`` as an inline code span that no backtick inside can close early."""
    s = " ".join(str(text).split())
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip() else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def checklist_markdown(actions: pd.DataFrame, *, title: str = "Remediation checklist") -> str:
    """The checklist (``Remediation.actions``) as Markdown: a heading per phase, a task item
    per action (ticked when a ``done`` column says so), its why, command, artifact and check."""
    lines = [
        f"# {escape(title)}",
        "",
        f"{len(actions)} actions, in the order to carry them out. "
        "Preserve before anything is changed; run each command's server dry-run before it is applied.",
        "",
    ]
    for priority, phase in PHASE.items():
        g = actions[actions["priority"] == priority]
        if g.empty:
            continue
        lines += [f"## {priority}. {escape(phase.capitalize())} ({len(g)})", ""]
        for r in g.itertuples(index=False):
            box = "x" if bool(getattr(r, "done", False)) else " "
            lines.append(f"- [{box}] **{int(r.step)}.** {escape(r.action)}")
            detail = [f"*{escape(r.kind)}* · {escape(r.control)}"]
            if r.why:
                detail.append(f"why: {escape(r.why)}")
            if r.command:
                detail.append(f"run: {code(r.command)}")
            if r.artifact:
                detail.append(f"file: {code(r.artifact)}")
            verdict = getattr(r, "verdict", None)
            if isinstance(verdict, str):
                detail.append(f"verified: **{escape(verdict)}** — {escape(getattr(r, 'evidence', ''))}")
            if r.references:
                detail.append(f"references: {escape(r.references)}")
            if len(r.event_ids):
                detail.append(f"evidence: {len(r.event_ids)} event(s), e.g. {code(list(r.event_ids)[0])}")
            lines += [f"  - {d}" for d in detail]
        lines.append("")
    return "\n".join(lines)
