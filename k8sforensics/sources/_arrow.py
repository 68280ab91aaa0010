"""Canonical rows → Arrow: timestamps parsed once and the same way everywhere."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import QUARANTINE, TIME, Table


def to_timestamps(values: Sequence[Any] | pa.Array) -> pa.Array:
    """Strings (RFC3339 with 0-9 fraction digits, 'Z' or an offset, or a space for 'T'),
    epoch numbers (s/ms/us/ns guessed by magnitude), datetimes (naive = UTC) → timestamp[ns, UTC];
    unparseable → null."""
    if isinstance(values, pa.Array):
        if pa.types.is_timestamp(values.type):  # already a time (DuckDB output); a naive one is UTC
            return values.cast(pa.timestamp("ns", tz=values.type.tz)).cast(TIME) if values.type.tz else values.cast(pa.timestamp("ns")).cast(TIME)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            try:
                return pc.cast(values, TIME)  # RFC3339: Arrow's parser, ~30 ms per million
            except pa.ArrowInvalid:
                pass
        values = values.to_pylist()
    elif values and all(isinstance(v, str) for v in values):
        try:
            return pc.cast(pa.array(values, pa.string()), TIME)
        except pa.ArrowInvalid:
            pass

    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    strs_idx, strs = [], []
    for i, v in enumerate(values):
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, str):
            strs_idx.append(i)
            strs.append(v)
        elif isinstance(v, (int, float)):
            out[i] = _epoch_to_ns(v)
        elif isinstance(v, datetime.datetime) and not pd.isna(v):
            ts = pd.Timestamp(v)
            out[i] = (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).tz_localize(None).to_datetime64()
    if strs:
        parsed = pd.to_datetime(pd.Series(strs, dtype=object), utc=True, errors="coerce", format="ISO8601")
        arr = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
        for j in np.flatnonzero(np.isnat(arr)):
            # Spellings the ISO parser refused (e.g. '2022-11-29 00:09:04.38'): one at a time.
            if _looks_like_time(strs[j]):
                try:
                    ts = pd.Timestamp(strs[j])
                    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
                    arr[j] = ts.tz_localize(None).to_datetime64()
                except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
                    pass
        out[np.asarray(strs_idx)] = arr
    return pa.array(out, type=pa.timestamp("ns")).cast(TIME)


def _looks_like_time(s: str) -> bool:
    return len(s) >= 10 and s[:4].isdigit() and s[4] == "-"


def _epoch_to_ns(v: float) -> Any:
    a = abs(v)
    if a < 1e11:
        ns = v * 1e9
    elif a < 1e14:
        ns = v * 1e6
    elif a < 1e17:
        ns = v * 1e3
    else:
        ns = v
    try:
        return np.datetime64(int(ns), "ns")
    except (OverflowError, ValueError):
        return np.datetime64("NaT")


def rows_to_batch(rows: list[dict[str, Any]], table: Table, times: pa.Array | None = None) -> pa.RecordBatch:
    """Column lists → a RecordBatch of exactly ``table``'s schema (missing columns are null)."""
    arrays = []
    n = len(rows)
    for col in table.columns:
        if col.name == "time" and times is not None:
            arrays.append(times)
            continue
        vals = [r.get(col.name) for r in rows]
        if col.type == TIME:
            arrays.append(to_timestamps(vals))
        elif pa.types.is_map(col.type):
            arrays.append(pa.array([None if v is None else list(v.items()) for v in vals], type=col.type))
        elif vals.count(None) == n:
            arrays.append(pa.nulls(n, col.type))
        else:
            arrays.append(pa.array(vals, type=col.type))
    return pa.RecordBatch.from_arrays(arrays, schema=table.arrow_schema)


def quarantine_table(entries: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(entries, schema=QUARANTINE.arrow_schema)

