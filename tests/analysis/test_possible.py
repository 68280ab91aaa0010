"""Possible edges from RBAC and pod specs, each rule of derivation on a tiny inventory built
from Kubernetes objects."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pytest

from k8sforensics.analysis import possible_edges
from k8sforensics.context import Inventory
from k8sforensics.detect import Evidence
from k8sforensics.detect.audit_rules import sensitive_host_paths
from k8sforensics.detect.facts import is_sensitive_host_path
from tests.event_frames import audit, frame


def pod(
    ns: str,
    name: str,
    *,
    node: str = "node-1",
    sa: str | None = "app",
    automount: bool | None = None,
    privileged: bool = False,
    host_pid: bool = False,
    host_paths: tuple[str, ...] = (),
    caps: tuple[str, ...] = (),
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": node,
        "containers": [
            {
                "name": "c",
                "image": "registry.corp/app:1",
                "securityContext": {"privileged": privileged, "capabilities": {"add": list(caps)}},
            }
        ],
        "hostPID": host_pid,
        "volumes": [{"name": f"v{i}", "hostPath": {"path": p}} for i, p in enumerate(host_paths)],
    }
    if sa:
        spec["serviceAccountName"] = sa
    if automount is not None:
        spec["automountServiceAccountToken"] = automount
    return {
        "kind": "Pod",
        "metadata": {"namespace": ns, "name": name, "uid": f"uid-{ns}-{name}"},
        "spec": spec,
        "status": {"phase": "Running", "podIP": "10.244.1.9"},
    }


def role(kind: str, name: str, rules: list[dict[str, Any]], ns: str | None = None) -> dict[str, Any]:
    md = {"name": name, **({"namespace": ns} if ns else {})}
    return {"kind": kind, "metadata": md, "rules": rules}


def binding(
    kind: str, name: str, role_kind: str, role_name: str, subjects: list[dict[str, Any]], ns: str | None = None
) -> dict[str, Any]:
    md = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "kind": kind,
        "metadata": md,
        "roleRef": {"kind": role_kind, "name": role_name, "apiGroup": "rbac.authorization.k8s.io"},
        "subjects": subjects,
    }


def sa(ns: str, name: str) -> dict[str, Any]:
    return {"kind": "ServiceAccount", "namespace": ns, "name": name}


def edges(*objects: dict[str, Any], audit_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    rows = pd.DataFrame(
        {
            "cluster": "c",
            "kind": [o["kind"] for o in objects],
            "object": [orjson.dumps(o).decode() for o in objects],
            "evidence_id": "inv",
        }
    )
    inventory = Inventory.from_objects(rows)
    return possible_edges(Evidence(context=inventory.tables, audit=audit_rows))


def triples(e: pd.DataFrame, kind: str | None = None) -> set[tuple[str, str, str]]:
    e = e if kind is None else e[e["type"] == kind]
    return set(zip(e["source"], e["target"], e["type"]))


PODS = [pod("shop", "web"), pod("pay", "api"), pod("pay", "worker")]


def test_a_rolebinding_reaches_only_its_namespace_and_named_resources() -> None:
    e = edges(
        *PODS,
        role(
            "Role",
            "debug",
            [
                {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["db"]},
            ],
            ns="pay",
        ),
        binding("RoleBinding", "debug", "Role", "debug", [sa("shop", "app")], ns="pay"),
    )
    assert triples(e, "exec") == {("sa:shop/app", "pod:pay/api", "exec"), ("sa:shop/app", "pod:pay/worker", "exec")}
    assert triples(e, "read_secret") == {("sa:shop/app", "secret:pay/db", "read_secret")}
    row = e[e["type"] == "exec"].iloc[0]
    assert row["basis"] == "RoleBinding pay/debug" and "pods/exec" in row["reason"] and row["cuttable"]
    assert not triples(e, "create_pod") and not triples(e, "bind_role")


def test_cluster_admin_not_in_the_dump_uses_its_known_rules() -> None:
    e = edges(
        *PODS,
        binding("ClusterRoleBinding", "ops", "ClusterRole", "cluster-admin", [{"kind": "User", "name": "mallory"}]),
    )
    assert {("user:mallory", f"pod:{p}", "exec") for p in ("shop/web", "pay/api", "pay/worker")} <= triples(e)
    assert ("user:mallory", "node:node-1", "node_proxy") in triples(e)
    assert ("user:mallory", "node:node-1", "create_pod") in triples(e)
    assert ("user:mallory", "role:*", "bind_role") in triples(e)
    assert ("user:mallory", "secret:*/*", "read_secret") in triples(e)
    assert {
        ("user:mallory", "sa:pay/app", "impersonate"),
        ("user:mallory", "sa:pay/app", "token_request"),
        ("user:mallory", "user:*", "impersonate"),
        ("user:mallory", "pod:pay/api", "patch"),
    } <= triples(e)


def test_binding_creation_escalates_only_with_bind_or_escalate() -> None:
    create_only = [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"], "verbs": ["create"]}
    ]
    e = edges(
        role("ClusterRole", "binder", create_only),
        binding("ClusterRoleBinding", "b", "ClusterRole", "binder", [sa("ops", "ci")]),
    )
    assert not triples(e, "bind_role")
    with_bind = create_only + [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"]}
    ]
    e = edges(
        role("ClusterRole", "binder", with_bind),
        binding("ClusterRoleBinding", "b", "ClusterRole", "binder", [sa("ops", "ci")]),
    )
    assert triples(e, "bind_role") == {("sa:ops/ci", "role:*", "bind_role")}


def test_pod_creation_reaches_the_namespace_accounts_and_nodes_unless_pod_security_enforces() -> None:
    create = role(
        "Role", "deployer", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]}], ns="pay"
    )
    pods = [pod("pay", "api", sa="api"), pod("pay", "worker", sa="worker", node="node-2")]
    e = edges(*pods, create, binding("RoleBinding", "d", "Role", "deployer", [sa("ci", "bot")], ns="pay"))
    assert triples(e, "create_workload") == {
        ("sa:ci/bot", t, "create_workload") for t in ("sa:pay/api", "sa:pay/worker", "node:node-1", "node:node-2")
    }
    restricted = {
        "kind": "Namespace",
        "metadata": {"name": "pay", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    e = edges(*pods, restricted, create, binding("RoleBinding", "d", "Role", "deployer", [sa("ci", "bot")], ns="pay"))
    assert triples(e, "create_workload") == {
        ("sa:ci/bot", "sa:pay/api", "create_workload"),
        ("sa:ci/bot", "sa:pay/worker", "create_workload"),
    }


def test_token_mounts_follow_the_pod_then_the_service_account() -> None:
    no_auto = {
        "kind": "ServiceAccount",
        "metadata": {"namespace": "shop", "name": "quiet"},
        "automountServiceAccountToken": False,
    }
    e = edges(
        pod("shop", "a", sa="app"),
        pod("shop", "b", sa="app", automount=False),
        pod("shop", "c", sa="quiet"),
        pod("shop", "d", sa="quiet", automount=True),
        pod("shop", "e", sa=None),
        no_auto,
    )
    assert triples(e, "token_steal") == {
        ("pod:shop/a", "sa:shop/app", "token_steal"),
        ("pod:shop/d", "sa:shop/quiet", "token_steal"),
        ("pod:shop/e", "sa:shop/default", "token_steal"),
    }
    assert "automountServiceAccountToken" in e[e["type"] == "token_steal"]["fix"].iloc[0]


def test_host_escape_needs_host_access_and_names_it() -> None:
    e = edges(
        pod("k", "priv", privileged=True),
        pod("k", "pid", host_pid=True),
        pod("k", "logs", host_paths=("/var/log",)),
        pod("k", "sock", host_paths=("/run/containerd/containerd.sock",)),
        pod("k", "cap", caps=("SYS_ADMIN",)),
        pod("k", "data", host_paths=("/data/cache", "/opt/app")),
        pod("k", "plain"),
    )
    escapes = e[e["type"] == "host_escape"].set_index("source")
    assert set(escapes.index) == {"pod:k/priv", "pod:k/pid", "pod:k/logs", "pod:k/sock", "pod:k/cap"}
    assert (
        "hostPath /var/log" in escapes.loc["pod:k/logs", "reason"]
        and escapes.loc["pod:k/priv", "target"] == "node:node-1"
    )
    hosts = triples(e, "hosts")
    assert ("node:node-1", "pod:k/plain", "hosts") in hosts and not e[e["type"] == "hosts"]["cuttable"].any()


def test_groups_bound_by_rbac_get_their_members() -> None:
    view_secrets = role("ClusterRole", "peek", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}])
    grp = binding(
        "ClusterRoleBinding",
        "all-sas",
        "ClusterRole",
        "peek",
        [{"kind": "Group", "name": "system:serviceaccounts:shop"}, {"kind": "Group", "name": "oncall"}],
    )
    a = frame(
        "audit", audit("2026-03-10T10:00:00Z", "alice", "get", "pods", user_groups=["oncall", "system:authenticated"])
    )
    e = edges(pod("shop", "web", sa="app"), pod("pay", "api", sa="api"), view_secrets, grp, audit_rows=a)
    assert triples(e, "member_of") == {
        ("sa:shop/app", "group:system:serviceaccounts:shop", "member_of"),
        ("user:alice", "group:oncall", "member_of"),
    }
    assert ("group:oncall", "secret:*/*", "read_secret") in triples(e)


def test_duplicate_grants_are_one_edge_that_says_so() -> None:
    r = role("Role", "x", [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}], ns="pay")
    e = edges(
        pod("pay", "api"),
        r,
        binding("RoleBinding", "one", "Role", "x", [sa("shop", "app")], ns="pay"),
        binding("RoleBinding", "two", "Role", "x", [sa("shop", "app")], ns="pay"),
    )
    ex = e[e["type"] == "exec"]
    assert len(ex) == 1 and "1 other grant" in ex["reason"].iloc[0]


def test_patch_rights_reach_pods_and_the_workloads_that_run_them() -> None:
    deployed = pod("pay", "api-5hftq2dbls-x2kq9", sa="api")
    deployed["metadata"].update(
        ownerReferences=[{"kind": "ReplicaSet", "name": "api-5hftq2dbls", "controller": True}],
        labels={"pod-template-hash": "5hftq2dbls"},
    )
    r = role(
        "Role",
        "patcher",
        [
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["update"], "resourceNames": ["lonely"]},
        ],
        ns="pay",
    )
    e = edges(
        deployed,
        pod("pay", "lonely"),
        pod("shop", "web"),
        r,
        binding("RoleBinding", "p", "Role", "patcher", [sa("ci", "bot")], ns="pay"),
    )
    assert triples(e, "patch") == {
        ("sa:ci/bot", "workload:pay/deployments/api", "patch"),
        ("sa:ci/bot", "pod:pay/lonely", "patch"),
    }
    assert ("workload:pay/deployments/api", "pod:pay/api-5hftq2dbls-x2kq9", "runs") in triples(e)


@pytest.mark.parametrize(
    "path, sensitive",
    [
        ("/", True),
        ("/var/run/docker.sock", True),
        ("/run/cilium/cilium.sock", True),
        ("/var/lib/kubelet/pods", True),
        ("/etc/kubernetes/pki", True),
        ("/lib/modules", True),
        ("/proc/", True),
        ("/etc", True),
        ("/etc/localtime", False),
        ("/etc/ssl/certs", False),
        ("/etc/kubernetes/pki/ca.crt", False),
        ("/data", False),
        ("/var/lib/mysql", False),
    ],
)
def test_one_judgement_of_a_sensitive_host_path_for_detection_and_the_graph(path: str, sensitive: bool) -> None:
    assert is_sensitive_host_path(path) is sensitive
    assert bool(sensitive_host_paths({"volumes": [{"name": "v", "hostPath": {"path": path}}]})) is sensitive
