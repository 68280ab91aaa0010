"""Reading loosely typed JSON values the same way in every format."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .protocol import BadRecord

EpochUnit = Literal["s", "ms", "us", "ns"]


class RawNumber(str):
    """A number no float holds (``1e400``), or ``NaN``/``Infinity``, kept as the text it was
    written as: the record is read; a column that wants a number quarantines it, a text column
    keeps the text."""


def as_object(v: Any) -> dict[str, Any]:
    """``v`` if it is a JSON object, else an empty one (fields may hold anything)."""
    return v if isinstance(v, dict) else {}


def as_int(v: Any) -> int | None:
    """An integer from a number or numeric text ('42', '25238.0' as some re-exports write);
    booleans, other text and out-of-range values are None.

    Only for values a format computes with (a sum, a lookup); a value that goes into an
    integer column is handed to the driver as it is, so a bad one is quarantined, not lost."""
    if v is None or isinstance(v, bool):
        return None
    try:
        i = (
            int(v)
            if not isinstance(v, (float, str)) or (isinstance(v, str) and v.lstrip("-").isdigit())
            else int(float(v))
        )
    except (TypeError, ValueError, OverflowError):
        return None
    return i if -(2**63) <= i < 2**63 else None


@dataclass(frozen=True)
class Epoch:
    """A time given as a number in a unit the format's documentation states (VPC flow logs:
    seconds; OCSF: milliseconds; Tracee: nanoseconds). The driver converts it without
    guessing the unit from the magnitude, and quarantines it with the number when it is
    out of range. ``value`` is as the source wrote it (a number, or numeric text)."""

    value: Any
    unit: EpochUnit


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def epoch(value: Any, unit: EpochUnit) -> Any:
    """``Epoch(value, unit)`` for a number or numeric text; anything else as it is (None stays
    missing, RFC 3339 text is parsed as text, other values are quarantined with their text)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Epoch(value, unit)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return Epoch(value, unit)
    return value


def json_text(v: Any) -> str:
    """Compact JSON text of a value, as a text column holds a list or an object."""
    try:
        return orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        # orjson stops at 255 levels and 64-bit integers; the stdlib goes further
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=str)
    except RecursionError as e:
        raise ValueError("value nested too deeply to store as text") from e
    except (TypeError, ValueError) as e:
        raise ValueError(f"value cannot be written as JSON text ({e})") from e


def text(v: Any) -> str | None:
    """A value as the text a string column would hold: text as it is, None as None, anything
    else as JSON (``5`` → ``"5"``, ``true`` → ``"true"``); for text a format builds from parts."""
    if v is None or isinstance(v, str):
        return v
    return json_text(v)


def as_list(v: Any) -> list[Any]:
    """``v`` if it is a JSON array, else an empty one (for walking a structure)."""
    return v if isinstance(v, list) else []


def count(v: Any, field: str) -> int | None:
    """A counter (bytes, packets, flows) a format adds up: a whole number or numeric text;
    empty is None. Anything else raises ``BadRecord`` naming the field — a sum must not
    quietly leave a bad part out."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise BadRecord(f"field {field}: value {json_text(v)} is not a number")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and not _NUMBER.fullmatch(v):
        raise BadRecord(f"field {field}: value {v[:80]!r} is not a number")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise BadRecord(f"field {field}: value {text(v)!s:.80} is not a number") from None
    if not math.isfinite(f) or not f.is_integer():
        raise BadRecord(f"field {field}: value {v!s:.80} is not a whole finite number")
    return int(f)


def add(values: list[int | None]) -> int | None:
    """The sum of the values given, None when none is."""
    vals = [x for x in values if x is not None]
    return sum(vals) if vals else None
