"""The shape matrix's generators and baselines (benchmarks/shapes.py) at tiny sizes: each shape
is what it says, the paired file is the one the suite always measured, every shape ingests
into the rows the generator promises with nothing quarantined, and every DuckDB baseline reads
it. The timed runs are the suite's, never here."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

import k8sforensics as kf

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("shapes", ROOT / "benchmarks" / "shapes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # puts benchmarks/ on sys.path for its sibling generators
    return mod


shapes = _load()
gen_audit = shapes.gen_audit


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_paired_is_the_file_the_suite_always_measured(tmp_path: Path) -> None:
    # sha256 of the 500-line file gen_audit wrote before it had shapes (cached inputs stay valid)
    gen_audit.generate(500, str(tmp_path / "a.jsonl"), 42)
    digest = hashlib.sha256((tmp_path / "a.jsonl").read_bytes()).hexdigest()
    assert digest == "a3a57fa12cfb3ce55c221b3cb95a4f8075c5430e3f4f1e59d205ab79fc83b03e"


def test_unmatched_early_stages_have_no_final_stage(tmp_path: Path) -> None:
    meta = gen_audit.generate(3000, str(tmp_path / "u.jsonl"), 42, shape="unmatched", unmatched=0.2)
    evs = _events(tmp_path / "u.jsonl")
    final = {e["auditID"] for e in evs if e["stage"] == "ResponseComplete"}
    cut = [e for e in evs if e["auditID"] not in final]
    assert all(e["stage"] in ("RequestReceived", "ResponseStarted") and e["verb"] == "watch" for e in cut)
    assert len(cut) == meta["unmatched_early_stage_lines"]
    assert 0.16 < len(cut) / len(evs) < 0.24
    assert len({e["auditID"] for e in evs}) == meta["unique_audit_ids"]


def test_watch_heavy_stages_are_far_apart(tmp_path: Path) -> None:
    meta = gen_audit.generate(3000, str(tmp_path / "w.jsonl"), 42, shape="watch")
    evs = _events(tmp_path / "w.jsonl")
    first, last = {}, {}
    for i, e in enumerate(evs):
        first.setdefault(e["auditID"], i)
        if e["stage"] == "ResponseComplete":
            last[e["auditID"]] = i
    watches = [a for a in first if evs[first[a]]["verb"] == "watch" and a in last]
    assert len(watches) / len(first) > 0.6
    # a watch ends when it times out, 5-10 minutes later: that much log lies between its stages
    # (here ~53 s of log per line; ~2,000-4,000 lines at the suite's 1 M events)
    t = dt.datetime.fromisoformat
    took = [(t(evs[last[a]]["stageTimestamp"]) - t(evs[first[a]]["stageTimestamp"])).total_seconds() for a in watches]
    assert min(took) >= 299 and max(took) <= 600
    gaps = sorted(last[a] - first[a] for a in watches)
    line_s = gen_audit.SPAN_US / 1e6 / 3000
    assert gaps[len(gaps) // 2] >= 300 / line_s - 1
    assert {e["stage"] for e in evs} == {"RequestReceived", "ResponseStarted", "ResponseComplete"}
    assert len(first) == meta["unique_audit_ids"]


def test_large_bodies_are_about_ten_kilobytes(tmp_path: Path) -> None:
    gen_audit.generate(120, str(tmp_path / "l.jsonl"), 42, shape="large")
    evs = [e for e in _events(tmp_path / "l.jsonl") if e["stage"] == "ResponseComplete"]
    assert {e["level"] for e in evs} == {"RequestResponse"}
    sizes = sorted(len(json.dumps(e["requestObject"], separators=(",", ":"))) for e in evs)
    assert 6_000 < sizes[len(sizes) // 2] < 15_000
    assert all(len(json.dumps(e["responseObject"])) >= len(json.dumps(e["requestObject"])) for e in evs)


def test_pages_and_small_files_hold_the_paired_events(tmp_path: Path) -> None:
    gen_audit.generate(800, str(tmp_path / "p.jsonl"), 42)
    paired = (tmp_path / "p.jsonl").read_text()
    meta = gen_audit.generate(800, str(tmp_path / "pages.json"), 42, shape="eks-pages")
    text, dec, pos, messages, tokens = (tmp_path / "pages.json").read_text(), json.JSONDecoder(), 0, [], 0
    while pos < len(text.rstrip()):
        page, end = dec.raw_decode(text, pos)
        messages += [ev["message"] for ev in page["events"]]
        tokens += "nextToken" in page
        pos = end + 1
    assert messages == paired.splitlines()
    assert meta["pages"] > 1 and tokens == meta["pages"] - 1  # the last page has no nextToken
    gen_audit.generate(800, str(tmp_path / "small"), 42, shape="small-files", files=30)
    files = sorted((tmp_path / "small").iterdir())
    assert len(files) == 30 and "".join(f.read_text() for f in files) == paired


@pytest.mark.parametrize("shape", list(shapes.SHAPES))
def test_every_shape_ingests_as_generated_and_its_baseline_reads_it(shape: str, tmp_path: Path) -> None:
    family = shapes.SHAPES[shape][0]
    n = 60 if shape == "audit-large" else 400
    meta = shapes.ensure_input(str(tmp_path), shape, n, 7)
    case = kf.Case.create(tmp_path / "case")
    report = kf.ingest(case, [meta["path"]], progress=False)
    assert report.quarantined == 0 and not report.unrecognised
    assert case.manifest["tables"][family]["rows"] == meta["expected_rows"]
    out = tmp_path / "duckdb"
    out.mkdir()
    assert shapes.child_duckdb(shape, meta["path"], str(out), 1) == 0
    # DuckDB writes one row per line (audit: every stage), k8sforensics one per request
    assert shapes.parquet_rows(str(out)) == (n if family == "audit" else meta["expected_rows"])
