"""Evidence as it really arrives: variants of a family mixed in one file (SIEM exports),
text lines wrapped in ``{"message": …}`` (SIEM, Firehose, CloudWatch re-exports), and the
options a format reads from the file context (``vpc_fields``)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import k8sforensics as kf
from k8sforensics.cli import _parser
from k8sforensics.errors import BadRecordError
from k8sforensics.schema import AUDIT, FLOWS, TABLES
from k8sforensics.sources import (
    aws_vpc_flow,
    format_options,
    hash_file,
    open_reader,
    read_family,
)
from k8sforensics.sources._driver import SNIFF_RECORDS, Reader

from ..conftest import FIXTURES

QUIRKS = FIXTURES / "quirks"
MIXED_AUDIT = QUIRKS / "gke_audit__mixed_k8s_audit_aks_audit_siem_export.jsonl"
WRAPPED_VPC = QUIRKS / "aws_vpc_flow__message_wrapped_v2_lines.jsonl"
V2_LINES = FIXTURES / "flows" / "aws_vpc_flow__default_no_header.log"
_PROVENANCE = ("evidence_id", "evidence_line", "event_id")


def _read(path: Path, **kw: Any) -> tuple[pa.Table, Reader]:
    reader = open_reader(path, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = pa.Table.from_batches(list(reader.batches()), schema=TABLES[reader.result.family].arrow_schema)
    return t, reader


def _content(t: pa.Table) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in _PROVENANCE} for row in t.to_pylist()]


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip()]


def _in_order(t: pa.Table) -> pa.Table:
    return t.sort_by([("evidence_line", "ascending"), ("event_id", "ascending")])


def _accounted(reader: Reader) -> bool:
    r = reader.result
    return r.records == r.rows + r.merged + sum(r.skipped.values()) + r.quarantined


# --------------------------------------------------------------------------- mixed variants


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "per-record"])
def test_siem_export_of_raw_gke_and_aks_audit_records_gives_every_record(tmp_path: Path, fast: bool) -> None:
    t, reader = _read(MIXED_AUDIT, fast=fast)
    assert t.column("source").to_pylist() == ["k8s-audit", "gke-audit", "aks-audit", "k8s-audit", "aks-audit"]
    assert t.column("evidence_line").to_pylist() == [1, 2, 3, 4, 5]
    assert reader.result.rows_by_format == {"k8s-audit": 2, "gke-audit": 1, "aks-audit": 2}
    assert reader.result.format == "gke-audit" and not reader.quarantine and _accounted(reader)
    # each record gives the row it gives alone
    for n, line in enumerate(_lines(MIXED_AUDIT), 1):
        alone, _ = _read(_write(tmp_path / f"alone-{n}.jsonl", [line]))
        assert _content(t.filter(pa.compute.equal(t.column("evidence_line"), n))) == _content(alone)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(ln + "\n" for ln in lines))
    return path


def test_a_record_no_format_fits_keeps_the_reason_of_the_files_format(tmp_path: Path) -> None:
    lines = _lines(MIXED_AUDIT) + [json.dumps({"operation": {"producer": "k8s.io"}, "insertId": "x"})]
    t, reader = _read(_write(tmp_path / "mixed.jsonl", lines))
    assert t.num_rows == 5 and reader.result.quarantined == 1 and _accounted(reader)
    (q,) = reader.quarantine
    assert q["evidence_line"] == 6 and q["source"] == "gke-audit"
    assert q["reason"] == "not a valid gke-audit record (LogEntry without a protoPayload)"


def test_on_bad_lines_error_does_not_stop_at_a_record_another_format_reads() -> None:
    t, reader = _read(MIXED_AUDIT, on_bad_lines="error")
    assert t.num_rows == 5


def test_on_bad_lines_error_names_a_record_no_format_reads(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mixed.jsonl", [*_lines(MIXED_AUDIT)[:2], json.dumps({"protoPayload": "x", "resource": {}})]
    )
    with pytest.raises(BadRecordError, match=":3"):
        _read(path, on_bad_lines="error")


def _many_then_foreign(tmp_path: Path, own: list[str], foreign: list[str]) -> Path:
    """More records of the file's format than the sniffer samples, then foreign variants: the
    DuckDB fast path is taken and must hand the foreign records to the per-record path."""
    n = SNIFF_RECORDS + 10
    return _write(tmp_path / "mixed.jsonl", [own[i % len(own)] for i in range(n)] + foreign + own[:1])


def test_fast_path_hands_gke_and_aks_records_in_a_raw_audit_file_to_their_formats(tmp_path: Path) -> None:
    raw = list(_lines(FIXTURES / "audit" / "k8s_audit__log_backend_stages.jsonl"))
    mixed = _lines(MIXED_AUDIT)
    path = _many_then_foreign(tmp_path, raw, [mixed[1], mixed[2], mixed[4]])
    fast, fr = _read(path, fast=True)
    slow, sr = _read(path, fast=False)
    assert fr.used_fast_path and fr.redone >= 3 and fr.result.format == "k8s-audit"
    assert _in_order(fast).equals(_in_order(slow))  # the fast path delivers the redone records last
    assert fr.result.rows_by_format == sr.result.rows_by_format
    assert fr.result.rows_by_format["gke-audit"] == 1 and fr.result.rows_by_format["aks-audit"] == 2
    assert _accounted(fr) and _accounted(sr) and fr.quarantine == sr.quarantine


def test_fast_path_hands_calico_and_ocsf_records_in_a_hubble_file_to_their_formats(tmp_path: Path) -> None:
    hubble = _lines(FIXTURES / "flows" / "hubble__flows.jsonl")
    foreign = [
        _lines(FIXTURES / "flows" / "calico__flows.jsonl")[0],
        _lines(FIXTURES / "flows" / "ocsf_network__flows.jsonl")[0],
        json.dumps({"message": _lines(V2_LINES)[0], "@timestamp": "2024-05-01T10:00:00Z"}),
    ]
    path = _many_then_foreign(tmp_path, [h for h in hubble if '"flow"' in h], foreign)
    fast, fr = _read(path, fast=True)
    slow, sr = _read(path, fast=False)
    assert fr.used_fast_path and fr.result.format == "hubble"
    assert _in_order(fast).equals(_in_order(slow))  # the fast path delivers the redone records last
    assert set(fast.column("source").to_pylist()) == {"hubble", "calico", "ocsf-network", "aws-vpc-flow"}
    assert fr.result.rows_by_format == sr.result.rows_by_format and _accounted(fr)


# --------------------------------------------------------------------------- {"message": "<line>"}


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "per-record"])
def test_message_wrapped_vpc_lines_give_the_rows_of_the_lines(tmp_path: Path, fast: bool) -> None:
    wrapped, reader = _read(WRAPPED_VPC, fast=fast)
    lines = [json.loads(ln)["message"] for ln in _lines(WRAPPED_VPC)]
    text, _ = _read(_write(tmp_path / "flows.log", lines), fast=fast)
    assert reader.result.format == "aws-vpc-flow" and reader.result.family == "flows"
    assert _content(wrapped) == _content(text)
    assert wrapped.column("evidence_line").to_pylist() == [1, 2]  # the JSON record's line
    assert reader.result.skipped == {"VPC NODATA record": 1} and _accounted(reader)


def test_cloudwatch_text_messages_are_read_by_the_line_format(tmp_path: Path) -> None:
    t, reader = _read(QUIRKS / "aws_vpc_flow__cloudwatch_subscription_text_messages.json")
    text, _ = _read(_write(tmp_path / "flows.log", _lines(V2_LINES)))
    assert _content(t) == _content(text)
    assert reader.result.envelopes == {"cloudwatch-subscription": 2}


def test_a_text_message_no_line_format_reads_stays_bad_input(tmp_path: Path) -> None:
    """An EKS audit CloudWatch stream whose message is not JSON: quarantined as before."""
    ev = json.loads(_lines(MIXED_AUDIT)[0])
    doc = {
        "messageType": "DATA_MESSAGE",
        "logGroup": "/aws/eks/prod/cluster",
        "logEvents": [
            {"id": "1", "timestamp": 1, "message": json.dumps(ev)},
            {"id": "2", "timestamp": 2, "message": "I0508 10:00:00 kube-apiserver started"},
        ],
    }
    path = tmp_path / "eks.json"
    path.write_text(json.dumps(doc))
    t, reader = _read(path)
    assert t.num_rows == 1 and reader.result.quarantined == 1
    assert reader.quarantine[0]["reason"].startswith("CloudWatch message is not JSON")


def test_message_wrappers_mixed_with_raw_json_flows(tmp_path: Path) -> None:
    t, reader = _read(QUIRKS / "hubble__mixed_calico_message_wrapped_aws_vpc_flow_lines.jsonl")
    assert t.column("source").to_pylist() == ["hubble", "aws-vpc-flow", "calico", "aws-vpc-flow"]
    text, _ = _read(_write(tmp_path / "flows.log", _lines(V2_LINES)))
    assert _content(t.filter(pa.compute.equal(t.column("source"), "aws-vpc-flow"))) == _content(text)


def test_a_message_that_is_no_known_line_is_not_claimed(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "app.jsonl", [json.dumps({"message": "GET /healthz 200", "@timestamp": "2024-05-01T10:00:00Z"})]
    )
    reader = open_reader(path, explicit=False).prepare()
    assert reader.format is None and reader.result.unrecognised


# --------------------------------------------------------------------------- options


def test_format_options_seed_a_copy_of_the_file_context_per_format(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def rows(record: Any, context: dict[str, Any]) -> Any:
        seen.append(dict(context))
        context["added"] = context.get("added", 0) + 1  # a format may add to its context
        yield {"time": "2024-05-01T10:00:00Z", "src_ip": "10.0.0.1"}

    fake = SimpleNamespace(
        NAME="fake",
        FAMILY="flows",
        sniff=lambda r: isinstance(r, dict) and "x" in r,
        sniff_lines=None,
        rows=rows,
        fast=None,
    )
    other = SimpleNamespace(
        NAME="other",
        FAMILY="flows",
        sniff=lambda r: isinstance(r, dict) and "y" in r,
        sniff_lines=None,
        rows=rows,
        fast=None,
    )
    path = _write(tmp_path / "f.jsonl", ['{"x": 1}', '{"y": 1}', '{"x": 2}', '{"y": 2}'])
    options = {"vpc_fields": ["version", "srcaddr"]}
    reader = Reader(path, hash_file(path), [fake, other], table=lambda f: FLOWS, format_options=options)
    assert sum(b.num_rows for b in reader.batches()) == 4
    assert options == {"vpc_fields": ["version", "srcaddr"]}  # the caller's mapping is not changed
    assert [s.get("added", 0) for s in seen] == [0, 0, 1, 1]  # one context per format, kept over the file
    assert all(s["vpc_fields"] == ["version", "srcaddr"] for s in seen)


def test_fast_query_gets_the_file_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[Any] = []
    real = aws_vpc_flow.fast.query

    def spy(source: str, head: Sequence[Any], context: Mapping[str, Any]) -> str:
        got.append(context)
        return real(source, head, context)

    monkeypatch.setattr(aws_vpc_flow, "fast", dataclasses.replace(aws_vpc_flow.fast, query=spy))
    names = aws_vpc_flow.DEFAULT_V2
    t, reader = _read(_write(tmp_path / "flows.log", _lines(V2_LINES)), vpc_fields=names)
    assert reader.used_fast_path and t.num_rows == 2
    assert got and got[0]["vpc_fields"] == names


def test_vpc_fields_are_checked_and_split() -> None:
    assert format_options(vpc_fields="version  account-id\tinterface-id") == {
        "vpc_fields": ["version", "account-id", "interface-id"]
    }
    assert format_options() == {}
    assert format_options(vpc_fields=["version", "account_id"]) == {"vpc_fields": ["version", "account-id"]}
    for bad in (
        "",
        " ",
        [],
        ["version", ""],
        ["version account-id"],
        [3],
        ["version", "no-such-field"],
        ["srcaddr", "srcaddr"],
    ):
        with pytest.raises(ValueError, match="vpc_fields"):
            format_options(vpc_fields=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="vpc_fields"):
        read_family(V2_LINES, "flows", vpc_fields=[])


def test_cli_ingest_takes_vpc_fields() -> None:
    args = _parser().parse_args(["ingest", "x.log", "--case", "c", "--vpc-fields", "version account-id interface-id"])
    assert args.vpc_fields == ["version", "account-id", "interface-id"]
    with pytest.raises(SystemExit):
        _parser().parse_args(["ingest", "x.log", "--case", "c", "--vpc-fields", "  "])


def test_ingest_records_the_option_and_the_rows_per_format(tmp_path: Path) -> None:
    case = kf.Case.create(tmp_path / "case")
    names = list(aws_vpc_flow.DEFAULT_V2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = kf.ingest(case, [MIXED_AUDIT, V2_LINES], vpc_fields=names, progress=False)
    manifest = json.loads((case.path / "manifest.json").read_text())
    (ing,) = manifest["ingests"]
    assert ing["args"]["vpc_fields"] == names
    inputs = {Path(i["path"]).name: i for i in ing["inputs"]}
    assert inputs[MIXED_AUDIT.name]["format"] == "gke-audit"
    assert inputs[MIXED_AUDIT.name]["rows_by_format"] == {"k8s-audit": 2, "gke-audit": 1, "aks-audit": 2}
    assert inputs[V2_LINES.name]["rows_by_format"] == {"aws-vpc-flow": 2}
    assert report.rows == 7 and len(case.audit()) == 5


# --------------------------------------------------------------------------- property


def _pool(family: str) -> list[str]:
    """Single records of the family's formats (each gives rows alone), as JSON lines."""
    files = {
        "audit": [
            MIXED_AUDIT,
            FIXTURES / "audit" / "k8s_audit__no_kind_no_apiversion.jsonl",
            FIXTURES / "audit" / "gke_audit__logentries.jsonl",
        ],
        "flows": [
            QUIRKS / "hubble__mixed_calico_ocsf_network_records.jsonl",
            WRAPPED_VPC,
            FIXTURES / "flows" / "gcp_vpc_flow__flows.jsonl",
            FIXTURES / "flows" / "azure_flow__siem_nested_properties.jsonl",
            FIXTURES / "flows" / "aws_vpc_flow__json_three_spellings.jsonl",
        ],
    }
    return [ln for p in files[family] if p.exists() for ln in _lines(p)[:4] if _alone_is_read(ln, family)]


def _alone_is_read(line: str, family: str) -> bool:
    """Whether a file of this one record is recognised (a record of no format's own shape is
    read in a mixed file by the file's format, never alone)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = _write(Path(d) / "one.jsonl", [line])
        return open_reader(path, family=family, explicit=False).prepare().format is not None


_POOLS = {family: _pool(family) for family in ("audit", "flows")}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), family=st.sampled_from(sorted(_POOLS)))
def test_shuffled_mixtures_keep_the_accounting_and_each_records_rows(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, family: str
) -> None:
    pool = _POOLS[family]
    picks = data.draw(st.lists(st.sampled_from(range(len(pool))), min_size=1, max_size=12))
    folder = tmp_path_factory.mktemp("mix")
    mixed, reader = _read(
        _write(folder / "mixed.jsonl", [pool[i] for i in picks]), family=family, fast=data.draw(st.booleans())
    )
    assert _accounted(reader)
    assert sum(reader.result.rows_by_format.values()) == reader.result.rows == mixed.num_rows
    for n, i in enumerate(picks, 1):
        alone, single = _read(_write(folder / f"alone-{n}.jsonl", [pool[i]]), family=family)
        got = mixed.filter(pa.compute.equal(mixed.column("evidence_line"), n))
        assert _content(got) == _content(alone), (n, pool[i][:120])
        assert len([q for q in reader.quarantine if q["evidence_line"] == n]) == single.result.quarantined


def test_audit_table_schema_is_unchanged() -> None:
    assert "rows_by_format" not in AUDIT.names  # the per-format count is the manifest's, not a column
