"""Trusted repositories from images, and the Gatekeeper and Kyverno policies built on them."""

from __future__ import annotations

from k8sforensics.remediation import gatekeeper, image_repositories, kyverno


def test_repositories_of_images() -> None:
    images = [
        "registry.corp/shop/web:1.8.2",
        "registry.corp/shop/cart@sha256:abc",
        "nginx:1.27",
        "bitnami/redis:7",
        "localhost:5000/tools/x:1",
        "quay.io/prometheus/prometheus:v2.53.0",
    ]
    assert image_repositories(images) == [
        "docker.io/bitnami/",
        "docker.io/library/",
        "localhost:5000/tools/",
        "quay.io/prometheus/",
        "registry.corp/shop/",
    ]


def test_gatekeeper_templates_and_constraints_pair_up() -> None:
    objs = gatekeeper(["registry.corp/shop/"], exempt=["kube-system"])
    templates = {o["spec"]["crd"]["spec"]["names"]["kind"]: o for o in objs if o["kind"] == "ConstraintTemplate"}
    constraints = [o for o in objs if o["kind"] != "ConstraintTemplate"]
    assert {c["kind"] for c in constraints} == set(templates)
    for name, t in templates.items():
        assert t["metadata"]["name"] == name.lower()
        rego = t["spec"]["targets"][0]["rego"]
        assert rego.startswith(f"package {name.lower()}") and "violation[" in rego
    repos = next(c for c in constraints if c["kind"] == "K8sForensicsAllowedRepos")
    assert (
        repos["spec"]["parameters"] == {"repos": ["registry.corp/shop/"]}
        and "excludedNamespaces" not in repos["spec"]["match"]
    )
    privileged = next(c for c in constraints if c["kind"] == "K8sForensicsNoPrivileged")
    assert privileged["spec"]["match"]["excludedNamespaces"] == ["kube-system"]


def test_kyverno_policies_cover_the_same_controls() -> None:
    objs = kyverno(["registry.corp/shop/", "quay.io/prometheus/"], exempt=["kube-system"])
    assert [o["metadata"]["name"] for o in objs] == [
        "k8sforensics-trusted-repositories",
        "k8sforensics-no-privileged",
        "k8sforensics-no-hostpath",
        "k8sforensics-no-host-namespaces",
    ]
    image = objs[0]["spec"]["rules"][0]["validate"]["pattern"]["spec"]["containers"][0]["image"]
    assert image == "registry.corp/shop/* | quay.io/prometheus/*"
    assert objs[1]["spec"]["rules"][0]["exclude"] == {"any": [{"resources": {"namespaces": ["kube-system"]}}]}
    assert all(o["spec"]["validationFailureAction"] == "Enforce" for o in objs)
