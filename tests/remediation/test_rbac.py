"""Least-privilege Roles from what identities did (audit2rbac), and bindings nothing used."""

from __future__ import annotations

import pandas as pd

from k8sforensics.remediation import least_privilege, unused_bindings, used_permissions
from tests.event_frames import audit, frame

CI = "system:serviceaccount:ci:deployer"


def _audit() -> pd.DataFrame:
    return frame(
        "audit",
        audit(
            "2026-03-10T10:00:00Z",
            CI,
            "get",
            "deployments",
            api_group="apps",
            object_namespace="shop",
            object_name="web",
        ),
        audit(
            "2026-03-10T10:01:00Z",
            CI,
            "patch",
            "deployments",
            api_group="apps",
            object_namespace="shop",
            object_name="web",
        ),
        audit(
            "2026-03-10T10:02:00Z",
            CI,
            "get",
            "secrets",
            api_group="",
            object_namespace="shop",
            object_name="registry-creds",
        ),
        audit("2026-03-10T10:03:00Z", CI, "list", "pods", api_group="", object_namespace="pay"),
        audit("2026-03-10T10:04:00Z", CI, "get", "nodes", api_group=""),
        audit("2026-03-10T10:05:00Z", CI, "get", None, request_uri="/version?timeout=32s"),
        audit(
            "2026-03-10T10:06:00Z",
            CI,
            "create",
            "pods",
            subresource="exec",
            api_group="",
            object_namespace="pay",
            object_name="api",
            event_id="attack-1",
        ),
        audit(
            "2026-03-10T10:07:00Z",
            CI,
            "delete",
            "secrets",
            api_group="",
            object_namespace="shop",
            object_name="x",
            code=403,
        ),
        audit(
            "2026-03-10T10:08:00Z",
            "system:kube-controller-manager",
            "update",
            "deployments",
            api_group="apps",
            object_namespace="shop",
            object_name="web",
        ),
    )


def test_roles_allow_exactly_what_was_done_outside_the_attack() -> None:
    used = used_permissions(_audit(), exclude={"attack-1"})
    assert set(used["identity"]) == {"sa:ci/deployer"}  # controllers are not narrowed; a 403 grants nothing
    objects = least_privilege(used)
    by = {(o["kind"], o["metadata"].get("namespace")): o for o in objects}
    assert set(by) == {
        ("Role", "shop"),
        ("RoleBinding", "shop"),
        ("Role", "pay"),
        ("RoleBinding", "pay"),
        ("ClusterRole", None),
        ("ClusterRoleBinding", None),
    }
    assert by[("Role", "shop")]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["registry-creds"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]},
    ]
    assert by[("Role", "pay")]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}
    ]  # no pods/exec: the attack's
    assert by[("ClusterRole", None)]["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
        {"nonResourceURLs": ["/version"], "verbs": ["get"]},
    ]
    binding = by[("RoleBinding", "shop")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "k8sforensics-least-ci-deployer",
    }


def test_a_binding_used_only_by_the_attack_is_unused() -> None:
    used = used_permissions(_audit(), exclude={"attack-1"})
    rbac = pd.DataFrame(
        [
            {
                "binding_kind": "RoleBinding",
                "binding_namespace": "pay",
                "binding": "debug",
                "subject_kind": "ServiceAccount",
                "subject_namespace": "ci",
                "subject": "deployer",
                "role_kind": "Role",
                "role": "debug",
                "role_found": True,
                "api_groups": [""],
                "resources": ["pods/exec"],
                "verbs": ["create"],
            },
            {
                "binding_kind": "RoleBinding",
                "binding_namespace": "shop",
                "binding": "deploy",
                "subject_kind": "ServiceAccount",
                "subject_namespace": "ci",
                "subject": "deployer",
                "role_kind": "Role",
                "role": "deploy",
                "role_found": True,
                "api_groups": ["apps"],
                "resources": ["deployments"],
                "verbs": ["get", "patch"],
            },
            {
                "binding_kind": "ClusterRoleBinding",
                "binding_namespace": None,
                "binding": "mystery",
                "subject_kind": "ServiceAccount",
                "subject_namespace": "ci",
                "subject": "deployer",
                "role_kind": "ClusterRole",
                "role": "gone",
                "role_found": False,
                "api_groups": None,
                "resources": None,
                "verbs": None,
            },
        ]
    )
    unused = unused_bindings(rbac, used)
    assert unused["binding"].tolist() == ["debug"] and "made no request outside the attack" in unused["reason"].iloc[0]
