"""The checklist's progress is kept in the case, survives a restart, and a broken file is a
clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from k8sforensics.remediation import Checklist


def test_progress_is_saved_at_once_and_read_back(tmp_path: Path) -> None:
    c = Checklist(tmp_path)
    c.mark("a1", done=True)
    c.mark("b2", note="waiting for the DBA")
    again = Checklist(tmp_path)  # a new kernel, another analyst
    assert again.items["a1"]["done"] is True and again.items["b2"] == {
        **again.items["b2"],
        "done": False,
        "note": "waiting for the DBA",
    }
    actions = pd.DataFrame({"action_id": ["a1", "b2", "c3"], "action": ["x", "y", "z"]})
    applied = again.apply(actions)
    assert applied["status"].tolist() == ["done", "open", "open"] and applied["note"].tolist() == [
        "",
        "waiting for the DBA",
        "",
    ]
    assert json.loads((tmp_path / "remediation" / "checklist.json").read_text())["items"]["a1"]["updated"]


def test_a_broken_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "remediation").mkdir()
    (tmp_path / "remediation" / "checklist.json").write_text("{not json")
    with pytest.raises(ValueError, match="checklist.json: not valid JSON"):
        Checklist(tmp_path)


def test_two_analysts_marking_at_once_lose_nothing(tmp_path: Path) -> None:
    first, second = Checklist(tmp_path), Checklist(tmp_path)  # two kernels, opened before either marks
    first.mark("a1", done=True)
    second.mark("b2", note="rotated")  # must not write back the empty list it read at open
    again = Checklist(tmp_path)
    assert again.items["a1"]["done"] is True and again.items["b2"]["note"] == "rotated"
