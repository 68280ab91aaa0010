"""GCP Cloud Audit Logs for services other than Kubernetes (iamcredentials, sts, iam, storage,
secretmanager, ...): ``LogEntry`` objects with an ``AuditLog`` ``protoPayload`` (Logging sink
JSON lines, ``gcloud logging read --format=json`` arrays; the driver splits arrays).

Entries for the Kubernetes API (``k8s.io``) are the ``gke-audit`` format's (audit table); this
one never claims them. ``AuditLog``: https://cloud.google.com/logging/docs/reference/audit/auditlog/rest/Shared.Types/AuditLog.

Re-exports: Panther writes ``@type`` as ``at_sign_type`` and times as ``2024-08-29 19:30:36.339``
(UTC, no zone) — both read (the driver reads such a time as UTC). A key Google does not write
(``callerIP`` for ``callerIp``) is not guessed at: it stays in ``extra``.
Issued tokens (GenerateAccessToken ``accessToken``, SignJwt ``signedJwt``, ...) never reach a
column (sources._cloud.body).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from . import gke_audit
from ._cloud import body, k8s_user
from ._values import as_list, as_object, text
from .protocol import BadRecord, NotAnEvent
from .redact import redact_text

NAME = "gcp-cloud-audit"
FAMILY = "cloud"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record

_AUDIT_LOG = "google.cloud.audit.AuditLog"
# google.rpc.Code names: https://cloud.google.com/apis/design/errors#handling_errors
_RPC_CODES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
# GKE Workload Identity subjects (https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity):
# the legacy member ``serviceAccount:<project>.svc.id.goog[<ns>/<ksa>]`` and the federation
# principal ``principal://iam.googleapis.com/projects/<n>/locations/global/workloadIdentityPools/
# <project>.svc.id.goog/subject/ns/<ns>/sa/<ksa>``
_GKE_MEMBER = re.compile(
    r"^(?:serviceAccount:)?(?P<pool>[A-Za-z0-9.:-]+\.svc\.id\.goog)\[(?P<ns>[^/\]]+)/(?P<sa>[^\]]+)\]$"
)
_GKE_PRINCIPAL = re.compile(
    r"^principal://iam\.googleapis\.com/(?P<pool>projects/[^/]+/locations/[^/]+/workloadIdentityPools/[^/]+)"
    r"/subject/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)$"
)
# any workload identity federation principal: the pool is the provider that vouched for it
_FEDERATED = re.compile(
    r"^principal(?:Set)?://iam\.googleapis\.com/(?P<pool>projects/[^/]+/locations/[^/]+/workloadIdentityPools/[^/]+)/"
)
# LogEntry and AuditLog fields mapped to a column; the rest goes to ``extra``
_MAPPED_ENTRY = frozenset({"timestamp", "insertId", "protoPayload"})
_MAPPED_PAYLOAD = frozenset({"serviceName", "methodName", "resourceName", "request", "response", "status"})


def _payload_type(pp: dict[str, Any]) -> Any:
    return pp.get("@type", pp.get("at_sign_type"))


def sniff(record: Any) -> bool:
    if not isinstance(record, dict) or gke_audit.sniff(record):
        return False
    pp = record.get("protoPayload")
    if not isinstance(pp, dict):
        return False
    kind = _payload_type(pp)
    if kind is not None:
        return isinstance(kind, str) and kind.endswith(_AUDIT_LOG)
    # no type given (a hand-made excerpt): an AuditLog's own fields
    return isinstance(pp.get("methodName"), str) and ("authenticationInfo" in pp or "serviceName" in pp)


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any] | BadRecord]:
    if not isinstance(record, dict) or not isinstance(record.get("protoPayload"), dict):
        raise BadRecord("LogEntry without a protoPayload")
    if gke_audit.sniff(record):
        raise NotAnEvent("Kubernetes API audit entry: read by gke-audit into the audit table")
    kind = _payload_type(record["protoPayload"])
    if kind is not None and not (isinstance(kind, str) and kind.endswith(_AUDIT_LOG)):
        raise NotAnEvent(f"LogEntry payload of type {text(kind)[:80]}, not an AuditLog")
    try:
        yield entry_row(record)
    except BadRecord as e:
        yield e  # quarantined with its reason as written: the field and the value


def entry_row(entry: dict[str, Any]) -> dict[str, Any]:
    """One Cloud Audit Logs ``LogEntry`` → a ``cloud`` row."""
    pp = entry["protoPayload"]
    auth = as_object(pp.get("authenticationInfo"))
    meta = as_object(pp.get("requestMetadata"))
    labels = as_object(as_object(entry.get("resource")).get("labels"))
    status = as_object(pp.get("status"))
    code = _code(status.get("code"))
    chain = _delegation_chain(auth, as_object(pp.get("metadata")))
    subjects = [
        auth.get("principalSubject"),
        as_object(pp.get("metadata")).get("mapped_principal"),
        *chain,
    ]
    gke = next((m for s in subjects if isinstance(s, str) for m in [_gke_subject(s)] if m), None)
    federated = next(
        (s for s in subjects if isinstance(s, str) and (_FEDERATED.match(s) or _GKE_MEMBER.match(s))), None
    )
    ns, sa = (gke[1], gke[2]) if gke else (None, None)
    resources = [pp.get("resourceName")] + [as_object(a).get("resource") for a in as_list(pp.get("authorizationInfo"))]
    resources = list(dict.fromkeys(r for r in resources if r not in (None, "")))
    method = pp.get("methodName")
    payload_rest = {k: v for k, v in pp.items() if k not in _MAPPED_PAYLOAD}
    rest = {k: v for k, v in entry.items() if k not in _MAPPED_ENTRY} | ({"protoPayload": payload_rest})
    return {
        "time": entry.get("timestamp")
        or as_object(meta.get("requestAttributes")).get("time")
        or entry.get("receiveTimestamp"),
        "namespace": ns,
        "service_account": f"{ns}/{sa}" if ns and sa else None,
        "provider": "gcp",
        "account": labels.get("project_id") or _log_project(entry.get("logName")),
        "region": labels.get("location")
        or labels.get("region")
        or labels.get("zone")
        or next(iter(as_list(as_object(pp.get("resourceLocation")).get("currentLocations"))), None),
        "service": pp.get("serviceName") or as_object(entry.get("operation")).get("producer") or labels.get("service"),
        "action": method,
        "principal": auth.get("principalEmail") or auth.get("principalSubject"),
        "principal_type": _principal_type(auth),
        "principal_id": auth.get("principalSubject"),
        "session_issuer": chain[0] if chain else None,
        "access_key_id": auth.get("serviceAccountKeyName"),
        "delegation_chain": chain or None,
        "web_identity": federated,
        "identity_provider": (gke[0] if gke else None)
        or _pool(federated)
        or (pp.get("resourceName") if isinstance(method, str) and method.endswith(".ExchangeToken") else None),
        "source_ip": meta.get("callerIp"),
        "user_agent": _free_text(meta.get("callerSuppliedUserAgent")),
        "resource": resources[0] if resources else None,
        "resources": resources or None,
        "outcome": "success" if code in (None, 0) else "failure",
        "error_code": None if code in (None, 0) else (_RPC_CODES[code] if 0 <= code < len(_RPC_CODES) else str(code)),
        "error_message": _free_text(status.get("message")),
        "cloud_event_id": entry.get("insertId"),
        "k8s_user": k8s_user(ns, sa),
        "request_parameters": body(pp.get("request")),
        "response_elements": body(pp.get("response")),
        "extra": body(rest),
    }


def _code(v: Any) -> int | None:
    # a google.rpc.Code is an integer (JSON may write it as text); another value would become a
    # made-up outcome
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit() and len(v.strip()) < 12:
        return int(v)
    raise BadRecord(f"field protoPayload.status.code: value {text(v)[:80]} is not a google.rpc.Code")


def _delegation_chain(auth: dict[str, Any], metadata: dict[str, Any]) -> list[str]:
    """Who the call was delegated through, the original caller first: ``serviceAccountDelegationInfo``
    (first- or third-party principal, or principalSubject), then ``metadata.identityDelegationChain``."""
    out: list[str] = []
    for info in as_list(auth.get("serviceAccountDelegationInfo")):
        info = as_object(info)
        first = as_object(info.get("firstPartyPrincipal"))
        third = as_object(info.get("thirdPartyPrincipal"))
        who = (
            first.get("principalEmail")
            or info.get("principalSubject")
            or (text(third.get("thirdPartyClaims")) if third else None)
        )
        if isinstance(who, str) and who:
            out.append(who)
    out.extend(x for x in as_list(metadata.get("identityDelegationChain")) if isinstance(x, str) and x)
    return list(dict.fromkeys(out))


def _gke_subject(subject: str) -> tuple[str, str, str] | None:
    """(pool, namespace, service account) of a GKE Workload Identity subject."""
    m = _GKE_MEMBER.match(subject) or _GKE_PRINCIPAL.match(subject)
    if not m:
        return None
    pool = m.group("pool")
    if m.re is _GKE_PRINCIPAL and not pool.endswith(".svc.id.goog"):
        return None  # a federation pool that is not a GKE cluster's: its subject path is the IdP's
    return pool, m.group("ns"), m.group("sa")


def _pool(subject: str | None) -> str | None:
    m = _FEDERATED.match(subject) if subject else None
    return m.group("pool") if m else None


def _principal_type(auth: dict[str, Any]) -> str | None:
    """serviceAccount, user, group, ... as the principalSubject's prefix says; ``federated``
    for a workload identity federation principal; else from the email's domain."""
    subject = auth.get("principalSubject")
    if isinstance(subject, str):
        if subject.startswith(("principal://", "principalSet://")):
            return "federated"
        kind, sep, _ = subject.partition(":")
        if sep and kind.isalpha():
            return kind
    email = auth.get("principalEmail")
    if isinstance(email, str) and "@" in email:
        return "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    return None


def _log_project(log_name: Any) -> str | None:
    # projects/<project>/logs/cloudaudit.googleapis.com%2Factivity
    if isinstance(log_name, str) and log_name.startswith("projects/"):
        return log_name.split("/")[1] or None
    return None


def _free_text(v: Any) -> Any:
    return redact_text(v) if isinstance(v, str) else v
