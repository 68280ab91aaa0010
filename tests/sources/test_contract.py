"""The contract every format module keeps: exact schema, UTC non-null time, provenance
filled, one quarantine entry per bad record, a quarantine that names the field of a
wrong-typed value or an out-of-range time, and no false sniff on other formats' files."""

from __future__ import annotations

import copy
import json
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from k8sforensics.schema import TABLES
from k8sforensics.sources import FORMATS, FormatModule, open_reader
from k8sforensics.sources._files import decompressed_chunks
from k8sforensics.sources._json import iter_documents, iter_records
from k8sforensics.sources.protocol import problems

from ..conftest import FIXTURES, REAL_SAMPLES

# A fixture's name says its format and its quirk: ``<format module>__<quirk>.<ext>``. A quirk
# starting ``bad_`` holds bad input (some records are quarantined); one starting ``mixed_``
# holds records of the other formats of the family its name lists, each read by its own.
BY_MODULE = {f.__name__.rsplit(".", 1)[-1]: f for f in FORMATS}


def fixture_format(path: Path) -> FormatModule:
    """The format a fixture's name says it is (the file's format: a mixed file's first)."""
    return BY_MODULE[path.name.split("__", 1)[0]]


def fixture_quirk(path: Path) -> str:
    return path.name.split("__", 1)[1].split(".", 1)[0]


def fixture_sources(path: Path) -> set[str]:
    """The formats whose rows the fixture gives: its own, and those a ``mixed_`` quirk names."""
    quirk = fixture_quirk(path)
    others = {f.NAME for module, f in BY_MODULE.items() if module in quirk} if quirk.startswith("mixed_") else set()
    return {fixture_format(path).NAME} | others


# real samples (../shared, read in place, not renamed): which folder holds which format
REAL_FORMAT = {
    "k8s-audit-v1-jsonl": "k8s-audit",
    "cloud-audit-eks": "k8s-audit",
    "cloud-audit-gke": "gke-audit",
    "cloud-audit-aks": "aks-audit",
    "falco-alerts-json": "falco",
    "tetragon-json": "tetragon",
    "tracee-json": "tracee",
    "hubble-flows-json": "hubble",
    "vpc-flow-aws": "aws-vpc-flow",
    "vpc-flow-azure": "azure-traffic-analytics",
    "calico-flow-logs": "calico",
    "k8s-object-lists": "kubectl",
    "cloudtrail-eks": "aws-cloudtrail",
    "gcp-workload-identity": "gcp-cloud-audit",
    "guardduty-eks": "guardduty",
    "azure-defender-containers": "defender-containers",
}
# the decoded inner event of an AKS record: a bare audit.k8s.io Event
REAL_FILE_FORMAT = {
    "sysdig-aks-audit-log__sample_KubeAuditLog_event.json": "k8s-audit",
    "panther__rule_tests_OCSF_NetworkActivity.jsonl": "ocsf-network",
}


def fixture_files() -> list[Path]:
    # quirks/: one tiny file per format and quirk of bad input (kept apart: other tests ingest
    # the family folders whole and count what they hold)
    return sorted(
        p
        for family in ("audit", "runtime", "flows", "objects", "alerts", "cloud", "quirks")
        for p in (FIXTURES / family).iterdir()
        if p.is_file()
    )


def test_every_fixture_is_named_for_its_format() -> None:
    unnamed = [p.name for p in fixture_files() if "__" not in p.name or p.name.split("__", 1)[0] not in BY_MODULE]
    assert not unnamed, f"fixtures not named <format module>__<quirk>.<ext>: {unnamed}"


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.NAME)
def test_every_format_has_a_fixture(fmt: FormatModule) -> None:
    assert any(fixture_format(p) is fmt for p in fixture_files())


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.NAME)
def test_format_module_shape(fmt: FormatModule) -> None:
    assert problems(fmt, TABLES) == []
    assert fmt.__doc__, "a format module says what it reads"


def test_the_registry_check_refuses_a_module_missing_a_member() -> None:
    members = {
        "NAME": "x",
        "FAMILY": "flows",
        "sniff": None,
        "sniff_lines": None,
        "rows": lambda r, c: [],
        "fast": None,
    }
    assert problems(SimpleNamespace(**members), TABLES) == ["has neither sniff (JSON) nor sniff_lines (text)"]
    del members["fast"]
    assert problems(SimpleNamespace(**members | {"sniff": bool}), TABLES) == [
        "lacks fast (a member it does not have is None)"
    ]
    assert "FAMILY 'logs' is no table's" in problems(
        SimpleNamespace(**members | {"sniff": bool, "fast": None, "FAMILY": "logs"}), TABLES
    )


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_contract_on_fixture(path: Path) -> None:
    reader = open_reader(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(reader.batches())
    assert reader.result.format == fixture_format(path).NAME
    if fixture_quirk(path).startswith("bad_"):
        assert reader.result.quarantined, "a bad_ fixture holds bad input"
    else:
        assert not reader.quarantine, f"only a bad_ fixture quarantines: {reader.quarantine}"
    table = TABLES[reader.result.family]
    assert batches, "every fixture yields rows"
    t = pa.Table.from_batches(batches)
    assert t.schema.equals(table.arrow_schema, check_metadata=False)
    assert t.schema.field("time").type == pa.timestamp("ns", tz="UTC")
    required = (
        ("time", "event_id", "evidence_id", "evidence_line", "source")
        if table.time_required
        else ("event_id", "evidence_id", "evidence_line", "source")
    )
    for col in required:
        assert t.column(col).null_count == 0, col
    assert set(t.column("evidence_id").to_pylist()) == {reader.result.evidence.sha256}
    assert set(t.column("source").to_pylist()) == fixture_sources(path)
    assert len(set(t.column("event_id").to_pylist())) == t.num_rows, "event ids are unique"
    assert min(t.column("evidence_line").to_pylist()) >= 1
    r = reader.result
    assert r.rows == t.num_rows
    assert r.records == r.rows + r.merged + sum(r.skipped.values()) + r.quarantined
    assert len(reader.quarantine) == r.quarantined
    assert r.rows_by_format == Counter(t.column("source").to_pylist())


def test_one_quarantine_entry_per_bad_record(audit_fixtures: Path) -> None:
    reader = open_reader(audit_fixtures / "k8s_audit__bad_lines.jsonl")
    with pytest.warns(UserWarning, match="4 bad record"):
        rows = pa.Table.from_batches(list(reader.batches()))
    # lines: good, truncated, good, not-json, good, (blank), no-time, {"kind":0}, good
    assert sorted(q["evidence_line"] for q in reader.quarantine) == [2, 4, 6, 7]
    assert sorted(rows.column("evidence_line").to_pylist()) == [1, 3, 5, 8]
    reasons = {q["evidence_line"]: q["reason"] for q in reader.quarantine}
    assert "not valid JSON" in reasons[2] and "not valid JSON" in reasons[4]
    assert "timestamp" in reasons[6]
    assert "not an audit event" in reasons[7]
    assert all(q["excerpt"] for q in reader.quarantine)


def _sample_records(path: Path) -> list:
    return [r.value for r in iter_records(iter_documents(decompressed_chunks(path))) if r.value is not None][:200]


def _other_files() -> list[tuple[str, Path]]:
    out = [(fixture_format(p).NAME, p) for p in fixture_files()]
    if REAL_SAMPLES.is_dir():
        for folder in sorted(REAL_SAMPLES.iterdir()):
            if not folder.is_dir():
                continue
            for p in sorted(folder.iterdir()):
                if p.suffix in (".md", ".tsv"):
                    continue
                out.append((REAL_FILE_FORMAT.get(p.name) or REAL_FORMAT.get(folder.name, "other:" + folder.name), p))
    return out


# files that also hold records of another family's format, each read by its own: GKE exports
# hold cluster-management and other services' Cloud Audit Logs entries beside the Kubernetes API's
ALSO_HOLDS = {
    "gke_audit__logentries.jsonl": {"gcp-cloud-audit"},
    "panther__rule_tests_GCP_AuditLog.jsonl": {"gcp-cloud-audit"},
}


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.NAME)
def test_no_false_sniff(fmt) -> None:
    """A format never claims a record of a file that belongs to another format."""
    claimed = []
    for owner, path in _other_files():
        if (
            owner == fmt.NAME
            or fmt.NAME in ALSO_HOLDS.get(path.name, ())
            or (path.is_relative_to(FIXTURES) and fmt.NAME in fixture_sources(path))
        ):  # a mixed file holds records of several
            continue
        try:
            records = _sample_records(path)
        except Exception:
            continue
        if fmt.sniff is not None and any(fmt.sniff(r) for r in records):
            claimed.append(f"{path.name} ({owner})")
        lines = [ln for ln in path.read_bytes()[:65536].decode("utf-8", "replace").splitlines() if ln.strip()][:20]
        if (
            fmt.sniff_lines is not None
            and lines
            and lines[0].lstrip()[:1] not in ("{", "[")
            and fmt.sniff_lines(lines, {})
        ):
            claimed.append(f"{path.name} ({owner}, as text)")
    assert not claimed, f"{fmt.NAME} falsely claims: {claimed}"


# --------------------------------------------------------------------------- bad values, per format
#
# For every format: a good record, the same record with one field of the wrong type, and with
# an out-of-range time. The bad ones are quarantined with the field named; the good ones are rows.


def _first(name: str) -> dict[str, Any]:
    path = next(p for p in fixture_files() if p.name == name)
    return json.loads(path.read_text().splitlines()[0])


def _with(record: dict[str, Any], path: str | tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    *parents, last = path.split(".") if isinstance(path, str) else path
    node = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
    return out


def _json_case(
    fixture: str, wrong: list[tuple[Any, Any]], field: str, late: list[tuple[Any, Any]]
) -> tuple[str, list[str], str]:
    good = _first(fixture)
    bad_type, bad_time = good, good
    for path, value in wrong:
        bad_type = _with(bad_type, path, value)
    for path, value in late:
        bad_time = _with(bad_time, path, value)
    lines = [json.dumps(r) for r in (good, bad_type, good, bad_time)]
    return ".jsonl", lines, field


def _text_case(
    fixture: str, header_lines: int, replace_type: tuple[str, str], field: str, replace_time: tuple[str, str]
) -> tuple[str, list[str], str]:
    path = next(p for p in fixture_files() if p.name == fixture)
    lines = path.read_text().splitlines()
    head, good = lines[:header_lines], lines[header_lines]
    assert replace_type[0] in good and replace_time[0] in good
    return path.suffix, [*head, good, good.replace(*replace_type), good, good.replace(*replace_time)], field


NSG = json.loads((FIXTURES / "flows" / "azure_flow__nsg_vnet.json").read_text())["records"][0]
NSG_TUPLE = NSG["properties"]["flows"][0]["flows"][0]["flowTuples"][0]
LATE = "9999-12-31T00:00:00Z"

BAD_VALUES: dict[str, Callable[[], tuple[str, list[str], str]]] = {
    "k8s-audit": lambda: _json_case(
        "k8s_audit__bad_lines.jsonl",
        [("responseStatus", {"code": "forbidden"})],
        "response_code",
        [("requestReceivedTimestamp", LATE), ("stageTimestamp", LATE)],
    ),
    "gke-audit": lambda: _json_case(
        "gke_audit__logentries.jsonl",
        [("protoPayload.response", {"kind": "Status", "code": [403]})],
        "response_code",
        [("timestamp", "0001-01-01T00:00:00Z")],
    ),
    "aks-audit": lambda: _json_case(
        "aks_audit__blob_lines.json",
        [("properties.log.responseStatus", {"code": 403.5})],
        "response_code",
        [("properties.log.requestReceivedTimestamp", LATE), ("properties.log.stageTimestamp", LATE)],
    ),
    "falco": lambda: _json_case(
        "falco__alerts.jsonl", [(("output_fields", "proc.pid"), "abc")], "pid", [("time", "9999-12-31T23:59:59Z")]
    ),
    "tetragon": lambda: _json_case(
        "tetragon__events.jsonl", [("process_kprobe.process.pid", [4242])], "pid", [("time", "0001-01-01T00:00:00Z")]
    ),
    "tracee": lambda: _json_case("tracee__two_generations.jsonl", [("hostProcessId", "x")], "pid", [("timestamp", -1)]),
    "hubble": lambda: _json_case(
        "hubble__flows.jsonl",
        [("flow.l4.TCP.destination_port", "http")],
        "dst_port",
        [("flow.time", LATE), ("time", LATE)],
    ),
    "gcp-vpc-flow": lambda: _json_case(
        "gcp_vpc_flow__flows.jsonl",
        [("jsonPayload.connection.dest_port", 1.5)],
        "dst_port",
        [("jsonPayload.start_time", "0001-01-01T00:00:00Z")],
    ),
    "azure-flow": lambda: (  # one record per line, two flow tuples each: the first tuple is changed
        ".json",
        [
            json.dumps(r)
            for r in (
                NSG,
                _with(NSG, "properties.flows.0.flows.0.flowTuples.0", NSG_TUPLE.replace(",22,", ",ssh,")),
                NSG,
                _with(
                    NSG, "properties.flows.0.flows.0.flowTuples.0", "99999999999" + NSG_TUPLE[NSG_TUPLE.index(",") :]
                ),
            )
        ],
        "dst_port",
    ),
    "calico": lambda: _json_case(
        "calico__flows.jsonl", [("dest_port", "x")], "dst_port", [("start_time", 253402300800)]
    ),
    "ocsf-network": lambda: _json_case(
        "ocsf_network__flows.jsonl",
        [("dst_endpoint.port", True)],
        "dst_port",
        [("time", 253402300800000), ("start_time", 253402300800000)],
    ),
    "aws-vpc-flow": lambda: _text_case(
        "aws_vpc_flow__bad_count_custom_header.log",
        1,
        (" 43210 80 ", " 43210 http "),
        "dst_port",
        (" 1714557600 ", " 253402300800 "),
    ),
    "azure-traffic-analytics": lambda: _text_case(
        "azure_traffic_analytics__csv_export.csv",
        1,
        (",443.0,", ",https,"),
        "dst_port",
        (",2024-05-01 10:00:07.000,", ",9999-12-31 10:00:07.000,"),
    ),
    "kubectl": lambda: _json_case(
        "kubectl__pods_one_per_line.jsonl",
        [("metadata.labels", ["app=web"])],
        "labels",
        [("metadata.creationTimestamp", "0001-01-01T00:00:00Z")],
    ),
    "aws-cloudtrail": lambda: _json_case(
        "aws_cloudtrail__jsonl.jsonl", [("readOnly", "maybe")], "read_only", [("eventTime", LATE)]
    ),
    "gcp-cloud-audit": lambda: _json_case(
        "gcp_cloud_audit__generate_access_token.jsonl",
        [("protoPayload.status", {"code": "denied"})],
        "protoPayload.status.code",
        [("timestamp", LATE)],
    ),
    "guardduty": lambda: _json_case(
        "guardduty__runtime.jsonl", [("service.count", "many")], "count", [("service.eventFirstSeen", LATE)]
    ),
    "defender-containers": lambda: _json_case(
        "defender_containers__bad_alerts.jsonl",
        [("EndTimeUtc", 1700000000000)],  # a number: no vendor writes one, its unit would be a guess
        "time_end",
        [("StartTimeUtc", LATE)],
    ),
    "gcp-scc": lambda: _json_case(
        "gcp_scc__bad_findings.jsonl",
        [("finding.kubernetes", {"pods": [{"ns": "shop", "name": "web", "labels": "app=web"}]})],
        "labels",
        [("finding.eventTime", LATE)],
    ),
}


def test_every_format_has_bad_values() -> None:
    assert set(BAD_VALUES) == {f.NAME for f in FORMATS}


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "per-record"])
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.NAME)
def test_bad_values_are_quarantined_with_the_field_named(tmp_path: Path, fmt, fast: bool) -> None:
    suffix, lines, field = BAD_VALUES[fmt.NAME]()
    p = tmp_path / f"bad-values{suffix}"
    p.write_text("\n".join(lines) + "\n")
    reader = open_reader(p, fast=fast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = pa.Table.from_batches(list(reader.batches()), schema=TABLES[fmt.FAMILY].arrow_schema)
    assert reader.result.format == fmt.NAME
    r = reader.result
    assert t.num_rows == r.rows and r.records == r.rows + r.merged + sum(r.skipped.values()) + r.quarantined
    n = len(lines)  # the wrong type is on the 3rd-from-last line, the late time on the last
    reasons = {q["evidence_line"]: q["reason"] for q in reader.quarantine}
    assert set(reasons) == {n - 2, n}, reasons
    assert reasons[n - 2].startswith(f"field {field}: value "), reasons[n - 2]
    assert (
        reasons[n].startswith("field time: timestamp ")
        and "outside the accepted range 1970-01-01..2100-01-01" in reasons[n]
    )
    assert {n - 3, n - 1} <= set(t.column("evidence_line").to_pylist())  # the good records are rows
    times = [x for x in t.column("time").to_pylist() if x is not None]
    assert all(1970 <= x.year < 2100 for x in times)


# --------------------------------------------------------------------------- per record, inside a mixed file
#
# A SIEM export or a concatenation mixes the variants of a family in one file. Every format's
# fixture record, put in one file with a record of each other format of its family (either
# first), gives the same rows as alone, under its own format's name.

# line formats join a JSON file as a {"message": "<line>"} wrapper; one needing its header
# line first (a CSV export) cannot be read from one wrapped line
NO_MIXED_RECORD = {"azure-traffic-analytics": "a CSV row is read by the header line before it"}
_PROVENANCE = ("evidence_id", "evidence_line", "event_id")


def _read_rows(path: Path, *, fast: bool = True) -> tuple[list[dict[str, Any]], Any]:
    reader = open_reader(path, fast=fast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = pa.Table.from_batches(list(reader.batches()), schema=TABLES[reader.result.family].arrow_schema)
    rows = [
        {k: v for k, v in row.items() if k not in _PROVENANCE} | {"_line": row["evidence_line"]}
        for row in t.to_pylist()
    ]
    return rows, reader


def _write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text(
        "".join((json.dumps(r) if not isinstance(r, str) else json.dumps({"message": r})) + "\n" for r in records)
    )
    return path


def _record_of(fmt_name: str, tmp: Path) -> Any:
    """A record of the format that gives rows read alone in a JSON-lines file: a JSON object,
    or for a line format the text line (written wrapped in {"message": …})."""
    for path in fixture_files():
        if fmt_name != fixture_format(path).NAME or fixture_sources(path) != {fmt_name}:
            continue
        if path.suffix in (".log", ".csv"):
            candidates: list[Any] = [ln for ln in path.read_text().splitlines() if ln.strip()]
        else:
            candidates = [
                r.value for r in iter_records(iter_documents(decompressed_chunks(path))) if r.value is not None
            ]
        for value in candidates[:20]:
            rows, reader = _read_rows(_write_lines(tmp / f"alone-{fmt_name}.jsonl", [value]))
            if rows and not reader.quarantine and {r["source"] for r in rows} == {fmt_name}:
                return value
    raise AssertionError(f"no fixture record of {fmt_name} gives rows alone")


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.NAME not in NO_MIXED_RECORD], ids=lambda f: f.NAME)
def test_every_format_is_read_per_record_inside_a_mixed_file(tmp_path: Path, fmt) -> None:
    partners = [f for f in FORMATS if f.FAMILY == fmt.FAMILY and f is not fmt and f.NAME not in NO_MIXED_RECORD]
    if not partners:
        pytest.skip(f"{fmt.NAME} is the only format of the {fmt.FAMILY} family")
    mine = _record_of(fmt.NAME, tmp_path)
    alone, _ = _read_rows(_write_lines(tmp_path / "mine.jsonl", [mine]))
    for other in partners:
        theirs = _record_of(other.NAME, tmp_path)
        other_alone, _ = _read_rows(_write_lines(tmp_path / "theirs.jsonl", [theirs]))
        for order in ([mine, theirs], [theirs, mine]):
            for fast in (True, False):
                rows, reader = _read_rows(_write_lines(tmp_path / "mixed.jsonl", order), fast=fast)
                where = (
                    f"{fmt.NAME} with {other.NAME}, {'mine first' if order[0] is mine else 'theirs first'}, fast={fast}"
                )
                assert not reader.quarantine, (where, reader.quarantine)
                mine_line, their_line = (1, 2) if order[0] is mine else (2, 1)
                assert [r for r in rows if r["_line"] == mine_line] == [r | {"_line": mine_line} for r in alone], where
                assert [r for r in rows if r["_line"] == their_line] == [
                    r | {"_line": their_line} for r in other_alone
                ], where
                r = reader.result
                assert r.records == r.rows + r.merged + sum(r.skipped.values()) + r.quarantined, where
                assert r.rows_by_format[fmt.NAME] == len(alone) and r.rows_by_format[other.NAME] == len(other_alone), (
                    where
                )
