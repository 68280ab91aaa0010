"""The remediation checklist: one row per action, in the order an incident-response process
runs it — preserve the evidence, contain, invalidate credentials, eradicate, recover, harden,
verify (NIST SP 800-61 r2, section 3.3) — each with the reason behind it, the findings and
evidence, the control, references, the command or artifact that carries it out, and the check
``remediate --verify`` makes against a later snapshot of the inventory. Built from the findings,
the lateral-movement graph (what the attacker reached, created and read; which configuration
edges to cut) and the inventory."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import node_ids
from ..analysis.possible import KIND_RESOURCE
from ..analysis.reach import EXPOSED, REACHED, SOURCE, edges_to_cut
from ..analysis.scope import AttackScope, attack_scope
from ..context.networks import Network, is_external
from ..frames import clock
from .commands import chain, command, kubectl, names_ok, suspicious, valid_name

if TYPE_CHECKING:
    import networkx as nx

ACTION_COLUMNS = [
    "action_id",
    "step",
    "priority",
    "phase",
    "kind",
    "action",
    "target",
    "control",
    "why",
    "finding_ids",
    "event_ids",
    "references",
    "command",
    "artifact",
    "check",
    "status",
]
PHASE = {
    1: "preserve evidence",
    2: "contain",
    3: "invalidate credentials",
    4: "eradicate",
    5: "recover",
    6: "harden",
    7: "verify",
}
# what an action does, one verb each (the ``kind`` column)
KINDS = (
    "preserve",
    "isolate",
    "cordon",
    "block",
    "rotate",
    "revoke",
    "delete",
    "rebuild",
    "redeploy",
    "restore",
    "apply",
    "review",
    "verify",
)
QUARANTINE_LABEL = "k8sforensics.io/quarantine"
QUARANTINE_POLICY = "k8sforensics-quarantine"
# Kubernetes docs, "Managing Service Accounts" and kube-apiserver --service-account-extend-token-expiration (default true)
EXTENDED_TOKENS = (
    "a token the kubelet mounted stays valid up to a year when the API server extends bound tokens (the default) "
    "and dies only with its pod or its service account"
)
# how a cloud identity's sessions are cut off (AWS IAM docs "Revoking IAM role temporary security credentials";
# Google Cloud docs "Workload Identity Federation for GKE"; Microsoft Entra Workload ID docs)
CLOUD_REVOCATION = {
    "AWS": 'in IAM, "Revoke active sessions" of the role (an inline policy denying every session issued before now, '
    "condition aws:TokenIssueTime), then review its CloudTrail activity",
    "GCP": "remove the roles/iam.workloadIdentityUser binding of the Kubernetes account on the Google service account until it is "
    "rotated (its access tokens live up to an hour), and disable any key the attacker may have created for it",
    "Azure": "remove the federated identity credential of the Kubernetes account on the managed identity or app registration "
    "(its tokens live up to a day), then review its sign-in and activity logs",
}
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}")  # an image reference pinned by digest
_RESOURCE = re.compile(r"[a-z][a-z0-9.-]*")  # a resource or kind as kubectl takes it
# per Threat Matrix technique a finding names: the control that stops it again (Microsoft Threat Matrix for Kubernetes mitigations, MS-M9xxx)
TECHNIQUE_CONTROLS: dict[str, tuple[str, str, str]] = {
    "MS-TA9002": (
        "admission policy",
        "allow images only from the trusted repositories (generated Gatekeeper/Kyverno policies)",
        "CIS 5.5.1; GK:K8sAllowedRepos; KY:restrict-image-registries; MS-M9005.003",
    ),
    "MS-TA9004": (
        "Pod Security / hardening",
        "patch the exploited application; run it read-only, non-root, without the service-account token",
        "NSA 1.1; MS-M9011, M9012, M9025",
    ),
    "MS-TA9006": (
        "RBAC",
        "grant pods/exec, attach, portforward and ephemeralcontainers to a break-glass group only",
        "KY:block-pod-exec-by-namespace; MS-M9010",
    ),
    "MS-TA9007": (
        "Pod Security / hardening",
        "readOnlyRootFilesystem and distroless images so no shell or tools are at hand",
        "GK:K8sPSPReadOnlyRootFilesystem; KY:require-ro-rootfs; NSA 1.1; MS-M9011, M9012",
    ),
    "MS-TA9008": ("RBAC", "workload writes only from CI identities", "CIS 5.1.4; MS-M9003"),
    "MS-TA9012": (
        "RBAC",
        "workload writes only from CI identities; no service-account swaps",
        "CIS 5.1.4; KY:restrict-pod-controller-serviceaccount-updates",
    ),
    "MS-TA9013": (
        "Pod Security Admission",
        "enforce baseline: no hostPath",
        "CIS 5.2.11; GK:K8sPSPHostFilesystem; KY:disallow-host-path; MS-M9016",
    ),
    "MS-TA9014": ("RBAC", "CronJob and Job writes only from CI identities", "CIS 5.1.4; KY:restrict-jobs"),
    "MS-TA9016": (
        "service-account tokens",
        "automountServiceAccountToken: false where the API is not needed; short bound tokens",
        "CIS 5.1.5, 5.1.6; KY:restrict-automount-sa-token; NSA 1.11; MS-M9025",
    ),
    "MS-TA9018": (
        "Pod Security Admission",
        "enforce baseline: no privileged containers, no host namespaces",
        "CIS 5.2.1, 5.2.2; GK:K8sPSPPrivilegedContainer; KY:disallow-privileged-containers; NSA 1.2; MS-M9013, M9017",
    ),
    "MS-TA9019": (
        "RBAC",
        "no bind, escalate or impersonate; deny roleRef cluster-admin outside the platform group",
        "CIS 5.1.1, 5.1.3, 5.1.7, 5.1.8; KY:restrict-binding-clusteradmin; MS-M9003",
    ),
    "MS-TA9022": (
        "audit logging",
        "ship audit logs off-cluster; no delete on events",
        "CIS 1.2.16-1.2.19, 3.2.1; NSA 8.0; MS-M9020",
    ),
    "MS-TA9023": ("admission policy", "no user workloads in kube-system", "CIS 5.6.1; MS-M9016"),
    "MS-TA9025": (
        "RBAC",
        "remove get/list/watch on secrets; encryption at rest; an external secret store",
        "CIS 5.1.2, 5.4.1, 5.4.2; KY:restrict-secret-role-verbs; NSA 6.1; MS-M9022",
    ),
    "MS-TA9029": (
        "RBAC",
        "least privilege from what identities actually use (generated Roles)",
        "CIS 5.1.1, 5.1.3; MS-M9003",
    ),
    "MS-TA9031": (
        "NetworkPolicy",
        "default deny, then the flows observed outside the attack (generated)",
        "CIS 5.3.2; NSA 2.0, 3.0; MS-M9014",
    ),
    "MS-TA9034": (
        "NetworkPolicy",
        "default deny, then the flows observed outside the attack (generated)",
        "CIS 5.3.2; NSA 2.0, 3.0; MS-M9014",
    ),
    "MS-TA9033": (
        "NetworkPolicy",
        "egress except 169.254.169.254/32; IMDSv2 with hop limit 1; workload identity",
        "MS-M9018, M9019",
    ),
    "MS-TA9039": (
        "resource limits / egress",
        "requests and limits, ResourceQuota, and no egress to the Internet by default",
        "CIS 1.2.9; GK:K8sContainerLimits; NSA 4.0; MS-M9029",
    ),
}


# Cluster-critical system components: quarantining or redeploying one the attacker did not reach
# takes the cluster down with it (DNS, the pod network, Services, load balancers, volumes,
# monitoring), so they are never isolated; their exposed credentials are rotated and their
# node rebuilt instead. Namespaces the platform and its add-ons run in (Kubernetes docs,
# "Namespaces": kube-system, kube-public, kube-node-lease; the managed platforms' own):
SYSTEM_NAMESPACES = re.compile(
    r"^(?:kube-system|kube-public|kube-node-lease|(?:kube|gke|gmp|aks|eks|amazon|aws|azure|calico|tigera|cilium|"
    r"openshift)-[a-z0-9-]*|[a-z0-9-]+-system)$"
)
# labels the Kubernetes add-ons carry (cluster/addons: k8s-app, kubernetes.io/cluster-service, addonmanager.kubernetes.io/mode;
# kubeadm's static control-plane pods: tier=control-plane)
SYSTEM_LABELS = {
    "k8s-app": None,
    "kubernetes.io/cluster-service": "true",
    "addonmanager.kubernetes.io/mode": None,
    "tier": "control-plane",
}
# well-known components by name (workload, app.kubernetes.io/name, app, name): DNS, kube-proxy, CNI agents, CSI drivers,
# cloud and load-balancer controllers, metrics and monitoring agents, node autoscalers
SYSTEM_NAMES = re.compile(
    r"(?:^|-)(?:coredns|kube-dns|kube-proxy|metrics-server|aws-node|calico-node|calico-kube-controllers|cilium|cilium-operator|"
    r"kube-flannel|flannel|weave-net|antrea-agent|antrea-controller|kube-router|azure-cns|azure-ip-masq-agent|ip-masq-agent|netd|"
    r"[a-z0-9]*-?csi-[a-z0-9-]*|csi-[a-z0-9]+|aws-load-balancer-controller|cloud-controller-manager|cloud-node-manager|ingress-nginx-controller|"
    r"metallb|speaker|konnectivity-agent|cluster-autoscaler|karpenter|prometheus|prometheus-node-exporter|node-exporter|"
    r"kube-state-metrics|alertmanager|grafana-agent|fluent-bit|fluentd|datadog-agent|cloudwatch-agent|otel-collector|"
    r"kube-apiserver|kube-controller-manager|kube-scheduler|etcd)(?:-|$)"
)
ROLLOUT_RESOURCES = frozenset({"deployments", "daemonsets", "statefulsets"})  # what kubectl rollout undo takes
SYSTEM_PRIORITY_CLASSES = frozenset({"system-node-critical", "system-cluster-critical"})
# kinds an attacker's creation can be, as kubectl names them, for the graph's node prefixes
_PREFIX_RESOURCE = {"pod": "pods", "sa": "serviceaccounts", "secret": "secrets"}
_WEBHOOKS = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")


def system_component(
    namespace: object,
    name: object,
    *,
    labels: dict[str, str] | None = None,
    workload: object = None,
    priority_class: object = None,
) -> str:
    """Why a pod is a cluster-critical system component ("" when it is not): its namespace,
    the add-on labels, a node- or cluster-critical priority class, or a well-known component
    name (DNS, kube-proxy, CNI, CSI, cloud and load-balancer controllers, monitoring)."""
    labels = labels or {}
    if isinstance(priority_class, str) and priority_class in SYSTEM_PRIORITY_CLASSES:
        return f"priority class {priority_class}"
    for key, value in SYSTEM_LABELS.items():
        if key in labels and (value is None or labels[key] == value):
            return f"label {key}={labels[key]}"
    names = [
        str(x)
        for x in (workload, labels.get("app.kubernetes.io/name"), labels.get("app"), labels.get("name"), name)
        if isinstance(x, str)
    ]
    for n in names:
        hit = SYSTEM_NAMES.search(n.rsplit("/", 1)[-1].rsplit(" ", 1)[-1])
        if hit:
            return f"a {hit.group(0).strip('-')} component"
    if isinstance(namespace, str) and SYSTEM_NAMESPACES.match(namespace):
        return f"namespace {namespace}"
    return ""


def _pod_info(pods: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """pod:ns/name → what the inventory says of it (labels, workload, node, service account)."""
    if pods is None or pods.empty:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for r in pods.to_dict("records"):
        labels = r.get("labels")
        out[node_ids.pod(r.get("namespace"), r.get("name"))] = {
            "labels": dict(labels)
            if isinstance(labels, dict)
            else dict(labels or [])
            if labels is not None and not isinstance(labels, float)
            else {},
            "workload": r.get("workload") if isinstance(r.get("workload"), str) else None,
            "workload_kind": r.get("workload_kind") if isinstance(r.get("workload_kind"), str) else None,
            "owner_kind": r.get("owner_kind"),
            "node": r.get("node") if isinstance(r.get("node"), str) else None,
            "service_account": r.get("service_account"),
            "priority_class": r.get("priority_class_name", r.get("priority_class")),
        }
    return out


def isolated_pods(reached: pd.DataFrame, graph: nx.MultiDiGraph, *, pods: pd.DataFrame | None = None) -> list[str]:
    """The pods the checklist isolates with the deny-all quarantine policy: those the attacker
    reached (never one merely exposed on a node they escaped to), less the cluster-critical
    system components — unless the attacker made the pod (a look-alike is not the component)."""
    info = _pod_info(pods)
    out = []
    for r in reached.itertuples(index=False):
        if not node_ids.is_a(r.node, "pod") or getattr(r, "how", REACHED) not in (REACHED, SOURCE):
            continue
        # a replica of a workload the attacker made or changed runs their code: quarantined until the
        # workload is deleted or rolled back (it would get fresh tokens for a recreated account meanwhile)
        runs_theirs = _via_of(reached, str(r.node)) == "runs"
        if runs_theirs or _made_by_attacker(reached, str(r.node)) or not _system_reason(str(r.node), graph, info):
            out.append(str(r.node))
    return out


def _via_of(reached: pd.DataFrame, node: str) -> object:
    hit = reached.loc[reached["node"] == node, "via"]
    return hit.iloc[0] if len(hit) else None


def _made_by_attacker(reached: pd.DataFrame, node: str) -> bool:
    """The attacker created the pod, or the workload that runs it (a pod they only patched or
    exec'd into is still the component it was)."""
    parent = dict(zip(reached["node"], reached["parent"]))
    via = dict(zip(reached["node"], reached["via"]))
    n, seen = node, set()
    while via.get(n) == "runs" and n not in seen:  # a CronJob's Job's pod: up to what the attacker did
        seen.add(n)
        n = parent.get(n)
    v = via.get(n)
    # a static pod on a node the attacker held was planted there: whoever writes the kubelet's
    # manifest folder makes the pod (Kubernetes docs, "Create static Pods")
    return isinstance(v, str) and (v.startswith("create") or v == "static_pod")


def _system_reason(node: str, graph: nx.MultiDiGraph, info: dict[str, dict[str, Any]]) -> str:
    n = node_ids.parse(node)
    ns, name = n.namespace, n.name
    i = info.get(node, {})
    attrs = graph.nodes[node] if node in graph else {}
    return system_component(
        ns,
        name,
        labels=i.get("labels"),
        workload=i.get("workload") or attrs.get("workload"),
        priority_class=i.get("priority_class"),
    )


@dataclass(frozen=True)
class Facts:
    """What the case says beyond the graph that the checklist needs: the uid of each object as
    the case saw it (what ``--verify`` compares a later snapshot to), the legacy token Secrets
    and cloud identities of each service account, the tokens the attacker requested, and the
    image digests of each workload's pods."""

    uids: Mapping[tuple[str, str | None, str], str] = field(default_factory=dict)  # (resource, namespace, name) → uid
    legacy_tokens: Mapping[str, list[str]] = field(default_factory=dict)  # sa:ns/name → its token Secrets' names
    cloud_identities: Mapping[str, list[tuple[str, str]]] = field(
        default_factory=dict
    )  # sa:ns/name → (cloud, identity)
    token_requests: pd.DataFrame | None = None  # TOKEN_REQUEST_COLUMNS
    digests: Mapping[tuple[str, str], dict[str, str]] = field(
        default_factory=dict
    )  # (ns, Kind/name) → container → image@digest
    since: str | None = None  # the case's last evidence time: a later object is a new one

    def check(self, expect: str, resource: str, namespace: str | None, name: str, **extra: Any) -> dict[str, Any]:
        """An atomic ``--verify`` check of one object, with the uid the case knows it by."""
        ns = namespace or None
        out = {
            "expect": expect,
            "resource": resource,
            "namespace": ns,
            "name": name,
            "uid": self.uids.get((resource, ns, name)),
        }
        if expect == "replaced":
            out["since"] = self.since
        return out | extra


def manual(why: str) -> dict[str, Any]:
    """A check ``--verify`` cannot make from the inventory, and why."""
    return {"expect": "manual", "why": why}


TOKEN_REQUEST_COLUMNS = ["sa", "time", "expiration_seconds", "expires", "bound_kind", "bound_name", "actor", "event_id"]


def remediation_actions(
    findings: pd.DataFrame,
    graph: nx.MultiDiGraph,
    *,
    scope: AttackScope | None = None,
    attacker_ips: set[str] | None = None,
    workload_images: dict[tuple[str, str], list[str]] | None = None,
    bindings: dict[str, tuple[str, str | None]] | None = None,
    ended: dict[str, Any] | None = None,
    artifacts: dict[str, str] | None = None,
    artifact_files: Mapping[str, str] | None = None,
    networks: Iterable[Network] = (),
    pods: pd.DataFrame | None = None,
    created: pd.DataFrame | None = None,
    preserve: Iterable[Mapping[str, Any]] = (),
    more: Iterable[Mapping[str, Any]] = (),
    facts: Facts | None = None,
    case: str = "CASE",
) -> pd.DataFrame:
    """The checklist (columns ``ACTION_COLUMNS``) in the order an incident-response process runs
    it (``PHASE``): preserve → contain → invalidate credentials → eradicate → recover → harden →
    verify. ``scope`` is what the attacker reached or exposed and where from (default:
    ``attack_scope`` of the graph, outside ``networks``); ``attacker_ips`` more addresses to block (C2, pools the
    attacker's pods used) — only outside ones are (``network.is_external`` with ``networks``,
    the cluster's own); ``workload_images`` the known-good images per (namespace, "Kind/name");
    ``bindings`` the kind and namespace of each binding node (``binding:name``) the attacker
    made; ``ended`` when each pod that is no longer running ended (``pod:ns/name`` → time);
    ``artifacts`` maps a control to the generated file that carries it out (only files with
    objects in them: no step refers to an empty file), as the commands name it (relative to
    where they run), and ``artifact_files`` the same files as ``--verify`` opens them; ``pods`` the inventory's pods (tells
    system components); ``created`` objects the attacker's identities created per the audit log
    (columns resource, namespace, name, actor, event_id); ``preserve`` the preservation rows
    (``preserve.preservation_actions``) and ``more`` any other rows (keys as the columns) to
    merge in; ``facts`` what ``--verify`` checks against; ``case`` the case folder as the
    commands should name it."""
    artifacts = artifacts or {}
    files = artifact_files or artifacts
    facts = facts or Facts()
    nets = tuple(networks)
    ids_of = _finding_index(findings)
    scope = scope if scope is not None else attack_scope(graph, networks=nets)
    sources, reached = scope.sources, scope.paths
    how = dict(zip(reached["node"], reached["how"]))
    done = {n for n, h in how.items() if h in (SOURCE, REACHED)}
    info = _pod_info(pods)
    rows: list[dict[str, Any]] = []

    def add(
        priority: int,
        kind: str,
        action: str,
        target: str,
        control: str,
        *,
        events: list[str] | None = None,
        references: str = "",
        command: str = "",
        artifact: str = "",
        why: str = "",
        check: dict[str, Any] | None = None,
    ) -> None:
        events = list(dict.fromkeys(events or []))
        fids = sorted({f for e in events for f in ids_of.get(e, ())})
        rows.append(
            {
                "priority": priority,
                "phase": PHASE[priority],
                "kind": kind,
                "action": action,
                "target": target,
                "control": control,
                "why": why,
                "finding_ids": fids,
                "event_ids": events[:50],
                "references": references,
                "command": command,
                "artifact": artifact,
                "check": check,
                "status": "open",
            }
        )

    parents = dict(zip(reached["node"], reached["parent"]))
    ids = dict(zip(reached["node"], reached["event_ids"]))

    def evidence(node: str) -> list[str]:
        """The events that got the attacker to ``node`` — or, for what the inventory alone
        connects (a workload's pods, a node's pods), to the nearest node on its way there."""
        seen: set[str] = set()
        n: Any = node
        while isinstance(n, str) and n not in seen:
            seen.add(n)
            if len(ids.get(n) or []):
                return list(ids[n])
            n = parents.get(n)
        return []

    def pod_check(node: str) -> dict[str, Any]:
        n = node_ids.parse(node)
        return facts.check("replaced", "pods", n.namespace, n.name)

    # 1. preserve: what containment will erase, collected first (built by preserve.preservation_actions)
    for r in preserve:
        add(
            1,
            "preserve",
            r["action"],
            r["target"],
            r.get("control", "evidence preservation"),
            events=list(r.get("event_ids") or []),
            references=r.get("references", ""),
            command=r.get("command", ""),
            artifact=r.get("artifact", ""),
            why=r.get("why", ""),
            check=r.get("check"),
        )
    made = attacker_objects(graph, reached, bindings=bindings, created=created)
    # 2. contain — first of all a webhook the attacker made: it sees (and can change or block) every
    # object the rest of the checklist creates (Kubernetes docs, Dynamic Admission Control)
    for o in made:
        if any(k in _WEBHOOKS for k in o["resource"].split(",")):
            _delete(add, o, info=info, facts=facts)
    more = list(more)

    def merge(rows: Iterable[Mapping[str, Any]]) -> None:
        for r in rows:
            add(
                int(r["priority"]),
                str(r["kind"]),
                str(r["action"]),
                str(r["target"]),
                str(r["control"]),
                events=list(r.get("event_ids") or []),
                references=str(r.get("references", "")),
                command=str(r.get("command", "")),
                artifact=str(r.get("artifact", "")),
                why=str(r.get("why", "")),
                check=r.get("check"),
            )

    merge(r for r in more if int(r["priority"]) <= 2)  # an open door (an anonymous grant) is closed next
    isolate = set(isolated_pods(reached, graph, pods=pods))
    quarantine = artifacts.get("quarantine", "")
    if isolate and quarantine:
        add(
            2,
            "apply",
            "apply the deny-all quarantine NetworkPolicies (no traffic in or out, not even DNS) in the namespaces of the pods "
            "isolated next — a server dry-run first",
            f"file:{quarantine}",
            "NetworkPolicy",
            references="CIS 5.3.2; MS-M9014",
            artifact=quarantine,
            command=chain(kubectl("apply", "--dry-run=server", "-f", quarantine), kubectl("apply", "-f", quarantine)),
            check={"expect": "applied", "file": files.get("quarantine", quarantine)},
            why="isolates the pods the attacker ran code in while they are kept for forensics",
        )
    drain: dict[str, list[str]] = {}  # node → the reached system pods on it
    system_rows: list[tuple[str, str, str]] = []
    for node in (n for n in reached["node"] if node_ids.is_a(n, "pod") and how[n] in (REACHED, SOURCE)):
        ns, pod = node_ids.namespaced(node)
        gone = (ended or {}).get(node)
        if _via_of(reached, node) == "runs" and (gone is not None or not _made_by_attacker(reached, node)):
            continue  # a pod of a workload the attacker made (gone) or changed: deleting or rolling back the workload does it
        state = f" — it ended at {clock(gone)}: make sure it has not come back" if gone is not None else ""
        ok = names_ok(("namespace", ns), ("pod", pod))
        if node in isolate:
            add(
                2,
                "isolate",
                f"isolate pod {ns}/{pod}: label it so the quarantine policy selects it; keep it running for forensics, do not "
                f"delete it before it is preserved{state}" + ("" if ok else suspicious([ns, pod])),
                node,
                "NetworkPolicy",
                events=evidence(node),
                references="CIS 5.3.2; MS-M9014",
                artifact=quarantine,
                command=kubectl("label", "pod", pod, f"{QUARANTINE_LABEL}=true", "--overwrite", namespace=ns)
                if ok
                else "",
                check={
                    "all": [
                        facts.check("label", "pods", ns, pod, key=QUARANTINE_LABEL, value="true"),
                        facts.check("present", "networkpolicies", ns, QUARANTINE_POLICY),
                    ]
                },
                why=f"control reached it ({_via(reached, node)})",
            )
            continue
        host = (
            info.get(node, {}).get("node") or graph.nodes[node].get("host")
            if node in graph
            else info.get(node, {}).get("node")
        )
        if isinstance(host, str):
            drain.setdefault(host, []).append(f"{ns}/{pod}")
        system_rows.append((node, state, "" if ok else suspicious([ns, pod])))
    held_nodes = [n for n in reached["node"] if node_ids.is_a(n, "node") and how[n] in (REACHED, SOURCE)]
    for node in [*held_nodes, *(node_ids.node(h) for h in sorted(drain) if node_ids.node(h) not in held_nodes)]:
        name = node_ids.parse(node).name
        ok = valid_name(name)
        held = node in held_nodes
        add(
            2,
            "cordon",
            f"cordon node {name} so nothing new is scheduled there"
            + (
                " (the attacker held the host)"
                if held
                else f" (the attacker ran code in system pod(s) {', '.join(drain[name])} on it)"
            )
            + ("" if ok else suspicious([name])),
            node,
            "rebuild",
            events=evidence(node) if held else [],
            references="NSA 1.0",
            command=kubectl("cordon", name) if ok else "",
            check=facts.check("unschedulable", "nodes", None, name),
            why=f"host escape ({_via(reached, node)})" if held else "a compromised cluster-critical pod ran there",
        )
    blocked = {node_ids.ip(ip) for ip in attacker_ips or ()} | {s for s in sources if node_ids.is_a(s, "ip")}
    named = _named_addresses(findings)
    blocked |= {n for n in graph if node_ids.is_a(n, "ip") and _accessed(graph, reached, n, networks=nets, named=named)}
    blocked |= {
        u
        for n in done
        if node_ids.is_a(n, "sa", "user")
        for u, _, d in graph.in_edges(n, data=True)
        if node_ids.is_a(u, "ip") and d.get("observed") and not str(d["type"]).startswith("flow")
    }  # where a held credential was used from
    for ip in sorted(
        b for b in blocked if is_external(node_ids.label(b), nets)
    ):  # never a node's, a pod's or a VPC address
        add(
            2,
            "block",
            f"block {node_ids.label(ip)} at the edge (ingress, firewall, egress proxy)",
            ip,
            "network block",
            events=_edge_events(graph, ip),
            references="NSA 2.0; MS-M9007",
            check=manual("a firewall or proxy rule is outside the cluster's inventory"),
            why="the attack came from it"
            if ip in sources
            else "compromised workloads talked to it, or a stolen credential was used from it",
        )
    for node, state, flag in system_rows:
        ns, pod = node_ids.namespaced(node)
        risk, procedure = _system_procedure(node, graph, info)
        add(
            2,
            "redeploy",
            f"replace system pod {ns}/{pod} ({_system_reason(node, graph, info)}), never quarantine it: {risk}. "
            f"{procedure}{state}" + flag,
            node,
            "replace system component",
            events=evidence(node),
            references="NSA 1.1; MS-M9014",
            command=kubectl("delete", "pod", pod, "--ignore-not-found", namespace=ns) if not flag else "",
            check=pod_check(node),
            why=f"control reached it ({_via(reached, node)})",
        )
    # 3. invalidate credentials the way Kubernetes invalidates them
    _credentials(
        add,
        graph,
        reached,
        how=how,
        done=done,
        evidence=evidence,
        facts=facts,
        info=info,
        made_targets={o["target"] for o in made},
    )
    # 4. eradicate: what the attacker made, what they changed, what let them through
    created_bindings = {o["name"] for o in made if o["resource"] in ("clusterrolebindings", "rolebindings")}
    for o in made:
        if not any(k in _WEBHOOKS for k in o["resource"].split(",")):
            _delete(add, o, info=info, facts=facts)
    foothold = [n for n in reached["node"] if node_ids.is_a(n, "pod") and how[n] == REACHED][:1]
    crown = [n for n, k in graph.nodes(data="kind") if k == "node" or n == node_ids.role(None, "*")]
    crown = [n for n in crown if n not in foothold]
    if foothold and crown:
        # what is left once the attacker's bindings are gone: the configuration that was there before
        before = graph.copy()
        before.remove_edges_from(
            [
                (u, v, k)
                for u, v, k, d in graph.edges(keys=True, data=True)
                if str(d.get("basis") or "").split(" ", 1)[-1].split("/")[-1] in created_bindings
                or u in {node_ids.binding(b) for b in created_bindings}
            ]
        )
        cut = edges_to_cut(before, foothold, crown)
        for r in cut[cut["cuttable"]].itertuples(index=False):
            add(
                4,
                "review",
                f"cut {r.type} {r.source} → {r.target}: {r.fix}",
                r.basis or r.source,
                "RBAC" if "Binding" in str(r.basis) else "pod spec",
                references="CIS 5.1.1, 5.1.3, 5.2; MS-M9003, M9013",
                why=f"on the way from {foothold[0]} to the nodes: {r.reason}",
                check=manual("a configuration change to review"),
            )
    # 5. recover: rebuild what the attacker held, redeploy what they changed, from what is known to be good
    for node in held_nodes:
        name = node_ids.parse(node).name
        ok = valid_name(name)
        add(
            5,
            "rebuild",
            f"drain node {name} (kubectl drain evicts through the Eviction API and so respects PodDisruptionBudgets; never "
            f"--disable-eviction), then rebuild it from a clean image and delete the old Node object: every pod's token and the kubelet's "
            f"credential on it were within the attacker's reach" + ("" if ok else suspicious([name])),
            node,
            "rebuild",
            events=evidence(node),
            references="NSA 1.0; MS-M9025; Kubernetes docs: Safely Drain a Node",
            command=chain(
                kubectl("drain", name, "--ignore-daemonsets", "--delete-emptydir-data"), kubectl("delete", "node", name)
            )
            if ok
            else "",
            check=facts.check("replaced", "nodes", None, name),
            why=f"host escape ({_via(reached, node)})",
        )
    for host, system_pods in sorted(drain.items()):
        if node_ids.node(host) in held_nodes:
            continue  # rebuilt above
        ok = valid_name(host)
        add(
            5,
            "rebuild",
            f"drain node {host} (respecting PodDisruptionBudgets) and inspect it before it takes pods again: the attacker ran "
            f"code in system pod(s) {', '.join(system_pods)} on it" + ("" if ok else suspicious([host])),
            node_ids.node(host),
            "rebuild",
            references="NSA 1.0; Kubernetes docs: Safely Drain a Node",
            command=kubectl("drain", host, "--ignore-daemonsets", "--delete-emptydir-data") if ok else "",
            check=facts.check("unschedulable", "nodes", None, host),
            why="a compromised cluster-critical pod is replaced, not quarantined; its node is inspected",
        )
    for (ns, workload), pods_of in _compromised_workloads(graph, reached, isolate).items():
        kind_name = workload.split("/", 1)
        ok = (
            len(kind_name) == 2
            and names_ok(("namespace", ns), ("workload", kind_name[1]))
            and bool(_RESOURCE.fullmatch(kind_name[0].lower()))
        )
        resource = KIND_RESOURCE.get(kind_name[0], kind_name[0].lower() + "s")
        digests = facts.digests.get((ns, workload), {})
        text, cmd = _redeploy(ns, workload, digests, (workload_images or {}).get((ns, workload), []), ok=ok)
        old_pods = [{"name": p, "uid": facts.uids.get(("pods", ns, p))} for p in pods_of]
        add(
            5,
            "redeploy",
            f"redeploy {workload} in {ns} {text}" + ("" if ok else suspicious([ns, workload])),
            node_ids.workload(ns, kind_name[0], kind_name[-1]),  # a pod's workload attribute is always "<Kind> <name>"
            "redeploy",
            references="NSA 1.1; MS-M9004",
            command=cmd,
            check=_redeployed(facts, resource, ns, kind_name[-1], old_pods, pinned=bool(digests)),
            why=f"its pod(s) {', '.join(pods_of)} were compromised",
            events=[e for p in pods_of for e in evidence(node_ids.pod(ns, p))],
        )
    for node in (n for n in reached["node"] if node_ids.is_a(n, "workload") and _via_of(reached, n) == "patch"):
        w = node_ids.parse(node)
        ns, resource, name = w.namespace or "", w.resource or "", w.name
        kind = {v: k for k, v in KIND_RESOURCE.items()}.get(resource, resource)
        ok = names_ok(("namespace", ns), ("workload", name)) and bool(_RESOURCE.fullmatch(resource))
        digests = facts.digests.get((ns, f"{kind}/{name}"), {})
        text, cmd = _redeploy(
            ns,
            f"{kind}/{name}",
            digests,
            (workload_images or {}).get((ns, f"{kind}/{name}"), []),
            ok=ok,
            undo=resource in ROLLOUT_RESOURCES,
        )
        runs = [
            node_ids.parse(n).name
            for n, p, v in zip(reached["node"], reached["parent"], reached["via"])
            if p == node and v == "runs" and node_ids.is_a(n, "pod") and node_ids.parse(n).namespace == ns
        ]
        add(
            5,
            "redeploy",
            f"redeploy {kind}/{name} in {ns}: roll it back to its revision before the attacker's change, {text}; its pods "
            f"run what the attacker put there" + ("" if ok else suspicious([ns, name])),
            node_ids.workload(ns, kind, name),
            "redeploy",
            events=evidence(node),
            references="NSA 1.1; MS-M9004",
            command=cmd,
            check=_redeployed(
                facts,
                resource,
                ns,
                name,
                [{"name": p, "uid": facts.uids.get(("pods", ns, p))} for p in runs],
                pinned=bool(digests),
            ),
            why=f"changed by the attacker ({_via(reached, node)})",
        )
    # 6. harden: the generated policies (only files with objects in them), and the control per technique the attack used
    for control, text, refs in (
        (
            "NetworkPolicy",
            "apply the generated NetworkPolicies (default deny, then the observed legitimate flows)",
            "CIS 5.3.2; NSA 2.0, 3.0; MS-M9014",
        ),
        (
            "Pod Security Admission",
            "label namespaces with the strictest Pod Security level their pods meet",
            "CIS 5.2; NSA 1.2; MS-M9017",
        ),
        (
            "RBAC",
            "apply the generated least-privilege Roles, then bind them in place of the broad roles",
            "CIS 5.1.1, 5.1.3; MS-M9003",
        ),
        (
            "admission policy",
            (
                "install the generated Gatekeeper policies (Gatekeeper must be installed: the "
                "dry-run fails without its CRDs; Kyverno users take the Kyverno file instead): trusted "
                "registries only; no privileged, hostPath or host-namespace pods"
            ),
            "CIS 5.5.1, 5.2.1-5.2.5, 5.2.11; MS-M9005.003, M9013",
        ),
    ):
        path = artifacts.get(control)
        if not path:
            continue  # nothing to apply: no step refers to an empty file
        add(
            6,
            "apply",
            text,
            f"file:{path}",
            control,
            references=refs,
            artifact=path,
            command=chain(kubectl("apply", "--dry-run=server", "-f", path), kubectl("apply", "-f", path)),
            check={"expect": "applied", "file": files.get(control, path)},
        )
    if "technique_id" in findings.columns:
        for tech, g in findings.dropna(subset=["technique_id"]).groupby("technique_id"):
            if tech in TECHNIQUE_CONTROLS:
                control, text, refs = TECHNIQUE_CONTROLS[tech]
                events = [e for ids in g["event_ids"] if ids is not None for e in ids]
                add(
                    6,
                    "review",
                    f"{text} ({tech}: {g['title'].iloc[0]})",
                    str(tech),
                    control,
                    events=events,
                    references=refs,
                    check=manual("a control to put in place"),
                )
    merge(r for r in more if int(r["priority"]) > 2)
    # 7. verify
    add(
        7,
        "verify",
        "after the fixes, snapshot the inventory again and check every action against it: `k8sforensics collect` then "
        "`k8sforensics remediate --verify`",
        "cluster",
        "verification",
        command=chain(
            command("k8sforensics", "collect", "--out", "after-remediation"),
            command("k8sforensics", "remediate", case, "--verify", "after-remediation"),
        ),
        check=manual("this is the check"),
        why="shows what was carried out, and what was not",
    )
    out = pd.DataFrame(rows, columns=[c for c in ACTION_COLUMNS if c not in ("action_id", "step")])
    out = out.drop_duplicates(["priority", "action", "target"]).sort_values("priority", kind="stable")
    # the same command twice (one binding behind two subjects) is one step: the first says why
    out = out[~(out["command"].ne("") & out.duplicated(["kind", "command"]))].reset_index(drop=True)
    out.insert(0, "step", range(1, len(out) + 1))
    out.insert(0, "action_id", _ids(out))
    return out[ACTION_COLUMNS]


def _host(pod: str, graph: nx.MultiDiGraph, info: dict[str, dict[str, Any]]) -> str:
    """node:<name> a pod ran on, per the inventory or the graph ("node:?" when unknown)."""
    host = info.get(pod, {}).get("node") or (graph.nodes[pod].get("host") if pod in graph else None)
    return node_ids.node(host if isinstance(host, str) else "?")


def _credentials(
    add: Any,
    graph: nx.MultiDiGraph,
    reached: pd.DataFrame,
    *,
    how: dict[str, str],
    done: set[str],
    evidence: Any,
    facts: Facts,
    info: dict[str, dict[str, Any]],
    made_targets: set[str],
) -> None:
    """Phase 3: each credential the attacker held or could reach, invalidated the way
    Kubernetes invalidates it (Kubernetes docs, "Managing Service Accounts": a bound token is
    rejected once its pod, Secret or service account is deleted; it cannot be revoked otherwise)."""
    rotated: list[str] = []
    held_nodes = {n for n in reached["node"] if node_ids.is_a(n, "node") and how[n] in (REACHED, SOURCE)}
    for node in (n for n in reached["node"] if node_ids.is_a(n, "sa")):
        ns, sa = node_ids.namespaced(node)
        ok = names_ok(("namespace", ns), ("serviceaccount", sa))
        flag = "" if ok else suspicious([ns, sa])
        rotated.append(node)
        account = facts.check("replaced", "serviceaccounts", ns, sa)
        if how[node] == EXPOSED:
            holders = sorted(
                {
                    u
                    for u, _, d in graph.in_edges(node, data=True)
                    if how.get(u) in (REACHED, EXPOSED)
                    and node_ids.is_a(u, "pod")
                    and d["type"] in ("token_steal", "token_use")
                }
                | {str(reached.loc[reached["node"] == node, "parent"].iloc[0])} - {"None", "nan"}
            )
            pods_on = [
                h
                for h in holders
                if node_ids.is_a(h, "pod") and names_ok(*zip(("namespace", "pod"), node_ids.namespaced(h)))
            ]
            hosts = {_host(h, graph, info) for h in pods_on}
            if pods_on and hosts <= held_nodes:
                # co-tenants of a node the attacker held: a DaemonSet pod deleted on a cordoned node comes back on it with a
                # fresh token within the attacker's reach, and deleting pods one by one skips PodDisruptionBudgets — the
                # drain and deletion of the node (recover) is what rotates these tokens
                names = ", ".join(sorted(node_ids.label(h) for h in hosts))
                add(
                    3,
                    "rotate",
                    f"rotate the tokens of service account {ns}/{sa} that were within the attacker's reach on node(s) {names}: "
                    f"their pods' bound tokens die when the drain and deletion of the node (under recover) evict them — do not delete "
                    f"the pods one by one (a DaemonSet pod comes back on the node, and PodDisruptionBudgets are skipped), and do not "
                    f"isolate or redeploy them: nothing shows the attacker acting in them. Delete any legacy token Secret of the account"
                    + flag,
                    node,
                    "credential rotation",
                    events=evidence(node),
                    references="CIS 5.1.5, 5.1.6; MS-M9025; Kubernetes docs: Safely Drain a Node",
                    check={
                        "any": [
                            account,
                            {"all": [facts.check("replaced", "nodes", None, node_ids.label(h)) for h in sorted(hosts)]},
                        ]
                    },
                    why=f"its token was exposed ({_via(reached, node)})",
                )
                continue
            cmds = [
                kubectl(
                    "delete", "pod", node_ids.parse(p).name, "--ignore-not-found", namespace=node_ids.parse(p).namespace
                )
                for p in pods_on
            ]
            add(
                3,
                "rotate",
                f"rotate the tokens of service account {ns}/{sa} that were within the attacker's reach: delete the pod(s) "
                f"{', '.join(node_ids.label(h) for h in pods_on) or 'that mounted it'} — their bound tokens die with them; draining their node does it — "
                f"and any legacy token Secret of the account; {EXTENDED_TOKENS}. Do not isolate or redeploy them: nothing shows the attacker "
                f"acting in them" + flag,
                node,
                "credential rotation",
                events=evidence(node),
                references="CIS 5.1.5, 5.1.6; MS-M9025",
                command=chain(*cmds) if ok else "",
                check={
                    "any": [
                        account,
                        {"all": [facts.check("replaced", "pods", *node_ids.namespaced(p)) for p in pods_on]},
                    ]
                }
                if pods_on
                else account,
                why=f"its token was exposed ({_via(reached, node)})",
            )
            continue
        add(
            3,
            "rotate",
            f"rotate service account {ns}/{sa}: delete it and create it again — a new UID, so every token bound to the old one "
            f"is rejected whatever its expiry — then re-apply its annotations and image pull secrets from its definition (Git, or the "
            f"JSON preserved above) and restart the workloads that run as it; {EXTENDED_TOKENS}. Review what it did since"
            + flag,
            node,
            "credential rotation",
            events=evidence(node),
            references="CIS 5.1.5, 5.1.6; MS-M9025; Kubernetes docs: Managing Service Accounts",
            command=chain(
                kubectl("delete", "serviceaccount", sa, namespace=ns),
                kubectl("create", "serviceaccount", sa, namespace=ns),
            )
            if ok
            else "",
            check=account,
            why=f"the attacker held its token ({_via(reached, node)})",
        )
    requests = facts.token_requests if facts.token_requests is not None else pd.DataFrame(columns=TOKEN_REQUEST_COLUMNS)
    for u, v, d in _edges(graph, done, "token_request"):
        if how.get(v) != REACHED or node_ids.is_kubelet(u):
            continue
        ns, sa = node_ids.namespaced(v)
        mine = requests[(requests["sa"] == v) & requests["event_id"].isin(d["event_ids"])]
        tokens = "; ".join(
            f"requested at {clock(r.time)}"
            + (f" for {int(r.expiration_seconds)} s" if pd.notna(r.expiration_seconds) else "")
            + (f", valid until {clock(r.expires)}" if pd.notna(r.expires) else ", expiry not in the audit log")
            + (
                f", bound to {r.bound_kind} {r.bound_name} (deleting that object also revokes it)"
                if isinstance(r.bound_kind, str)
                else ", bound to the account only: it dies only with the account or at its expiry"
            )
            for r in mine.itertuples(index=False)
        )
        ok = names_ok(("namespace", ns), ("serviceaccount", sa))
        again = v in rotated  # recreated above already: this step lists the tokens that recreation rejects
        add(
            3,
            "rotate",
            f"rotate service account {node_ids.label(v)}: the attacker minted tokens for it ({tokens or 'see the evidence events'}); "
            + (
                "the recreation of the account above rejects them all"
                if again
                else "delete and recreate the account to reject them all now"
            )
            + ("" if ok else suspicious([ns, sa])),
            v,
            "credential rotation",
            events=d["event_ids"],
            references="CIS 5.1.13; Kubernetes docs: TokenRequest API",
            command=chain(
                kubectl("delete", "serviceaccount", sa, namespace=ns),
                kubectl("create", "serviceaccount", sa, namespace=ns),
            )
            if ok and not again
            else "",
            check=facts.check("replaced", "serviceaccounts", ns, sa),
            why=f"minted by {u}",
        )
        rotated.append(v)
    for node in dict.fromkeys(rotated):
        ns = node_ids.parse(node).namespace or ""
        for secret in facts.legacy_tokens.get(node, []):
            ok = names_ok(("namespace", ns), ("secret", secret))
            add(
                3,
                "delete",
                f"delete the legacy token Secret {ns}/{secret} of service account {node_ids.label(node)}: its token never expires and "
                f"lives until the Secret is deleted" + ("" if ok else suspicious([ns, secret])),
                node_ids.secret(ns, secret),
                "credential rotation",
                references="CIS 5.1.6; Kubernetes docs: Managing Service Accounts (legacy ServiceAccount token Secrets)",
                command=kubectl("delete", "secret", secret, "--ignore-not-found", namespace=ns) if ok else "",
                check=facts.check("absent", "secrets", ns, secret),
                why=f"a long-lived token of {node_ids.label(node)}, which is rotated",
            )
        for cloud, identity in facts.cloud_identities.get(node, []):
            add(
                3,
                "revoke",
                f"revoke the cloud sessions of {identity}, the {cloud} identity service account {node_ids.label(node)} is bound to: "
                f"{CLOUD_REVOCATION.get(cloud, 'revoke its sessions at the cloud provider')}",
                f"cloud:{identity}",
                "credential rotation",
                references="MS-TA9033; T1552.005",
                check=manual("cloud sessions are revoked at the cloud provider"),
                why=f"the pods of {node_ids.label(node)} could exchange their token for it",
            )
    for node in (n for n in reached["node"] if node_ids.is_a(n, "user") and how[n] in (REACHED, SOURCE)):
        user = node_ids.label(node)
        if user.startswith(node_ids.NODE_USER):
            add(
                3,
                "revoke",
                f"retire the kubelet credential of {user} with its node: rebuild the node under a new name and delete the old Node "
                f"object (a client certificate cannot be revoked; the Node authorizer limits it to that node's name)",
                node,
                "credential rotation",
                events=evidence(node),
                references="Kubernetes docs: Node Authorization, NodeRestriction",
                check=facts.check("absent", "nodes", None, user.removeprefix(node_ids.NODE_USER)),
                why=f"the node it belongs to was taken ({_via(reached, node)})",
            )
            continue
        if user == "system:anonymous":
            add(
                3,
                "revoke",
                "turn anonymous requests off (kube-apiserver --anonymous-auth=false, or an AuthenticationConfiguration that "
                "allows them only for health checks) and remove every binding to system:anonymous or system:unauthenticated",
                node,
                "authentication",
                events=evidence(node) + _edge_events(graph, node, incoming_from="ip"),
                references="CIS 1.2.1; Kubernetes docs: Authenticating (anonymous requests)",
                check=manual("an API server flag"),
                why=f"the attacker came in unauthenticated ({_via(reached, node)})",
            )
            continue
        add(
            3,
            "revoke",
            f"revoke the credentials of user {user} where they are issued — the identity provider (OIDC, IAM, Entra ID) or the "
            f"kubeconfig's token — and reissue them; a client certificate cannot be revoked (Kubernetes docs, Authenticating): remove the "
            f"RBAC bindings that name the user and its groups until the cluster CA is rotated",
            node,
            "credential rotation",
            events=evidence(node) + _edge_events(graph, node, incoming_from="ip"),
            references="MS-M9001, M9002, M9006; CIS 5.1.1",
            check=manual("credentials are revoked at the identity provider"),
            why=f"the attacker acted as it ({_via(reached, node)})",
        )
    for u, v, d in _edges(graph, done, "read_secret"):
        ns, name = node_ids.namespaced(v)
        if v in made_targets:
            continue  # the attacker's own Secret is deleted, not rotated
        target = (
            f"secret {ns}/{name}"
            if name != "*"
            else f"every Secret of namespace {ns} (a list returned their values)"
            if ns != "*"
            else "every Secret in every namespace (a cluster-wide list returned their values)"
        )
        ok = names_ok(("namespace", ns), ("secret", name)) if name != "*" else False
        add(
            3,
            "rotate",
            f"rotate {target} at its source (database, cloud, API key issuer), then update it in the cluster"
            + ("" if ok or name == "*" else suspicious([ns, name])),
            v,
            "credential rotation",
            events=d["event_ids"],
            references="CIS 5.4.1; MS-M9022, M9023",
            check=manual("a secret's value is rotated at its source"),
            why=f"{u} read it",
        )


# a component's risk when the attacker ran code in it, and the safe way to replace it
_SYSTEM_PROCEDURES: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(r"coredns|kube-dns"),
        "it answers every name lookup in the cluster, so the attacker could redirect any service",
        "Compare its Corefile (the ConfigMap it mounts) with the known-good version, then delete this pod so its Deployment recreates it "
        "while the other replicas keep serving (scale up by one first if it runs a single replica)",
    ),
    (
        re.compile(
            r"kube-proxy|aws-node|calico|cilium|flannel|weave|antrea|kube-router|azure-cns|ip-masq|netd|konnectivity|metallb|speaker"
        ),
        "it programs the pod network or Service routing on its node with host privileges: its node counts as taken",
        "Drain and rebuild its node (below); the DaemonSet recreates the pod on the new node",
    ),
    (
        re.compile(r"load-balancer|cloud-controller|cloud-node|csi|autoscaler|karpenter|ingress"),
        "it holds cloud or ingress credentials that reach beyond the cluster",
        "Revoke the cloud sessions of its identity and check its cloud audit log, then delete this pod so its controller recreates it",
    ),
    (
        re.compile(r"prometheus|exporter|metrics|alertmanager|grafana|fluent|datadog|cloudwatch|otel"),
        "it reads the metrics or logs of every workload and often holds broad read access",
        "Rotate its service account, check what it sent out, then delete this pod so its controller recreates it",
    ),
    (
        re.compile(r"apiserver|controller-manager|scheduler|etcd"),
        "it is the control plane: every Secret and every credential of the cluster was within reach",
        "Treat the cluster as lost: rebuild the control plane from a backup taken before the breach and rotate the cluster CA and every credential",
    ),
]


def _system_procedure(node: str, graph: nx.MultiDiGraph, info: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(risk, procedure) for a system component the attacker reached."""
    i = info.get(node, {})
    names = " ".join(
        str(x) for x in (node, i.get("workload"), (graph.nodes[node] if node in graph else {}).get("workload")) if x
    )
    for pattern, risk, procedure in _SYSTEM_PROCEDURES:
        if pattern.search(names):
            return risk, procedure
    return (
        "a deny-all would take down what every workload depends on",
        "Compare its spec with the known-good version, then delete this pod so its controller recreates it from the spec",
    )


def _redeployed(
    facts: Facts, resource: str, ns: str, name: str, pods: list[dict[str, Any]], *, pinned: bool
) -> dict[str, Any]:
    """The check of a redeploy: pinned by digest with the old pods gone when the step pins
    digests; without a digest to pin, the old pods replaced (a check that can be met)."""
    if pinned:
        return facts.check("pinned", resource, ns, name, pods=pods)
    if not pods:
        return manual("no digest known and no pod of the old revision to see replaced")
    return {"all": [facts.check("replaced", "pods", ns, p["name"]) for p in pods]}


def _redeploy(
    ns: str, workload: str, digests: Mapping[str, str], images: list[str], *, ok: bool, undo: bool = False
) -> tuple[str, str]:
    """(what to say, the command) for redeploying ``workload`` ("Kind/name") from known-good images."""
    kind, _, name = workload.partition("/")
    ref = f"{kind.lower()}/{name}"
    pinned = {c: d for c, d in digests.items() if valid_name(c) and _IMAGE.fullmatch(d)}
    first = [kubectl("rollout", "undo", ref, namespace=ns)] if undo else []
    if pinned:
        pairs = [f"{c}={d}" for c, d in sorted(pinned.items())]
        text = f"from the last known-good images pinned by digest ({', '.join(pairs)}) — a tag can be moved, a digest cannot; never patch in place"
        cmd = chain(
            *first,
            kubectl("set", "image", ref, *pairs, "--dry-run=server", namespace=ns),
            kubectl("set", "image", ref, *pairs, namespace=ns),
        )
    else:
        text = (
            f"from a known-good image ({', '.join(images) or 'rebuilt from source'}); the evidence holds no digest for it: pin the image "
            f"by digest when you deploy it (a tag can be moved); never patch in place"
        )
        cmd = chain(*first) if undo else kubectl("rollout", "restart", ref, namespace=ns)
    return text, cmd if ok else ""


def attacker_objects(
    graph: nx.MultiDiGraph,
    reached: pd.DataFrame,
    *,
    bindings: dict[str, tuple[str, str | None]] | None = None,
    created: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Every object the attacker created, once: the graph's creation edges out of what they
    held (pods, workloads, bindings, and any ``create_*`` type), the bindings they made, and
    ``created`` (the audit log's creates by their identities: webhooks, service accounts,
    secrets, CSRs, roles …). Each: resource, namespace, name, target, by, events."""
    out: dict[str, dict[str, Any]] = {}
    how = reached["how"] if "how" in reached.columns else pd.Series(REACHED, index=reached.index)
    done = set(reached.loc[how.isin([SOURCE, REACHED]), "node"])

    def put(resource: str, namespace: str | None, name: str, target: str, by: str, events: list[str]) -> None:
        key = f"{resource}/{namespace or ''}/{name}"
        if key in out:
            out[key]["events"] += [e for e in events if e not in out[key]["events"]]
        else:
            out[key] = {
                "resource": resource,
                "namespace": namespace,
                "name": name,
                "target": target,
                "by": by,
                "events": list(events),
            }

    held = dict(zip(reached["node"], reached["reached"]))
    for u, v, d in sorted(
        (
            (u, v, d)
            for u, v, d in graph.edges(data=True)
            if d.get("observed")
            and u in done
            and (str(d["type"]).startswith("create") or d["type"] == "bind_role")
            and (pd.isna(held.get(u)) or d["first_seen"] >= held[u])
        ),
        key=lambda e: e[2]["first_seen"],
    ):
        prefix, rest, n = node_ids.kind(v), node_ids.label(v), node_ids.parse(v)
        if prefix == "binding":
            kind, ns = (bindings or {}).get(v, ("ClusterRoleBinding", None))
            put(kind.lower() + "s", ns, n.name, v, u, d["event_ids"])
        elif prefix == "workload" and rest.count("/") >= 2:
            put(
                str(n.resource),
                n.namespace if n.namespace not in ("", "*", "None") else None,
                n.name,
                v,
                u,
                d["event_ids"],
            )
        elif prefix in _PREFIX_RESOURCE and n.namespace is not None:
            put(_PREFIX_RESOURCE[prefix], n.namespace, n.name, v, u, d["event_ids"])
        elif prefix == "user":
            put("certificatesigningrequests", None, n.name, v, u, d["event_ids"])
        elif prefix == "webhook" or "webhook" in prefix:
            put(
                ",".join(_WEBHOOKS) if prefix == "webhook" else prefix,
                None,
                rest.rsplit("/", 1)[-1],
                v,
                u,
                d["event_ids"],
            )
        elif rest:
            ns, _, name = rest.rpartition("/")
            put(prefix, ns or None, name, v, u, d["event_ids"])
    if created is not None and len(created):
        for r in created.itertuples(index=False):
            resource, ns, name = (
                str(r.resource),
                r.namespace if isinstance(r.namespace, str) and r.namespace else None,
                str(r.name),
            )
            target = {
                "pods": node_ids.pod(str(ns), name),
                "serviceaccounts": node_ids.service_account(str(ns), name),
                "secrets": node_ids.secret(str(ns), name),
                "clusterrolebindings": node_ids.binding(name),
                "rolebindings": node_ids.binding(name),
            }.get(resource, node_ids.workload(ns, resource, name) if ns else node_ids.cluster_scoped(resource, name))
            put(resource, ns, name, target, str(r.actor), [str(r.event_id)])
    # the graph names a webhook without its kind; the audit log's create says which: one object, its real kind
    either = ",".join(_WEBHOOKS)
    for key, o in list(out.items()):
        if o["resource"] != either:
            continue
        known = [k for k in (f"{w}//{o['name']}" for w in _WEBHOOKS) if k in out]
        if known:
            out[known[0]]["events"] += [e for e in o["events"] if e not in out[known[0]]["events"]]
            out[known[0]]["target"] = o["target"]
            del out[key]
    return list(out.values())


def _delete(add: Any, o: dict[str, Any], *, info: dict[str, dict[str, Any]], facts: Facts) -> None:
    """The action that removes one object the attacker created, by its real kind."""
    resource, ns, name, target, by = o["resource"], o["namespace"], o["name"], o["target"], o["by"]
    where = f"{ns}/{name}" if ns else name
    kinds = resource.split(",")
    ok = (
        all(_RESOURCE.fullmatch(k) for k in kinds)
        and (ns is None or valid_name(ns, kind="namespace"))
        and valid_name(
            name, kind=kinds[0][:-1] if kinds[0].endswith("rolebindings") or kinds[0].endswith("roles") else "object"
        )
    )
    flag = "" if ok else suspicious([x for x in (ns, name) if x])
    # a webhook of unknown kind is gone when no configuration of either kind has its name
    gone = (
        {"all": [facts.check("absent", k, ns, name) for k in kinds]}
        if len(kinds) > 1
        else facts.check("absent", resource, ns, name)
    )
    if resource == "pods":
        i = info.get(target, {})
        static_on = (
            node_ids.label(by).removeprefix(node_ids.NODE_USER)
            if node_ids.is_kubelet(by)
            else (i.get("workload") if i.get("workload_kind") == "Node" or i.get("owner_kind") == "Node" else None)
        )
        if static_on:
            # a mirror pod: the kubelet runs it from a file on the node and recreates it when it is deleted through the API
            # (Kubernetes docs, "Create static Pods")
            add(
                4,
                "delete",
                f"remove the static pod {where} the attacker planted: delete its manifest from node {static_on}'s static pod "
                f"path (kubelet staticPodPath, /etc/kubernetes/manifests by default) — deleting the mirror pod through the API does not "
                f"stop it; the kubelet then removes the mirror pod itself" + flag,
                target,
                "persistence removal",
                events=o["events"],
                references="MS-TA9017; Kubernetes docs: static Pods",
                check=gone,
                why=f"written onto the node and registered by {by}",
            )
            return
        add(
            4,
            "delete",
            f"delete the pod {where} the attacker created (once it is preserved)" + flag,
            target,
            "persistence removal",
            events=o["events"],
            command=kubectl("delete", "pod", name, "--ignore-not-found", namespace=ns) if ok else "",
            check=gone,
            why=f"created by {by}",
        )
        return
    if resource in ("clusterrolebindings", "rolebindings"):
        add(
            4,
            "delete",
            f"delete the binding {name} the attacker created" + flag,
            target,
            "RBAC",
            events=o["events"],
            references="CIS 5.1.1; MS-M9003",
            command=kubectl("delete", resource[:-1], name, "--ignore-not-found", namespace=ns) if ok else "",
            check=gone,
            why=f"created by {by}",
        )
        return
    if any(k in _WEBHOOKS for k in kinds):
        add(
            2,
            "delete",
            f"delete the admission webhook configuration {name} the attacker created, before anything else is applied (it can "
            f"alter or block every object the remediation creates)" + flag,
            target,
            "persistence removal",
            events=o["events"],
            references="MS-TA9015; Kubernetes docs: Dynamic Admission Control",
            check=gone,
            command=kubectl("delete", resource, name, "--ignore-not-found") if ok else "",
            why=f"created by {by}",
        )
        return
    if resource == "certificatesigningrequests":
        add(
            3,
            "revoke",
            f"the attacker had a client certificate issued ({where}): it cannot be revoked — remove every binding of its user "
            f"and groups, delete the CSR, and rotate the cluster CA if the identity is privileged" + flag,
            target,
            "credential rotation",
            events=o["events"],
            references="Kubernetes docs: Certificates and Certificate Signing Requests; MS-M9003",
            command=kubectl("delete", "csr", name, "--ignore-not-found") if ok else "",
            check={"all": [gone, manual("an issued certificate stays valid until it expires or the CA is rotated")]},
            why=f"requested by {by}",
        )
        return
    noun = {"serviceaccounts": "service account", "secrets": "secret"}.get(
        resource, resource[:-1] if resource.endswith("s") else resource
    )
    extra = (
        ", and the pods it made"
        if resource in ("deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs")
        else ""
    )
    extra += " (its tokens die with it)" if resource == "serviceaccounts" else ""
    add(
        4,
        "delete",
        f"delete the {noun} {where} the attacker created{extra}" + flag,
        target,
        "persistence removal",
        events=o["events"],
        references="CIS 5.1.4; MS-M9003",
        command=kubectl("delete", resource, name, "--ignore-not-found", namespace=ns) if ok else "",
        check=gone,
        why=f"created by {by}",
    )


def _ids(actions: pd.DataFrame) -> list[str]:
    """Stable ids (the action and its target): a checklist's progress survives a rerun."""
    return [hashlib.sha256(f"{a}\0{t}".encode()).hexdigest()[:12] for a, t in zip(actions["action"], actions["target"])]


def _finding_index(findings: pd.DataFrame) -> dict[str, set[str]]:
    index: dict[str, set[str]] = {}
    for fid, ids in zip(findings["finding_id"], findings["event_ids"]):
        for e in ids if ids is not None else []:
            index.setdefault(str(e), set()).add(str(fid))
    return index


def _via(reached: pd.DataFrame, node: str) -> str:
    hit = reached[reached["node"] == node]
    if hit.empty or pd.isna(hit["parent"].iloc[0]):
        return "the source"
    r = hit.iloc[0]
    return f"{r['via']} from {r['parent']} at {clock(r['reached'])}"


def _edges(graph: nx.MultiDiGraph, done: set[str], kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Observed edges of one type out of what the attacker controlled."""
    return sorted(
        ((u, v, d) for u, v, d in graph.edges(data=True) if d.get("observed") and d["type"] == kind and u in done),
        key=lambda e: e[2]["first_seen"],
    )


def _accessed(
    graph: nx.MultiDiGraph,
    reached: pd.DataFrame,
    ip: str,
    *,
    networks: Iterable[Network] = (),
    named: set[str] | frozenset[str] = frozenset(),
) -> bool:
    """An outside address a pod the attacker reached (not merely exposed) first connected to
    after it was reached: C2, a mining pool, an exfiltration endpoint — not the peers it
    talked to before. From a node the attacker held, only such an address a finding also names
    (``named``: beaconing, a mining pool, exfiltration): a node meets new cloud and registry
    addresses all the time."""
    if not is_external(node_ids.label(ip), tuple(networks)):
        return False
    how = reached["how"] if "how" in reached.columns else pd.Series(REACHED, index=reached.index)
    via = reached["via"] if "via" in reached.columns else pd.Series(None, index=reached.index, dtype=object)
    # a pod the attacker made is theirs from its first packet (its flows may be stamped a moment
    # before the audit log's creation time: the clocks of two sources differ)
    when = {
        n: (pd.NaT if isinstance(v, str) and (v.startswith("create") or v == "runs") else t)
        for n, t, h, v in zip(reached["node"], reached["reached"], how, via)
        if (node_ids.is_a(n, "pod") or (node_ids.is_a(n, "node") and node_ids.label(ip) in named))
        and h in (REACHED, SOURCE)
    }
    return any(
        u in when and d.get("observed") and d["type"] == "flow" and (pd.isna(when[u]) or d["first_seen"] >= when[u])
        for u, _, d in graph.in_edges(ip, data=True)
    )


def _named_addresses(findings: pd.DataFrame) -> set[str]:
    """Addresses the findings name (as their entity, source or destination)."""
    out: set[str] = set()
    for col in ("destination_ip", "source_ip", "entity"):
        if col in findings.columns:
            out |= {str(v) for v in findings[col].dropna()}
    return out


def _edge_events(graph: nx.MultiDiGraph, node: str, *, incoming_from: str | None = None) -> list[str]:
    if incoming_from is not None:
        return [
            e
            for u, _, d in graph.in_edges(node, data=True)
            if node_ids.is_a(u, incoming_from) and d.get("observed")
            for e in d["event_ids"][:5]
        ]
    return [
        e
        for _, _, d in list(graph.out_edges(node, data=True)) + list(graph.in_edges(node, data=True))
        if d.get("observed")
        for e in d["event_ids"][:5]
    ]


def _compromised_workloads(
    graph: nx.MultiDiGraph, reached: pd.DataFrame, isolate: set[str]
) -> dict[tuple[str, str], list[str]]:
    """The workloads of the pods the attacker reached (and that are isolated, not system
    components) and did not create themselves: redeployed from a known-good image."""
    out: dict[tuple[str, str], list[str]] = {}
    held = set(reached["node"])
    for n in reached["node"]:
        if n not in isolate or n not in graph or _made_by_attacker(reached, n):
            continue  # a pod the attacker made goes with what made it
        attrs = graph.nodes[n]
        # a pod the attacker made goes with what made it; one a controller made for a workload
        # the attacker never touched (a poisoned image rolled out by CI) means redeploying that workload
        if (
            attrs.get("kind") == "pod"
            and attrs.get("workload")
            and not str(attrs["workload"]).startswith("Node")
            and not any(
                d.get("observed") and d["type"] in ("create_pod", "runs") and u in held
                for u, _, d in graph.in_edges(n, data=True)
            )
        ):
            ns, pod = node_ids.namespaced(n)
            out.setdefault((ns, str(attrs["workload"]).replace(" ", "/")), []).append(pod)
    return out
