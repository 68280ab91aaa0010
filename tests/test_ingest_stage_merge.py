"""The columnar stage merge against a row-by-row reference of the same rule, over random
interleavings of stages, audit ids, files, batch cuts and memory limits."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sforensics.ingest import parts
from k8sforensics.ingest.stages import StageMerger
from k8sforensics.schema import AUDIT

RANK = {"RequestReceived": 1, "ResponseStarted": 2}
STAGES = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic", None]


def reference(files: list[list[list[tuple[str | None, str | None]]]], limit: int):
    """The rule row by row: ``files`` → batches → (audit_id, stage). Returns what is written
    as (event_id, stages) — per batch, then released per batch, then drained — and the
    merged count per file."""
    held: dict[str, tuple[int, list[str], str, str]] = {}  # id → (rank, stages, event id, evidence)
    merged: Counter[str] = Counter()
    written, released = [], []
    line = 0
    for f, batches in enumerate(files):
        ev = f"ev{f}"
        for batch in batches:
            out: list[tuple[str, list[str] | None]] = []
            for a, s in batch:
                line += 1
                eid = f"{ev}:{line}"
                r = RANK.get(s, 3) if s is not None else 3
                own = [s] if s else []
                if a is None:
                    out.append((eid, own or None))
                    continue
                if a in held:
                    hr, hs, hid, hev = held[a]
                    if hr >= r:  # the same or an earlier stage: this row is merged away
                        held[a] = (hr, sorted(set(hs) | set(own), key=lambda x: RANK.get(x, 3)), hid, hev)
                        merged[ev] += 1
                        continue
                    del held[a]  # a more final stage: the held row is merged away
                    merged[hev] += 1
                    union = sorted(set(hs) | set(own), key=lambda x: RANK.get(x, 3))
                    if r < 3:
                        held[a] = (r, union, eid, ev)
                    else:
                        out.append((eid, union))
                    continue
                if r < 3:
                    held[a] = (r, own, eid, ev)
                else:
                    out.append((eid, own or None))
            written.append(out)
            gone = []
            while len(held) > limit:
                a = next(iter(held))
                _, hs, hid, _ = held.pop(a)
                gone.append((hid, hs))
            released.append(gone)
    drained = [(hid, hs) for _, hs, hid, _ in held.values()]
    return written, released, drained, merged


def batch_of(rows: list[tuple[str | None, str | None]], ev: str, start: int) -> pa.RecordBatch:
    n = len(rows)
    data: dict[str, list] = {c: [None] * n for c in AUDIT.names}
    data["audit_id"] = [a for a, _ in rows]
    data["stage"] = [s for _, s in rows]
    data["stages"] = [[s] if s else None for _, s in rows]
    data["evidence_line"] = list(range(start + 1, start + n + 1))
    data["event_id"] = [f"{ev}:{start + i + 1}" for i in range(n)]
    data["evidence_id"] = [ev] * n
    return pa.RecordBatch.from_pydict(data, schema=AUDIT.arrow_schema)


def pairs(batch: pa.RecordBatch) -> list[tuple[str, list[str] | None]]:
    return list(zip(batch.column("event_id").to_pylist(), batch.column("stages").to_pylist()))


ROW = st.tuples(st.sampled_from(["a", "b", "c", "d", "e", None]), st.sampled_from(STAGES))
FILES = st.lists(st.lists(st.lists(ROW, max_size=12), min_size=1, max_size=4), min_size=1, max_size=3)


@settings(max_examples=400, deadline=None)
@given(files=FILES, limit=st.sampled_from([0, 1, 2, 3, 200_000]))
def test_columnar_merge_equals_the_row_by_row_rule(files, limit) -> None:  # type: ignore[no-untyped-def]
    written, released, drained, merged = reference(files, limit)
    m = StageMerger(limit=limit)
    line, k = 0, 0
    for f, batches in enumerate(files):
        for rows in batches:
            out, keep, gone = m.feed(batch_of(rows, f"ev{f}", line))
            line += len(rows)
            kept = out if keep is None else out.filter(pa.array(keep))
            assert pairs(kept) == written[k]
            assert [p for b in gone for p in pairs(b)] == [(e, s or None) for e, s in released[k]]
            k += 1
    assert [p for b in m.drain() for p in pairs(b)] == [(e, s or None) for e, s in drained]
    assert m.held == 0
    assert +m.merged == +merged


def test_the_merge_of_a_long_file_keeps_its_rows_in_order() -> None:
    """Many batches, many held rows: released and drained in the order they were held."""
    m = StageMerger(limit=1_000)
    seen = []
    for b in range(20):
        rows = [(f"r{b}-{i}", "RequestReceived") for i in range(300)]
        rows += [(f"r{b - 1}-{i}", "ResponseComplete") for i in range(0, 300, 2)] if b else []
        _, _, gone = m.feed(batch_of(rows, "ev", b * 1000))
        seen += [e for g in gone for e in g.column("audit_id").to_pylist()]
    seen += [e for g in m.drain(rows=128) for e in g.column("audit_id").to_pylist()]
    held = [f"r{b}-{i}" for b in range(20) for i in range(300) if b == 19 or i % 2]
    assert seen == held and m.merged["ev"] == 19 * 150


def test_held_rows_in_batches_give_the_bytes_one_row_writes_gave(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The held part was written a row at a time; written in batches with ``row_by_row`` it
    is the same file, byte for byte (row groups and pages alike), so its sha256 is unchanged."""
    monkeypatch.setattr(parts, "STREAM_ROW_GROUP_ROWS", 7)  # several row groups
    spec = [(f"r{i}", "RequestReceived") for i in range(40)]
    rows = batch_of(spec, "ev", 0)
    # 1,000 s apart from 23:50 UTC: two dates, so two parts with several row groups each
    times = pa.array([1_773_013_800_000_000 + i * 10**9 for i in range(40)], pa.timestamp("us", tz="UTC"))
    rows = rows.set_column(
        AUDIT.names.index("time"), AUDIT.arrow_schema.field("time"), times.cast(pa.timestamp("ns", tz="UTC"))
    )
    one = parts.PartWriter(tmp_path / "one", AUDIT)
    for i in range(rows.num_rows):
        one.write("p", rows.slice(i, 1))
    batched = parts.PartWriter(tmp_path / "batched", AUDIT)
    for lo, hi in ((0, 3), (3, 19), (19, 20), (20, 40)):
        batched.write("p", rows.slice(lo, hi - lo), row_by_row=True)
    written = one.close()
    assert len(written) == 2 and batched.close() == written
    for rel in written:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "batched" / rel).read_bytes()
    plain = parts.PartWriter(tmp_path / "plain", AUDIT)
    plain.write("p", rows)
    assert plain.close() == written
    assert (tmp_path / "plain" / written[1]).read_bytes() != (tmp_path / "one" / written[1]).read_bytes()  # it can tell
