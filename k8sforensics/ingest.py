"""How an ingest turns evidence files into new, not yet published, case parts.

1. Every file is hashed and sniffed; files the case already holds are passed over.
2. Audit files that take the DuckDB fast path get their duplicate requests planned up
   front, from ``auditID`` and ``stage`` alone (``FastDedupe``), so their rows can be written
   once, already merged.
3. All rows stream into one Parquet part per evidence file and date (``PartWriter``; the
   Parquet encoding runs on a background thread, beside the parsing).
4. ``resolve_collisions`` then finds the requests still seen twice — across files that
   took different paths, or against rows earlier ingests published — and settles them:
   new parts are rewritten before publication, published rows are superseded.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .schema import Table
from .sources import Reader
from .sources.audit_dedupe import STAGE_RANK

ROW_GROUP_ROWS = 128_000
_NS_PER_DAY = 86_400 * 10**9
_EPOCH = dt.date(1970, 1, 1)
_RANKS = {"RequestReceived": 1, "ResponseStarted": 2}  # anything else (ResponseComplete, Panic, none) is 3


def stage_ranks(stages: pa.Array) -> pa.Array:
    rank = pc.if_else(pc.equal(stages, "RequestReceived"), 1, pc.if_else(pc.equal(stages, "ResponseStarted"), 2, 3))
    return pc.fill_null(rank, 3)


def _stage_sort_key(stage: str) -> int:
    return _RANKS.get(stage, 3)


# --------------------------------------------------------------------------- writing


class PartWriter:
    """Writes one table's rows as ``<root>/<table>/date=YYYY-MM-DD/part-<name>.parquet``,
    one part per (name, date), ~128k-row row groups, zstd; encoding on a background thread."""

    def __init__(self, root: Path, table: Table) -> None:
        self.root = root
        self.table = table
        self.schema = table.arrow_schema
        self.parts: list[str] = []
        self._writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        self._pending: dict[tuple[str, str], list[pa.RecordBatch]] = {}
        self._pending_rows: Counter[tuple[str, str]] = Counter()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="k8sforensics-writer", daemon=True)
        self._thread.start()

    def write(self, name: str, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        # UTC day number by integer division: strftime on a tz-aware column is ~30x slower
        days = pc.divide(pc.cast(batch.column("time"), pa.int64()), _NS_PER_DAY)
        uniq = pc.unique(days).to_pylist()
        for day in uniq:
            sub = batch if len(uniq) == 1 else batch.filter(pc.equal(days, day))
            date = (_EPOCH + dt.timedelta(days=day)).isoformat()
            key = (name, date)
            self._pending.setdefault(key, []).append(sub)
            self._pending_rows[key] += sub.num_rows
            if self._pending_rows[key] >= ROW_GROUP_ROWS:
                self._flush(key)

    def finish_part(self, name: str) -> None:
        """All rows of ``name`` are written: flush and close its parts."""
        for key in [k for k in self._pending if k[0] == name]:
            self._flush(key)
        self._submit(("close", name))

    def close(self) -> list[str]:
        for key in list(self._pending):
            self._flush(key)
        self._submit(None)
        self._thread.join()
        if self._error:
            raise self._error
        return sorted(self.parts)

    def _flush(self, key: tuple[str, str]) -> None:
        batches = self._pending.pop(key, [])
        self._pending_rows.pop(key, None)
        if batches:
            self._submit(("write", key, pa.Table.from_batches(batches, schema=self.schema)))

    def _submit(self, item: Any) -> None:
        if self._error:
            raise self._error
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                for w in self._writers.values():
                    w.close()
                return
            if self._error:
                continue
            try:
                if item[0] == "close":
                    for key in [k for k in self._writers if k[0] == item[1]]:
                        self._writers.pop(key).close()
                    continue
                _, (name, date), table = item
                w = self._writers.get((name, date))
                if w is None:
                    rel = f"{self.table.name}/date={date}/part-{name}.parquet"
                    path = self.root / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    w = self._writers[(name, date)] = pq.ParquetWriter(path, self.schema, compression="zstd")
                    self.parts.append(rel)
                w.write_table(table, row_group_size=ROW_GROUP_ROWS)
            except BaseException as e:  # surfaced to the caller on the next write or close
                self._error = e


# --------------------------------------------------------------------------- fast-path dedupe


@dataclass
class FastDedupe:
    """Which rows of the fast-path files to keep, planned before any row is written.

    For each request seen more than once: the best stage rank and the stages seen. A row
    is kept if its stage has the best rank and no row of that request was kept before it
    (ties go to the first in evidence order).
    """

    ids: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    best: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    stages: pa.Array = field(default_factory=lambda: pa.array([], pa.list_(pa.string())))
    kept: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @classmethod
    def plan(cls, readers: Sequence[Reader], key_columns: dict[str, str]) -> FastDedupe:
        if not readers:
            return cls()
        con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
        con.execute("SET enable_progress_bar = false")
        sources = " UNION ALL ".join(f"SELECT auditID AS audit_id, stage FROM {r.ndjson_source(key_columns)}" for r in readers)
        rank = STAGE_RANK
        out = con.sql(
            f"""
            SELECT audit_id, max({rank}) AS best,
                   list_transform(list_sort(list_distinct(list({rank}::VARCHAR || ':' || stage))), lambda x: x[3:]) AS stages
            FROM ({sources}) WHERE audit_id IS NOT NULL
            GROUP BY audit_id HAVING count(*) > 1
            ORDER BY audit_id
            """
        ).to_arrow_table()
        con.close()
        return cls(
            out.column("audit_id").combine_chunks(),
            out.column("best").to_numpy().astype(np.int8),
            out.column("stages").combine_chunks(),
            np.zeros(out.num_rows, bool),
        )

    def apply(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int]:
        """Drop the rows that lose to another stage of their request; set merged ``stages``.
        Returns the batch and how many rows were dropped."""
        if not len(self.ids):
            return batch, 0
        idx = pc.index_in(batch.column("audit_id"), value_set=self.ids)
        if idx.null_count == len(idx):
            return batch, 0
        valid = pc.is_valid(idx)
        pos = pc.indices_nonzero(valid)
        where = idx.take(pos).to_numpy()
        ranks = stage_ranks(batch.column("stage").take(pos)).to_numpy()
        keep = np.ones(batch.num_rows, bool)
        for p, w, r in zip(pos.to_numpy(), where, ranks):  # only the rows of duplicated requests
            if r == self.best[w] and not self.kept[w]:
                self.kept[w] = True
            else:
                keep[p] = False
        i = batch.schema.get_field_index("stages")
        own = batch.column(i)
        merged = self.stages.take(pa.array(where)).cast(own.type)
        take = np.arange(batch.num_rows)
        take[pos.to_numpy()] = batch.num_rows + np.arange(len(merged))  # list columns have no replace_with_mask
        stages = pa.concat_arrays([own, merged]).take(pa.array(take))
        batch = batch.set_column(i, batch.schema.field(i), stages)
        dropped = int((~keep).sum())
        return (batch.filter(pa.array(keep)) if dropped else batch), dropped


# --------------------------------------------------------------------------- collisions


@dataclass
class Collisions:
    """Requests seen twice across paths or ingests, settled."""

    drop_new: dict[str, set[str]] = field(default_factory=dict)  # new part → event ids to leave out
    stages_new: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # new part → event id → stages
    superseded_old: list[str] = field(default_factory=list)  # published rows replaced
    merged: Counter[str] = field(default_factory=Counter)  # evidence id → rows merged away


def resolve_collisions(root_new: Path, new_parts: list[str], old_root: Path, old_parts: list[str], gone: set[str]) -> Collisions:
    """One row per audit_id across the new parts and the published ones.

    The kept row has the most final stage; ties go to the published row, then to the
    earlier evidence (ingest order, file order, record number)."""
    out = Collisions()
    if not new_parts:
        return out
    con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
    con.execute("SET enable_progress_bar = false")

    def files(root: Path, parts: list[str]) -> str:
        return "[" + ", ".join("'" + str(root / p).replace("'", "''") + "'" for p in parts) + "]"

    cols = f"event_id, evidence_id, evidence_line, audit_id, stage, stages, {STAGE_RANK} AS rank, filename AS part"
    src = f"SELECT {cols}, 1 AS generation FROM read_parquet({files(root_new, new_parts)}, filename = true) WHERE audit_id IS NOT NULL"
    if old_parts:
        src += (
            f" UNION ALL SELECT {cols}, 0 AS generation FROM read_parquet({files(old_root, old_parts)}, filename = true)"
            " WHERE audit_id IS NOT NULL"
        )
    con.execute(f"CREATE TEMP TABLE k AS {src}")
    if gone:
        con.register("_gone", pa.table({"event_id": pa.array(sorted(gone), pa.string())}))
        con.execute("DELETE FROM k WHERE event_id IN (SELECT event_id FROM _gone)")
    rows = con.execute(
        """
        WITH d AS (SELECT audit_id FROM k GROUP BY audit_id HAVING count(*) > 1)
        SELECT audit_id, event_id, evidence_id, part, generation, rank, stages
        FROM k SEMI JOIN d USING (audit_id)
        ORDER BY audit_id, rank DESC, generation, part, evidence_line
        """
    ).fetchall()
    con.close()
    new_prefix = str(root_new)
    group: list[tuple[Any, ...]] = []

    def settle(group: list[tuple[Any, ...]]) -> None:
        winner, losers = group[0], group[1:]
        union = sorted({s for g in group for s in (g[6] or [])}, key=_stage_sort_key)
        for _, event_id, evidence_id, part, generation, _, _ in losers:
            if generation == 0:
                out.superseded_old.append(event_id)
            else:
                rel = str(Path(part).relative_to(new_prefix))
                out.drop_new.setdefault(rel, set()).add(event_id)
                out.merged[evidence_id] += 1
        _, w_id, _, w_part, w_gen, _, w_stages = winner
        if w_gen == 1 and list(w_stages or []) != union:
            rel = str(Path(w_part).relative_to(new_prefix))
            out.stages_new.setdefault(rel, {})[w_id] = union

    for row in rows:
        if group and row[0] != group[0][0]:
            settle(group)
            group = []
        group.append(row)
    if group:
        settle(group)
    return out


def rewrite_part(path: Path, schema: pa.Schema, drop: set[str], stages: dict[str, list[str]]) -> bool:
    """Rewrite one new (unpublished) part without ``drop`` and with merged ``stages``.
    Returns False when nothing is left (the part is removed)."""
    table = pq.read_table(path, schema=schema)
    if drop:
        table = table.filter(pc.invert(pc.is_in(table.column("event_id"), value_set=pa.array(sorted(drop), pa.string()))))
    if stages:
        ids = pa.array(list(stages), pa.string())
        vals = pa.array(list(stages.values()), pa.list_(pa.string()))
        idx = pc.index_in(table.column("event_id"), value_set=ids)
        col = pc.if_else(pc.is_valid(idx), vals.take(pc.fill_null(idx, 0)), table.column("stages"))
        table = table.set_column(table.schema.get_field_index("stages"), schema.field("stages"), col)
    tmp = path.with_suffix(".rewrite")
    if table.num_rows:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        tmp.replace(path)
        return True
    path.unlink()
    return False
