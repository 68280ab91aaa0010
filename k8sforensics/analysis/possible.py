"""Possible edges: where the configuration lets an identity or a pod go, whether or not anyone
went there (KubeHound's attack edges, github.com/DataDog/KubeHound), from the case's inventory.

- **RBAC** (``rbac`` context, one row per binding × subject × rule): ``exec`` / ``attach`` /
  ``port_forward`` / ``patch`` to the pods in the binding's scope (``patch`` also to the
  workloads running pods there), ``node_proxy`` to every node,
  ``create_pod`` / ``create_workload`` to every node (a privileged pod can be scheduled
  anywhere unless the namespace enforces Pod Security baseline or restricted) and to every
  service account of the namespace (a pod can run as any of them), ``token_request`` and
  ``impersonate`` to service accounts (and users), ``read_secret`` to the secrets, and
  ``bind_role`` to ``role:*`` (create bindings plus ``bind``/``escalate``: any permission).
  Built-in roles a dump usually leaves out (cluster-admin, admin, edit) use their known rules.
- **Pod specs** (``pods``): ``token_steal`` pod → its service account when the token is
  mounted, ``host_escape`` pod → its node when privileged, hostPID, a sensitive hostPath or an
  escape capability.
- **Structure**: ``hosts`` node → the pods on it (root on a node controls them), ``runs``
  workload → its pods, ``member_of`` identity → the groups RBAC binds (a service account's
  implicit groups; users' groups as the audit log shows them).

Every edge carries ``reason`` (what grants it), ``basis`` (the object to change), ``fix`` (the
change that removes it) and ``cuttable`` (False for structure no configuration change removes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .. import node_ids
from ..detect.engine import Evidence
from ..detect.facts import is_sensitive_host_path

POSSIBLE_COLUMNS = ["source", "target", "type", "first_seen", "last_seen", "reason", "basis", "fix", "cuttable"]

# the rules of the built-in ClusterRoles, for bindings whose role is not in the dump
# (api groups, resources, verbs): only the rules that make edges
BUILTIN_ROLES: dict[str, list[tuple[list[str], list[str], list[str]]]] = {
    "cluster-admin": [(["*"], ["*"], ["*"])],
    "admin": [
        (
            [""],
            [
                "pods",
                "pods/exec",
                "pods/attach",
                "pods/portforward",
                "secrets",
                "serviceaccounts",
                "serviceaccounts/token",
            ],
            ["create", "get", "list", "watch", "impersonate"],
        ),
        (
            ["apps", "batch"],
            ["deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs"],
            ["create"],
        ),
    ],
    "edit": [
        (
            [""],
            [
                "pods",
                "pods/exec",
                "pods/attach",
                "pods/portforward",
                "secrets",
                "serviceaccounts",
                "serviceaccounts/token",
            ],
            ["create", "get", "list", "watch", "impersonate"],
        ),
        (
            ["apps", "batch"],
            ["deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs"],
            ["create"],
        ),
    ],
}
WORKLOAD_RESOURCES = {
    "deployments": "apps",
    "daemonsets": "apps",
    "statefulsets": "apps",
    "replicasets": "apps",
    "jobs": "batch",
    "cronjobs": "batch",
}
ESCAPE_CAPABILITIES = {"SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "DAC_READ_SEARCH", "ALL"}
# (not all of /etc: /etc/localtime, /etc/ssl/certs and a CA certificate are what ordinary pods mount)
ENFORCING = {"baseline", "restricted"}
KIND_RESOURCE = {
    "Deployment": "deployments",
    "DaemonSet": "daemonsets",
    "StatefulSet": "statefulsets",
    "ReplicaSet": "replicasets",
    "Job": "jobs",
    "CronJob": "cronjobs",
}


def resource_of(kind: str) -> str:
    """The plural lower-case resource of a kind, by the API machinery's own guess
    (k8s.io/apimachinery meta.UnsafeGuessKindToResource): Endpoints stays, -s → -ses,
    -y → -ies, else -s (NetworkPolicy → networkpolicies)."""
    singular = kind.lower()
    if singular == "endpoints":
        return singular
    if singular.endswith("s"):
        return singular + "es"
    if singular.endswith("y"):
        return singular[:-1] + "ies"
    return singular + "s"


def possible_edges(ev: Evidence) -> pd.DataFrame:
    """Every possible edge the inventory shows (columns ``POSSIBLE_COLUMNS``), deduplicated
    per (source, target, type) — the first reason wins, the others are counted in it."""
    world = _World(ev)
    parts = [_rbac_edges(world), _pod_edges(world), _membership_edges(world, ev)]
    rows = [r for p in parts for r in p]
    if not rows:
        return pd.DataFrame(columns=POSSIBLE_COLUMNS)
    out = pd.DataFrame(rows, columns=POSSIBLE_COLUMNS)
    extra = out.groupby(["source", "target", "type"], sort=False)["reason"].transform("size") - 1
    out["reason"] = out["reason"].where(extra == 0, out["reason"] + " (and " + extra.astype(str) + " other grant(s))")
    out = out.drop_duplicates(["source", "target", "type"]).reset_index(drop=True)
    for col in ("first_seen", "last_seen"):
        out[col] = pd.to_datetime(out[col], utc=True)
    return out


class _World:
    """What exists, per namespace: pods, service accounts, nodes, Pod Security enforcement."""

    def __init__(self, ev: Evidence) -> None:
        self.rbac = ev.context("rbac")
        pods = ev.context("pods")
        self.pods = pods[pods["namespace"].notna() & pods["name"].notna()]
        lifetimes = ev.context("pod_ips")
        known = pd.concat(
            [
                self.pods[["namespace", "name", "node"]],
                lifetimes.rename(columns={"pod": "name"})[["namespace", "name", "node"]],
            ],
            ignore_index=True,
        )
        known = known[known["namespace"].notna() & known["name"].notna()].drop_duplicates(["namespace", "name"])
        self.pods_by_ns: dict[str, list[str]] = {ns: list(g["name"]) for ns, g in known.groupby("namespace")}
        self.pod_nodes = known
        sas = ev.context("service_accounts")
        pairs = set(zip(sas["namespace"], sas["name"])) | set(zip(self.pods["namespace"], self.pods["service_account"]))
        self.sas_by_ns: dict[str, list[str]] = {}
        for ns, name in sorted(p for p in pairs if isinstance(p[0], str) and isinstance(p[1], str)):
            self.sas_by_ns.setdefault(ns, []).append(name)
        self.sa_automount = {(n, s): a for n, s, a in zip(sas["namespace"], sas["name"], sas["automount_token"])}
        # the workloads that run pods (the pods say which), as the ids the graph uses
        self.workloads_by_ns: dict[tuple[str, str], list[str]] = {}
        for ns, kind, name in {
            (n, k, x)
            for n, k, x in zip(self.pods["namespace"], self.pods["workload_kind"], self.pods["workload"])
            if k in KIND_RESOURCE and isinstance(x, str)
        }:
            self.workloads_by_ns.setdefault((ns, KIND_RESOURCE[kind]), []).append(name)
        workloads = ev.context("workloads")
        self.template_sa = {
            (n, name): sa
            for n, name, sa in zip(workloads["namespace"], workloads["name"], workloads["service_account"])
            if isinstance(sa, str)
        }
        nodes = ev.context("nodes")
        self.nodes = sorted(set(nodes["name"].dropna()) | set(known["node"].dropna()))
        namespaces = ev.context("namespaces")
        self.enforce = {
            n: (labels or {}).get("pod-security.kubernetes.io/enforce") if isinstance(labels, dict) else _label(labels)
            for n, labels in zip(namespaces["name"], namespaces["labels"])
        }
        self.namespaces = sorted(set(self.pods_by_ns) | set(self.sas_by_ns) | set(namespaces["name"].dropna()))

    def scope(self, ns: str | None) -> list[str]:
        return self.namespaces if ns is None else [ns]


def _label(labels: Any) -> str | None:
    """A map column arrives as a dict or as a list of (key, value) pairs."""
    if labels is None or isinstance(labels, float):
        return None
    return dict(labels).get("pod-security.kubernetes.io/enforce")


def _items(v: Any) -> list[str]:
    return [] if v is None or isinstance(v, float) else [str(x) for x in v]


class _Grant:
    """One RBAC row: a subject, a scope and one rule of the bound role."""

    def __init__(self, row: Any, groups: list[str], resources: list[str], verbs: list[str], names: list[str]) -> None:
        self.groups, self.resources, self.verbs, self.names = groups, resources, verbs, names
        self.namespace = (
            row.binding_namespace
            if row.binding_kind == "RoleBinding" and isinstance(row.binding_namespace, str)
            else None
        )
        where = f"{row.binding_namespace}/" if self.namespace else ""
        self.basis = f"{row.binding_kind} {where}{row.binding}"
        self.role = f"{row.role_kind} {row.role}"

    def allows(self, resource: str, verbs: Iterable[str], group: str = "") -> bool:
        if not ("*" in self.groups or group in self.groups):
            return False
        base = resource.split("/")[0]
        if not (
            "*" in self.resources or resource in self.resources or ("/" in resource and f"{base}/*" in self.resources)
        ):
            return False
        return "*" in self.verbs or any(v in self.verbs for v in verbs)

    def reason(self, what: str) -> str:
        scope = f"in namespace {self.namespace}" if self.namespace else "cluster-wide"
        return f"{self.basis} → {self.role}: {what} {scope}"

    def fix(self, what: str) -> str:
        return f"remove {what} from {self.role} (or the subject from {self.basis})"


def _subject(row: Any) -> str | None:
    if row.subject_kind == "ServiceAccount":
        ns = row.subject_namespace if isinstance(row.subject_namespace, str) else row.binding_namespace
        return node_ids.service_account(ns, row.subject) if isinstance(ns, str) else None
    if row.subject_kind == "Group":
        return node_ids.group(row.subject)
    return node_ids.user(row.subject) if isinstance(row.subject, str) else None


def _grants(rbac: pd.DataFrame) -> list[tuple[str, _Grant]]:
    out = []
    for row in rbac.itertuples(index=False):
        subject = _subject(row)
        if subject is None:
            continue
        if row.role_found or row.role not in BUILTIN_ROLES:
            rules = [(_items(row.api_groups), _items(row.resources), _items(row.verbs))] if row.role_found else []
            names = _items(row.resource_names)
        else:
            rules, names = BUILTIN_ROLES[row.role], []
        for groups, resources, verbs in rules:
            out.append((subject, _Grant(row, groups, resources, verbs, names)))
    return out


def _edge(
    source: str,
    target: str,
    kind: str,
    reason: str,
    basis: str,
    fix: str,
    *,
    cuttable: bool = True,
    first: Any = None,
    last: Any = None,
) -> tuple[Any, ...]:
    return (source, target, kind, first, last, reason, basis, fix, cuttable)


def _in_scope(
    by_ns: dict[Any, list[str]], w: _World, g: _Grant, resource: str | None = None
) -> Iterable[tuple[str, str]]:
    """(namespace, name) of the objects a grant reaches: its namespaces, its resource names."""
    for ns in w.scope(g.namespace):
        for name in by_ns.get((ns, resource) if resource else ns, []):
            if not g.names or name in g.names:
                yield ns, name


def _rbac_edges(w: _World) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    grants = _grants(w.rbac)
    # who may bind or escalate roles, and where (None: cluster-wide); any rule of any binding counts
    escalators = {
        (subject, g.namespace)
        for subject, g in grants
        if any(g.allows(r, ("bind", "escalate"), "rbac.authorization.k8s.io") for r in ("clusterroles", "roles"))
    }
    for subject, g in grants:
        for sub, kind in (
            ("pods/exec", "exec"),
            ("pods/attach", "attach"),
            ("pods/portforward", "port_forward"),
            ("pods/ephemeralcontainers", "debug"),
        ):
            # GET upgrades to a WebSocket exec on older API servers, so get counts as well as create;
            # an ephemeral container is added with patch
            if g.allows(sub, ("patch", "update") if kind == "debug" else ("create", "get")):
                what = f"{'patch' if kind == 'debug' else 'create'} {sub}"
                for ns, pod in _in_scope(w.pods_by_ns, w, g):
                    out.append(_edge(subject, node_ids.pod(ns, pod), kind, g.reason(what), g.basis, g.fix(what)))
        if g.allows("pods", ("patch", "update")):
            for ns, pod in _in_scope(w.pods_by_ns, w, g):
                out.append(
                    _edge(
                        subject,
                        node_ids.pod(ns, pod),
                        "patch",
                        g.reason("patch pods (swap an image)"),
                        g.basis,
                        g.fix("patch/update pods"),
                    )
                )
        for resource, group in WORKLOAD_RESOURCES.items():
            if g.allows(resource, ("patch", "update"), group):
                for ns, name in _in_scope(w.workloads_by_ns, w, g, resource):
                    out.append(
                        _edge(
                            subject,
                            node_ids.workload(ns, resource, name),
                            "patch",
                            g.reason(f"patch {resource} (swap an image)"),
                            g.basis,
                            g.fix(f"patch/update {resource}"),
                        )
                    )
        if g.namespace is None and g.allows("nodes/proxy", ("get", "create")):
            for node in w.nodes:
                out.append(
                    _edge(
                        subject,
                        node_ids.node(node),
                        "node_proxy",
                        g.reason("nodes/proxy (kubelet API: exec in any pod)"),
                        g.basis,
                        g.fix("nodes/proxy"),
                    )
                )
        creators = [("create_pod", "pods", "")] + [("create_workload", r, grp) for r, grp in WORKLOAD_RESOURCES.items()]
        for kind, resource, group in creators:
            if not g.allows(resource, ("create",), group):
                continue
            what = f"create {resource}"
            for ns in w.scope(g.namespace):
                for sa in w.sas_by_ns.get(ns, []):
                    out.append(
                        _edge(
                            subject,
                            node_ids.service_account(ns, sa),
                            kind,
                            g.reason(f"{what} (a pod can run as any service account of {ns})"),
                            g.basis,
                            g.fix(what),
                        )
                    )
                if w.enforce.get(ns) in ENFORCING:
                    continue  # Pod Security rejects the privileged pod that would take a node
                for node in w.nodes:
                    out.append(
                        _edge(
                            subject,
                            node_ids.node(node),
                            kind,
                            g.reason(
                                f"{what} (a privileged or hostPath pod in {ns}; no Pod Security enforcement known)"
                            ),
                            g.basis,
                            g.fix(what) + f"; enforce Pod Security baseline on {ns}",
                        )
                    )
            break  # one create right is enough: the same targets
        for resource, verb, kind in (
            ("serviceaccounts/token", "create", "token_request"),
            ("serviceaccounts", "impersonate", "impersonate"),
        ):
            if g.allows(resource, (verb,)):
                what = f"{verb} {resource}"
                for ns, sa in _in_scope(w.sas_by_ns, w, g):
                    out.append(
                        _edge(subject, node_ids.service_account(ns, sa), kind, g.reason(what), g.basis, g.fix(what))
                    )
        for resource, identity in (("users", node_ids.user), ("groups", node_ids.group)):
            if g.namespace is None and g.allows(resource, ("impersonate",)):
                for name in g.names or ["*"]:
                    out.append(
                        _edge(
                            subject,
                            identity(name),
                            "impersonate",
                            g.reason(f"impersonate {resource}"),
                            g.basis,
                            g.fix("impersonate"),
                        )
                    )
        if g.allows("secrets", ("get", "list", "watch")):
            what = "read secrets"
            for ns in [g.namespace] if g.namespace else ["*"]:
                for name in g.names or ["*"]:
                    out.append(
                        _edge(
                            subject,
                            node_ids.secret(ns, name),
                            "read_secret",
                            g.reason(what),
                            g.basis,
                            g.fix("get/list/watch secrets"),
                        )
                    )
        binding = "clusterrolebindings" if g.namespace is None else "rolebindings"
        # creating a binding grants only what one holds, unless one may also bind or escalate roles
        if g.allows(binding, ("create", "update", "patch"), "rbac.authorization.k8s.io") and (
            (subject, None) in escalators or (subject, g.namespace) in escalators
        ):
            target = node_ids.role(g.namespace, "*")
            out.append(
                _edge(
                    subject,
                    target,
                    "bind_role",
                    g.reason(f"create {binding} and bind/escalate roles (any permission)"),
                    g.basis,
                    g.fix(f"bind/escalate and create {binding}"),
                )
            )
    return out


def _pod_edges(w: _World) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    p = w.pods
    for r in p.itertuples(index=False):
        pod = node_ids.pod(r.namespace, r.name)
        life = {"first": r.created, "last": r.deleted}
        basis = f"Pod {r.namespace}/{r.name}" + (
            f" ({r.workload_kind} {r.workload})" if isinstance(r.workload, str) else ""
        )
        # a pod known only from events has no spec: its workload's template names the account
        sa = (
            r.service_account
            if isinstance(r.service_account, str)
            else w.template_sa.get((r.namespace, r.owner_name), w.template_sa.get((r.namespace, r.workload)))
        )
        automount = (
            r.automount_token
            if r.automount_token is not None and not _nan(r.automount_token)
            else w.sa_automount.get((r.namespace, sa))
        )
        if sa is not None and (automount is None or _nan(automount) or bool(automount)):
            out.append(
                _edge(
                    pod,
                    node_ids.service_account(r.namespace, sa),
                    "token_steal",
                    f"{basis} mounts the token of service account {r.namespace}/{sa}",
                    basis,
                    "set automountServiceAccountToken: false (pod template or service account) where the API is not needed",
                    **life,
                )
            )
        why = []
        if r.privileged is True:
            why.append("privileged")
        if r.host_pid is True:
            why.append("hostPID")
        why += [f"hostPath {h}" for h in _items(r.host_paths) if is_sensitive_host_path(h)]
        why += [
            f"capability {c}"
            for c in _items(r.capabilities_added)
            if c.upper().removeprefix("CAP_") in ESCAPE_CAPABILITIES
        ]
        if why and isinstance(r.node, str):
            out.append(
                _edge(
                    pod,
                    node_ids.node(r.node),
                    "host_escape",
                    f"{basis} runs {', '.join(why)} on node {r.node}",
                    basis,
                    f"redeploy without {', '.join(why)}; enforce Pod Security baseline on {r.namespace}",
                    **life,
                )
            )
        if isinstance(r.workload, str) and r.workload_kind in KIND_RESOURCE:
            out.append(
                _edge(
                    node_ids.workload(r.namespace, KIND_RESOURCE[r.workload_kind], r.workload),
                    pod,
                    "runs",
                    f"{r.workload_kind} {r.namespace}/{r.workload} runs {pod}",
                    basis,
                    "",
                    cuttable=False,
                    **life,
                )
            )
    for r in w.pod_nodes[w.pod_nodes["node"].notna()].itertuples(index=False):
        out.append(
            _edge(
                node_ids.node(r.node),
                node_ids.pod(r.namespace, r.name),
                "hosts",
                f"pod {r.namespace}/{r.name} ran on node {r.node}",
                f"Node {r.node}",
                "",
                cuttable=False,
            )
        )
    return out


def _nan(v: Any) -> bool:
    return isinstance(v, float) and np.isnan(v)


def _membership_edges(w: _World, ev: Evidence) -> list[tuple[Any, ...]]:
    """Identities → the groups that RBAC binds (only those: the rest change nothing)."""
    bound = {str(s) for k, s in zip(w.rbac["subject_kind"], w.rbac["subject"]) if k == "Group"}
    if not bound:
        return []
    out: list[tuple[Any, ...]] = []
    for ns, names in w.sas_by_ns.items():
        for sa in names:
            for group in ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"):
                if group in bound:
                    out.append(
                        _edge(
                            node_ids.service_account(ns, sa),
                            node_ids.group(group),
                            "member_of",
                            f"every service account of {ns} is in {group}",
                            f"Group {group}",
                            "",
                            cuttable=False,
                        )
                    )
    pairs: set[tuple[str, str]] = set()
    for a in ev.audit_chunks():  # the audit log a chunk at a time: only the (user, group) pairs are kept
        if "user_groups" in a.columns:
            seen = a.loc[a["sa_name"].isna() & a["user"].notna(), ["user", "user_groups"]].dropna()
            pairs |= {
                (u, g) for u, groups in zip(seen["user"], seen["user_groups"]) for g in _items(groups) if g in bound
            }
    for user, group in sorted(pairs):
        out.append(
            _edge(
                node_ids.user(user),
                node_ids.group(group),
                "member_of",
                f"the audit log shows {user} in group {group}",
                f"Group {group}",
                "",
                cuttable=False,
            )
        )
    return out
