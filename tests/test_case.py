"""The case store: layout, write-once ingest, dedupe across ingests, filtered reads, SQL."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import k8sforensics as kf
from k8sforensics.errors import BadRecordError
from k8sforensics.schema import AUDIT, SCHEMA_VERSION


@pytest.fixture()
def case(tmp_path: Path) -> kf.Case:
    return kf.Case.create(tmp_path / "case", cluster="lab")


def test_layout_and_manifest(case: kf.Case, audit_fixtures: Path) -> None:
    report = kf.ingest(
        case, [audit_fixtures / "k8s_audit__log_backend_stages.jsonl", audit_fixtures / "gke_audit__logentries.jsonl"]
    )
    files = sorted(str(p.relative_to(case.path)) for p in case.path.rglob("*") if p.is_file())
    assert "manifest.json" in files
    assert any(f.startswith("audit/date=2024-05-01/part-") for f in files)
    assert any(f.startswith("audit/date=2024-05-08/part-") for f in files)
    # nothing of the writer is left: no staging folder, no holder record (the OS lock file
    # itself may stay: the kernel's lock on it ended with the write)
    assert not any(f.startswith("_tmp") or f == ".lock.json" for f in files)
    m = case.manifest
    assert m["schema_version"] == SCHEMA_VERSION and m["tool"] == "k8sforensics"
    (ing,) = m["ingests"]
    assert {i["format"] for i in ing["inputs"]} == {"k8s-audit", "gke-audit"}
    for i in ing["inputs"]:
        assert len(i["sha256"]) == 64 and i["bytes"] > 0
        assert i["records"] == i["rows"] + i["merged"] + sum(i["skipped"].values()) + i["quarantined"]
        assert i["time_min"] <= i["time_max"]
    assert m["tables"]["audit"]["rows"] == report.rows == 4
    # every Parquet part carries the schema version
    part = next(case.path.glob("audit/*/*.parquet"))
    meta = pq.read_schema(part).metadata
    assert meta[b"k8sforensics.schema_version"] == SCHEMA_VERSION.encode()
    assert pq.read_schema(part).remove_metadata().equals(AUDIT.arrow_schema.remove_metadata())


def test_default_cluster_fills_rows_without_one(case: kf.Case, audit_fixtures: Path) -> None:
    kf.ingest(
        case, [audit_fixtures / "k8s_audit__log_backend_stages.jsonl", audit_fixtures / "gke_audit__logentries.jsonl"]
    )
    df = case.audit()
    assert set(df[df.source == "k8s-audit"].cluster) == {"lab"}
    assert set(df[df.source == "gke-audit"].cluster) == {"gke-prod"}  # the wrapper's name wins


def test_reingest_is_a_no_op(case: kf.Case, audit_fixtures: Path) -> None:
    kf.ingest(case, audit_fixtures)
    before = case.audit()
    parts = sorted(p.name for p in case.path.rglob("*.parquet"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is read again, so nothing is warned again
        report = kf.ingest(case, audit_fixtures)
    assert report.files == [] and len(report.already_ingested) == len(before.evidence_id.unique())
    assert sorted(p.name for p in case.path.rglob("*.parquet")) == parts
    pd.testing.assert_frame_equal(case.audit(), before)
    assert before.audit_id.dropna().is_unique


def test_stages_split_across_ingests_merge(case: kf.Case, audit_fixtures: Path, tmp_path: Path) -> None:
    lines = (audit_fixtures / "k8s_audit__log_backend_stages.jsonl").read_text().splitlines()
    first, second = tmp_path / "rotated.1.log", tmp_path / "rotated.2.log"
    first.write_text(lines[0] + "\n")  # RequestReceived of a1
    second.write_text("\n".join(lines[1:]) + "\n")  # ResponseStarted, ResponseComplete, a2 ×2
    kf.ingest(case, first)
    assert case.audit().stage.tolist() == ["RequestReceived"]
    report = kf.ingest(case, second)
    assert report.superseded == 1
    df = case.audit()
    assert sorted(df.audit_id) == ["a1", "a2"]
    a1 = df[df.audit_id == "a1"].iloc[0]
    assert a1.stage == "ResponseComplete"
    assert list(a1.stages) == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    assert case.manifest["tables"]["audit"]["rows"] == 2
    assert case.sql("select count(*) n from audit").n.iloc[0] == 2
    # an earlier stage arriving later does not replace the final one
    third = tmp_path / "late.log"
    third.write_text(lines[0].replace('"10.0.0.5"', '"10.0.0.6"') + "\n")
    r3 = kf.ingest(case, third)
    assert r3.files[0].merged == 1 and r3.rows == 0
    assert case.audit(columns=["audit_id", "stage"]).set_index("audit_id").stage["a1"] == "ResponseComplete"


def test_filters_are_pushed_down(case: kf.Case, audit_fixtures: Path) -> None:
    kf.ingest(case, audit_fixtures)
    all_rows = case.audit()
    day = case.audit(start="2024-05-08", end="2024-05-09")
    assert len(day) and (day.time >= pd.Timestamp("2024-05-08", tz="UTC")).all()
    assert (day.time < pd.Timestamp("2024-05-09", tz="UTC")).all()
    assert len(day) == ((all_rows.time >= "2024-05-08") & (all_rows.time < "2024-05-09")).sum()
    shop = case.audit(namespace="shop", columns=["time", "namespace", "verb"])
    assert list(shop.columns) == ["time", "namespace", "verb"] and set(shop.namespace) == {"shop"}
    assert list(all_rows.time) == sorted(all_rows.time)
    with pytest.raises(kf.CaseError, match="no column"):
        case.audit(columns=["nope"])


def test_sql_over_the_case(case: kf.Case, audit_fixtures: Path) -> None:
    kf.ingest(case, audit_fixtures)
    verbs = case.sql("select verb, count(*) as n from audit group by verb order by n desc, verb")
    assert verbs.n.sum() == len(case.audit())
    q = case.sql("select evidence_line, reason from quarantine order by evidence_line")
    assert q.evidence_line.tolist() == [2, 4, 6, 7]
    with pytest.raises(kf.CaseError, match="SQL failed"):
        case.sql("select * from nowhere")


def test_quarantine_table(case: kf.Case, audit_fixtures: Path) -> None:
    report = kf.ingest(case, audit_fixtures / "k8s_audit__bad_lines.jsonl")
    q = case.quarantine()
    assert len(q) == report.quarantined == 4
    assert set(q.path) == {str(audit_fixtures / "k8s_audit__bad_lines.jsonl")}
    assert "quarantined 4 record(s)" in str(report)


def test_failed_ingest_leaves_the_case_unchanged(case: kf.Case, audit_fixtures: Path) -> None:
    kf.ingest(case, audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    before = json.dumps(case.manifest, sort_keys=True)
    files = sorted(p for p in case.path.rglob("*") if p.is_file())
    with pytest.raises(BadRecordError):
        kf.ingest(
            case,
            [audit_fixtures / "gke_audit__logentries.jsonl", audit_fixtures / "k8s_audit__bad_lines.jsonl"],
            on_bad_lines="error",
        )
    assert json.dumps(kf.Case.open(case.path).manifest, sort_keys=True) == before
    assert sorted(p for p in case.path.rglob("*") if p.is_file()) == files


def test_open_and_create_errors(tmp_path: Path) -> None:
    with pytest.raises(kf.CaseError, match="not a case"):
        kf.Case.open(tmp_path)
    kf.Case.create(tmp_path / "c")
    with pytest.raises(kf.CaseError, match="already exists"):
        kf.Case.create(tmp_path / "c")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(kf.CaseError, match="not empty"):
        kf.Case.create(tmp_path / "full")


def test_summary_lists_formats_and_counts(case: kf.Case, audit_fixtures: Path) -> None:
    text = str(kf.ingest(case, audit_fixtures))
    for fmt in ("k8s-audit", "gke-audit", "aks-audit"):
        assert fmt in text
    assert "2018-10-25 13:58:49 → 2024-05-11" in text  # the k8s-audit time range
    assert "audit" in case.summary() and "rows" in case.summary()


def test_case_and_read_audit_agree(case: kf.Case, audit_fixtures: Path) -> None:
    """Streaming stage merge + collision step (the case) == the in-memory merge (read_audit)."""
    import warnings as w

    with w.catch_warnings():
        w.simplefilter("ignore")
        kf.ingest(case, audit_fixtures)
        direct = kf.read_audit(audit_fixtures, cluster="lab")
    stored = case.audit()
    key = ["event_id"]
    a = stored.sort_values(key).reset_index(drop=True)
    b = direct.sort_values(key).reset_index(drop=True)
    assert list(a.event_id) == list(b.event_id)
    assert [None if x is None else list(x) for x in a.stages] == [None if x is None else list(x) for x in b.stages]
    for col in ("time", "audit_id", "stage", "user", "request_object", "exec_command", "cluster"):
        assert a[col].equals(b[col]), col


def test_one_folder_mixing_families(case: kf.Case, audit_fixtures: Path, tmp_path: Path) -> None:
    import shutil

    evidence = tmp_path / "evidence"
    shutil.copytree(audit_fixtures, evidence / "audit")
    shutil.copytree(audit_fixtures.parent / "runtime", evidence / "runtime")
    report = kf.ingest(case, evidence)
    families = {f.family for f in report.files}
    assert families == {"audit", "runtime"}
    rt = case.runtime()
    assert len(rt) == sum(f.rows for f in report.files if f.family == "runtime") == 9  # 3 Falco + 4 Tetragon + 2 Tracee
    assert list(rt.time) == sorted(rt.time)
    assert any(p.startswith("runtime/date=2024-05-01/") for p in case.manifest["tables"]["runtime"]["parts"])
    assert case.manifest["tables"]["runtime"]["rows"] == 9
    shells = case.sql("select pod, container_id from runtime where rule = 'Terminal shell in container'")
    assert shells.to_dict("records") == [{"pod": "cart-5c7b9", "container_id": "3f1b2c4d5e6f"}]
    assert len(case.runtime(namespace="shop")) == len(rt[rt.namespace == "shop"])


def test_a_read_that_would_load_too_much_says_how_to_narrow_it(tmp_path: Path) -> None:
    import k8sforensics as kf

    from .conftest import ROOT

    case = kf.Case.create(tmp_path / "case")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        kf.ingest(case, ROOT / "sample_data" / "flows", progress=False)
    total = case.manifest["tables"]["flows"]["rows"]
    case.max_rows = 100
    with pytest.raises(
        kf.CaseError, match=rf"case.flows\(\) would load {total:,} rows, more than max_rows=100: narrow it with start="
    ):
        case.flows()
    assert len(case.flows(start="2026-03-10T10:00:00Z", end="2026-03-10T10:01:00Z")) <= 100  # a narrow window is fine
    assert len(case.flows(max_rows=None)) == total
    assert kf.Case.open(case.path).max_rows == 10_000_000  # the limit is the case object's, not global


def test_the_pod_filter_is_pushed_down(tmp_path: Path) -> None:
    import k8sforensics as kf

    from .conftest import ROOT

    case = kf.Case.create(tmp_path / "case")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        kf.ingest(case, ROOT / "sample_data" / "runtime", progress=False)
    every = case.runtime()
    mine = case.runtime(pod="kube-proxy-x7k2p")
    assert len(mine) and set(mine["pod"]) == {"kube-proxy-x7k2p"}
    assert len(mine) == int((every["pod"] == "kube-proxy-x7k2p").sum())
    assert len(case.runtime(pod=["kube-proxy-x7k2p", "nope"])) == len(mine)


def test_chunks_cut_a_table_in_time_order_at_whole_buckets(sample_case: kf.Case) -> None:
    every = pd.Timedelta(minutes=1)
    whole = sample_case.flows(max_rows=None)
    chunks = list(sample_case.chunks("flows", rows=20, every=every))
    assert len(chunks) > 3
    together = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(together, whole.reset_index(drop=True))  # every row once, in order
    buckets = [set(c["time"].dt.floor(every)) for c in chunks]
    for a, b in zip(buckets, buckets[1:]):
        assert not a & b  # a bucket is never split between two chunks
    for c, b in zip(chunks, buckets):
        assert len(c) <= 20 or len(b) == 1  # only a bucket alone may exceed the limit


def test_a_file_no_format_reads_is_still_on_record_with_its_hash(case: kf.Case, tmp_path: Path) -> None:
    import hashlib

    preserved = tmp_path / "preserved"
    preserved.mkdir()
    blob = b"\x00checkpoint archive bytes\xff" * 10
    (preserved / "checkpoint-api.tar").write_bytes(blob)
    report = kf.ingest(case, preserved, progress=False)
    assert [p for p, _ in report.unrecognised] == [str(preserved / "checkpoint-api.tar")]
    (entry,) = case.manifest["ingests"][-1]["unrecognised"]
    assert entry["sha256"] == hashlib.sha256(blob).hexdigest() and entry["bytes"] == len(blob)
