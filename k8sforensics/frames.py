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
