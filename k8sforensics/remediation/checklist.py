"""The analyst's progress through the checklist, kept beside the case in
``remediation/checklist.json`` so it survives a kernel restart and is shared by everyone who
opens the case: per action id, done or not, a note, who and when."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..case import CaseLock


class Checklist:
    """``Checklist(case_dir)``: ``.mark(action_id, done=True, note="...")`` writes at once;
    ``.apply(actions)`` adds the ``done`` and ``note`` columns to a checklist frame."""

    def __init__(self, case_dir: str | os.PathLike[str]) -> None:
        self.case_dir = Path(case_dir)
        self.path = self.case_dir / "remediation" / "checklist.json"
        self.items: dict[str, dict[str, Any]] = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(
                f"{self.path}: not valid JSON ({e}); fix or remove the file to start the checklist again"
            ) from None
        return {str(k): dict(v) for k, v in (data.get("items") or {}).items()}

    def mark(self, action_id: str, *, done: bool | None = None, note: str | None = None) -> None:
        """Record progress on one action. Under the case lock the file is read again and only
        this item changes, so two analysts (two kernels) marking at once lose nothing."""
        with CaseLock(self.case_dir, "checklist"):
            self.items = self._read()
            item = self.items.setdefault(action_id, {"done": False, "note": ""})
            if done is not None:
                item["done"] = bool(done)
            if note is not None:
                item["note"] = str(note)
            item["by"] = getpass.getuser()
            item["updated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".checklist.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"items": self.items}, indent=1, sort_keys=True))
            tmp.replace(self.path)  # atomic: a reader never sees half a file

    def apply(self, actions: pd.DataFrame) -> pd.DataFrame:
        """``actions`` with ``done``, ``note`` and ``status`` (done/open) from the saved progress."""
        done = actions["action_id"].map(lambda i: bool(self.items.get(i, {}).get("done", False)))
        note = actions["action_id"].map(lambda i: str(self.items.get(i, {}).get("note", "")))
        return actions.assign(done=done, note=note, status=done.map({True: "done", False: "open"}))
