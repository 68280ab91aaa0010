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


def test_tables_read_left_to_right_with_compact_times_and_ids_behind_a_count() -> None:
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(["2026-03-10T10:10:00.200Z", "2026-03-10T10:11:00Z"], utc=True, format="ISO8601"),
            "port": [8080, 53],
            "entity": [EVIL, "shop/web"],
            "event_ids": [["a:1", "a:2", "a:3"], ["b:1"]],
            "finding_id": [None, None],
        }
    )
    html = table_html(frame)
    assert "2026-03-10 10:10:00.200Z" in html and "2026-03-10 10:11:00Z" in html and "+00:00" not in html
    assert "<td class='k8sf-num'>8080</td>" in html and "<td class='k8sf-text'>&lt;img" in html and "<img" not in html
    assert "<summary>show 3</summary><code>a:1, a:2, a:3</code>" in html and "<td class='k8sf-text'>b:1</td>" in html
    assert "None" not in html and "[" not in html  # no Python reprs
    assert "1 more rows not shown" in table_html(frame, max_rows=1)
    interactive = table_html(frame, interactive=True)
    assert "<img" not in interactive and "&lt;img" in interactive and "k8sf-time" in interactive
