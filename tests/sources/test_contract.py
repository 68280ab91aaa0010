"""The contract every format module keeps: exact schema, UTC non-null time, provenance
filled, one quarantine entry per bad record, and no false sniff on other formats' files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pyarrow as pa
import pytest

from k8sforensics.schema import TABLES
from k8sforensics.sources import FORMATS, open_reader
from k8sforensics.sources._files import decompressed_chunks
from k8sforensics.sources._json import iter_documents, iter_records

from ..conftest import FIXTURES, REAL_SAMPLES

# Which fixture files (and real-sample folders) belong to which format.
FIXTURE_FORMAT = {
    "aks_blob_lines.json": "aks-audit",
    "aks_eventhub_bom.json": "aks-audit",
    "array_of_events.json": "k8s-audit",
    "bad_lines.jsonl": "k8s-audit",
    "eks_filter_log_events.json": "k8s-audit",
    "eks_firehose_concatenated.json": "k8s-audit",
    "eks_lambda_awslogs.json": "k8s-audit",
    "gke_gcloud_array.json": "gke-audit",
    "gke_logentries.jsonl": "gke-audit",
    "log_backend_stages.jsonl": "k8s-audit",
    "no_kind_no_apiversion.jsonl": "k8s-audit",
    "pretty_concatenated.json": "k8s-audit",
    "secrets_and_tokens.jsonl": "k8s-audit",
    "v1beta1_timestamp.jsonl": "k8s-audit",
    "webhook_eventlist.jsonl": "k8s-audit",
    "falco_alerts.jsonl": "falco",
    "tetragon_exec_pretty.json": "tetragon",
    "tetragon_events.jsonl": "tetragon",
    "tracee_two_generations.jsonl": "tracee",
    "hubble_flows.jsonl": "hubble",
    "hubble_exporter_quirks.jsonl": "hubble",
    "aws_vpc_custom_header.log": "aws-vpc-flow",
    "aws_vpc_default_no_header.log": "aws-vpc-flow",
    "gcp_vpc_flows.jsonl": "gcp-vpc-flow",
    "azure_nsg_vnet.json": "azure-flow",
    "azure_traffic_analytics.csv": "azure-traffic-analytics",
    "calico_flows.jsonl": "calico",
    "ocsf_network.jsonl": "ocsf-network",
    "cluster_dump_list.json": "kubectl",
    "podlist_items_without_kind.json": "kubectl",
    "pods_one_per_line.jsonl": "kubectl",
}
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
}
# the decoded inner event of an AKS record: a bare audit.k8s.io Event
REAL_FILE_FORMAT = {
    "sysdig-aks-audit-log__sample_KubeAuditLog_event.json": "k8s-audit",
    "panther__rule_tests_OCSF_NetworkActivity.jsonl": "ocsf-network",
}


def fixture_files() -> list[Path]:
    return sorted(p for family in ("audit", "runtime", "flows", "objects") for p in (FIXTURES / family).iterdir() if p.is_file())


def test_every_fixture_is_mapped_to_a_format() -> None:
    assert {p.name for p in fixture_files()} == set(FIXTURE_FORMAT)
    assert {f.NAME for f in FORMATS} <= set(FIXTURE_FORMAT.values())


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.NAME)
def test_format_module_shape(fmt) -> None:
    assert isinstance(fmt.NAME, str) and fmt.NAME
    assert fmt.FAMILY in TABLES
    assert callable(getattr(fmt, "sniff", None)) or callable(getattr(fmt, "sniff_lines", None))
    assert callable(fmt.rows)
    assert fmt.__doc__, "a format module says what it reads"


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_contract_on_fixture(path: Path) -> None:
    reader = open_reader(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(reader.batches())
    assert reader.result.format == FIXTURE_FORMAT[path.name]
    table = TABLES[reader.result.family]
    assert batches, "every fixture yields rows"
    t = pa.Table.from_batches(batches)
    assert t.schema.equals(table.arrow_schema, check_metadata=False)
    assert t.schema.field("time").type == pa.timestamp("ns", tz="UTC")
    required = ("time", "event_id", "evidence_id", "evidence_line", "source") if table.time_required else ("event_id", "evidence_id", "evidence_line", "source")
    for col in required:
        assert t.column(col).null_count == 0, col
    assert set(t.column("evidence_id").to_pylist()) == {reader.result.evidence.sha256}
    assert set(t.column("source").to_pylist()) == {reader.result.format}
    assert len(set(t.column("event_id").to_pylist())) == t.num_rows, "event ids are unique"
    assert min(t.column("evidence_line").to_pylist()) >= 1
    r = reader.result
    assert r.rows == t.num_rows
    assert r.records == r.rows + r.merged + sum(r.skipped.values()) + r.quarantined
    assert len(reader.quarantine) == r.quarantined


def test_one_quarantine_entry_per_bad_record(audit_fixtures: Path) -> None:
    reader = open_reader(audit_fixtures / "bad_lines.jsonl")
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
    out = [(FIXTURE_FORMAT[p.name], p) for p in fixture_files()]
    if REAL_SAMPLES.is_dir():
        for folder in sorted(REAL_SAMPLES.iterdir()):
            if not folder.is_dir():
                continue
            for p in sorted(folder.iterdir()):
                if p.suffix in (".md", ".tsv"):
                    continue
                out.append((REAL_FILE_FORMAT.get(p.name) or REAL_FORMAT.get(folder.name, "other:" + folder.name), p))
    return out


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.NAME)
def test_no_false_sniff(fmt) -> None:
    """A format never claims a record of a file that belongs to another format."""
    claimed = []
    for owner, path in _other_files():
        if owner == fmt.NAME:
            continue
        try:
            records = _sample_records(path)
        except Exception:
            continue  # not JSON (VPC flow logs, CSV): nothing to sniff
        if hasattr(fmt, "sniff") and any(fmt.sniff(r) for r in records):
            claimed.append(f"{path.name} ({owner})")
        lines = [ln for ln in path.read_bytes()[:65536].decode("utf-8", "replace").splitlines() if ln.strip()][:20]
        if hasattr(fmt, "sniff_lines") and lines and lines[0].lstrip()[:1] not in ("{", "[") and fmt.sniff_lines(lines):
            claimed.append(f"{path.name} ({owner}, as text)")
    assert not claimed, f"{fmt.NAME} falsely claims: {claimed}"
