"""Canonical rows → Arrow: every value typed against the table's schema, the same way everywhere.

A row is a dict of column → value as a format read it. ``type_rows`` turns a list of them
into a RecordBatch of the table's exact schema, record by record where it must:

* text columns: a number or boolean becomes its JSON text (``5`` → ``"5"``, ``true`` →
  ``"true"``), a list or object its compact JSON text;
* integer columns: an integer, an exactly integral float (``80.0``) or numeric text
  (``"443"``, ``"443.0"``, ``"1e3"``); a boolean, other text, a fraction, a non-finite
  number or a value the column's integer type cannot hold is **bad**;
* boolean columns: a boolean or the text ``true``/``false``;
* lists of text: a list, its scalars as text (nested values as JSON text); a non-list is bad;
* maps: an object, its values as text (for list-valued maps, lists of text); anything else is bad;
* times: see ``parse_times``; a time outside what ``timestamp[ns]`` holds or outside the
  accepted range (``TIME_RANGE`` unless the reader is given another) is bad, never wrapped
  or moved to another date.

A bad value makes its whole row bad: the row is left out of the batch and its reason names
the column and the value (``field dst_port: value -62135596800 out of range for int32``),
so the driver can quarantine the record. The vectorised conversion of a whole column is
tried first; the value-by-value path runs only for a column where it fails.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import QUARANTINE, TIME, Table
from ._values import Epoch, RawNumber, json_text

# --------------------------------------------------------------------------- time range

TIME_RANGE: tuple[str, str] = ("1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
"""The default accepted range of event times, [start, end): a time outside it is bad input
(a zero time, a sentinel, a unit mistake), quarantined with its text rather than stored."""

# timestamp[ns] holds 1677-09-21 .. 2262-04-11; whole years inside that are the outer limit
# of any range, so a time the column cannot hold is always "outside the range".
NS_LIMITS = (pd.Timestamp("1678-01-01", tz="UTC").value, pd.Timestamp("2262-01-01", tz="UTC").value)
_INT64_MIN, _INT64_MAX = -(2**63) + 1, 2**63 - 1  # int64 min itself is NaT
_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}

MISSING, OK, UNPARSEABLE, OUT_OF_RANGE = 0, 1, 2, 3


@dataclass(frozen=True)
class TimeRange:
    """Accepted event times, [lo, hi) in ns since the epoch, within what timestamp[ns] holds."""

    lo: int
    hi: int

    @classmethod
    def of(cls, spec: tuple[Any, Any] | TimeRange | None) -> TimeRange:
        """From ``(lo, hi)``: ISO text, datetimes, pandas Timestamps or epoch ns; None for either
        end means the limit of timestamp[ns]. ``None`` for the whole spec is ``TIME_RANGE``."""
        if isinstance(spec, TimeRange):
            return spec
        lo, hi = TIME_RANGE if spec is None else spec
        lo_ns = NS_LIMITS[0] if lo is None else _bound(lo)
        hi_ns = NS_LIMITS[1] if hi is None else _bound(hi)
        lo_ns, hi_ns = max(lo_ns, NS_LIMITS[0]), min(hi_ns, NS_LIMITS[1])
        if lo_ns >= hi_ns:
            raise ValueError(f"time_range {spec!r} is empty")
        return cls(lo_ns, hi_ns)

    def describe(self) -> str:
        return f"{_iso(self.lo)}..{_iso(self.hi)}"


def _bound(v: Any) -> int:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    ts = pd.Timestamp(v)
    return _ts_ns_clamped(ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC"))


def _ts_ns_clamped(ts: pd.Timestamp) -> int:
    """A Timestamp as ns, clamped to the int64 range (bounds far outside only need to compare)."""
    st, ns = _dt64_to_ns(ts.tz_localize(None).to_datetime64())
    if st == OK:
        return ns
    return _INT64_MIN if ts.year < 1970 else _INT64_MAX


def _iso(ns: int) -> str:
    ts = pd.Timestamp(ns, tz="UTC")
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- parsing times


def parse_times(
    values: Sequence[Any] | pa.Array | pa.ChunkedArray, time_range: TimeRange | None = None
) -> tuple[pa.Array, np.ndarray]:
    """Times → (timestamp[ns, UTC] array, status per value).

    Accepted: RFC 3339 / ISO 8601 text (0-9 fraction digits, 'Z' or an offset, a space for
    'T'; no zone = UTC), ``Epoch`` values (a stated unit), bare numbers (epoch seconds below
    1e12, milliseconds below 1e15, microseconds below 1e18, else nanoseconds: each unit is
    read right from 2001-09-09 on, anything read wrong lands far out of range), datetimes and
    Arrow timestamps. The status is ``MISSING`` (null input), ``OK``, ``UNPARSEABLE`` or
    ``OUT_OF_RANGE`` (outside ``time_range``, default ``TIME_RANGE``); the array is null
    wherever the status is not ``OK``. Nothing is ever wrapped into another date.
    """
    rng = time_range or DEFAULT_RANGE
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    parsed = _parse_arrow(values) if isinstance(values, pa.Array) else None
    if parsed is None and not isinstance(values, pa.Array) and values and all(type(v) is str for v in values):
        parsed = _parse_arrow(pa.array(values, pa.string()))
    if parsed is None:
        pylist = values.to_pylist() if isinstance(values, pa.Array) else values
        ns, status = _parse_python(pylist)
    else:
        ns, status = parsed
    outside = (status == OK) & ((ns < rng.lo) | (ns >= rng.hi))
    status[outside] = OUT_OF_RANGE
    arr = pa.array(ns, type=pa.int64(), mask=status != OK).cast(pa.timestamp("ns")).cast(TIME)
    return arr, status


def to_timestamps(values: Sequence[Any] | pa.Array, time_range: TimeRange | None = None) -> pa.Array:
    """Times → timestamp[ns, UTC], null for a missing, unparseable or out-of-range value."""
    return parse_times(values, time_range)[0]


def _parse_arrow(values: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """The vectorised cases: Arrow timestamps (DuckDB output) and RFC 3339 text Arrow's own
    parser takes (~30 ms per million). None: go value by value."""
    t = values.type
    if pa.types.is_timestamp(t):
        ints = values.cast(pa.int64())
        valid = pc.is_valid(ints).to_numpy(zero_copy_only=False)
        raw = pc.fill_null(ints, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        factor = _UNIT_NS[t.unit]
        # a naive time is UTC; an aware one is stored as UTC already
        inb = (raw >= _INT64_MIN // factor + 1) & (raw <= _INT64_MAX // factor)
        ns = np.where(inb, raw, 0) * factor
        status = np.where(valid, np.where(inb, OK, OUT_OF_RANGE), MISSING).astype(np.int8)
        return ns, status
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            # Arrow refuses (rather than wraps) a time timestamp[ns] cannot hold
            ts = pc.cast(values, TIME)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        ints = ts.cast(pa.int64())
        valid = pc.is_valid(ints).to_numpy(zero_copy_only=False)
        ns = pc.fill_null(ints, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        return ns, np.where(valid, OK, MISSING).astype(np.int8)
    if pa.types.is_null(t):
        return np.zeros(len(values), np.int64), np.zeros(len(values), np.int8)
    return None


def _parse_python(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    ns = np.zeros(n, np.int64)
    status = np.zeros(n, np.int8)
    strs_idx: list[int] = []
    strs: list[str] = []
    for i, v in enumerate(values):
        if v is None:
            continue
        if type(v) is str:
            strs_idx.append(i)
            strs.append(v)
            continue
        if isinstance(v, RawNumber):
            # a number past any float is far outside any range; NaN is no time at all
            st, val = (UNPARSEABLE if v.strip("+-").lower() == "nan" else OUT_OF_RANGE), 0
        elif isinstance(v, Epoch):
            st, val = epoch_ns(v.value, v.unit)
        elif isinstance(v, (bool, np.bool_)):
            st, val = UNPARSEABLE, 0
        elif isinstance(v, (int, float, np.integer, np.floating)):
            st, val = epoch_ns(v, guess_unit(v))
        elif isinstance(v, (datetime.datetime, pd.Timestamp)):
            st, val = _timestamp_ns(pd.Timestamp(v))
        elif isinstance(v, np.datetime64):
            st, val = _dt64_to_ns(v)
        else:
            st, val = UNPARSEABLE, 0
        status[i], ns[i] = st, val
    if strs:
        sns, sst = _parse_strings(strs)
        idx = np.asarray(strs_idx)
        status[idx], ns[idx] = sst, sns
    return ns, status


def guess_unit(v: float) -> str:
    """The epoch unit of a bare number, from its magnitude (see ``parse_times``)."""
    a = abs(v)
    return "s" if a < 1e12 else "ms" if a < 1e15 else "us" if a < 1e18 else "ns"


_INT_TEXT = re.compile(r"\s*[+-]?\d+\s*")
_FLOAT_TEXT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*|\s*[+-]?(inf|infinity|nan)\s*", re.IGNORECASE)


def epoch_ns(v: Any, unit: str) -> tuple[int, int]:
    """(status, ns) of an epoch value in ``unit``: a number or numeric text."""
    factor = _UNIT_NS[unit]
    if isinstance(v, str):
        if _INT_TEXT.fullmatch(v) and len(v.strip()) <= 40:
            v = int(v)
        elif _FLOAT_TEXT.fullmatch(v):
            v = float(v)
        else:
            return UNPARSEABLE, 0
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return UNPARSEABLE, 0
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return UNPARSEABLE, 0
        if math.isinf(v) or abs(v) * factor >= 2**63:
            return OUT_OF_RANGE, 0
        if float(v).is_integer():
            v = int(v)  # exact: no float rounding of whole seconds
        else:
            return OK, round(v * factor)
    total = int(v) * factor
    return (OK, total) if _INT64_MIN <= total <= _INT64_MAX else (OUT_OF_RANGE, 0)


def _dt64_to_ns(v: np.datetime64) -> tuple[int, int]:
    if np.isnat(v):
        return UNPARSEABLE, 0
    unit = np.datetime_data(v.dtype)[0]
    raw = int(v.astype(np.int64))
    factor = {"D": 86400 * 10**9, "h": 3600 * 10**9, "m": 60 * 10**9, **_UNIT_NS}.get(unit)
    if factor is None:  # finer than ns (ps, fs, as): to ns by division
        return OK, raw // {"ps": 10**3, "fs": 10**6, "as": 10**9}.get(unit, 1)
    total = raw * factor
    return (OK, total) if _INT64_MIN <= total <= _INT64_MAX else (OUT_OF_RANGE, 0)


def _timestamp_ns(ts: pd.Timestamp) -> tuple[int, int]:
    if pd.isna(ts):
        return UNPARSEABLE, 0
    ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
    return _dt64_to_ns(ts.to_datetime64())


_TIME_TEXT = re.compile(r"\s*([+-]?\d{4,})-(\d\d)-(\d\d)")


def _parse_strings(strs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    n = len(strs)
    ns = np.zeros(n, np.int64)
    status = np.full(n, UNPARSEABLE, np.int8)
    try:
        parsed = pd.to_datetime(pd.Series(strs, dtype=object), utc=True, errors="coerce", format="ISO8601")
    except (ValueError, OverflowError, TypeError):  # one odd spelling must not cost the batch
        parsed = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    # pandas 3 keeps a time timestamp[ns] cannot hold in a coarser unit; converting that to ns
    # with astype would wrap it silently, so the bounds are checked in the parsed unit.
    arr = parsed.dt.tz_localize(None).to_numpy()
    unit = np.datetime_data(arr.dtype)[0]
    factor = _UNIT_NS.get(unit, 1)
    raw = arr.view(np.int64)
    nat = np.isnat(arr)
    inb = ~nat & (raw >= _INT64_MIN // factor + 1) & (raw <= _INT64_MAX // factor)
    ns[inb] = raw[inb] * factor
    status[inb] = OK
    status[~nat & ~inb] = OUT_OF_RANGE
    for j in np.flatnonzero(nat):
        s = strs[j]
        m = _TIME_TEXT.match(s)
        if not m:
            continue
        try:
            # spellings the ISO parser refused (e.g. '2022-11-29 00:09:04.38'): one at a time
            status[j], ns[j] = _timestamp_ns(pd.Timestamp(s.strip()))
        except (ValueError, OverflowError, TypeError):  # OutOfBoundsDatetime is a ValueError
            year = int(m.group(1))
            if not 1678 <= year <= 2261 and 1 <= int(m.group(2)) <= 12 and 1 <= int(m.group(3)) <= 31:
                status[j] = OUT_OF_RANGE  # a date, but of a year no timestamp[ns] holds
    return ns, status


DEFAULT_RANGE = TimeRange.of(None)


# --------------------------------------------------------------------------- typing values


def shown(v: Any, limit: int = 80) -> str:
    """A value as a quarantine reason shows it: text quoted, numbers as written, JSON for the rest."""
    if isinstance(v, Epoch):
        return f"{shown(v.value, limit)} (epoch {v.unit})"
    if isinstance(v, RawNumber):
        return str(v)[:limit]
    if isinstance(v, str):
        s = v if len(v) <= limit else v[:limit] + "…"
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\r", "\\r").replace("\n", "\\n") + "'"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (int, np.integer)):
        i = int(v)
        # str() of a very long integer is slow (and refused past 4300 digits): say its size
        return str(i) if abs(i) < 10**60 else f"an integer of about {int(i.bit_length() * 0.30103) + 1} digits"
    try:
        text = json_text(v)
    except ValueError:
        text = type(v).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def _time_shown(v: Any) -> str:
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
        if isinstance(v, (float, np.floating)) and not math.isfinite(v):
            return shown(v)
        return f"{shown(v)} (read as epoch {guess_unit(v)})"
    return shown(v)


def time_problem(name: str, status: int, raw: Any, rng: TimeRange, required: bool) -> str | None:
    """The quarantine reason for one time value, or None when it is fine."""
    if status == OK:
        return None
    if status == MISSING:
        return f"field {name}: no timestamp in the record" if required else None
    if status == UNPARSEABLE:
        return f"field {name}: unparseable timestamp {_time_shown(raw)}"
    return f"field {name}: timestamp {_time_shown(raw)} outside the accepted range {rng.describe()}"


def _scalar_text(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return orjson.dumps(f).decode()
    if isinstance(v, Epoch):
        return _scalar_text(v.value) if not isinstance(v.value, str) else v.value
    return json_text(v)


class _Bad(Exception):
    """One value that does not fit its column; the message is the reason (without the field)."""


def _text(v: Any) -> str:
    if type(v) is str:
        s = v
    elif isinstance(v, str):
        s = str(v)
    elif isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError as e:
            raise _Bad("value is not valid UTF-8 text") from e
    else:
        try:
            s = _scalar_text(v)
        except ValueError as e:
            raise _Bad(str(e)) from e
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates from a '\ud800' escape
        raise _Bad(f"value {shown(s)} is not valid Unicode text") from e
    return s


def _int_value(v: Any, lo: int, hi: int, type_name: str) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise _Bad(f"value {shown(v)} is not an integer")
    if isinstance(v, (int, np.integer)):
        i = int(v)
    elif isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            raise _Bad(f"value {shown(v)} is not a finite number")
        if not float(v).is_integer():
            raise _Bad(f"value {shown(v)} is not an integer")
        i = int(v)
    elif isinstance(v, str):
        t = v.strip()
        if _INT_TEXT.fullmatch(t):
            if len(t) > 40:
                raise _Bad(f"value {shown(v)} out of range for {type_name}")
            i = int(t)
        elif _FLOAT_TEXT.fullmatch(t):
            f = float(t)
            if not math.isfinite(f):
                raise _Bad(f"value {shown(v)} is not a finite number")
            if not f.is_integer():
                raise _Bad(f"value {shown(v)} is not an integer")
            i = int(f)
        else:
            raise _Bad(f"value {shown(v)} is not an integer")
    else:
        raise _Bad(f"value {shown(v)} is not an integer")
    if not lo <= i <= hi:
        raise _Bad(f"value {shown(v)} out of range for {type_name}")
    return i


def _bool_value(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise _Bad(f"value {shown(v)} is not a boolean")


def _text_list(v: Any) -> list[str | None]:
    if not isinstance(v, (list, tuple)):
        raise _Bad(f"value {shown(v)} is not a list")
    return [None if x is None else _text(x) for x in v]


def _converter(t: pa.DataType) -> Callable[[Any], Any]:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _text
    if pa.types.is_integer(t):
        info = np.iinfo(t.to_pandas_dtype())
        lo, hi, name = int(info.min), int(info.max), str(t)
        return lambda v: _int_value(v, lo, hi, name)
    if pa.types.is_boolean(t):
        return _bool_value
    if pa.types.is_list(t) and pa.types.is_string(t.value_type):
        return _text_list
    if pa.types.is_map(t):
        item = _converter(t.item_type)

        def to_map(v: Any) -> list[tuple[str, Any]]:
            if not isinstance(v, dict):
                raise _Bad(f"value {shown(v)} is not an object")
            out = []
            for k, x in v.items():
                key = _text(k)
                try:
                    out.append((key, None if x is None else item(x)))
                except _Bad as e:
                    raise _Bad(f"under key {shown(key)}: {e}") from None
            return out

        return to_map
    raise TypeError(f"no typing for Arrow type {t}")  # a schema change needs a rule here


_CONVERT_ERRORS = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    OverflowError,
    TypeError,
    ValueError,
    UnicodeEncodeError,
)


def _fast_array(vals: list[Any], t: pa.DataType) -> pa.Array | None:
    """The whole column at once, or None when any value needs a closer look. Only conversions
    that cannot change a value pass: pa.array alone would truncate 1.5 to 1 in an integer
    column and split the text 'ab' into ['a', 'b'] in a list column."""
    try:
        if pa.types.is_string(t) or pa.types.is_boolean(t):
            return pa.array(vals, type=t)
        if pa.types.is_integer(t) or pa.types.is_list(t):
            inferred = pa.array(vals)
            if pa.types.is_null(inferred.type):
                return pa.nulls(len(vals), t)
            if pa.types.is_integer(t) and pa.types.is_string(inferred.type):
                # numeric text (flow-log fields, int64 counters as JSON strings): plain digits
                # only, as Arrow's cast would also read '0x50' as 80
                plain = pc.all(pc.match_substring_regex(inferred, r"^-?[0-9]{1,19}$")).as_py()
                return inferred.cast(t) if plain else None
            ok = (
                pa.types.is_integer(inferred.type)
                if pa.types.is_integer(t)
                else pa.types.is_list(inferred.type)
                and (pa.types.is_string(inferred.type.value_type) or pa.types.is_null(inferred.type.value_type))
            )
            return inferred.cast(t) if ok else None  # a safe cast: overflow raises
        if pa.types.is_map(t):
            list_values = pa.types.is_list(t.item_type)
            items = []
            for v in vals:
                if v is None:
                    items.append(None)
                elif type(v) is not dict or (list_values and not all(x is None or type(x) is list for x in v.values())):
                    return None
                else:
                    items.append(list(v.items()))
            return pa.array(items, type=t)
    except _CONVERT_ERRORS:
        return None
    return None


def _typed_column(vals: list[Any], t: pa.DataType, name: str, bad: dict[int, str]) -> pa.Array:
    arr = _fast_array(vals, t)
    if arr is not None:
        return arr
    convert = _converter(t)
    out: list[Any] = []
    for i, v in enumerate(vals):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(convert(v))
        except _Bad as e:
            bad.setdefault(i, f"field {name}: {e}")
            out.append(None)
        except RecursionError:
            bad.setdefault(i, f"field {name}: value nested too deeply to store as text")
            out.append(None)
    return pa.array(out, type=t)


def type_rows(
    rows: list[dict[str, Any]],
    table: Table,
    *,
    time_range: TimeRange | None = None,
) -> tuple[pa.RecordBatch, dict[int, str]]:
    """Rows → (a RecordBatch of exactly ``table``'s schema holding the good rows, in order;
    ``{index of a bad row: reason}``). A row is bad when any of its values does not fit its
    column (see the module docstring); the reason names the first such column."""
    rng = time_range or DEFAULT_RANGE
    n = len(rows)
    bad: dict[int, str] = {}
    arrays = []
    for col in table.columns:
        vals = [r.get(col.name) for r in rows]
        if col.type == TIME:
            arr, status = parse_times(vals, rng)
            required = col.name == "time" and table.time_required
            for i in np.flatnonzero(status != OK):
                reason = time_problem(col.name, int(status[i]), vals[i], rng, required)
                if reason is not None:
                    bad.setdefault(int(i), reason)
            arrays.append(arr)
        elif vals.count(None) == n:
            arrays.append(pa.nulls(n, col.type))
        else:
            arrays.append(_typed_column(vals, col.type, col.name, bad))
    batch = pa.RecordBatch.from_arrays(arrays, schema=table.arrow_schema)
    if bad:
        keep = np.ones(n, bool)
        keep[list(bad)] = False
        batch = batch.filter(pa.array(keep))
    return batch, dict(sorted(bad.items()))


def rows_to_batch(rows: list[dict[str, Any]], table: Table, times: pa.Array | None = None) -> pa.RecordBatch:
    """Rows → a RecordBatch of exactly ``table``'s schema (missing columns are null), for the
    derived context tables: values are typed as ``type_rows`` types them, and a value that
    does not fit its column (or a time outside what timestamp[ns] holds) is null there — the
    objects table keeps the source object as it was. ``times`` overrides the time column."""
    n = len(rows)
    wide = TimeRange(*NS_LIMITS)
    bad: dict[int, str] = {}
    arrays = []
    for col in table.columns:
        if col.name == "time" and times is not None:
            arrays.append(times)
            continue
        vals = [r.get(col.name) for r in rows]
        if col.type == TIME:
            arrays.append(parse_times(vals, wide)[0])
        elif vals.count(None) == n:
            arrays.append(pa.nulls(n, col.type))
        else:
            arrays.append(_typed_column(vals, col.type, col.name, bad))
    return pa.RecordBatch.from_arrays(arrays, schema=table.arrow_schema)


def quarantine_table(entries: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(entries, schema=QUARANTINE.arrow_schema)
