"""Every audit-family real sample in ../shared/real_samples loads in place, with the record
counts PROVENANCE.md states and spot-checked values. Skipped when the folder is absent."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.sources import open_reader, read_family
from k8sforensics.sources.audit_dedupe import dedupe_audit_table

# file → (format, records per PROVENANCE.md, rows after merging stages, merged, skipped, quarantined)
EXPECTED = {
    "k8s-audit-v1-jsonl/audit2rbac__demo.log": ("k8s-audit", 37, 37, 0, 0, 0),
    # 2 pairs of exact duplicates (same auditID and stage)
    "k8s-audit-v1-jsonl/falco-legacy-tests__k8s_audit_trace_files.jsonl": ("k8s-audit", 51, 49, 2, 0, 0),
    # Panther rule tests: hand-written around real shapes, 170 of them carry no time at all
    "cloud-audit-eks/panther__rule_tests_Amazon_EKS_Audit.jsonl": ("k8s-audit", 188, 8, 9, 0, 171),
    "cloud-audit-gke/panther__rule_tests_GCP_AuditLog.jsonl": ("gke-audit", 59, 16, 0, 6, 37),
    "cloud-audit-aks/panther__rule_tests_Azure_MonitorActivity.jsonl": ("aks-audit", 40, 0, 0, 6, 34),
    "cloud-audit-aks/sysdig-aks-audit-log__event.json": ("aks-audit", 22, 22, 0, 0, 0),
    "cloud-audit-aks/sysdig-aks-audit-log__sample_EventHubs_event.json": ("aks-audit", 1, 1, 0, 0, 0),
    "cloud-audit-aks/sysdig-aks-audit-log__sample_KubeAuditLog_event.json": ("k8s-audit", 1, 1, 0, 0, 0),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts(real_samples: Path, name: str) -> None:
    fmt, records, rows, merged, skipped, quarantined = EXPECTED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, (result,), quarantine = read_family(real_samples / name, "audit")
    deduped, merged_by_file = dedupe_audit_table(table)
    assert result.format == fmt
    assert result.records == records
    assert (deduped.num_rows, sum(merged_by_file.values()), sum(result.skipped.values()), result.quarantined) == (
        rows,
        merged,
        skipped,
        quarantined,
    )
    assert deduped.num_rows + sum(merged_by_file.values()) + sum(result.skipped.values()) + result.quarantined == records
    assert quarantine.num_rows == quarantined


def test_every_audit_sample_is_covered(real_samples: Path) -> None:
    files = {
        str(p.relative_to(real_samples))
        for folder in ("k8s-audit-v1-jsonl", "cloud-audit-eks", "cloud-audit-gke", "cloud-audit-aks")
        for p in (real_samples / folder).iterdir()
        if p.suffix not in (".tsv", ".md")
    }
    assert files - set(EXPECTED) == {"k8s-audit-v1-jsonl/falco-legacy-tests__fal_01_003.json"}


def test_malformed_kind_zero_is_refused_with_the_formats_tried(real_samples: Path) -> None:
    with pytest.raises(kf.UnknownFormatError) as e:
        kf.read_audit(real_samples / "k8s-audit-v1-jsonl/falco-legacy-tests__fal_01_003.json")
    assert "fal_01_003.json" in str(e.value)
    assert e.value.tried == ["gke-audit", "aks-audit", "k8s-audit"]


def test_audit2rbac_values(real_samples: Path) -> None:
    df = kf.read_audit(real_samples / "k8s-audit-v1-jsonl/audit2rbac__demo.log")
    assert (df.impersonated_user == "bob").sum() == 29
    assert (df.response_code == 403).sum() == 11
    assert df.time.min() == pd.Timestamp("2017-09-11T19:55:05Z")  # v1 event with second precision
    assert df.verb.value_counts().to_dict() == {"get": 23, "list": 14}
    assert set(df.source_ip) == {"::1"}


def test_falco_trace_values(real_samples: Path) -> None:
    df = kf.read_audit(real_samples / "k8s-audit-v1-jsonl/falco-legacy-tests__k8s_audit_trace_files.jsonl")
    assert df.subresource.value_counts().to_dict() == {"exec": 1, "attach": 1}
    assert df.exec_command.dropna().tolist() == ["bash"]
    assert df.request_object.str.contains('"privileged":true', regex=False).sum() == 2
    assert set(df.stage.dropna()) == {"ResponseComplete", "ResponseStarted"}


def test_aks_event_hub_values(real_samples: Path) -> None:
    df = kf.read_audit(real_samples / "cloud-audit-aks/sysdig-aks-audit-log__event.json")
    assert set(df.cluster) == {"kubetest"}
    assert df.verb.value_counts().to_dict() == {"get": 17, "watch": 4, "create": 1}
    assert df.stage.value_counts().to_dict() == {"ResponseComplete": 20, "ResponseStarted": 2}
    assert (df.user == "aksService").sum() == 11


def test_aks_bom_single_record(real_samples: Path) -> None:
    row = kf.read_audit(real_samples / "cloud-audit-aks/sysdig-aks-audit-log__sample_EventHubs_event.json").iloc[0]
    assert row.cluster == "kubeauditlogtestcluster"
    assert (row.sa_namespace, row.sa_name) == ("kube-system", "generic-garbage-collector")
    assert row.time == pd.Timestamp("2020-05-08T22:44:17.862201Z")
    assert row.authz_reason.startswith("RBAC: allowed by ClusterRoleBinding")


def test_gke_values(real_samples: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = kf.read_audit(real_samples / "cloud-audit-gke/panther__rule_tests_GCP_AuditLog.jsonl")
    execs = df[df.subresource == "exec"]
    assert len(execs) == 2 and set(execs.source_ip) == {"88.88.88.88"}
    assert "disallowed.user@example.com" in set(execs.user)
    assert set(df.resource) == {"pods", "services"}


def test_eks_values(real_samples: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = kf.read_audit(real_samples / "cloud-audit-eks/panther__rule_tests_Amazon_EKS_Audit.jsonl")
    merged = df[df.audit_id == "c8c5bc49-cd5d-45d6-999c-b55783c7840f"].iloc[0]
    assert list(merged.stages) == ["ResponseStarted", "ResponseComplete"]
    node = df[df.user.str.startswith("system:node:")].iloc[0]
    assert node.resource == "serviceaccounts"


def test_cli_ingests_the_whole_sample_folder(real_samples: Path, tmp_path: Path) -> None:
    case = kf.Case.create(tmp_path / "case")
    report = case.ingest(real_samples)
    audit = [f for f in report.files if f.family == "audit"]
    assert len(audit) == len(EXPECTED)
    assert sum(f.rows for f in audit) == sum(v[2] for v in EXPECTED.values())
    assert sum(f.quarantined for f in audit) == sum(v[5] for v in EXPECTED.values())
    # the rest of the folder (other families, docs) is listed as not (yet) evidence, not an error
    assert any(p.endswith("PROVENANCE.md") for p, _ in report.unrecognised)
    assert len(case.audit()) == sum(f.rows for f in audit)


def test_reader_rejects_nothing_silently(real_samples: Path) -> None:
    for name in EXPECTED:
        reader = open_reader(real_samples / name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = sum(b.num_rows for b in reader.batches())
        r = reader.result
        assert rows + sum(r.skipped.values()) + r.quarantined == r.records, name
