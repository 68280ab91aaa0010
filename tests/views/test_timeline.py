"""The swim-lane figure: one lane per entity, one trace per phase, and every string escaped."""

from __future__ import annotations

import pandas as pd

from k8sforensics.detect import PHASES
from k8sforensics.views import escape, kill_chain_figure, narrative_html, table_html

EVIL = "<img src=x onerror=alert(1)>"


def _timeline() -> pd.DataFrame:
    t = pd.Timestamp("2026-01-01T10:00:00Z")
    rows = [
        {
            "time": t,
            "time_end": t,
            "kind": "finding",
            "kill_chain_phase": "Reconnaissance",
            "tactic": "Discovery",
            "technique_id": "MS-TA9031",
            "attack_id": "T1046",
            "severity": "medium",
            "title": "scan",
            "entity": "198.51.100.66",
            "summary": "scan",
            "event_ids": ["a:1"],
        },
        {
            "time": t + pd.Timedelta(minutes=5),
            "time_end": t + pd.Timedelta(minutes=9),
            "kind": "finding",
            "kill_chain_phase": "Exploitation",
            "tactic": "Execution",
            "technique_id": None,
            "attack_id": "T1059",
            "severity": "critical",
            "title": EVIL,
            "entity": EVIL,
            "summary": f"user {EVIL} ran {EVIL}",
            "event_ids": ["a:2", "a:3"],
        },
        {
            "time": t,
            "time_end": t,
            "kind": "evidence",
            "kill_chain_phase": "Reconnaissance",
            "entity": "198.51.100.66",
            "summary": "x",
            "event_ids": None,
        },
    ]
    return pd.DataFrame(rows)


def test_lanes_traces_and_escaping() -> None:
    fig = kill_chain_figure(_timeline())
    markers = [tr for tr in fig.data if tr.mode == "markers"]
    assert [tr.name for tr in markers] == ["Reconnaissance", "Exploitation"]
    assert [tr for tr in fig.data if tr.mode == "lines"]  # the 4-minute finding is drawn as a span
    payload = fig.to_json()
    assert "<img" not in payload and "&lt;img src=x onerror=alert(1)&gt;" in payload
    assert set(fig.layout.yaxis.categoryarray) == {"198.51.100.66", escape(EVIL)}
    assert PHASES.index("Reconnaissance") < PHASES.index("Exploitation")


def test_empty_timeline_gives_an_empty_figure() -> None:
    fig = kill_chain_figure(_timeline().iloc[0:0])
    assert not fig.data and "no findings" in fig.layout.title.text


def test_html_pieces_escape() -> None:
    assert "<img" not in narrative_html(EVIL) and "&lt;img" in narrative_html(EVIL)
    assert "<img" not in table_html(pd.DataFrame({"a": [EVIL]}))
