"""in_burst over whole columns marks the rows a per-row reference marks (sliding windows per key,
counts and distinct values); in_lists finds a value in list cells as a cell-by-cell check does;
and the reduction's selection (hits_from_rows while selecting) names the events the built hits name."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from k8sforensics.detect.audit_rules import _items, in_burst, in_lists
from k8sforensics.detect.engine import hits_from_rows, selecting


def _reference(
    rows: pd.DataFrame, *, by: list[str], window: pd.Timedelta, min_count: int, distinct: str | None
) -> list[bool]:
    out = dict.fromkeys(rows.index, False)
    keys = rows[by].astype(str).agg("\0".join, axis=1) if by else pd.Series("", index=rows.index)
    for _, idx in keys.groupby(keys, sort=False).groups.items():
        g = rows.loc[idx].sort_values("time", kind="stable")
        times = list(g["time"])
        values = list(g[distinct].astype(str)) if distinct else None
        for i, t in enumerate(times):
            j = i
            while j < len(times) and times[j] < t + window:
                j += 1
            n = len(set(values[i:j])) if values is not None else j - i
            if n >= min_count:
                for k in g.index[i:j]:
                    out[k] = True
    return [out[i] for i in rows.index]


def _rows(seed: int, n: int) -> pd.DataFrame:
    rng = random.Random(seed)
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = pd.DataFrame(
        {
            "time": [
                t0 + pd.Timedelta(seconds=rng.choice([rng.randint(0, 600), rng.randint(0, 20) * 30])) for _ in range(n)
            ],
            "user": pd.Series([rng.choice(["a", "b", "None"]) for _ in range(n)], dtype=object),
            "source_ip": pd.Series([rng.choice(["10.0.0.1", "10.0.0.2"]) for _ in range(n)], dtype="str"),
            "resource": pd.Series([rng.choice(["pods", "secrets", "nodes", "None"]) for _ in range(n)], dtype="str"),
        }
    )
    rows.index = np.random.RandomState(seed).permutation(n) * 2
    return rows


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(
    "kw",
    [
        {"by": ["user"], "window": pd.Timedelta(minutes=5), "min_count": 5, "distinct": None},
        {"by": ["source_ip"], "window": pd.Timedelta(minutes=1), "min_count": 6, "distinct": None},
        {"by": ["user", "source_ip"], "window": pd.Timedelta(minutes=1), "min_count": 3, "distinct": "resource"},
        {"by": [], "window": pd.Timedelta(seconds=30), "min_count": 2, "distinct": "user"},
    ],
)
def test_in_burst_marks_what_a_per_row_reference_marks(seed: int, kw: dict) -> None:
    rows = _rows(seed, random.Random(seed).choice([1, 4, 40, 300]))
    got = in_burst(rows, **kw)
    assert got.index.equals(rows.index)
    assert got.tolist() == _reference(rows, **kw)


def test_in_lists() -> None:
    cells = pd.Series(
        [
            np.array(["x", "system:unauthenticated"], dtype=object),
            None,
            ["x"],
            [],
            np.nan,
            ["system:unauthenticated", None],
        ],
        index=[5, 4, 3, 2, 1, 9],
    )
    want = [("system:unauthenticated" in _items(g)) for g in cells]
    assert in_lists(cells, "system:unauthenticated").tolist() == want == [True, False, False, False, False, True]
    text = pd.Series(["system:unauthenticated", None])  # a text cell is not a list: never a member
    assert in_lists(text, "system:unauthenticated").tolist() == [False, False]


def test_selecting_names_the_events_the_built_hits_name() -> None:
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = pd.DataFrame(
        {
            "time": [t0 + pd.Timedelta(minutes=m) for m in (0, 1, 30, 31, 2)],
            "event_id": ["e1", "e2", "e3", "e4", "e5"],
            "user": ["u", "u", "u", "v", "u"],
        }
    )
    linked = pd.Series([None, "r1", None, "r2", None])
    kw = {
        "entity_type": "user",
        "entity": rows["user"],
        "user": rows["user"],
        "summary": lambda r: f"{r.entity} x{r.n}",
        "table": "audit",
        "gap": pd.Timedelta(minutes=10),
        "linked": linked,
    }
    built = hits_from_rows(rows, **kw)
    with selecting():
        chosen = hits_from_rows(rows, **kw)
    assert len(built) == 3 and len(chosen) == len(rows)
    assert {i for ids in built["event_ids"] for i in ids} == {i for ids in chosen["event_ids"] for i in ids}
    assert set(chosen.columns) >= set(built.columns) - {"n"}
    assert hits_from_rows(rows, **kw).equals(built)  # selecting ends with its block
