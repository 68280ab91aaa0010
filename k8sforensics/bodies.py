"""JSON bodies read after the loaders — request and response objects, inventory objects — parsed
with a size and a depth bound, so a hostile or broken body is left unread with a reason instead
of exhausting memory or the interpreter's stack.

``parse_body(text)`` returns ``Body(value, None)`` or ``Body(None, reason)``; an ``UnreadableBodies``
collector parses the same way and keeps what it left unread (how many, why, which events) for the
caller to record — ``summary()`` is a small JSON-ready dict.

Bounds: orjson itself refuses nesting past 1,024 levels (``JSONDecodeError``), but a value that
deep still overflows any recursive Python walk over it (the recursion limit is 1,000), and
``orjson.dumps`` refuses values deeper than 255. A body nested deeper than ``MAX_BODY_DEPTH``
(checked iteratively after parsing) is therefore unread too: any walk over a value this module
returns recurses at most that deep.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from typing import Any, NamedTuple

import numpy as np
import orjson
import pandas as pd

#: bodies larger than this (bytes of UTF-8) are not parsed; the API server takes at most 3 MiB
MAX_BODY_BYTES = 8 * 1024 * 1024
#: deeper nesting than this (objects and arrays; ``{}`` is 1) is not read. Kubernetes objects
#: nest about 10-20 levels; below orjson.dumps' 255 so a part of a body can be written back out
MAX_BODY_DEPTH = 100

TOO_LARGE = "too large"
TOO_DEEP = "too deep"
NOT_JSON = "not JSON"
NOT_OBJECT = "not an object"  # JSON, but not the object the caller reads (a list, a number)
REASONS = (TOO_LARGE, TOO_DEEP, NOT_JSON, NOT_OBJECT)

log = logging.getLogger(__name__)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


class Body(NamedTuple):
    """A parsed body (``value``), or None and why it was not read (``reason``: ``TOO_LARGE``,
    ``TOO_DEEP`` or ``NOT_JSON``; callers add ``NOT_OBJECT``). Absent text (None, empty) is ``Body(None, None)``: nothing to read."""

    value: Any
    reason: str | None


def parse_body(text: Any, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_BODY_DEPTH) -> Body:
    """``text`` (str or bytes) parsed as JSON, unless it is larger than ``max_bytes``, nested
    deeper than ``max_depth`` or not JSON. What orjson refuses but the standard library reads
    (integers past 64 bits, NaN) is read with ``json`` once its nesting is known to be within
    bounds. A value already parsed (a dict or list) is only checked for depth."""
    if text is None or (
        not isinstance(text, (str, bytes, dict, list)) and pd.api.types.is_scalar(text) and pd.isna(text)
    ):
        return Body(None, None)  # None, or NaN / NA from a pandas column
    if isinstance(text, (dict, list)):
        return Body(None, TOO_DEEP) if _deeper_than(text, max_depth) else Body(text, None)
    if isinstance(text, (bytearray, memoryview)):
        text = bytes(text)
    if not isinstance(text, (str, bytes)):
        return Body(None, NOT_JSON)
    if not text:
        return Body(None, None)
    if _too_large(text, max_bytes):
        return Body(None, TOO_LARGE)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _fallback(text, max_depth)
    if isinstance(value, (dict, list)) and _may_nest_deeper(text, max_depth) and _deeper_than(value, max_depth):
        return Body(None, TOO_DEEP)
    return Body(value, None)


def _too_large(text: str | bytes, max_bytes: int) -> bool:
    if isinstance(text, bytes) or len(text) > max_bytes:
        return len(text) > max_bytes  # a character is at least a byte
    # encode only what could be over the bound: a character is at most four bytes
    return len(text) * 4 > max_bytes and len(text.encode("utf-8", "surrogatepass")) > max_bytes


def _may_nest_deeper(text: str | bytes, max_depth: int) -> bool:
    """False when the text has too few brackets to nest deeper than ``max_depth``: a count in
    C, so most bodies skip the walk."""
    if isinstance(text, bytes):
        return text.count(b"{") + text.count(b"[") > max_depth
    return text.count("{") + text.count("[") > max_depth


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``max_depth`` deep; iterative."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > max_depth:
            return True
        for child in v.values() if isinstance(v, dict) else v:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def json_depth(text: str | bytes) -> int:
    """The deepest bracket nesting of JSON text, strings left out (vectorised, no parsing)."""
    s = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    s = _STRINGS.sub('""', s)
    codes = np.frombuffer(s.encode("utf-8", "replace"), dtype=np.uint8)
    step = np.zeros(len(codes), dtype=np.int32)
    step[(codes == ord("{")) | (codes == ord("["))] = 1
    step[(codes == ord("}")) | (codes == ord("]"))] = -1
    return int(np.cumsum(step).max(initial=0))


def _fallback(text: str | bytes, max_depth: int) -> Body:
    # json's decoder recurses in C and raises RecursionError near 1,000 levels: measure first
    if _may_nest_deeper(text, max_depth) and json_depth(text) > max_depth:
        return Body(None, TOO_DEEP)
    try:
        value = json.loads(text)
    except ValueError:  # JSONDecodeError, and integers longer than Python converts
        return Body(None, NOT_JSON)
    return Body(value, None)


class UnreadableBodies:
    """The bodies a step left unread, and why, for its caller to record.

    ``parse(text, where=..., event_id=...)`` parses like ``parse_body`` and returns the value or
    None; each body left unread is counted once per ``(where, event_id)`` (a body read twice, as
    detection does chunk by chunk, counts once). ``summary()`` gives the totals by reason and by
    place and up to ``keep`` examples; ``total`` the count."""

    def __init__(self, *, keep: int = 100, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_BODY_DEPTH) -> None:
        self.keep = keep
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.by_reason: Counter[str] = Counter()
        self.by_where: Counter[str] = Counter()
        self.examples: list[dict[str, Any]] = []
        self._seen: set[tuple[str, str]] = set()

    @property
    def total(self) -> int:
        """How many bodies were left unread."""
        return sum(self.by_reason.values())

    def parse(self, text: Any, *, where: str, event_id: Any = None) -> Any:
        """The parsed body, or None (absent, or unread: then recorded under ``where``)."""
        value, reason = parse_body(text, max_bytes=self.max_bytes, max_depth=self.max_depth)
        if reason is not None:
            self.add(reason, where=where, event_id=event_id)
        return value

    def add(self, reason: str, *, where: str, event_id: Any = None) -> None:
        """Record one body left unread (at most once per ``where`` and ``event_id``)."""
        if event_id is not None:
            key = (where, str(event_id))
            if key in self._seen:
                return
            self._seen.add(key)
        self.by_reason[reason] += 1
        self.by_where[where] += 1
        if len(self.examples) < self.keep:
            self.examples.append(
                {"where": where, "event_id": None if event_id is None else str(event_id), "reason": reason}
            )
        log.debug("%s: body of %s left unread (%s)", where, event_id, reason)

    def merge(self, other: UnreadableBodies) -> None:
        """Add what ``other`` recorded."""
        for ex in other.examples:
            if len(self.examples) < self.keep:
                self.examples.append(ex)
        self.by_reason.update(other.by_reason)
        self.by_where.update(other.by_where)
        self._seen |= other._seen

    def summary(self) -> dict[str, Any]:
        """``{"total", "by_reason", "by_where", "examples", "max_bytes", "max_depth"}``, JSON-ready."""
        return {
            "total": self.total,
            "by_reason": dict(self.by_reason),
            "by_where": dict(self.by_where),
            "examples": list(self.examples),
            "max_bytes": self.max_bytes,
            "max_depth": self.max_depth,
        }

    def snapshot(self) -> Counter[str]:
        """The counts by reason so far, for ``warn(step, since=...)`` after a step."""
        return Counter(self.by_reason)

    def warn(self, step: str, since: Counter[str] | None = None) -> None:
        """Log one warning if bodies were left unread (since the ``snapshot()`` taken before the step)."""
        new = self.by_reason - (since or Counter())
        if new:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(new.items()))
            log.warning(
                "%s: %d body(ies) left unread (%s); bounds %d bytes, %d levels",
                step,
                sum(new.values()),
                reasons,
                self.max_bytes,
                self.max_depth,
            )

    def __repr__(self) -> str:
        return f"UnreadableBodies(total={self.total}, by_reason={dict(self.by_reason)})"


__all__ = [
    "MAX_BODY_BYTES",
    "MAX_BODY_DEPTH",
    "NOT_JSON",
    "NOT_OBJECT",
    "REASONS",
    "TOO_DEEP",
    "TOO_LARGE",
    "Body",
    "UnreadableBodies",
    "parse_body",
]
