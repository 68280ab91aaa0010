"""A JSON format's one declared mapping, from which both its paths are built.

Each canonical column is declared once, its Python expression and its DuckDB expression side
by side (``Column``); values several columns read are declared the same way (``LETS``). From
that one declaration come the per-record path (``compile_row``: a function compiled once at
import, with the lets as locals and the row as one dict display, so it costs what a function
written out by hand costs — it is the hot path of every record the fast path does not take)
and the fast path's SELECT (``select_sql``). A test holds the two equal over generated records.
"""

from __future__ import annotations

import linecache
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Column:
    """How one canonical column (or one shared value) is read, in Python and in SQL.

    ``py``: a Python expression over the record and the lets declared before it (None: a let
    only the SQL has). ``sql``: the
    DuckDB expression over the columns the fast path reads and the SQL lets (None: nothing in
    SQL, e.g. a Python let that only unpacks an object the SQL reads as a struct). ``sure``: a
    SQL condition that is false where the SQL value may differ from what the per-record path
    gives; such a row is redone per record. ``raw``: the SQL text the driver checks a null
    typed value against (``_raw_<column>``). ``consumes``: the record's fields the column
    stands for. ``finish``: ``(function, column)``: the fast path leaves the value to Python,
    ``function(value of column)`` on the rows where ``sql`` (then a condition) is true, and
    None elsewhere (``finish_batch``)."""

    py: str | None
    sql: str | None
    sure: str | None = None
    raw: str | None = None
    consumes: tuple[str, ...] = ()
    finish: tuple[Callable[[Any], Any], str] | None = None


def compile_row(
    name: str,
    args: str,
    lets: Mapping[str, Column],
    mapping: Mapping[str, Column],
    *,
    prelude: str = "",
    namespace: Mapping[str, Any],
) -> Callable[..., dict[str, Any]]:
    """The per-record function ``name(args)``: ``prelude`` (statements), then each let as a
    local, then the row ``{column: py}``, compiled once. ``namespace``: the names the
    expressions use, named one by one (so a linter sees them used). The source is registered
    with linecache, so a traceback shows the line."""
    body = [f"def {name}({args}):", *("    " + ln for ln in prelude.strip("\n").splitlines() if ln.strip())]
    body += [f"    {let} = {c.py}" for let, c in lets.items() if c.py is not None]
    body += ["    return {", *(f"        {col!r}: {c.py}," for col, c in mapping.items()), "    }"]
    source = "\n".join(body) + "\n"
    filename = f"<mapping {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    scope: dict[str, Any] = {}
    exec(
        compile(source, filename, "exec"), dict(namespace), scope
    )  # the module's own declared expressions, nothing read
    fn = scope[name]
    fn.__doc__ = f"One record → one row, compiled from the declared mapping:\n\n{source}"
    return fn


def select_sql(source: str, lets: Mapping[str, Column], mapping: Mapping[str, Column], *, ok: str) -> str:
    """The fast path's SELECT over ``source``: the SQL lets in inner projections, then each
    column, its ``_raw_`` text where declared, and ``_fast_ok`` (``ok`` and every column's
    ``sure``). A column with ``finish`` selects NULL and a ``_finish_<column>`` flag.

    A let that reads another let is computed one projection further out: DuckDB substitutes a
    name selected beside it by its expression, so reading ``_j[1]`` beside ``json_extract(...)
    AS _j`` would parse the record again for every mention."""
    cols = []
    for col, c in mapping.items():
        if c.finish is not None:
            cols += [f"NULL::VARCHAR AS {_quoted(col)}", f"{c.sql} AS _finish_{col}"]
        else:
            cols.append(f"{c.sql} AS {_quoted(col)}")
        if c.raw is not None:
            cols.append(f"{c.raw} AS _raw_{col}")
    sure = [f"({c.sure})" for c in [*lets.values(), *mapping.values()] if c.sure is not None]
    cols.append(f"({ok}){''.join(' AND ' + s for s in sure)} AS _fast_ok")
    query = source
    for layer in _layers({let: c.sql for let, c in lets.items() if c.sql is not None}):
        query = f"(SELECT *, {', '.join(f'{sql} AS {let}' for let, sql in layer.items())} FROM {query})"
    return "SELECT\n    " + ",\n    ".join(cols) + f"\nFROM {query}"


def _layers(lets: Mapping[str, str]) -> list[dict[str, str]]:
    """The SQL lets in projections, innermost first: each after every let it names."""
    depth: dict[str, int] = {}
    for let, sql in lets.items():  # declared in order: a let names only lets declared before it
        named = [d for other, d in depth.items() if re.search(rf"(?<![\w.]){re.escape(other)}(?!\w)", sql)]
        depth[let] = 1 + max(named, default=-1)
    return [{let: lets[let] for let in lets if depth[let] == d} for d in range(max(depth.values(), default=-1) + 1)]


def finish_batch(batch: pa.RecordBatch, mapping: Mapping[str, Column]) -> pa.RecordBatch:
    """The columns the SQL leaves to Python (``Column.finish``), computed on the rows flagged."""
    for col, c in mapping.items():
        if c.finish is None:
            continue
        fn, reads = c.finish
        need = pc.fill_null(batch.column(f"_finish_{col}"), False)
        if not pc.any(need).as_py():
            continue
        values = pa.array([fn(v) for v in batch.column(reads).filter(need).to_pylist()], pa.string())
        i = batch.schema.get_field_index(col)
        column = batch.column(i).cast(pa.string())
        batch = batch.set_column(i, pa.field(col, pa.string()), pc.replace_with_mask(column, need, values))
    return batch


def consumed(mapping: Mapping[str, Column]) -> frozenset[str]:
    """The record's fields the columns stand for."""
    return frozenset(f for c in mapping.values() for f in c.consumes)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = ["Column", "compile_row", "consumed", "finish_batch", "select_sql"]
