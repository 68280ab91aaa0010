"""Fuzzing every format module: mutated records never crash a reader and never go missing.

Seeds are the records of the tiny fixtures (and of ../shared/real_samples when present),
grouped by the format that claims them. Each example takes a few of one format's records,
mutates some — a field swapped to another JSON type (text, number, boolean, list, object,
null), a field deleted, an extreme time, a huge or non-finite number written as text
(``1e400``, ``-1e400``, ``NaN``), nesting ~2000 levels deep, the serialized line truncated,
invalid UTF-8 bytes — and writes them as JSON lines, pretty-printed values or an array (text
formats: lines under their header). Then:

* the family's reader (``read_audit``, ``read_runtime``, ``read_flows``, ``read_inventory``)
  raises nothing but the documented ``K8sForensicsError`` types;
* for the file, ``records == rows + merged + skipped + quarantined`` (``FileResult``), every
  quarantine entry names the file, a record number and a reason, and every row's time lies
  in the accepted range;
* ``on_bad_lines="error"`` raises ``BadRecordError`` at the first record ``"warn"``
  quarantines, and not at all when it quarantines nothing;
* where DuckDB's fast path applies, it gives the rows and the quarantined records the
  per-record path gives. One difference is known and allowed: a record nested deeper than
  the per-record parsers go (~1000 levels) is quarantined there, while DuckDB reads it.
  (Values may differ in spelling only: a float in a text column is 1e+19 or 1e19.)

CI runs a fixed, derandomized set of 70 examples per format (about a minute in all). For a
longer, randomized run set ``K8SF_FUZZ_EXAMPLES`` (examples per format), e.g.::

    K8SF_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest -q tests/sources/test_fuzz.py -p no:cacheprovider

``K8SF_FUZZ_SEED=<int>`` makes such a run repeatable. A failure prints the example; add a
tiny fixture or an in-test case for the defect it shows (see test_typing.py).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import k8sforensics as kf
from k8sforensics.context import read_inventory
from k8sforensics.errors import BadRecordError, K8sForensicsError
from k8sforensics.ingest.stages import dedupe_audit_table
from k8sforensics.sources import FORMATS, aws_vpc_flow, open_reader
from k8sforensics.sources._arrow import DEFAULT_RANGE
from k8sforensics.sources._files import decompressed_chunks
from k8sforensics.sources._json import iter_documents, iter_records

from ..conftest import FIXTURES, REAL_SAMPLES

EXAMPLES = int(os.environ.get("K8SF_FUZZ_EXAMPLES", "0"))
LONG = EXAMPLES > 0
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES or 70,
    deadline=None,
    derandomize=not LONG,  # CI: the same examples every run
    database=None,
    suppress_health_check=list(HealthCheck),
)

BY_NAME = {f.NAME: f for f in FORMATS}
READERS = {
    "audit": kf.read_audit,
    "runtime": kf.read_runtime,
    "flows": kf.read_flows,
    "cloud": kf.read_cloud,
    "alerts": kf.read_alerts,
    "objects": read_inventory,
}
SEEDS_PER_FORMAT = 200

# --------------------------------------------------------------------------- seeds


def _claim(value: Any, default: str) -> str:
    for f in FORMATS:
        try:
            if f.sniff is not None and f.sniff(value):
                return f.NAME
        except Exception:
            continue
    return default


def _candidate_files() -> list[Path]:
    files = [
        p
        for family in ("audit", "runtime", "flows", "cloud", "alerts", "objects", "quirks")
        for p in sorted((FIXTURES / family).iterdir())
        if p.is_file()
    ]
    if REAL_SAMPLES.is_dir():
        files += [p for p in sorted(REAL_SAMPLES.rglob("*")) if p.is_file() and p.suffix not in (".md", ".tsv")]
    return files


def _load_seeds() -> tuple[dict[str, list[Any]], dict[str, list[tuple[list[str], list[str]]]]]:
    records: dict[str, list[Any]] = {}
    texts: dict[str, list[tuple[list[str], list[str]]]] = {}
    for path in _candidate_files():
        try:
            reader = open_reader(path, explicit=False).prepare()
        except K8sForensicsError:
            continue
        fmt = reader.result.format
        if fmt is None:
            continue
        if reader._layout == "text":
            lines = [
                ln for ln in b"".join(decompressed_chunks(path)).decode("utf-8", "replace").splitlines() if ln.strip()
            ]
            head = 1 if fmt == "azure-traffic-analytics" or aws_vpc_flow._is_header(lines[0].split()) else 0
            texts.setdefault(fmt, []).append((lines[:head], lines[head:]))
            continue
        try:
            for rec in iter_records(iter_documents(decompressed_chunks(path))):
                if isinstance(rec.value, dict):
                    bucket = records.setdefault(_claim(rec.value, fmt), [])
                    if len(bucket) < SEEDS_PER_FORMAT:
                        bucket.append(rec.value)
        except Exception:
            continue
    return records, texts


SEED_RECORDS, SEED_TEXTS = _load_seeds()


def test_every_format_has_seeds() -> None:
    assert {f.NAME for f in FORMATS} <= set(SEED_RECORDS) | set(SEED_TEXTS)


# --------------------------------------------------------------------------- mutations

# Written raw into the serialized text in place of a placeholder string: values json.dumps
# cannot produce (or only as Infinity/NaN) and nesting it could not serialize.
RAW = {
    "\x00R1": "1e400",
    "\x00R2": "-1e400",
    "\x00R3": "NaN",
    "\x00R4": "Infinity",
    "\x00R5": "1e999999999",
    "\x00R6": "123456789012345678901234567890",
    "\x00R7": "[" * 2000 + "]" * 2000,
    "\x00R8": '{"a":' * 2000 + "1" + "}" * 2000,
    "\x00R9": "-0.0",
}
EXTREME_TIMES = [
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31",
    "1677-09-21T00:12:43Z",
    "2262-04-11T23:47:17Z",
    "1969-12-31T23:59:59.999999999Z",
    "2100-01-01T00:00:00Z",
    "2099-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "0000-00-00T00:00:00Z",
    "2024-13-45T25:61:61Z",
    "2024-05-01T10:00:00+99:99",
    "",
    253402300800,
    -1,
    0,
    2**63,
    -(2**63),
    2**64,
    1e19,
    -1e19,
    1.5e300,
    9223372036854775807,
    1714557600.5,
]
SCALARS = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.sampled_from(list(RAW)),
    st.sampled_from(EXTREME_TIMES),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), SCALARS, max_size=3),
)


def _paths(value: Any, limit: int = 400) -> list[tuple[Any, ...]]:
    """Paths to the nodes of a JSON value, breadth first (the top fields first)."""
    out: list[tuple[Any, ...]] = []
    queue: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while queue and len(out) < limit:
        path, node = queue.pop(0)
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in children:
            out.append((*path, k))
            queue.append(((*path, k), v))
    return out


def _parent(value: Any, path: tuple[Any, ...]) -> Any:
    for k in path[:-1]:
        value = value[k]
    return value


def mutate_record(draw: st.DrawFn, record: Any) -> Any:
    rec = json.loads(json.dumps(record))  # a private copy
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(rec)
        if not paths:
            break
        path = paths[draw(st.integers(0, len(paths) - 1))]
        parent, key = _parent(rec, path), path[-1]
        op = draw(st.sampled_from(["swap", "swap", "delete", "time", "raw"]))
        if op == "delete":
            del parent[key]
        elif op == "time":
            parent[key] = draw(st.sampled_from(EXTREME_TIMES))
        elif op == "raw":
            parent[key] = draw(st.sampled_from(list(RAW)))
        else:
            parent[key] = draw(VALUES)
    return rec


def serialize(value: Any, indent: int | None) -> str:
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    for placeholder, raw in RAW.items():
        text = text.replace(json.dumps(placeholder, ensure_ascii=False), raw)
    return text


def damage_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    op = draw(st.sampled_from(["none", "none", "truncate", "utf8"]))
    if not data or op == "none":
        return data
    i = draw(st.integers(0, len(data)))
    if op == "truncate":
        return data[:i]
    return (
        data[:i]
        + draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\r"]))
        + data[i:]
    )


@st.composite
def json_evidence(draw: st.DrawFn, fmt: str) -> tuple[str, bytes]:
    seeds = SEED_RECORDS[fmt]
    records = [draw(st.sampled_from(seeds))]  # one as it was first, so the file still sniffs as fmt
    for _ in range(draw(st.integers(1, 5))):
        rec = draw(st.sampled_from(seeds))
        records.append(mutate_record(draw, rec) if draw(st.booleans()) else rec)
    layout = draw(st.sampled_from(["lines", "lines", "pretty", "array"]))
    if layout == "lines":
        chunks = [
            damage_bytes(draw, serialize(r, None).encode()) if k else serialize(r, None).encode()
            for k, r in enumerate(records)
        ]
        return ".jsonl", b"\n".join(chunks) + b"\n"
    if layout == "pretty":
        return ".json", damage_bytes(draw, "\n".join(serialize(r, 2) for r in records).encode() + b"\n")
    return ".json", damage_bytes(draw, serialize(records, 1).encode())


@st.composite
def text_evidence(draw: st.DrawFn, fmt: str) -> tuple[str, bytes]:
    head, lines = draw(st.sampled_from(SEED_TEXTS[fmt]))
    sep = "," if fmt == "azure-traffic-analytics" else " "
    out = [*head, draw(st.sampled_from(lines))]
    for _ in range(draw(st.integers(1, 5))):
        line = draw(st.sampled_from(lines))
        if draw(st.booleans()):
            fields = line.split(sep)
            for _ in range(draw(st.integers(1, 3))):
                i = draw(st.integers(0, len(fields) - 1))
                op = draw(st.sampled_from(["swap", "delete", "time"]))
                if op == "delete" and len(fields) > 1:
                    del fields[i]
                else:
                    value = (
                        draw(st.sampled_from(EXTREME_TIMES))
                        if op == "time"
                        else draw(
                            st.sampled_from(
                                [
                                    "1e400",
                                    "-1e400",
                                    "NaN",
                                    "inf",
                                    "-",
                                    "",
                                    "9" * 40,
                                    "-62135596800",
                                    "0x50",
                                    "80.5",
                                    "true",
                                    "\r",
                                    '"',
                                    "\t",
                                ]
                            )
                        )
                    )
                    fields[i] = str(value)
            line = sep.join(fields)
        out.append(line)
    data = (
        b"\n".join(damage_bytes(draw, ln.encode()) if k > len(head) else ln.encode() for k, ln in enumerate(out))
        + b"\n"
    )
    return (".csv" if fmt == "azure-traffic-analytics" else ".log"), data


def evidence(fmt: str) -> st.SearchStrategy[tuple[str, bytes]]:
    kinds = ([text_evidence(fmt)] if fmt in SEED_TEXTS else []) + ([json_evidence(fmt)] if fmt in SEED_RECORDS else [])
    return st.one_of(*kinds)


# --------------------------------------------------------------------------- the properties


def check_file(path: Path, family: str, fast: bool) -> None:
    """The whole contract for one evidence file (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            READERS[family](path)
        except K8sForensicsError:
            pass
        reader = open_reader(path, family=family, fast=fast)
        try:
            batches = list(reader.batches())
        except K8sForensicsError:
            return  # documented: unknown format, empty, unreadable
    r = reader.result
    table = pa.Table.from_batches(batches, schema=reader.table_for(reader.format).arrow_schema)
    assert table.num_rows == r.rows
    assert r.records == r.rows + r.merged + sum(r.skipped.values()) + r.quarantined
    assert len(reader.quarantine) == r.quarantined
    for q in reader.quarantine:
        assert q["evidence_id"] == r.evidence.sha256 and q["evidence_line"] >= 1 and q["reason"], q
    for name in ("time", "time_end", "stage_time", "deleted"):
        if name in table.column_names:
            ns = table.column(name).cast(pa.int64()).drop_null().to_pylist()
            assert all(DEFAULT_RANGE.lo <= v < DEFAULT_RANGE.hi for v in ns), name
    if family == "audit":
        deduped, merged = dedupe_audit_table(table)
        assert deduped.num_rows + sum(merged.values()) == table.num_rows
    # the fast path and the per-record path agree on what is a row and what is quarantined
    other = open_reader(path, family=family, fast=not fast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other_ids = {x for b in other.batches() for x in b.column("event_id").to_pylist()}
    if reader.used_fast_path or other.used_fast_path:
        deep = {q["evidence_line"] for q in reader.quarantine + other.quarantine if "nested too deeply" in q["reason"]}
        ids = set(table.column("event_id").to_pylist())
        assert {i for i in ids if int(i.split(":")[1].split(".")[0]) not in deep} == {
            i for i in other_ids if int(i.split(":")[1].split(".")[0]) not in deep
        }
        assert {q["evidence_line"]: q["reason"] for q in reader.quarantine if q["evidence_line"] not in deep} == {
            q["evidence_line"]: q["reason"] for q in other.quarantine if q["evidence_line"] not in deep
        }
    # 'error' stops at the first record 'warn' quarantines, whatever stage finds it
    first_bad = min((q["evidence_line"] for q in reader.quarantine), default=None)
    strict = open_reader(path, family=family, on_bad_lines="error", fast=fast)
    if first_bad is None:
        list(strict.batches())
    else:
        with pytest.raises(BadRecordError) as e:
            list(strict.batches())
        assert e.value.line == first_bad, (e.value.line, first_bad, e.value.reason)


def _run(tmp: Path, fmt: str, case: tuple[str, bytes], fast: bool, compress: bool) -> None:
    suffix, data = case
    path = tmp / f"fuzz-{fmt}{suffix}"
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    check_file(path, BY_NAME[fmt].FAMILY, fast)


def _seeded(test: Any) -> Any:
    fixed = os.environ.get("K8SF_FUZZ_SEED")
    return seed(int(fixed))(test) if fixed else test


@pytest.mark.parametrize("fmt", [f.NAME for f in FORMATS])
def test_mutated_records_never_crash_and_never_go_missing(tmp_path_factory: pytest.TempPathFactory, fmt: str) -> None:
    @_seeded
    @FUZZ_SETTINGS
    @given(case=evidence(fmt), fast=st.booleans(), compress=st.sampled_from([False, False, False, True]))
    def run(case: tuple[str, bytes], fast: bool, compress: bool) -> None:
        _run(tmp_path_factory.mktemp("fuzz"), fmt, case, fast, compress)

    run()


def test_fuzz_seeds_are_readable_as_they_are(tmp_path: Path) -> None:
    """The unmutated seeds of every format give rows (so the mutations start from good input)."""
    rnd = random.Random(0)
    for fmt, recs in SEED_RECORDS.items():
        if fmt not in BY_NAME:
            continue
        p = tmp_path / f"{fmt}.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in rnd.sample(recs, min(5, len(recs)))))
        check_file(p, BY_NAME[fmt].FAMILY, fast=True)


# --------------------------------------------------------------------------- what the fuzzing found
#
# In the loaders: fixed, with a case each in test_typing.py / test_contract.py. Outside them
# (context/inventory.py builds the context tables from the objects' JSON; fixed there): here.

NODE = {
    "kind": "Node",
    "apiVersion": "v1",
    "metadata": {"name": "node-1", "uid": "u1", "creationTimestamp": "2024-04-30T08:00:00Z"},
    "status": {"addresses": [{"type": "InternalIP"}]},
}
POD = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {
        "name": "web-5-x",
        "namespace": "shop",
        "uid": "u2",
        "creationTimestamp": "2024-04-30T08:00:00Z",
        "labels": {"pod-template-hash": 5},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5", "controller": True}],
    },
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}


@pytest.mark.parametrize("obj", [NODE, POD], ids=["node-address-without-address", "pod-template-hash-number"])
def test_odd_objects_are_rows_of_the_objects_table(tmp_path: Path, obj: dict[str, Any]) -> None:
    p = tmp_path / "objects.jsonl"
    p.write_text(json.dumps(obj) + "\n")
    reader = open_reader(p)
    rows = [x for b in reader.batches() for x in b.to_pylist()]
    assert len(rows) == 1 and not reader.quarantine


@pytest.mark.parametrize("obj", [NODE, POD], ids=["node-address-without-address", "pod-template-hash-number"])
def test_odd_objects_reach_the_inventory(tmp_path: Path, obj: dict[str, Any]) -> None:
    p = tmp_path / "objects.jsonl"
    p.write_text(json.dumps(obj) + "\n")
    read_inventory(p)


def test_object_identity_must_be_text(tmp_path: Path) -> None:
    """A list for a name crashed the inventory (unhashable key): the object is bad input."""
    bad = json.loads(json.dumps(POD))
    bad["metadata"]["name"] = []
    bad["metadata"]["labels"] = {"app": "web"}
    p = tmp_path / "objects.jsonl"
    p.write_text(json.dumps(bad) + "\n" + json.dumps({**bad, "metadata": {**bad["metadata"], "name": "ok"}}) + "\n")
    reader = open_reader(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sum(b.num_rows for b in reader.batches()) == 1
    assert [q["reason"] for q in reader.quarantine] == [
        "not a valid kubectl record (field metadata.name: value [] is not text)"
    ]
    read_inventory(p)
