"""The inventory: context tables (pods, namespaces, services, endpoints, nodes, service
accounts, RBAC, network policies, workloads, cloud bindings) built from Kubernetes objects.

Workloads are resolved through owner references (Pod → ReplicaSet → Deployment,
Pod → Job → CronJob); where the owner object is not in the dump, from the naming
conventions (``<deployment>-<pod-template-hash>``, ``<cronjob>-<scheduled minute>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from ..bodies import NOT_OBJECT, UnreadableBodies
from ..frames import to_frame
from ..schema import CONTEXT_TABLES, OBJECTS, Table
from ..sources._arrow import rows_to_batch
from ..sources._k8s import container_id
from ..sources._values import as_object
from .cloud import binding_rows

_CRONJOB_JOB = re.compile(r"^(?P<cronjob>.+)-\d{8,10}$")  # jobs a CronJob creates: <name>-<minutes since epoch>


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


@dataclass
class Inventory:
    """Context tables as DataFrames; ``inventory.pods``, ``inventory.table("rbac")``."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame:
        if name not in CONTEXT_TABLES:
            raise KeyError(f"no context table {name!r}; tables: {', '.join(CONTEXT_TABLES)}")
        return self.tables[name]

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name in CONTEXT_TABLES and name in self.__dict__.get("tables", {}):
            return self.tables[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.tables.items())
        return f"Inventory({sizes})"

    @classmethod
    def from_objects(cls, objects: pa.Table | pd.DataFrame, *, unreadable: UnreadableBodies | None = None) -> Inventory:
        """Build every context table from an ``objects`` table (see ``build_context``)."""
        return cls({name: to_frame(t) for name, t in build_context(objects, unreadable=unreadable).items()})


#: the kinds the context tables are built from; other objects are not parsed
CONTEXT_KINDS = frozenset(
    {
        "Pod",
        "Namespace",
        "Service",
        "EndpointSlice",
        "Endpoints",
        "Node",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "NetworkPolicy",
        "Deployment",
        "ReplicaSet",
        "DaemonSet",
        "StatefulSet",
        "Job",
        "CronJob",
        "ReplicationController",
    }
)


def build_context(
    objects: pa.Table | pd.DataFrame, *, unreadable: UnreadableBodies | None = None
) -> dict[str, pa.Table]:
    """``objects`` rows → one Arrow table per context table (exact schemas).

    An object whose JSON is too large, too deep or not JSON (``bodies.parse_body``), or not a
    JSON object, is left out; it is recorded in ``unreadable`` (where ``"inventory"``, the event
    id ``<evidence_id>:<evidence_line>``) when given, and logged."""
    columns = ["cluster", "kind", "object", "evidence_id"] + [c for c in ("evidence_line",) if c in _names(objects)]
    if isinstance(objects, pa.Table):
        records = objects.select(columns).to_pylist()
    else:
        records = objects[columns].to_dict("records")
    bodies = UnreadableBodies() if unreadable is None else unreadable
    before = bodies.snapshot()
    by_kind: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    seen: set[tuple[Any, ...]] = set()
    for r in records:
        if r["kind"] not in CONTEXT_KINDS:
            continue
        ref = f"{r['evidence_id']}:{r.get('evidence_line')}" if r.get("evidence_id") else None
        obj = bodies.parse(r["object"], where="inventory", event_id=ref)
        if not isinstance(obj, dict):
            if obj is not None:  # JSON, but not an object
                bodies.add(NOT_OBJECT, where="inventory", event_id=ref)
            continue
        md = as_object(obj.get("metadata"))
        key = (r["cluster"], r["kind"], md.get("namespace"), md.get("name"), md.get("uid"))
        if key in seen:  # the same object in several dumps: the first one read
            continue
        seen.add(key)
        by_kind.setdefault(r["kind"], []).append((obj, r))
    owners = _owner_index(by_kind)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTEXT_TABLES}  # pod_ips/containers: lifetimes.py
    for obj, r in by_kind.get("Pod", []):
        rows["pods"].append(pod_row(obj, r, owners))
    for obj, r in by_kind.get("Namespace", []):
        md = as_object(obj.get("metadata"))
        rows["namespaces"].append(
            {
                "cluster": r["cluster"],
                "name": md.get("name"),
                "uid": md.get("uid"),
                "created": md.get("creationTimestamp"),
                "phase": as_object(obj.get("status")).get("phase"),
                "labels": md.get("labels"),
            }
        )
    for obj, r in by_kind.get("Service", []):
        rows["services"].append(_service(obj, r))
    for obj, r in by_kind.get("EndpointSlice", []):
        rows["endpoints"].extend(_endpoint_slice(obj, r))
    for obj, r in by_kind.get("Endpoints", []):
        rows["endpoints"].extend(_endpoints(obj, r))
    for obj, r in by_kind.get("Node", []):
        rows["nodes"].append(_node(obj, r))
    for obj, r in by_kind.get("ServiceAccount", []):
        md = as_object(obj.get("metadata"))
        rows["service_accounts"].append(
            {
                "cluster": r["cluster"],
                "namespace": md.get("namespace"),
                "name": md.get("name"),
                "uid": md.get("uid"),
                "automount_token": obj.get("automountServiceAccountToken"),
                "secrets": [str(as_object(s).get("name")) for s in _list(obj.get("secrets"))] or None,
                "created": md.get("creationTimestamp"),
            }
        )
    rows["rbac"] = _rbac(by_kind)
    rows["cloud_bindings"] = binding_rows(by_kind)  # annotations and providerIDs: context/cloud.py
    for obj, r in by_kind.get("NetworkPolicy", []):
        md, spec = as_object(obj.get("metadata")), as_object(obj.get("spec"))
        rows["network_policies"].append(
            {
                "cluster": r["cluster"],
                "namespace": md.get("namespace"),
                "name": md.get("name"),
                "pod_selector": orjson.dumps(spec.get("podSelector", {})).decode(),
                "policy_types": spec.get("policyTypes"),
                "ingress": orjson.dumps(spec["ingress"]).decode() if "ingress" in spec else None,
                "egress": orjson.dumps(spec["egress"]).decode() if "egress" in spec else None,
            }
        )
    for kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "CronJob", "ReplicationController"):
        for obj, r in by_kind.get(kind, []):
            rows["workloads"].append(_workload(kind, obj, r))
    bodies.warn("inventory", before)
    return {
        name: _table(CONTEXT_TABLES[name], rows[name])
        for name in CONTEXT_TABLES
        if name not in ("pod_ips", "containers")
    }


def _names(objects: pa.Table | pd.DataFrame) -> list[str]:
    return list(objects.schema.names) if isinstance(objects, pa.Table) else list(objects.columns)


def _table(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
    if not rows:
        return table.arrow_schema.empty_table()
    return pa.Table.from_batches([rows_to_batch(rows, table)])


# --------------------------------------------------------------------------- owners


def _owner_index(
    by_kind: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]],
) -> dict[tuple[Any, ...], tuple[str, str]]:
    """(cluster, namespace, kind, name) → its controlling owner's (kind, name)."""
    index: dict[tuple[Any, ...], tuple[str, str]] = {}
    for kind in ("ReplicaSet", "Job", "ReplicationController", "StatefulSet", "DaemonSet", "Deployment"):
        for obj, r in by_kind.get(kind, []):
            md = as_object(obj.get("metadata"))
            owner = _controller(md)
            if owner:
                index[(r["cluster"], md.get("namespace"), kind, md.get("name"))] = owner
    return index


def _controller(md: dict[str, Any]) -> tuple[str, str] | None:
    refs = [o for o in _list(md.get("ownerReferences")) if isinstance(o, dict)]
    ref = next((o for o in refs if o.get("controller")), refs[0] if refs else None)
    return (str(ref.get("kind")), str(ref.get("name"))) if ref else None


def resolve_workload(
    cluster: Any,
    namespace: Any,
    owner: tuple[str, str] | None,
    labels: dict[str, str] | None,
    owners: dict[tuple[Any, ...], tuple[str, str]],
) -> tuple[str | None, str | None]:
    """Walk the owner chain to the top workload; fall back on naming conventions."""
    if owner is None:
        return None, None
    kind, name = owner
    for _ in range(5):  # owner chains are short; the bound guards against cycles in bad dumps
        nxt = owners.get((cluster, namespace, kind, name))
        if nxt is None:
            break
        kind, name = nxt
    if kind == "ReplicaSet":
        # no ReplicaSet object: the pod-template-hash naming gives the Deployment
        h = (labels or {}).get("pod-template-hash")
        h = str(h) if isinstance(h, (str, int)) and not isinstance(h, bool) else None  # a number in a hand-made dump
        if h and name.endswith("-" + h):
            return "Deployment", name[: -len(h) - 1]
    if kind == "Job":
        m = _CRONJOB_JOB.match(name)
        if m:
            return "CronJob", m.group("cronjob")
    return kind, name


# --------------------------------------------------------------------------- kinds


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in _list(spec.get(key))
        if isinstance(c, dict)
    ]


def pod_row(obj: dict[str, Any], r: dict[str, Any], owners: dict[tuple[Any, ...], tuple[str, str]]) -> dict[str, Any]:
    """The ``pods`` context row of a Pod object (``owners``: the owner chain → workload)."""
    md, spec, status = as_object(obj.get("metadata")), as_object(obj.get("spec")), as_object(obj.get("status"))
    containers = _containers(spec)
    owner = _controller(md)
    labels = md.get("labels") if isinstance(md.get("labels"), dict) else None
    wk, wn = resolve_workload(r["cluster"], md.get("namespace"), owner, labels, owners)
    ips = [str(as_object(p).get("ip")) for p in _list(status.get("podIPs")) if as_object(p).get("ip")] or (
        [status["podIP"]] if status.get("podIP") else None
    )
    statuses = [
        s
        for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses")
        for s in _list(status.get(key))
    ]
    ids = [cid for s in statuses if (cid := container_id(as_object(s).get("containerID")))]
    caps = sorted(
        {
            str(c)
            for ctr in containers
            for c in _list(as_object(as_object(ctr.get("securityContext")).get("capabilities")).get("add"))
        }
    )
    return {
        "cluster": r["cluster"],
        "namespace": md.get("namespace"),
        "name": md.get("name"),
        "uid": md.get("uid"),
        "node": spec.get("nodeName"),
        "ips": ips,
        "host_ip": status.get("hostIP"),
        "phase": status.get("phase"),
        "created": md.get("creationTimestamp"),
        "started": status.get("startTime"),
        "deleted": md.get("deletionTimestamp"),
        "labels": labels,
        "owner_kind": owner[0] if owner else None,
        "owner_name": owner[1] if owner else None,
        "workload_kind": wk,
        "workload": wn,
        # admission sets "default" when a spec names none; a pod with no spec stays unknown
        "service_account": spec.get("serviceAccountName")
        or spec.get("serviceAccount")
        or ("default" if containers else None),
        "automount_token": spec.get("automountServiceAccountToken"),
        "containers": [str(c.get("name")) for c in containers] or None,
        "images": [str(c.get("image")) for c in containers if c.get("image")] or None,
        "container_ids": ids or None,
        "privileged": any(as_object(c.get("securityContext")).get("privileged") is True for c in containers),
        "host_network": bool(spec.get("hostNetwork")),
        "host_pid": bool(spec.get("hostPID")),
        "host_ipc": bool(spec.get("hostIPC")),
        "host_paths": [
            str(as_object(v.get("hostPath")).get("path"))
            for v in _list(spec.get("volumes"))
            if isinstance(v, dict) and "hostPath" in v
        ]
        or None,
        "capabilities_added": caps or None,
        "evidence_id": r["evidence_id"],
    }


def _service(obj: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    md, spec, status = as_object(obj.get("metadata")), as_object(obj.get("spec")), as_object(obj.get("status"))
    lb = [
        str(as_object(i).get("ip"))
        for i in _list(as_object(status.get("loadBalancer")).get("ingress"))
        if as_object(i).get("ip")
    ]
    ext = [str(x) for x in _list(spec.get("externalIPs"))] + lb
    cips = [str(x) for x in _list(spec.get("clusterIPs"))] or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return {
        "cluster": r["cluster"],
        "namespace": md.get("namespace"),
        "name": md.get("name"),
        "uid": md.get("uid"),
        "type": spec.get("type", "ClusterIP"),
        "cluster_ips": cips or None,
        "external_ips": ext or None,
        "ports": orjson.dumps(spec.get("ports", [])).decode(),
        "selector": {str(k): str(v) for k, v in spec["selector"].items()}
        if isinstance(spec.get("selector"), dict)
        else None,
        "created": md.get("creationTimestamp"),
    }


def _endpoint_slice(obj: dict[str, Any], r: dict[str, Any]) -> Iterable[dict[str, Any]]:
    md = as_object(obj.get("metadata"))
    service = as_object(md.get("labels")).get("kubernetes.io/service-name")
    ports = orjson.dumps(obj.get("ports") or []).decode()
    for ep in _list(obj.get("endpoints")):
        ep = as_object(ep)
        ref = as_object(ep.get("targetRef"))
        for addr in _list(ep.get("addresses")):
            yield {
                "cluster": r["cluster"],
                "namespace": md.get("namespace"),
                "service": service,
                "address": str(addr),
                "ready": as_object(ep.get("conditions")).get("ready"),
                "node": ep.get("nodeName"),
                "target_kind": ref.get("kind"),
                "target_name": ref.get("name"),
                "target_uid": ref.get("uid"),
                "ports": ports,
            }


def _endpoints(obj: dict[str, Any], r: dict[str, Any]) -> Iterable[dict[str, Any]]:
    md = as_object(obj.get("metadata"))
    for subset in _list(obj.get("subsets")):
        subset = as_object(subset)
        ports = orjson.dumps(subset.get("ports") or []).decode()
        for ready, key in ((True, "addresses"), (False, "notReadyAddresses")):
            for a in _list(subset.get(key)):
                a, ref = as_object(a), as_object(as_object(a).get("targetRef"))
                yield {
                    "cluster": r["cluster"],
                    "namespace": md.get("namespace"),
                    "service": md.get("name"),
                    "address": a.get("ip"),
                    "ready": ready,
                    "node": a.get("nodeName"),
                    "target_kind": ref.get("kind"),
                    "target_name": ref.get("name"),
                    "target_uid": ref.get("uid"),
                    "ports": ports,
                }


def _node(obj: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    md, spec, status = as_object(obj.get("metadata")), as_object(obj.get("spec")), as_object(obj.get("status"))
    addrs = [as_object(a) for a in _list(status.get("addresses"))]
    info = as_object(status.get("nodeInfo"))
    return {
        "cluster": r["cluster"],
        "name": md.get("name"),
        "uid": md.get("uid"),
        # an address entry without an address (a damaged dump) adds nothing
        "internal_ips": [str(a["address"]) for a in addrs if a.get("type") == "InternalIP" and a.get("address")]
        or None,
        "external_ips": [str(a["address"]) for a in addrs if a.get("type") == "ExternalIP" and a.get("address")]
        or None,
        "pod_cidrs": [str(c) for c in _list(spec.get("podCIDRs"))]
        or ([spec["podCIDR"]] if spec.get("podCIDR") else None),
        "provider_id": spec.get("providerID"),
        "kubelet_version": info.get("kubeletVersion"),
        "os_image": info.get("osImage"),
        "container_runtime": info.get("containerRuntimeVersion"),
        "labels": md.get("labels"),
        "created": md.get("creationTimestamp"),
    }


def _rbac(by_kind: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]) -> list[dict[str, Any]]:
    roles: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for kind in ("Role", "ClusterRole"):
        for obj, r in by_kind.get(kind, []):
            md = as_object(obj.get("metadata"))
            roles[(r["cluster"], kind, md.get("namespace") if kind == "Role" else None, md.get("name"))] = [
                as_object(x) for x in _list(obj.get("rules"))
            ]
    out = []
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for obj, r in by_kind.get(kind, []):
            md, ref = as_object(obj.get("metadata")), as_object(obj.get("roleRef"))
            ns = md.get("namespace") if kind == "RoleBinding" else None
            role_kind = ref.get("kind")
            rules = roles.get((r["cluster"], role_kind, ns if role_kind == "Role" else None, ref.get("name")))
            for subj in _list(obj.get("subjects")) or [{}]:
                subj = as_object(subj)
                for rule in rules if rules else [{}]:
                    out.append(
                        {
                            "cluster": r["cluster"],
                            "binding_kind": kind,
                            "binding_namespace": ns,
                            "binding": md.get("name"),
                            "subject_kind": subj.get("kind"),
                            "subject_namespace": subj.get("namespace"),
                            "subject": subj.get("name"),
                            "role_kind": role_kind,
                            "role": ref.get("name"),
                            "role_found": rules is not None,
                            "api_groups": rule.get("apiGroups"),
                            "resources": rule.get("resources"),
                            "verbs": rule.get("verbs"),
                            "resource_names": rule.get("resourceNames"),
                            "non_resource_urls": rule.get("nonResourceURLs"),
                        }
                    )
    return out


def _workload(kind: str, obj: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    md, spec = as_object(obj.get("metadata")), as_object(obj.get("spec"))
    template = as_object(spec.get("template"))
    if kind == "CronJob":
        template = as_object(as_object(as_object(spec.get("jobTemplate")).get("spec")).get("template"))
    tspec = as_object(template.get("spec"))
    containers = _containers(tspec)
    owner = _controller(md)
    return {
        "cluster": r["cluster"],
        "kind": kind,
        "namespace": md.get("namespace"),
        "name": md.get("name"),
        "uid": md.get("uid"),
        "owner_kind": owner[0] if owner else None,
        "owner_name": owner[1] if owner else None,
        "replicas": spec.get("replicas") if isinstance(spec.get("replicas"), int) else None,
        "service_account": tspec.get("serviceAccountName")
        or tspec.get("serviceAccount")
        or ("default" if tspec.get("containers") else None),
        "images": [str(c.get("image")) for c in containers if c.get("image")] or None,
        "privileged": any(as_object(c.get("securityContext")).get("privileged") is True for c in containers),
        "labels": md.get("labels"),
        "created": md.get("creationTimestamp"),
    }


__all__ = ["OBJECTS", "Inventory", "build_context", "resolve_workload"]
