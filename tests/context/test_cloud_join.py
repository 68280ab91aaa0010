"""The join from cloud calls back to the pod or node: sessions (IRSA, Pod Identity, instance
role, GKE delegation) tied to the Kubernetes identity and, by address and time, to the pod or
node; later calls with the session's key inherit it; nothing is guessed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

import k8sforensics as kf
from k8sforensics.context import fold_pods
from k8sforensics.context.cloud import ATTRIBUTED_BY, USED_FROM, attribute_cloud, cloud_sessions
from k8sforensics.frames import to_frame
from k8sforensics.schema import CLOUD
from k8sforensics.sources._arrow import rows_to_batch

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "cloud_context"
ACCT = "111122223333"
UPLOADER_ROLE = f"arn:aws:iam::{ACCT}:role/shop-uploader"
UPLOADER = "uploader-7d9f8c6b5-abcde"
REPORTER = "reporter-5c6d7e8f9-fghij"
WEB = "web-6b7c8d9e0-klmno"


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    base = {
        "source": "aws-cloudtrail",
        "provider": "aws",
        "account": ACCT,
        "region": "us-west-2",
        "evidence_id": "e" * 64,
    }
    full = [base | {"event_id": f"{'e' * 16}:{i + 1}", "evidence_line": i + 1} | r for i, r in enumerate(rows)]
    return to_frame(pa.Table.from_batches([rows_to_batch(full, CLOUD)]))


def web_identity(t: str, ns: str, sa: str, ip: str, key: str, role: str = "shop-uploader") -> dict[str, Any]:
    sub = f"system:serviceaccount:{ns}:{sa}"
    return {
        "time": t,
        "service": "sts.amazonaws.com",
        "action": "AssumeRoleWithWebIdentity",
        "principal_type": "WebIdentityUser",
        "principal": f"arn:aws:iam::{ACCT}:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/X:sts.amazonaws.com:{sub}",
        "web_identity": sub,
        "k8s_user": sub,
        "namespace": ns,
        "service_account": f"{ns}/{sa}",
        "source_ip": ip,
        "issued_key_id": key,
        "request_parameters": json.dumps({"roleArn": f"arn:aws:iam::{ACCT}:role/{role}", "roleSessionName": "s"}),
        "resource": f"arn:aws:iam::{ACCT}:role/{role}",
    }


def call(
    t: str,
    key: str,
    ip: str,
    *,
    role: str = "shop-uploader",
    session: str = "botocore-session-1",
    action: str = "GetObject",
) -> dict[str, Any]:
    return {
        "time": t,
        "service": "s3.amazonaws.com",
        "action": action,
        "principal_type": "AssumedRole",
        "principal": f"arn:aws:sts::{ACCT}:assumed-role/{role}/{session}",
        "session_name": session,
        "session_issuer": f"arn:aws:iam::{ACCT}:role/{role}",
        "access_key_id": key,
        "source_ip": ip,
    }


@pytest.fixture(scope="module")
def eks() -> dict[str, Any]:
    inv = kf.read_inventory(FIX / "kubectl__eks_irsa_pod_identity_nodes.json")
    pod_ips, _, _ = fold_pods(inv.pods)
    return {"bindings": inv.cloud_bindings, "pod_ips": pod_ips, "nodes": inv.nodes, "pods": inv.pods}


def joined(cloud: pd.DataFrame, ctx: dict[str, Any], **options: Any) -> pd.DataFrame:
    out = cloud_sessions(cloud, **ctx, **options)
    assert len(out) == len(cloud) and list(out.index) == list(cloud.index)
    assert set(out.attributed_by.dropna()) <= set(ATTRIBUTED_BY) and set(out.used_from) <= set(USED_FROM)
    return out


def test_irsa_session_then_s3_calls_with_its_key_go_to_the_pod(eks: dict[str, Any]) -> None:
    cloud = frame(
        web_identity("2026-03-10T09:30:00Z", "shop", "uploader", "10.0.1.57", "ASIAIRSAUPLOADER0001"),
        call("2026-03-10T09:31:00Z", "ASIAIRSAUPLOADER0001", "10.0.1.57"),
        call("2026-03-10T09:40:00Z", "ASIAIRSAUPLOADER0001", "203.0.113.50", action="PutObject"),
    )
    out = joined(cloud, eks)
    assert (out.pod == UPLOADER).all() and (out.namespace == "shop").all() and (out.node == "node-a").all()
    assert (out.workload_kind == "Deployment").all() and (out.workload == "uploader").all()
    assert (out.service_account == "shop/uploader").all()
    assert (out.session_key == "ASIAIRSAUPLOADER0001").all() and (out.bound_identity == UPLOADER_ROLE).all()
    assert list(out.attributed_by) == ["irsa-subject", "access-key", "access-key"]
    # the same key from an address outside the cluster: the session's credentials left the pod
    assert list(out.used_from) == ["pod", "pod", "outside"]
    assert cloud.pod.isna().all()  # the caller's frame is not changed


def test_pod_identity_session_named_by_its_tags(eks: dict[str, Any]) -> None:
    tags = [
        {"key": "eks-cluster-name", "value": "prod"},
        {"key": "kubernetes-namespace", "value": "ns-a"},
        {"key": "kubernetes-service-account", "value": "sa1"},
        {"key": "kubernetes-pod-name", "value": "app1"},
        {"key": "kubernetes-pod-uid", "value": "0cda7f85-c1f9-4dee-b6e9-a0b50c8f3012"},
    ]
    role = "arn:aws:iam::823571991546:role/eks-pod-s3-read-access-role"
    issue = {
        "time": "2026-03-10T09:20:00Z",
        "service": "sts.amazonaws.com",
        "action": "AssumeRole",
        "principal_type": "AWSService",
        "principal": "pods.eks.amazonaws.com",
        "source_ip": "pods.eks.amazonaws.com",  # the service's name, not an address
        "cluster": "prod",
        "namespace": "ns-a",
        "pod": "app1",
        "service_account": "ns-a/sa1",
        "issued_key_id": "ASIAPODIDENTITY00003",
        "request_parameters": json.dumps({"roleArn": role, "roleSessionName": "eks-prod-app1-x", "tags": tags}),
        "resources": [role],
    }
    session = "eks-prod-app1-x"
    cloud = frame(
        issue,
        call(
            "2026-03-10T09:25:00Z",
            "ASIAPODIDENTITY00003",
            "10.0.2.31",
            role="eks-pod-s3-read-access-role",
            session=session,
        ),
        call(
            "2026-03-10T09:26:00Z",
            "ASIAPODIDENTITY00003",
            "44.1.2.3",
            role="eks-pod-s3-read-access-role",
            session=session,
        ),
    )
    out = joined(cloud, eks, nat_ips=["44.1.2.3"])
    assert (out.pod == "app1").all() and (out.namespace == "ns-a").all() and (out.service_account == "ns-a/sa1").all()
    assert (out.node == "node-b").all()  # from the pods table, by the uid tag
    assert (out.bound_identity == role).all() and (out.session_key == "ASIAPODIDENTITY00003").all()
    assert list(out.attributed_by) == ["pod-identity-tags", "access-key", "access-key"]
    # the issuing record's address is the service's name; a NAT address could be any machine behind it
    assert list(out.used_from) == ["unknown", "pod", "unknown"]


def test_instance_role_session_used_from_its_node_a_pod_and_outside(eks: dict[str, Any]) -> None:
    node_session = {"role": "node-role", "session": "i-0abc1234def567890", "action": "DescribeInstances"}
    cloud = frame(
        call("2026-03-10T09:50:00Z", "ASIANODEA00000000004", "10.0.1.10", **node_session),
        call("2026-03-10T09:51:00Z", "ASIANODEA00000000004", "10.0.1.80", **node_session),
        call("2026-03-10T09:52:00Z", "ASIANODEA00000000004", "198.51.100.7", **node_session),
        call("2026-03-10T09:53:00Z", "ASIANODEA00000000004", "10.0.2.20", **node_session),  # node-b's address
    )
    out = joined(cloud, eks)
    assert (out.node == "node-a").all() and (out.attributed_by == "instance-id").all()
    assert (out.bound_identity == "i-0abc1234def567890").all() and (out.session_key == "ASIANODEA00000000004").all()
    # metadata-credential theft: the node's credentials used from a pod's address, from outside,
    # from another node
    assert list(out.used_from) == ["node", "pod", "outside", "outside"]
    assert list(out.pod) == [None, WEB, None, None] and out.service_account.isna().all()
    assert out.loc[1, "workload"] == "web"


def test_instance_session_of_a_node_the_inventory_does_not_have(eks: dict[str, Any]) -> None:
    other = {"role": "node-role", "session": "i-0123456789abcdef0", "action": "DescribeInstances"}
    cloud = frame(
        call("2026-03-10T09:50:00Z", "ASIAOTHERNODE000009", "10.0.1.10", **other),
        call("2026-03-10T09:51:00Z", "ASIAOTHERNODE000009", "198.51.100.7", **other),
        call("2026-03-10T09:52:00Z", "ASIAOTHERNODE000009", "10.0.1.80", **other),
    )
    out = joined(cloud, eks)
    assert out.node.isna().all() and (out.attributed_by == "instance-id").all()
    # neither a node's address nor a public one says whether it is the instance's own; a pod's does
    assert list(out.used_from) == ["unknown", "unknown", "pod"]


def test_a_key_never_issued_in_the_evidence_stays_unknown(eks: dict[str, Any]) -> None:
    cloud = frame(call("2026-03-10T09:53:00Z", "ASIANEVERISSUED00005", "203.0.113.9", role="other", session="someone"))
    out = joined(cloud, eks)
    row = out.iloc[0]
    for col in ("namespace", "pod", "node", "workload_kind", "workload", "service_account", "session_key"):
        assert row[col] is None, col
    assert row.attributed_by is None and row.bound_identity is None and row.used_from == "unknown"


def test_the_reused_pod_address_goes_to_the_pod_that_held_it_then(eks: dict[str, Any]) -> None:
    # 10.0.1.57 was the uploader's until 10:00, the reporter's from 10:05
    cloud = frame(
        web_identity("2026-03-10T09:30:00Z", "shop", "uploader", "10.0.1.57", "ASIAIRSAUPLOADER0001"),
        web_identity("2026-03-10T10:10:00Z", "shop", "reporter", "10.0.1.57", "ASIAIRSAREPORTER0002", "shop-reporter"),
        call("2026-03-10T10:11:00Z", "ASIAIRSAREPORTER0002", "10.0.1.57", role="shop-reporter"),
        # a key the evidence never issued, from the same address: the address alone, at the call's time
        call("2026-03-10T09:45:00Z", "ASIAUNKNOWN00000007", "10.0.1.57", role="x", session="y"),
        call("2026-03-10T10:20:00Z", "ASIAUNKNOWN00000007", "10.0.1.57", role="x", session="y"),
        # after the uploader is gone and before the reporter came: nobody held it
        call("2026-03-10T10:02:00Z", "ASIAUNKNOWN00000007", "10.0.1.57", role="x", session="y"),
    )
    out = joined(cloud, eks)
    assert list(out.pod) == [UPLOADER, REPORTER, REPORTER, UPLOADER, REPORTER, None]
    assert list(out.service_account) == ["shop/uploader", "shop/reporter", "shop/reporter", None, None, None]
    assert list(out.attributed_by) == ["irsa-subject", "irsa-subject", "access-key", "source-ip", "source-ip", None]
    assert out.session_key.iloc[3:].isna().all()  # an address is not a session


def test_a_chained_session_is_held_by_the_pod_that_held_its_parent(eks: dict[str, Any]) -> None:
    target = f"arn:aws:iam::{ACCT}:role/data-admin"
    chained = call("2026-03-10T09:32:00Z", "ASIAIRSAUPLOADER0001", "10.0.1.57", action="AssumeRole") | {
        "service": "sts.amazonaws.com",
        "issued_key_id": "ASIACHAINED00000008",
        "request_parameters": json.dumps({"roleArn": target, "roleSessionName": "pivot"}),
    }
    cloud = frame(
        call("2026-03-10T09:33:00Z", "ASIACHAINED00000008", "203.0.113.50", role="data-admin", session="pivot"),
        chained,  # out of time order in the frame: the join orders the issuing records itself
        web_identity("2026-03-10T09:30:00Z", "shop", "uploader", "10.0.1.57", "ASIAIRSAUPLOADER0001"),
    )
    out = joined(cloud, eks)
    assert (out.pod == UPLOADER).all() and (out.service_account == "shop/uploader").all()
    assert list(out.session_key) == ["ASIACHAINED00000008", "ASIACHAINED00000008", "ASIAIRSAUPLOADER0001"]
    assert list(out.bound_identity) == [target, target, UPLOADER_ROLE]
    assert list(out.attributed_by) == ["access-key", "access-key", "irsa-subject"]
    assert list(out.used_from) == ["outside", "pod", "pod"]


def test_a_denied_irsa_exchange_is_still_the_service_accounts(eks: dict[str, Any]) -> None:
    denied = web_identity("2026-03-10T09:30:00Z", "shop", "uploader", "10.0.1.57", "") | {
        "issued_key_id": None,
        "outcome": "failure",
        "error_code": "AccessDenied",
    }
    out = joined(frame(denied), eks)
    assert (out.pod.iloc[0], out.service_account.iloc[0], out.attributed_by.iloc[0]) == (
        UPLOADER,
        "shop/uploader",
        "irsa-subject",
    )
    assert out.session_key.iloc[0] is None and out.used_from.iloc[0] == "pod"


def test_an_irsa_token_used_from_another_pod_names_that_pod() -> None:
    # the subject is the identity; the pod is whoever held the address: a stolen token shows
    inv = kf.read_inventory(FIX / "kubectl__eks_irsa_pod_identity_nodes.json")
    pod_ips, _, _ = fold_pods(inv.pods)
    cloud = frame(web_identity("2026-03-10T09:30:00Z", "shop", "uploader", "10.0.1.80", "ASIASTOLEN000000010"))
    out = cloud_sessions(cloud, bindings=inv.cloud_bindings, pod_ips=pod_ips, nodes=inv.nodes, pods=inv.pods)
    assert (out.pod.iloc[0], out.service_account.iloc[0], out.used_from.iloc[0]) == (WEB, "shop/uploader", "pod")


def test_gke_token_mint_and_the_calls_made_with_it() -> None:
    inv = kf.read_inventory(FIX / "kubectl__gke_workload_identity.json")
    pod_ips, _, _ = fold_pods(inv.pods)
    gsa = "bq-reader@proj-a.iam.gserviceaccount.com"
    ksa = "serviceAccount:proj-a.svc.id.goog[analytics/bq-reader]"
    gcp = {"source": "gcp-cloud-audit", "provider": "gcp", "account": "proj-a", "namespace": "analytics"}
    ident = {"service_account": "analytics/bq-reader", "k8s_user": "system:serviceaccount:analytics:bq-reader"}
    cloud = frame(
        gcp
        | ident
        | {
            "time": "2026-03-10T09:30:00Z",
            "service": "iamcredentials.googleapis.com",
            "action": "GenerateAccessToken",
            "principal": ksa,
            "principal_id": ksa,
            "web_identity": ksa,
            "source_ip": "10.128.0.5",  # the metadata server runs on the node
            "user_agent": "google-api-go-client/0.5 gke-metadata-server",
            "resource": f"projects/-/serviceAccounts/{gsa}",
        },
        gcp
        | ident
        | {
            "time": "2026-03-10T09:31:00Z",
            "service": "storage.googleapis.com",
            "action": "storage.objects.get",
            "principal": gsa,
            "principal_type": "serviceAccount",
            "delegation_chain": [ksa],
            "source_ip": "10.8.0.12",
        },
        gcp
        | {
            "time": "2026-03-10T09:32:00Z",
            "namespace": None,
            "service": "storage.googleapis.com",
            "action": "storage.objects.get",
            "principal": "admin@example.com",
            "source_ip": "gce-internal-ip",
        },
    )
    out = cloud_sessions(cloud, bindings=inv.cloud_bindings, pod_ips=pod_ips, nodes=inv.nodes, pods=inv.pods)
    assert list(out.attributed_by) == ["gke-delegation", "gke-delegation", None]
    assert list(out.bound_identity) == [gsa, gsa, None]
    assert list(out.node) == ["gke-prod-pool-1-abcd", "gke-prod-pool-1-abcd", None]
    assert list(out.pod) == [None, "report-job-xyz", None]
    assert list(out.used_from) == ["node", "pod", "unknown"]
    assert list(out.service_account) == ["analytics/bq-reader", "analytics/bq-reader", None]


def test_an_empty_frame_and_no_context() -> None:
    empty = cloud_sessions(to_frame(CLOUD.arrow_schema.empty_table()))
    assert {"session_key", "bound_identity", "used_from", "attributed_by"} <= set(empty.columns) and not len(empty)
    # no context at all: sessions still tie to identities, addresses to nothing
    out = cloud_sessions(
        frame(
            web_identity("2026-03-10T09:30:00Z", "shop", "uploader", "10.0.1.57", "ASIAIRSAUPLOADER0001"),
            call("2026-03-10T09:31:00Z", "ASIAIRSAUPLOADER0001", "10.0.1.57"),
        )
    )
    assert list(out.service_account) == ["shop/uploader", "shop/uploader"] and out.pod.isna().all()
    assert list(out.used_from) == ["unknown", "unknown"]


# --------------------------------------------------------------------------- through a case


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> kf.Case:
    c = kf.Case.create(tmp_path_factory.mktemp("cloud") / "case", cluster="prod")
    kf.ingest(c, [FIX / "kubectl__eks_irsa_pod_identity_nodes.json", FIX / "aws_cloudtrail__eks_sessions.json"])
    return c


def test_the_case_holds_the_bindings(case: kf.Case) -> None:
    b = case.context("cloud_bindings")
    assert sorted(b.kind) == ["irsa", "irsa", "node-instance", "node-instance"] and (b.cluster == "prod").all()


def test_attribute_cloud_answers_for_a_key_as_attribute_does_for_an_ip(case: kf.Case) -> None:
    irsa = attribute_cloud(case, "ASIAIRSAUPLOADER0001")
    assert irsa is not None
    assert {
        k: irsa[k] for k in ("kind", "namespace", "pod", "workload", "node", "service_account", "attributed_by")
    } == {
        "kind": "pod",
        "namespace": "shop",
        "pod": UPLOADER,
        "workload": "uploader",
        "node": "node-a",
        "service_account": "shop/uploader",
        "attributed_by": "irsa-subject",
    }
    assert irsa["bound_identity"] == UPLOADER_ROLE and irsa["calls"] == 3 and irsa["used_from"] == ["outside", "pod"]
    assert irsa["first_seen"] == pd.Timestamp("2026-03-10T09:30:00Z")
    # at a time: that call's address only
    assert attribute_cloud(case, "ASIAIRSAUPLOADER0001", at="2026-03-10T09:35:00Z")["used_from"] == ["pod"]

    node = attribute_cloud(case, "i-0abc1234def567890", at="2026-03-10T09:52:30Z")
    assert node is not None and (node["kind"], node["node"], node["used_from"]) == ("node", "node-a", ["outside"])
    assert node["attributed_by"] == "instance-id"

    unknown = attribute_cloud(case, "ASIANEVERISSUED00005")
    assert unknown is not None and unknown["kind"] == "unknown" and unknown["pod"] is None
    assert unknown["node"] is None and unknown["attributed_by"] is None
    assert attribute_cloud(case, "ASIANOTINEVIDENCE999") is None


def test_kf_attribute_takes_a_key_as_it_takes_an_ip(case: kf.Case) -> None:
    assert kf.attribute(case, key="ASIAIRSAUPLOADER0001") == attribute_cloud(case, "ASIAIRSAUPLOADER0001")
    at = "2026-03-10T09:52:30Z"
    assert kf.attribute(case, key="i-0abc1234def567890", time=at) == attribute_cloud(case, "i-0abc1234def567890", at=at)
    assert len(case.cloud()) == 7 and case.cloud()["time"].is_monotonic_increasing


def test_no_issued_credential_reaches_the_case(case: kf.Case) -> None:
    text = case.sql("SELECT * FROM cloud").astype(str).to_string()
    assert "wJalrXUtnFEMI" not in text and "FwoGZXIvYXdzEXAMPLETOKEN" not in text
    assert "ASIAIRSAUPLOADER0001" in text  # a key id is an identifier, kept
