"""kube-apiserver audit events: v1, v1beta1, no kind/apiVersion; log backend, webhook, EKS.

kube-apiserver audit events (``audit.k8s.io/v1``, ``v1beta1``, and events with no
``kind``/``apiVersion``), from the log backend, webhook ``EventList`` bodies, or CloudWatch
(EKS) envelopes — the driver unwraps those.

``event_row`` is the one mapping from an audit Event to an ``audit`` row; the GKE and AKS
formats turn their records into an Event and call it too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote_plus

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ._values import as_object
from .protocol import BadRecord, FastPath

NAME = "k8s-audit"
FAMILY = "audit"
sniff_lines = None  # a JSON format

SA_PREFIX = "system:serviceaccount:"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE = "authentication.kubernetes.io/node-name"
EXTRA_CREDENTIAL = "authentication.kubernetes.io/credential-id"
DECISION = "authorization.k8s.io/decision"
REASON = "authorization.k8s.io/reason"
SESSION_SUBRESOURCES = frozenset({"exec", "attach"})


def sniff(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and "protoPayload" not in record
        and "properties" not in record
        and (
            ("auditID" in record and ("verb" in record or "requestURI" in record or "stage" in record))
            or (str(record.get("apiVersion", "")).startswith("audit.k8s.io/") and record.get("kind") == "Event")
        )
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield event_row(record)


def event_row(ev: dict[str, Any]) -> dict[str, Any]:
    """One audit Event (a dict) → one ``audit`` row (a dict of canonical columns).

    Values go into the row as the event has them; the driver types them against the schema
    (a list of groups that is not a list, a response code that is not an integer: the event
    is quarantined with the field named). Only what is derived here looks at types."""
    if not isinstance(ev, dict):
        raise BadRecord("audit event is not a JSON object")
    if "verb" not in ev and "requestURI" not in ev:
        raise BadRecord("not an audit event: neither verb nor requestURI")
    user = as_object(ev.get("user"))
    extra = user.get("extra")
    username = user.get("username")
    sa_ns = sa_name = None
    if isinstance(username, str) and username.startswith(SA_PREFIX):
        parts = username[len(SA_PREFIX) :].split(":", 1)
        if len(parts) == 2:
            sa_ns, sa_name = parts
    imp = as_object(ev.get("impersonatedUser"))
    ref = as_object(ev.get("objectRef"))
    resource, subresource = ref.get("resource"), ref.get("subresource")
    res_s = resource if isinstance(resource, str) else None
    sub_s = subresource if isinstance(subresource, str) else None
    status = as_object(ev.get("responseStatus"))
    ann = ev.get("annotations")
    ips = ev.get("sourceIPs")
    uri = ev.get("requestURI")
    uri_s = uri if isinstance(uri, str) else None
    namespace = ref.get("namespace")
    name = ref.get("name")
    received = ev.get("requestReceivedTimestamp") or ev.get("timestamp") or as_object(ev.get("metadata")).get("creationTimestamp")
    stage = ev.get("stage")
    return {
        "time": received or ev.get("stageTimestamp"),
        "namespace": namespace,
        "pod": name if resource == "pods" else None,
        "audit_id": ev.get("auditID"),
        "stage": stage,
        "stages": None if stage is None else [stage],
        "stage_time": ev.get("stageTimestamp") or received,
        "level": ev.get("level"),
        "verb": ev.get("verb"),
        "request_uri": uri,
        "user": username,
        "user_uid": user.get("uid"),
        "user_groups": user.get("groups"),
        "user_extra": extra,
        "sa_namespace": sa_ns,
        "sa_name": sa_name,
        "service_account": f"{sa_ns}/{sa_name}" if sa_ns else None,
        "token_pod": _first(extra, EXTRA_POD_NAME),
        "token_pod_uid": _first(extra, EXTRA_POD_UID),
        "token_node": _first(extra, EXTRA_NODE),
        "credential_id": _first(extra, EXTRA_CREDENTIAL),
        "impersonated_user": imp.get("username"),
        "impersonated_groups": imp.get("groups"),
        "source_ip": ips[0] if isinstance(ips, list) and ips else None,
        "source_ips": ips,
        "user_agent": ev.get("userAgent"),
        "resource": resource,
        "subresource": subresource,
        "object_namespace": namespace,
        "object_name": name,
        "api_group": ref.get("apiGroup"),
        "api_version": ref.get("apiVersion"),
        "response_code": status.get("code"),
        "response_reason": status.get("reason"),
        "decision": ann.get(DECISION) if isinstance(ann, dict) else None,
        "authz_reason": ann.get(REASON) if isinstance(ann, dict) else None,
        "annotations": ann,
        "request_object": _body(ev.get("requestObject"), res_s, sub_s),
        "response_object": _body(ev.get("responseObject"), res_s, sub_s),
        "exec_command": exec_command(uri_s) if sub_s in SESSION_SUBRESOURCES or (uri_s and "command=" in uri_s) else None,
    }


_COMMAND = re.compile(r"(?:^|&)command=([^&]*)")


def exec_command(request_uri: str | None) -> str | None:
    """The command of an exec/attach request: the ``command`` query parameters, decoded
    (as ``parse_qsl`` would: '+' is a space), joined by spaces."""
    if not request_uri or "?" not in request_uri:
        return None
    query = request_uri.split("?", 1)[1].split("#", 1)[0]
    parts = [unquote_plus(v) for v in _COMMAND.findall(query)]
    return " ".join(parts) if parts else None


def _body(obj: Any, resource: str | None, subresource: str | None) -> str | None:
    if obj is None:
        return None
    # credentials are redacted by the driver's one pass over every batch (sources.redact)
    return _dumps(obj).decode("utf-8")


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        # orjson stops at 255 levels; the stdlib goes as deep as the interpreter allows
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _first(extra: Any, key: str) -> Any:
    # map[string][]string: the first value of a key (a value that is not a list is quarantined
    # by the driver, with user_extra named)
    values = extra.get(key) if isinstance(extra, dict) else None
    return values[0] if isinstance(values, list) and values else None


# --------------------------------------------------------------------------- fast path
#
# For plain JSON-lines files DuckDB's reader does the parsing in C++ and hands over Arrow
# batches (measured ~10x faster than any per-record Python: benchmarks/bench_ingest.py).
# FAST_COLUMNS / FAST_SELECT mirror ``event_row`` exactly; the remaining per-row work
# (time parsing, exec command decoding, redaction) runs on those batches in Python, on the
# few rows that need it, through the same functions as above. A test holds the two paths to
# identical output. Lines the fast path cannot map (not JSON, no time, not an audit event, a
# list or map field of another JSON type) come out with ``_fast_ok = false`` and are redone
# by the per-record path, which quarantines what is bad. The list and map fields are read as
# JSON and checked for their type: read as VARCHAR[] or MAP, DuckDB would turn a string there
# into NULL without a word. ``_raw_response_code`` lets the driver redo a row whose code text
# did not cast (the per-record path decides whether '403.0' is 403 or 'x' is bad).

FAST_COLUMNS = {
    "kind": "VARCHAR", "apiVersion": "VARCHAR", "auditID": "VARCHAR", "stage": "VARCHAR", "level": "VARCHAR",
    "verb": "VARCHAR", "requestURI": "VARCHAR", "userAgent": "VARCHAR",
    "requestReceivedTimestamp": "VARCHAR", "stageTimestamp": "VARCHAR", "timestamp": "VARCHAR",
    "metadata": "STRUCT(creationTimestamp VARCHAR)",
    "user": "STRUCT(username VARCHAR, uid VARCHAR, groups JSON, extra JSON)",
    "impersonatedUser": "STRUCT(username VARCHAR, groups JSON)",
    "sourceIPs": "JSON",
    "objectRef": "STRUCT(resource VARCHAR, subresource VARCHAR, namespace VARCHAR, name VARCHAR, apiGroup VARCHAR, apiVersion VARCHAR)",
    "responseStatus": "STRUCT(code VARCHAR, reason VARCHAR)",
    "annotations": "JSON",
    "requestObject": "JSON",
    "responseObject": "JSON",
}


# Inner projection: every JSON sub-value the mapping needs, decoded once.
FAST_PREPARE = f"""
    *,
    coalesce(requestReceivedTimestamp, "timestamp", metadata.creationTimestamp) AS _received,
    CASE WHEN starts_with(user.username, '{SA_PREFIX}') THEN substr(user.username, {len(SA_PREFIX) + 1}) END AS _sa,
    CASE WHEN json_type(user.extra) = 'OBJECT' THEN from_json(user.extra, '"MAP(VARCHAR, VARCHAR[])"') END AS _extra,
    CASE WHEN json_type(annotations) = 'OBJECT' THEN from_json(annotations, '"MAP(VARCHAR, VARCHAR)"') END AS _ann,
    CASE WHEN json_type(sourceIPs) = 'ARRAY' THEN from_json(sourceIPs, '["VARCHAR"]') END AS _ips,
    CASE WHEN json_type(user.groups) = 'ARRAY' THEN from_json(user.groups, '["VARCHAR"]') END AS _groups,
    CASE WHEN json_type(impersonatedUser.groups) = 'ARRAY' THEN from_json(impersonatedUser.groups, '["VARCHAR"]') END AS _imp_groups,
    coalesce(json_type(sourceIPs), 'NULL') IN ('ARRAY', 'NULL')
      AND coalesce(json_type(annotations), 'NULL') IN ('OBJECT', 'NULL')
      AND coalesce(json_type(user.groups), 'NULL') IN ('ARRAY', 'NULL')
      AND coalesce(json_type(impersonatedUser.groups), 'NULL') IN ('ARRAY', 'NULL')
      AND (coalesce(json_type(user.extra), 'NULL') = 'NULL' OR (json_type(user.extra) = 'OBJECT'
           AND coalesce(list_bool_and(list_transform(json_extract(user.extra, '$.*'), lambda x: coalesce(json_type(x), 'NULL') IN ('ARRAY', 'NULL'))), true)))
      AS _shapes_ok
"""

FAST_SELECT = f"""
    coalesce(_received, stageTimestamp) AS time,
    objectRef.namespace AS namespace,
    CASE WHEN objectRef.resource = 'pods' THEN objectRef.name END AS pod,
    auditID AS audit_id,
    stage,
    CASE WHEN stage IS NOT NULL THEN [stage] END AS stages,
    coalesce(stageTimestamp, _received) AS stage_time,
    level, verb, requestURI AS request_uri,
    user.username AS "user", user.uid AS user_uid,
    _groups AS user_groups,
    _extra AS user_extra,
    CASE WHEN position(':' IN _sa) > 0 THEN split_part(_sa, ':', 1) END AS sa_namespace,
    CASE WHEN position(':' IN _sa) > 0 THEN substr(_sa, position(':' IN _sa) + 1) END AS sa_name,
    CASE WHEN position(':' IN _sa) > 0 THEN split_part(_sa, ':', 1) || '/' || substr(_sa, position(':' IN _sa) + 1) END AS service_account,
    _extra['{EXTRA_POD_NAME}'][1] AS token_pod,
    _extra['{EXTRA_POD_UID}'][1] AS token_pod_uid,
    _extra['{EXTRA_NODE}'][1] AS token_node,
    _extra['{EXTRA_CREDENTIAL}'][1] AS credential_id,
    impersonatedUser.username AS impersonated_user,
    _imp_groups AS impersonated_groups,
    _ips[1] AS source_ip,
    _ips AS source_ips,
    userAgent AS user_agent,
    objectRef.resource AS resource, objectRef.subresource AS subresource,
    objectRef.namespace AS object_namespace, objectRef.name AS object_name,
    objectRef.apiGroup AS api_group, objectRef.apiVersion AS api_version,
    CASE WHEN regexp_full_match(responseStatus.code, '[ \t]*[+-]?[0-9]{{1,10}}[ \t]*') THEN TRY_CAST(trim(responseStatus.code) AS INTEGER) END AS response_code,
    responseStatus.code AS _raw_response_code,
    responseStatus.reason AS response_reason,
    _ann['{DECISION}'] AS decision,
    _ann['{REASON}'] AS authz_reason,
    _ann AS annotations,
    requestObject::VARCHAR AS request_object,
    responseObject::VARCHAR AS response_object,
    NULL::VARCHAR AS exec_command,
    objectRef.subresource IN ('exec', 'attach') OR contains(requestURI, 'command=') AS _needs_command,
    (verb IS NOT NULL OR requestURI IS NOT NULL) AND coalesce(_received, stageTimestamp) IS NOT NULL AND _shapes_ok AS _fast_ok
"""


def _fast_finish(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The per-row work the SQL leaves to Python, done only on the rows the SQL flagged."""
    need = pc.fill_null(batch.column("_needs_command"), False)
    if pc.any(need).as_py():
        idx = pc.indices_nonzero(need)
        cmds = [exec_command(u) for u in batch.column("request_uri").take(idx).to_pylist()]
        batch = _replace(batch, "exec_command", need, pa.array(cmds, pa.string()))
    # credentials in the bodies are redacted by the driver's one pass over every batch
    return batch


def _replace(batch: pa.RecordBatch, name: str, mask: pa.Array, values: pa.Array) -> pa.RecordBatch:
    i = batch.schema.get_field_index(name)
    col = batch.column(i)
    if col.type != pa.string():
        col = col.cast(pa.string())
    return batch.set_column(i, batch.schema.field(i).with_type(pa.string()), pc.replace_with_mask(col, mask, values))


def _fast_query(source: str, head: Sequence[Any], context: Mapping[str, Any]) -> str:
    return f"SELECT {FAST_SELECT} FROM (SELECT {FAST_PREPARE} FROM {source})"


fast = FastPath(reads="ndjson", columns=FAST_COLUMNS, query=_fast_query, finish=_fast_finish)
