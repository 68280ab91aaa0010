"""Arrow → pandas, the same way everywhere."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

_NULLABLE_INTS = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
}


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a DataFrame: times as ``datetime64[ns, UTC]``, integers as nullable
    integers (a missing response code stays missing, not NaN), maps (labels, annotations)
    as dicts, lists as lists."""
    return table.to_pandas(maps_as_pydicts="lossy", types_mapper=_NULLABLE_INTS.get)


def utc_timestamp(t: Any) -> pd.Timestamp:
    """A time given as text, datetime or Timestamp, as a UTC Timestamp (naive means UTC)."""
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def clock(t: Any) -> str:
    """A time as analysts read it in a sentence: ``2026-03-10 10:33:00`` (UTC)."""
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def time_chunks(buckets: pd.Series, *, every: pd.Timedelta, rows: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``[start, end)`` time ranges that split a table into chunks of whole buckets.

    ``buckets`` counts the rows per bucket number (``time // every``, from the epoch), in any
    order. Consecutive buckets are grouped while they hold at most ``rows`` rows together; a
    bucket holding more is a chunk of its own. The ranges cover every bucket, without gaps."""
    counts = buckets[buckets > 0].sort_index()
    if counts.empty:
        return []
    step = pd.Timedelta(every).value
    epoch = pd.Timestamp(0, tz="UTC")
    firsts, held = [int(counts.index[0])], 0
    for bucket, n in counts.items():
        if held and held + n > rows:
            firsts.append(int(bucket))
            held = 0
        held += int(n)
    ends = [*firsts[1:], int(counts.index[-1]) + 1]
    return [(epoch + pd.Timedelta(a * step, "ns"), epoch + pd.Timedelta(b * step, "ns")) for a, b in zip(firsts, ends)]


def frame_chunks(frame: pd.DataFrame, *, every: pd.Timedelta, rows: int) -> list[pd.DataFrame]:
    """``frame`` (ordered by time) cut as ``time_chunks`` cuts a table: what a chunked pass
    over a case does, over a frame already in memory."""
    if frame.empty:
        return []
    times = pd.to_datetime(frame["time"], utc=True).dt.as_unit("ns")
    step = pd.Timedelta(every).value
    buckets = times.astype("int64") // step
    cuts = time_chunks(buckets.value_counts(), every=every, rows=rows)
    return [frame[((times >= lo) & (times < hi)).to_numpy()] for lo, hi in cuts]
