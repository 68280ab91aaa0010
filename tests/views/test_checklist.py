"""The checklist panel saves ticks and notes to the case at once; the static page shows them,
escaped."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from k8sforensics import views
from k8sforensics.remediation import Checklist


def _actions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "action_id": ["a1", "b2", "c3"],
            "step": [1, 2, 3],
            "priority": [2, 4, 6],
            "phase": ["contain", "eradicate", "harden"],
            "kind": ["isolate", "delete", "apply"],
            "action": ["isolate pod <img src=x onerror=alert(1)>", "delete the binding evil", "apply the policies"],
            "target": ["pod:x", "binding:evil", "cluster"],
            "control": ["NetworkPolicy", "RBAC", "NetworkPolicy"],
            "why": ["control reached it", "created by sa:x", ""],
            "finding_ids": [["f1"], ["f2"], []],
            "event_ids": [["e1"], ["e2"], []],
            "references": ["CIS 5.3.2", "", ""],
            "command": ["kubectl label pod x q=true", "kubectl delete clusterrolebinding evil", ""],
            "artifact": ["", "", "remediation/10-networkpolicies.yaml"],
            "status": ["open"] * 3,
        }
    )


def test_ticking_a_box_writes_the_checklist(tmp_path: Path) -> None:
    (tmp_path / "remediation").mkdir()
    (tmp_path / "remediation" / "10-networkpolicies.yaml").write_text("kind: NetworkPolicy  # <b>not bold</b>\n")
    panel = views.checklist_panel(_actions(), case_dir=tmp_path)
    boxes = [w for w in _walk(panel) if type(w).__name__ == "Checkbox"]
    notes = [w for w in _walk(panel) if type(w).__name__ == "Text"]
    assert len(boxes) == 3 and boxes[0].description.startswith(
        "1. isolate pod <img"
    )  # widgets show descriptions as text
    boxes[1].value = True
    notes[1].value = "done by Ana"
    saved = json.loads((tmp_path / "remediation" / "checklist.json").read_text())["items"]
    assert saved["b2"]["done"] is True and saved["b2"]["note"] == "done by Ana"
    assert "1 of 3 actions done" in panel.children[0].value
    preview = [w for w in _walk(panel) if type(w).__name__ == "HTML" and "NetworkPolicy" in w.value][-1]
    assert "&lt;b&gt;not bold&lt;/b&gt;" in preview.value
    again = views.checklist_panel(_actions(), case_dir=tmp_path)  # a restarted kernel sees the tick
    assert [w for w in _walk(again) if type(w).__name__ == "Checkbox"][1].value is True


def test_static_page_shows_progress_escaped(tmp_path: Path) -> None:
    Checklist(tmp_path).mark("a1", done=True, note="<script>x</script>")
    page = views.checklist_html(Checklist(tmp_path).apply(_actions()))
    assert "☑ isolate pod &lt;img src=x onerror=alert(1)&gt;" in page and "☐ delete the binding evil" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.index("2. contain") < page.index("4. eradicate") < page.index("6. harden")
    assert '<li value="2" data-action="b2">' in page


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)
