"""Admission policies that would have stopped the attack's deploy-time steps: images only from
the registries legitimate workloads use, and no privileged, hostPath or host-namespace pods
outside the namespaces whose own pods need them — as Gatekeeper (ConstraintTemplates with their
Rego, and Constraints) and as the equivalent Kyverno ClusterPolicies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PREFIX = "k8sforensics"
_CONTAINERS = """
input_containers[c] { c := input.review.object.spec.containers[_] }
input_containers[c] { c := input.review.object.spec.initContainers[_] }
input_containers[c] { c := input.review.object.spec.ephemeralContainers[_] }
"""
TEMPLATES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "K8sForensicsAllowedRepos": (
        """package k8sforensicsallowedrepos
violation[{"msg": msg}] {
  c := input_containers[_]
  not any_prefix(c.image, input.parameters.repos)
  msg := sprintf("container <%v> has an image from an untrusted repository <%v>; allowed: %v", [c.name, c.image, input.parameters.repos])
}
any_prefix(image, repos) { startswith(image, repos[_]) }
"""
        + _CONTAINERS,
        {"repos": {"type": "array", "items": {"type": "string"}}},
    ),
    "K8sForensicsNoPrivileged": (
        """package k8sforensicsnoprivileged
violation[{"msg": msg}] {
  c := input_containers[_]
  c.securityContext.privileged
  msg := sprintf("privileged container <%v> is not allowed", [c.name])
}
"""
        + _CONTAINERS,
        None,
    ),
    "K8sForensicsNoHostPath": (
        """package k8sforensicsnohostpath
violation[{"msg": msg}] {
  v := input.review.object.spec.volumes[_]
  v.hostPath
  msg := sprintf("hostPath volume <%v> (%v) is not allowed", [v.name, v.hostPath.path])
}
""",
        None,
    ),
    "K8sForensicsNoHostNamespaces": (
        """package k8sforensicsnohostnamespaces
violation[{"msg": msg}] {
  field := ["hostPID", "hostIPC", "hostNetwork"][_]
  input.review.object.spec[field]
  msg := sprintf("%v is not allowed", [field])
}
""",
        None,
    ),
}


def image_repositories(images: Iterable[str]) -> list[str]:
    """The repository prefixes of ``images`` (``registry.corp/shop/web:1.8`` →
    ``registry.corp/shop/``), the unit a registry allow-list names."""
    out = set()
    for image in images:
        name = str(image).split("@")[0]
        path, _, last = name.rpartition("/")
        if ":" in last:
            last = last.split(":")[0]
        if not path:  # "nginx": Docker Hub's library
            path = "docker.io/library"
        elif "." not in path.split("/")[0] and ":" not in path.split("/")[0] and path.split("/")[0] != "localhost":
            path = "docker.io/" + path
        out.add(path + "/")
    return sorted(out)


def _match(exempt: list[str]) -> dict[str, Any]:
    m: dict[str, Any] = {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}
    if exempt:
        m["excludedNamespaces"] = sorted(exempt)
    return m


def gatekeeper(repos: list[str], *, exempt: Iterable[str] = ()) -> list[dict[str, Any]]:
    """ConstraintTemplates (self-contained Rego, no library needed) and their Constraints:
    allowed repositories everywhere; no privileged, hostPath or host-namespace pods outside
    ``exempt`` namespaces."""
    out: list[dict[str, Any]] = []
    for kind, (rego, params) in TEMPLATES.items():
        crd: dict[str, Any] = {"spec": {"names": {"kind": kind}}}
        if params:
            crd["spec"]["validation"] = {"openAPIV3Schema": {"type": "object", "properties": params}}
        out.append(
            {
                "apiVersion": "templates.gatekeeper.sh/v1",
                "kind": "ConstraintTemplate",
                "metadata": {"name": kind.lower()},
                "spec": {
                    "crd": crd,
                    "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego.strip() + "\n"}],
                },
            }
        )
    exempt = sorted(set(exempt))
    constraints = [
        ("K8sForensicsAllowedRepos", "trusted-repositories", [], {"repos": repos}),
        ("K8sForensicsNoPrivileged", "no-privileged", exempt, None),
        ("K8sForensicsNoHostPath", "no-hostpath", exempt, None),
        ("K8sForensicsNoHostNamespaces", "no-host-namespaces", exempt, None),
    ]
    for kind, name, skip, params in constraints:
        c: dict[str, Any] = {
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": kind,
            "metadata": {"name": f"{PREFIX}-{name}"},
            "spec": {"enforcementAction": "deny", "match": _match(skip)},
        }
        if params:
            c["spec"]["parameters"] = params
        out.append(c)
    return out


def kyverno(repos: list[str], *, exempt: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The same four controls as Kyverno ClusterPolicies (validate, Enforce)."""
    exempt = sorted(set(exempt))
    pattern = " | ".join(f"{r}*" for r in repos) or "!*"

    def policy(name: str, message: str, spec_pattern: dict[str, Any], skip: list[str]) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "name": name,
            "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
            "validate": {"message": message, "pattern": {"spec": spec_pattern}},
        }
        if skip:
            rule["exclude"] = {"any": [{"resources": {"namespaces": skip}}]}
        return {
            "apiVersion": "kyverno.io/v1",
            "kind": "ClusterPolicy",
            "metadata": {"name": f"{PREFIX}-{name}"},
            "spec": {"validationFailureAction": "Enforce", "background": True, "rules": [rule]},
        }

    def every(container: dict[str, Any]) -> dict[str, Any]:
        return {"=(ephemeralContainers)": [container], "=(initContainers)": [container], "containers": [container]}

    return [
        policy("trusted-repositories", f"images must come from: {', '.join(repos)}", every({"image": pattern}), []),
        policy(
            "no-privileged",
            "privileged containers are not allowed",
            every({"=(securityContext)": {"=(privileged)": "false"}}),
            exempt,
        ),
        policy("no-hostpath", "hostPath volumes are not allowed", {"=(volumes)": [{"X(hostPath)": "null"}]}, exempt),
        policy(
            "no-host-namespaces",
            "hostPID, hostIPC and hostNetwork are not allowed",
            {"=(hostPID)": "false", "=(hostIPC)": "false", "=(hostNetwork)": "false"},
            exempt,
        ),
    ]
