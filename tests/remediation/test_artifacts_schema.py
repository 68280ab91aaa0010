"""Every generated object is a valid Kubernetes object: checked against the Kubernetes OpenAPI
schema that the kubernetes-validate package ships (strict: an unknown field is an error), after
a round trip through the YAML files the analyst applies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import k8sforensics as kf

kv = pytest.importorskip("kubernetes_validate")
VERSION = "1.30"  # the oldest Kubernetes the objects must apply to (Pod Security "latest", endPort, matchExpressions)
CORE = {"NetworkPolicy", "Namespace", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


@pytest.fixture(scope="module")
def documents(sample_case: kf.Case, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict]]:
    out = tmp_path_factory.mktemp("remediation")
    written = kf.write_remediation(sample_case, out=out)
    docs = []
    for name, path in written.items():
        if name.endswith(".yaml"):
            docs += [(name, d) for d in yaml.safe_load_all(Path(path).read_text()) if d]
    return docs


def test_core_objects_validate_against_the_kubernetes_schema(documents: list[tuple[str, dict]]) -> None:
    core = [(n, d) for n, d in documents if d["kind"] in CORE]
    assert {d["kind"] for _, d in core} >= {"NetworkPolicy", "Namespace"}
    assert any(n.startswith("00-quarantine") for n, _ in core)  # the containment objects too
    for _, doc in core:
        kv.validate(doc, VERSION, strict=True)  # raises with the path of the first error


def test_least_privilege_rbac_validates(tmp_path: Path) -> None:
    from k8sforensics.remediation import least_privilege, used_permissions
    from tests.event_frames import audit, frame

    a = frame(
        "audit",
        audit(
            "2026-03-10T10:00:00Z",
            "system:serviceaccount:ci:bot",
            "patch",
            "deployments",
            api_group="apps",
            object_namespace="shop",
            object_name="web",
        ),
        audit("2026-03-10T10:01:00Z", "alice", "get", None, request_uri="/healthz"),
    )
    objects = least_privilege(used_permissions(a))
    assert {o["kind"] for o in objects} == {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    for doc in yaml.safe_load_all(yaml.safe_dump_all(objects)):
        kv.validate(doc, VERSION, strict=True)


def test_the_validator_catches_a_broken_policy(documents: list[tuple[str, dict]]) -> None:
    policy = next(d for _, d in documents if d["kind"] == "NetworkPolicy" and d["spec"].get("ingress"))
    broken = yaml.safe_load(yaml.safe_dump(policy))
    broken["spec"]["ingress"][0]["ports"][0]["protocol"] = 6  # a number where the schema wants a string
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, VERSION, strict=True)


def test_policy_engines_objects_have_their_required_shape(documents: list[tuple[str, dict]]) -> None:
    """Gatekeeper and Kyverno kinds are CRDs: the Kubernetes schema does not know them. Each
    must still be a well-formed object whose constraint kinds match a template."""
    crds = [d for _, d in documents if d["kind"] not in CORE]
    templates = {d["spec"]["crd"]["spec"]["names"]["kind"] for d in crds if d["kind"] == "ConstraintTemplate"}
    for d in crds:
        assert d["apiVersion"] in ("templates.gatekeeper.sh/v1", "constraints.gatekeeper.sh/v1beta1", "kyverno.io/v1")
        assert d["metadata"]["name"] and d["metadata"]["name"] == d["metadata"]["name"].lower()
        if d["apiVersion"] == "constraints.gatekeeper.sh/v1beta1":
            assert d["kind"] in templates
        if d["kind"] == "ClusterPolicy":
            for rule in d["spec"]["rules"]:
                assert rule["name"] and rule["match"]["any"] and rule["validate"]["pattern"]
