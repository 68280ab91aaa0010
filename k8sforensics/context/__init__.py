"""Kubernetes context: the inventory (from kubectl dumps and, later, the live API) that
gives events their namespace, workload and labels."""

from __future__ import annotations

from typing import Any

from ..sources import OnBadLines, PathsLike, read_family
from .attribution import attribute_container, attribute_frame, attribute_ip
from .cloud import attribute_cloud
from .collect import collect_inventory
from .inventory import Inventory, build_context, resolve_workload
from .lifetimes import fold_pods


def read_inventory(paths: PathsLike, *, cluster: str | None = None, on_bad_lines: OnBadLines = "warn") -> Inventory:
    """Context tables (pods, namespaces, services, endpoints, nodes, service_accounts, rbac,
    network_policies, workloads) from ``kubectl get … -o json`` dumps: Lists of any kinds,
    single objects, objects without kind/apiVersion, JSON lines of objects."""
    objects, _, _ = read_family(paths, "objects", cluster=cluster, on_bad_lines=on_bad_lines)
    return Inventory.from_objects(objects)


def attribute(
    source: Any,
    *,
    ip: str | None = None,
    time: Any = None,
    container_id: str | None = None,
    key: str | None = None,
) -> dict[str, Any] | None:
    """Which pod an IP belonged to at a time, which pod ran a container (12- or 64-hex id), or
    which pod or node a cloud session was issued to and used from (``key``: an access key id or
    an instance session ``i-…``; ``source`` a Case with the cloud table; see ``attribute_cloud``).

    ``source`` is a ``Case`` (its pod lifetimes, folded from every source) or an ``Inventory``
    (what the dump alone shows). Returns the pod's record (``kind``, namespace, pod, pod_uid,
    workload_kind, workload, node), ``{"kind": "node", ...}`` for a node's address, or None."""
    if key is not None:
        return attribute_cloud(source, key, at=time)
    if hasattr(source, "context"):
        pod_ips, containers, nodes = source.context("pod_ips"), source.context("containers"), source.context("nodes")
    else:
        pod_ips, containers, _ = fold_pods(source.pods)
        nodes = source.nodes
    if container_id is not None:
        return attribute_container(containers, container_id)
    if ip is None or time is None:
        raise ValueError("give ip= and time=, or container_id=")
    return attribute_ip(pod_ips, nodes, ip, time)


__all__ = [
    "Inventory",
    "attribute",
    "attribute_frame",
    "build_context",
    "collect_inventory",
    "fold_pods",
    "read_inventory",
    "resolve_workload",
]
