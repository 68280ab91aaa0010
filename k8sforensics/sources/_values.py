"""Reading loosely typed JSON values the same way in every format."""

from __future__ import annotations

from typing import Any


def as_object(v: Any) -> dict[str, Any]:
    """``v`` if it is a JSON object, else an empty one (fields may hold anything)."""
    return v if isinstance(v, dict) else {}


def as_int(v: Any) -> int | None:
    """An integer from a number or numeric text ('42', '25238.0' as some re-exports write);
    booleans, other text and out-of-range values are None."""
    if v is None or isinstance(v, bool):
        return None
    try:
        i = int(v) if not isinstance(v, (float, str)) or (isinstance(v, str) and v.lstrip("-").isdigit()) else int(float(v))
    except (TypeError, ValueError, OverflowError):
        return None
    return i if -(2**63) <= i < 2**63 else None
