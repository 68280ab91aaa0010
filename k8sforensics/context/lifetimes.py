"""Pod lifetimes: which pod held which IP, and which pod ran which container, when.

Folded from every source the case holds: inventory dumps (alive at dump time), the audit log
(pod creates and deletes, ``pods/status`` patches carrying ``podIP``/``containerStatuses``,
``pods/binding``, evictions, namespace deletion) and Hubble flows (endpoint ↔ IP). Rules:

- the intervals of one IP never overlap: when a pod's IP is taken by a later pod before the
  first is known to be gone (a finished Job not yet deleted, a missing delete), the first
  interval ends where the next begins, and the conflict is reported;
- an interval is ``[start, end)``: at exactly the old pod's end the IP belongs to the new pod;
- a pod still alive has an open end (null);
- host-network pods never claim an IP (they share their node's).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from ..bodies import Body, UnreadableBodies, parse_body
from .inventory import pod_row, resolve_workload  # the same mapping as for dumped pods


@dataclass
class _Pod:
    namespace: str
    name: str
    uid: str | None = None
    node: str | None = None
    created: pd.Timestamp | None = None
    deleted: pd.Timestamp | None = None
    host_network: bool = False
    workload_kind: str | None = None
    workload: str | None = None
    ips: dict[str, pd.Timestamp] = field(default_factory=dict)  # ip → first time known
    containers: dict[str, pd.Timestamp] = field(default_factory=dict)
    evidence: set[str] = field(default_factory=set)

    def see_ip(self, ip: str | None, t: Any, source: str) -> None:
        if ip and (ip not in self.ips or t < self.ips[ip]):
            self.ips[ip] = t
        if ip:
            self.evidence.add(source)

    def see_container(self, cid: str | None, t: Any) -> None:
        if cid and (cid not in self.containers or t < self.containers[cid]):
            self.containers[cid] = t


POD_IPS_COLUMNS = [
    "ip",
    "start",
    "end",
    "namespace",
    "pod",
    "pod_uid",
    "workload_kind",
    "workload",
    "node",
    "evidence",
    "confidence",
]
CONTAINERS_COLUMNS = ["container_id", "namespace", "pod", "pod_uid", "workload_kind", "workload", "node", "first_seen"]


def fold_pods(
    pods: pd.DataFrame | None = None,
    audit: pd.DataFrame | Iterable[pd.DataFrame] | None = None,
    flows: pd.DataFrame | None = None,
    runtime: pd.DataFrame | None = None,
    *,
    unreadable: UnreadableBodies | None = None,
    audit_pods: AuditPods | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(pod_ips, containers, conflicts)`` from the inventory's ``pods`` table and the
    ``audit``, ``flows`` and ``runtime`` tables (each may be None or empty).

    A request body too large, too deep or not JSON (``bodies.parse_body``) is read as empty:
    the request still counts (a create, a delete), its body adds nothing. Such bodies are
    recorded in ``unreadable`` (where ``"pod lifetimes"``) when given, and logged.

    ``audit_pods`` (an ``AuditPods``) is fed the same audit rows, each pod create's body parsed
    once for both: the rebuild reads the audit log's pod requests once instead of twice."""
    found: dict[tuple[str, str], list[_Pod]] = {}
    bodies = UnreadableBodies() if unreadable is None else unreadable
    before = bodies.snapshot()
    pod = _Incarnations(found)

    if pods is not None:
        for r in pods.itertuples():
            p = pod(
                r.namespace,
                r.name,
                uid=r.uid if isinstance(r.uid, str) and r.uid else None,
                t=r.created if pd.notna(r.created) else None,
            )
            p.uid, p.node = p.uid or r.uid, p.node or r.node
            p.created = p.created or r.created
            p.host_network = bool(r.host_network)
            p.workload_kind, p.workload = r.workload_kind, r.workload
            t = r.started if pd.notna(r.started) else r.created
            for ip in list(r.ips) if r.ips is not None else []:
                p.see_ip(ip, t, "inventory")
            for cid in list(r.container_ids) if r.container_ids is not None else []:
                p.see_container(cid, t)
            if pd.notna(r.deleted):
                p.deleted = r.deleted
    for chunk in _chunks(audit):  # a frame, or frames in time order (a big case streams them)
        _fold_audit(chunk, pod, bodies, audit_pods)
        # a bound service-account token names its pod, uid and node (user.extra)
        bound = chunk[chunk.token_pod.notna() & chunk.sa_namespace.notna()]
        first_use = bound.groupby(["sa_namespace", "token_pod", "token_pod_uid", "token_node"], dropna=False)[
            "time"
        ].min()
        for (ns, name, uid, node), t in first_use.items():
            p = pod(ns, name, t=t, uid=uid if isinstance(uid, str) and uid else None)
            p.uid = p.uid or (uid if pd.notna(uid) else None)
            p.node = p.node or (node if pd.notna(node) else None)
    if flows is not None and len(flows):
        for side in ("src", "dst"):
            seen = flows[flows[f"{side}_pod"].notna() & flows[f"{side}_ip"].notna()]
            if len(seen):
                first = seen.groupby([f"{side}_namespace", f"{side}_pod", f"{side}_ip"], dropna=False)["time"].min()
                for (ns, name, ip), t in first.items():
                    pod(ns, name, t=t).see_ip(ip, t, "hubble")
    if runtime is not None and len(runtime):
        seen = runtime[runtime.pod.notna() & runtime.container_id.notna()]
        for (ns, name, cid), t in (
            seen.groupby(["namespace", "pod", "container_id"], dropna=False)["time"].min().items()
        ):
            pod(ns, name, t=t).see_container(cid, t)
        # Tetragon resolves the workload and knows the node
        known = seen[seen.workload.notna()].drop_duplicates(["namespace", "pod"])
        for r in known.itertuples():
            p = pod(r.namespace, r.pod, t=r.time)
            if p.workload is None:
                p.workload_kind, p.workload = r.workload_kind, r.workload
            p.node = p.node or r.node
    pod_ips, conflicts = _intervals(list(pod.all()))
    bodies.warn("pod lifetimes", before)
    return pod_ips, _containers(list(pod.all())), conflicts


class _Incarnations:
    """The pods of one (namespace, name) over time: a StatefulSet's ``db-0`` deleted and created
    again is a new pod (a new uid, often a new IP and node) under the same name. An event goes to
    the incarnation with its uid, else to the one alive at its time; a create whose uid is new,
    or that comes after the known incarnation was deleted, starts another."""

    def __init__(self, found: dict[tuple[str, str], list[_Pod]]) -> None:
        self.found = found

    def __call__(self, ns: Any, name: Any, *, t: Any = None, uid: str | None = None, create: bool = False) -> _Pod:
        key = (str(ns), str(name))
        lives = self.found.setdefault(key, [])
        if uid is not None:
            for p in lives:
                if p.uid == uid:
                    return p
        if t is not None and pd.isna(t):
            t = None
        if create and t is not None:
            # the same pod (uid unknown, or first met without one) created at about this time
            for p in lives:
                if (uid is None or p.uid is None) and _known(p.created) and abs(p.created - t) <= CREATE_SLACK:
                    return p
            alive = [
                p
                for p in lives
                if (uid is None or p.uid is None)
                and not _known(p.deleted)
                and (not _known(p.created) or p.created >= t)
            ]
            if alive:
                return alive[0]
            if lives and uid is None and not any(_known(p.deleted) and p.deleted <= t for p in lives):
                return lives[-1]
        elif lives:
            alive = lives[-1] if create else self.at(lives, t)
            if alive is not None:
                return alive
        p = _Pod(*key)  # first met, or met before every known incarnation was created: an earlier one
        lives.append(p)
        return p

    @staticmethod
    def at(lives: list[_Pod], t: Any) -> _Pod | None:
        """The incarnation alive at ``t``: the latest created at or before it, else one whose
        creation is unknown; None when every known one was created after ``t``."""
        if t is None or pd.isna(t):
            return lives[-1]
        born = [p for p in lives if _known(p.created) and p.created <= t + CREATE_SLACK]
        if born:
            return max(born, key=lambda p: p.created)  # type: ignore[arg-type, return-value]
        return next((p for p in lives if not _known(p.created)), None)

    def all(self) -> Iterator[_Pod]:
        for lives in self.found.values():
            yield from lives


def _known(t: Any) -> bool:
    return t is not None and not pd.isna(t)


CREATE_SLACK = pd.Timedelta(seconds=5)  # clocks of the sources that saw one pod's creation differ by seconds


def _chunks(audit: pd.DataFrame | Iterable[pd.DataFrame] | None) -> Iterator[pd.DataFrame]:
    if audit is None:
        return
    for chunk in [audit] if isinstance(audit, pd.DataFrame) else audit:
        if len(chunk):
            yield chunk


def _fold_audit(
    audit: pd.DataFrame, pod: _Incarnations, bodies: UnreadableBodies, audit_pods: AuditPods | None = None
) -> None:
    ok = audit.response_code.isna() | (audit.response_code < 400)
    rows = audit[ok & audit.resource.isin(["pods", "namespaces"])].sort_values("time", kind="stable")
    columns = ["time", "resource", "verb", "subresource", "object_namespace", "object_name", "request_object"]
    for (t, resource, verb, sub, ns, name, request), event_id in zip(_tuples(rows, columns), _event_ids(rows)):
        if resource == "namespaces":
            if verb == "delete" and name:
                for p in pod.all():
                    if p.namespace == name and p.deleted is None:
                        p.deleted = t
            continue
        sub = sub if isinstance(sub, str) else None
        if not ns or not name:
            if audit_pods is not None and verb in ("create", "delete") and sub is None:
                audit_pods.see(t, ns, name, verb, request, event_id)  # the fold skips it, the pods table not
            continue
        if audit_pods is None or not (verb in ("create", "delete") and sub is None):
            body = _json(request, bodies, "pod lifetimes", event_id or f"{ns}/{name}@{t}")
        else:  # one parse for the fold and the pods table
            parsed = audit_pods.see(t, ns, name, verb, request, event_id)
            if audit_pods.bodies is not bodies:  # other bounds, maybe: parse again under the fold's
                parsed = parse_body(request, max_bytes=bodies.max_bytes, max_depth=bodies.max_depth)
            if parsed.reason is not None:
                bodies.add(parsed.reason, where="pod lifetimes", event_id=event_id or f"{ns}/{name}@{t}")
            body = parsed.value if isinstance(parsed.value, dict) else {}
        if verb == "create" and sub is None:
            md, spec = _dict(body.get("metadata")), _dict(body.get("spec"))
            p = pod(ns, name, t=t, uid=_str(md.get("uid")), create=True)
            p.created = p.created if p.created is not None and p.created < t else t
            p.uid = p.uid or _str(md.get("uid"))
            p.node = p.node or _str(spec.get("nodeName"))
            p.host_network = p.host_network or spec.get("hostNetwork") is True
            owners = [o for o in _list(md.get("ownerReferences")) if isinstance(o, dict)]
            owner = next(((str(o.get("kind")), str(o.get("name"))) for o in owners if o.get("controller")), None)
            if owner and p.workload is None:
                labels = md.get("labels")
                p.workload_kind, p.workload = resolve_workload(
                    None, ns, owner, labels if isinstance(labels, dict) else None, {}
                )
            p.evidence.add("audit")
            continue
        p = pod(ns, name, t=t)
        if sub == "status" and verb in ("patch", "update"):
            status = _dict(body.get("status"))
            ips = [i.get("ip") for i in _list(status.get("podIPs")) if isinstance(i, dict)] or [status.get("podIP")]
            for ip in ips:
                p.see_ip(ip if isinstance(ip, str) else None, t, "audit")
            for cs in _list(status.get("containerStatuses")):
                cid = str(_dict(cs).get("containerID") or "").split("://")[-1].lower()
                p.see_container(cid or None, t)
        elif sub == "binding" and verb == "create":
            node = _dict(body.get("target")).get("name")
            p.node = p.node or (node if isinstance(node, str) else None)
        elif (verb == "delete" and sub is None) or (sub == "eviction" and verb == "create"):
            p.deleted = t if p.deleted is None else min(p.deleted, t)
            p.evidence.add("audit")


def _tuples(frame: pd.DataFrame, columns: list[str]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``frame``'s ``columns`` as plain tuples (missing = None), column by column:
    ``itertuples`` over Arrow-backed columns costs a Python call per cell."""
    lists = []
    for c in columns:
        s = frame[c]
        if s.dtype.kind == "M":
            lists.append(s.tolist())  # Timestamps
        else:
            lists.append(pa.array(s, from_pandas=True).to_pylist())
    return zip(*lists)


def _event_ids(rows: pd.DataFrame) -> Iterable[Any]:
    """The rows' event ids, or None each when the frame has none (the rebuild's queries)."""
    if "event_id" in rows.columns:
        return pa.array(rows["event_id"], from_pandas=True).to_pylist()
    return [None] * len(rows)


def _json(text: Any, bodies: UnreadableBodies, where: str, event_id: Any) -> dict[str, Any]:
    """A request body as a dict; {} when absent, not an object, or unread (too large, too
    deep, not JSON: recorded in ``bodies``)."""
    v = bodies.parse(text, where=where, event_id=event_id)
    return v if isinstance(v, dict) else {}


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _intervals(found: list[_Pod]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for p in found:
        if p.host_network:
            continue  # host-network pods share the node's IP; they never claim it
        for ip, seen in p.ips.items():
            start = min(x for x in (seen, p.created) if x is not None and pd.notna(x))
            if p.created is not None and pd.notna(p.created) and seen > p.created:
                start = seen if "audit" in p.evidence else p.created
            rows.append(
                {
                    "ip": ip,
                    "start": start,
                    "end": p.deleted,
                    "namespace": p.namespace,
                    "pod": p.name,
                    "pod_uid": p.uid,
                    "workload_kind": p.workload_kind,
                    "workload": p.workload,
                    "node": p.node,
                    "evidence": ",".join(sorted(p.evidence)) or None,
                    "confidence": "high" if p.evidence & {"audit", "inventory"} else "medium",
                }
            )
    df = pd.DataFrame(rows, columns=POD_IPS_COLUMNS)
    conflict_columns = ["ip", "pod", "next_pod", "end_was", "end_set"]
    if df.empty:
        return df, pd.DataFrame(columns=conflict_columns)
    df = df.sort_values(["ip", "start", "namespace", "pod"], kind="stable").reset_index(drop=True)
    conflicts = []
    # the columns as lists once: a row read with .iloc costs ~0.1 ms, and a case with flows
    # holds a row per (pod, IP); the values are the ones .iloc gives (Timestamp, NaT or None)
    ips, starts, ends = df["ip"].tolist(), df["start"].tolist(), df["end"].tolist()
    namespaces, names = df["namespace"].tolist(), df["pod"].tolist()
    for i in range(len(df) - 1):
        if ips[i] != ips[i + 1]:
            continue
        end, next_start = ends[i], starts[i + 1]
        if pd.isna(end) or end > next_start:
            conflicts.append(
                {
                    "ip": ips[i],
                    "pod": f"{namespaces[i]}/{names[i]}",
                    "next_pod": f"{namespaces[i + 1]}/{names[i + 1]}",
                    "end_was": end,
                    "end_set": next_start,
                }
            )
            df.at[i, "end"] = next_start  # the later pod holds the IP from its start: no overlap
    return df, pd.DataFrame(conflicts, columns=conflict_columns)


def _containers(found: list[_Pod]) -> pd.DataFrame:
    rows = [
        {
            "container_id": cid,
            "namespace": p.namespace,
            "pod": p.name,
            "pod_uid": p.uid,
            "workload_kind": p.workload_kind,
            "workload": p.workload,
            "node": p.node,
            "first_seen": t,
        }
        for p in found
        for cid, t in p.containers.items()
    ]
    return (
        pd.DataFrame(rows, columns=CONTAINERS_COLUMNS)
        .sort_values(["container_id"], kind="stable")
        .reset_index(drop=True)
    )


def pods_from_all_sources(
    pods: pd.DataFrame,
    audit: pd.DataFrame | Iterable[pd.DataFrame] | None,
    pod_ips: pd.DataFrame,
    cluster: str | None,
    *,
    unreadable: UnreadableBodies | None = None,
    token_accounts: dict[tuple[str, str], str] | None = None,
) -> list[dict[str, Any]]:
    """Rows for the ``pods`` context table that the inventory lacks: pods whose create the
    audit log recorded (spec and security flags from the request), pods known only from
    their lifetimes (tokens, flows, runtime events), and pods known only from their deletion
    (created before the evidence began, gone before the dump); deletion and IPs from the
    lifetimes, else from the delete; the service account from ``token_accounts`` ((namespace,
    pod) → account, what bound tokens' claims name) when nothing else gives it.
    A create whose body is unread (too large, too deep, not JSON) gives the pod's name, namespace
    and creation time only; it is recorded in ``unreadable`` (where ``"pods from audit"``) and logged.

    The same as ``AuditPods`` fed ``audit`` (``fold_pods(..., audit_pods=)`` feeds it while
    folding, in one pass), then ``rows(pod_ips, ...)``."""
    collect = AuditPods(pods, cluster, unreadable=unreadable)
    for chunk in _chunks(audit):
        collect.add(chunk)
    return collect.rows(pod_ips, token_accounts=token_accounts)


class AuditPods:
    """What the audit log gives the ``pods`` table for pods the inventory (``pods``) lacks, fed
    the pod requests in time order — ``add(chunk)``, or ``see`` one request at a time as
    ``fold_pods`` does — then ``rows(pod_ips)``: see ``pods_from_all_sources``. It keeps the
    first delete and the row of the first create of each pod, not the bodies."""

    def __init__(self, pods: pd.DataFrame, cluster: str | None, *, unreadable: UnreadableBodies | None = None) -> None:
        self.cluster = cluster
        self.bodies = UnreadableBodies() if unreadable is None else unreadable
        self.have = set(zip(pods.namespace, pods.name)) if len(pods) else set()
        self.found: dict[tuple[str, str], dict[str, Any]] = {}
        self.deleted: dict[tuple[str, str], Any] = {}
        # recorded in rows(), after the fold's own: the summary lists them as two passes did
        self.unread: list[tuple[str, Any]] = []

    def add(self, chunk: pd.DataFrame) -> None:
        """The pod creates and deletes of ``chunk`` (audit rows in time order)."""
        ok = chunk.response_code.isna() | (chunk.response_code < 400)
        deletes = chunk[ok & (chunk.resource == "pods") & (chunk.verb == "delete") & chunk.subresource.isna()]
        for t, ns, name in _tuples(deletes, ["time", "object_namespace", "object_name"]):
            self.see(t, ns, name, "delete", None, None)
        creates = chunk[
            ok
            & (chunk.resource == "pods")
            & (chunk.verb == "create")
            & chunk.subresource.isna()
            & chunk.request_object.notna()
        ]
        for (t, ns, name, request), event_id in zip(
            _tuples(creates, ["time", "object_namespace", "object_name", "request_object"]), _event_ids(creates)
        ):
            self.see(t, ns, name, "create", request, event_id)

    def see(self, t: Any, ns: Any, name: Any, verb: str, request: Any, event_id: Any) -> Body:
        """One pod create or delete (no subresource, not refused), and its ``request`` body
        parsed (a delete's too) under this collector's bounds, for a caller that reads it as well."""
        parsed = parse_body(request, max_bytes=self.bodies.max_bytes, max_depth=self.bodies.max_depth)
        if verb == "delete":
            if ns and name:
                self.deleted.setdefault((str(ns), str(name)), t)
            return parsed
        if verb != "create" or request is None:
            return parsed
        key = (str(ns), str(name))
        if key in self.have or key in self.found:
            return parsed
        if parsed.reason is not None:
            self.unread.append((parsed.reason, event_id or f"{ns}/{name}@{t}"))
        obj = parsed.value if isinstance(parsed.value, dict) else {}
        md = dict(_dict(obj.get("metadata")))
        md.setdefault("namespace", key[0])
        md.setdefault("name", key[1])
        md.setdefault("creationTimestamp", t.isoformat())
        obj = {**obj, "metadata": md}
        self.found[key] = pod_row(obj, {"cluster": self.cluster, "evidence_id": None}, {})
        return parsed

    def rows(
        self, pod_ips: pd.DataFrame, *, token_accounts: dict[tuple[str, str], str] | None = None
    ) -> list[dict[str, Any]]:
        """The rows, completed from the lifetimes ``pod_ips`` and the bound tokens' accounts."""
        before = self.bodies.snapshot()
        for reason, event_id in self.unread:
            self.bodies.add(reason, where="pods from audit", event_id=event_id)
        self.unread = []
        have, rows, cluster = self.have, self.found, self.cluster
        records = pod_ips.to_dict("records")
        life = {(r["namespace"], r["pod"]): r for r in records}
        ips_of: dict[tuple[str, str], set[str]] = {}
        for x in records:
            ips_of.setdefault((x["namespace"], x["pod"]), set()).add(x["ip"])
        for key, t in self.deleted.items():  # a pod the evidence shows only being deleted still existed
            if key not in have and key not in life and key not in rows:
                rows[key] = {"cluster": cluster, "namespace": key[0], "name": key[1], "created": None, "deleted": t}
        for key, lt in life.items():
            if key in have:
                continue
            row = rows.setdefault(
                key,
                {
                    "cluster": cluster,
                    "namespace": key[0],
                    "name": key[1],
                    "uid": _nn(lt["pod_uid"]),
                    "node": _nn(lt["node"]),
                    "workload_kind": _nn(lt["workload_kind"]),
                    "workload": _nn(lt["workload"]),
                    "created": lt["start"],
                },
            )
            row["ips"] = sorted(ips_of.get(key, ()))
            row["deleted"] = lt["end"] if pd.notna(lt["end"]) else row.get("deleted")
            for col, src in (
                ("uid", "pod_uid"),
                ("node", "node"),
                ("workload_kind", "workload_kind"),
                ("workload", "workload"),
            ):
                if not row.get(col) and pd.notna(lt[src]):
                    row[col] = lt[src]
        for key, row in rows.items():  # the account a bound token of the pod names (user.extra pod-name)
            if not row.get("service_account") and (token_accounts or {}).get(key):
                row["service_account"] = token_accounts[key]  # type: ignore[index]
        self.bodies.warn("pods from audit", before)
        return list(rows.values())


def _nn(v: Any) -> Any:
    return None if v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)) else v
