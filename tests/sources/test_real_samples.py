"""Every audit-family real sample in ../shared/real_samples loads in place, with the record
counts PROVENANCE.md states and spot-checked values. Skipped when the folder is absent."""

from __future__ import annotations

import fnmatch
import json
import re
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.errors import UnknownFormatError
from k8sforensics.ingest.stages import dedupe_audit_table
from k8sforensics.sources import open_reader, read_family

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
    assert (
        deduped.num_rows + sum(merged_by_file.values()) + sum(result.skipped.values()) + result.quarantined == records
    )
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
    with pytest.raises(UnknownFormatError) as e:
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
    report = kf.ingest(case, real_samples)
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


# --------------------------------------------------------------------------- every quarantine accounted for
#
# Every record of the audit and flow families that is an event becomes a row. What remains in
# quarantine must match this allow-list, each entry with its reason, and nothing else. All of
# them are records without a time of their own: a record without a time cannot be placed on a
# timeline, and is never given another date (the file's, the ingest's, or a re-exporter's
# parse time such as Panther's p_event_time, which is the parse time when the log had no time).

QUARANTINE_ALLOWED: list[tuple[str, str, str]] = [
    # (file glob under real_samples, reason pattern, why it is not an event)
    (
        "cloud-audit-*/panther__rule_tests_*",
        r"no timestamp in the record",
        "Panther rule-test fragments: hand-written around the fields a rule reads, no event time at all",
    ),
    (
        "cloud-audit-gke/panther__rule_tests_*",
        r"LogEntry without a protoPayload",
        "Panther rule-test fragments holding only operation/enrichment: no payload, no time, no request",
    ),
    (
        "cloud-audit-eks/panther__rule_tests_*",
        r"not an audit event: neither verb nor requestURI",
        "a Panther rule-test fragment holding only user and sourceIPs: no request, no time",
    ),
    (
        "vpc-flow-aws/panther__rule_tests_*",
        r"no timestamp in the record",
        "Panther rule-test fragments of VPC flow and OCSF records: addresses or a status, no start time",
    ),
    (
        "vpc-flow-aws/awsdocs-vpc__custom_*",
        r"no timestamp in the record",
        "AWS docs' examples of custom formats whose field list has neither start nor end",
    ),
    (
        "calico-flow-logs/tigera-docs__*",
        r"no timestamp in the record",
        "Calico Cloud docs' excerpts of flow records that leave out start_time/end_time",
    ),
]
_TIME_KEYS = frozenset(
    k.lower()
    for k in (
        "time",
        "timestamp",
        "@timestamp",
        "requestReceivedTimestamp",
        "stageTimestamp",
        "receiveTimestamp",
        "eventTime",
        "start",
        "end",
        "start_time",
        "end_time",
        "startTime",
        "endTime",
        "TimeGenerated",
        "FlowStartTime",
        "creationTimestamp",
    )
)


def _own_times(value: object) -> list[str]:
    """The time fields a JSON record holds (nested objects and JSON held as text included)."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if isinstance(value, dict):
        return [k for k, v in value.items() if k.lower() in _TIME_KEYS and v not in (None, "", "-")] + [
            t for v in value.values() for t in _own_times(v)
        ]
    if isinstance(value, list):
        return [t for v in value for t in _own_times(v)]
    return []


def _text_has_time(path: Path) -> bool:
    header = next(ln for ln in path.read_text().splitlines() if ln.strip()).split()
    return "start" in header or "end" in header


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "per-record"])
def test_every_quarantined_audit_and_flow_record_is_explained(real_samples: Path, fast: bool) -> None:
    unexplained, timed = [], []
    used: Counter[int] = Counter()
    for folder in sorted(p for p in real_samples.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            if path.suffix in (".md", ".tsv"):
                continue
            reader = open_reader(path, explicit=False, fast=fast).prepare()
            if reader.result.family not in ("audit", "flows"):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in reader.batches():
                    pass
            r = reader.result
            assert r.records == r.rows + sum(r.skipped.values()) + r.quarantined, (
                path
            )  # (merged: 0 before the ingest's merge)
            rel = str(path.relative_to(real_samples))
            lines = path.read_text().splitlines() if reader._layout in ("lines", "text") else []
            for q in reader.quarantine:
                k = next(
                    (
                        i
                        for i, (glob, reason, _) in enumerate(QUARANTINE_ALLOWED)
                        if fnmatch.fnmatch(rel, glob) and re.search(reason, q["reason"])
                    ),
                    None,
                )
                if k is None:
                    unexplained.append(f"{rel}:{q['evidence_line']}: {q['reason']}")
                    continue
                used[k] += 1
                if reader._layout == "text":
                    has_time = _text_has_time(path)
                elif lines:
                    has_time = bool(_own_times(json.loads(lines[q["evidence_line"] - 1])))
                else:
                    has_time = (
                        True  # a pretty-printed file: the record cannot be looked up here, so it is not explained
                    )
                if has_time:
                    timed.append(f"{rel}:{q['evidence_line']}: {q['reason']}")
    assert not unexplained, "quarantined records no allow-list entry explains:\n" + "\n".join(unexplained)
    assert not timed, (
        "quarantined records that carry a time of their own (events: they must become rows):\n" + "\n".join(timed)
    )
    assert set(used) == set(range(len(QUARANTINE_ALLOWED))), "an allow-list entry explains nothing any more: remove it"


# --------------------------------------------------------------------------- vendor alerts

# file → (format, records per PROVENANCE.md, rows, skipped, quarantined); each is a real finding
ALERT_EXPECTED = {
    "guardduty-eks/cdk-eks-blueprints-patterns__get-findings_PrivilegedContainer_extracted.jsonl": (
        "guardduty",
        1,
        1,
        0,
        0,
    ),
    "guardduty-eks/sumologic-docs__guardduty_PortProbe_k8s_node_finding_extracted.jsonl": ("guardduty", 1, 1, 0, 0),
    "azure-defender-containers/sumologic-docs__defender_for_cloud_K8S_AdmissionController_alert_extracted.jsonl": (
        "defender-containers",
        1,
        1,
        0,
        0,
    ),
    "azure-defender-containers/yaku__defender-for-cloud_alert_properties_K8S_extracted.jsonl": (
        "defender-containers",
        2,
        2,
        0,
        0,
    ),
}


@pytest.mark.parametrize("name", sorted(ALERT_EXPECTED))
def test_alert_counts(real_samples: Path, name: str) -> None:
    fmt, records, rows, skipped, quarantined = ALERT_EXPECTED[name]
    table, (result,), quarantine = read_family(real_samples / name, "alerts")
    assert result.format == fmt
    assert (result.records, table.num_rows, sum(result.skipped.values()), result.quarantined) == (
        records,
        rows,
        skipped,
        quarantined,
    )
    assert table.num_rows + sum(result.skipped.values()) + result.quarantined == result.records
    assert quarantine.num_rows == quarantined


def test_every_alert_sample_is_covered(real_samples: Path) -> None:
    files = {
        str(p.relative_to(real_samples))
        for folder in ("guardduty-eks", "azure-defender-containers")
        for p in (real_samples / folder).iterdir()
        if p.suffix not in (".tsv", ".md")
    }
    assert files == set(ALERT_EXPECTED)


def test_guardduty_sample_values(real_samples: Path) -> None:
    table, _, _ = read_family(
        real_samples / "guardduty-eks/cdk-eks-blueprints-patterns__get-findings_PrivilegedContainer_extracted.jsonl",
        "alerts",
    )
    row = table.to_pylist()[0]
    assert (row["cluster"], row["namespace"], row["pod"], row["container"]) == (
        "guardduty-blueprint",
        "argocd",
        "privileged-pod",
        "app",
    )
    assert (row["user"], row["service_account"]) == (
        "system:serviceaccount:argocd:argocd-application-controller",
        "argocd/argocd-application-controller",
    )
    assert (row["source_ip"], row["severity"], row["severity_raw"]) == ("10.0.205.129", "medium", "5")
    assert (row["technique_id"], row["attack_id"], row["tactic"]) == ("MS-TA9018", "T1610", "Privilege Escalation")
    assert row["time"] == pd.Timestamp("2023-03-22T21:27:18.186Z")
    probe = read_family(
        real_samples / "guardduty-eks/sumologic-docs__guardduty_PortProbe_k8s_node_finding_extracted.jsonl", "alerts"
    )[0].to_pylist()[0]
    # a kops worker: the cluster from the KubernetesCluster tag, the instance id as resource, no node
    assert (probe["cluster"], probe["resource"], probe["node"]) == ("k8s.travellogic.info", "i-0d6c314027f74dc82", None)
    assert (probe["source_ip"], probe["count"], probe["severity"]) == ("180.70.170.34", 743, "low")


def test_defender_sample_values(real_samples: Path) -> None:
    table, _, _ = read_family(
        real_samples
        / "azure-defender-containers/sumologic-docs__defender_for_cloud_K8S_AdmissionController_alert_extracted.jsonl",
        "alerts",
    )
    row = table.to_pylist()[0]
    assert (row["cluster"], row["account"]) == ("k8s--295-aks1-28-otc-dev-v4", "1111111-1111-1111-111-11111111")
    # the alert's own Intent ("Persistence, CredentialAccess") gives the tactic
    assert (row["technique_id"], row["attack_id"], row["tactic"]) == ("MS-TA9015", "T1546", "Persistence")
    assert (row["severity"], row["severity_raw"]) == ("low", "Informational")
    props, _, _ = read_family(
        real_samples / "azure-defender-containers/yaku__defender-for-cloud_alert_properties_K8S_extracted.jsonl",
        "alerts",
    )
    assert props.column("alert_type").to_pylist() == ["K8S_PrivilegedContainer", "K8S.NODE_SuspectDownloadArtifacts"]
    assert props.column("tactic").to_pylist() == ["Privilege Escalation", "Persistence"]


# --------------------------------------------------------------------------- cloud control-plane calls

# file → (format, records per PROVENANCE.md, rows, skipped, quarantined). Every quarantined
# record is a fragment without any time of its own (test below).
CLOUD_EXPECTED = {
    "cloudtrail-eks/argo-workflows-aws-plugin__irsa_AssumeRoleWithWebIdentity_denied_extracted.jsonl": (
        "aws-cloudtrail",
        1,
        1,
        0,
        0,
    ),
    "cloudtrail-eks/awsdocs-eks-user-guide__cloudtrail_examples_extracted.jsonl": ("aws-cloudtrail", 2, 2, 0, 0),
    "cloudtrail-eks/eks-security-immersion-day__lookup_events_AssumeRoleForPodIdentity.json": (
        "aws-cloudtrail",
        1,
        1,
        0,
        0,
    ),
    "cloudtrail-eks/eks-security-immersion-day__pod_identity_deep_dive_extracted.jsonl": (
        "aws-cloudtrail",
        3,
        3,
        0,
        0,
    ),
    # Panther rule tests: 5 Secrets Manager fragments carry no eventTime
    "cloudtrail-eks/panther__rule_tests_AWS_CloudTrail_followon_extracted.jsonl": ("aws-cloudtrail", 62, 57, 0, 5),
    # the author kept only eventSource/eventName/requestParameters/responseElements
    "cloudtrail-eks/stratus-red-team-docs__eks_CreateAccessEntry_AssociateAccessPolicy_partial.jsonl": (
        "aws-cloudtrail",
        2,
        0,
        0,
        2,
    ),
    "cloudtrail-eks/stratus-red-team__detonation_aws.credential-access.ec2-steal-instance-credentials.json": (
        "aws-cloudtrail",
        45,
        45,
        0,
        0,
    ),
    "cloudtrail-eks/stratus-red-team__detonation_aws.credential-access.secretsmanager-batch-retrieve-secrets.json": (
        "aws-cloudtrail",
        5,
        5,
        0,
        0,
    ),
    "cloudtrail-eks/stratus-red-team__detonation_aws.credential-access.secretsmanager-retrieve-secrets.json": (
        "aws-cloudtrail",
        21,
        21,
        0,
        0,
    ),
    "cloudtrail-eks/stratus-red-team__detonation_aws.persistence.iam-backdoor-user.json": (
        "aws-cloudtrail",
        1,
        1,
        0,
        0,
    ),
    "cloudtrail-eks/stratus-red-team__detonation_aws.persistence.iam-create-admin-user.json": (
        "aws-cloudtrail",
        3,
        3,
        0,
        0,
    ),
    # Google's documentation examples: "only the most relevant fields", no timestamp
    "gcp-workload-identity/google-iam-docs-mirror-unknown__wif_ExchangeToken_GenerateAccessToken_partial.jsonl": (
        "gcp-cloud-audit",
        3,
        0,
        0,
        3,
    ),
    "gcp-workload-identity/panther__rule_tests_GCP_iamcredentials_wif_extracted.jsonl": (
        "gcp-cloud-audit",
        10,
        10,
        0,
        0,
    ),
    # "shortened for clarity" by the author: no timestamp
    "gcp-workload-identity/stratus-red-team-docs__gcp_GenerateAccessToken_impersonation_partial.jsonl": (
        "gcp-cloud-audit",
        2,
        0,
        0,
        2,
    ),
}


@pytest.mark.parametrize("name", sorted(CLOUD_EXPECTED))
def test_cloud_counts(real_samples: Path, name: str) -> None:
    fmt, records, rows, skipped, quarantined = CLOUD_EXPECTED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, (result,), quarantine = read_family(real_samples / name, "cloud")
    assert result.format == fmt
    assert (result.records, table.num_rows, sum(result.skipped.values()), result.quarantined) == (
        records,
        rows,
        skipped,
        quarantined,
    )
    assert table.num_rows + sum(result.skipped.values()) + result.quarantined == result.records
    assert quarantine.num_rows == quarantined
    # nothing in quarantine carries a time of its own: each is a fragment, never a dropped event
    lines = (real_samples / name).read_text().splitlines()
    for q in quarantine.to_pylist():
        assert q["reason"] == "field time: no timestamp in the record", q
        assert not _own_times(json.loads(lines[q["evidence_line"] - 1])), q


def test_every_cloud_sample_is_covered(real_samples: Path) -> None:
    files = {
        str(p.relative_to(real_samples))
        for folder in ("cloudtrail-eks", "gcp-workload-identity")
        for p in (real_samples / folder).iterdir()
        if p.suffix not in (".tsv", ".md")
    }
    assert files == set(CLOUD_EXPECTED)


def _cloud_rows(real_samples: Path, name: str) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_family(real_samples / name, "cloud")[0].to_pandas()


def test_cloudtrail_identity_values(real_samples: Path) -> None:
    pod_id = _cloud_rows(
        real_samples, "cloudtrail-eks/eks-security-immersion-day__pod_identity_deep_dive_extracted.jsonl"
    )
    node, cli, sts = (pod_id.iloc[i] for i in range(3))
    assert (node.action, node.session_name, node.source_ip) == (
        "AssumeRoleForPodIdentity",
        "i-064d652934ecf0bfc",
        "44.219.101.145",
    )
    assert node.session_issuer == "arn:aws:iam::ACCOUNT_ID:role/platform-eks-node-group-20231128085853957000000011"
    assert cli.access_key_id == "ASIA37QFXJP5LMALW5PH"
    assert (sts.k8s_user, sts.namespace, sts.pod, sts.cluster) == (
        "system:serviceaccount:ns-a:sa1",
        "ns-a",
        "app1",
        "eksworkshop-eksctl",
    )
    assert (sts.principal, sts.source_ip, sts.issued_key_id) == (
        "pods.eks.amazonaws.com",
        "pods.eks.amazonaws.com",
        "ASIA37QFXJP5MQOWRZ6Q",
    )
    lookup = _cloud_rows(
        real_samples, "cloudtrail-eks/eks-security-immersion-day__lookup_events_AssumeRoleForPodIdentity.json"
    )
    cols = [c for c in lookup.columns if c not in ("event_id", "evidence_id", "evidence_line")]
    assert lookup.iloc[0][cols].equals(node[cols])  # the same event, double-decoded
    irsa = _cloud_rows(
        real_samples, "cloudtrail-eks/argo-workflows-aws-plugin__irsa_AssumeRoleWithWebIdentity_denied_extracted.jsonl"
    ).iloc[0]
    assert (irsa.k8s_user, irsa.service_account, irsa.outcome, irsa.error_code) == (
        "system:serviceaccount:argo:awf-aws-executor-plugin",
        "argo/awf-aws-executor-plugin",
        "failure",
        "AccessDenied",
    )
    assert irsa.identity_provider.endswith(
        "oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/A8242F25BFBB8F98F5321B2AE63C8B5C"
    )
    steal = _cloud_rows(
        real_samples,
        "cloudtrail-eks/stratus-red-team__detonation_aws.credential-access.ec2-steal-instance-credentials.json",
    )
    used = steal[steal.session_name.fillna("").str.startswith("i-")]
    assert set(used.action) == {"GetCallerIdentity", "DescribeInstances"}
    assert set(used.source_ip) == {"18.236.253.47"}  # the instance role's keys, used from elsewhere
    backdoor = _cloud_rows(
        real_samples, "cloudtrail-eks/stratus-red-team__detonation_aws.persistence.iam-backdoor-user.json"
    )
    assert (backdoor.iloc[0].issued_key_id, backdoor.iloc[0].resource) == (
        "AKIAL80DWDVKKM0UXEER",
        "stratus-red-team-backdoor-u-user",
    )


def test_gcp_cloud_audit_values(real_samples: Path) -> None:
    df = _cloud_rows(real_samples, "gcp-workload-identity/panther__rule_tests_GCP_iamcredentials_wif_extracted.jsonl")
    assert set(df.service) == {"iamcredentials.googleapis.com", "iam.googleapis.com"}
    mint = df[df.action == "GenerateAccessToken"].iloc[0]
    assert "gke-metadata-server" in mint.user_agent
    assert list(mint.delegation_chain) == ["projects/-/serviceAccounts/xxxxx.iam.gserviceaccount.com"]
    assert mint.time == pd.Timestamp("2024-08-29T19:30:36.339983306Z")  # Panther's space-separated UTC time
    assert pd.isna(mint.source_ip)  # written "callerIP" there, not Google's callerIp: kept in extra only
    assert set(df[df.action == "SignJwt"].access_key_id) == {
        "//iam.googleapis.com/projects/some-project/serviceAccounts/some-project@company.iam.gserviceaccount.com/keys/"
        "a378358365ff3d22e9c1a72fecf4605ddff76b47"
    }
