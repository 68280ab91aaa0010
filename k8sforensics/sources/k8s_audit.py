"""kube-apiserver audit events: v1, v1beta1, no kind/apiVersion; log backend, webhook, EKS.

kube-apiserver audit events (``audit.k8s.io/v1``, ``v1beta1``, and events with no
``kind``/``apiVersion``), from the log backend, webhook ``EventList`` bodies, or CloudWatch
(EKS) envelopes — the driver unwraps those.

``MAPPING`` is the one mapping from an audit Event to an ``audit`` row: ``event_row`` (the
per-record path; the GKE and AKS formats turn their records into an Event and call it too)
and the DuckDB fast path are both built from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote_plus

import orjson
import pyarrow as pa

from ._mapping import Column, compile_row, finish_batch, select_sql
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


_COMMAND = re.compile(r"(?:^|&)command=([^&]*)")


def exec_command(request_uri: str | None) -> str | None:
    """The command of an exec/attach request: the ``command`` query parameters, decoded
    (as ``parse_qsl`` would: '+' is a space), joined by spaces."""
    if not request_uri or "?" not in request_uri:
        return None
    query = request_uri.split("?", 1)[1].split("#", 1)[0]
    parts = [unquote_plus(v) for v in _COMMAND.findall(query)]
    return " ".join(parts) if parts else None


def service_account(username: Any) -> tuple[str, str] | None:
    """``system:serviceaccount:<namespace>:<name>`` → ``(namespace, name)``; another user → None."""
    if isinstance(username, str) and username.startswith(SA_PREFIX):
        parts = username[len(SA_PREFIX) :].split(":", 1)
        if len(parts) == 2:
            return parts[0], parts[1]
    return None


def _body(obj: Any) -> str | None:
    # credentials are redacted by the driver's one pass over every batch (sources.redact)
    return None if obj is None else _dumps(obj).decode("utf-8")


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


# --------------------------------------------------------------------------- the mapping
#
# Each canonical column is declared once, its Python (over the event ``ev`` and the lets) and
# its DuckDB expression (over READ and the lets) side by side (sources._mapping): event_row is
# compiled from MAPPING, the fast path's SELECT is built from it, and a test holds the two equal
# over generated events. Values go into the row as the event has them; the driver types them
# against the schema (a list of groups that is not a list, a response code that is not an
# integer: the event is quarantined with the field named). Only what is derived looks at types.
#
# For plain JSON-lines files DuckDB's reader does the parsing in C++ and hands over Arrow
# batches (measured ~10x faster than any per-record Python: benchmarks/bench_ingest.py). The
# SQL reads the list and map fields as JSON and checks their type (``sure``): read as VARCHAR[]
# or MAP, DuckDB would turn a string there into NULL without a word. A row the SQL is not sure
# of (not an audit event, no time, a list or map of another JSON type) is redone per record,
# which quarantines what is bad.

# What the fast path reads of an event (DuckDB's read_ndjson columns); an object is a STRUCT.
READ: dict[str, str | dict[str, str]] = {
    "kind": "VARCHAR",
    "apiVersion": "VARCHAR",
    "auditID": "VARCHAR",
    "stage": "VARCHAR",
    "level": "VARCHAR",
    "verb": "VARCHAR",
    "requestURI": "VARCHAR",
    "userAgent": "VARCHAR",
    "requestReceivedTimestamp": "VARCHAR",
    "stageTimestamp": "VARCHAR",
    "timestamp": "VARCHAR",
    "metadata": {"creationTimestamp": "VARCHAR"},
    "user": {"username": "VARCHAR", "uid": "VARCHAR", "groups": "JSON", "extra": "JSON"},
    "impersonatedUser": {"username": "VARCHAR", "groups": "JSON"},
    "sourceIPs": "JSON",
    "objectRef": {
        "resource": "VARCHAR",
        "subresource": "VARCHAR",
        "namespace": "VARCHAR",
        "name": "VARCHAR",
        "apiGroup": "VARCHAR",
        "apiVersion": "VARCHAR",
    },
    "responseStatus": {"code": "VARCHAR", "reason": "VARCHAR"},
    "annotations": "JSON",
    "requestObject": "JSON",
    "responseObject": "JSON",
}
FAST_COLUMNS = {
    k: t if isinstance(t, str) else f"STRUCT({', '.join(f'{n} {u}' for n, u in t.items())})" for k, t in READ.items()
}


def _field(*path: str) -> Column:
    """A value as the event has it: a top-level field, or a field of an object LETS unpacks."""
    if len(path) == 1:
        return Column(py=f"ev.get({path[0]!r})", sql=f'"{path[0]}"')
    return Column(py=f"{path[0]}.get({path[1]!r})", sql=f'"{path[0]}"."{path[1]}"')


def _json(py: str, sql: str, kind: str, typed: str) -> Column:
    """A JSON value as the event has it; the SQL reads it as ``typed`` and is sure of it only
    when it is of JSON ``kind`` or null (another kind is for the per-record path to judge)."""
    return Column(
        py=py,
        sql=f"CASE WHEN json_type({sql}) = '{kind}' THEN from_json({sql}, '{typed}') END",
        sure=f"coalesce(json_type({sql}), 'NULL') IN ('{kind}', 'NULL')",
    )


def _first_of_extra(key: str) -> Column:
    """The first value of a key of user.extra (map[string][]string)."""
    return Column(py=f"_first(extra, {key!r})", sql=f"extra['{key}'][1]")


def _annotation(key: str) -> Column:
    return Column(py=f"ann.get({key!r}) if isinstance(ann, dict) else None", sql=f"ann['{key}']")


_SA_REST = f'substr("user"."username", {len(SA_PREFIX) + 1})'
_EXTRA = _json('user.get("extra")', '"user"."extra"', "OBJECT", '"MAP(VARCHAR, VARCHAR[])"')

# Values several columns read: locals of event_row, the inner projection of the SELECT (a let
# whose ``sql`` is None unpacks, in Python, an object the SQL reads as a struct).
LETS: dict[str, Column] = {
    "user": Column(py='as_object(ev.get("user"))', sql=None),
    "impersonatedUser": Column(py='as_object(ev.get("impersonatedUser"))', sql=None),
    "objectRef": Column(py='as_object(ev.get("objectRef"))', sql=None),
    "responseStatus": Column(py='as_object(ev.get("responseStatus"))', sql=None),
    "uri": Column(py='ev.get("requestURI")', sql=None),
    "stage": Column(py='ev.get("stage")', sql=None),
    "received": Column(
        py='ev.get("requestReceivedTimestamp") or ev.get("timestamp") or as_object(ev.get("metadata")).get("creationTimestamp")',
        sql='coalesce("requestReceivedTimestamp", "timestamp", "metadata"."creationTimestamp")',
    ),
    # (namespace, name) in Python; in SQL the text after the prefix, when it has a ':'
    "sa": Column(
        py='service_account(user.get("username"))',
        sql=f"""CASE WHEN starts_with("user"."username", '{SA_PREFIX}') AND position(':' IN {_SA_REST}) > 0 THEN {_SA_REST} END""",
    ),
    # map[string][]string: sure only when each key holds a list (or null)
    "extra": Column(
        py=_EXTRA.py,
        sql=_EXTRA.sql,
        sure=(
            """coalesce(json_type("user"."extra"), 'NULL') = 'NULL' OR (json_type("user"."extra") = 'OBJECT'
            AND coalesce(list_bool_and(list_transform(json_extract("user"."extra", '$.*'),
                                                      lambda x: coalesce(json_type(x), 'NULL') IN ('ARRAY', 'NULL'))), true))"""
        ),
    ),
    "ann": _json('ev.get("annotations")', '"annotations"', "OBJECT", '"MAP(VARCHAR, VARCHAR)"'),
    "ips": _json('ev.get("sourceIPs")', '"sourceIPs"', "ARRAY", '["VARCHAR"]'),
}

MAPPING: dict[str, Column] = {
    "time": Column(py='received or ev.get("stageTimestamp")', sql='coalesce(received, "stageTimestamp")'),
    "namespace": _field("objectRef", "namespace"),
    "pod": Column(
        py='objectRef.get("name") if objectRef.get("resource") == "pods" else None',
        sql="""CASE WHEN "objectRef"."resource" = 'pods' THEN "objectRef"."name" END""",
    ),
    "audit_id": _field("auditID"),
    "stage": Column(py="stage", sql='"stage"'),
    "stages": Column(py="None if stage is None else [stage]", sql='CASE WHEN "stage" IS NOT NULL THEN ["stage"] END'),
    "stage_time": Column(py='ev.get("stageTimestamp") or received', sql='coalesce("stageTimestamp", received)'),
    "level": _field("level"),
    "verb": _field("verb"),
    "request_uri": Column(py="uri", sql='"requestURI"'),
    "user": _field("user", "username"),
    "user_uid": _field("user", "uid"),
    "user_groups": _json('user.get("groups")', '"user"."groups"', "ARRAY", '["VARCHAR"]'),
    "user_extra": Column(py="extra", sql="extra"),
    "sa_namespace": Column(py="sa[0] if sa else None", sql="split_part(sa, ':', 1)"),
    "sa_name": Column(py="sa[1] if sa else None", sql="substr(sa, position(':' IN sa) + 1)"),
    # a service account has a namespace
    "service_account": Column(
        py='f"{sa[0]}/{sa[1]}" if sa and sa[0] else None',
        sql="CASE WHEN NOT starts_with(sa, ':') THEN split_part(sa, ':', 1) || '/' || substr(sa, position(':' IN sa) + 1) END",
    ),
    "token_pod": _first_of_extra(EXTRA_POD_NAME),
    "token_pod_uid": _first_of_extra(EXTRA_POD_UID),
    "token_node": _first_of_extra(EXTRA_NODE),
    "credential_id": _first_of_extra(EXTRA_CREDENTIAL),
    "impersonated_user": _field("impersonatedUser", "username"),
    "impersonated_groups": _json(
        'impersonatedUser.get("groups")', '"impersonatedUser"."groups"', "ARRAY", '["VARCHAR"]'
    ),
    "source_ip": Column(py="ips[0] if isinstance(ips, list) and ips else None", sql="ips[1]"),
    "source_ips": Column(py="ips", sql="ips"),
    "user_agent": _field("userAgent"),
    "resource": _field("objectRef", "resource"),
    "subresource": _field("objectRef", "subresource"),
    "object_namespace": _field("objectRef", "namespace"),
    "object_name": _field("objectRef", "name"),
    "api_group": _field("objectRef", "apiGroup"),
    "api_version": _field("objectRef", "apiVersion"),
    # an integer as text (' 403 ') casts; other text is the driver's to judge ('403.0' is 403, 'x' is bad)
    "response_code": Column(
        py='responseStatus.get("code")',
        sql="""CASE WHEN regexp_full_match("responseStatus"."code", '[ \t]*[+-]?[0-9]{1,10}[ \t]*')
            THEN TRY_CAST(trim("responseStatus"."code") AS INTEGER) END""",
        raw='"responseStatus"."code"',
    ),
    "response_reason": _field("responseStatus", "reason"),
    "decision": _annotation(DECISION),
    "authz_reason": _annotation(REASON),
    "annotations": Column(py="ann", sql="ann"),
    # credentials in the bodies are redacted by the driver's one pass over every batch (sources.redact)
    "request_object": Column(py='_body(ev.get("requestObject"))', sql='"requestObject"::VARCHAR'),
    "response_object": Column(py='_body(ev.get("responseObject"))', sql='"responseObject"::VARCHAR'),
    # The command of an exec or attach, or of any request whose URI has one, is decoded in
    # Python on both paths. A URI that is a JSON object or list reads in SQL as its JSON text:
    # not a URI (nor is text that starts like one), redone per record.
    "exec_command": Column(
        py=(
            'exec_command(uri) if isinstance(uri, str) and ("command=" in uri or (isinstance(objectRef.get("subresource"), str) '
            'and objectRef.get("subresource") in SESSION_SUBRESOURCES)) else None'
        ),
        sql=f"""("objectRef"."subresource" IN ({", ".join(f"'{s}'" for s in sorted(SESSION_SUBRESOURCES))})
            OR contains("requestURI", 'command='))""",
        sure="""coalesce(left("requestURI", 1) NOT IN ('{', '['), true)""",
        finish=(exec_command, "request_uri"),
    ),
}

# an audit event names its request
IS_EVENT = Column(py='"verb" in ev or "requestURI" in ev', sql='"verb" IS NOT NULL OR "requestURI" IS NOT NULL')

# the names the Python expressions use
_NAMES = {
    "as_object": as_object,
    "BadRecord": BadRecord,
    "service_account": service_account,
    "exec_command": exec_command,
    "SESSION_SUBRESOURCES": SESSION_SUBRESOURCES,
    "_first": _first,
    "_body": _body,
}
event_row = compile_row(
    "event_row",
    "ev",
    LETS,
    MAPPING,
    namespace=_NAMES,
    prelude=f"""
if not isinstance(ev, dict):
    raise BadRecord("audit event is not a JSON object")
if not ({IS_EVENT.py}):
    raise BadRecord("not an audit event: neither verb nor requestURI")
""",
)
event_row.__doc__ = """One audit Event (a dict) → one ``audit`` row (a dict of canonical columns), compiled from
``MAPPING``; values go into the row as the event has them and the driver types them."""


# --------------------------------------------------------------------------- fast path


def _fast_query(source: str, head: Sequence[Any], context: Mapping[str, Any]) -> str:
    # a row without a time is redone per record, which quarantines it
    return select_sql(source, LETS, MAPPING, ok=f"({IS_EVENT.sql}) AND {MAPPING['time'].sql} IS NOT NULL")


def _fast_finish(batch: pa.RecordBatch) -> pa.RecordBatch:
    return finish_batch(batch, MAPPING)


fast = FastPath(reads="ndjson", columns=FAST_COLUMNS, query=_fast_query, finish=_fast_finish)
