"""The remediation plan of one case: what the attacker reached and made, the attack's flows,
the generated objects and the checklist, computed once (``Remediation``)."""

from __future__ import annotations

import functools
import ipaddress
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import pandas as pd

from .. import node_ids
from ..analysis.entry import made_by_hand
from ..analysis.graph import lateral_movement
from ..analysis.possible import KIND_RESOURCE, resource_of
from ..analysis.reach import REACHED, SOURCE
from ..analysis.scope import attack_scope
from ..bodies import UnreadableBodies
from ..context.enrich import enriched, enriched_chunks
from ..context.networks import cluster_networks, is_external
from ..detect import detect
from ..detect.engine import FLOW_COLUMNS_READ
from ..frames import clock
from .actions import (
    QUARANTINE_LABEL,
    QUARANTINE_POLICY,
    SYSTEM_NAMESPACES,
    TOKEN_REQUEST_COLUMNS,
    Facts,
    _accessed,
    _named_addresses,
    attacker_objects,
    isolated_pods,
    remediation_actions,
)
from .admission import gatekeeper, image_repositories, kyverno
from .commands import kubectl, names_ok
from .markdown import checklist_markdown
from .network_policy import network_policies, pod_labels
from .pod_security import namespace_levels, namespace_objects
from .preserve import preservation_actions
from .rbac import least_privilege, unused_bindings, used_permissions

if TYPE_CHECKING:
    import networkx as nx

    from ..case import Case

T = TypeVar("T")

# what used_permissions reads of an audit event (not the bodies: most of the table's memory)
USED_PERMISSION_COLUMNS = [
    "time",
    "event_id",
    "user",
    "sa_namespace",
    "sa_name",
    "verb",
    "resource",
    "subresource",
    "api_group",
    "object_namespace",
    "object_name",
    "request_uri",
    "decision",
    "response_code",
]
# what a NetworkPolicy is derived from, of a flow
TRAFFIC_COLUMNS = [
    "src_namespace",
    "src_pod",
    "src_ip",
    "dst_namespace",
    "dst_pod",
    "dst_ip",
    "protocol",
    "dst_port",
    "is_reply",
    "verdict",
]


def _once(method: Callable[[Remediation], T]) -> Callable[[Remediation], T]:
    """Compute a plan's part once: the checklist and the artifacts share them."""

    @functools.wraps(method)
    def wrapper(self: Remediation) -> T:
        if method.__name__ not in self._memo:
            self._memo[method.__name__] = method(self)
        return self._memo[method.__name__]  # type: ignore[no-any-return]

    return wrapper


# service-account annotations that bind it to a cloud identity (EKS IAM roles for service accounts;
# GKE Workload Identity; Microsoft Entra Workload ID on AKS)
CLOUD_ANNOTATIONS = {
    "eks.amazonaws.com/role-arn": "AWS",
    "iam.gke.io/gcp-service-account": "GCP",
    "azure.workload.identity/client-id": "Azure",
}

ARTIFACTS = {
    "quarantine": "00-quarantine-networkpolicies.yaml",
    "NetworkPolicy": "10-networkpolicies.yaml",
    "Pod Security Admission": "20-pod-security-namespaces.yaml",
    "RBAC": "30-least-privilege-rbac.yaml",
    "admission policy": "40-gatekeeper.yaml",
    "kyverno": "41-kyverno.yaml",
}


class Remediation:
    """Everything remediation derives from one case, computed once: the findings, the graph,
    what the attacker reached, the attack's flows, and the generated objects."""

    def __init__(
        self,
        case: Case,
        *,
        findings: pd.DataFrame | None = None,
        graph: nx.MultiDiGraph | None = None,
        chunk_rows: int = 1_000_000,
    ) -> None:
        self.case = case
        # bodies left unread (too large, too deep, not JSON) by the steps the plan runs itself
        self.unreadable = UnreadableBodies()
        self.chunk_rows = chunk_rows  # flows are read this many at a time, audit events a fifth as many
        self._memo: dict[str, Any] = {}
        self.findings = findings if findings is not None else case.findings()
        if self.findings.empty and not case.manifest.get("detections"):
            self.findings = detect(case, save=False)
        self.graph = graph if graph is not None else lateral_movement(case, unreadable=self.unreadable)
        # the cluster's own addresses: never an attacker address to block, never where the attack came from
        self.networks = cluster_networks(case.context("nodes"))
        # every way in the findings confirm (outside addresses, a foothold pod, identities acting
        # from outside), and what the attacker reached from there
        self.scope = attack_scope(self.graph, networks=self.networks, findings=self.findings, made=made_by_hand(case))
        self.labels = pod_labels(case.context("pods"), case.context("pod_ips"))

    # ------------------------------------------------------------------ who and what is the attack
    @_once
    def attacker_ips(self) -> set[str]:
        """The outside addresses of the attack: where it came from, where the pods it reached
        or made connected to after that, where its stolen credentials were used from."""
        reached = self.scope.paths
        done = set(self.scope.held) | {node_ids.pod(ns, p) for ns, p in self._attacker_pods()}
        made = reached.assign(how=[REACHED if n in done else h for n, h in zip(reached["node"], reached["how"])])
        extra = pd.DataFrame({"node": [n for n in done if n not in set(made["node"])]}).assign(
            reached=pd.NaT, how=REACHED
        )
        made = pd.concat([made, extra], ignore_index=True) if len(extra) else made
        named = _named_addresses(self.findings)
        ips = {
            node_ids.label(n)
            for n in self.graph
            if node_ids.is_a(n, "ip")
            and (n in self.scope.sources or _accessed(self.graph, made, n, networks=self.networks, named=named))
        }
        ips |= {
            node_ids.label(u)
            for n in done
            if node_ids.is_a(n, "sa", "user")
            for u, _, d in self.graph.in_edges(n, data=True)
            if node_ids.is_a(u, "ip") and d.get("observed") and not str(d["type"]).startswith("flow")
        }
        ips |= self._flagged_destinations() | self._webhook_endpoints()
        return {ip for ip in ips if is_external(ip, self.networks)}

    def _flagged_destinations(self) -> set[str]:
        """Where a high or critical finding — or any finding about a pod the attacker holds or
        made — says traffic went (beaconing, a mining pool, a download, a reverse shell): a pod's
        traffic leaves through its node's address, so the graph may not see the pod send it."""
        f = self.findings
        if f.empty or "destination_ip" not in f.columns:
            return set()
        ours = set(self.scope.held) | {node_ids.pod(ns, p) for ns, p in self._attacker_pods()}
        about = node_ids.pods(f["namespace"], f["pod"]).isin(ours)
        hit = f[(f["severity"].isin(["high", "critical"]) | about) & f["destination_ip"].notna()]
        return {str(ip) for ip in hit["destination_ip"]}

    def _webhook_endpoints(self) -> set[str]:
        """The address literals of the URLs an admission webhook the attacker created calls: every
        pod created from then on is sent there (MS-TA9015)."""
        made = self.created()
        ids = made.loc[
            made["resource"].isin(["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]), "event_id"
        ].tolist()
        if not ids:
            return set()
        rows = self.case.sql("SELECT event_id, request_object FROM audit WHERE event_id IN (SELECT unnest(?))", [ids])
        out: set[str] = set()
        for body in rows["request_object"]:
            obj = self.unreadable.parse(body, where="remediation", event_id="webhook")
            hooks = obj.get("webhooks") if isinstance(obj, dict) else None
            for hook in hooks if isinstance(hooks, list) else []:
                url = (
                    hook.get("clientConfig", {}).get("url")
                    if isinstance(hook, dict) and isinstance(hook.get("clientConfig"), dict)
                    else None
                )
                host = urlsplit(url).hostname if isinstance(url, str) else None
                if host:
                    try:
                        out.add(str(ipaddress.ip_address(host)))
                    except ValueError:
                        continue  # a name: the checklist's webhook deletion names it; a firewall needs an address
        return out

    @functools.cached_property
    def flows(self) -> pd.DataFrame:
        """Every flow of the case, enriched — loaded on first use only: the plan itself reads
        the flows a chunk at a time (``traffic``)."""
        return enriched(self.case, "flows", max_rows=None)

    @_once
    def attack_flows(self) -> pd.Series:
        """Flows that are part of the attack (aligned with ``flows``): named by a finding; to or
        from an attacker address; sent by a pod the attacker created (or one of its workloads);
        or sent by a compromised pod after its compromise to a peer it had not talked to before."""
        return self._attack_mask(self.flows, {})

    @_once
    def traffic(self) -> pd.DataFrame:
        """The flows reduced to what a NetworkPolicy is derived from: one row per distinct
        (``TRAFFIC_COLUMNS``, ``attack``) with ``flows``, how many flows it stands for. Read
        from the case a chunk at a time, so a case with more flows than memory still gets its
        policies."""
        before: dict[str, set[Any]] = {}
        parts = []
        for f in enriched_chunks(self.case, "flows", rows=self.chunk_rows, columns=FLOW_COLUMNS_READ):
            rows = f[TRAFFIC_COLUMNS].assign(attack=self._attack_mask(f, before).to_numpy())
            parts.append(
                rows.groupby([*TRAFFIC_COLUMNS, "attack"], dropna=False, sort=False)
                .size()
                .rename("flows")
                .reset_index()
            )
        if not parts:
            return pd.DataFrame(columns=[*TRAFFIC_COLUMNS, "attack", "flows"])
        merged = pd.concat(parts, ignore_index=True)
        return merged.groupby([*TRAFFIC_COLUMNS, "attack"], dropna=False, sort=False)["flows"].sum().reset_index()

    def _attack_mask(self, f: pd.DataFrame, before: dict[str, set[Any]]) -> pd.Series:
        """``attack_flows`` over ``f``, one chunk of the flows in time order; ``before`` carries,
        from chunk to chunk, the peers each compromised pod talked to before its compromise."""
        named = self._named_events()
        mask = f["event_id"].astype(str).isin(named)
        ips = self.attacker_ips()
        mask |= f["src_ip"].isin(ips) | f["dst_ip"].isin(ips)
        made = self._attacker_pods()
        src = list(zip(f["src_namespace"], f["src_pod"]))
        mask |= pd.Series([p in made for p in src], index=f.index)
        for node, t in self.scope.held.items():
            if not node_ids.is_a(node, "pod") or pd.isna(t):
                continue
            ns, pod = node_ids.namespaced(node)
            mine = (f["src_namespace"] == ns) & (f["src_pod"] == pod)
            seen = before.setdefault(node, set())
            seen.update(f.loc[mine & (f["time"] < t), "dst_ip"])  # all earlier flows come in this chunk or before
            mask |= mine & (f["time"] >= t) & ~f["dst_ip"].isin(seen)
        return mask.fillna(False).astype(bool)

    @_once
    def _named_events(self) -> set[str]:
        """The evidence of the findings that mark flows as the attack's: those of medium severity
        and above, and any about a pod the attacker holds or made — a low finding alone (a
        periodic call to a payment provider looks like beaconing) does not take a flow out of
        the allowed traffic."""
        f = self.findings
        ours = set(self.scope.held) | {node_ids.pod(ns, p) for ns, p in self._attacker_pods()}
        about = node_ids.pods(f["namespace"], f["pod"]).isin(ours) if len(f) else pd.Series(dtype=bool)
        strong = f[(f["severity"] != "low") | about] if len(f) else f
        return {str(e) for ids in strong["event_ids"] if ids is not None for e in ids}

    @_once
    def _attacker_pods(self) -> set[tuple[str, str]]:
        done = set(self.scope.held)
        made: set[str] = set()
        for u, v, d in self.graph.edges(data=True):
            if u in done and d.get("observed") and d["type"] in ("create_pod", "create_workload"):
                made.add(v)
        for u, v, d in self.graph.edges(data=True):  # the pods the attacker's workloads ran
            if u in made and d["type"] == "runs":
                made.add(v)
        pods = self.case.context("pods")
        for r in pods.itertuples(index=False):  # and, where the graph has no runs edge, by owner
            if isinstance(r.workload, str) and isinstance(r.workload_kind, str):
                wl = node_ids.workload(r.namespace, KIND_RESOURCE.get(r.workload_kind, ""), r.workload)
                if wl in made:
                    made.add(node_ids.pod(r.namespace, r.name))
        return {node_ids.namespaced(n) for n in made if node_ids.is_a(n, "pod")}

    # ------------------------------------------------------------------ the generated objects
    @_once
    def network_policies(self) -> list[dict[str, Any]]:
        traffic = self.traffic()
        return network_policies(traffic, self.labels, attack=traffic["attack"], **self.policy_options())

    def policy_options(self) -> dict[str, Any]:
        """What ``network_policies`` takes besides the flows, from the case: the attacker's
        addresses, the nodes, the system namespaces left alone, stale pod addresses, the API
        server's endpoints."""
        endpoints = self.case.context("endpoints")
        api = endpoints[(endpoints["namespace"] == "default") & (endpoints["service"] == "kubernetes")]["address"]
        return {
            "attacker_ips": self.attacker_ips(),
            "nodes": self.case.context("nodes"),
            "skip_namespace": lambda ns: bool(SYSTEM_NAMESPACES.match(ns)),
            "stale_addresses": self.last_holders(),
            "api_servers": set(api.dropna()),
        }

    def last_holders(self) -> dict[str, tuple[str, str]]:
        """Each pod address → the (namespace, pod) that held it last."""
        held = (
            self.case.context("pod_ips").dropna(subset=["ip", "namespace", "pod"]).sort_values("start", kind="stable")
        )
        return {str(ip): (str(ns), str(pod)) for ip, ns, pod in zip(held["ip"], held["namespace"], held["pod"])}

    def quarantine_policies(self) -> list[dict[str, Any]]:
        namespaces = sorted(
            {
                str(node_ids.parse(n).namespace)
                for n in isolated_pods(self.scope.paths, self.graph, pods=self.case.context("pods"))
            }
        )
        return [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {
                    "name": QUARANTINE_POLICY,
                    "namespace": ns,
                    "labels": {"app.kubernetes.io/managed-by": "k8sforensics"},
                },
                # no ingress and no egress rule: nothing in or out, not even DNS (Kubernetes docs, Network Policies: default deny)
                "spec": {
                    "podSelector": {"matchLabels": {QUARANTINE_LABEL: "true"}},
                    "policyTypes": ["Ingress", "Egress"],
                },
            }
            for ns in namespaces
        ]

    @_once
    def created(self) -> pd.DataFrame:
        """Objects the attacker's identities created, per the audit log: every allowed, successful
        create (not a subresource) by an identity the attacker held, from the time they held it —
        webhooks, service accounts, secrets, CSRs and roles as well as workloads and bindings.
        Columns resource, api_group, namespace, name, actor, event_id, time."""
        return self._held_requests("create", exclude=())

    @_once
    def deleted(self) -> pd.DataFrame:
        """Objects the attacker's identities deleted, per the audit log, from when they held them
        (not pods: a controller makes those again): what recovery restores. Columns as ``created``."""
        return self._held_requests("delete", exclude=("pods", "events"))

    def _held_requests(self, verb: str, *, exclude: tuple[str, ...]) -> pd.DataFrame:
        """Allowed, successful ``verb`` requests (not a subresource) by the identities the attacker
        held, from when they held them, on resources not in ``exclude``."""
        held = {n: t for n, t in self.scope.held.items() if node_ids.is_a(n, "sa", "user")}
        columns = ["resource", "api_group", "namespace", "name", "actor", "event_id", "time"]
        if not held:
            return pd.DataFrame(columns=columns)
        who = pd.DataFrame(
            {
                "user": [node_ids.username(n) for n in held],
                "node": list(held),
                "since": pd.to_datetime(list(held.values()), utc=True),
            }
        )
        con = self.case.connect()
        try:
            con.register("who", who)
            out = con.sql(
                """
                SELECT a.resource, a.api_group, a.object_namespace AS namespace, a.object_name AS name, w.node AS actor,
                       a.event_id, a.time
                FROM audit a JOIN who w ON a."user" = w."user"
                WHERE a.verb = $verb AND a.subresource IS NULL AND a.object_name IS NOT NULL AND a.resource IS NOT NULL
                  AND NOT list_contains($exclude, a.resource)
                  AND (w.since IS NULL OR a.time >= w.since)
                  AND (a.decision = 'allow' OR (coalesce(a.decision, '') = '' AND coalesce(a.response_code, 200) < 400))
                  AND coalesce(a.response_code, 200) < 400
                ORDER BY a.time, a.event_id""",
                params={"verb": verb, "exclude": list(exclude)},
            ).df()
        finally:
            con.close()
        return out.reindex(columns=columns)

    def _anonymous_bindings(self, facts: Facts) -> list[dict[str, Any]]:
        """Containment: each binding that grants anonymous or unauthenticated requests a role
        beyond the API server's own defaults — anyone who reaches the API server acts with it, so
        it goes before any credential is rotated (Kubernetes docs, "Authenticating": anonymous
        requests; the bootstrap system: bindings are reconciled by the API server and left alone)."""
        rbac = self.case.context("rbac")
        hit = rbac[
            rbac["subject"].isin(["system:anonymous", "system:unauthenticated"])
            & ~(
                rbac["binding"].astype(str).str.startswith("system:")
                & rbac["role"].astype(str).str.startswith("system:")
            )
        ]
        rows = []
        for r in hit.drop_duplicates(["binding_kind", "binding_namespace", "binding"]).itertuples(index=False):
            ns = (
                r.binding_namespace
                if isinstance(r.binding_namespace, str) and r.binding_kind == "RoleBinding"
                else None
            )
            kind = str(r.binding_kind).lower()
            rows.append(
                {
                    "priority": 2,
                    "kind": "delete",
                    "action": f"delete the {r.binding_kind} {r.binding}: it grants {r.subject} the "
                    f"{r.role_kind} {r.role} — anyone who reaches the API server acts with it, so it goes before anything else "
                    f"is rotated",
                    "target": node_ids.binding(r.binding),
                    "control": "RBAC",
                    "why": "an open door into the cluster",
                    "references": "CIS 5.1.1; MS-TA9001; Kubernetes docs: Authenticating (anonymous requests)",
                    "command": kubectl("delete", kind, str(r.binding), "--ignore-not-found", namespace=ns)
                    if names_ok((kind, r.binding)) and (ns is None or names_ok(("namespace", ns)))
                    else "",
                    "check": facts.check("absent", kind + "s", ns, str(r.binding)),
                }
            )
        return rows

    def _restores(self, facts: Facts) -> list[dict[str, Any]]:
        """Recovery: each object the attacker deleted, restored from where it is defined (Git,
        Helm, a backup) — never from the cluster, which they controlled (NIST SP 800-61: recovery)."""
        made = {(r.resource, r.namespace, r.name) for r in self.created().itertuples(index=False)}
        rows = []
        for r in self.deleted().drop_duplicates(["resource", "namespace", "name"]).itertuples(index=False):
            if (r.resource, r.namespace, r.name) in made:
                continue  # the attacker's own object, removed: nothing to restore
            ns = r.namespace if isinstance(r.namespace, str) and r.namespace else None
            where = f"{ns}/{r.name}" if ns else str(r.name)
            target = node_ids.workload(ns, r.resource, r.name) if ns else node_ids.cluster_scoped(r.resource, r.name)
            # a Secret comes back with a new value: the attacker may have read the old one before deleting it
            value = " with a newly issued value, never the old one" if r.resource == "secrets" else ""
            rows.append(
                {
                    "priority": 5,
                    "kind": "restore",
                    "action": f"restore the {r.resource[:-1] if r.resource.endswith('s') else r.resource} "
                    f"{where} the attacker deleted, from its definition (Git, Helm, a backup){value} — not from the cluster; "
                    f"check what went unlogged or unprotected while it was gone",
                    "target": target,
                    "control": "recovery",
                    "why": f"deleted by {r.actor} at {clock(r.time)}",
                    "event_ids": [str(r.event_id)],
                    "references": "NIST SP 800-61 (recovery)",
                    "check": facts.check("present", str(r.resource), ns, str(r.name)),
                }
            )
        return rows

    def _same_image_replicas(
        self, pods: pd.DataFrame, key: pd.Series, reached: set[str], ended: dict[str, Any]
    ) -> pd.DataFrame:
        """Live replicas of a pod the attack came in through with no hop before it (a poisoned
        image, an implant calling out): they run the same image, so they carry the same code, and
        the redeploy of their workload destroys them — preserved with the pod itself."""
        out = []
        for node in self._entry_pods() & reached:
            me = pods[key == node]
            if me.empty or not isinstance(me["workload"].iloc[0], str):
                continue
            images = set(me["images"].iloc[0]) if me["images"].iloc[0] is not None else set()
            mates = pods[
                (pods["namespace"] == me["namespace"].iloc[0])
                & (pods["workload_kind"] == me["workload_kind"].iloc[0])
                & (pods["workload"] == me["workload"].iloc[0])
                & ~key.isin(reached)
                & ~key.isin(set(ended))
            ]
            mates = mates[[images & set(i if i is not None else []) != set() for i in mates["images"]]]
            out.append(
                mates.assign(
                    reason=f"it runs the same image as {node_ids.label(node)}, which the attack came in through"
                )
            )
        return pd.concat(out, ignore_index=True) if out else pods.iloc[0:0]

    def _entry_pods(self) -> set[str]:
        """The pods the attack came in through with no hop before them: what they run (a
        poisoned image, an implant) is the attacker's, never a known-good image."""
        r = self.scope.paths
        return {n for n in r.loc[(r["how"] == SOURCE) & r["parent"].isna(), "node"] if node_ids.is_a(n, "pod")}

    def _entry_images(self) -> set[str]:
        """The images the attack came in with or put there: those of the entry pods and of the
        pods a workload the attacker made or changed runs — never a known-good image."""
        pods = self.case.context("pods")
        key = node_ids.pods(pods["namespace"], pods["name"])
        r = self.scope.paths
        theirs = self._entry_pods() | set(r.loc[r["via"].eq("runs") & r["how"].isin([SOURCE, REACHED]), "node"])
        return {i for images in pods.loc[key.isin(theirs), "images"] if images is not None for i in images}

    @_once
    def facts(self) -> Facts:
        """What ``--verify`` checks against and the credential steps need, from the case: object
        uids, legacy token Secrets, cloud identities of service accounts, the tokens the
        attacker requested, image digests per workload."""
        objects = (
            self.case.sql("SELECT kind, namespace, name, uid FROM objects WHERE uid IS NOT NULL")
            if "objects" in self._tables()
            else pd.DataFrame(columns=["kind", "namespace", "name", "uid"])
        )
        uids = {
            (resource_of(str(k)), ns if isinstance(ns, str) and ns else None, str(n)): str(u)
            for k, ns, n, u in zip(objects["kind"], objects["namespace"], objects["name"], objects["uid"])
        }
        # the lifetimes know pods the dump no longer holds (from the audit log's responses)
        lifetimes = self.case.context("pod_ips")
        if "pod_uid" in lifetimes.columns:
            for ns, pod, uid in zip(lifetimes["namespace"], lifetimes["pod"], lifetimes["pod_uid"]):
                if isinstance(uid, str) and uid:
                    uids.setdefault(("pods", ns, pod), uid)
        since = self.case.sql("SELECT max(time) AS t FROM audit")["t"].iloc[0] if "audit" in self._tables() else None
        return Facts(
            uids=uids,
            legacy_tokens=self._legacy_tokens(),
            cloud_identities=self._cloud_identities(),
            token_requests=self._token_requests(),
            digests=self._digests(),
            since=pd.Timestamp(since).isoformat() if since is not None and pd.notna(since) else None,
        )

    def _tables(self) -> set[str]:
        return set(self.case.manifest.get("tables", {}))

    def _object_bodies(self, kind: str, *, containing: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The inventory's objects of one kind, parsed; only those whose JSON holds one of
        ``containing`` (a cheap filter before parsing)."""
        if "objects" not in self._tables():
            return []
        like = " OR ".join("contains(object, ?)" for _ in containing) or "true"
        rows = self.case.sql(f"SELECT object FROM objects WHERE kind = ? AND ({like})", [kind, *containing])
        out = []
        for text in rows["object"]:
            obj = self.unreadable.parse(text, where="remediation", event_id=kind)
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def _legacy_tokens(self) -> dict[str, list[str]]:
        """sa:ns/name → its legacy token Secrets (type kubernetes.io/service-account-token, the
        account named in their annotation): long-lived, valid until deleted."""
        out: dict[str, list[str]] = {}
        for obj in self._object_bodies("Secret", containing=("kubernetes.io/service-account-token",)):
            md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            account = (
                (md.get("annotations") or {}).get("kubernetes.io/service-account.name")
                if isinstance(md.get("annotations"), dict)
                else None
            )
            if (
                obj.get("type") == "kubernetes.io/service-account-token"
                and isinstance(account, str)
                and isinstance(md.get("name"), str)
            ):
                out.setdefault(node_ids.service_account(md.get("namespace"), account), []).append(md["name"])
        return out

    def _cloud_identities(self) -> dict[str, list[tuple[str, str]]]:
        """sa:ns/name → the cloud identities its annotations bind it to (EKS IRSA, GKE and AKS
        Workload Identity)."""
        out: dict[str, list[tuple[str, str]]] = {}
        for obj in self._object_bodies("ServiceAccount", containing=tuple(CLOUD_ANNOTATIONS)):
            md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            notes = md.get("annotations") if isinstance(md.get("annotations"), dict) else {}
            for key, cloud in CLOUD_ANNOTATIONS.items():
                if isinstance(notes.get(key), str) and notes[key]:
                    out.setdefault(node_ids.service_account(md.get("namespace"), md.get("name")), []).append(
                        (cloud, notes[key])
                    )
        return out

    def _token_requests(self) -> pd.DataFrame:
        """The TokenRequests of the graph's token_request edges: when, for how long, bound to what
        (the token itself never reaches the case)."""
        ids = [
            e
            for _, _, d in self.graph.edges(data=True)
            if d.get("observed") and d["type"] == "token_request"
            for e in d["event_ids"]
        ]
        if not ids:
            return pd.DataFrame(columns=TOKEN_REQUEST_COLUMNS)
        rows = self.case.sql(
            'SELECT event_id, time, "user", object_namespace, object_name, request_object, response_object FROM audit '
            "WHERE event_id IN (SELECT unnest(?))",
            [ids],
        )
        out = []
        for r in rows.itertuples(index=False):
            request = self.unreadable.parse(r.request_object, where="remediation", event_id=str(r.event_id))
            response = self.unreadable.parse(r.response_object, where="remediation", event_id=str(r.event_id))
            spec = request.get("spec") if isinstance(request, dict) and isinstance(request.get("spec"), dict) else {}
            status = (
                response.get("status")
                if isinstance(response, dict) and isinstance(response.get("status"), dict)
                else {}
            )
            seconds = spec.get("expirationSeconds") if isinstance(spec.get("expirationSeconds"), int) else None
            expires = (
                pd.to_datetime(status.get("expirationTimestamp"), utc=True, errors="coerce")
                if status.get("expirationTimestamp")
                else pd.NaT
            )
            if pd.isna(expires) and seconds is not None:
                expires = r.time + pd.Timedelta(
                    seconds=seconds
                )  # the API server grants what was asked, or less: at most this
            bound = spec.get("boundObjectRef") if isinstance(spec.get("boundObjectRef"), dict) else {}
            out.append(
                {
                    "sa": node_ids.service_account(r.object_namespace, r.object_name),
                    "time": r.time,
                    "expiration_seconds": seconds,
                    "expires": expires,
                    "bound_kind": bound.get("kind") if isinstance(bound.get("kind"), str) else None,
                    "bound_name": bound.get("name") if isinstance(bound.get("name"), str) else None,
                    "actor": r.user,
                    "event_id": str(r.event_id),
                }
            )
        return pd.DataFrame(out, columns=TOKEN_REQUEST_COLUMNS)

    def _digests(self) -> dict[tuple[str, str], dict[str, str]]:
        """(namespace, "Kind/workload") → container → image pinned by digest, from the container
        statuses of its pods that the attacker neither made nor reached: the last known-good."""
        bad = {(ns, p) for ns, p in self._attacker_pods()} | {
            node_ids.namespaced(n) for n in self.scope.held if node_ids.is_a(n, "pod")
        }
        bad_images = self._entry_images()
        pods = self.case.context("pods")
        workload = {
            (r.namespace, r.name): f"{r.workload_kind}/{r.workload}"
            for r in pods.itertuples(index=False)
            if isinstance(r.workload, str) and (r.namespace, r.name) not in bad
        }
        out: dict[tuple[str, str], dict[str, str]] = {}
        for obj in self._object_bodies("Pod", containing=("@sha256:",)):
            md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            key = (md.get("namespace"), md.get("name"))
            if key not in workload:
                continue
            statuses = (
                (obj.get("status") or {}).get("containerStatuses") if isinstance(obj.get("status"), dict) else None
            )
            for c in statuses if isinstance(statuses, list) else []:
                image_id = c.get("imageID") if isinstance(c, dict) else None
                if (
                    isinstance(image_id, str)
                    and "@sha256:" in image_id
                    and isinstance(c.get("name"), str)
                    and c.get("image") not in bad_images
                ):
                    repo = (
                        str(c.get("image") or image_id).split("@", 1)[0].rsplit(":", 1)[0]
                        if "/" in str(c.get("image") or "")
                        else image_id.split("://", 1)[-1].split("@", 1)[0]
                    )
                    out.setdefault((str(key[0]), workload[key]), {}).setdefault(
                        c["name"], f"{repo}@{image_id.split('@', 1)[1]}"
                    )
        return out

    def _ended(self) -> dict[str, Any]:
        """pod:ns/name → when it ended, for pods whose last lifetime is closed."""
        lifetimes = (
            self.case.context("pod_ips")
            .sort_values("start", kind="stable")
            .drop_duplicates(["namespace", "pod"], keep="last")
        )
        closed = lifetimes[lifetimes["end"].notna()]
        return {node_ids.pod(ns, pod): end for ns, pod, end in zip(closed["namespace"], closed["pod"], closed["end"])}

    def _binding_kinds(self) -> dict[str, tuple[str, str | None]]:
        """binding:name → (kind, namespace), from the audit events that created them."""
        ids = [
            e
            for _, v, d in self.graph.edges(data=True)
            if d.get("observed") and d["type"] == "bind_role"
            for e in d["event_ids"]
        ]
        if not ids:
            return {}
        rows = self.case.sql(
            "SELECT object_name, resource, object_namespace FROM audit WHERE event_id IN (SELECT unnest(?))", [ids]
        )
        kinds = {"clusterrolebindings": "ClusterRoleBinding", "rolebindings": "RoleBinding"}
        return {
            node_ids.binding(r.object_name): (
                kinds.get(r.resource, "ClusterRoleBinding"),
                r.object_namespace if isinstance(r.object_namespace, str) else None,
            )
            for r in rows.itertuples(index=False)
        }

    @_once
    def pod_security(self) -> pd.DataFrame:
        """The strictest Pod Security level each namespace's pods meet — without the pods the
        attacker made: their hostPath or privileged spec is not what the namespace needs."""
        objects = self.case.objects()
        made = self._attacker_pods()
        mine = pd.Series(
            [(ns, n) in made for ns, n in zip(objects["namespace"], objects["name"])], index=objects.index, dtype=bool
        )
        return namespace_levels(
            objects[~(mine & (objects["kind"] == "Pod"))], self.case.context("namespaces"), unreadable=self.unreadable
        )

    @_once
    def rbac(self) -> tuple[list[dict[str, Any]], pd.DataFrame]:
        """Least-privilege Roles for what identities did outside the attack, and the bindings nothing legitimate used."""
        attack_events = {str(e) for ids in self.findings["event_ids"] if ids is not None for e in ids}
        done = set(self.scope.held)
        for u, _, d in self.graph.edges(data=True):
            if d.get("observed") and u in done and d["type"] != "flow":
                attack_events.update(d["event_ids"])  # what the compromised identities did
        # the audit log a chunk at a time: each chunk's distinct permissions, then distinct over all
        chunks = [
            used_permissions(a, exclude=attack_events)
            for a in self.case.chunks("audit", rows=max(1, self.chunk_rows // 5), columns=USED_PERMISSION_COLUMNS)
        ]
        used = (
            pd.concat(chunks, ignore_index=True).drop_duplicates().reset_index(drop=True)
            if chunks
            else used_permissions(
                self.case.audit(columns=USED_PERMISSION_COLUMNS, max_rows=None), exclude=attack_events
            )
        )
        return least_privilege(used), unused_bindings(self.case.context("rbac"), used)

    def trusted_repositories(self) -> list[str]:
        """Repositories of the images the inventory's pods and workloads run, less those of pods
        the attacker created and of images a finding calls untrusted."""
        made = self._attacker_pods()
        pods = self.case.context("pods")
        images = [
            i
            for r in pods.itertuples(index=False)
            if (r.namespace, r.name) not in made and r.images is not None
            for i in r.images
        ]
        flagged = " ".join(self.findings["summary"].astype(str))
        return [r for r in image_repositories(images) if r not in flagged and r.rstrip("/") not in flagged]

    def privileged_namespaces(self) -> list[str]:
        """Namespaces the admission policies exempt: those whose own pods (not the attacker's)
        need privileged settings, and the system namespaces."""
        levels = self.pod_security()
        system = levels["namespace"].map(lambda ns: bool(SYSTEM_NAMESPACES.match(str(ns))))
        return sorted(levels.loc[(levels["level"] == "privileged") | system, "namespace"])

    def artifacts(self) -> dict[str, list[dict[str, Any]]]:
        """Every generated object, per artifact file name."""
        repos = self.trusted_repositories()
        exempt = self.privileged_namespaces()
        return {
            ARTIFACTS["quarantine"]: self.quarantine_policies(),
            ARTIFACTS["NetworkPolicy"]: self.network_policies(),
            # never a system namespace: its CNI, kube-proxy and storage agents need privileged pods, and a
            # rebuilt node whose agents are rejected has no network
            ARTIFACTS["Pod Security Admission"]: namespace_objects(
                self.pod_security()[
                    ~self.pod_security()["namespace"].map(lambda ns: bool(SYSTEM_NAMESPACES.match(str(ns))))
                ]
            ),
            ARTIFACTS["RBAC"]: self.rbac()[0],
            ARTIFACTS["admission policy"]: gatekeeper(repos, exempt=exempt),
            ARTIFACTS["kyverno"]: kyverno(repos, exempt=exempt),
        }

    def write(self, out: str | os.PathLike[str] | None = None) -> dict[str, Path]:
        """Write ``artifacts()`` (multi-document YAML, one file per control; a control with
        nothing to apply gets no file), the checklist as ``checklist.csv`` and as
        ``checklist.md`` (to paste into a ticket) under ``<case>/remediation`` (or ``out``).
        Returns name → path."""
        import yaml

        folder = Path(out) if out is not None else self.case.path / "remediation"
        folder.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, objects in self.artifacts().items():
            path = folder / name
            if objects:
                path.write_text(yaml.safe_dump_all(objects, sort_keys=False, width=120))
                written[name] = path
            else:
                path.unlink(missing_ok=True)  # a file from an earlier run that now has nothing to apply
        actions = self.actions(folder=folder)
        path = folder / "checklist.csv"
        actions.assign(
            finding_ids=actions["finding_ids"].map(" ".join),
            event_ids=actions["event_ids"].map(" ".join),
            check=actions["check"].map(lambda c: json.dumps(c, sort_keys=True) if c is not None else ""),
        ).to_csv(path, index=False)
        written["checklist.csv"] = path
        path = folder / "checklist.md"
        path.write_text(checklist_markdown(actions, title=f"Remediation checklist — {self.case.path.name}"))
        written["checklist.md"] = path
        return written

    def known_good_images(self) -> dict[tuple[str, str], list[str]]:
        """(namespace, "Kind/workload") → the images its pods the attacker did not make run, less
        the images the attack came in with."""
        made = self._attacker_pods()
        bad = self._entry_images()
        images: dict[tuple[str, str], list[str]] = {}
        for r in self.case.context("pods").itertuples(index=False):
            if isinstance(r.workload, str) and (r.namespace, r.name) not in made and r.images is not None:
                seen = images.setdefault((r.namespace, f"{r.workload_kind}/{r.workload}"), [])
                seen += [i for i in r.images if i not in seen and i not in bad]
        return images

    def actions(self, *, folder: str | os.PathLike[str] | None = None) -> pd.DataFrame:
        """The checklist (``remediation_actions``), with the preservation block first, the
        restores and the bindings nothing legitimate used. ``folder`` is where ``write`` puts
        the artifacts (default ``<case>/remediation``): each step names its file as it is on
        disk, relative to the current directory, and only files with objects in them."""
        folder = Path(folder) if folder is not None else self.case.path / "remediation"
        memo = f"actions:{folder.resolve()}:{Path.cwd()}"  # the paths the steps name depend on both
        if memo not in self._memo:
            self._memo[memo] = self._actions(folder)
        return self._memo[memo].copy()

    def _actions(self, folder: Path) -> pd.DataFrame:
        facts = self.facts()
        files = {
            control: folder / ARTIFACTS[control]
            for control in ("quarantine", "NetworkPolicy", "Pod Security Admission", "RBAC", "admission policy")
        }
        contents = self.artifacts()
        files = {control: path for control, path in files.items() if contents[path.name]}
        held = self.scope.held
        ended = self._ended()
        made = attacker_objects(self.graph, self.scope.paths, bindings=self._binding_kinds(), created=self.created())
        made_pods = {node_ids.pod(ns, p) for ns, p in self._attacker_pods()}
        pods = self.case.context("pods")
        key = node_ids.pods(pods["namespace"], pods["name"])
        reached_pods = {n for n in held if node_ids.is_a(n, "pod")} | made_pods
        running = pods[key.isin(reached_pods) & ~key.isin(set(ended))].assign(reason="the attacker reached it")
        same = self._same_image_replicas(pods, key, reached_pods, ended)
        running = pd.concat([running, same], ignore_index=True) if len(same) else running
        nodes = self.case.context("nodes")
        held_nodes = nodes[node_ids.nodes(nodes["name"]).isin(held)]
        keep = [
            {
                "resource": "serviceaccounts",
                "namespace": node_ids.namespaced(n)[0],
                "name": node_ids.namespaced(n)[1],
                "target": n,
            }
            for n in held
            if node_ids.is_a(n, "sa")
        ]  # recreated: their definitions are kept
        preserve = preservation_actions(
            pods=running,
            ended={n: t for n, t in ended.items() if n in reached_pods},
            nodes=held_nodes,
            objects=[o for o in [*made, *keep] if o["target"] not in ended],
            case_path=_shown(self.case.path),
        )
        _, unused = self.rbac()
        open_door = self._anonymous_bindings(facts)
        more = [*open_door, *self._restores(facts)]
        more += [
            {
                "priority": 6,
                "kind": "delete",
                "action": f"remove {r.binding_kind} {r.binding}: {r.reason}",
                "target": node_ids.binding(r.binding),
                "control": "RBAC",
                "why": r.reason,
                "references": "CIS 5.1.1; MS-M9003",
                "command": kubectl(
                    "delete",
                    r.binding_kind.lower(),
                    r.binding,
                    "--ignore-not-found",
                    namespace=r.binding_namespace if isinstance(r.binding_namespace, str) else None,
                )
                if names_ok((r.binding_kind.lower(), r.binding))
                else "",
                "check": facts.check(
                    "absent",
                    r.binding_kind.lower() + "s",
                    r.binding_namespace if isinstance(r.binding_namespace, str) else None,
                    str(r.binding),
                ),
            }
            for r in unused.itertuples(index=False)
            # the attacker's own bindings are deleted already, an anonymous grant in containment
            if node_ids.binding(r.binding) not in {o["target"] for o in made} | {o["target"] for o in open_door}
        ]
        return remediation_actions(
            self.findings,
            self.graph,
            scope=self.scope,
            attacker_ips=self.attacker_ips(),
            workload_images=self.known_good_images(),
            bindings=self._binding_kinds(),
            ended=ended,
            artifacts={control: _shown(path) for control, path in files.items()},
            artifact_files={control: str(path.resolve()) for control, path in files.items()},
            networks=self.networks,
            pods=pods,
            created=self.created(),
            preserve=preserve,
            more=more,
            facts=facts,
            case=_shown(self.case.path),
        )


def _shown(path: str | os.PathLike[str]) -> str:
    """A path as a command run from the current directory names it: relative when it is
    below, absolute otherwise."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def remediation(
    case: Case, *, findings: pd.DataFrame | None = None, graph: nx.MultiDiGraph | None = None
) -> pd.DataFrame:
    """The remediation checklist of a case: one row per action, contain → eradicate → harden,
    each with its findings, evidence, control, references and command or artifact."""
    return Remediation(case, findings=findings, graph=graph).actions()


def write_remediation(
    case: Case,
    *,
    out: str | os.PathLike[str] | None = None,
    findings: pd.DataFrame | None = None,
    graph: nx.MultiDiGraph | None = None,
) -> dict[str, Path]:
    """Write the generated objects (multi-document YAML, one file per control) and the checklist
    (``checklist.csv``) under ``<case>/remediation`` (or ``out``). Returns name → path."""
    return Remediation(case, findings=findings, graph=graph).write(out)
