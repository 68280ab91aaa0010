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


# --------------------------------------------------------------------------- stage merging

# The early stages a held row may carry, as bits: a held row's stages are a set of these only
# (the final stage is never held), so a bit mask per row stands for its list.
_EARLY = sorted(STAGE_RANKS, key=STAGE_RANKS.__getitem__)  # in stage order
_BIT = {s: 1 << i for i, s in enumerate(_EARLY)}


class StageMerger:
    """Merges the stages of an audit request while the rows stream by.

    The API server writes RequestReceived (and ResponseStarted) before the final stage of the
    same request, usually a few lines apart. Rows of an earlier stage are held back; when a
    more final stage of the request arrives, the held row is merged away and the arriving
    row carries every stage seen. Held rows no later stage claimed are written at the end
    (or when more than ``limit`` are held, oldest first, so memory stays bounded); repeats
    of the final stage and requests split across paths or ingests are left to
    ``resolve_collisions``.

    The rule is applied to a batch's columns at once, not row by row: per request, the rows
    between two final stages form a segment whose most final early row (the first of its
    rank) is the one held, unless the row held from before ranks as high; a final row that
    closes a segment merges it away and carries its stages.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.merged: Counter[str] = Counter()
        self.limit = limit
        # the held rows, oldest first; a row merged away or released is marked dead and the
        # table compacted once the dead outnumber the living
        self._rows: pa.Table = AUDIT.arrow_schema.empty_table()
        self._rank = np.zeros(0, np.int8)
        self._bits = np.zeros(0, np.int8)  # the stages seen, as _BIT flags
        self._alive = np.zeros(0, bool)

    @property
    def held(self) -> int:
        """How many rows are held back."""
        return int(self._alive.sum())

    def feed(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, np.ndarray | None, list[pa.RecordBatch]]:
        """Returns the batch (stages merged), which of its rows to write now (None: all), and
        held rows released early (memory bound), oldest first."""
        aid = batch.column("audit_id").cast(pa.string())
        rank = stage_ranks(batch.column("stage")).to_numpy(zero_copy_only=False).astype(np.int8)
        valid = pc.is_valid(aid).to_numpy(zero_copy_only=False)
        early = (rank < FINAL_RANK) & valid
        living = np.flatnonzero(self._alive)
        if not early.any() and not len(living):
            return batch, None, []
        # each row's held request (its index among the living held rows), if any
        ids_held = self._rows.column("audit_id").take(pa.array(living)) if len(living) else pa.array([], pa.string())
        at_held = pc.fill_null(pc.index_in(aid, value_set=ids_held), -1).to_numpy(zero_copy_only=False)
        in_early = pc.fill_null(pc.is_in(aid, value_set=aid.filter(pa.array(early))), False).to_numpy(
            zero_copy_only=False
        )
        candidates = early | (valid & ((at_held >= 0) | in_early))
        if not candidates.any():
            return batch, None, []

        # the candidate rows grouped by request, in file order within each
        pos = np.flatnonzero(candidates)
        group = pc.dictionary_encode(aid.take(pa.array(pos))).indices.to_numpy()
        order = np.argsort(group, kind="stable")
        pos, group = pos[order], group[order]
        r = rank[pos]
        final = r == FINAL_RANK
        bits = np.zeros(len(pos), np.int8)
        for s, b in _BIT.items():
            bits[r == STAGE_RANKS[s]] = b
        # segments: a request's rows up to and including a final row, and those after the last
        first_of_group = np.r_[True, group[1:] != group[:-1]]
        seg_start = first_of_group | np.r_[True, final[:-1]]
        starts = np.flatnonzero(seg_start)
        ends = np.r_[starts[1:], len(pos)] - 1
        closed = final[ends]
        n_early = (ends - starts + 1) - closed
        seg_bits = np.bitwise_or.reduceat(np.where(final, 0, bits), starts)
        top = np.maximum.reduceat(np.where(final, 0, r), starts)
        prior = np.where(first_of_group[starts], at_held[pos[starts]], -1)  # the held row a segment continues
        has_prior = prior >= 0
        held_at = np.full(len(starts), -1, np.int64)  # the continued row's place in the held table
        held_at[has_prior] = living[prior[has_prior]]
        prior_rank = np.zeros(len(starts), np.int8)
        prior_rank[has_prior] = self._rank[held_at[has_prior]]
        seg_bits[has_prior] |= self._bits[held_at[has_prior]]

        # a final row closing a segment with a held or an early row carries every stage seen
        carry = closed & ((n_early > 0) | has_prior)
        # an open segment: the held row stays when it ranks as high as any of the segment's
        # rows; otherwise the segment's first row of its top rank is held instead
        keeps_prior = ~closed & has_prior & (top <= prior_rank)
        new_holder = ~closed & ~keeps_prior
        # the first row of its segment's top rank (rows are in file order within a segment)
        seg_of_row = np.cumsum(seg_start) - 1
        rows_top = np.flatnonzero(~final & (r == top[seg_of_row]))
        top_seg = seg_of_row[rows_top]
        firsts = rows_top[np.r_[True, top_seg[1:] != top_seg[:-1]]] if len(rows_top) else rows_top
        first_top = np.full(len(starts), -1, np.int64)
        first_top[seg_of_row[firsts]] = firsts
        holder_seg = np.flatnonzero(new_holder)
        holder_pos = pos[first_top[holder_seg]]
        by_pos = np.argsort(holder_pos)  # held in file order, as they arrived
        holders, holder_seg = holder_pos[by_pos], holder_seg[by_pos]

        # the accounting: every early row of the batch not held now, and every held row a
        # segment replaced or closed, is merged away (counted to its own evidence)
        gone_prior = has_prior & ~keeps_prior
        merged_rows = early.copy()
        merged_rows[holders] = False
        self._count(batch.column("evidence_id").filter(pa.array(merged_rows)))
        if gone_prior.any():
            dead = held_at[gone_prior]
            self._count(self._rows.column("evidence_id").take(pa.array(dead)))
            self._alive[dead] = False
        if keeps_prior.any():
            self._bits[held_at[keeps_prior]] = seg_bits[keeps_prior]
        if carry.any():
            at = pos[ends[carry]]
            own = batch.column("stage").take(pa.array(at))
            batch = _set_stages(batch, at, _stage_lists(seg_bits[carry], own))
        if len(holders):
            # held rows keep the columns they arrived with; their stages are set when written
            seg = holder_seg
            self._rows = pa.concat_tables([self._rows, pa.Table.from_batches([batch.take(pa.array(holders))])])
            self._rank = np.r_[self._rank, top[seg].astype(np.int8)]
            self._bits = np.r_[self._bits, seg_bits[seg]]
            self._alive = np.r_[self._alive, np.ones(len(holders), bool)]
        released = []
        over = self.held - self.limit
        if over > 0:
            released = [self._take(np.flatnonzero(self._alive)[:over])]
        self._compact()
        return batch, (~early if early.any() else None), released

    def drain(self, *, rows: int = 50_000) -> list[pa.RecordBatch]:
        """The held rows no later stage claimed, oldest first, in batches of at most ``rows``,
        to be written as they are."""
        living = np.flatnonzero(self._alive)
        out = [self._take(living[i : i + rows]) for i in range(0, len(living), rows)]
        self._compact()
        return out

    def _take(self, at: np.ndarray) -> pa.RecordBatch:
        """Held rows at ``at`` (oldest first) with their stages set; they are held no more."""
        rows = self._rows.take(pa.array(at)).combine_chunks()
        batch = rows.to_batches()[0] if rows.num_rows else pa.RecordBatch.from_pylist([], schema=rows.schema)
        self._alive[at] = False
        return _set_stages(batch, np.arange(len(at)), _stage_lists(self._bits[at], None))

    def _compact(self) -> None:
        dead = len(self._alive) - self.held
        if dead and dead >= self.held:
            living = np.flatnonzero(self._alive)
            self._rows = self._rows.take(pa.array(living))
            self._rank, self._bits, self._alive = self._rank[living], self._bits[living], self._alive[living]

    def _count(self, evidence: pa.Array | pa.ChunkedArray) -> None:
        if len(evidence):
            for item in pc.value_counts(evidence).to_pylist():
                self.merged[item["values"]] += item["counts"]


def _stage_lists(bits: np.ndarray, final: pa.Array | None) -> pa.ListArray:
    """Per row: the early stages its ``bits`` flag, in stage order, then its ``final`` stage
    (when given and not null)."""
    n = len(bits)
    flags = [(bits & _BIT[s]) != 0 for s in _EARLY]
    vocab = list(_EARLY)
    cols = [np.full(n, i, np.int64) for i in range(len(vocab))]
    values = pa.array(vocab, pa.string())
    if final is not None:
        flags.append(pc.is_valid(final).to_numpy(zero_copy_only=False))
        cols.append(len(vocab) + np.arange(n, dtype=np.int64))
        values = pa.concat_arrays([values, final.cast(pa.string())])
    flag = np.stack(flags, axis=1)  # row by row, stage order within a row
    index = np.stack(cols, axis=1)[flag]
    offsets = np.r_[0, np.cumsum(flag.sum(axis=1))].astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values.take(pa.array(index, pa.int64())))


def _set_stages(batch: pa.RecordBatch, at: np.ndarray, stages: pa.ListArray) -> pa.RecordBatch:
    """``batch`` with the ``stages`` of the rows at ``at`` replaced."""
    i = batch.schema.get_field_index("stages")
    own = batch.column(i)
    take = np.arange(batch.num_rows)
    take[at] = batch.num_rows + np.arange(len(at))  # lists have no replace_with_mask
    column = pa.concat_arrays([own, stages.cast(own.type)]).take(pa.array(take))
    return batch.set_column(i, batch.schema.field(i), column)


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
    # Settled in DuckDB, not request by request: per request the kept row (pick 1), and the
    # stages of all its rows in stage order (ties by name).
    con.execute(
        """
        CREATE TEMP TABLE g AS
        SELECT audit_id, event_id, evidence_id, part, generation, stages,
               row_number() OVER (PARTITION BY audit_id ORDER BY rank DESC, generation, part, evidence_line, event_id)
                 AS pick
        FROM k SEMI JOIN (SELECT audit_id FROM k GROUP BY audit_id HAVING count(*) > 1) USING (audit_id)
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE u AS
        SELECT audit_id, list(stage ORDER BY rank, stage) AS stages
        FROM (SELECT DISTINCT audit_id, stage, {STAGE_RANK} AS rank FROM g, unnest(g.stages) AS t(stage))
        GROUP BY audit_id
        """
    )
    rel = {str(root_new / p): p for p in new_parts}
    out.superseded_old = (
        con.sql("SELECT event_id FROM g WHERE pick > 1 AND generation = 0 ORDER BY audit_id, pick")
        .to_arrow_table()
        .column(0)
        .to_pylist()
    )
    for part, ids in con.execute(
        "SELECT part, list(event_id) FROM g WHERE pick > 1 AND generation = 1 GROUP BY part"
    ).fetchall():
        out.drop_new[rel[part]] = set(ids)
    for evidence_id, n in con.execute(
        "SELECT evidence_id, count(*) FROM g WHERE pick > 1 AND generation = 1 GROUP BY evidence_id"
    ).fetchall():
        out.merged[evidence_id] += n
    changed = con.sql(
        """
        SELECT g.part, g.event_id, coalesce(u.stages, []::VARCHAR[]) AS stages
        FROM g LEFT JOIN u USING (audit_id)
        WHERE g.pick = 1 AND g.generation = 1
          AND coalesce(g.stages, []::VARCHAR[]) IS DISTINCT FROM coalesce(u.stages, []::VARCHAR[])
        """
    ).to_arrow_table()
    con.close()
    for part, event_id, stages in zip(*(changed.column(c).to_pylist() for c in ("part", "event_id", "stages"))):
        out.stages_new.setdefault(rel[part], {})[event_id] = stages
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
