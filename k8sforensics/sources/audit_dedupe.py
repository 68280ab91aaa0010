"""One row per audit request: merge the stages of each ``audit_id``.

An API request is logged up to three times (RequestReceived, ResponseStarted for
long-running calls, ResponseComplete), and webhook retries or overlapping log rotation add
exact copies. The kept row is the most final stage (ResponseComplete/Panic, then
ResponseStarted, then RequestReceived); ties go to the first in evidence order (file order,
then record number). ``stages`` lists every stage seen. Rows without an audit_id are never
merged. The case store applies the same rule while it writes (``k8sforensics.ingest``).

The work is done in DuckDB on the small key columns only, so memory grows with the number
of duplicated requests, not with the input.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from ..schema import AUDIT

STAGE_RANK = "(CASE stage WHEN 'RequestReceived' THEN 1 WHEN 'ResponseStarted' THEN 2 ELSE 3 END)"


def plan(con: duckdb.DuckDBPyConnection, source: str) -> None:
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


def deduped_sql(source: str) -> str:
    """SELECT of ``source`` with one row per audit_id (run after ``plan``)."""
    cols = ", ".join(f"s.{c}" if c != "stages" else "coalesce(st.stages, s.stages) AS stages" for c in AUDIT.names)
    return f"""
        SELECT {cols}
        FROM {source} s
        LEFT JOIN (SELECT event_id, audit_id, pick FROM _dups) d ON s.event_id = d.event_id
        LEFT JOIN _stages st ON d.audit_id = st.audit_id
        WHERE d.pick IS NULL OR d.pick = 1
    """


def merged_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows merged away, per evidence_id (run after ``plan``)."""
    return dict(con.execute("SELECT evidence_id, count(*) FROM _dups WHERE pick > 1 GROUP BY 1").fetchall())


def dedupe_audit_table(rows: pa.Table) -> tuple[pa.Table, dict[str, int]]:
    """In-memory form: an ``audit`` Arrow table → (deduplicated table, merged per evidence_id)."""
    con = duckdb.connect()
    con.register("_src", rows.append_column("_ordinal", pa.array(range(rows.num_rows), pa.int64())))
    plan(con, "_src")
    out = con.sql(deduped_sql("_src") + " ORDER BY s.time, s._ordinal").to_arrow_table()
    merged = merged_counts(con)
    con.close()
    return out.cast(AUDIT.arrow_schema), merged
