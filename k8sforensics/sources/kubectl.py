"""kubectl get -o json dumps: Lists, single objects, JSON lines.

``kubectl get … -o json`` dumps (and the live-API snapshots ``k8sforensics collect`` writes):
a ``List`` or ``<Kind>List`` of any kinds, single objects, objects without ``kind``/
``apiVersion`` (the kind is inferred from the list kind or the object's shape), or one
object per line. One ``objects`` row per Kubernetes object; ``managedFields`` are dropped
and Secrets keep their metadata only. A bad item of a List is quarantined on its own; the
other items are still rows. Label values that are not text become their JSON text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._values import as_list, as_object, json_text
from .protocol import BadRecord
from .redact import LAST_APPLIED

NAME = "kubectl"
FAMILY = "objects"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record


def sniff(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    kind = str(record.get("kind") or "")
    if kind.endswith("List") and isinstance(record.get("items"), list) and kind != "EventList":
        return True
    md = record.get("metadata")
    return (
        isinstance(md, dict)
        and "name" in md
        and ("uid" in md or "creationTimestamp" in md)
        and ("spec" in record or "status" in record or "data" in record or "subjects" in record or "rules" in record)
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kind = str(record.get("kind") or "")
    if kind.endswith("List") and isinstance(record.get("items"), list):
        item_kind = kind[: -len("List")] if kind != "List" else None
        for item in record["items"]:
            try:
                if not isinstance(item, dict):
                    raise BadRecord("a list item is not an object")
                yield object_row(
                    item, default_kind=item_kind, default_api=record.get("apiVersion") if item_kind else None
                )
            except BadRecord as e:
                yield e  # this item only: the list's other objects are still rows
    else:
        yield object_row(record)


def object_row(
    obj: dict[str, Any], *, default_kind: str | None = None, default_api: str | None = None
) -> dict[str, Any]:
    md = as_object(obj.get("metadata"))
    kind = obj.get("kind") or default_kind or infer_kind(obj)
    if not kind:
        raise BadRecord("the object's kind is neither given nor recognisable from its shape")
    # What identifies an object is text in the Kubernetes API; the inventory keys on it, so an
    # object with a list for a name is bad input, not an object with the name '[]'.
    for field, value in (
        ("kind", kind),
        ("metadata.name", md.get("name")),
        ("metadata.namespace", md.get("namespace")),
        ("metadata.uid", md.get("uid")),
    ):
        if value is not None and not isinstance(value, str):
            raise BadRecord(f"field {field}: value {json_text(value)[:80]} is not text")
    owners = [o for o in as_list(md.get("ownerReferences")) if isinstance(o, dict)]
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else {})
    return {
        "time": md.get("creationTimestamp"),
        "kind": kind,
        "api_version": obj.get("apiVersion") or default_api,
        "namespace": md.get("namespace"),
        "name": md.get("name"),
        "uid": md.get("uid"),
        "labels": md.get("labels"),
        "owner_kind": owner.get("kind"),
        "owner_name": owner.get("name"),
        "owner_uid": owner.get("uid"),
        "deleted": md.get("deletionTimestamp"),
        "object": json_text(clean(obj, kind)),
    }


def clean(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """Drop managedFields (bulky, no evidence value); keep a Secret's metadata only."""
    md = dict(as_object(obj.get("metadata")))
    md.pop("managedFields", None)
    if kind == "Secret":
        ann = md.get("annotations")
        if isinstance(ann, dict) and LAST_APPLIED in ann:
            md["annotations"] = {k: v for k, v in ann.items() if k != LAST_APPLIED}
        return {
            "kind": "Secret",
            "apiVersion": obj.get("apiVersion", "v1"),
            "metadata": md,
            "type": obj.get("type"),
            "data_keys": sorted(as_object(obj.get("data"))) or None,
        }
    return {**obj, "kind": kind, "metadata": md}


def infer_kind(obj: dict[str, Any]) -> str | None:
    """The kind of an object serialised without one (client-go typed objects, OpenShift Insights)."""
    spec, status = as_object(obj.get("spec")), as_object(obj.get("status"))
    if "containers" in spec:
        return "Pod"
    if "nodeInfo" in status or "podCIDR" in spec or "providerID" in spec:
        return "Node"
    if "template" in spec and "selector" in spec:
        return "Deployment" if "strategy" in spec else ("StatefulSet" if "serviceName" in spec else "ReplicaSet")
    if "jobTemplate" in spec:
        return "CronJob"
    if "template" in spec:
        return "Job"
    if "ports" in spec and ("clusterIP" in spec or "type" in spec):
        return "Service"
    if "podSelector" in spec:
        return "NetworkPolicy"
    if "endpoints" in obj and "addressType" in obj:
        return "EndpointSlice"
    if "roleRef" in obj:
        return "RoleBinding" if as_object(obj.get("metadata")).get("namespace") else "ClusterRoleBinding"
    if "rules" in obj:
        return "Role" if as_object(obj.get("metadata")).get("namespace") else "ClusterRole"
    if "finalizers" in spec and set(spec) <= {"finalizers"}:
        return "Namespace"
    return None
