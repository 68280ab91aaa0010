"""The remediation checklist: one row per action, contain first, then eradicate, then harden,
each with the findings and evidence behind it, the control, references and the command or
artifact that carries it out. Built from the findings, the lateral-movement graph (what the
attacker reached, created and read; which configuration edges to cut) and the inventory."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..analysis.network import is_external
from ..analysis.reach import attack_source, edges_to_cut, paths
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


def remediation_actions(findings: pd.DataFrame, graph: nx.MultiDiGraph, *, source: str | None = None, attacker_ips: set[str] | None = None,
                        workload_images: dict[tuple[str, str], list[str]] | None = None,
                        bindings: dict[str, tuple[str, str | None]] | None = None,
                        ended: dict[str, Any] | None = None,
                        artifacts: dict[str, str] | None = None) -> pd.DataFrame:
    """The checklist (columns ``ACTION_COLUMNS``), contain → eradicate → harden. ``source`` is
    where the attack came from (default: the outside address patient zero came from);
    ``attacker_ips`` more outside addresses to block (C2, pools the attacker's pods used);
    ``workload_images`` the known-good images per (namespace, workload) to redeploy from;
    ``bindings`` the kind and namespace of each binding node (``binding:name``) the attacker made;
    ``ended`` when each pod that is no longer running ended (``pod:ns/name`` → time);
    ``artifacts`` maps a control to the generated file that carries it out."""
    artifacts = artifacts or {}
    ids_of = _finding_index(findings)
    source = source if source is not None else attack_source(graph)
    reached = paths(graph, source) if source is not None and source in graph else pd.DataFrame(columns=["node", "kind", "reached", "via", "event_ids"])
    done = set(reached["node"])
    rows: list[dict[str, Any]] = []

    def add(priority: int, action: str, target: str, control: str, *, events: list[str] | None = None, references: str = "",
            command: str = "", artifact: str = "", why: str = "") -> None:
        events = list(dict.fromkeys(events or []))
        fids = sorted({f for e in events for f in ids_of.get(e, ())})
        rows.append({"priority": priority, "phase": PHASE[priority], "action": action, "target": target, "control": control,
                     "why": why, "finding_ids": fids, "event_ids": events[:50], "references": references, "command": command,
                     "artifact": artifact, "status": "open"})

    def evidence(node: str) -> list[str]:
        hit = reached[reached["node"] == node]
        return list(hit["event_ids"].iloc[0]) if len(hit) else []

    # 1. contain: isolate what the attacker controls, cut their credentials, block their addresses
    for node in (n for n in reached["node"] if n.startswith("pod:")):
        ns, pod = node[4:].split("/", 1)
        gone = (ended or {}).get(node)
        state = f" — it ended at {clock(gone)}: make sure it has not come back" if gone is not None else ""
        ok = names_ok(("namespace", ns), ("pod", pod))
        add(1, f"isolate pod {ns}/{pod}: label it and apply the deny-all quarantine policy (keep it for forensics){state}"
            + ("" if ok else suspicious([ns, pod])), node, "NetworkPolicy",
            events=evidence(node), references="CIS 5.3.2; MS-M9014", artifact=artifacts.get("quarantine", ""),
            command=kubectl("label", "pod", pod, "k8sforensics.io/quarantine=true", "--overwrite", namespace=ns) if ok else "",
            why=f"control reached it ({_via(reached, node)})")
    for node in (n for n in reached["node"] if n.startswith("sa:")):
        ns, sa = node[3:].split("/", 1)
        ok = names_ok(("namespace", ns), ("serviceaccount", sa))
        add(1, f"rotate the credentials of service account {ns}/{sa}: delete the pods that run as it (their bound tokens die with them) "
            f"and any legacy token secret; review what it did since" + ("" if ok else suspicious([ns, sa])), node, "credential rotation",
            events=evidence(node), references="CIS 5.1.5, 5.1.6; MS-M9025",
            command=kubectl("delete", "pod", "--field-selector", f"spec.serviceAccountName={sa}", namespace=ns) if ok else "",
            why=f"the attacker held its token ({_via(reached, node)})")
    for node in (n for n in reached["node"] if n.startswith("user:")):
        add(1, f"revoke and reissue the credentials of user {node[5:]}", node, "credential rotation", events=evidence(node),
            references="MS-M9001, M9002, M9006", why=f"the attacker acted as it ({_via(reached, node)})")
    for u, v, d in _edges(graph, done, "read_secret"):
        ns, name = v[7:].split("/", 1)
        target = f"secret {ns}/{name}" if name != "*" else f"every secret of {ns}"
        ok = names_ok(("namespace", ns), ("secret", name)) if name != "*" else False
        add(1, f"rotate {target} at its source (database, cloud, API), then update it" + ("" if ok or name == "*" else suspicious([ns, name])),
            v, "credential rotation", events=d["event_ids"], references="CIS 5.4.1; MS-M9022, M9023", why=f"{u} read it",
            command=kubectl("get", "secret", name, namespace=ns) if ok else "")
    blocked = {f"ip:{ip}" for ip in attacker_ips or ()} | {n for n in graph if n.startswith("ip:") and (n == source or _accessed(graph, done, n))}
    for ip in sorted(blocked):
        add(1, f"block {ip[3:]} at the edge (ingress, firewall, egress proxy)", ip, "network block", events=_edge_events(graph, ip),
            references="NSA 2.0; MS-M9007", why="the attack came from it" if ip == source else "compromised workloads talked to it")
    # 2. eradicate: what the attacker made, what they changed, what let them through
    created_bindings = set()
    for u, v, d in _edges(graph, done, "bind_role"):
        kind, ns = (bindings or {}).get(v, ("ClusterRoleBinding", None))
        created_bindings.add(v[8:])
        ok = names_ok((kind.lower(), v[8:])) and (ns is None or valid_name(ns, kind="namespace"))
        add(2, f"delete the binding {v[8:]} the attacker created" + ("" if ok else suspicious([v[8:]])), v, "RBAC", events=d["event_ids"],
            references="CIS 5.1.1; MS-M9003", command=kubectl("delete", kind.lower(), v[8:], namespace=ns) if ok else "",
            why=f"created by {u}")
    for u, v, d in _edges(graph, done, "create_workload"):
        ns, resource, name = v[9:].split("/", 2)
        ok = names_ok(("namespace", ns), (resource, name)) and bool(_RESOURCE.fullmatch(resource))
        add(2, f"delete the {resource[:-1]} {ns}/{name} the attacker created, and the pods it made" + ("" if ok else suspicious([ns, resource, name])),
            v, "persistence removal", events=d["event_ids"], references="CIS 5.1.4; MS-M9003",
            command=kubectl("delete", resource, name, namespace=ns) if ok else "", why=f"created by {u}")
    for u, v, d in _edges(graph, done, "create_pod"):
        ns, name = v[4:].split("/", 1)
        ok = names_ok(("namespace", ns), ("pod", name))
        add(2, f"delete the pod {ns}/{name} the attacker created (after imaging it)" + ("" if ok else suspicious([ns, name])), v,
            "persistence removal", events=d["event_ids"],
            command=kubectl("delete", "pod", name, "--ignore-not-found", namespace=ns) if ok else "", why=f"created by {u}")
    for u, v, d in _edges(graph, done, "token_request"):
        add(2, f"rotate service account {v[3:]}: the attacker minted a token for it", v, "credential rotation", events=d["event_ids"],
            references="CIS 5.1.13", why=f"minted by {u}")
    for node in (n for n in reached["node"] if n.startswith("node:")):
        ok = valid_name(node[5:])
        add(2, f"drain, cordon and rebuild node {node[5:]} from a clean image (the host was escaped to)" + ("" if ok else suspicious([node[5:]])),
            node, "rebuild", events=evidence(node), references="NSA 1.0",
            command=chain(kubectl("cordon", node[5:]), kubectl("drain", node[5:], "--ignore-daemonsets")) if ok else "",
            why=f"host escape ({_via(reached, node)})")
    for (ns, workload), pods in _compromised_workloads(graph, done).items():
        images = (workload_images or {}).get((ns, workload), [])
        kind_name = workload.split("/", 1)
        ok = len(kind_name) == 2 and names_ok(("namespace", ns), ("workload", kind_name[1])) and bool(_RESOURCE.fullmatch(kind_name[0].lower()))
        add(2, f"redeploy {workload} in {ns} from a known-good image ({', '.join(images) or 'rebuilt from source'}), never patch in place"
            + ("" if ok else suspicious([ns, workload])), f"workload:{ns}/{workload}", "redeploy", references="NSA 1.1; MS-M9004",
            command=kubectl("rollout", "restart", workload.lower(), namespace=ns) if ok else "",
            why=f"its pod(s) {', '.join(pods)} were compromised", events=[e for p in pods for e in evidence(f"pod:{ns}/{p}")])
    foothold = [n for n in reached["node"] if n.startswith("pod:")][:1]
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
    techniques = findings.dropna(subset=["technique_id"]).groupby("technique_id")
    for tech, g in techniques:
        if tech in TECHNIQUE_CONTROLS:
            control, text, refs = TECHNIQUE_CONTROLS[tech]
            events = [e for ids in g["event_ids"] if ids is not None for e in ids]
            add(3, f"{text} ({tech}: {g['title'].iloc[0]})", str(tech), control, events=events, references=refs)
    out = pd.DataFrame(rows, columns=[c for c in ACTION_COLUMNS if c != "action_id"])
    out = out.drop_duplicates(["priority", "action", "target"]).sort_values("priority", kind="stable").reset_index(drop=True)
    out.insert(0, "action_id", _ids(out))
    return out


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


def _accessed(graph: nx.MultiDiGraph, done: set[str], ip: str) -> bool:
    """An outside address a compromised pod connected to after it was compromised."""
    return is_external(ip[3:]) and any(u in done and d.get("observed") and d["type"] == "flow" and str(u).startswith("pod:")
                                         for u, _, d in graph.in_edges(ip, data=True))


def _edge_events(graph: nx.MultiDiGraph, node: str) -> list[str]:
    return [e for _, _, d in list(graph.out_edges(node, data=True)) + list(graph.in_edges(node, data=True)) if d.get("observed")
            for e in d["event_ids"][:5]]


def _compromised_workloads(graph: nx.MultiDiGraph, done: set[str]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for n in done:
        attrs = graph.nodes[n]
        if attrs.get("kind") == "pod" and attrs.get("workload") and not any(
                d.get("observed") and d["type"] in ("create_pod", "runs") for _, _, d in graph.in_edges(n, data=True)):
            ns, pod = n[4:].split("/", 1)
            out.setdefault((ns, str(attrs["workload"]).replace(" ", "/")), []).append(pod)
    return out
