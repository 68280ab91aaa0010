"""Parquet parts: written as rows stream in (``PartWriter``), rewritten before publication
(``rewrite_part``), and one file's parse as a task of a distributed ingest (``parse_file``)."""

from __future__ import annotations

import datetime as dt
import queue
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..schema import TABLES, Table
from ..sources import open_reader
from .stages import StageMerger

ROW_GROUP_ROWS = 128_000  # for parts rewritten whole
STREAM_ROW_GROUP_ROWS = 50_000  # for parts written as the rows stream in
_NS_PER_DAY = 86_400 * 10**9
_EPOCH = dt.date(1970, 1, 1)


# --------------------------------------------------------------------------- writing


class PartWriter:
    """Writes one table's rows as ``<root>/<table>/date=YYYY-MM-DD/part-<name>.parquet``,
    one part per (name, date), zstd, row groups of about ``STREAM_ROW_GROUP_ROWS`` rows (the
    parsers deliver ~10k-row batches: written one by one, they cost a fifth more to encode and
    make a poorer layout); the Parquet encoding runs on a background thread, beside the parsing."""

    def __init__(self, root: Path, table: Table) -> None:
        self.root = root
        self.table = table
        self.schema = table.arrow_schema
        self.parts: list[str] = []
        self._writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        self._pending: dict[tuple[str, str], list[pa.RecordBatch]] = {}  # batches not yet in a row group
        self._pending_rows: dict[tuple[str, str], int] = {}  # their rows, counted as they come
        self._row_by_row: set[str] = set()  # parts laid out as if written a row at a time
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="k8sforensics-writer", daemon=True)
        self._thread.start()

    def write(
        self, name: str, batch: pa.RecordBatch, keep: np.ndarray | None = None, *, row_by_row: bool = False
    ) -> None:
        """Queue ``batch`` (only the rows where ``keep`` is true) for part ``name``. The
        selection and the split by date run on the writer thread, beside the parsing.

        ``row_by_row``: the part's bytes are those its rows written one at a time give — row
        groups of exactly ``STREAM_ROW_GROUP_ROWS`` and Parquet pages cut after any row. The
        held audit rows were written so until they came in batches; their part keeps that
        layout, so the same evidence still gives the same part (and sha256 in the manifest)."""
        if row_by_row:
            self._row_by_row.add(name)
        if batch.num_rows and (keep is None or keep.any()):
            self._submit(("write", name, batch, keep))

    def finish_part(self, name: str) -> None:
        """All rows of ``name`` are written: close its files."""
        self._submit(("close", name))

    def close(self) -> list[str]:
        self._submit(None)
        self._thread.join()
        if self._error:
            raise self._error
        return sorted(self.parts)

    def _submit(self, item: Any) -> None:
        if self._error:
            raise self._error
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                if not self._error:
                    try:
                        for key in list(self._pending):
                            self._flush(key)
                    except BaseException as e:
                        self._error = e
                for w in self._writers.values():
                    w.close()
                return
            if self._error:
                continue
            try:
                if item[0] == "close":
                    for key in [k for k in self._writers if k[0] == item[1]]:
                        self._flush(key)
                        self._writers.pop(key).close()
                    continue
                _, name, batch, keep = item
                if keep is not None and not keep.all():
                    batch = batch.filter(pa.array(keep))
                for date, sub in _by_date(batch) if self.table.time_required else [("", batch)]:
                    w = self._writers.get((name, date))
                    if w is None:
                        # event tables are partitioned by UTC date; snapshots (objects) are not
                        rel = (
                            f"{self.table.name}/date={date}/part-{name}.parquet"
                            if date
                            else f"{self.table.name}/part-{name}.parquet"
                        )
                        path = self.root / rel
                        path.parent.mkdir(parents=True, exist_ok=True)
                        # pages are cut where a write's rows end, or every write_batch_size rows
                        # inside them (pyarrow): one row at a time is what one-row writes gave
                        by_row = {"write_batch_size": 1} if name in self._row_by_row else {}
                        w = self._writers[(name, date)] = pq.ParquetWriter(
                            path, self.schema, **parquet_options(self.table), **by_row
                        )
                        self.parts.append(rel)
                    self._add((name, date), sub, exact=name in self._row_by_row)
            except BaseException as e:  # surfaced to the caller on the next write or close
                self._error = e

    def _add(self, key: tuple[str, str], batch: pa.RecordBatch, *, exact: bool) -> None:
        """Pend ``batch``; a row group is written once ``STREAM_ROW_GROUP_ROWS`` are pending
        (``exact``: of exactly that many rows, the batch split where the group fills)."""
        while batch.num_rows:
            have = self._pending_rows.get(key, 0)
            take = min(batch.num_rows, STREAM_ROW_GROUP_ROWS - have) if exact else batch.num_rows
            self._pending.setdefault(key, []).append(batch.slice(0, take) if take < batch.num_rows else batch)
            self._pending_rows[key] = have + take
            batch = batch.slice(take)
            if self._pending_rows[key] >= STREAM_ROW_GROUP_ROWS:
                self._flush(key)

    def _flush(self, key: tuple[str, str]) -> None:
        pending = self._pending.pop(key, [])
        rows = self._pending_rows.pop(key, 0)
        if pending:
            self._writers[key].write_table(pa.Table.from_batches(pending, self.schema), row_group_size=rows)


def parquet_options(table: Table) -> dict[str, Any]:
    """zstd level 1; no dictionary for columns that are unique per row (ids, bodies, times),
    no min/max statistics for JSON bodies (nobody filters on them; they cost CPU)."""
    unique = {
        "event_id",
        "audit_id",
        "request_object",
        "response_object",
        "request_uri",
        "time",
        "stage_time",
        "evidence_line",
        "user_extra",
        "exec_command",
    }
    bodies = {"request_object", "response_object", "user_extra", "annotations", "request_uri", "user_agent"}
    names = table.names
    return {
        "compression": "zstd",
        "compression_level": 1,
        "use_dictionary": [c for c in names if c not in unique],
        "write_statistics": [c for c in names if c not in bodies],
    }


def _by_date(batch: pa.RecordBatch) -> list[tuple[str, pa.RecordBatch]]:
    """Split by UTC date: zero-copy slices when the rows are in time order (logs are), a
    filter per date otherwise. Day numbers by integer division (strftime is ~30x slower)."""
    days = np.floor_divide(pc.cast(batch.column("time"), pa.int64()).to_numpy(), _NS_PER_DAY)

    def iso(d: int) -> str:
        return (_EPOCH + dt.timedelta(days=int(d))).isoformat()

    if days[0] == days[-1] and (days == days[0]).all():
        return [(iso(days[0]), batch)]
    if (np.diff(days) >= 0).all():
        cuts = np.flatnonzero(np.diff(days)) + 1
        bounds = [0, *cuts.tolist(), len(days)]
        return [(iso(days[a]), batch.slice(a, b - a)) for a, b in zip(bounds, bounds[1:])]
    return [(iso(d), batch.filter(pa.array(days == d))) for d in np.unique(days)]


def _table_of(schema: pa.Schema) -> Table:
    return TABLES[schema.metadata[b"k8sforensics.table"].decode()]


def rewrite_part(path: Path, schema: pa.Schema, drop: set[str], stages: dict[str, list[str]]) -> bool:
    """Rewrite one new (unpublished) part without ``drop`` and with merged ``stages``.
    Returns False when nothing is left (the part is removed)."""
    table = pq.read_table(path, schema=schema)
    if drop:
        table = table.filter(
            pc.invert(pc.is_in(table.column("event_id"), value_set=pa.array(sorted(drop), pa.string())))
        )
    if stages:
        ids = pa.array(list(stages), pa.string())
        vals = pa.array(list(stages.values()), pa.list_(pa.string()))
        idx = pc.index_in(table.column("event_id"), value_set=ids)
        col = pc.if_else(pc.is_valid(idx), vals.take(pc.fill_null(idx, 0)), table.column("stages"))
        table = table.set_column(table.schema.get_field_index("stages"), schema.field("stages"), col)
    tmp = path.with_suffix(".rewrite")
    if table.num_rows:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, **parquet_options(_table_of(schema)))
        tmp.replace(path)
        return True
    path.unlink()
    return False


@dataclass
class ParsedFile:
    """What one file's parse left in its folder: the parts per table, the reader's result and
    quarantine, and the rows its own stage merge removed."""

    folder: str
    table: str
    parts: list[str]
    result: Any
    quarantine: list[dict[str, Any]]
    merged: dict[str, int]


def parse_file(
    path: str,
    *,
    explicit: bool,
    cluster: str | None,
    on_bad_lines: str,
    evidence: Any,
    folder: str,
    name: str,
    keep_secrets: bool = False,
    time_range: tuple[Any, Any] | None = None,
    vpc_fields: Sequence[str] | None = None,
    small_file_bytes: int = 0,
) -> ParsedFile:
    """Parse one evidence file into Parquet parts under ``folder`` (a task of a distributed
    ingest: it runs on a Dask worker). The folder is emptied first, so a retried task never
    leaves the rows of a failed attempt behind. Stages of one audit request are merged within
    the file; across files, the case's collision step merges them as it does across ingests."""
    out = Path(folder)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    reader = open_reader(
        Path(path),
        cluster=cluster,
        on_bad_lines=on_bad_lines,
        explicit=explicit,
        evidence=evidence,
        keep_secrets=keep_secrets,
        time_range=time_range,
        vpc_fields=vpc_fields,
        small_file_bytes=small_file_bytes,
    ).prepare()  # type: ignore[arg-type]
    table = TABLES[reader.result.family or ""]
    writer = PartWriter(out, table)
    merger = StageMerger() if table.name == "audit" else None
    try:
        for batch in reader.batches():
            keep = None
            if merger is not None:
                batch, keep, released = merger.feed(batch)
                for rows in released:
                    writer.write(f"{name}-held", rows, row_by_row=True)
            writer.write(name, batch, keep)
        for rows in merger.drain() if merger is not None else []:
            writer.write(f"{name}-held", rows, row_by_row=True)
        writer.finish_part(name)
        writer.finish_part(f"{name}-held")
    finally:
        parts = writer.close()
    return ParsedFile(
        str(out), table.name, parts, reader.result, reader.quarantine, dict(merger.merged) if merger else {}
    )
