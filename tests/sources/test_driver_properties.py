"""Property tests over the driver: random truncations, byte flips and line splices of real
sample files never raise anything but the documented errors and never lose a record."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8sforensics.errors import K8sForensicsError
from k8sforensics.sources import open_reader

from ..conftest import FIXTURES, REAL_SAMPLES

SOURCES = [
    FIXTURES / "audit" / "k8s_audit__log_backend_stages.jsonl",
    FIXTURES / "audit" / "k8s_audit__pretty_concatenated.json",
    FIXTURES / "audit" / "aks_audit__eventhub_bom.json",
    FIXTURES / "audit" / "k8s_audit__eks_firehose_concatenated.json",
    FIXTURES / "audit" / "gke_audit__logentries.jsonl",
]
if REAL_SAMPLES.is_dir():
    SOURCES += [
        REAL_SAMPLES / "k8s-audit-v1-jsonl" / "audit2rbac__demo.log",
        REAL_SAMPLES / "k8s-audit-v1-jsonl" / "falco-legacy-tests__k8s_audit_trace_files.jsonl",
        REAL_SAMPLES / "cloud-audit-aks" / "sysdig-aks-audit-log__event.json",
        REAL_SAMPLES / "cloud-audit-gke" / "panther__rule_tests_GCP_AuditLog.jsonl",
    ]
ORIGINALS = {p: p.read_bytes() for p in SOURCES}


@st.composite
def damaged(draw: st.DrawFn) -> tuple[Path, bytes]:
    src = draw(st.sampled_from(SOURCES))
    data = bytearray(ORIGINALS[src])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "flip", "splice", "delete", "insert"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "truncate":
            del data[i:]
        elif op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 64))]
        elif op == "insert":
            data[i:i] = draw(st.sampled_from([b"\n", b"{", b"}", b'"', b"\xff", b"\x00", b"[", b",", b"\n\n"]))
        else:  # splice: a line (or a slice) copied to another place, as log rotation might
            j = draw(st.integers(0, len(data) - 1))
            k = min(len(data), j + draw(st.integers(1, 400)))
            data[i:i] = data[j:k]
    return src, bytes(data)


@pytest.mark.slow
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(case=damaged())
def test_damaged_evidence_never_crashes_or_loses_records(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[Path, bytes]
) -> None:
    src, data = case
    p = tmp_path_factory.mktemp("dmg") / src.name
    p.write_bytes(data)
    reader = open_reader(p, explicit=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batches = list(reader.batches())
    except K8sForensicsError:
        return  # documented: unknown format, empty, unreadable
    r = reader.result
    rows = sum(b.num_rows for b in batches)
    assert rows == r.rows
    assert rows + sum(r.skipped.values()) + r.quarantined == r.records
    # every record number handed out is accounted for by a row, a skip or a quarantine entry
    seen = {n for b in batches for n in b.column("evidence_line").to_pylist()} | {
        q["evidence_line"] for q in reader.quarantine
    }
    if not r.skipped:
        numbers = set(range(1, max(seen, default=0) + 1))
        assert numbers <= seen or r.envelopes, "a record number was skipped without an entry"
    # JSON lines stay JSON lines: each non-blank line is at least one record
    if src.suffix in (".jsonl", ".log") and reader.result.format and data.lstrip()[:1] == b"{":
        lines = [ln for ln in data.split(b"\n") if ln.strip()]
        first = lines[0] if lines else b""
        try:
            import orjson

            orjson.loads(first)
            line_mode = True
        except orjson.JSONDecodeError:
            line_mode = False
        if line_mode:
            assert r.records >= len(lines)
