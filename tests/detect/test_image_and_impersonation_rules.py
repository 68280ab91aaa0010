"""Backdoored images and impersonation: who publishes an image (a shared public registry's
owner, not the registry), a running Deployment patched to another image, and requests made as
another identity, privileged or not."""

from __future__ import annotations

import json

import pandas as pd

from k8sforensics.detect import AUDIT_RULES, Evidence
from k8sforensics.detect import audit_rules as ar
from k8sforensics.detect.engine import run_rules
from tests.event_frames import audit, frame

DEPLOYER = "system:serviceaccount:ci:deployer"
BEFORE = pd.Timestamp("2026-01-01T00:00:00Z")


def _pods(*images: str) -> pd.DataFrame:
    """Pods running before the evidence starts, with these images."""
    return pd.DataFrame(
        {
            "namespace": ["a"] * len(images),
            "name": [f"p{i}" for i in range(len(images))],
            "created": [BEFORE] * len(images),
            "images": [[i] for i in images],
        }
    )


def _template(image: str) -> dict:
    return {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}


def test_image_publishers_on_shared_registries() -> None:
    assert ar.image_source("nginx:1.25") == "docker.io/library"
    assert ar.image_source("docker.io/evilcorp/web:1.8.2") == "docker.io/evilcorp"
    assert ar.image_source("evilcorp/web") == "docker.io/evilcorp"
    assert ar.image_source("ghcr.io/aquasecurity/trivy:0.5") == "ghcr.io/aquasecurity"
    assert ar.image_source("registry.corp/shop/web:1") == "registry.corp"
    assert ar.image_source("localhost:5000/tool:2") == "localhost:5000"


def test_a_deployment_patched_to_another_docker_hub_owner_is_untrusted_though_official_images_ran_before() -> None:
    pods = _pods("docker.io/library/postgres:16.3", "registry.corp/shop/web:1.8.2", "velero/velero:v1.14.0")
    rows = [
        audit(
            "2026-01-01T10:00:00Z",
            DEPLOYER,
            "patch",
            "deployments",
            api_group="apps",
            object_namespace="shop",
            object_name="web",
            request_object=_template("docker.io/evilcorp/web:1.8.2"),
        ),
        audit(
            "2026-01-01T10:01:00Z",
            DEPLOYER,
            "patch",
            "deployments",
            api_group="apps",
            object_namespace="shop",
            object_name="cart",
            request_object=_template("registry.corp/shop/cart:2.5"),
        ),
        audit(
            "2026-01-01T10:02:00Z",
            "bob",
            "create",
            "pods",
            object_namespace="default",
            object_name="debug",
            request_object={"spec": {"containers": [{"name": "c", "image": "alpine:3.19"}]}},
        ),
    ]
    hits = ar.untrusted_image(Evidence(audit=frame("audit", *rows), context={"pods": pods}))
    assert (
        hits["entity"].tolist() == ["deployments/shop/web"] and "docker.io/evilcorp/web:1.8.2" in hits.loc[0, "summary"]
    )


def test_a_json_patch_that_replaces_an_image() -> None:
    op = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "docker.io/evilcorp/web:2"}]
    row = audit(
        "2026-01-01T10:00:00Z",
        DEPLOYER,
        "patch",
        "deployments",
        api_group="apps",
        object_namespace="shop",
        object_name="web",
        request_object="[]",
    )
    table = frame("audit", row)
    table.loc[0, "request_object"] = json.dumps(op)  # a list body: frame() only encodes dicts
    hits = ar.untrusted_image(Evidence(audit=table, context={"pods": _pods("registry.corp/shop/web:1")}))
    assert hits["entity"].tolist() == ["deployments/shop/web"]


def test_an_explicit_allow_list_still_trusts_a_whole_registry() -> None:
    rows = [
        audit(
            "2026-01-01T10:00:00Z",
            "bob",
            "create",
            "pods",
            object_namespace="a",
            object_name="p",
            request_object={"spec": {"containers": [{"name": "c", "image": "evilcorp/tool:1"}]}},
        )
    ]
    assert ar.untrusted_image(
        Evidence(audit=frame("audit", *rows), settings={"trusted_registries": ["docker.io"]})
    ).empty
    assert (
        len(
            ar.untrusted_image(
                Evidence(audit=frame("audit", *rows), settings={"trusted_registries": ["docker.io/bitnami"]})
            )
        )
        == 1
    )


def test_impersonating_system_masters_under_an_ordinary_name_is_high() -> None:
    rows = [
        audit(
            "2026-01-01T10:00:00Z",
            "system:anonymous",
            "list",
            "secrets",
            source_ip="203.0.113.5",
            impersonated_user="platform-admin@corp.example",
            impersonated_groups=["system:masters", "system:authenticated"],
        )
    ]
    rule = next(r for r in AUDIT_RULES if r.id == "k8s-impersonation")
    hits, _ = run_rules(Evidence(audit=frame("audit", *rows)), [rule])
    assert len(hits) == 1 and hits.loc[0, "severity"] == "high"


def test_impersonating_a_cluster_admin_the_rbac_inventory_names_is_high_and_anyone_else_medium() -> None:
    rbac = pd.DataFrame(
        {
            "binding_kind": ["ClusterRoleBinding"],
            "binding": ["platform-admins"],
            "subject_kind": ["User"],
            "subject_namespace": [None],
            "subject": ["platform-admin@corp.example"],
            "role_kind": ["ClusterRole"],
            "role": ["cluster-admin"],
            "verbs": [["*"]],
            "resources": [["*"]],
        }
    )
    rows = [
        audit("2026-01-01T10:00:00Z", "mallory", "get", "secrets", impersonated_user="platform-admin@corp.example"),
        audit("2026-01-01T12:00:00Z", "alice", "get", "pods", impersonated_user="bob"),
        audit("2026-01-01T12:00:00Z", "system:kube-controller-manager", "get", "pods", impersonated_user="bob"),
    ]
    hits = ar.impersonation(Evidence(audit=frame("audit", *rows), context={"rbac": rbac}))
    assert hits["user"].tolist() == ["mallory", "alice"] and hits["severity"].tolist() == ["high", "medium"]
