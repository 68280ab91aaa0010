"""Credentials invalidated the way Kubernetes invalidates them (Kubernetes docs, "Managing
Service Accounts"): a stolen token dies with its pod or its service account, so an account the
attacker held is deleted and created again (a new UID); the tokens they requested are listed
with their expiry; legacy token Secrets are deleted; the cloud identities an account is bound
to are listed for revocation; and a compromised workload is redeployed pinned by digest."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.analysis import attack_scope
from k8sforensics.remediation import Remediation
from k8sforensics.remediation.actions import (
    TOKEN_REQUEST_COLUMNS,
    Facts,
    remediation_actions,
)

T0 = pd.Timestamp("2026-05-01T10:00:00Z")
NO_FINDINGS = pd.DataFrame(columns=["finding_id", "event_ids"])


def _edge(g: nx.MultiDiGraph, u: str, v: str, kind: str, minutes: int, events: list[str]) -> None:
    g.add_edge(
        u,
        v,
        key=kind,
        type=kind,
        observed=True,
        first_seen=T0 + pd.Timedelta(minutes=minutes),
        last_seen=T0 + pd.Timedelta(minutes=minutes),
        count=1,
        bytes=0,
        event_ids=events,
    )


def minted() -> nx.MultiDiGraph:
    """From outside, a pod; its token; a token requested for another account; that account used."""
    g = nx.MultiDiGraph()
    g.add_node("ip:203.0.113.9", kind="ip")
    g.add_node("pod:shop/web-1", kind="pod", workload="Deployment web")
    g.add_node("sa:shop/web", kind="sa")
    g.add_node("sa:ci/deployer", kind="sa")
    _edge(g, "ip:203.0.113.9", "pod:shop/web-1", "flow", 1, ["e-flow"])
    _edge(g, "pod:shop/web-1", "sa:shop/web", "token_steal", 2, ["e-steal"])
    _edge(g, "sa:shop/web", "sa:ci/deployer", "token_request", 3, ["e-mint"])
    return g


def test_a_minted_token_is_listed_with_its_expiry_and_the_account_recreated() -> None:
    requests = pd.DataFrame(
        [
            {
                "sa": "sa:ci/deployer",
                "time": T0 + pd.Timedelta(minutes=3),
                "expiration_seconds": 31_536_000,
                "expires": T0 + pd.Timedelta(minutes=3, days=365),
                "bound_kind": None,
                "bound_name": None,
                "actor": "system:serviceaccount:shop:web",
                "event_id": "e-mint",
            }
        ],
        columns=TOKEN_REQUEST_COLUMNS,
    )
    facts = Facts(
        uids={("serviceaccounts", "ci", "deployer"): "uid-old"},
        token_requests=requests,
        legacy_tokens={"sa:ci/deployer": ["deployer-token-x7"]},
        cloud_identities={"sa:ci/deployer": [("AWS", "arn:aws:iam::111122223333:role/ci-deployer")]},
    )
    g = minted()
    a = remediation_actions(NO_FINDINGS, g, scope=attack_scope(g, sources=["ip:203.0.113.9"]), facts=facts)
    mint = a[(a["target"] == "sa:ci/deployer") & a["action"].str.contains("minted")].iloc[0]
    assert (
        "for 31536000 s, valid until 2027-05-01 10:03:00" in mint["action"]
        and "bound to the account only" in mint["action"]
    )
    assert mint["phase"] == "invalidate credentials" and mint["kind"] == "rotate"
    assert mint[
        "command"
    ] == "kubectl -n ci delete serviceaccount deployer && kubectl -n ci create serviceaccount deployer" or (
        mint["command"] == "" and "recreation of the account above" in mint["action"]
    )
    assert mint["check"] == {
        "expect": "replaced",
        "resource": "serviceaccounts",
        "namespace": "ci",
        "name": "deployer",
        "uid": "uid-old",
        "since": None,
    }
    legacy = a[a["target"] == "secret:ci/deployer-token-x7"].iloc[0]
    assert legacy["kind"] == "delete" and "never expires" in legacy["action"]
    assert legacy["command"] == "kubectl -n ci delete secret deployer-token-x7 --ignore-not-found"
    cloud = a[a["target"] == "cloud:arn:aws:iam::111122223333:role/ci-deployer"].iloc[0]
    assert (
        cloud["kind"] == "revoke"
        and "Revoke active sessions" in cloud["action"]
        and cloud["check"]["expect"] == "manual"
    )
    # the account whose token was stolen from a pod is rotated too, and said how long such a token lives
    web = a[(a["target"] == "sa:shop/web") & (a["kind"] == "rotate")].iloc[0]
    assert "new UID" in web["action"] and "up to a year" in web["action"]


def test_a_token_bound_to_a_pod_says_deleting_the_pod_revokes_it() -> None:
    requests = pd.DataFrame(
        [
            {
                "sa": "sa:ci/deployer",
                "time": T0,
                "expiration_seconds": 600,
                "expires": T0 + pd.Timedelta(minutes=10),
                "bound_kind": "Pod",
                "bound_name": "runner-1",
                "actor": "x",
                "event_id": "e-mint",
            }
        ],
        columns=TOKEN_REQUEST_COLUMNS,
    )
    g = minted()
    a = remediation_actions(
        NO_FINDINGS, g, scope=attack_scope(g, sources=["ip:203.0.113.9"]), facts=Facts(token_requests=requests)
    )
    assert a["action"].str.contains("bound to Pod runner-1 (deleting that object also revokes it)", regex=False).any()


def test_redeploy_pins_the_last_known_good_digest_with_a_server_dry_run() -> None:
    digest = "registry.corp/shop/web@sha256:" + "a" * 64
    facts = Facts(
        digests={
            ("shop", "Deployment/web"): {
                "web": digest,
                "bad;name": digest,
                "sidecar": "evil.example/x:latest; rm -rf /",
            }
        }
    )
    g = minted()
    a = remediation_actions(NO_FINDINGS, g, scope=attack_scope(g, sources=["ip:203.0.113.9"]), facts=facts)
    row = a[a["target"] == "workload:shop/Deployment/web"].iloc[0]
    assert row["phase"] == "recover" and row["kind"] == "redeploy" and "pinned by digest" in row["action"]
    assert row["command"] == (
        f"kubectl -n shop set image deployment/web web={digest} --dry-run=server && "
        f"kubectl -n shop set image deployment/web web={digest}"
    )  # never a name or image that is not one
    assert row["check"]["expect"] == "pinned" and row["check"]["pods"] == [{"name": "web-1", "uid": None}]


def _list(kind: str, items: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": f"{kind}List", "items": items}


def test_the_plan_reads_tokens_identities_and_digests_from_the_inventory(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "deployer",
            "namespace": "ci",
            "uid": "sa-uid-1",
            "creationTimestamp": "2026-04-01T00:00:00Z",
            "annotations": {
                "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/ci-deployer",
                "iam.gke.io/gcp-service-account": "deployer@proj.iam.gserviceaccount.com",
            },
        },
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": "deployer-token-x7",
            "namespace": "ci",
            "uid": "sec-uid-1",
            "creationTimestamp": "2026-04-01T00:00:00Z",
            "annotations": {"kubernetes.io/service-account.name": "deployer"},
        },
        "data": {"token": "ZXlKaGJHY2lPaUpTVXpJMU5pSjk="},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-5d9c-abcde",
            "namespace": "shop",
            "uid": "pod-uid-1",
            "creationTimestamp": "2026-04-01T00:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "5d9c"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d9c", "controller": True, "uid": "rs-1"}],
        },
        "spec": {
            "nodeName": "n1",
            "serviceAccountName": "web",
            "containers": [{"name": "web", "image": "registry.corp/shop/web:1.8.2"}],
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.1.5",
            "containerStatuses": [
                {
                    "name": "web",
                    "image": "registry.corp/shop/web:1.8.2",
                    "imageID": "registry.corp/shop/web@sha256:" + "b" * 64,
                }
            ],
        },
    }
    (ev / "serviceaccounts.json").write_text(json.dumps(_list("ServiceAccount", [sa])))
    (ev / "secrets.json").write_text(json.dumps(_list("Secret", [secret])))
    (ev / "pods.json").write_text(json.dumps(_list("Pod", [pod])))
    case = kf.Case.create(tmp_path / "case")
    kf.ingest(case, ev, progress=False)
    facts = Remediation(case).facts()
    assert (
        facts.uids[("serviceaccounts", "ci", "deployer")] == "sa-uid-1"
        and facts.uids[("pods", "shop", "web-5d9c-abcde")] == "pod-uid-1"
    )
    assert facts.legacy_tokens == {"sa:ci/deployer": ["deployer-token-x7"]}
    assert facts.cloud_identities["sa:ci/deployer"] == [
        ("AWS", "arn:aws:iam::111122223333:role/ci-deployer"),
        ("GCP", "deployer@proj.iam.gserviceaccount.com"),
    ]
    assert facts.digests == {("shop", "Deployment/web"): {"web": "registry.corp/shop/web@sha256:" + "b" * 64}}


@pytest.mark.parametrize(
    "kind,resource",
    [
        ("Deployment", "deployments"),
        ("NetworkPolicy", "networkpolicies"),
        ("Ingress", "ingresses"),
        ("Endpoints", "endpoints"),
        ("ClusterRoleBinding", "clusterrolebindings"),
        ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations"),
    ],
)
def test_resource_of_a_kind(kind: str, resource: str) -> None:
    from k8sforensics.analysis.possible import resource_of

    assert resource_of(kind) == resource
