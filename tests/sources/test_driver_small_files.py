"""Small files and the shared fast-path database: a file whose records end within
``small_file_bytes`` is read per record (a DuckDB query costs more than its records), with
exactly the rows, quarantine and counts the fast path gives; readers share one DuckDB database,
each with its own connection."""

from __future__ import annotations

import gzip
import json
import os
import warnings
from pathlib import Path

import pyarrow as pa
import pytest

from k8sforensics.errors import BadRecordError
from k8sforensics.sources import _driver, formats, table_for
from k8sforensics.sources._driver import SMALL_FILE_BYTES, SNIFF_RECORDS, Reader
from k8sforensics.sources._files import decompressed_chunks, hash_file

from ..conftest import FIXTURES, ROOT

CASES = (
    sorted((FIXTURES / "audit").glob("*.jsonl"))
    + [ROOT / "sample_data" / "audit" / "kube-apiserver-audit.log.gz"]
    + sorted((FIXTURES / "flows").glob("hubble__*.jsonl"))
    + sorted((FIXTURES / "flows").glob("aws_vpc_flow__*.log"))
)


def reader(path: Path, **kw) -> Reader:
    return Reader(path, hash_file(path), formats(), table=table_for, **kw)


def read(path: Path, **kw) -> tuple[Reader, pa.Table]:
    r = reader(path, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(r.batches())
    table = pa.Table.from_batches(batches, schema=r.table_for(r.format).arrow_schema) if r.format else None
    # the fast path delivers the records it redoes last: compare in record order
    return r, table.sort_by([("evidence_line", "ascending"), ("event_id", "ascending")]) if table else table


def same(a: tuple[Reader, pa.Table], b: tuple[Reader, pa.Table]) -> None:
    (ra, ta), (rb, tb) = a, b
    assert ta.to_pylist() == tb.to_pylist()
    assert ra.quarantine == rb.quarantine
    assert ra.result.as_dict() == rb.result.as_dict()


def audit_lines(n: int) -> bytes:
    """``n`` distinct audit events (one request each), one per line."""
    base = json.loads((FIXTURES / "audit" / "k8s_audit__secrets_and_tokens.jsonl").read_text().splitlines()[0])
    return b"".join(json.dumps({**base, "auditID": f"small-{i}"}).encode() + b"\n" for i in range(n))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_a_small_file_is_read_per_record_with_the_fast_paths_rows(path: Path) -> None:
    fast = read(path)
    small = read(path, small_file_bytes=SMALL_FILE_BYTES)
    slow = read(path, fast=False)
    same(small, fast)
    same(small, slow)
    size = sum(len(c) for c in decompressed_chunks(path))
    # where the fast path applies and the records fit, the small file skipped it
    expect = fast[0].used_fast_path and size <= SMALL_FILE_BYTES
    assert small[0].small_file is expect
    assert small[0].used_fast_path is (fast[0].used_fast_path and not expect)


def test_a_file_over_the_limit_keeps_the_fast_path(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    p.write_bytes(audit_lines(3 * SNIFF_RECORDS))
    # a plain file bigger than the limit is not read ahead at all
    big = read(p, small_file_bytes=p.stat().st_size - 1)
    assert big[0].used_fast_path and not big[0].small_file and big[0].fast_fallback is None
    assert len(big[0]._head) == SNIFF_RECORDS
    same(big, read(p, fast=False))
    # compressed within the limit, more than it once decompressed: the read-ahead goes past the
    # sniffed records, stops short of the file's end, and the fast path reads the whole file
    gz = tmp_path / "audit.jsonl.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    limit = p.stat().st_size * 2 // 3
    assert gz.stat().st_size <= limit
    ahead = read(gz, small_file_bytes=limit)
    assert ahead[0].used_fast_path and not ahead[0].small_file and ahead[0].fast_fallback is None
    assert SNIFF_RECORDS < len(ahead[0]._head) < 3 * SNIFF_RECORDS
    same(ahead, read(gz))
    same(ahead, read(gz, fast=False))
    # the whole file within the limit: per record, same rows
    small = read(gz, small_file_bytes=p.stat().st_size + 1)
    assert small[0].small_file and not small[0].used_fast_path
    same(small, ahead)


def test_a_strict_read_that_stops_early_ends_its_duckdb_read_cleanly(tmp_path: Path) -> None:
    """on_bad_lines='error' leaves the fast path at its first record in doubt while the prefetch
    thread may still be in DuckDB: the thread stops before its connection is closed, and the
    error is the bad record, never DuckDB's 'connection is busy' (a race: before the fix about
    one read in ten of this file raised it)."""
    p = tmp_path / "bad.jsonl.gz"  # compressed: read through the prefetch thread
    p.write_bytes(gzip.compress(audit_lines(1) + b"{\n"))
    for _ in range(150):
        with pytest.raises(BadRecordError) as e:
            list(reader(p, on_bad_lines="error").batches())
        assert e.value.line == 2
    r, t = read(p)  # and the shared database still serves the next read
    assert r.used_fast_path and t.num_rows == 1 and r.result.quarantined == 1


def test_a_small_truncated_gzip_keeps_what_came_before(tmp_path: Path) -> None:
    data = gzip.compress(audit_lines(40))
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(data[: len(data) * 2 // 3])
    small = read(p, small_file_bytes=SMALL_FILE_BYTES)
    fast = read(p)
    assert small[0].result.quarantined == 1 and "truncated" in small[0].quarantine[-1]["reason"]
    assert 0 < small[0].result.rows < 40
    same(small, fast)
    same(small, read(p, fast=False))


def test_a_small_file_with_bad_lines_fails_where_the_fast_path_fails() -> None:
    path = FIXTURES / "audit" / "k8s_audit__bad_lines.jsonl"
    errors = []
    for kw in ({}, {"small_file_bytes": SMALL_FILE_BYTES}, {"fast": False}):
        with pytest.raises(BadRecordError) as e:
            read(path, on_bad_lines="error", **kw)
        errors.append(str(e.value))
    assert errors[0] == errors[1] == errors[2]


def test_readers_interleaved_on_one_thread_each_stream_their_own_result(tmp_path: Path) -> None:
    """Two fast-path reads open at once on one thread (one pending result per DuckDB
    connection: a shared connection would fail or mix them)."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(audit_lines(30))
    b.write_bytes(audit_lines(45).replace(b"small-", b"other-"))
    alone = {p: read(p, batch_rows=7)[1] for p in (a, b)}
    ra, rb = reader(a, batch_rows=7), reader(b, batch_rows=7)
    ia, ib = iter(ra.batches()), iter(rb.batches())
    got: dict[Path, list[pa.RecordBatch]] = {a: [], b: []}
    pending = {a: ia, b: ib}
    while pending:
        for p, it in list(pending.items()):
            try:
                got[p].append(next(it))
            except StopIteration:
                del pending[p]
    assert ra.used_fast_path and rb.used_fast_path
    for p in (a, b):
        t = pa.Table.from_batches(got[p]).sort_by([("evidence_line", "ascending")])
        assert t.to_pylist() == alone[p].to_pylist()
        assert len(got[p]) > 1  # several batches each: the two results really were open at once


def test_the_fast_path_database_is_opened_once_per_process(tmp_path: Path, monkeypatch) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(audit_lines(3))
    read(p)
    first = _driver._FAST_DB
    assert first is not None and first[0] == os.getpid()
    read(p)
    assert _driver._FAST_DB is first
    # a database opened before a fork belongs to the parent: the child opens its own
    monkeypatch.setattr(_driver, "_FAST_DB", (-1, first[1]))
    r, t = read(p)
    assert r.used_fast_path and t.num_rows == 3
    assert _driver._FAST_DB is not None and _driver._FAST_DB[0] == os.getpid() and _driver._FAST_DB[1] is not first[1]
