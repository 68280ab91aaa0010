"""The remediation plan of one case: what the attacker reached and made, the attack's flows,
the generated objects and the checklist, computed once (``Remediation``)."""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import pandas as pd

from ..analysis.network import cluster_networks, is_external
from ..analysis.possible import KIND_RESOURCE
from ..analysis.reach import EXPOSED, REACHED, SOURCE
from ..analysis.rules import FLOW_COLUMNS_READ
from ..bodies import UnreadableBodies
from .actions import (
    ACTION_COLUMNS,
    _accessed,
    _ids,
    _named_addresses,
    isolated_pods,
    remediation_actions,
)
from .admission import gatekeeper, image_repositories, kyverno
from .commands import kubectl, names_ok
from .network_policy import network_policies, pod_labels
from .pod_security import namespace_levels, namespace_objects
from .rbac import least_privilege, unused_bindings, used_permissions

if TYPE_CHECKING:
    import networkx as nx

    from ..case import Case

T = TypeVar("T")

# what used_permissions reads of an audit event (not the bodies: most of the table's memory)
USED_PERMISSION_COLUMNS = ["time", "event_id", "user", "sa_namespace", "sa_name", "verb", "resource", "subresource", "api_group",
                           "object_namespace", "object_name", "request_uri", "decision", "response_code"]
# what a NetworkPolicy is derived from, of a flow
TRAFFIC_COLUMNS = ["src_namespace", "src_pod", "src_ip", "dst_namespace", "dst_pod", "dst_ip", "protocol", "dst_port", "is_reply", "verdict"]


def _once(method: Callable[[Remediation], T]) -> Callable[[Remediation], T]:
    """Compute a plan's part once: the checklist and the artifacts share them."""
    @functools.wraps(method)
    def wrapper(self: Remediation) -> T:
        if method.__name__ not in self._memo:
            self._memo[method.__name__] = method(self)
        return self._memo[method.__name__]  # type: ignore[no-any-return]
    return wrapper

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

    def __init__(self, case: Case, *, findings: pd.DataFrame | None = None, graph: nx.MultiDiGraph | None = None,
                 chunk_rows: int = 1_000_000) -> None:
        from ..analysis import detect, lateral_movement
        from ..analysis.kill_chain import made_by_hand, patient_zero
        from ..analysis.reach import PATHS_COLUMNS, attack_sources, paths

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
        # every way in the findings confirm: outside addresses, a foothold pod behind a load balancer, and identities
        # findings show acting from outside (a leaked kubeconfig or token; held from their first such finding on)
        self.sources = attack_sources(self.graph, networks=self.networks, findings=self.findings)
        # the first pod the findings rank as the way in, when nothing from outside leads to it: a
        # poisoned image or an implant calls out, nobody reaches it over the network
        ranked_pods = patient_zero(self.findings, networks=self.networks, made=made_by_hand(case))
        first = ranked_pods[ranked_pods["entity_type"] == "pod"].head(1)
        if len(first) and int(first["rank"].iloc[0]) == 1:
            node = f"pod:{first['entity'].iloc[0]}"
            spread = paths(self.graph, self.sources) if self.sources else pd.DataFrame(columns=PATHS_COLUMNS)
            later = set(spread.loc[spread["how"] != EXPOSED, "node"])  # a pod merely on a node they took can still be the way in
            if node in self.graph and node not in later:
                self.sources.append(node)
        since: dict[str, Any] = {}
        ranked = patient_zero(self.findings, networks=self.networks)
        already = set(paths(self.graph, self.sources)["node"]) if self.sources else set()  # held before it acted from outside
        identities = ranked[ranked["entity_type"].isin(["user", "service_account"])]
        for r in identities.itertuples(index=False):
            node = ("sa:" if r.entity_type == "service_account" else "user:") + str(r.entity)
            user = f"system:serviceaccount:{str(r.entity).replace('/', ':', 1)}" if r.entity_type == "service_account" else str(r.entity)
            if node in self.graph and node not in self.sources and node not in already and _foothold(self.findings, user=user, ip=r.came_from):
                self.sources.append(node)
                since[node] = r.first_seen
        self.source = self.sources[0] if self.sources else None
        self.reached = paths(self.graph, self.sources, held_since=since) if self.sources else pd.DataFrame(columns=PATHS_COLUMNS)
        self.labels = pod_labels(case.context("pods"), case.context("pod_ips"))

    def _held(self) -> dict[str, Any]:
        """What the attacker held (not merely exposed) → since when (NaT: from the start)."""
        r = self.reached
        keep = r["how"].isin([SOURCE, REACHED])
        return dict(zip(r.loc[keep, "node"], r.loc[keep, "reached"]))

    # ------------------------------------------------------------------ who and what is the attack
    @_once
    def attacker_ips(self) -> set[str]:
        """The outside addresses of the attack: where it came from, where the pods it reached
        or made connected to after that, where its stolen credentials were used from."""
        done = set(self._held()) | {f"pod:{ns}/{p}" for ns, p in self._attacker_pods()}
        made = self.reached.assign(how=[REACHED if n in done else h for n, h in zip(self.reached["node"], self.reached["how"])])
        extra = pd.DataFrame({"node": [n for n in done if n not in set(made["node"])]}).assign(reached=pd.NaT, how=REACHED)
        made = pd.concat([made, extra], ignore_index=True) if len(extra) else made
        named = _named_addresses(self.findings)
        ips = {n[3:] for n in self.graph if n.startswith("ip:")
               and (n in self.sources or _accessed(self.graph, made, n, networks=self.networks, named=named))}
        ips |= {str(u)[3:] for n in done if n.startswith(("sa:", "user:")) for u, _, d in self.graph.in_edges(n, data=True)
                if str(u).startswith("ip:") and d.get("observed") and not str(d["type"]).startswith("flow")}
        ips |= self._flagged_destinations() | self._webhook_endpoints()
        return {ip for ip in ips if is_external(ip, self.networks)}

    def _flagged_destinations(self) -> set[str]:
        """Where a high or critical finding — or any finding about a pod the attacker holds or
        made — says traffic went (beaconing, a mining pool, a download, a reverse shell): a pod's
        traffic leaves through its node's address, so the graph may not see the pod send it."""
        f = self.findings
        if f.empty or "destination_ip" not in f.columns:
            return set()
        ours = set(self._held()) | {f"pod:{ns}/{p}" for ns, p in self._attacker_pods()}
        about = ("pod:" + f["namespace"].astype(str) + "/" + f["pod"].astype(str)).isin(ours)
        hit = f[(f["severity"].isin(["high", "critical"]) | about) & f["destination_ip"].notna()]
        return {str(ip) for ip in hit["destination_ip"]}

    def _webhook_endpoints(self) -> set[str]:
        """The address literals of the URLs an admission webhook the attacker created calls: every
        pod created from then on is sent there (MS-TA9015)."""
        made = self.created()
        ids = made.loc[made["resource"].isin(["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]), "event_id"].tolist()
        if not ids:
            return set()
        rows = self.case.sql("SELECT event_id, request_object FROM audit WHERE event_id IN (SELECT unnest(?))", [ids])
        out: set[str] = set()
        for body in rows["request_object"]:
            obj = self.unreadable.parse(body, where="remediation", event_id="webhook")
            hooks = obj.get("webhooks") if isinstance(obj, dict) else None
            for hook in hooks if isinstance(hooks, list) else []:
                url = hook.get("clientConfig", {}).get("url") if isinstance(hook, dict) and isinstance(hook.get("clientConfig"), dict) else None
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
        return self.case.flows(enrich=True, max_rows=None)

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
        for f in self.case.chunks("flows", rows=self.chunk_rows, enrich=True, columns=FLOW_COLUMNS_READ):
            rows = f[TRAFFIC_COLUMNS].assign(attack=self._attack_mask(f, before).to_numpy())
            parts.append(rows.groupby([*TRAFFIC_COLUMNS, "attack"], dropna=False, sort=False).size().rename("flows").reset_index())
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
        for node, t in self._held().items():
            if not node.startswith("pod:") or pd.isna(t):
                continue
            ns, pod = node[4:].split("/", 1)
            mine = (f["src_namespace"] == ns) & (f["src_pod"] == pod)
            seen = before.setdefault(node, set())
            seen.update(f.loc[mine & (f["time"] < t), "dst_ip"])  # all earlier flows come in this chunk or before
            mask |= mine & (f["time"] >= t) & ~f["dst_ip"].isin(seen)
        return mask.fillna(False).astype(bool)

    @_once
    def _named_events(self) -> set[str]:
        return {str(e) for ids in self.findings["event_ids"] if ids is not None for e in ids}

    @_once
    def _attacker_pods(self) -> set[tuple[str, str]]:
        done = set(self._held())
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
                wl = f"workload:{r.namespace}/{KIND_RESOURCE.get(r.workload_kind, '')}/{r.workload}"
                if wl in made:
                    made.add(f"pod:{r.namespace}/{r.name}")
        return {tuple(n[4:].split("/", 1)) for n in made if n.startswith("pod:")}  # type: ignore[misc]

    # ------------------------------------------------------------------ the generated objects
    @_once
    def network_policies(self) -> list[dict[str, Any]]:
        traffic = self.traffic()
        return network_policies(traffic, self.labels, attack=traffic["attack"], attacker_ips=self.attacker_ips(),
                                nodes=self.case.context("nodes"))

    def quarantine_policies(self) -> list[dict[str, Any]]:
        namespaces = sorted({n[4:].split("/", 1)[0] for n in isolated_pods(self.reached, self.graph, pods=self.case.context("pods"))})
        return [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "k8sforensics-quarantine", "namespace": ns, "labels": {"app.kubernetes.io/managed-by": "k8sforensics"}},
                 "spec": {"podSelector": {"matchLabels": {"k8sforensics.io/quarantine": "true"}}, "policyTypes": ["Ingress", "Egress"]}}
                for ns in namespaces]

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
        held = {n: t for n, t in self._held().items() if n.startswith(("sa:", "user:"))}
        columns = ["resource", "api_group", "namespace", "name", "actor", "event_id", "time"]
        if not held:
            return pd.DataFrame(columns=columns)
        who = pd.DataFrame({"user": [f"system:serviceaccount:{n[3:].replace('/', ':', 1)}" if n.startswith("sa:") else n[5:] for n in held],
                            "node": list(held), "since": pd.to_datetime(list(held.values()), utc=True)})
        con = self.case.connect()
        try:
            con.register("who", who)
            out = con.sql("""
                SELECT a.resource, a.api_group, a.object_namespace AS namespace, a.object_name AS name, w.node AS actor,
                       a.event_id, a.time
                FROM audit a JOIN who w ON a."user" = w."user"
                WHERE a.verb = $verb AND a.subresource IS NULL AND a.object_name IS NOT NULL AND a.resource IS NOT NULL
                  AND NOT list_contains($exclude, a.resource)
                  AND (w.since IS NULL OR a.time >= w.since)
                  AND (a.decision = 'allow' OR (coalesce(a.decision, '') = '' AND coalesce(a.response_code, 200) < 400))
                  AND coalesce(a.response_code, 200) < 400
                ORDER BY a.time, a.event_id""", params={"verb": verb, "exclude": list(exclude)}).df()
        finally:
            con.close()
        return out.reindex(columns=columns)

    def _restores(self) -> list[dict[str, Any]]:
        """Recovery: each object the attacker deleted, restored from where it is defined (Git,
        Helm, a backup) — never from the cluster, which they controlled (NIST SP 800-61: recovery)."""
        made = {(r.resource, r.namespace, r.name) for r in self.created().itertuples(index=False)}
        rows = []
        for r in self.deleted().drop_duplicates(["resource", "namespace", "name"]).itertuples(index=False):
            if (r.resource, r.namespace, r.name) in made:
                continue  # the attacker's own object, removed: nothing to restore
            ns = r.namespace if isinstance(r.namespace, str) and r.namespace else None
            where = f"{ns}/{r.name}" if ns else str(r.name)
            target = f"workload:{ns}/{r.resource}/{r.name}" if ns else f"{r.resource}:{r.name}"
            rows.append({"priority": 2, "phase": "eradicate", "action": f"restore the {r.resource[:-1] if r.resource.endswith('s') else r.resource} "
                         f"{where} the attacker deleted, from its definition (Git, Helm, a backup) — not from the cluster; "
                         f"check what went unlogged or unprotected while it was gone", "target": target, "control": "recovery",
                         "why": f"deleted by {r.actor} at {r.time}", "finding_ids": [], "event_ids": [str(r.event_id)],
                         "references": "NIST SP 800-61 (recovery)", "command": "", "artifact": "", "status": "open"})
        return rows

    def _ended(self) -> dict[str, Any]:
        """pod:ns/name → when it ended, for pods whose last lifetime is closed."""
        lifetimes = self.case.context("pod_ips").sort_values("start", kind="stable").drop_duplicates(["namespace", "pod"], keep="last")
        closed = lifetimes[lifetimes["end"].notna()]
        return {f"pod:{ns}/{pod}": end for ns, pod, end in zip(closed["namespace"], closed["pod"], closed["end"])}

    def _binding_kinds(self) -> dict[str, tuple[str, str | None]]:
        """binding:name → (kind, namespace), from the audit events that created them."""
        ids = [e for _, v, d in self.graph.edges(data=True) if d.get("observed") and d["type"] == "bind_role" for e in d["event_ids"]]
        if not ids:
            return {}
        rows = self.case.sql("SELECT object_name, resource, object_namespace FROM audit WHERE event_id IN (SELECT unnest(?))", [ids])
        kinds = {"clusterrolebindings": "ClusterRoleBinding", "rolebindings": "RoleBinding"}
        return {f"binding:{r.object_name}": (kinds.get(r.resource, "ClusterRoleBinding"), r.object_namespace if isinstance(r.object_namespace, str) else None)
                for r in rows.itertuples(index=False)}

    @_once
    def pod_security(self) -> pd.DataFrame:
        return namespace_levels(self.case.objects(), self.case.context("namespaces"), unreadable=self.unreadable)

    @_once
    def rbac(self) -> tuple[list[dict[str, Any]], pd.DataFrame]:
        """Least-privilege Roles for what identities did outside the attack, and the bindings nothing legitimate used."""
        attack_events = {str(e) for ids in self.findings["event_ids"] if ids is not None for e in ids}
        done = set(self._held())
        for u, _, d in self.graph.edges(data=True):
            if d.get("observed") and u in done and d["type"] != "flow":
                attack_events.update(d["event_ids"])  # what the compromised identities did
        # the audit log a chunk at a time: each chunk's distinct permissions, then distinct over all
        chunks = [used_permissions(a, exclude=attack_events)
                  for a in self.case.chunks("audit", rows=max(1, self.chunk_rows // 5), columns=USED_PERMISSION_COLUMNS)]
        used = pd.concat(chunks, ignore_index=True).drop_duplicates().reset_index(drop=True) if chunks else \
            used_permissions(self.case.audit(columns=USED_PERMISSION_COLUMNS, max_rows=None), exclude=attack_events)
        return least_privilege(used), unused_bindings(self.case.context("rbac"), used)

    def trusted_repositories(self) -> list[str]:
        """Repositories of the images the inventory's pods and workloads run, less those of pods
        the attacker created and of images a finding calls untrusted."""
        made = self._attacker_pods()
        pods = self.case.context("pods")
        images = [i for r in pods.itertuples(index=False) if (r.namespace, r.name) not in made and r.images is not None for i in r.images]
        flagged = " ".join(self.findings["summary"].astype(str))
        return [r for r in image_repositories(images) if r not in flagged and r.rstrip("/") not in flagged]

    def privileged_namespaces(self) -> list[str]:
        levels = self.pod_security()
        return sorted(levels.loc[levels["level"] == "privileged", "namespace"])

    def artifacts(self) -> dict[str, list[dict[str, Any]]]:
        """Every generated object, per artifact file name."""
        repos = self.trusted_repositories()
        exempt = self.privileged_namespaces()
        return {
            ARTIFACTS["quarantine"]: self.quarantine_policies(),
            ARTIFACTS["NetworkPolicy"]: self.network_policies(),
            ARTIFACTS["Pod Security Admission"]: namespace_objects(self.pod_security()),
            ARTIFACTS["RBAC"]: self.rbac()[0],
            ARTIFACTS["admission policy"]: gatekeeper(repos, exempt=exempt),
            ARTIFACTS["kyverno"]: kyverno(repos, exempt=exempt),
        }

    def write(self, out: str | os.PathLike[str] | None = None) -> dict[str, Path]:
        """Write ``artifacts()`` (multi-document YAML, one file per control) and ``actions()``
        (``checklist.csv``) under ``<case>/remediation`` (or ``out``). Returns name → path."""
        import yaml

        folder = Path(out) if out is not None else self.case.path / "remediation"
        folder.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, objects in self.artifacts().items():
            path = folder / name
            path.write_text(yaml.safe_dump_all(objects, sort_keys=False, width=120) if objects else "# nothing to apply\n")
            written[name] = path
        actions = self.actions()
        path = folder / "checklist.csv"
        actions.assign(finding_ids=actions["finding_ids"].map(" ".join), event_ids=actions["event_ids"].map(" ".join)).to_csv(path, index=False)
        written["checklist.csv"] = path
        return written

    def known_good_images(self) -> dict[tuple[str, str], list[str]]:
        """(namespace, "Kind/workload") → the images its pods the attacker did not make run."""
        made = self._attacker_pods()
        images: dict[tuple[str, str], list[str]] = {}
        for r in self.case.context("pods").itertuples(index=False):
            if isinstance(r.workload, str) and (r.namespace, r.name) not in made and r.images is not None:
                seen = images.setdefault((r.namespace, f"{r.workload_kind}/{r.workload}"), [])
                seen += [i for i in r.images if i not in seen]
        return images

    def actions(self) -> pd.DataFrame:
        """The checklist: ``remediation_actions`` plus the bindings nothing legitimate used."""
        images = self.known_good_images()
        out = remediation_actions(self.findings, self.graph, source=self.sources, attacker_ips=self.attacker_ips(), workload_images=images,
                                  bindings=self._binding_kinds(), ended=self._ended(),
                                  artifacts={k: f"remediation/{v}" for k, v in ARTIFACTS.items()}, reached=self.reached,
                                  networks=self.networks, pods=self.case.context("pods"), created=self.created())
        _, unused = self.rbac()
        extra = self._restores()
        extra += [{"priority": 2, "phase": "eradicate", "action": f"remove {r.binding_kind} {r.binding}: {r.reason}", "target": f"binding:{r.binding}",
                  "control": "RBAC", "why": r.reason, "finding_ids": [], "event_ids": [], "references": "CIS 5.1.1; MS-M9003",
                  "command": kubectl("delete", r.binding_kind.lower(), r.binding,
                                     namespace=r.binding_namespace if isinstance(r.binding_namespace, str) else None)
                  if names_ok((r.binding_kind.lower(), r.binding)) else "",
                  "artifact": "", "status": "open"} for r in unused.itertuples(index=False)
                 if f"binding:{r.binding}" not in set(out["target"])]  # the attacker's own bindings are deleted already
        if extra:
            more = pd.DataFrame(extra)
            more.insert(0, "action_id", _ids(more))
            out = pd.concat([out, more], ignore_index=True)
            out = out.drop_duplicates(["action_id"]).sort_values("priority", kind="stable").reset_index(drop=True)
        return out[ACTION_COLUMNS]


def _foothold(findings: pd.DataFrame, *, user: str, ip: object) -> bool:
    """A finding about what ``user`` did from ``ip`` is high or critical or in a foothold
    phase: an identity merely seen from outside (an administrator on the public endpoint) is
    not taken for the attacker."""
    hit = findings[(findings["user"] == user) & (findings["source_ip"] == ip)]
    return bool(len(hit)) and bool((hit["severity"].isin(["high", "critical"])
                                    | hit["kill_chain_phase"].isin(["Delivery", "Exploitation", "Installation", "Command & Control"])).any())


def remediation(case: Case, *, findings: pd.DataFrame | None = None, graph: nx.MultiDiGraph | None = None) -> pd.DataFrame:
    """The remediation checklist of a case: one row per action, contain → eradicate → harden,
    each with its findings, evidence, control, references and command or artifact."""
    return Remediation(case, findings=findings, graph=graph).actions()


def write_remediation(case: Case, *, out: str | os.PathLike[str] | None = None, findings: pd.DataFrame | None = None,
                      graph: nx.MultiDiGraph | None = None) -> dict[str, Path]:
    """Write the generated objects (multi-document YAML, one file per control) and the checklist
    (``checklist.csv``) under ``<case>/remediation`` (or ``out``). Returns name → path."""
    return Remediation(case, findings=findings, graph=graph).write(out)
