"""Cilium Hubble flows: hubble observe -o json and exporter files.

Cilium Hubble flows: ``hubble observe -o json|jsonpb`` and Hubble exporter files, one
``{"flow": {...}, "node_name", "time"}`` per line, or bare flow objects. Endpoint labels
(``k8s:key=value`` strings) become label maps, the verdict is normalised with the original
kept. ``node_status``, ``lost_events`` and ``agent_event`` lines are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._values import as_object, json_text, text
from .protocol import BadRecord, FastPath, NotAnEvent

NAME = "hubble"
FAMILY = "flows"
sniff_lines = None  # a JSON format

VERDICTS = {
    "FORWARDED": "allowed",
    "REDIRECTED": "allowed",
    "TRANSLATED": "allowed",
    "TRACED": "allowed",
    "DROPPED": "denied",
    "ERROR": "error",
    "AUDIT": "audit",
}
_L4 = {"TCP": "tcp", "UDP": "udp", "ICMPv4": "icmp", "ICMPv6": "icmpv6", "SCTP": "sctp"}
_OTHER = ("node_status", "lost_events", "agent_event", "debug_event")
# label keys that describe the namespace or Cilium itself, not the pod
_NOT_POD_LABELS = ("io.cilium.k8s.", "io.kubernetes.pod.namespace")


def _flow(record: dict[str, Any]) -> dict[str, Any] | None:
    f = record.get("flow")
    if isinstance(f, dict):
        return f
    if "verdict" in record and ("IP" in record or "l4" in record or "source" in record):
        return record
    return None


def sniff(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    f = _flow(record)
    if f is not None:
        return "time" in f or "time" in record
    return any(k in record for k in _OTHER) and ("node_name" in record or "time" in record)


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    f = _flow(record)
    if f is None:
        kind = next((k for k in _OTHER if k in record), None)
        if kind:
            raise NotAnEvent(f"Hubble {kind}")
        raise BadRecord("no flow in the record")
    ip = as_object(f.get("IP"))
    l4 = as_object(f.get("l4"))
    proto_key = next(iter(l4), None)
    ports = as_object(l4.get(proto_key)) if proto_key else {}
    src, dst = as_object(f.get("source")), as_object(f.get("destination"))
    node = f.get("node_name") or record.get("node_name")
    cluster = None
    if isinstance(node, str) and "/" in node:
        cluster, node = node.split("/", 1)
    l7 = as_object(f.get("l7"))
    dns, http = as_object(l7.get("dns")), as_object(l7.get("http"))
    verdict = f.get("verdict")
    time = f.get("time") or record.get("time")
    row: dict[str, Any] = {
        "time": time,
        "time_end": time,
        "cluster": cluster or src.get("cluster_name"),
        "node": node,
        "src_ip": ip.get("source"),
        "dst_ip": ip.get("destination"),
        "src_port": ports.get("source_port"),
        "dst_port": ports.get("destination_port"),
        "protocol": (_L4.get(proto_key) or proto_key.lower()) if proto_key else None,
        "verdict": None if verdict is None or verdict == "" else VERDICTS.get(verdict, "unknown") if isinstance(verdict, str) else "unknown",
        "verdict_raw": verdict,
        "drop_reason": f.get("drop_reason_desc") or (f["drop_reason"] if f.get("drop_reason") else None),
        "direction": _direction(f.get("traffic_direction")),
        "is_reply": _reply(f),
        "dst_names": f.get("destination_names"),
        "l7_type": "dns" if dns else "http" if http else ("kafka" if l7.get("kafka") else None),
        "dns_query": dns.get("query"),
        "http_method": http.get("method"),
        "http_url": http.get("url"),
        "http_status": http.get("code"),
    }
    for side, ep, svc in (("src", src, f.get("source_service")), ("dst", dst, f.get("destination_service"))):
        workloads = ep.get("workloads") if isinstance(ep.get("workloads"), list) else []
        w = as_object(workloads[0]) if workloads else {}
        s = as_object(svc)
        row[f"{side}_namespace"] = _given(ep.get("namespace"))
        row[f"{side}_pod"] = _given(ep.get("pod_name"))
        row[f"{side}_workload"] = w.get("name")
        row[f"{side}_workload_kind"] = w.get("kind")
        row[f"{side}_labels"] = pod_labels(ep.get("labels"))
        row[f"{side}_service"] = (f"{text(s['namespace'])}/{text(s['name'])}" if s.get("namespace") else s["name"]) if s.get("name") else None
    row["namespace"], row["pod"] = row["src_namespace"], row["src_pod"]
    row["workload"], row["workload_kind"], row["labels"] = row["src_workload"], row["src_workload_kind"], row["src_labels"]
    row["extra"] = json_text(f)  # the flow as recorded: identities, reserved labels, trace points
    yield row


def pod_labels(labels: Any) -> dict[str, str] | None:
    """Hubble endpoint labels (``k8s:app=reviews``, ``reserved:host``, ...) → the pod's labels."""
    if not isinstance(labels, list):
        return None
    out: dict[str, str] = {}
    for item in labels:
        if not isinstance(item, str) or not item.startswith("k8s:"):
            continue
        key, _, value = item[4:].partition("=")
        if key and not key.startswith(_NOT_POD_LABELS):
            out[key] = value
    return out or None


def _reply(f: dict[str, Any]) -> Any:
    # both the old 'reply' and the new wrapped 'is_reply' occur; absent means unknown, not false.
    # Another value goes to the driver, which takes 'true'/'false' text and quarantines the rest.
    v = f.get("is_reply", f.get("reply"))
    if isinstance(v, dict):
        v = v.get("value", False)
    return v


def _given(v: Any) -> Any:
    # Hubble writes '' for an endpoint without a namespace or pod: that is no value
    return None if v == "" else v


def _direction(v: Any) -> Any:
    if v is None or v == "TRAFFIC_DIRECTION_UNKNOWN":
        return None
    return v.lower() if isinstance(v, str) else v


# --------------------------------------------------------------------------- fast path
#
# Exporter files are JSON lines of {"flow": …}: DuckDB parses them (see k8s_audit's fast path
# for the contract). One json_extract call with a list of paths parses each flow once. Typed
# columns (ports, HTTP status, is_reply, destination names) also come out as ``_raw_<col>``:
# where the typed value is null but the raw one is not, the driver redoes the row per record.

FAST_COLUMNS = {"flow": "JSON", "node_name": "VARCHAR", "time": "VARCHAR"}

_S = [  # text fields, by position in the list
    "$.time", "$.verdict", "$.IP.source", "$.IP.destination", "$.drop_reason_desc", "$.drop_reason",
    "$.traffic_direction", "$.node_name", "$.source.namespace", "$.source.pod_name", "$.destination.namespace",
    "$.destination.pod_name", "$.source.cluster_name", "$.l7.dns.query", "$.l7.http.method", "$.l7.http.url",
    "$.source_service.name", "$.source_service.namespace", "$.destination_service.name", "$.destination_service.namespace",
    "$.source.workloads[0].name", "$.source.workloads[0].kind", "$.destination.workloads[0].name", "$.destination.workloads[0].kind",
]
_J = ["$.l4", "$.source.labels", "$.destination.labels", "$.is_reply", "$.reply", "$.destination_names", "$.l7.http.code", "$.l7.dns", "$.l7.http", "$.l7.kafka",
      "$.traffic_direction"]


def _s(path: str) -> str:
    return f"nullif(_s[{_S.index(path) + 1}], '')" if path.endswith(("namespace", "pod_name")) else f"_s[{_S.index(path) + 1}]"


def _j(path: str) -> str:
    return f"_j[{_J.index(path) + 1}]"


def _keep_sql(path: str) -> str:
    """The ``k8s:key=value`` entries of a label list worth keeping (computed once per side, in
    the inner projection: the label lists are the most expensive part of a Hubble flow)."""
    return (
        f"CASE WHEN json_type({_j(path)}) = 'ARRAY' THEN list_filter(from_json({_j(path)}, '[\"VARCHAR\"]'), lambda x: starts_with(x, 'k8s:') "
        "AND NOT starts_with(x, 'k8s:io.cilium.k8s.') AND NOT starts_with(x, 'k8s:io.kubernetes.pod.namespace') "
        "AND split_part(substr(x, 5), '=', 1) <> '') END"
    )


def _labels_sql(keep: str) -> str:
    entries = f"list_transform({keep}, lambda x: {{'key': split_part(substr(x, 5), '=', 1), 'value': substr(x, 5 + length(split_part(substr(x, 5), '=', 1)) + 1)}})"
    return f"(CASE WHEN len({keep}) > 0 THEN map_from_entries({entries}) END)"


_PORT_RAW = "coalesce({l4}->>'$.TCP.{p}', {l4}->>'$.UDP.{p}', {l4}->>'$.SCTP.{p}')"
_INT = "(CASE WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,18}}') THEN CAST({v} AS BIGINT) END)"
# the reply flag as the per-record path reads it: is_reply (its .value when wrapped), else reply
_REPLY = (f"CASE WHEN json_type({_j('$.is_reply')}) = 'OBJECT' THEN coalesce({_j('$.is_reply')}->'$.value', 'false'::JSON) "
          f"WHEN {_j('$.is_reply')} IS NOT NULL THEN {_j('$.is_reply')} ELSE {_j('$.reply')} END")
_NODE = f"coalesce({_s('$.node_name')}, node_name)"

FAST_PREPARE = f"""
    *,
    json_extract_string(flow, {_S!r}) AS _s,
    json_extract(flow, {_J!r}) AS _j,
    {_keep_sql('$.source.labels')} AS _src_keep,
    {_keep_sql('$.destination.labels')} AS _dst_keep
"""


def _endpoint_sql(prefix: str, side: str) -> str:
    """The endpoint columns (``src_*`` or ``dst_*``) of one side of a flow."""
    svc_ns, svc_name = _s(f"$.{side}_service.namespace"), _s(f"$.{side}_service.name")
    return f""" {_s(f'$.{side}.namespace')} AS {prefix}_namespace,
    {_s(f'$.{side}.pod_name')} AS {prefix}_pod,
    {_s(f'$.{side}.workloads[0].name')} AS {prefix}_workload,
    {_s(f'$.{side}.workloads[0].kind')} AS {prefix}_workload_kind,
    {_labels_sql(f'_{prefix}_keep')} AS {prefix}_labels,
    CASE WHEN {svc_name} <> '' THEN CASE WHEN coalesce({svc_ns}, '') = '' THEN {svc_name}
         ELSE {svc_ns} || '/' || {svc_name} END END AS {prefix}_service"""


FAST_SELECT = f"""
    coalesce({_s('$.time')}, "time") AS time,
    coalesce({_s('$.time')}, "time") AS time_end,
    coalesce(CASE WHEN contains({_NODE}, '/') THEN split_part({_NODE}, '/', 1) END, {_s('$.source.cluster_name')}) AS cluster,
    CASE WHEN contains({_NODE}, '/') THEN substr({_NODE}, position('/' IN {_NODE}) + 1) ELSE {_NODE} END AS node,
    {_s('$.IP.source')} AS src_ip,
    {_s('$.IP.destination')} AS dst_ip,
    {_INT.format(v=_PORT_RAW.format(l4=_j('$.l4'), p='source_port'))} AS src_port,
    {_INT.format(v=_PORT_RAW.format(l4=_j('$.l4'), p='destination_port'))} AS dst_port,
    {_PORT_RAW.format(l4=_j('$.l4'), p='source_port')} AS _raw_src_port,
    {_PORT_RAW.format(l4=_j('$.l4'), p='destination_port')} AS _raw_dst_port,
    CASE json_keys({_j('$.l4')})[1] WHEN 'TCP' THEN 'tcp' WHEN 'UDP' THEN 'udp' WHEN 'ICMPv4' THEN 'icmp'
        WHEN 'ICMPv6' THEN 'icmpv6' WHEN 'SCTP' THEN 'sctp' ELSE nullif(lower(json_keys({_j('$.l4')})[1]), '') END AS protocol,
    CASE WHEN {_s('$.verdict')} IS NULL OR {_s('$.verdict')} = '' THEN NULL
         WHEN {_s('$.verdict')} IN ('FORWARDED', 'REDIRECTED', 'TRANSLATED', 'TRACED') THEN 'allowed'
         WHEN {_s('$.verdict')} = 'DROPPED' THEN 'denied' WHEN {_s('$.verdict')} = 'ERROR' THEN 'error'
         WHEN {_s('$.verdict')} = 'AUDIT' THEN 'audit' ELSE 'unknown' END AS verdict,
    {_s('$.verdict')} AS verdict_raw,
    coalesce(nullif({_s('$.drop_reason_desc')}, ''), CASE WHEN {_s('$.drop_reason')} NOT IN ('0', '') THEN {_s('$.drop_reason')} END) AS drop_reason,
    CASE WHEN json_type({_j('$.traffic_direction')}) <> 'VARCHAR' THEN {_s('$.traffic_direction')}
         WHEN {_s('$.traffic_direction')} <> 'TRAFFIC_DIRECTION_UNKNOWN' THEN lower({_s('$.traffic_direction')}) END AS direction,
    CASE WHEN json_type({_REPLY}) = 'BOOLEAN' THEN ({_REPLY})::BOOLEAN END AS is_reply,
    CASE WHEN coalesce(json_type({_REPLY}), 'NULL') <> 'NULL' THEN ({_REPLY})::VARCHAR END AS _raw_is_reply,
    CASE WHEN json_type({_j('$.destination_names')}) = 'ARRAY' THEN from_json({_j('$.destination_names')}, '["VARCHAR"]') END AS dst_names,
    CASE WHEN coalesce(json_type({_j('$.destination_names')}), 'NULL') <> 'NULL' THEN {_j('$.destination_names')}::VARCHAR END AS _raw_dst_names,
    CASE WHEN json_type({_j('$.l7.dns')}) = 'OBJECT' AND {_j('$.l7.dns')}::VARCHAR <> '{{}}' THEN 'dns'
         WHEN json_type({_j('$.l7.http')}) = 'OBJECT' AND {_j('$.l7.http')}::VARCHAR <> '{{}}' THEN 'http'
         WHEN json_type({_j('$.l7.kafka')}) = 'OBJECT' AND {_j('$.l7.kafka')}::VARCHAR <> '{{}}' THEN 'kafka' END AS l7_type,
    {_s('$.l7.dns.query')} AS dns_query,
    {_s('$.l7.http.method')} AS http_method,
    {_s('$.l7.http.url')} AS http_url,
    {_INT.format(v=f"({_j('$.l7.http.code')}->>'$')")} AS http_status,
    CASE WHEN coalesce(json_type({_j('$.l7.http.code')}), 'NULL') <> 'NULL' THEN {_j('$.l7.http.code')}::VARCHAR END AS _raw_http_status,
    {_endpoint_sql('src', 'source')},
    {_endpoint_sql('dst', 'destination')},
    {_s('$.source.namespace')} AS namespace,
    {_s('$.source.pod_name')} AS pod,
    {_s('$.source.workloads[0].name')} AS workload,
    {_s('$.source.workloads[0].kind')} AS workload_kind,
    src_labels AS labels,
    flow::VARCHAR AS extra,
    json_type(flow) = 'OBJECT' AND coalesce({_s('$.time')}, "time") IS NOT NULL AS _fast_ok
"""


def _fast_applies(records: Sequence[Any], context: Mapping[str, Any]) -> bool:
    """Only exporter/observe files whose lines are ``{"flow": …}`` take the fast path."""
    return bool(records) and all(isinstance(r, dict) and isinstance(r.get("flow"), dict) for r in records)


def _fast_query(source: str, head: Sequence[Any], context: Mapping[str, Any]) -> str:
    return f"SELECT {FAST_SELECT} FROM (SELECT {FAST_PREPARE} FROM {source})"


fast = FastPath(reads="ndjson", columns=FAST_COLUMNS, query=_fast_query, applies=_fast_applies)
