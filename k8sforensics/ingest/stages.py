"""One row per audit request, in one place.

An API request is logged up to three times (RequestReceived, ResponseStarted for long-running
calls, ResponseComplete), and webhook retries or overlapping log rotation add exact copies. The
kept row is the most final stage (ResponseComplete/Panic, then ResponseStarted, then
RequestReceived); ties go to the earlier evidence (published rows first, then file order, then
record number). ``stages`` lists every stage seen. Rows without an audit_id are never merged.

Three settings apply that one rule: while an ingest's rows stream by (``StageMerger``), across
the files and ingests of a case (``resolve_collisions``), and over a table in memory for the
loaders (``dedupe_audit_table``). The ranks are declared once (``STAGE_RANKS``) and rendered for
Arrow, SQL and Python from there."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import AUDIT

STAGE_RANKS = {"RequestReceived": 1, "ResponseStarted": 2}  # anything else (ResponseComplete, Panic, none) is final: 3
FINAL_RANK = 3
STAGE_RANK = (
    "(CASE stage " + " ".join(f"WHEN '{s}' THEN {r}" for s, r in STAGE_RANKS.items()) + f" ELSE {FINAL_RANK} END)"
)


def stage_ranks(stages: pa.Array) -> pa.Array:
    """``STAGE_RANKS`` over an Arrow array of stages (null: final)."""
    rank: Any = FINAL_RANK
    for stage, r in sorted(STAGE_RANKS.items(), key=lambda kv: -kv[1]):
        rank = pc.if_else(pc.equal(stages, stage), r, rank)
    return pc.fill_null(rank, FINAL_RANK)


def _stage_sort_key(stage: str) -> int:
    return STAGE_RANKS.get(stage, FINAL_RANK)


# --------------------------------------------------------------------------- stage merging


@dataclass
class _Held:
    rank: int
    stages: list[str]
    batch: pa.RecordBatch  # the one row, copied out of its batch
    evidence_id: str


class StageMerger:
    """Merges the stages of an audit request while the rows stream by.

    The API server writes RequestReceived (and ResponseStarted) before the final stage of the
    same request, usually a few lines apart. Rows of an earlier stage are held back; when a
    more final stage of the request arrives, the held row is merged away and the arriving
    row carries every stage seen. Held rows no later stage claimed are written at the end
    (or when more than ``limit`` are held, oldest first, so memory stays bounded); repeats
    of the final stage and requests split across paths or ingests are left to
    ``resolve_collisions``.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.held: dict[str, _Held] = {}
        self.merged: Counter[str] = Counter()
        self.limit = limit

    def feed(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, np.ndarray | None, list[pa.RecordBatch]]:
        """Returns the batch (stages merged), which of its rows to write now (None: all), and
        held rows released early (memory bound)."""
        aid = batch.column("audit_id")
        rank = stage_ranks(batch.column("stage"))
        early = pc.and_(pc.less(rank, 3), pc.is_valid(aid))
        # rows of requests with an earlier stage held, from before or from this batch
        ids_held = pa.concat_arrays([pa.array(list(self.held), pa.string()), aid.filter(early).cast(pa.string())])
        candidates = pc.or_(early, pc.fill_null(pc.is_in(aid, value_set=ids_held), False)) if len(ids_held) else early
        if not pc.any(candidates).as_py():
            return batch, None, []
        pos = pc.indices_nonzero(candidates).to_numpy()
        ids = aid.take(pa.array(pos)).to_pylist()
        ranks = rank.take(pa.array(pos)).to_numpy()
        stages_in = batch.column("stage").take(pa.array(pos)).to_pylist()
        evidence = batch.column("evidence_id")[0].as_py()
        keep = np.ones(batch.num_rows, bool)
        set_stages: dict[int, list[str]] = {}
        new_held: dict[str, tuple[int, int, list[str]]] = {}  # held from this batch: id → (position, rank, stages)
        for p, a, r, st in zip(pos, ids, ranks, stages_in):
            seen = [st] if st is not None else []
            prior_rank: int | None = None
            if a in new_held:
                prior_rank, prior_stages = new_held[a][1], new_held[a][2]
            elif a in self.held:
                prior_rank, prior_stages = self.held[a].rank, self.held[a].stages
            if prior_rank is not None and prior_rank >= r:
                # the same or an earlier stage than the one held: merge this row away
                merged_stages = _union(prior_stages, seen)
                if a in new_held:
                    new_held[a] = (new_held[a][0], prior_rank, merged_stages)
                else:
                    self.held[a].stages = merged_stages
                keep[p] = False
                self.merged[evidence] += 1
                continue
            if prior_rank is not None:  # a more final stage: the held row is merged away
                if a in new_held:
                    new_held.pop(a)
                    self.merged[evidence] += 1
                else:
                    self.merged[self.held.pop(a).evidence_id] += 1
                seen = _union(prior_stages, seen)
            if r < 3:
                keep[p] = False
                new_held[a] = (int(p), int(r), seen)
            elif prior_rank is not None:
                set_stages[int(p)] = seen
        if new_held:
            taken = batch.take(pa.array([h[0] for h in new_held.values()]))
            for k, (a, (_, r, seen)) in enumerate(new_held.items()):
                self.held[a] = _Held(r, seen, taken.slice(k, 1), evidence)
        if set_stages:
            batch = _set_stages(batch, set_stages)
        released: list[pa.RecordBatch] = []
        while len(self.held) > self.limit:
            a = next(iter(self.held))
            released.append(self._row(self.held.pop(a)))
        return batch, (None if keep.all() else keep), released

    def drain(self) -> list[pa.RecordBatch]:
        """The held rows no later stage claimed, to be written as they are."""
        out = [self._row(h) for h in self.held.values()]
        self.held.clear()
        return out

    @staticmethod
    def _row(h: _Held) -> pa.RecordBatch:
        return _set_stages(h.batch, {0: h.stages})


def _union(a: list[str], b: list[str]) -> list[str]:
    return sorted(set(a) | set(b), key=_stage_sort_key)


def _set_stages(batch: pa.RecordBatch, stages: dict[int, list[str]]) -> pa.RecordBatch:
    i = batch.schema.get_field_index("stages")
    own = batch.column(i)
    new = pa.array(list(stages.values()), own.type)
    take = np.arange(batch.num_rows)
    take[np.fromiter(stages, dtype=np.int64)] = batch.num_rows + np.arange(
        len(stages)
    )  # lists have no replace_with_mask
    return batch.set_column(i, batch.schema.field(i), pa.concat_arrays([own, new]).take(pa.array(take)))


# --------------------------------------------------------------------------- collisions


@dataclass
class Collisions:
    """Requests seen twice across paths or ingests, settled."""

    drop_new: dict[str, set[str]] = field(default_factory=dict)  # new part → event ids to leave out
    stages_new: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # new part → event id → stages
    superseded_old: list[str] = field(default_factory=list)  # published rows replaced
    merged: Counter[str] = field(default_factory=Counter)  # evidence id → rows merged away


def resolve_collisions(
    root_new: Path, new_parts: list[str], old_root: Path, old_parts: list[str], gone: set[str], *, spill: Path
) -> Collisions:
    """One row per audit_id across the new parts and the published ones.

    The kept row has the most final stage; ties go to the published row, then to the
    earlier evidence (ingest order, file order, record number)."""
    out = Collisions()
    if not new_parts:
        return out
    # The id count grows with the case; a small memory limit makes DuckDB spill to disk
    # instead of growing, so the ingest's memory stays flat in the input size.
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": 2, "memory_limit": "256MB", "temp_directory": str(spill)})
    con.execute("SET enable_progress_bar = false")

    def files(root: Path, parts: list[str]) -> str:
        return "[" + ", ".join("'" + str(root / p).replace("'", "''") + "'" for p in parts) + "]"

    cols = f"event_id, evidence_id, evidence_line, audit_id, stage, stages, {STAGE_RANK} AS rank, filename AS part"
    sources = [(files(root_new, new_parts), 1)] + ([(files(old_root, old_parts), 0)] if old_parts else [])
    ids = " UNION ALL ".join(f"SELECT audit_id FROM read_parquet({f})" for f, _ in sources)
    # Most requests are seen once: find the repeated ids from one column before reading more.
    con.execute(
        f"CREATE TEMP TABLE d AS SELECT audit_id FROM ({ids}) WHERE audit_id IS NOT NULL GROUP BY audit_id HAVING count(*) > 1"
    )
    if not (con.execute("SELECT count(*) FROM d").fetchone() or (0,))[0]:
        con.close()
        return out
    rows_sql = " UNION ALL ".join(
        f"SELECT {cols}, {gen} AS generation FROM read_parquet({f}, filename = true) SEMI JOIN d USING (audit_id)"
        for f, gen in sources
    )
    con.execute(f"CREATE TEMP TABLE k AS {rows_sql}")
    if gone:
        con.register("_gone", pa.table({"event_id": pa.array(sorted(gone), pa.string())}))
        con.execute("DELETE FROM k WHERE event_id IN (SELECT event_id FROM _gone)")
    rows = con.execute(
        """
        WITH d2 AS (SELECT audit_id FROM k GROUP BY audit_id HAVING count(*) > 1)
        SELECT audit_id, event_id, evidence_id, part, generation, rank, stages
        FROM k SEMI JOIN d2 USING (audit_id)
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


# --------------------------------------------------------------------------- a table in memory


def _plan(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Create temp tables ``_dups`` (every row of a duplicated request, with ``pick``) and
    ``_stages`` (the merged stage list per duplicated request) for relation ``source``,
    whose ``_ordinal`` column is the evidence order."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _dupkeys AS
          SELECT audit_id FROM {source} WHERE audit_id IS NOT NULL GROUP BY audit_id HAVING count(*) > 1;
        CREATE OR REPLACE TEMP TABLE _dups AS
          SELECT event_id, evidence_id, audit_id, stage, {STAGE_RANK} AS rank,
                 row_number() OVER (PARTITION BY audit_id ORDER BY {STAGE_RANK} DESC, _ordinal) AS pick
          FROM {source} SEMI JOIN _dupkeys USING (audit_id);
        CREATE OR REPLACE TEMP TABLE _stages AS
          SELECT audit_id,
                 list_transform(list_sort(list_distinct(list(rank::VARCHAR || ':' || stage))), lambda x: x[3:]) AS stages
          FROM _dups GROUP BY audit_id;
        """
    )


def _deduped_sql(source: str) -> str:
    """SELECT of ``source`` with one row per audit_id (run after ``plan``)."""
    cols = ", ".join(f"s.{c}" if c != "stages" else "coalesce(st.stages, s.stages) AS stages" for c in AUDIT.names)
    return f"""
        SELECT {cols}
        FROM {source} s
        LEFT JOIN (SELECT event_id, audit_id, pick FROM _dups) d ON s.event_id = d.event_id
        LEFT JOIN _stages st ON d.audit_id = st.audit_id
        WHERE d.pick IS NULL OR d.pick = 1
    """


def _merged_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows merged away, per evidence_id (run after ``plan``)."""
    return dict(con.execute("SELECT evidence_id, count(*) FROM _dups WHERE pick > 1 GROUP BY 1").fetchall())


def dedupe_audit_table(rows: pa.Table) -> tuple[pa.Table, dict[str, int]]:
    """In-memory form: an ``audit`` Arrow table → (deduplicated table, merged per evidence_id)."""
    con = duckdb.connect()
    con.register("_src", rows.append_column("_ordinal", pa.array(range(rows.num_rows), pa.int64())))
    _plan(con, "_src")
    out = con.sql(_deduped_sql("_src") + " ORDER BY s.time, s._ordinal").to_arrow_table()
    merged = _merged_counts(con)
    con.close()
    return out.cast(AUDIT.arrow_schema), merged
