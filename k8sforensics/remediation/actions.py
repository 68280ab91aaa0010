"""The remediation checklist: one row per action, contain first, then eradicate, then harden,
each with the findings and evidence behind it, the control, references and the command or
artifact that carries it out. Built from the findings, the lateral-movement graph (what the
attacker reached, created and read; which configuration edges to cut) and the inventory."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..analysis.network import Network, is_external
from ..analysis.possible import KIND_RESOURCE
from ..analysis.reach import (
    EXPOSED,
    PATHS_COLUMNS,
    REACHED,
    SOURCE,
    attack_sources,
    edges_to_cut,
    paths,
)
from ..frames import clock
from .commands import chain, kubectl, names_ok, suspicious, valid_name

if TYPE_CHECKING:
    import networkx as nx

ACTION_COLUMNS = ["action_id", "priority", "phase", "action", "target", "control", "why", "finding_ids", "event_ids", "references",
                  "command", "artifact", "status"]
PHASE = {1: "contain now", 2: "eradicate", 3: "harden"}
_RESOURCE = re.compile(r"[a-z][a-z0-9.-]*")  # a resource or kind as kubectl takes it
# per Threat Matrix technique a finding names: the control that stops it again (Microsoft Threat Matrix for Kubernetes mitigations, MS-M9xxx)
TECHNIQUE_CONTROLS: dict[str, tuple[str, str, str]] = {
    "MS-TA9002": ("admission policy", "allow images only from the trusted repositories (generated Gatekeeper/Kyverno policies)",
                  "CIS 5.5.1; GK:K8sAllowedRepos; KY:restrict-image-registries; MS-M9005.003"),
    "MS-TA9004": ("Pod Security / hardening", "patch the exploited application; run it read-only, non-root, without the service-account token",
                  "NSA 1.1; MS-M9011, M9012, M9025"),
    "MS-TA9006": ("RBAC", "grant pods/exec, attach, portforward and ephemeralcontainers to a break-glass group only",
                  "KY:block-pod-exec-by-namespace; MS-M9010"),
    "MS-TA9007": ("Pod Security / hardening", "readOnlyRootFilesystem and distroless images so no shell or tools are at hand",
                  "GK:K8sPSPReadOnlyRootFilesystem; KY:require-ro-rootfs; NSA 1.1; MS-M9011, M9012"),
    "MS-TA9008": ("RBAC", "workload writes only from CI identities", "CIS 5.1.4; MS-M9003"),
    "MS-TA9012": ("RBAC", "workload writes only from CI identities; no service-account swaps", "CIS 5.1.4; KY:restrict-pod-controller-serviceaccount-updates"),
    "MS-TA9013": ("Pod Security Admission", "enforce baseline: no hostPath", "CIS 5.2.11; GK:K8sPSPHostFilesystem; KY:disallow-host-path; MS-M9016"),
    "MS-TA9014": ("RBAC", "CronJob and Job writes only from CI identities", "CIS 5.1.4; KY:restrict-jobs"),
    "MS-TA9016": ("service-account tokens", "automountServiceAccountToken: false where the API is not needed; short bound tokens",
                  "CIS 5.1.5, 5.1.6; KY:restrict-automount-sa-token; NSA 1.11; MS-M9025"),
    "MS-TA9018": ("Pod Security Admission", "enforce baseline: no privileged containers, no host namespaces",
                  "CIS 5.2.1, 5.2.2; GK:K8sPSPPrivilegedContainer; KY:disallow-privileged-containers; NSA 1.2; MS-M9013, M9017"),
    "MS-TA9019": ("RBAC", "no bind, escalate or impersonate; deny roleRef cluster-admin outside the platform group",
                  "CIS 5.1.1, 5.1.3, 5.1.7, 5.1.8; KY:restrict-binding-clusteradmin; MS-M9003"),
    "MS-TA9022": ("audit logging", "ship audit logs off-cluster; no delete on events", "CIS 1.2.16-1.2.19, 3.2.1; NSA 8.0; MS-M9020"),
    "MS-TA9023": ("admission policy", "no user workloads in kube-system", "CIS 5.6.1; MS-M9016"),
    "MS-TA9025": ("RBAC", "remove get/list/watch on secrets; encryption at rest; an external secret store",
                  "CIS 5.1.2, 5.4.1, 5.4.2; KY:restrict-secret-role-verbs; NSA 6.1; MS-M9022"),
    "MS-TA9029": ("RBAC", "least privilege from what identities actually use (generated Roles)", "CIS 5.1.1, 5.1.3; MS-M9003"),
    "MS-TA9031": ("NetworkPolicy", "default deny, then the flows observed outside the attack (generated)", "CIS 5.3.2; NSA 2.0, 3.0; MS-M9014"),
    "MS-TA9034": ("NetworkPolicy", "default deny, then the flows observed outside the attack (generated)", "CIS 5.3.2; NSA 2.0, 3.0; MS-M9014"),
    "MS-TA9033": ("NetworkPolicy", "egress except 169.254.169.254/32; IMDSv2 with hop limit 1; workload identity", "MS-M9018, M9019"),
    "MS-TA9039": ("resource limits / egress", "requests and limits, ResourceQuota, and no egress to the Internet by default",
                  "CIS 1.2.9; GK:K8sContainerLimits; NSA 4.0; MS-M9029"),
}


# Cluster-critical system components: quarantining or redeploying one the attacker did not reach
# takes the cluster down with it (DNS, the pod network, Services, load balancers, volumes,
# monitoring), so they are never isolated; their exposed credentials are rotated and their
# node rebuilt instead. Namespaces the platform and its add-ons run in (Kubernetes docs,
# "Namespaces": kube-system, kube-public, kube-node-lease; the managed platforms' own):
SYSTEM_NAMESPACES = re.compile(r"^(?:kube-system|kube-public|kube-node-lease|(?:kube|gke|gmp|aks|eks|amazon|aws|azure|calico|tigera|cilium|"
                               r"openshift)-[a-z0-9-]*|[a-z0-9-]+-system)$")
# labels the Kubernetes add-ons carry (cluster/addons: k8s-app, kubernetes.io/cluster-service, addonmanager.kubernetes.io/mode;
# kubeadm's static control-plane pods: tier=control-plane)
SYSTEM_LABELS = {"k8s-app": None, "kubernetes.io/cluster-service": "true", "addonmanager.kubernetes.io/mode": None, "tier": "control-plane"}
# well-known components by name (workload, app.kubernetes.io/name, app, name): DNS, kube-proxy, CNI agents, CSI drivers,
# cloud and load-balancer controllers, metrics and monitoring agents, node autoscalers
SYSTEM_NAMES = re.compile(
    r"(?:^|-)(?:coredns|kube-dns|kube-proxy|metrics-server|aws-node|calico-node|calico-kube-controllers|cilium|cilium-operator|"
    r"kube-flannel|flannel|weave-net|antrea-agent|antrea-controller|kube-router|azure-cns|azure-ip-masq-agent|ip-masq-agent|netd|"
    r"[a-z0-9]*-?csi-[a-z0-9-]*|csi-[a-z0-9]+|aws-load-balancer-controller|cloud-controller-manager|cloud-node-manager|ingress-nginx-controller|"
    r"metallb|speaker|konnectivity-agent|cluster-autoscaler|karpenter|prometheus|prometheus-node-exporter|node-exporter|"
    r"kube-state-metrics|alertmanager|grafana-agent|fluent-bit|fluentd|datadog-agent|cloudwatch-agent|otel-collector|"
    r"kube-apiserver|kube-controller-manager|kube-scheduler|etcd)(?:-|$)")
ROLLOUT_RESOURCES = frozenset({"deployments", "daemonsets", "statefulsets"})  # what kubectl rollout undo takes
SYSTEM_PRIORITY_CLASSES = frozenset({"system-node-critical", "system-cluster-critical"})
# kinds an attacker's creation can be, as kubectl names them, for the graph's node prefixes
_PREFIX_RESOURCE = {"pod": "pods", "sa": "serviceaccounts", "secret": "secrets"}
_WEBHOOKS = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")


def system_component(namespace: object, name: object, *, labels: dict[str, str] | None = None, workload: object = None,
                     priority_class: object = None) -> str:
    """Why a pod is a cluster-critical system component ("" when it is not): its namespace,
    the add-on labels, a node- or cluster-critical priority class, or a well-known component
    name (DNS, kube-proxy, CNI, CSI, cloud and load-balancer controllers, monitoring)."""
    labels = labels or {}
    if isinstance(priority_class, str) and priority_class in SYSTEM_PRIORITY_CLASSES:
        return f"priority class {priority_class}"
    for key, value in SYSTEM_LABELS.items():
        if key in labels and (value is None or labels[key] == value):
            return f"label {key}={labels[key]}"
    names = [str(x) for x in (workload, labels.get("app.kubernetes.io/name"), labels.get("app"), labels.get("name"), name) if isinstance(x, str)]
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
        out[f"pod:{r.get('namespace')}/{r.get('name')}"] = {
            "labels": dict(labels) if isinstance(labels, dict) else dict(labels or []) if labels is not None and not isinstance(labels, float) else {},
            "workload": r.get("workload") if isinstance(r.get("workload"), str) else None,
            "workload_kind": r.get("workload_kind") if isinstance(r.get("workload_kind"), str) else None,
            "owner_kind": r.get("owner_kind"), "node": r.get("node") if isinstance(r.get("node"), str) else None,
            "service_account": r.get("service_account"), "priority_class": r.get("priority_class_name", r.get("priority_class"))}
    return out


def isolated_pods(reached: pd.DataFrame, graph: nx.MultiDiGraph, *, pods: pd.DataFrame | None = None) -> list[str]:
    """The pods the checklist isolates with the deny-all quarantine policy: those the attacker
    reached (never one merely exposed on a node they escaped to), less the cluster-critical
    system components — unless the attacker made the pod (a look-alike is not the component)."""
    info = _pod_info(pods)
    out = []
    for r in reached.itertuples(index=False):
        if not str(r.node).startswith("pod:") or getattr(r, "how", REACHED) not in (REACHED, SOURCE):
            continue
        if _via_of(reached, str(r.node)) == "runs" and not _made_by_attacker(reached, str(r.node)):
            continue  # a replica of a workload the attacker changed: rolled back with it, not quarantined one by one
        if _made_by_attacker(reached, str(r.node)) or not _system_reason(str(r.node), graph, info):
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
    v = via.get(node)
    if isinstance(v, str) and v == "runs":
        v = via.get(parent.get(node))
    return isinstance(v, str) and v.startswith("create")


def _system_reason(node: str, graph: nx.MultiDiGraph, info: dict[str, dict[str, Any]]) -> str:
    ns, _, name = node[4:].partition("/")
    i = info.get(node, {})
    attrs = graph.nodes[node] if node in graph else {}
    return system_component(ns, name, labels=i.get("labels"), workload=i.get("workload") or attrs.get("workload"),
                            priority_class=i.get("priority_class"))


def remediation_actions(findings: pd.DataFrame, graph: nx.MultiDiGraph, *, source: str | list[str] | None = None,
                        attacker_ips: set[str] | None = None,
                        workload_images: dict[tuple[str, str], list[str]] | None = None,
                        bindings: dict[str, tuple[str, str | None]] | None = None,
                        ended: dict[str, Any] | None = None,
                        artifacts: dict[str, str] | None = None,
                        reached: pd.DataFrame | None = None,
                        networks: Iterable[Network] = (),
                        pods: pd.DataFrame | None = None,
                        created: pd.DataFrame | None = None) -> pd.DataFrame:
    """The checklist (columns ``ACTION_COLUMNS``), contain → eradicate → harden. ``source`` is
    where the attack came from, one entry or several (default: ``reach.attack_sources``);
    ``reached`` what ``reach.paths`` says the attacker reached or exposed (computed when None);
    ``attacker_ips`` more addresses to block (C2, pools the attacker's pods used) — only outside
    ones are (``network.is_external`` with ``networks``, the cluster's own); ``workload_images``
    the known-good images per (namespace, workload) to redeploy from; ``bindings`` the kind and
    namespace of each binding node (``binding:name``) the attacker made; ``ended`` when each pod
    that is no longer running ended (``pod:ns/name`` → time); ``artifacts`` maps a control to the
    generated file that carries it out; ``pods`` the inventory's pods (tells system components);
    ``created`` objects the attacker's identities created per the audit log (columns resource,
    namespace, name, actor, event_id), beyond the creation edges of the graph."""
    artifacts = artifacts or {}
    nets = tuple(networks)
    ids_of = _finding_index(findings)
    if reached is None:
        sources = [source] if isinstance(source, str) else list(source) if source is not None else attack_sources(graph, networks=nets)
        sources = [s for s in sources if s in graph]
        reached = paths(graph, sources) if sources else pd.DataFrame(columns=PATHS_COLUMNS)
    else:
        sources = list(reached.loc[reached["how"] == SOURCE, "node"]) if "how" in reached.columns else []
    if "how" not in reached.columns:
        reached = reached.assign(how=REACHED)
    how = dict(zip(reached["node"], reached["how"]))
    done = {n for n, h in how.items() if h in (SOURCE, REACHED)}
    info = _pod_info(pods)
    rows: list[dict[str, Any]] = []

    def add(priority: int, action: str, target: str, control: str, *, events: list[str] | None = None, references: str = "",
            command: str = "", artifact: str = "", why: str = "") -> None:
        events = list(dict.fromkeys(events or []))
        fids = sorted({f for e in events for f in ids_of.get(e, ())})
        rows.append({"priority": priority, "phase": PHASE[priority], "action": action, "target": target, "control": control,
                     "why": why, "finding_ids": fids, "event_ids": events[:50], "references": references, "command": command,
                     "artifact": artifact, "status": "open"})

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

    # 1. contain: isolate what the attacker runs code in, cut their credentials, block their addresses
    isolate = set(isolated_pods(reached, graph, pods=pods))
    drain: dict[str, list[str]] = {}  # node → the reached system pods on it
    for node in (n for n in reached["node"] if n.startswith("pod:") and how[n] in (REACHED, SOURCE)):
        ns, pod = node[4:].split("/", 1)
        gone = (ended or {}).get(node)
        if _via_of(reached, node) == "runs" and (gone is not None or not _made_by_attacker(reached, node)):
            continue  # a pod of a workload the attacker made (gone) or changed: deleting or rolling back the workload does it
        state = f" — it ended at {clock(gone)}: make sure it has not come back" if gone is not None else ""
        ok = names_ok(("namespace", ns), ("pod", pod))
        if node in isolate:
            add(1, f"isolate pod {ns}/{pod}: label it and apply the deny-all quarantine policy (keep it for forensics){state}"
                + ("" if ok else suspicious([ns, pod])), node, "NetworkPolicy",
                events=evidence(node), references="CIS 5.3.2; MS-M9014", artifact=artifacts.get("quarantine", ""),
                command=kubectl("label", "pod", pod, "k8sforensics.io/quarantine=true", "--overwrite", namespace=ns) if ok else "",
                why=f"control reached it ({_via(reached, node)})")
            continue
        # a cluster-critical component the attacker reached: a deny-all would cut DNS, the pod network or the
        # load balancers for every workload; replace the pod (its controller recreates it from the spec) and rotate
        host = info.get(node, {}).get("node") or graph.nodes[node].get("host") if node in graph else info.get(node, {}).get("node")
        if isinstance(host, str):
            drain.setdefault(host, []).append(f"{ns}/{pod}")
        add(1, f"replace system pod {ns}/{pod} — capture it first (kubectl get -o yaml, logs), then delete it so its controller "
            f"recreates it from the spec, rotate its service account and drain its node; no deny-all quarantine: it is "
            f"{_system_reason(node, graph, info)}, and isolating it takes the cluster's DNS, network or load balancing down with it{state}"
            + ("" if ok else suspicious([ns, pod])), node, "replace system component", events=evidence(node), references="NSA 1.1; MS-M9014",
            command=kubectl("delete", "pod", pod, "--ignore-not-found", namespace=ns) if ok else "",
            why=f"control reached it ({_via(reached, node)})")
    for node in (n for n in reached["node"] if n.startswith("sa:")):
        ns, sa = node[3:].split("/", 1)
        ok = names_ok(("namespace", ns), ("serviceaccount", sa))
        if how[node] == EXPOSED:
            holders = sorted({u for u, _, d in graph.in_edges(node, data=True) if how.get(u) in (REACHED, EXPOSED) and str(u).startswith("pod:")
                              and d["type"] in ("token_steal", "token_use")} | {str(reached.loc[reached["node"] == node, "parent"].iloc[0])}
                             - {"None", "nan"})
            pods_on = [h for h in holders if h.startswith("pod:")]
            cmds = [kubectl("delete", "pod", p[4:].split("/", 1)[1], "--ignore-not-found", namespace=p[4:].split("/", 1)[0])
                    for p in pods_on if names_ok(("namespace", p[4:].split("/", 1)[0]), ("pod", p[4:].split("/", 1)[1]))]
            add(1, f"rotate the tokens of service account {ns}/{sa} that were within the attacker's reach: delete the pod(s) "
                f"{', '.join(h[4:] for h in pods_on) or 'that mounted it'} (a bound token dies with its pod; a drain of their node does it) "
                f"and any legacy token secret of the account; do not isolate or redeploy them: nothing shows the attacker acting in them"
                + ("" if ok else suspicious([ns, sa])), node, "credential rotation", events=evidence(node), references="CIS 5.1.5, 5.1.6; MS-M9025",
                command=chain(*cmds) if ok else "", why=f"its token was exposed ({_via(reached, node)})")
            continue
        add(1, f"rotate the credentials of service account {ns}/{sa}: delete the pods that run as it (their bound tokens die with them) "
            f"and any legacy token secret; review what it did since" + ("" if ok else suspicious([ns, sa])), node, "credential rotation",
            events=evidence(node), references="CIS 5.1.5, 5.1.6; MS-M9025",
            command=kubectl("delete", "pod", "--field-selector", f"spec.serviceAccountName={sa}", namespace=ns) if ok else "",
            why=f"the attacker held its token ({_via(reached, node)})")
    for node in (n for n in reached["node"] if n.startswith("user:") and how[n] in (REACHED, SOURCE)):
        user = node[5:]
        if user.startswith("system:node:"):
            add(1, f"retire the kubelet credential of {user} with its node: rebuild the node under a new name and delete the old Node "
                f"object (a client certificate cannot be revoked; the Node authorizer limits it to that node's name)", node,
                "credential rotation", events=evidence(node), references="Kubernetes docs: Node Authorization, NodeRestriction",
                why=f"the node it belongs to was taken ({_via(reached, node)})")
            continue
        if user == "system:anonymous":
            add(1, "turn anonymous requests off (kube-apiserver --anonymous-auth=false, or an AuthenticationConfiguration that "
                "allows them only for health checks) and remove every binding to system:anonymous or system:unauthenticated",
                node, "authentication", events=evidence(node) + _edge_events(graph, node, incoming_from="ip:"),
                references="CIS 1.2.1; Kubernetes docs: Authenticating (anonymous requests)", why=f"the attacker came in unauthenticated ({_via(reached, node)})")
            continue
        add(1, f"revoke the credentials of user {user} where they are issued — the identity provider (OIDC, IAM, Entra ID) or the "
            f"kubeconfig's token — and reissue them; a client certificate cannot be revoked (Kubernetes docs, Authenticating): remove the "
            f"RBAC bindings that name the user and its groups until the cluster CA is rotated", node, "credential rotation",
            events=evidence(node) + _edge_events(graph, node, incoming_from="ip:"), references="MS-M9001, M9002, M9006; CIS 5.1.1",
            why=f"the attacker acted as it ({_via(reached, node)})")
    for u, v, d in _edges(graph, done, "read_secret"):
        ns, name = v[7:].split("/", 1)
        target = f"secret {ns}/{name}" if name != "*" else f"every secret of {ns}"
        ok = names_ok(("namespace", ns), ("secret", name)) if name != "*" else False
        add(1, f"rotate {target} at its source (database, cloud, API), then update it" + ("" if ok or name == "*" else suspicious([ns, name])),
            v, "credential rotation", events=d["event_ids"], references="CIS 5.4.1; MS-M9022, M9023", why=f"{u} read it",
            command=kubectl("get", "secret", name, namespace=ns) if ok else "")
    blocked = {f"ip:{ip}" for ip in attacker_ips or ()} | {s for s in sources if s.startswith("ip:")}
    named = _named_addresses(findings)
    blocked |= {n for n in graph if n.startswith("ip:") and _accessed(graph, reached, n, networks=nets, named=named)}
    blocked |= {u for n in done if n.startswith(("sa:", "user:")) for u, _, d in graph.in_edges(n, data=True)
                if str(u).startswith("ip:") and d.get("observed") and not str(d["type"]).startswith("flow")}  # where a held credential was used from
    for ip in sorted(b for b in blocked if is_external(b[3:], nets)):  # never a node's, a pod's or a VPC address
        add(1, f"block {ip[3:]} at the edge (ingress, firewall, egress proxy)", ip, "network block", events=_edge_events(graph, ip),
            references="NSA 2.0; MS-M9007", why="the attack came from it" if ip in sources else
            "compromised workloads talked to it, or a stolen credential was used from it")
    # 2. eradicate: what the attacker made, what they changed, what let them through
    made = _creations(graph, done, reached, bindings=bindings, created=created)
    created_bindings = {o["name"] for o in made if o["resource"] in ("clusterrolebindings", "rolebindings")}
    for o in made:
        _delete(add, o, info=info, graph=graph)
    for u, v, d in _edges(graph, done, "token_request"):
        if how.get(v) == REACHED and not u.startswith("user:system:node:"):
            add(2, f"rotate service account {v[3:]}: the attacker minted a token for it", v, "credential rotation", events=d["event_ids"],
                references="CIS 5.1.13", why=f"minted by {u}")
    for node in (n for n in reached["node"] if n.startswith("node:") and how[n] in (REACHED, SOURCE)):
        ok = valid_name(node[5:])
        add(2, f"drain, cordon and rebuild node {node[5:]} from a clean image (the attacker held the host: every pod's token and the "
            f"kubelet's credential on it were within reach)" + ("" if ok else suspicious([node[5:]])),
            node, "rebuild", events=evidence(node), references="NSA 1.0; MS-M9025",
            command=chain(kubectl("cordon", node[5:]), kubectl("drain", node[5:], "--ignore-daemonsets", "--delete-emptydir-data")) if ok else "",
            why=f"host escape ({_via(reached, node)})")
    for host, system_pods in sorted(drain.items()):
        if f"node:{host}" in how and how[f"node:{host}"] in (REACHED, SOURCE):
            continue  # rebuilt above
        ok = valid_name(host)
        add(2, f"cordon and drain node {host}: the attacker ran code in system pod(s) {', '.join(system_pods)} on it"
            + ("" if ok else suspicious([host])), f"node:{host}", "rebuild", references="NSA 1.0",
            command=chain(kubectl("cordon", host), kubectl("drain", host, "--ignore-daemonsets", "--delete-emptydir-data")) if ok else "",
            why="a compromised cluster-critical pod is replaced, not quarantined; its node is inspected")
    for (ns, workload), pods_of in _compromised_workloads(graph, reached, isolate).items():
        images = (workload_images or {}).get((ns, workload), [])
        kind_name = workload.split("/", 1)
        ok = len(kind_name) == 2 and names_ok(("namespace", ns), ("workload", kind_name[1])) and bool(_RESOURCE.fullmatch(kind_name[0].lower()))
        add(2, f"redeploy {workload} in {ns} from a known-good image ({', '.join(images) or 'rebuilt from source'}), never patch in place"
            + ("" if ok else suspicious([ns, workload])), f"workload:{ns}/{workload}", "redeploy", references="NSA 1.1; MS-M9004",
            command=kubectl("rollout", "restart", workload.lower(), namespace=ns) if ok else "",
            why=f"its pod(s) {', '.join(pods_of)} were compromised", events=[e for p in pods_of for e in evidence(f"pod:{ns}/{p}")])
    for node in (n for n in reached["node"] if n.startswith("workload:") and _via_of(reached, n) == "patch"):
        ns, resource, name = (node[9:].split("/", 2) + ["", ""])[:3]
        kind = {v: k for k, v in KIND_RESOURCE.items()}.get(resource, resource)
        images = (workload_images or {}).get((ns, f"{kind}/{name}"), [])
        ok = names_ok(("namespace", ns), ("workload", name)) and bool(_RESOURCE.fullmatch(resource))
        add(2, f"redeploy {kind}/{name} in {ns} from a known-good image ({', '.join(images) or 'rebuilt from source'}): roll it back to "
            f"its revision before the attacker's change, never patch in place; its pods run what the attacker put there"
            + ("" if ok else suspicious([ns, name])),
            f"workload:{ns}/{kind}/{name}", "redeploy", events=evidence(node), references="NSA 1.1; MS-M9004",
            command=kubectl("rollout", "undo", f"{resource}/{name}", namespace=ns) if ok and resource in ROLLOUT_RESOURCES else "",
            why=f"changed by the attacker ({_via(reached, node)})")
    foothold = [n for n in reached["node"] if n.startswith("pod:") and how[n] == REACHED][:1]
    crown = [n for n, k in graph.nodes(data="kind") if k == "node" or n == "role:*"]
    crown = [n for n in crown if n not in foothold]
    if foothold and crown:
        # what is left once the attacker's bindings are gone: the configuration that was there before
        before = graph.copy()
        before.remove_edges_from([(u, v, k) for u, v, k, d in graph.edges(keys=True, data=True)
                                  if str(d.get("basis") or "").split(" ", 1)[-1].split("/")[-1] in created_bindings
                                  or u in {f"binding:{b}" for b in created_bindings}])
        cut = edges_to_cut(before, foothold, crown)
        for r in cut[cut["cuttable"]].itertuples(index=False):
            add(2, f"cut {r.type} {r.source} → {r.target}: {r.fix}", r.basis or r.source, "RBAC" if "Binding" in str(r.basis) else "pod spec",
                references="CIS 5.1.1, 5.1.3, 5.2; MS-M9003, M9013", why=f"on the way from {foothold[0]} to the nodes: {r.reason}")
    # 3. harden: the generated policies, and the control per technique the attack used
    for control, text, refs in (("NetworkPolicy", "apply the generated NetworkPolicies (default deny, then the observed legitimate flows)",
                                 "CIS 5.3.2; NSA 2.0, 3.0; MS-M9014"),
                                ("Pod Security Admission", "label namespaces with the strictest Pod Security level their pods meet",
                                 "CIS 5.2; NSA 1.2; MS-M9017"),
                                ("RBAC", "replace broad roles with the generated least-privilege Roles; remove unused bindings",
                                 "CIS 5.1.1, 5.1.3; MS-M9003"),
                                ("admission policy", ("install the generated Gatekeeper (or Kyverno) policies: trusted registries only; "
                                                      "no privileged, hostPath or host-namespace pods"),
                                 "CIS 5.5.1, 5.2.1-5.2.5, 5.2.11; MS-M9005.003, M9013")):
        add(3, text, "cluster", control, references=refs, artifact=artifacts.get(control, ""),
            command=kubectl("apply", "--dry-run=server", "-f", artifacts[control]) if control in artifacts else "")
    if "technique_id" in findings.columns:
        for tech, g in findings.dropna(subset=["technique_id"]).groupby("technique_id"):
            if tech in TECHNIQUE_CONTROLS:
                control, text, refs = TECHNIQUE_CONTROLS[tech]
                events = [e for ids in g["event_ids"] if ids is not None for e in ids]
                add(3, f"{text} ({tech}: {g['title'].iloc[0]})", str(tech), control, events=events, references=refs)
    out = pd.DataFrame(rows, columns=[c for c in ACTION_COLUMNS if c != "action_id"])
    out = out.drop_duplicates(["priority", "action", "target"]).sort_values("priority", kind="stable").reset_index(drop=True)
    out.insert(0, "action_id", _ids(out))
    return out


def _creations(graph: nx.MultiDiGraph, done: set[str], reached: pd.DataFrame, *, bindings: dict[str, tuple[str, str | None]] | None,
               created: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Every object the attacker created, once: the graph's creation edges out of what they
    held (pods, workloads, bindings, and any ``create_*`` type), the bindings they made, and
    ``created`` (the audit log's creates by their identities: webhooks, service accounts,
    secrets, CSRs, roles …). Each: resource, namespace, name, target, by, events."""
    out: dict[str, dict[str, Any]] = {}

    def put(resource: str, namespace: str | None, name: str, target: str, by: str, events: list[str]) -> None:
        key = f"{resource}/{namespace or ''}/{name}"
        if key in out:
            out[key]["events"] += [e for e in events if e not in out[key]["events"]]
        else:
            out[key] = {"resource": resource, "namespace": namespace, "name": name, "target": target, "by": by, "events": list(events)}

    held = dict(zip(reached["node"], reached["reached"]))
    for u, v, d in sorted(((u, v, d) for u, v, d in graph.edges(data=True) if d.get("observed") and u in done
                           and (str(d["type"]).startswith("create") or d["type"] == "bind_role")
                           and (pd.isna(held.get(u)) or d["first_seen"] >= held[u])), key=lambda e: e[2]["first_seen"]):
        prefix, _, rest = str(v).partition(":")
        if prefix == "binding":
            kind, ns = (bindings or {}).get(v, ("ClusterRoleBinding", None))
            put(kind.lower() + "s", ns, rest, v, u, d["event_ids"])
        elif prefix == "workload" and rest.count("/") >= 2:
            ns, resource, name = rest.split("/", 2)
            put(resource, ns if ns not in ("", "*", "None") else None, name, v, u, d["event_ids"])
        elif prefix in _PREFIX_RESOURCE and "/" in rest:
            ns, name = rest.split("/", 1)
            put(_PREFIX_RESOURCE[prefix], ns, name, v, u, d["event_ids"])
        elif prefix == "user":
            put("certificatesigningrequests", None, rest, v, u, d["event_ids"])
        elif prefix == "webhook" or "webhook" in prefix:
            put(",".join(_WEBHOOKS) if prefix == "webhook" else prefix, None, rest.rsplit("/", 1)[-1], v, u, d["event_ids"])
        elif rest:
            ns, _, name = rest.rpartition("/")
            put(prefix, ns or None, name, v, u, d["event_ids"])
    if created is not None and len(created):
        for r in created.itertuples(index=False):
            resource, ns, name = str(r.resource), r.namespace if isinstance(r.namespace, str) and r.namespace else None, str(r.name)
            target = {"pods": f"pod:{ns}/{name}", "serviceaccounts": f"sa:{ns}/{name}", "secrets": f"secret:{ns}/{name}",
                      "clusterrolebindings": f"binding:{name}", "rolebindings": f"binding:{name}"}.get(
                resource, f"workload:{ns}/{resource}/{name}" if ns else f"{resource}:{name}")
            put(resource, ns, name, target, str(r.actor), [str(r.event_id)])
    return list(out.values())


def _delete(add: Any, o: dict[str, Any], *, info: dict[str, dict[str, Any]], graph: nx.MultiDiGraph) -> None:
    """The action that removes one object the attacker created, by its real kind."""
    resource, ns, name, target, by = o["resource"], o["namespace"], o["name"], o["target"], o["by"]
    where = f"{ns}/{name}" if ns else name
    kinds = resource.split(",")
    ok = (all(_RESOURCE.fullmatch(k) for k in kinds) and (ns is None or valid_name(ns, kind="namespace"))
          and valid_name(name, kind=kinds[0][:-1] if kinds[0].endswith("rolebindings") or kinds[0].endswith("roles") else "object"))
    flag = "" if ok else suspicious([x for x in (ns, name) if x])
    if resource == "pods":
        i = info.get(target, {})
        static_on = by[len("user:system:node:"):] if by.startswith("user:system:node:") else \
            (i.get("workload") if i.get("workload_kind") == "Node" or i.get("owner_kind") == "Node" else None)
        if static_on:
            # a mirror pod: the kubelet runs it from a file on the node and recreates it when it is deleted through the API
            # (Kubernetes docs, "Create static Pods")
            add(2, f"remove the static pod {where} the attacker planted: delete its manifest from node {static_on}'s static pod path "
                f"(kubelet staticPodPath, /etc/kubernetes/manifests by default) — deleting the mirror pod through the API does not stop it"
                + flag, target, "persistence removal", events=o["events"], references="MS-TA9017; Kubernetes docs: static Pods",
                why=f"written onto the node and registered by {by}")
            return
        add(2, f"delete the pod {where} the attacker created (after imaging it)" + flag, target, "persistence removal", events=o["events"],
            command=kubectl("delete", "pod", name, "--ignore-not-found", namespace=ns) if ok else "", why=f"created by {by}")
        return
    if resource in ("clusterrolebindings", "rolebindings"):
        add(2, f"delete the binding {name} the attacker created" + flag, target, "RBAC", events=o["events"], references="CIS 5.1.1; MS-M9003",
            command=kubectl("delete", resource[:-1], name, namespace=ns) if ok else "", why=f"created by {by}")
        return
    if any(k in _WEBHOOKS for k in kinds):
        # first of all: a mutating webhook sees (and can change) every object the rest of the checklist creates
        add(1, f"delete the admission webhook configuration {name} the attacker created, before anything else is applied (it can "
            f"alter or block every object the remediation creates)" + flag, target, "persistence removal", events=o["events"],
            references="MS-TA9015; Kubernetes docs: Dynamic Admission Control",
            command=kubectl("delete", resource, name, "--ignore-not-found") if ok else "", why=f"created by {by}")
        return
    if resource == "certificatesigningrequests":
        add(2, f"the attacker had a client certificate issued ({where}): it cannot be revoked — remove every binding of its user and "
            f"groups, delete the CSR, and rotate the cluster CA if the identity is privileged" + flag, target, "credential rotation",
            events=o["events"], references="Kubernetes docs: Certificates and Certificate Signing Requests; MS-M9003",
            command=kubectl("delete", "csr", name, "--ignore-not-found") if ok else "", why=f"requested by {by}")
        return
    noun = {"serviceaccounts": "service account", "secrets": "secret"}.get(resource, resource[:-1] if resource.endswith("s") else resource)
    extra = ", and the pods it made" if resource in ("deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs") else ""
    extra += " (its tokens die with it)" if resource == "serviceaccounts" else ""
    add(2, f"delete the {noun} {where} the attacker created{extra}" + flag, target, "persistence removal", events=o["events"],
        references="CIS 5.1.4; MS-M9003", command=kubectl("delete", resource, name, "--ignore-not-found", namespace=ns) if ok else "",
        why=f"created by {by}")


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
    return sorted(((u, v, d) for u, v, d in graph.edges(data=True) if d.get("observed") and d["type"] == kind and u in done),
                  key=lambda e: e[2]["first_seen"])


def _accessed(graph: nx.MultiDiGraph, reached: pd.DataFrame, ip: str, *, networks: Iterable[Network] = (),
              named: set[str] | frozenset[str] = frozenset()) -> bool:
    """An outside address a pod the attacker reached (not merely exposed) first connected to
    after it was reached: C2, a mining pool, an exfiltration endpoint — not the peers it
    talked to before. From a node the attacker held, only such an address a finding also names
    (``named``: beaconing, a mining pool, exfiltration): a node meets new cloud and registry
    addresses all the time."""
    if not is_external(ip[3:], tuple(networks)):
        return False
    how = reached["how"] if "how" in reached.columns else pd.Series(REACHED, index=reached.index)
    via = reached["via"] if "via" in reached.columns else pd.Series(None, index=reached.index, dtype=object)
    # a pod the attacker made is theirs from its first packet (its flows may be stamped a moment
    # before the audit log's creation time: the clocks of two sources differ)
    when = {n: (pd.NaT if isinstance(v, str) and (v.startswith("create") or v == "runs") else t)
            for n, t, h, v in zip(reached["node"], reached["reached"], how, via)
            if (str(n).startswith("pod:") or (str(n).startswith("node:") and ip[3:] in named)) and h in (REACHED, SOURCE)}
    return any(u in when and d.get("observed") and d["type"] == "flow" and (pd.isna(when[u]) or d["first_seen"] >= when[u])
               for u, _, d in graph.in_edges(ip, data=True))


def _named_addresses(findings: pd.DataFrame) -> set[str]:
    """Addresses the findings name (as their entity, source or destination)."""
    out: set[str] = set()
    for col in ("destination_ip", "source_ip", "entity"):
        if col in findings.columns:
            out |= {str(v) for v in findings[col].dropna()}
    return out


def _edge_events(graph: nx.MultiDiGraph, node: str, *, incoming_from: str | None = None) -> list[str]:
    if incoming_from is not None:
        return [e for u, _, d in graph.in_edges(node, data=True) if str(u).startswith(incoming_from) and d.get("observed")
                for e in d["event_ids"][:5]]
    return [e for _, _, d in list(graph.out_edges(node, data=True)) + list(graph.in_edges(node, data=True)) if d.get("observed")
            for e in d["event_ids"][:5]]


def _compromised_workloads(graph: nx.MultiDiGraph, reached: pd.DataFrame, isolate: set[str]) -> dict[tuple[str, str], list[str]]:
    """The workloads of the pods the attacker reached (and that are isolated, not system
    components) and did not create themselves: redeployed from a known-good image."""
    out: dict[tuple[str, str], list[str]] = {}
    held = set(reached["node"])
    for n in reached["node"]:
        if n not in isolate or n not in graph:
            continue
        attrs = graph.nodes[n]
        # a pod the attacker made goes with what made it; one a controller made for a workload
        # the attacker never touched (a poisoned image rolled out by CI) means redeploying that workload
        if attrs.get("kind") == "pod" and attrs.get("workload") and not str(attrs["workload"]).startswith("Node") and not any(
                d.get("observed") and d["type"] in ("create_pod", "runs") and u in held for u, _, d in graph.in_edges(n, data=True)):
            ns, pod = n[4:].split("/", 1)
            out.setdefault((ns, str(attrs["workload"]).replace(" ", "/")), []).append(pod)
    return out
