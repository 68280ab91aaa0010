"""What a format module is: the members the driver calls, and the exceptions its ``rows`` raises.

Every module in ``FORMATS`` satisfies ``FormatModule`` structurally (a module's functions and
constants are its members) and declares every member: a member it does not have is ``None``
(a JSON format has ``sniff_lines = None``; a format without a DuckDB mapping has
``fast = None``). The driver calls these members and nothing else; ``__init__._check_registry``
checks each registered module against the members declared here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pyarrow as pa


class NotAnEvent(Exception):
    """Raised by a format's ``rows`` for a valid record that is not an event of its table.

    The driver counts it under ``skipped`` with the message as the reason; it is not bad input.
    """


class BadRecord(Exception):
    """Raised by a format's ``rows`` (or the driver) for a record that cannot become a row."""


def always(head: Sequence[Any], context: Mapping[str, Any]) -> bool:
    """A fast path that applies to every plain file of its format."""
    return True


@dataclass(frozen=True)
class FastPath:
    """A format's DuckDB mapping for plain files (JSON lines, or text lines), ~10x faster than
    per-record Python (benchmarks/bench_ingest.py). It must give exactly the rows the format's
    ``rows`` gives: a row it is not sure of comes out with ``_fast_ok`` false and is redone per
    record; a typed ``<col>`` beside a ``_raw_<col>`` text that did not cast is redone too.

    ``reads``: ``"ndjson"`` (DuckDB's ``read_ndjson`` with ``columns``) or ``"lines"`` (each
    line as one ``line`` column). ``query(source, head, context)``: the SELECT over ``source``
    (the driver's ``read_ndjson(...)``/``read_csv(...)`` text), given the sampled head records
    and the file context. ``applies(head, context)``: whether a file whose head is this takes
    the fast path. ``finish(batch)``: per-row work the SQL leaves to Python, on the kept rows."""

    reads: Literal["ndjson", "lines"]
    query: Callable[[str, Sequence[Any], Mapping[str, Any]], str]
    columns: Mapping[str, str] | None = None
    applies: Callable[[Sequence[Any], Mapping[str, Any]], bool] = always
    finish: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None


class FormatModule(Protocol):
    """A format: what a record of its kind looks like, and how one record becomes rows.

    ``NAME``: the format's name (the rows' ``source``). ``FAMILY``: the table its rows go to
    (``audit``, ``runtime``, ``flows``, ``objects``). ``sniff(value)``: whether a JSON record is
    of this format (None for a text format). ``sniff_lines(lines, context)``: whether the first
    lines of a text file are (None for a JSON format). ``rows(record, context)``: the record's
    canonical row dicts (raises ``NotAnEvent`` or ``BadRecord``); ``context`` is one dict per
    file and format, holding the options (``vpc_fields``) and what the format notes in it (a
    header's field order). ``fast``: the DuckDB mapping, or None."""

    NAME: str
    FAMILY: str
    sniff: Callable[[Any], bool] | None
    sniff_lines: Callable[[list[str], Mapping[str, Any]], bool] | None
    rows: Callable[[Any, dict[str, Any]], Iterable[Any]]
    fast: FastPath | None


def problems(module: Any, families: Iterable[str]) -> list[str]:
    """What keeps ``module`` from being a ``FormatModule`` whose rows go to one of ``families``:
    each member the Protocol declares, present (None where allowed) and of its kind."""
    missing = [m for m in FormatModule.__annotations__ if not hasattr(module, m)]
    if missing:
        return [f"lacks {', '.join(missing)} (a member it does not have is None)"]
    out = []
    if not (isinstance(module.NAME, str) and module.NAME):
        out.append("NAME is not a name")
    if module.FAMILY not in set(families):
        out.append(f"FAMILY {module.FAMILY!r} is no table's")
    for m in ("sniff", "sniff_lines"):
        if getattr(module, m) is not None and not callable(getattr(module, m)):
            out.append(f"{m} is neither a function nor None")
    if module.sniff is None and module.sniff_lines is None:
        out.append("has neither sniff (JSON) nor sniff_lines (text)")
    if not callable(module.rows):
        out.append("rows is not a function")
    if module.fast is not None and not isinstance(module.fast, FastPath):
        out.append("fast is neither a FastPath nor None")
    elif module.fast is not None and (module.fast.reads == "ndjson") != (module.fast.columns is not None):
        out.append("fast reads JSON lines with columns, text lines without")
    return out


__all__ = ["BadRecord", "FastPath", "FormatModule", "NotAnEvent", "always", "problems"]
