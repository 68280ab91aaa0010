"""AKS API-server audit: diagnostic records kube-audit / kube-audit-admin.

AKS API-server audit: Azure diagnostic records of category ``kube-audit`` or
``kube-audit-admin`` (Event Hub ``{"records": [...]}`` bodies, storage-blob ``PT1H.json``
files, one record per line, or ``AzureDiagnostics`` exports). ``properties.log`` holds the
audit Event as a JSON string (sometimes as an object); it is mapped by
``k8s_audit.event_row``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._json import loads
from ._values import as_object
from .k8s_audit import event_row
from .protocol import BadRecord, NotAnEvent

NAME = "aks-audit"
FAMILY = "audit"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record

AUDIT_CATEGORIES = frozenset({"kube-audit", "kube-audit-admin"})


def _category(record: dict[str, Any]) -> Any:
    return record.get("category", record.get("Category"))


def sniff(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    props = record.get("properties")
    has_log = (isinstance(props, dict) and "log" in props) or "log_s" in record
    return has_log and _category(record) in AUDIT_CATEGORIES


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    category = _category(record)
    if category not in AUDIT_CATEGORIES:
        raise NotAnEvent(f"Azure {category or 'uncategorised'} record, not kube-audit")
    props = as_object(record.get("properties"))
    log = props.get("log", record.get("log_s"))
    if isinstance(log, str):
        try:
            log = loads(log)
        except (ValueError, RecursionError) as e:
            raise BadRecord(f"properties.log is not a JSON audit event ({e})") from e
    if not isinstance(log, dict):
        raise BadRecord("properties.log holds no audit event")
    row = event_row(log)
    if row["time"] is None:
        row["time"] = record.get("time") or record.get("TimeGenerated")
        row["stage_time"] = row["stage_time"] or row["time"]
    cluster = cluster_from_resource_id(record.get("resourceId") or record.get("ResourceId"))
    if cluster:
        row["cluster"] = cluster
    yield row


def cluster_from_resource_id(resource_id: Any) -> str | None:
    """``/SUBSCRIPTIONS/../MANAGEDCLUSTERS/<name>`` → ``<name>`` (Azure names are case-insensitive)."""
    if not isinstance(resource_id, str):
        return None
    parts = resource_id.strip("/").split("/")
    for i, p in enumerate(parts[:-1]):
        if p.lower() == "managedclusters":
            return parts[i + 1].lower()
    return None
