"""The cloud formats: AWS CloudTrail in every shape a responder gets it, GCP Cloud Audit Logs of
services other than Kubernetes; the identities they carry mapped to Kubernetes service accounts;
no credential a call returned in any column."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from k8sforensics.schema import CLOUD
from k8sforensics.sources import gcp_cloud_audit, gke_audit, open_reader, read_family
from k8sforensics.sources._files import decompressed_chunks
from k8sforensics.sources._json import iter_documents, iter_records
from k8sforensics.sources.protocol import NotAnEvent
from k8sforensics.sources.redact import redacted

from ..conftest import FIXTURES

CLOUD_FIXTURES = FIXTURES / "cloud"
# credentials planted in the fixtures' responses and requests (and the prefix every one shares)
PLANTED = "PLANTED"


def _read(path: Path) -> tuple[pd.DataFrame, Any]:
    reader = open_reader(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = pa.Table.from_batches(list(reader.batches()), schema=CLOUD.arrow_schema)
    return t.to_pandas(), reader


def _by_action(df: pd.DataFrame) -> dict[str, pd.Series]:
    return {r.action: r for _, r in df.iterrows()}


def test_s3_log_file_records() -> None:
    df, reader = _read(CLOUD_FIXTURES / "aws_cloudtrail__s3_records.json")
    assert reader.result.format == "aws-cloudtrail" and reader.result.records == 3 and len(df) == 3
    rows = _by_action(df)
    irsa = rows["AssumeRoleWithWebIdentity"]
    assert irsa.principal_type == "WebIdentityUser"
    assert irsa.principal.endswith(":sts.amazonaws.com:system:serviceaccount:shop:web")  # the OIDC principalId
    assert (irsa.web_identity, irsa.k8s_user) == ("system:serviceaccount:shop:web",) * 2
    assert (irsa.namespace, irsa.service_account) == ("shop", "shop/web")
    assert irsa.identity_provider.endswith(
        ":oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    )
    assert irsa.issued_key_id == "ASIAEXAMPLEISSUED001"  # joins the later calls signed with it
    assert irsa.resource == "arn:aws:iam::111122223333:role/shop-web" and irsa.read_only
    get = rows["GetObject"]
    assert get.access_key_id == irsa.issued_key_id
    assert get.session_name == "botocore-session-1714557900"
    assert get.session_issuer == "arn:aws:iam::111122223333:role/shop-web"
    assert get.session_created == pd.Timestamp("2024-05-01T10:05:00Z")
    assert get.identity_provider == irsa.identity_provider  # sessionContext.webIdFederationData
    assert list(get.resources) == ["s3://shop-backups/db/dump.sql"]
    key = rows["CreateAccessKey"]
    assert (key.issued_key_id, key.resource, key.principal_type) == ("AKIAEXAMPLEBACKDOOR1", "backdoor", "IAMUser")
    assert key.read_only is False or key.read_only == False  # noqa: E712 (numpy bool)
    assert len(set(df.event_id)) == 3


def test_gzipped_s3_object_reads_the_same(tmp_path: Path) -> None:
    src = CLOUD_FIXTURES / "aws_cloudtrail__s3_records.json"
    gz = tmp_path / "111122223333_CloudTrail_eu-west-1_20240501T1005Z_abc.json.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    plain, _ = _read(src)
    packed, reader = _read(gz)
    assert reader.result.format == "aws-cloudtrail"
    cols = [c for c in CLOUD.names if c not in ("event_id", "evidence_id")]
    pd.testing.assert_frame_equal(plain[cols], packed[cols])


def test_lookup_events_are_double_decoded() -> None:
    df, reader = _read(CLOUD_FIXTURES / "aws_cloudtrail__lookup_events.json")
    assert reader.result.records == 1 and not reader.quarantine
    row = df.iloc[0]
    assert (row.action, row.principal, row.issued_key_id) == (
        "GetSessionToken",
        "arn:aws:iam::111122223333:user/ci",
        "ASIAEXAMPLESESSION01",
    )
    assert row.time == pd.Timestamp("2024-05-01T10:08:00Z") and bool(row.read_only)


def test_a_bad_lookup_event_is_quarantined_beside_its_good_neighbour() -> None:
    df, reader = _read(CLOUD_FIXTURES / "aws_cloudtrail__bad_lookup_event_truncated.json")
    r = reader.result
    assert (r.records, r.rows, r.quarantined) == (2, 1, 1)
    assert "CloudTrailEvent: not valid JSON" in reader.quarantine[0]["reason"]
    assert PLANTED not in reader.quarantine[0]["excerpt"]


def test_eventbridge_pod_identity_session_tags_name_the_pod() -> None:
    df, _ = _read(CLOUD_FIXTURES / "aws_cloudtrail__eventbridge.json")
    row = df.iloc[0]
    assert (row.action, row.principal, row.principal_type, row.source_ip) == (
        "AssumeRole",
        "pods.eks.amazonaws.com",
        "AWSService",
        "pods.eks.amazonaws.com",  # a service name, kept as written
    )
    assert (row.cluster, row.namespace, row.pod, row.service_account, row.k8s_user) == (
        "prod",
        "payments",
        "api-7d9f-x2",
        "payments/api",
        "system:serviceaccount:payments:api",
    )
    assert row.issued_key_id == "ASIAEXAMPLEPODID0001"


def test_json_lines_instance_role_failure_and_service_caller() -> None:
    df, _ = _read(CLOUD_FIXTURES / "aws_cloudtrail__jsonl.jsonl")
    rows = _by_action(df)
    node = rows["GetSecretValue"]
    assert (node.session_name, node.session_issuer) == (
        "i-0abc1234def567890",
        "arn:aws:iam::111122223333:role/eks-node-role",
    )
    assert (node.outcome, node.error_code) == ("failure", "AccessDenied")
    assert node.error_message.startswith("User is not authorized")
    assert bool(node.read_only) is True  # "true" as text
    assert list(node.resources) == ["prod/db"]
    svc = rows["CreateNetworkInterface"]
    assert (svc.principal, svc.source_ip, svc.outcome) == ("eks.amazonaws.com", "eks.amazonaws.com", "success")
    assert svc.time == pd.Timestamp("2024-05-01T10:11:00.123Z")


def test_cloudwatch_page_is_unwrapped_by_the_driver() -> None:
    page, reader = _read(CLOUD_FIXTURES / "aws_cloudtrail__cloudwatch_page.json")
    lines, _ = _read(CLOUD_FIXTURES / "aws_cloudtrail__jsonl.jsonl")
    assert reader.result.envelopes["cloudwatch-logs"] == 1
    cols = [c for c in CLOUD.names if c not in ("event_id", "evidence_id", "evidence_line")]
    pd.testing.assert_frame_equal(page[cols], lines[lines.action == "GetSecretValue"][cols].reset_index(drop=True))


def test_gke_workload_identity_token_mint() -> None:
    df, _ = _read(CLOUD_FIXTURES / "gcp_cloud_audit__generate_access_token.jsonl")
    assert list(df.action) == ["GenerateAccessToken", "SignJwt", "SignBlob"]
    row = df.iloc[0]
    assert (row.provider, row.account, row.service) == ("gcp", "prod-proj", "iamcredentials.googleapis.com")
    assert (row.source_ip, row.outcome) == ("gce-internal-ip", "success")
    assert "gke-metadata-server" in row.user_agent
    assert (row.k8s_user, row.namespace, row.service_account) == ("system:serviceaccount:shop:web", "shop", "shop/web")
    assert row.identity_provider == "prod-proj.svc.id.goog"
    assert list(row.delegation_chain) == ["serviceAccount:prod-proj.svc.id.goog[shop/web]"]
    assert row.principal == "shop-web@prod-proj.iam.gserviceaccount.com" and row.principal_type == "serviceAccount"
    # the minted token, the signed JWT and blob: stand-ins only
    assert json.loads(row.response_elements)["accessToken"].startswith("REDACTED:sha256=")
    assert json.loads(df.iloc[1].response_elements)["signedJwt"].startswith("REDACTED:sha256=")
    assert json.loads(df.iloc[2].response_elements)["signedBlob"] == redacted(
        "UExBTlRFRHNpZ25lZEJsb2IwMDAwMDAwMDAwMDAw"
    )


def test_federation_storage_and_secret_manager() -> None:
    df, _ = _read(CLOUD_FIXTURES / "gcp_cloud_audit__sts_storage_secretmanager.jsonl")
    rows = {r.service: r for _, r in df.iterrows()}
    sts = rows["sts.googleapis.com"]
    assert sts.principal_type == "federated"
    assert sts.k8s_user == "system:serviceaccount:payments:api"  # the GKE federation principal
    assert sts.identity_provider == "projects/123456789012/locations/global/workloadIdentityPools/prod-proj.svc.id.goog"
    gcs = rows["storage.googleapis.com"]
    assert (gcs.outcome, gcs.error_code, gcs.region) == ("failure", "PERMISSION_DENIED", "europe-west1")
    assert gcs.k8s_user == "system:serviceaccount:payments:api"  # through serviceAccountDelegationInfo
    assert gcs.session_issuer == sts.principal
    sm = rows["secretmanager.googleapis.com"]
    assert sm.resource == "projects/123456789012/secrets/db-password/versions/latest" and sm.outcome == "success"
    assert pd.isna(sm.k8s_user)


def test_panther_reexport_at_sign_type_and_space_time() -> None:
    df, reader = _read(CLOUD_FIXTURES / "gcp_cloud_audit__panther_at_sign_type.jsonl")
    assert reader.result.format == "gcp-cloud-audit"
    row = df.iloc[0]
    assert row.time == pd.Timestamp("2024-05-01T10:05:00.1Z")  # no zone: UTC
    # callerIP is not Google's spelling: not guessed into source_ip, kept in extra
    assert pd.isna(row.source_ip)
    assert json.loads(row.extra)["protoPayload"]["requestMetadata"]["callerIP"] == "gce-internal-ip"


def test_a_status_code_that_is_no_code_is_quarantined_with_the_field() -> None:
    df, reader = _read(CLOUD_FIXTURES / "gcp_cloud_audit__bad_status_code.jsonl")
    assert len(df) == 1 and reader.result.quarantined == 1
    assert reader.quarantine[0]["reason"].startswith("field protoPayload.status.code: value denied")


def test_gke_audit_keeps_kubernetes_entries_and_cloud_audit_the_others() -> None:
    gke_file = FIXTURES / "audit" / "gke_audit__logentries.jsonl"
    entries = [r.value for r in iter_records(iter_documents(decompressed_chunks(gke_file))) if r.value]
    k8s = [v for v in entries if gke_audit.sniff(v)]
    others = [v for v in entries if not gke_audit.sniff(v)]
    assert k8s and not any(gcp_cloud_audit.sniff(v) for v in k8s)
    # the GKE file's cluster-management call (container.googleapis.com) is a cloud call: ours
    assert [v["protoPayload"]["serviceName"] for v in others] == ["container.googleapis.com"]
    assert all(gcp_cloud_audit.sniff(v) for v in others)
    for path in CLOUD_FIXTURES.glob("gcp_cloud_audit__*"):
        values = [r.value for r in iter_records(iter_documents(decompressed_chunks(path))) if r.value]
        assert not any(gke_audit.sniff(v) for v in values), path.name
    # a k8s.io entry handed to this format (a mixed file) is not an event of the cloud table
    with pytest.raises(NotAnEvent, match="gke-audit"):
        list(gcp_cloud_audit.rows(k8s[0], {}))


def test_no_credential_from_a_response_reaches_any_column() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bad_ fixtures
        table, results, quarantine = read_family(CLOUD_FIXTURES, "cloud")
    assert {r.format for r in results} == {"aws-cloudtrail", "gcp-cloud-audit"}
    planted = {
        v
        for path in CLOUD_FIXTURES.iterdir()
        for v in _strings(
            json.loads(path.read_text())
            if path.suffix == ".json"
            else [json.loads(x) for x in path.read_text().splitlines()]
        )
        if PLANTED in v and not v.startswith("{")
    }
    assert len(planted) >= 8  # secret keys, session tokens, access tokens, signed JWT, subject token
    found = []
    for name in table.column_names:
        for v in table.column(name).to_pylist():
            for s in _strings(v):
                found += [name for p in planted if p in s or PLANTED in s]
    for q in quarantine.to_pylist():
        found += ["quarantine" for s in _strings(q) if PLANTED in s]
    assert not found, found


def test_real_pod_identity_session_token_is_not_stored(real_samples: Path) -> None:
    path = real_samples / "cloudtrail-eks/eks-security-immersion-day__pod_identity_deep_dive_extracted.jsonl"
    token = json.loads(path.read_text().splitlines()[2])["responseElements"]["credentials"]["sessionToken"]
    table, _, _ = read_family(path, "cloud")
    cells = [s for name in table.column_names for v in table.column(name).to_pylist() for s in _strings(v)]
    assert not any(token in s or token[:40] in s for s in cells)
    assert any(redacted(token) in s for s in cells)  # the stand-in: a leaked token is found again


def _strings(v: Any) -> list[str]:
    """Every text inside a value (a cell, a list, a map as pairs, a parsed JSON document; a JSON
    string that holds JSON, as lookup-events' CloudTrailEvent, is read too)."""
    out: list[str] = []
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            out.append(x)
            if x[:1] == "{":
                try:
                    stack.append(json.loads(x))
                except ValueError:
                    pass
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
    return out
