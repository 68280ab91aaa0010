"""GKE API-server audit: Cloud Audit Logs LogEntry for k8s.io.

GKE API-server audit: Cloud Audit Logs ``LogEntry`` with a ``protoPayload`` for
``k8s.io`` (Logging sink JSON lines, Pub/Sub, or ``gcloud logging read --format=json``
arrays). Each entry is turned into an audit Event and mapped by ``k8s_audit.event_row``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ._values import as_object, text
from .k8s_audit import event_row
from .protocol import BadRecord, NotAnEvent

NAME = "gke-audit"
FAMILY = "audit"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record

_VERSION = re.compile(r"^v\d+((alpha|beta)\d+)?$")
# google.rpc.Code → the HTTP status the API server would have answered
_RPC_TO_HTTP = {
    0: 200,
    1: 499,
    2: 500,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,
    10: 409,
    11: 400,
    12: 501,
    13: 500,
    14: 503,
    15: 500,
    16: 401,
}


def sniff(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    pp = record.get("protoPayload")
    if not isinstance(pp, dict):
        return False
    res = as_object(record.get("resource"))
    return (
        pp.get("serviceName") == "k8s.io"
        or str(pp.get("methodName", "")).startswith("io.k8s.")
        or res.get("type") == "k8s_cluster"
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pp = record.get("protoPayload")
    if not isinstance(pp, dict):
        raise BadRecord("LogEntry without a protoPayload")
    service = pp.get("serviceName")
    method = _name(pp, "methodName")
    if service not in (None, "k8s.io") or (service is None and not method.startswith("io.k8s.")):
        raise NotAnEvent(f"GCP audit entry for {service or method or 'another service'}, not the Kubernetes API")
    row = event_row(to_event(record))
    res = as_object(record.get("resource"))
    labels = as_object(res.get("labels"))
    if labels.get("cluster_name"):
        row["cluster"] = labels["cluster_name"]
    yield row


def to_event(record: dict[str, Any]) -> dict[str, Any]:
    """A Cloud Audit Logs entry for k8s.io → the equivalent audit.k8s.io Event."""
    pp = record["protoPayload"]
    method = _name(pp, "methodName")
    verb = method.rsplit(".", 1)[-1] if method else None
    resource_name = _name(pp, "resourceName")
    ref = _object_ref(resource_name, method)
    auth = as_object(pp.get("authenticationInfo"))
    meta = as_object(pp.get("requestMetadata"))
    op = as_object(record.get("operation"))
    labels = as_object(record.get("labels"))
    ann = dict(labels)
    if "authorization.k8s.io/decision" not in ann:
        infos = pp.get("authorizationInfo")
        if isinstance(infos, list) and infos and isinstance(infos[0], dict) and "granted" in infos[0]:
            ann["authorization.k8s.io/decision"] = "allow" if infos[0]["granted"] else "forbid"
    status = pp.get("status") if isinstance(pp.get("status"), dict) else None
    response = pp.get("response") if isinstance(pp.get("response"), dict) else None
    code = None
    if response and response.get("kind") == "Status" and "code" in response:
        code = response.get("code")
    elif status is not None:
        code = _RPC_TO_HTTP.get(_int(status.get("code", 0)), 500)
    if op.get("first") and not op.get("last"):
        stage = "ResponseStarted"
    else:
        stage = "ResponseComplete"
    time = record.get("timestamp") or pp.get("timestamp") or record.get("receiveTimestamp")
    ev: dict[str, Any] = {
        "auditID": op.get("id") or record.get("insertId"),
        "stage": stage,
        "level": "RequestResponse" if response else ("Request" if pp.get("request") else "Metadata"),
        "verb": verb,
        "requestURI": _request_uri(ref, resource_name),
        "user": {"username": auth.get("principalEmail")} if auth.get("principalEmail") else {},
        "sourceIPs": [meta["callerIp"]] if meta.get("callerIp") else None,
        "userAgent": meta.get("callerSuppliedUserAgent"),
        "objectRef": ref,
        "responseStatus": {"code": code, "reason": (status or {}).get("message")} if code is not None else None,
        "requestObject": pp.get("request"),
        "responseObject": response,
        "annotations": ann or None,
        "requestReceivedTimestamp": time,
        "stageTimestamp": time,
    }
    return {k: v for k, v in ev.items() if v is not None}


def _object_ref(resource_name: str, method: str) -> dict[str, Any] | None:
    parts = [p for p in resource_name.split("/") if p]
    if len(parts) >= 3 and _VERSION.match(parts[1]):
        group, version, rest = parts[0], parts[1], parts[2:]
    else:
        m = method.split(".")
        if len(m) < 5 or m[:2] != ["io", "k8s"]:
            return None
        body = m[2:-1]
        vi = next((i for i, p in enumerate(body) if _VERSION.match(p)), None)
        if vi is None or vi + 1 >= len(body):
            return None
        group, version, rest = ".".join(body[:vi]), body[vi], [body[vi + 1]]
        if len(body) > vi + 2:
            rest = [body[vi + 1], "", body[vi + 2]]
    ref: dict[str, Any] = {"apiGroup": "" if group == "core" else group, "apiVersion": version}
    if len(rest) >= 3 and rest[0] == "namespaces":
        ref["namespace"] = rest[1]
        rest = rest[2:]
    ref["resource"] = rest[0]
    if len(rest) > 1 and rest[1]:
        ref["name"] = rest[1]
    if len(rest) > 2:
        ref["subresource"] = rest[2]
    return ref


def _request_uri(ref: dict[str, Any] | None, resource_name: str) -> str:
    if not ref:
        return "/" + resource_name.lstrip("/")
    base = "/api/" + ref["apiVersion"] if not ref.get("apiGroup") else f"/apis/{ref['apiGroup']}/{ref['apiVersion']}"
    path = [base]
    if ref.get("namespace"):
        path.append(f"namespaces/{ref['namespace']}")
    path.append(ref["resource"])
    if ref.get("name"):
        path.append(ref["name"])
    if ref.get("subresource"):
        path.append(ref["subresource"])
    return "/".join(path)


def _name(pp: dict[str, Any], key: str) -> str:
    # method and resource names are parsed into verb and object: text, or the entry is bad
    v = pp.get(key)
    if v is None or v == "":
        return ""
    if not isinstance(v, str):
        raise BadRecord(f"field protoPayload.{key}: value {text(v)[:80]} is not text")
    return v


def _int(v: Any) -> int:
    # a google.rpc.Code is an integer; another value would become a made-up HTTP status
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit() and len(v.strip()) < 12:
        return int(v)
    raise BadRecord(f"field protoPayload.status.code: value {text(v)[:80]} is not a google.rpc.Code")
