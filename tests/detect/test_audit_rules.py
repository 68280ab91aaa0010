"""Each audit rule on the smallest events that show what it must and must not match,
including the classic rule bugs: a denied attempt counted as done, exec over a websocket GET
missed, privileged settings looked for only in plain containers, controllers' reads of Secrets
taken for theft, deletecollection missed."""

from __future__ import annotations

import pandas as pd

from k8sforensics.detect import Evidence
from k8sforensics.detect import audit_rules as ar
from tests.event_frames import audit, frame

ATTACKER = "system:serviceaccount:shop:web"


def run(logic, *rows, **kw) -> pd.DataFrame:
    return logic(Evidence(audit=frame("audit", *rows), **kw))


def test_exec_counts_create_and_websocket_get_but_not_a_denied_attempt() -> None:
    hits = run(
        ar.exec_into_pod,
        audit(
            "2026-01-01T10:00:00Z",
            "alice",
            "create",
            "pods",
            subresource="exec",
            object_namespace="a",
            object_name="p1",
            code=101,
        ),
        audit(
            "2026-01-01T10:01:00Z", "alice", "get", "pods", subresource="exec", object_namespace="a", object_name="p2"
        ),
        audit(
            "2026-01-01T10:02:00Z",
            "alice",
            "create",
            "pods",
            subresource="exec",
            object_namespace="a",
            object_name="p3",
            code=403,
        ),
        audit("2026-01-01T10:03:00Z", "alice", "get", "pods", object_namespace="a", object_name="p4"),
    )
    assert hits["entity"].tolist() == ["a/p1", "a/p2"]


def test_exec_by_a_pod_identity_is_lateral_movement() -> None:
    hits = run(
        ar.exec_into_pod,
        audit(
            "2026-01-01T10:00:00Z",
            ATTACKER,
            "create",
            "pods",
            subresource="exec",
            object_namespace="b",
            object_name="api",
            exec_command="sh",
        ),
    )
    assert hits.loc[0, "tactic"] == "Lateral Movement" and hits.loc[0, "kill_chain_phase"] == "Actions on Objectives"


def test_privileged_in_init_ephemeral_and_cronjob_templates() -> None:
    pod = {
        "spec": {
            "initContainers": [{"name": "i", "securityContext": {"privileged": True}}],
            "containers": [{"name": "c"}],
        }
    }
    cron = {
        "spec": {
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "m", "securityContext": {"privileged": True}}]}}}
            }
        }
    }
    unprivileged = {"spec": {"containers": [{"name": "c", "securityContext": {"privileged": False}}]}}
    hits = run(
        ar.privileged_pod,
        audit(
            "2026-01-01T10:00:00Z", "bob", "create", "pods", object_namespace="a", object_name="p", request_object=pod
        ),
        audit(
            "2026-01-01T10:01:00Z",
            "bob",
            "create",
            "cronjobs",
            api_group="batch",
            object_namespace="a",
            object_name="cj",
            request_object=cron,
        ),
        audit(
            "2026-01-01T10:02:00Z",
            "bob",
            "create",
            "pods",
            object_namespace="a",
            object_name="q",
            request_object=unprivileged,
        ),
        audit(
            "2026-01-01T10:03:00Z",
            "bob",
            "create",
            "pods",
            object_namespace="a",
            object_name="r",
            request_object=pod,
            code=403,
        ),
    )
    assert hits["entity"].tolist() == ["a/p", "cronjobs/a/cj"]


def test_capabilities_are_read_where_real_pods_carry_them() -> None:
    nested = {
        "spec": {
            "containers": [
                {"name": "c", "securityContext": {"capabilities": {"add": ["CAP_SYS_ADMIN", "NET_BIND_SERVICE"]}}}
            ]
        }
    }
    top_level = {
        "spec": {"containers": [{"name": "c"}]},
        "capabilities": {"add": ["SYS_ADMIN"]},
    }  # Sigma's bug: not a pod field
    hits = run(
        ar.dangerous_capabilities,
        audit(
            "2026-01-01T10:00:00Z",
            "bob",
            "create",
            "pods",
            object_namespace="a",
            object_name="p",
            request_object=nested,
        ),
        audit(
            "2026-01-01T10:01:00Z",
            "bob",
            "create",
            "pods",
            object_namespace="a",
            object_name="q",
            request_object=top_level,
        ),
    )
    assert hits["entity"].tolist() == ["a/p"] and "SYS_ADMIN" in hits.loc[0, "summary"]


def test_sensitive_host_path_but_not_an_app_log_folder() -> None:
    spec = lambda path: {
        "spec": {"volumes": [{"name": "h", "hostPath": {"path": path}}], "containers": [{"name": "c"}]}
    }
    hits = run(
        ar.sensitive_host_path,
        audit(
            "2026-01-01T10:00:00Z",
            "bob",
            "create",
            "pods",
            object_namespace="a",
            object_name="p",
            request_object=spec("/var/run/docker.sock"),
        ),
        audit(
            "2026-01-01T10:01:00Z",
            "bob",
            "create",
            "pods",
            object_namespace="a",
            object_name="q",
            request_object=spec("/var/log/app"),
        ),
    )
    assert hits["entity"].tolist() == ["a/p"]


def test_cluster_admin_binding_and_its_first_use_named_by_the_authorizer() -> None:
    crb = {
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "mallory"}],
    }
    rows = [
        audit(
            "2026-01-01T10:00:00Z",
            ATTACKER,
            "create",
            "clusterrolebindings",
            object_name="backdoor",
            request_object=crb,
        ),
        audit(
            "2026-01-01T10:05:00Z",
            "mallory",
            "list",
            "secrets",
            authz_reason='RBAC: allowed by ClusterRoleBinding "backdoor" of ClusterRole "cluster-admin" to User "mallory"',
        ),
        audit("2026-01-01T10:06:00Z", "mallory", "list", "pods"),
    ]
    binding = run(ar.cluster_admin_binding, *rows)
    assert (
        binding["entity"].tolist() == ["clusterrolebindings/backdoor"] and "User mallory" in binding.loc[0, "summary"]
    )
    use = run(ar.new_binding_first_use, *rows)
    assert len(use) == 1 and use.loc[0, "time"] == pd.Timestamp("2026-01-01T10:05:00Z")
    other = {"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": []}
    assert run(
        ar.cluster_admin_binding,
        audit("2026-01-01T10:00:00Z", "bob", "create", "clusterrolebindings", object_name="v", request_object=other),
    ).empty


def test_token_used_from_another_pod_or_outside_but_not_from_its_own_pod() -> None:
    bound = {"token_pod": "api-1", "sa_namespace": "pay", "sa_name": "api"}
    rows = [
        audit(
            "2026-01-01T10:00:00Z",
            "system:serviceaccount:pay:api",
            "get",
            "pods",
            source_ip="10.1.0.5",
            source_pod="api-1",
            source_namespace="pay",
            **bound,
        ),
        audit(
            "2026-01-01T10:01:00Z",
            "system:serviceaccount:pay:api",
            "create",
            "pods",
            source_ip="10.1.0.9",
            source_pod="web-1",
            source_namespace="shop",
            **bound,
        ),
        audit(
            "2026-01-01T12:00:00Z", "system:serviceaccount:pay:api", "list", "secrets", source_ip="203.0.113.9", **bound
        ),
    ]
    hits = run(ar.token_used_elsewhere, *rows)
    assert hits["source_ip"].tolist() == ["10.1.0.9", "203.0.113.9"]
    assert "pod shop/web-1" in hits.loc[0, "summary"] and "outside the cluster" in hits.loc[1, "summary"]


def test_secrets_reads_by_controllers_are_not_findings() -> None:
    hits = run(
        ar.secrets_read,
        audit("2026-01-01T10:00:00Z", "system:node:n1", "get", "secrets", object_namespace="a", object_name="s"),
        audit("2026-01-01T10:00:00Z", "system:serviceaccount:kube-system:namespace-controller", "list", "secrets"),
        audit("2026-01-01T10:00:00Z", ATTACKER, "list", "secrets"),
        audit("2026-01-01T10:01:00Z", ATTACKER, "get", "secrets", object_namespace="kube-system", object_name="x"),
    )
    assert len(hits) == 1 and hits.loc[0, "severity"] == "high" and len(hits.loc[0, "event_ids"]) == 2


def test_events_deleted_matches_deletecollection_too() -> None:
    hits = run(
        ar.events_deleted,
        audit("2026-01-01T10:00:00Z", ATTACKER, "deletecollection", "events", object_namespace="kube-system"),
    )
    assert len(hits) == 1


def test_forbidden_burst_from_outside_is_reconnaissance() -> None:
    rows = [
        audit(f"2026-01-01T10:00:{i:02d}Z", "system:anonymous", "get", "secrets", code=403, source_ip="198.51.100.7")
        for i in range(7)
    ]
    hits = run(ar.forbidden_burst, *rows)
    assert len(hits) == 1 and hits.loc[0, "kill_chain_phase"] == "Reconnaissance"
    assert run(ar.forbidden_burst, *rows[:5]).empty  # five is not a burst


def test_new_pod_creator_learns_first() -> None:
    rows = [
        audit("2026-01-01T08:00:00Z", "system:node:n1", "update", "leases"),
        audit("2026-01-01T08:10:00Z", "ci-bot", "create", "deployments", object_namespace="a", object_name="d"),
        audit("2026-01-01T10:00:00Z", "ci-bot", "create", "deployments", object_namespace="a", object_name="d2"),
        audit("2026-01-01T10:00:00Z", "mallory", "create", "pods", object_namespace="a", object_name="p"),
        audit(
            "2026-01-01T10:05:00Z",
            "system:serviceaccount:kube-system:replicaset-controller",
            "create",
            "pods",
            object_namespace="a",
        ),
    ]
    hits = run(ar.new_pod_creator, *rows)
    assert hits["user"].tolist() == ["mallory"]


def test_untrusted_image_against_an_explicit_allow_list() -> None:
    pod = lambda img: {"spec": {"containers": [{"name": "c", "image": img}]}}
    rows = [
        audit(
            "2026-01-01T10:00:00Z",
            "bob",
            "create",
            "pods",
            object_namespace="a",
            object_name="p",
            request_object=pod("registry.corp/app:1"),
        ),
        audit(
            "2026-01-01T10:00:00Z",
            "bob",
            "create",
            "pods",
            object_namespace="a",
            object_name="q",
            request_object=pod("alpine:3.19"),
        ),
    ]
    hits = run(ar.untrusted_image, *rows, settings={"trusted_registries": ["registry.corp"]})
    assert hits["entity"].tolist() == ["a/q"] and "alpine:3.19" in hits.loc[0, "summary"]
