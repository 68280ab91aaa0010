"""Cilium Hubble flows: hubble observe -o json and exporter files.

Cilium Hubble flows: ``hubble observe -o json|jsonpb`` and Hubble exporter files, one
``{"flow": {...}, "node_name", "time"}`` per line, or bare flow objects. Endpoint labels
(``k8s:key=value`` strings) become label maps, the verdict is normalised with the original
kept. ``node_status``, ``lost_events`` and ``agent_event`` lines are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._mapping import Column, compile_row, consumed, select_sql
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
_L4_NAMES = {"TCP": "tcp", "UDP": "udp", "ICMPv4": "icmp", "ICMPv6": "icmpv6", "SCTP": "sctp"}
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
    yield flow_row(f, record)


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


# --------------------------------------------------------------------------- the mapping
#
# Each canonical column is declared once, its Python (over the flow ``f``, the ``record`` around
# it and the lets) and its DuckDB expression side by side (sources._mapping): flow_row (the
# per-record path) is compiled from MAPPING, the fast path's SELECT is built from it, and a test
# holds the two equal over generated flows. Values go into the row as the flow has them; the
# driver types them.
#
# Exporter files are JSON lines of {"flow": …}: DuckDB parses them (see k8s_audit's fast path).
# The SQL reads the flow's fields by JSON path, text (``_s``) or JSON (``_j``): one
# json_extract_string and one json_extract call, each with the list of every path the columns
# name (``_text``, ``_json``), parse each flow once. Typed columns (ports, HTTP status,
# is_reply, destination names) also come out as ``_raw_<col>``: where the typed value is null
# but the raw one is not, the driver redoes the row per record.

FAST_COLUMNS = {"flow": "JSON", "node_name": "JSON", "time": "JSON"}

_TEXT_PATHS: list[str] = []
_JSON_PATHS: list[str] = []


def _text(path: str) -> str:
    """SQL: the text at a JSON path of the flow (JSON text for an object or a list)."""
    if path not in _TEXT_PATHS:
        _TEXT_PATHS.append(path)
    return f"_s[{_TEXT_PATHS.index(path) + 1}]"


def _json(path: str) -> str:
    """SQL: the JSON value at a path of the flow (SQL NULL when absent, JSON null when null)."""
    if path not in _JSON_PATHS:
        _JSON_PATHS.append(path)
    return f"_j[{_JSON_PATHS.index(path) + 1}]"


def _truthy(j: str) -> str:
    """SQL: whether a JSON value is true as Python's ``or`` takes it (not null, false, 0, '', [],
    {}), from its text alone: DuckDB writes the JSON it extracts compactly, a zero as 0, -0, 0.0
    or -0.0 whatever its spelling in the file (0e5, 0.00), so no parse is needed."""
    return f"""coalesce({j}::VARCHAR NOT IN ('null', 'false', '""', '[]', '{{}}', '0', '-0', '0.0', '-0.0'), false)"""


def _is_text(j: str) -> str:
    """SQL: whether a JSON value is a string (its compact text starts with a quote)."""
    return f"""starts_with({j}::VARCHAR, '"')"""


def _plain(text: str) -> str:
    """SQL: whether a value's text reads alike whatever JSON type it came from: not an object or
    a list, not a word or zero a string and a non-string both write (``0``, ``false``). A
    Python test on it (truthy, a string) is then a test on the text; a row where it is not is
    redone per record. Real flows never hold such values in these fields."""
    return f"coalesce({text} NOT IN ('false', '0', '-0', '0.0', '-0.0') AND left({text}, 1) NOT IN ('{{', '['), true)"


def _given_text(text: str) -> str:
    """SQL: Python's truth of a plain value (see ``_plain``): not null, not ''."""
    return f"coalesce({text} <> '', false)"


def _or(path: str, outer: str) -> dict[str, Column]:
    """SQL let for Python's ``f.get(key) or record.get(key)`` (a field the record may carry
    around the flow too): ``_<key>``, the text of the value taken, a string (the record's own
    fields are read as JSON; another value is redone per record)."""
    key, flow = path.removeprefix("$."), _text(path)
    return {
        f"_{key}": Column(
            py=None,
            sql=f"CASE WHEN {_given_text(flow)} THEN {flow} ELSE {outer}->>'$' END",
            sure=f"{_plain(flow)} AND ({_given_text(flow)} OR {outer} IS NULL OR {_is_text(outer)})",
        ),
    }


_INT = "(CASE WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,18}}') THEN CAST({v} AS BIGINT) END)"


def _whole(py: str, text: str, consumes: str) -> Column:
    """An integer: as the flow has it (the driver types it); in SQL cast from plain digits only,
    its text as raw (so the driver redoes a value that did not cast)."""
    return Column(py=py, sql=_INT.format(v=text), raw=text, consumes=(consumes,))


def _keep_sql(j: str) -> str:
    """The ``k8s:key=value`` entries of a label list worth keeping (computed once per side, in
    the inner projection: the label lists are the most expensive part of a Hubble flow)."""
    not_pod = " ".join(f"AND NOT starts_with(x, 'k8s:{p}')" for p in _NOT_POD_LABELS)
    return (
        f"CASE WHEN json_type({j}) = 'ARRAY' THEN list_filter(from_json({j}, '[\"VARCHAR\"]'), lambda x: starts_with(x, 'k8s:') "
        f"{not_pod} AND split_part(substr(x, 5), '=', 1) <> '') END"
    )


def _labels_sql(keep: str) -> str:
    entries = f"list_transform({keep}, lambda x: {{'key': split_part(substr(x, 5), '=', 1), 'value': substr(x, 5 + length(split_part(substr(x, 5), '=', 1)) + 1)}})"
    return f"(CASE WHEN len({keep}) > 0 THEN map_from_entries({entries}) END)"


def _endpoint(prefix: str, side: str) -> tuple[dict[str, Column], dict[str, Column]]:
    """The lets and the columns (``src_*`` or ``dst_*``) of one side of a flow: each column's
    Python value is a let, so the flow's own columns (its source's) take it again for nothing."""
    ep, svc, wl, w = f"{prefix}_ep", f"{prefix}_svc", f"{prefix}_wl", f"{prefix}_w"
    name, ns = _text(f"$.{side}_service.name"), _text(f"$.{side}_service.namespace")
    values = {
        # Hubble writes '' for an endpoint without a namespace or pod: that is no value
        "namespace": Column(py=f"_given({ep}.get('namespace'))", sql=f"nullif({_text(f'$.{side}.namespace')}, '')"),
        "pod": Column(py=f"_given({ep}.get('pod_name'))", sql=f"nullif({_text(f'$.{side}.pod_name')}, '')"),
        "workload": Column(py=f"{w}.get('name')", sql=_text(f"$.{side}.workloads[0].name")),
        "workload_kind": Column(py=f"{w}.get('kind')", sql=_text(f"$.{side}.workloads[0].kind")),
        "labels": Column(py=f"pod_labels({ep}.get('labels'))", sql=_labels_sql(f"_{prefix}_keep")),
        "service": Column(
            py=(
                f"(f\"{{text({svc}['namespace'])}}/{{text({svc}['name'])}}\" if {svc}.get('namespace') else {svc}['name']) "
                f"if {svc}.get('name') else None"
            ),
            sql=f"CASE WHEN {_given_text(name)} THEN CASE WHEN {_given_text(ns)} THEN {ns} || '/' || {name} ELSE {name} END END",
            sure=f"{_plain(name)} AND {_plain(ns)}",
        ),
    }
    lets = {
        ep: Column(py=f"as_object(f.get({side!r}))", sql=None),
        svc: Column(py=f"as_object(f.get('{side}_service'))", sql=None),
        wl: Column(py=f"{ep}.get('workloads')", sql=None),
        w: Column(py=f"as_object({wl}[0]) if isinstance({wl}, list) and {wl} else {{}}", sql=None),
        f"_{prefix}_keep": Column(py=None, sql=_keep_sql(_json(f"$.{side}.labels"))),
        **{f"{prefix}_{k}": Column(py=c.py, sql=None) for k, c in values.items()},
    }
    columns = {
        f"{prefix}_{k}": Column(py=f"{prefix}_{k}", sql=c.sql, sure=c.sure, consumes=(side, f"{side}_service"))
        for k, c in values.items()
    }
    return lets, columns


_SRC_LETS, _SRC = _endpoint("src", "source")
_DST_LETS, _DST = _endpoint("dst", "destination")
_L4 = _json("$.l4")
_L7 = {k: _json(f"$.l7.{k}") for k in ("dns", "http", "kafka")}
_REPLY = (
    f"CASE WHEN json_type({_json('$.is_reply')}) = 'OBJECT' THEN coalesce({_json('$.is_reply')}->'$.value', 'false'::JSON) "
    f"WHEN {_json('$.is_reply')} IS NOT NULL THEN {_json('$.is_reply')} ELSE {_json('$.reply')} END"
)

# Values several columns read: locals of flow_row (``py``), the inner projection of the SELECT
# (``sql``); the SQL reads every path in one go (``_s``, ``_j``: filled in below, once every
# column has named its paths).
LETS: dict[str, Column] = {
    "ip": Column(py='as_object(f.get("IP"))', sql=None),
    "l4": Column(py='as_object(f.get("l4"))', sql=None),
    "proto_key": Column(py="next(iter(l4), None)", sql=None),
    "ports": Column(py="as_object(l4.get(proto_key)) if proto_key else {}", sql=None),
    "node": Column(py='f.get("node_name") or record.get("node_name")', sql=None),
    # 'cluster/node' (Cilium cluster mesh)
    "cluster_node": Column(py='node.split("/", 1) if isinstance(node, str) and "/" in node else None', sql=None),
    "l7": Column(py='as_object(f.get("l7"))', sql=None),
    "dns": Column(py='as_object(l7.get("dns"))', sql=None),
    "http": Column(py='as_object(l7.get("http"))', sql=None),
    "verdict": Column(py='f.get("verdict")', sql=None),
    "time": Column(py='f.get("time") or record.get("time")', sql=None),
    **_SRC_LETS,
    **_DST_LETS,
    # the first key of l4 names the protocol, its object holds the ports (an empty key is none)
    "_proto": Column(py=None, sql=f"CASE WHEN json_type({_L4}) = 'OBJECT' THEN nullif(json_keys({_L4})[1], '') END"),
    "_ports": Column(
        py=None,
        sql=(
            f"CASE WHEN json_type({_L4}) = 'OBJECT' AND nullif(json_keys({_L4})[1], '') IS NOT NULL "
            f"THEN json_extract_string(json_extract({_L4}, '$.*')[1], ['$.source_port', '$.destination_port']) END"
        ),
    ),
    **_or("$.node_name", "node_name"),
    **_or("$.time", '"time"'),
}
_NODE_IS_PATH = "contains(_node_name, '/')"

MAPPING: dict[str, Column] = {
    "time": Column(py="time", sql="_time", consumes=("time",)),
    "time_end": Column(py="time", sql="_time", consumes=("time",)),
    # '' is no cluster: the driver gives such a row the file's (as it does a per-record row's)
    "cluster": Column(
        py='(cluster_node[0] if cluster_node else None) or src_ep.get("cluster_name")',
        sql=f"nullif(CASE WHEN {_NODE_IS_PATH} AND split_part(_node_name, '/', 1) <> '' THEN split_part(_node_name, '/', 1) "
        f"ELSE {_text('$.source.cluster_name')} END, '')",
        consumes=("node_name",),
    ),
    "node": Column(
        py="cluster_node[1] if cluster_node else node",
        sql=f"CASE WHEN {_NODE_IS_PATH} THEN substr(_node_name, position('/' IN _node_name) + 1) ELSE _node_name END",
        consumes=("node_name",),
    ),
    "src_ip": Column(py='ip.get("source")', sql=_text("$.IP.source"), consumes=("IP",)),
    "dst_ip": Column(py='ip.get("destination")', sql=_text("$.IP.destination"), consumes=("IP",)),
    "src_port": _whole('ports.get("source_port")', "_ports[1]", "l4"),
    "dst_port": _whole('ports.get("destination_port")', "_ports[2]", "l4"),
    "protocol": Column(
        py="(_L4_NAMES.get(proto_key) or proto_key.lower()) if proto_key else None",
        sql=f"CASE _proto {' '.join(f'WHEN {k!r} THEN {v!r}' for k, v in _L4_NAMES.items())} ELSE nullif(lower(_proto), '') END",
        consumes=("l4",),
    ),
    "verdict": Column(
        py='None if verdict is None or verdict == "" else VERDICTS.get(verdict, "unknown") if isinstance(verdict, str) else "unknown"',
        # another JSON type's text is never a verdict's name: 'unknown' as in Python
        sql=f"CASE {_text('$.verdict')} WHEN '' THEN NULL "
        + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in VERDICTS.items())
        + f" ELSE CASE WHEN {_text('$.verdict')} IS NOT NULL THEN 'unknown' END END",
        consumes=("verdict",),
    ),
    "verdict_raw": Column(py="verdict", sql=_text("$.verdict"), consumes=("verdict",)),
    "drop_reason": Column(
        py='f.get("drop_reason_desc") or (f["drop_reason"] if f.get("drop_reason") else None)',
        sql=f"CASE WHEN {_given_text(_text('$.drop_reason_desc'))} THEN {_text('$.drop_reason_desc')} "
        f"WHEN {_truthy(_json('$.drop_reason'))} THEN {_text('$.drop_reason')} END",
        sure=_plain(_text("$.drop_reason_desc")),
        consumes=("drop_reason_desc", "drop_reason"),
    ),
    "direction": Column(
        py='_direction(f.get("traffic_direction"))',
        sql=f"CASE WHEN {_text('$.traffic_direction')} <> 'TRAFFIC_DIRECTION_UNKNOWN' THEN lower({_text('$.traffic_direction')}) END",
        sure=_plain(_text("$.traffic_direction")),
        consumes=("traffic_direction",),
    ),
    "is_reply": Column(
        py="_reply(f)",
        sql=f"CASE WHEN json_type({_REPLY}) = 'BOOLEAN' THEN ({_REPLY})::BOOLEAN END",
        raw=f"CASE WHEN coalesce(json_type({_REPLY}), 'NULL') <> 'NULL' THEN ({_REPLY})::VARCHAR END",
        consumes=("is_reply", "reply"),
    ),
    "dst_names": Column(
        py='f.get("destination_names")',
        sql=f"CASE WHEN json_type({_json('$.destination_names')}) = 'ARRAY' THEN from_json({_json('$.destination_names')}, '[\"VARCHAR\"]') END",
        raw=f"CASE WHEN coalesce(json_type({_json('$.destination_names')}), 'NULL') <> 'NULL' THEN {_json('$.destination_names')}::VARCHAR END",
        consumes=("destination_names",),
    ),
    "l7_type": Column(
        py='"dns" if dns else "http" if http else ("kafka" if l7.get("kafka") else None)',
        sql=" ".join(
            [
                "CASE",
                *(
                    f"WHEN json_type({_L7[k]}) = 'OBJECT' AND {_L7[k]}::VARCHAR <> '{{}}' THEN '{k}'"
                    for k in ("dns", "http")
                ),
                f"WHEN {_truthy(_L7['kafka'])} THEN 'kafka' END",
            ]
        ),
        consumes=("l7",),
    ),
    "dns_query": Column(py='dns.get("query")', sql=_text("$.l7.dns.query"), consumes=("l7",)),
    "http_method": Column(py='http.get("method")', sql=_text("$.l7.http.method"), consumes=("l7",)),
    "http_url": Column(py='http.get("url")', sql=_text("$.l7.http.url"), consumes=("l7",)),
    "http_status": _whole('http.get("code")', _text("$.l7.http.code"), "l7"),
    **_SRC,
    **_DST,
    # the flow's own pod is its source's
    "namespace": _SRC["src_namespace"],
    "pod": _SRC["src_pod"],
    "workload": _SRC["src_workload"],
    "workload_kind": _SRC["src_workload_kind"],
    "labels": _SRC["src_labels"],
}


def _extra(left_out: frozenset[str]) -> Column:
    """The flow as recorded, less the fields ``left_out``."""
    if not left_out:
        return Column(py="json_text(f)", sql="flow::VARCHAR")
    patch = json_text(dict.fromkeys(sorted(left_out)))  # RFC 7386: a null removes the field
    return Column(
        py=f"json_text({{k: v for k, v in f.items() if k not in {tuple(sorted(left_out))!r}}})",
        sql=f"json_merge_patch(flow, '{patch}')::VARCHAR",
    )


CONSUMED = consumed(MAPPING)
# extra keeps the whole flow, mapped fields too. CONSUMED names whole top-level fields of which
# the columns hold only a part: source/destination keep the security identity, the reserved:*
# and Cilium labels (the pod's service account) and every workload but the first; l4 the TCP
# flags and ICMP type/code; l7 the DNS answers and rcode, the HTTP headers and latency (Cilium
# docs, "Flow" in the Observer API reference). Leaving CONSUMED out would drop those from the
# case. Leaving out only what the columns hold whole (time, verdict, node_name, the services,
# ...) costs more than it saves: json_merge_patch parses the flow again, ~0.6-0.9 s of CPU more
# per 200 k flows than writing it as read; leaving CONSUMED out saved none (5.5 s either way)
# and 40 MiB of peak (benchmarks/shapes.py flows-hubble inputs, 2-core machine).
LEFT_OUT: frozenset[str] = frozenset()
MAPPING["extra"] = _extra(LEFT_OUT)
LETS = {
    "_s": Column(py=None, sql=f"json_extract_string(flow, {_TEXT_PATHS!r})"),
    "_j": Column(py=None, sql=f"json_extract(flow, {_JSON_PATHS!r})"),
    **LETS,
}

# the names the Python expressions use
_NAMES = {
    "as_object": as_object,
    "text": text,
    "json_text": json_text,
    "pod_labels": pod_labels,
    "_given": _given,
    "_direction": _direction,
    "_reply": _reply,
    "VERDICTS": VERDICTS,
    "_L4_NAMES": _L4_NAMES,
}
flow_row = compile_row("flow_row", "f, record", LETS, MAPPING, namespace=_NAMES)
flow_row.__doc__ = """One Hubble flow (and the record around it) → one ``flows`` row, compiled from ``MAPPING``."""


# --------------------------------------------------------------------------- fast path


def _fast_applies(records: Sequence[Any], context: Mapping[str, Any]) -> bool:
    """Only exporter/observe files whose lines are ``{"flow": …}`` take the fast path."""
    return bool(records) and all(isinstance(r, dict) and isinstance(r.get("flow"), dict) for r in records)


def _fast_query(source: str, head: Sequence[Any], context: Mapping[str, Any]) -> str:
    return select_sql(source, LETS, MAPPING, ok=f"json_type(flow) = 'OBJECT' AND {MAPPING['time'].sql} IS NOT NULL")


fast = FastPath(reads="ndjson", columns=FAST_COLUMNS, query=_fast_query, applies=_fast_applies)
