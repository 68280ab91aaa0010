"""Inventory: context tables from kubectl dumps, with the owner chain and RBAC flattened."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import k8sforensics as kf
from k8sforensics.context import Inventory

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "objects"


def inv() -> Inventory:
    return kf.read_inventory(FIX)


def test_pods_with_owner_chain_and_security_flags() -> None:
    pods = inv().pods.set_index("name")
    web = pods.loc["web-7d9c8b6f5-x2x9q"]
    assert (web.workload_kind, web.workload, web.owner_kind) == (
        "Deployment",
        "web",
        "ReplicaSet",
    )  # via the ReplicaSet object
    assert list(web.ips) == ["10.0.1.57"] and web.node == "node-1" and web.service_account == "web"
    assert list(web.container_ids) == ["aaaa0000111122223333444455556666777788889999aaaabbbbccccddddeeee"]
    assert web.created == pd.Timestamp("2024-04-30T08:00:00Z") and not web.privileged
    cart = pods.loc["cart-5c7b9-abcde"]
    assert (cart.workload_kind, cart.workload) == (
        "Deployment",
        "cart",
    )  # no ReplicaSet object: pod-template-hash naming
    assert cart.privileged and cart.host_pid and list(cart.host_paths) == ["/"]
    assert list(cart.capabilities_added) == ["NET_ADMIN", "SYS_ADMIN"] and cart.automount_token is False
    job = pods.loc["backup-28566720-t22qj"]
    assert (job.workload_kind, job.workload, job.host_network) == ("CronJob", "backup", True)  # Job → CronJob by naming


def test_objects_without_kind_are_inferred() -> None:
    pods = inv().pods
    assert {"web-7d9c8b6f5-zzzzz", "loose-pod"} <= set(pods.name)
    assert len(pods) == 5


def test_rbac_flattened_subject_role_rules() -> None:
    rbac = inv().rbac
    exec_rows = rbac[(rbac.binding == "web-exec") & (rbac.subject == "web")]
    assert len(exec_rows) == 2  # two rules of the bound ClusterRole
    assert {tuple(r) for r in exec_rows.resources} == {("pods/exec",), ("secrets",)}
    assert set(rbac[rbac.binding == "web-exec"].subject) == {"web", "alice"}
    pwn = rbac[rbac.binding == "pwn"].iloc[0]
    assert (pwn.role, pwn.subject_namespace, pwn.subject, pwn.role_found) == (
        "cluster-admin",
        "kube-system",
        "default",
        False,
    )


def test_other_context_tables() -> None:
    i = inv()
    assert list(i.services.type) == ["NodePort"] and i.services.iloc[0].selector == {"app": "web"}
    assert i.namespaces.iloc[0].labels["pod-security.kubernetes.io/enforce"] == "baseline"
    node = i.nodes.iloc[0]
    assert (
        list(node.internal_ips) == ["10.0.0.11"]
        and list(node.external_ips) == ["203.0.113.50"]
        and list(node.pod_cidrs) == ["10.0.1.0/24"]
    )
    assert list(i.service_accounts.secrets.iloc[0]) == ["web-token-abc"]
    assert list(i.network_policies.policy_types.iloc[0]) == ["Ingress", "Egress"]
    assert set(i.workloads.kind) == {"Deployment", "ReplicaSet"}


def test_secrets_keep_metadata_only(tmp_path: Path) -> None:
    case = kf.Case.create(tmp_path / "case")
    kf.ingest(case, FIX)
    secret = case.objects().query("kind == 'Secret'").iloc[0]
    obj = json.loads(secret.object)
    assert obj["data_keys"] == ["password"] and "data" not in obj
    assert "aHVudGVyMg" not in case.objects().to_csv()
    assert "managedFields" not in case.objects().query("kind == 'Pod'").iloc[0].object


def test_case_context_tables(tmp_path: Path) -> None:
    case = kf.Case.create(tmp_path / "case")
    kf.ingest(case, FIX)
    assert len(case.context("pods")) == 5 and len(case.context("rbac")) >= 4
    assert case.manifest["tables"]["objects"]["rows"] == len(case.objects())


def test_real_object_lists(real_samples: Path) -> None:
    i = kf.read_inventory(real_samples / "k8s-object-lists", on_bad_lines="skip")
    assert len(i.pods) == 18 + 36  # troubleshoot support bundles + OpenShift Insights pods (PROVENANCE.md)
    coredns = i.pods[i.pods.name.str.startswith("coredns-")].iloc[0]
    assert (coredns.workload_kind, coredns.workload) == ("Deployment", "coredns")
    assert len(coredns.container_ids[0]) == 64
    cron = i.pods[i.pods.name == "auditlog-retention-28566720-t22qj"].iloc[0]
    assert (cron.workload_kind, cron.workload) == ("CronJob", "auditlog-retention")
    assert len(i.nodes) == 3 and len(i.namespaces) == 8 and len(i.services) == 8
    kube_dns = i.endpoints[i.endpoints.service == "kube-dns"].iloc[0]
    assert (kube_dns.target_kind, kube_dns.address) == ("Pod", "10.42.0.6")
