"""Vendor alert formats (GuardDuty, Defender for Containers, Security Command Center): each shape
and quirk of the fixtures, severity scales, the type → technique tables on the vendors' documented
examples, and sniffers that leave CloudTrail records and audit events alone."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from k8sforensics.schema import ALERTS
from k8sforensics.sources import _alerts, defender_containers, gcp_scc, guardduty, read_family
from k8sforensics.sources.protocol import BadRecord
from k8sforensics.sources.redact import redacted

from ..conftest import FIXTURES

ALERT_FIXTURES = FIXTURES / "alerts"

# fixture → (format, records, rows, quarantined)
COUNTS = {
    "guardduty__get_findings.json": ("guardduty", 2, 2, 0),
    "guardduty__eventbridge.json": ("guardduty", 2, 2, 0),
    "guardduty__runtime.jsonl": ("guardduty", 2, 2, 0),
    "guardduty__bad_findings.jsonl": ("guardduty", 5, 1, 4),
    "defender_containers__event_hub.json": ("defender-containers", 2, 2, 0),
    "defender_containers__arm_properties.json": ("defender-containers", 2, 2, 0),
    "defender_containers__bad_alerts.jsonl": ("defender-containers", 3, 1, 2),
    "gcp_scc__documented_example.json": ("gcp-scc", 4, 4, 0),
    "gcp_scc__bad_findings.jsonl": ("gcp-scc", 3, 1, 2),
}


def read(path: Path) -> tuple[pd.DataFrame, Any, list[dict[str, Any]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, (result,), quarantine = read_family(path, "alerts")
    return table.to_pandas(), result, quarantine.to_pylist()


def test_every_alert_fixture_is_counted() -> None:
    assert {p.name for p in ALERT_FIXTURES.iterdir()} == set(COUNTS)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts(name: str) -> None:
    fmt, records, rows, quarantined = COUNTS[name]
    df, result, quarantine = read(ALERT_FIXTURES / name)
    assert result.format == fmt
    assert (result.records, result.rows, result.quarantined) == (records, rows, quarantined)
    assert result.records == result.rows + sum(result.skipped.values()) + result.quarantined
    assert len(quarantine) == quarantined
    assert set(df.source) == {fmt}


# ---------------------------------------------------------------------------- GuardDuty


def test_guardduty_get_findings_pascal_case() -> None:
    df, _, _ = read(ALERT_FIXTURES / "guardduty__get_findings.json")
    first, second = df.iloc[0], df.iloc[1]
    assert first.alert_type == "Execution:Kubernetes/ExecInKubeSystemPod"
    assert (first.cluster, first.namespace, first.pod, first.container) == (
        "prod-eu",
        "kube-system",
        "kube-proxy-x7k2p",
        "kube-proxy",
    )
    assert first.time == pd.Timestamp("2026-03-10T10:10:01Z") and first.time_end == pd.Timestamp(
        "2026-03-10T10:11:45.5Z"
    )
    assert (first.source_ip, first.account, first["count"]) == ("198.51.100.66", "111122223333", 2)
    assert first.resource == "arn:aws:eks:eu-west-1:111122223333:cluster/prod-eu"
    assert first.user == "arn:aws:sts::111122223333:assumed-role/ci-deployer/gha-1234"
    assert pd.isna(first.service_account) and pd.isna(first.node)
    # one page, two findings: one record's place, two rows
    assert list(df.evidence_line) == [1, 1] and df.event_id.nunique() == 2
    # a DaemonSet, two containers: the workload, and no container guessed
    assert (second.workload_kind, second.workload, second.service_account) == ("DaemonSet", "node-agent", "shop/web")
    assert pd.isna(second.pod) and pd.isna(second.container)
    assert (second.severity, second.severity_raw) == ("high", "8.2")


def test_guardduty_eventbridge_camel_case() -> None:
    df, _, _ = read(ALERT_FIXTURES / "guardduty__eventbridge.json")
    assert list(df.alert_id) == ["3ce5b7d9f1a3c5e7b9d1f3a5c7e9b1d3", "4df6c8e0a2b4d6f8c0e2a4b6d8f0a2c4"]
    exposed, privileged = df.iloc[0], df.iloc[1]
    assert (exposed.workload_kind, exposed.workload, exposed.source_ip) == (
        "Deployment",
        "kubernetes-dashboard",
        "203.0.113.9",
    )
    assert (privileged.pod, privileged.container, privileged.severity) == ("kube-proxy-debug", "debug", "critical")
    # the envelope's own fields are not the finding's: the finding is kept whole in extra
    assert "detail-type" not in json.loads(privileged.extra)
    assert json.loads(privileged.extra)["resource"]["eksClusterDetails"]["name"] == "prod-eu"


def test_guardduty_runtime_and_node_findings() -> None:
    df, _, _ = read(ALERT_FIXTURES / "guardduty__runtime.jsonl")
    miner, probe = df.iloc[0], df.iloc[1]
    assert (miner.container, miner.workload_kind, miner.workload) == ("sync", "CronJob", "metrics-sync")
    assert miner.resource == "arn:aws:eks:eu-west-1:111122223333:cluster/prod-eu"
    assert pd.isna(miner.node), "an instance id is not a node name"
    assert json.loads(miner.extra)["resource"]["instanceDetails"]["instanceId"] == "i-0abc1234def567890"
    # an EC2 finding about a worker: the cluster from the instance's tags, the instance as resource
    assert (probe.cluster, probe.resource) == ("prod-eu", "i-0def5678abc901234") and pd.isna(probe.node)
    assert probe.source_ip == "198.51.100.66"
    assert probe.time == pd.Timestamp("2026-03-10T09:58:00Z"), "'+0000' offsets read as UTC"


def test_guardduty_bad_findings_are_quarantined_alone() -> None:
    df, _, quarantine = read(ALERT_FIXTURES / "guardduty__bad_findings.jsonl")
    assert list(df.alert_id) == ["7a29f1b3d5e7a9c1f3b5d7e9a1c3e5a7"]
    reasons = [q["reason"] for q in quarantine]
    assert "Findings[1] is not a GuardDuty finding" in reasons[0]
    assert "time" in reasons[1]
    assert "field count" in reasons[2] and "many" in reasons[2]
    assert "outside the accepted range" in reasons[3]
    assert [q["evidence_line"] for q in quarantine] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (1, "low"),
        (3.9, "low"),
        (4, "medium"),
        (6.9, "medium"),
        (7.0, "high"),
        (8.9, "high"),
        (9.0, "critical"),
        (10, "critical"),
        ("5", "medium"),
        (0, None),  # reserved
        (10.5, None),
        (True, None),
        ("high", None),
        (None, None),
    ],
)
def test_guardduty_severity_scale(value: Any, level: str | None) -> None:
    assert guardduty.severity(value) == level


# ---------------------------------------------------------------------------- Defender


def test_defender_event_hub_entities_and_refs() -> None:
    df, _, _ = read(ALERT_FIXTURES / "defender_containers__event_hub.json")
    binding, shell = df.iloc[0], df.iloc[1]
    assert binding.cluster == "aks-prod-weu", "the K8s-cluster entity names its cluster through a $ref'd resource"
    assert (binding.namespace, binding.service_account, binding.user) == (
        "shop",
        "shop/web",
        "system:serviceaccount:shop:web",
    )
    assert (binding.source_ip, binding.account) == ("198.51.100.66", "00000000-1111-2222-3333-444444444444")
    assert binding.time == pd.Timestamp("2026-03-10T10:30:12.5000001Z")
    # JSON held in an extended property's string is kept as written
    extra = json.loads(binding.extra)
    assert extra["ExtendedProperties"]["Subjects"].startswith('[{"kind":"ServiceAccount"')
    assert (shell.namespace, shell.pod, shell.container, shell.node) == (
        "shop",
        "web-7d9f-x2",
        "web",
        "aks-nodepool1-12345678-vmss000001",
    )
    assert shell.time_end == pd.Timestamp("2026-03-10T10:14:30Z")


def test_defender_arm_properties() -> None:
    df, _, _ = read(ALERT_FIXTURES / "defender_containers__arm_properties.json")
    mount, proxy = df.iloc[0], df.iloc[1]
    assert (mount.cluster, mount.namespace, mount.pod, mount.container) == (
        "aks-prod-weu",
        "kube-system",
        "kube-proxy-evil",
        "proxy",
    )
    assert mount.time == pd.Timestamp("2026-03-10T10:35:40Z"), "startTimeUtc, not the time it was generated"
    assert (mount.severity, mount.severity_raw) == ("low", "Informational")
    assert proxy.alert_type == "K8S_TI_Proxy" and pd.isna(proxy.cluster)


def test_defender_bad_alerts_name_the_field() -> None:
    df, _, quarantine = read(ALERT_FIXTURES / "defender_containers__bad_alerts.jsonl")
    assert list(df.alert_id) == ["good-3"] and df.namespace.tolist() == ["shop"]
    assert [q["evidence_line"] for q in quarantine] == [2, 3]
    assert "field Entities: not valid JSON" in quarantine[0]["reason"]
    assert "field time" in quarantine[1]["reason"] and "last tuesday" in quarantine[1]["reason"]


# ---------------------------------------------------------------------------- Security Command Center


def test_scc_documented_example() -> None:
    """Built from Google's documented finding JSON (no real finding was available)."""
    df, _, _ = read(ALERT_FIXTURES / "gcp_scc__documented_example.json")
    breakglass, malicious, legacy, privileged = (df.iloc[i] for i in range(4))
    assert (breakglass.cluster, breakglass.namespace, breakglass.pod, breakglass.container) == (
        "CLUSTER_NAME",
        "NAMESPACE",
        "POD_NAME",
        "CONTAINER_NAME",
    )
    assert dict(breakglass.labels) == {"image-policy.k8s.io/break-glass": "true"}
    assert (breakglass.user, breakglass.source_ip, breakglass.account) == (
        "PRINCIPAL_EMAIL",
        "IP_ADDRESS",
        "PROJECT_ID",
    )
    assert (malicious.node, malicious.severity, malicious.alert_type) == (
        "NODE_NAME",
        "critical",
        "Execution: Added Malicious Binary Executed",
    )
    assert json.loads(malicious.extra)["notificationConfigName"].endswith("NOTIFICATION_CONFIG_ID")
    # Container Threat Detection's older sourceProperties
    assert (legacy.namespace, legacy.pod, legacy.container, legacy.node) == (
        "NAMESPACE",
        "POD_NAME",
        "CONTAINER_NAME",
        "NODE_NAME",
    )
    assert privileged.service_account == "NAMESPACE/SERVICE_ACCOUNT" and pd.isna(privileged.container)
    assert (df.time == df.time_end).all()


def test_scc_bad_findings() -> None:
    df, _, quarantine = read(ALERT_FIXTURES / "gcp_scc__bad_findings.jsonl")
    assert df.alert_id.tolist() == ["organizations/1/sources/2/findings/good2"]
    assert (df.severity.isna().all(), df.severity_raw.tolist()) == (True, ["3"])
    assert "not a time" in quarantine[0]["reason"] and "no timestamp" in quarantine[1]["reason"]


# ---------------------------------------------------------------------------- techniques


def row_of(module: Any, record: dict[str, Any]) -> dict[str, Any]:
    (row,) = module.rows(record, {})
    return row


def columns(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["technique_id"], row["attack_id"], row["tactic"], row["kill_chain_phase"])


def gd(kind: str) -> dict[str, Any]:
    return {"type": kind, "id": "x", "service": {"serviceName": "guardduty", "eventFirstSeen": "2026-01-01T00:00:00Z"}}


def test_guardduty_table_maps_the_documented_examples() -> None:
    # the finding-format page's example type, and the real sample's
    assert columns(row_of(guardduty, gd("PrivilegeEscalation:Kubernetes/PrivilegedContainer"))) == (
        "MS-TA9018",
        "T1610",
        "Privilege Escalation",
        "Exploitation",
    )
    assert columns(row_of(guardduty, gd("Recon:EC2/PortProbeUnprotectedPort"))) == (None, None, None, None)
    # a type in no table: the threat purpose is the tactic when GuardDuty says it is ATT&CK's
    assert columns(row_of(guardduty, gd("Discovery:Kubernetes/TorIPCaller"))) == (
        None,
        None,
        "Discovery",
        "Actions on Objectives",
    )
    assert columns(row_of(guardduty, gd("Backdoor:Runtime/C&CActivity.B"))) == (None, None, None, None)
    assert columns(row_of(guardduty, gd("Stealth:IAMUser/CloudTrailLoggingDisabled"))) == (None, None, None, None)


def dfc(kind: str, **more: Any) -> dict[str, Any]:
    return {"AlertType": kind, "SystemAlertId": "x", "StartTimeUtc": "2026-01-01T00:00:00Z", **more}


def test_defender_table_maps_the_documented_examples() -> None:
    assert columns(row_of(defender_containers, dfc("K8S_PrivilegedContainer"))) == (
        "MS-TA9018",
        "T1610",
        "Privilege Escalation",
        "Exploitation",
    )
    # the alert's own Intent wins over the reference's first tactic
    assert columns(
        row_of(defender_containers, dfc("K8S_AdmissionController", Intent="Persistence, CredentialAccess"))
    ) == (
        "MS-TA9015",
        "T1546",
        "Persistence",
        "Installation",
    )
    # the alert's own techniques win over the table's
    assert row_of(defender_containers, dfc("K8S_ClusterAdminBinding", Techniques=["T1098"]))["attack_id"] == "T1098"
    # an unknown type: the vendor's intent only; Defender's own intents are no ATT&CK tactic
    assert columns(row_of(defender_containers, dfc("K8S.NODE_New", Intent="Exploitation"))) == (None, None, None, None)
    assert columns(row_of(defender_containers, dfc("K8S.NODE_New", Intent="Probing, DefenseEvasion"))) == (
        None,
        None,
        "Defense Evasion",
        "Installation",
    )


def scc(category: str, **more: Any) -> dict[str, Any]:
    return {
        "name": "organizations/1/sources/2/findings/3",
        "category": category,
        "eventTime": "2026-01-01T00:00:00Z",
        **more,
    }


def test_scc_mapping_uses_the_findings_own_mitre_attack() -> None:
    documented = json.loads((ALERT_FIXTURES / "gcp_scc__documented_example.json").read_text())[0]
    assert columns(row_of(gcp_scc, documented)) == (None, "T1548", "Defense Evasion", "Installation")
    assert columns(row_of(gcp_scc, scc("Privilege Escalation: Launch of privileged Kubernetes container"))) == (
        "MS-TA9018",
        "T1610",
        "Privilege Escalation",
        "Exploitation",
    )
    # a sub-technique is listed with its parent: the most specific is the finding's
    scan = scc(
        "Recon: x",
        mitreAttack={"primaryTactic": "RECONNAISSANCE", "primaryTechniques": ["ACTIVE_SCANNING", "SCANNING_IP_BLOCKS"]},
    )
    assert columns(row_of(gcp_scc, scan)) == (None, "T1595.001", "Reconnaissance", "Reconnaissance")
    # no mitreAttack: a category prefix that is a tactic's name; anything else stays null
    assert row_of(gcp_scc, scc("Execution: Added Malicious Binary Executed"))["tactic"] == "Execution"
    assert columns(row_of(gcp_scc, scc("Added Binary Executed"))) == (None, None, None, None)
    assert (
        row_of(gcp_scc, scc("Malware: Bad Domain", mitreAttack={"primaryTechniques": ["NOT_A_TECHNIQUE"]}))["attack_id"]
        is None
    )


@pytest.mark.parametrize("module", [guardduty, defender_containers, gcp_scc], ids=lambda m: m.NAME)
def test_tables_are_well_formed(module: Any) -> None:
    for kind, (ms_ta, attack, tactic) in module.TECHNIQUES.items():
        assert ms_ta is None or (ms_ta.startswith("MS-TA90") and len(ms_ta) == 9), kind
        assert attack is None or _alerts.attack_id(attack) == attack, kind
        assert tactic in _alerts.TACTIC_PHASES, kind


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("PrivilegeEscalation", "Privilege Escalation"),
        ("PRIVILEGE_ESCALATION", "Privilege Escalation"),
        ("Command And Control", "Command and Control"),
        ("CommandAndControl", "Command and Control"),
        ("Exploitation", None),
        ("Recon", None),
        (None, None),
    ],
)
def test_tactic_spellings(spelling: Any, name: str | None) -> None:
    assert _alerts.tactic(spelling) == name


# ---------------------------------------------------------------------------- sniffing

CLOUDTRAIL = {
    "eventVersion": "1.08",
    "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/x/y"},
    "eventTime": "2026-03-10T10:00:00Z",
    "eventSource": "guardduty.amazonaws.com",
    "eventName": "GetFindings",
    "awsRegion": "eu-west-1",
    "requestParameters": {"detectorId": "12abc", "findingIds": ["1ac3"]},
    "responseElements": None,
    "eventType": "AwsApiCall",
    "eventID": "e1",
}
AUDIT_EVENT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "auditID": "a1",
    "stage": "ResponseComplete",
    "verb": "create",
    "user": {"username": "system:serviceaccount:shop:web"},
    "objectRef": {"resource": "pods", "namespace": "shop"},
    "requestReceivedTimestamp": "2026-03-10T10:00:00Z",
}
AZURE_ACTIVITY = {
    "time": "2026-03-10T10:00:00Z",
    "resourceId": "/subscriptions/0/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks",
    "operationName": "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
    "category": "Administrative",
    "properties": {"eventCategory": "Administrative"},
}
GCP_AUDIT = {
    "insertId": "i1",
    "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
    "protoPayload": {"serviceName": "securitycenter.googleapis.com", "methodName": "ListFindings"},
    "resource": {"type": "audited_resource"},
    "timestamp": "2026-03-10T10:00:00Z",
}


@pytest.mark.parametrize("module", [guardduty, defender_containers, gcp_scc], ids=lambda m: m.NAME)
@pytest.mark.parametrize(
    "record", [CLOUDTRAIL, AUDIT_EVENT, AZURE_ACTIVITY, GCP_AUDIT], ids=["cloudtrail", "audit", "azure", "gcp"]
)
def test_sniffers_leave_other_records_alone(module: Any, record: dict[str, Any]) -> None:
    assert not module.sniff(record)
    assert not module.sniff({"Records": [record]}) and not module.sniff([record])


def test_each_sniffer_claims_only_its_own_fixtures() -> None:
    from k8sforensics.sources._files import decompressed_chunks
    from k8sforensics.sources._json import iter_documents, iter_records

    modules = {m.NAME: m for m in (guardduty, defender_containers, gcp_scc)}
    for path in sorted(ALERT_FIXTURES.iterdir()):
        owner = path.name.split("__", 1)[0].replace("_", "-")
        values = [r.value for r in iter_records(iter_documents(decompressed_chunks(path))) if r.value is not None]
        for name, module in modules.items():
            if name != owner:
                assert not any(module.sniff(v) for v in values), (name, path.name)


# ---------------------------------------------------------------------------- credentials


def test_a_credential_in_an_alert_is_redacted(tmp_path: Path) -> None:
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2hvcDp3ZWIifQ.c2lnbmF0dXJlc2lnbmF0dXJlc2ln"
    finding = gd("CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed")
    finding["service"]["action"] = {"kubernetesApiCallAction": {"parameters": json.dumps({"token": token})}}
    finding["description"] = f"Authorization: Bearer {token}"
    path = tmp_path / "guardduty__planted.jsonl"
    path.write_text(json.dumps(finding) + "\n")
    table, _, _ = read_family(path, "alerts")
    text = json.dumps(table.to_pylist(), default=str)
    assert token not in text
    assert redacted(token) in text


def test_schema_is_the_alerts_table() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, _, _ = read_family(ALERT_FIXTURES / "guardduty__get_findings.json", "alerts")
    assert table.schema.equals(ALERTS.arrow_schema, check_metadata=False)


@pytest.mark.parametrize(
    ("module", "record", "reason"),
    [
        (
            guardduty,
            {
                **gd("Discovery:Kubernetes/TorIPCaller"),
                "service": {"serviceName": "guardduty", "eventFirstSeen": 1700000000},
            },
            "field time: value 1700000000",
        ),
        (defender_containers, dfc("K8S_DeleteEvents", EndTimeUtc=1700000000000), "field time_end: value 1700000000000"),
        (
            gcp_scc,
            scc("Execution: x", kubernetes={"pods": [{"ns": "a", "name": "b", "labels": "app=web"}]}),
            "field labels: value",
        ),
    ],
    ids=["guardduty-epoch", "defender-epoch", "scc-labels"],
)
def test_values_no_vendor_writes_are_bad_input(module: Any, record: dict[str, Any], reason: str) -> None:
    (row,) = module.rows(record, {})
    assert isinstance(row, BadRecord) and str(row).startswith(reason), row
