"""Kubernetes context: the inventory (from kubectl dumps and, later, the live API) that
gives events their namespace, workload and labels."""

from __future__ import annotations

from ..sources import OnBadLines, PathsLike, read_family
from .inventory import Inventory, build_context, resolve_workload


def read_inventory(paths: PathsLike, *, cluster: str | None = None, on_bad_lines: OnBadLines = "warn") -> Inventory:
    """Context tables (pods, namespaces, services, endpoints, nodes, service_accounts, rbac,
    network_policies, workloads) from ``kubectl get … -o json`` dumps: Lists of any kinds,
    single objects, objects without kind/apiVersion, JSON lines of objects."""
    objects, _, _ = read_family(paths, "objects", cluster=cluster, on_bad_lines=on_bad_lines)
    return Inventory.from_objects(objects)


__all__ = ["Inventory", "build_context", "read_inventory", "resolve_workload"]
