"""Each audit quirk, one fixture each: what the analyst gets out of it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import zstandard

import k8sforensics as kf


def one(df: pd.DataFrame, **match) -> pd.Series:
    sel = df
    for k, v in match.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, f"expected one row for {match}, got {len(sel)}"
    return sel.iloc[0]


def test_stages_merged_into_one_row(audit_fixtures: Path) -> None:
    df = kf.read_audit(audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    assert len(df) == 2  # a1 (three stages) and a2 (an exact duplicate)
    a1 = one(df, audit_id="a1")
    assert a1.stage == "ResponseComplete"
    assert list(a1.stages) == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    assert a1.evidence_line == 3
    assert a1.time == pd.Timestamp("2024-05-01T10:00:00.123456Z")
    assert a1.stage_time == pd.Timestamp("2024-05-01T10:05:12.000001Z")  # the end of the exec session
    assert a1.response_code == 101 and a1.decision == "allow"
    assert "RoleBinding" in a1.authz_reason
    a2 = one(df, audit_id="a2")
    assert list(a2.stages) == ["ResponseComplete"] and a2.evidence_line == 4


def test_service_account_and_token_binding_parsed(audit_fixtures: Path) -> None:
    a1 = one(kf.read_audit(audit_fixtures / "k8s_audit__log_backend_stages.jsonl"), audit_id="a1")
    assert (a1.sa_namespace, a1.sa_name, a1.service_account) == ("shop", "frontend", "shop/frontend")
    assert a1.token_pod == "frontend-7d9c8b6f5-x2x9q"
    assert a1.token_pod_uid == "0f0e-11"
    assert a1.token_node == "node-1"
    assert a1.credential_id == "JTI=3b4c"
    assert a1.user_extra["authentication.kubernetes.io/pod-name"] == ["frontend-7d9c8b6f5-x2x9q"]


def test_exec_command_decoded_from_request_uri(audit_fixtures: Path) -> None:
    a1 = one(kf.read_audit(audit_fixtures / "k8s_audit__log_backend_stages.jsonl"), audit_id="a1")
    assert (a1.resource, a1.subresource, a1.object_namespace, a1.object_name) == ("pods", "exec", "shop", "cart-5c7b9")
    assert a1.pod == "cart-5c7b9" and a1.namespace == "shop"
    assert a1.exec_command == "sh -c curl -s http://169.254.169.254/latest/meta-data/"


def test_v1beta1_top_level_timestamp(audit_fixtures: Path) -> None:
    row = one(kf.read_audit(audit_fixtures / "k8s_audit__v1beta1_timestamp.jsonl"), audit_id="b1")
    assert row.time == pd.Timestamp("2018-10-25T13:58:49Z")
    assert row.api_group == "rbac.authorization.k8s.io"
    assert json.loads(row.request_object)["roleRef"]["name"] == "cluster-admin"


def test_events_without_kind_or_api_version(audit_fixtures: Path) -> None:
    df = kf.read_audit(audit_fixtures / "k8s_audit__no_kind_no_apiversion.jsonl")
    c1 = one(df, audit_id="c1")
    assert c1.time == pd.Timestamp("2024-05-02T01:02:03.4Z")  # only stageTimestamp given
    assert c1.source_ip == "203.0.113.9" and list(c1.source_ips) == ["203.0.113.9", "10.0.0.1"]
    c2 = one(df, audit_id="c2")
    assert c2.resource is None or pd.isna(c2.resource)  # a non-resource URL has no objectRef
    assert c2.user == "system:anonymous"


def test_webhook_eventlist_items_inherit_api_version(audit_fixtures: Path) -> None:
    df = kf.read_audit(audit_fixtures / "k8s_audit__webhook_eventlist.jsonl")
    assert sorted(df.audit_id) == ["d0", "d1", "d2"]
    # two items on line 1, one on line 2; event ids keep them apart
    assert sorted(df.evidence_line) == [1, 1, 2]
    assert df.event_id.is_unique


def test_pretty_printed_and_concatenated(audit_fixtures: Path) -> None:
    df = kf.read_audit(audit_fixtures / "k8s_audit__pretty_concatenated.json")
    assert list(df.audit_id) == ["e1", "e2"]
    e1 = df.iloc[0]
    assert e1.labels is None  # labels are context: enrichment fills them, not the audit loader
    assert json.loads(e1.request_object)["metadata"]["labels"] == {"app": "x"}
    assert json.loads(e1.request_object)["spec"]["hostPID"] is True


def test_json_array(audit_fixtures: Path) -> None:
    assert len(kf.read_audit(audit_fixtures / "k8s_audit__array_of_events.json")) == 3


def test_eks_filter_log_events(audit_fixtures: Path) -> None:
    df = kf.read_audit(audit_fixtures / "k8s_audit__eks_filter_log_events.json")
    assert len(df) == 2
    r = df.iloc[0]
    assert r.user == "kubernetes-admin"
    assert r.user_uid.startswith("aws-iam-authenticator:")
    assert r.user_extra["sessionName"] == ["alice"]


def test_eks_firehose_concatenated_subscription_payloads(audit_fixtures: Path) -> None:
    df = kf.read_audit(audit_fixtures / "k8s_audit__eks_firehose_concatenated.json")
    assert sorted(df.audit_id) == ["h1", "h2"]
    assert set(df.cluster) == {"prod-east"}  # from the log group /aws/eks/prod-east/cluster


def test_eks_subscription_gzip_file(audit_fixtures: Path, tmp_path: Path) -> None:
    # Firehose delivers the subscription payloads gzip-compressed
    p = tmp_path / "firehose-object"
    p.write_bytes(gzip.compress((audit_fixtures / "k8s_audit__eks_firehose_concatenated.json").read_bytes()))
    assert sorted(kf.read_audit(p).audit_id) == ["h1", "h2"]


def test_eks_lambda_awslogs_event(audit_fixtures: Path) -> None:
    r = one(kf.read_audit(audit_fixtures / "k8s_audit__eks_lambda_awslogs.json"), audit_id="i1")
    assert r.cluster == "prod-east" and r.verb == "patch"


def test_gke_logentries(audit_fixtures: Path) -> None:
    df = kf.read_audit(audit_fixtures / "gke_audit__logentries.jsonl")
    assert len(df) == 2  # exec + the merged first/last pair of op-2; the DeleteCluster entry is skipped
    ex = one(df, audit_id="op-1")
    assert (ex.verb, ex.resource, ex.subresource, ex.object_namespace, ex.object_name) == (
        "create",
        "pods",
        "exec",
        "web",
        "api-7f",
    )
    assert ex.user == "dev@example.com" and ex.source_ip == "203.0.113.20"
    assert ex.cluster == "gke-prod" and ex.decision == "allow"
    assert ex.request_uri == "/api/v1/namespaces/web/pods/api-7f/exec"
    assert ex.time == pd.Timestamp("2024-05-08T10:00:00.654321Z")
    cr = one(df, audit_id="op-2")
    assert list(cr.stages) == ["ResponseStarted", "ResponseComplete"]
    assert cr.response_code == 403  # google.rpc PERMISSION_DENIED
    assert cr.sa_namespace == "kube-system" and cr.sa_name == "replicaset-controller"
    assert json.loads(cr.request_object)["metadata"]["labels"] == {"app": "api"}


def test_gke_gcloud_array(audit_fixtures: Path) -> None:
    assert list(kf.read_audit(audit_fixtures / "gke_audit__gcloud_array.json").audit_id) == ["op-1"]


def test_aks_eventhub_body_with_bom(audit_fixtures: Path) -> None:
    df = kf.read_audit(audit_fixtures / "aks_audit__eventhub_bom.json")
    r = one(df, audit_id="j1")  # the kube-apiserver (non-audit) record is skipped, not a row
    assert r.cluster == "aks-prod"
    assert r.request_uri == "/api/v1/namespaces/default/pods/web-1"  # '\/' unescaped
    assert r.time == pd.Timestamp("2024-05-09T08:00:00.1234567Z")


def test_aks_blob_lines_with_log_object(audit_fixtures: Path) -> None:
    r = one(kf.read_audit(audit_fixtures / "aks_audit__blob_lines.json"), audit_id="j2")
    assert r.user == "aksService" and r.verb == "delete"


@pytest.mark.parametrize("compress", ["gz", "zst"])
def test_compressed_files(audit_fixtures: Path, tmp_path: Path, compress: str) -> None:
    raw = (audit_fixtures / "k8s_audit__log_backend_stages.jsonl").read_bytes()
    p = tmp_path / f"audit.log.{compress}"
    p.write_bytes(gzip.compress(raw) if compress == "gz" else zstandard.ZstdCompressor().compress(raw))
    assert sorted(kf.read_audit(p).audit_id) == ["a1", "a2"]


def test_folder_and_glob(audit_fixtures: Path) -> None:
    by_glob = kf.read_audit(str(audit_fixtures / "k8s_audit__eks_*.json"))
    assert sorted(by_glob.audit_id) == ["g0", "g1", "h1", "h2", "i1"]
    by_folder = kf.read_audit(audit_fixtures)
    assert {"a1", "b1", "c1", "op-1", "j1", "k1"} <= set(by_folder.audit_id)
    assert by_folder.audit_id.dropna().is_unique
