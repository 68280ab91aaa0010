"""Exports other tools read: Timesketch JSONL read back line by line, OCSF events validated
against the OCSF schema (and shown to fail without a required attribute), CSV read back with
hostile values, and the all-events exports streamed in chunks."""

from __future__ import annotations

import copy
import csv
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dateutil import parser as dateparser

import k8sforensics as kf
from k8sforensics.views import export

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HOSTILE = 'x\n"evil", =HYPERLINK("http://198.51.100.66")\r<script>alert(1)</script>'


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _hostile_findings(case: kf.Case) -> pd.DataFrame:
    f = case.findings().head(3).copy()
    f["summary"] = HOSTILE
    f["entity"] = "-shop/<img src=x onerror=alert(1)>"
    return f


# --------------------------------------------------------------------------- Timesketch


def test_timesketch_jsonl_round_trip(sample_case: kf.Case, tmp_path: Path) -> None:
    path = export.timesketch_jsonl(sample_case, tmp_path / "t.jsonl")
    lines = _lines(path)
    timeline = kf.kill_chain(sample_case)
    assert path.suffix == ".jsonl" and len(lines) == len(timeline) > 0
    for line in lines:
        # what Timesketch's importer requires of every line, parsed the way its server parses it
        assert isinstance(line["message"], str) and line["message"] and "\n" not in line["message"]
        assert line["timestamp_desc"] in export.TIMESTAMP_DESC.values()
        when = dateparser.parse(line["datetime"])
        assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0
        assert line["timestamp"] == int(when.timestamp() * 1_000_000)
        assert not any(k.startswith("_") for k in line)  # the importer drops such keys
        want = export.TIMESTAMP_DESC["finding" if line["kind"] == "finding" else line["source_table"]]
        assert line["timestamp_desc"] == want
    # the events survive, in time order, findings before their evidence at the same time
    rank = {"finding": 0, "evidence": 1, "context": 2}
    rows = sorted(
        timeline.to_dict("records"),
        key=lambda r: (r["time"], rank[r["kind"]], r["finding_id"], r["event_id"] or ""),
    )
    assert [(x["kind"], x.get("event_id"), x["finding_id"]) for x in lines] == [
        (r["kind"], r["event_id"], r["finding_id"]) for r in rows
    ]
    for line, row in zip(lines, rows):
        assert pd.Timestamp(dateparser.parse(line["datetime"])) == row["time"].floor("us")
        if row["kind"] == "finding":
            assert line["event_ids"] == list(row["event_ids"])
            assert line["kill_chain_phase"] == row["kill_chain_phase"] and line["severity"] == row["severity"]
    # the same case gives the same file
    assert export.timesketch_jsonl(sample_case, tmp_path / "again.jsonl").read_bytes() == path.read_bytes()


def test_timesketch_escapes_hostile_values_into_one_line_json(sample_case: kf.Case, tmp_path: Path) -> None:
    path = export.timesketch_jsonl(sample_case, tmp_path / "t.jsonl", findings=_hostile_findings(sample_case))
    text = path.read_text(encoding="utf-8")
    lines = _lines(path)
    findings = [x for x in lines if x["kind"] == "finding"]
    assert len(text.splitlines()) == len(lines) and len(findings) == 3
    assert all(x["summary"] == HOSTILE for x in findings)  # the value itself survives, JSON-encoded
    assert all("\n" not in x["message"] and "\r" not in x["message"] for x in findings)
    assert "<" not in text and ">" not in text  # HTML-safe JSON: no raw markup should a browser show it
    assert findings[0]["entity"] == "-shop/<img src=x onerror=alert(1)>"


def test_all_events_are_streamed_in_chunks_each_once(
    sample_case: kf.Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "_CHUNK_ROWS", 200)
    chunks: list[int] = []
    real = type(sample_case).chunks

    def spy(self: kf.Case, name: str, **kw: Any):
        for chunk in real(self, name, **kw):
            chunks.append(len(chunk))
            yield chunk

    monkeypatch.setattr(type(sample_case), "chunks", spy)
    lines = _lines(export.timesketch_jsonl(sample_case, tmp_path / "all.jsonl", all_events=True))
    total = sum(len(sample_case.table(t, columns=["event_id"])) for t in ("audit", "runtime", "flows"))
    events = [x["event_id"] for x in lines if x["kind"] != "finding"]
    raw = [x for x in lines if x["kind"] == "event"]
    assert len(set(events)) == total  # every event of the case, ...
    assert len(raw) == len({x["event_id"] for x in raw})  # ... those outside the timeline once each
    assert len(chunks) > 3 and max(chunks) <= 200
    assert all(x["message"] and x["datetime"] and x["timestamp_desc"] for x in raw)
    assert not any("request_object" in x or "response_object" in x for x in raw)  # bodies stay out


# --------------------------------------------------------------------------- OCSF


def _assert_valid(events: list[dict[str, Any]]) -> None:
    for e in events:
        assert export.ocsf_errors(e) == [], (e["metadata"]["uid"], export.ocsf_errors(e)[:3])
        assert e["type_uid"] == e["class_uid"] * 100 + e["activity_id"]
        assert e["category_uid"] == e["class_uid"] // 1000
        assert e["metadata"]["version"] == export.OCSF_VERSION and e["metadata"]["product"]["name"] == "k8sforensics"


def test_ocsf_demo_case_is_valid_and_keeps_evidence_ids(sample_case: kf.Case) -> None:
    events = export.ocsf_events(sample_case)
    _assert_valid(events)
    timeline = kf.kill_chain(sample_case)
    assert {e["class_uid"] for e in events} == {2004, 6003, 4001, 1007}
    found = [e for e in events if e["class_uid"] == 2004]
    assert [e["finding_info"]["uid"] for e in found] == list(timeline.loc[timeline["kind"] == "finding", "finding_id"])
    assert all(e["metadata"]["uid"] == e["finding_info"]["uid"] for e in found)
    ids = [e["metadata"]["uid"] for e in events if e["class_uid"] != 2004]
    assert len(ids) == len(set(ids)) == timeline["event_id"].dropna().nunique()
    # a finding names its evidence, and the kill-chain phase is OCSF's own (Lockheed Martin) enum
    exec_finding = next(e for e in found if e["finding_info"]["related_events"])
    assert {r["uid"] for r in exec_finding["finding_info"]["related_events"]} <= set(ids) | {
        i for x in sample_case.findings()["event_ids"] for i in x
    }
    assert all(e["finding_info"]["kill_chain"][0]["phase_id"] in range(1, 8) for e in found)
    assert all(e["time"] <= e["end_time"] for e in found)


def test_validation_fails_on_a_missing_required_attribute(sample_case: kf.Case) -> None:
    events = export.ocsf_events(sample_case)
    by_class = {e["class_uid"]: e for e in events}
    for uid, path in (
        (2004, ["finding_info", "uid"]),
        (6003, ["api", "operation"]),
        (4001, ["time"]),
        (1007, ["process"]),
    ):
        broken = copy.deepcopy(by_class[uid])
        target = broken
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        assert any(f"'{path[-1]}' is a required property" in m for m in export.ocsf_errors(broken)), uid
    wrong = copy.deepcopy(by_class[4001]) | {"severity_id": 42}
    assert export.ocsf_errors(wrong)
    assert export.ocsf_errors(copy.deepcopy(by_class[6003]) | {"pod": "x"})  # no attribute outside the class


def test_ocsf_jsonl_refuses_to_write_an_invalid_event(
    sample_case: kf.Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = export._ocsf_flow
    monkeypatch.setattr(export, "_ocsf_flow", lambda row: {k: v for k, v in real(row).items() if k != "type_uid"})
    with pytest.raises(ValueError, match="type_uid"):
        export.ocsf_jsonl(sample_case, tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists() and not list(tmp_path.iterdir())  # no half-written file


@pytest.mark.parametrize(
    "fixture, kinds",
    [
        ("tetragon__events.jsonl", {"network": (4001, 99), "exit": (1007, 2), "file": (1001, 99)}),
        ("tracee__two_generations.jsonl", {"file": (1001, 99), "alert": (1007, 99)}),
        ("falco__alerts.jsonl", {"alert": (1007, 99)}),
    ],
)
def test_runtime_events_map_to_their_class(fixture: str, kinds: dict[str, tuple[int, int]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = kf.read_runtime(FIXTURES / "runtime" / fixture).to_dict("records")
    for row in rows:
        event = export._ocsf_event("runtime", row)
        assert (event["class_uid"], event["activity_id"]) == kinds[row["event_type"]]
        _assert_valid([event])


@pytest.fixture(scope="module")
def scenario_case(tmp_path_factory: pytest.TempPathFactory) -> kf.Case:
    """A breach of the family unlike the demo: anonymous API access on EKS, Falco alerts."""
    from k8sforensics.samples.scenario import write_scenario

    root = tmp_path_factory.mktemp("scenario")
    write_scenario(root / "ev", shape="anonymous-api", platform="eks", seed=5, scale=0.1)
    case = kf.Case.create(root / "case")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kf.ingest(case, [str(p) for p in (root / "ev").iterdir() if p.name != "truth.json"], progress=False)
        kf.detect(case)
    return case


def test_ocsf_every_event_of_a_scenario_is_valid(scenario_case: kf.Case, tmp_path: Path) -> None:
    path = export.ocsf_jsonl(scenario_case, tmp_path / "o.jsonl", all_events=True)
    events = _lines(path)
    _assert_valid(events)
    total = sum(len(scenario_case.table(t, columns=["event_id"])) for t in ("audit", "runtime", "flows"))
    assert len(events) == len(scenario_case.findings()) + total
    assert {e["class_uid"] for e in events} >= {2004, 6003, 4001}


# --------------------------------------------------------------------------- CSV and the entry point


def test_csv_reads_back_with_lists_joined_and_formulas_neutralised(sample_case: kf.Case, tmp_path: Path) -> None:
    f = _hostile_findings(sample_case)
    paths = export.export_case(sample_case, tmp_path, format="csv", findings=f)
    assert [p.name for p in paths] == ["findings.csv", "timeline.csv"]
    with paths[0].open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    for row, (_, finding) in zip(rows, f.iterrows()):
        assert row["summary"] == HOSTILE  # commas, quotes, newlines survive the round trip
        assert row["entity"] == "'-shop/<img src=x onerror=alert(1)>"  # a leading '-' is a formula
        assert row["event_ids"].split(";") == list(finding["event_ids"])
        assert pd.Timestamp(row["time"]) == finding["time"]
    with paths[1].open(newline="", encoding="utf-8") as fh:
        timeline = list(csv.DictReader(fh))
    assert len(timeline) == len(kf.kill_chain(sample_case, findings=f))
    assert export._cell("=1+1") == "'=1+1" and export._cell("@SUM(A1)") == "'@SUM(A1)" and export._cell(-3) == -3


def test_export_case_formats(sample_case: kf.Case, tmp_path: Path) -> None:
    assert [p.name for p in export.export_case(sample_case, tmp_path / "ts", format="timesketch")] == ["timeline.jsonl"]
    assert [p.name for p in export.export_case(sample_case, tmp_path / "o", format="ocsf")] == ["ocsf.jsonl"]
    with pytest.raises(ValueError, match="unknown export format"):
        export.export_case(sample_case, tmp_path, format="stix")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="all events"):
        export.export_case(sample_case, tmp_path, format="csv", all_events=True)


def test_a_case_without_findings_exports_empty_files(tmp_path: Path) -> None:
    case = kf.Case.create(tmp_path / "case")
    for fmt in ("timesketch", "ocsf", "csv"):
        for p in export.export_case(case, tmp_path / fmt, format=fmt):
            assert len(p.read_text().splitlines()) <= 1  # nothing, or the CSV header alone


def test_a_case_that_kept_secrets_is_refused_unless_asked(tmp_path: Path) -> None:
    case = kf.Case.create(tmp_path / "case")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kf.ingest(case, FIXTURES / "runtime" / "falco__alerts.jsonl", keep_secrets=True, progress=False)
    case = kf.Case.open(case.path)
    for fmt in ("timesketch", "ocsf", "csv"):
        with pytest.raises(kf.CaseError, match="--keep-secrets"):
            export.export_case(case, tmp_path / fmt, format=fmt)
        assert export.export_case(case, tmp_path / fmt, format=fmt, include_secrets=True)
    with pytest.raises(kf.CaseError):
        export.ocsf_events(case)
