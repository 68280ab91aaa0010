"""GCP VPC Flow Logs with GKE details.

GCP VPC Flow Logs: Cloud Logging ``LogEntry`` with ``jsonPayload.connection`` (sink JSON
lines or ``gcloud logging read`` arrays), and for GKE the ``src_gke_details`` /
``dest_gke_details`` (cluster, pod, workload, service). int64 counters arrive as strings;
every flow can be reported by both ends (``reporter``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._mapping import Column, compile_row, consumed, select_sql
from ._values import as_list, as_object, json_text, text
from .aws_vpc_flow import PROTOCOLS
from .protocol import FastPath

NAME = "gcp-vpc-flow"
FAMILY = "flows"
sniff_lines = None  # a JSON format


def sniff(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    payload = as_object(record.get("jsonPayload"))
    return isinstance(payload.get("connection"), dict) or "compute.googleapis.com%2Fvpc_flows" in str(
        record.get("logName", "")
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    p = as_object(record.get("jsonPayload"))
    yield flow_row(p, record)


def _protocol(proto: Any) -> Any:
    # an IANA number (int or text) by its name; another value goes to the driver as it is
    if isinstance(proto, (str, int)) and not isinstance(proto, bool):
        return PROTOCOLS.get(str(proto), str(proto))
    return proto


def _service(svc: dict[str, Any]) -> str | None:
    # the first Kubernetes Service of the endpoint, 'namespace/name'
    return f"{text(svc.get('service_namespace'))}/{text(svc['service_name'])}" if svc.get("service_name") else None


# --------------------------------------------------------------------------- the mapping
#
# Each canonical column is declared once (sources._mapping), its Python over the payload ``p``,
# the ``record`` around it and the lets, and its DuckDB expression side by side: flow_row (the
# per-record path) is compiled from MAPPING, the fast path's SELECT is built from it, and a test
# holds the two equal over generated records (tests/sources/test_flow_fast_gcp.py). Field names
# and types: GCP docs, "VPC Flow Logs — Record format" (int64 counters as JSON strings, ports and
# protocol as integers, GKE details under src_gke_details / dest_gke_details).
#
# The SQL reads every path of the payload in one json_extract_string (``_s``: text) and one
# json_extract (``_j``: the JSON value, for its type) call. A value the per-record path takes as
# it is (a namespace, a pod) is only sure when it is a string, null or absent: another JSON type
# would be typed by the driver from the Python value, so such a row is redone per record.

FAST_COLUMNS = {"jsonPayload": "JSON", "timestamp": "JSON"}

_PATHS: list[str] = []


def _path(path: str) -> int:
    if path not in _PATHS:
        _PATHS.append(path)
    return _PATHS.index(path) + 1


def _s(path: str) -> str:
    """SQL: the text at a path of the payload (JSON text for an object or a list)."""
    return f"_s[{_path(path)}]"


def _j(path: str) -> str:
    """SQL: the JSON value at a path of the payload (NULL when absent)."""
    return f"_j[{_path(path)}]"


def _text_or_none(path: str) -> str:
    """SQL: whether the value at ``path`` is a string, null or absent: what the driver types the
    same from the Python value and from the SQL text."""
    return f"coalesce(left({_j(path)}::VARCHAR, 1) IN ('\"', 'n'), true)"


def _given(path: str) -> str:
    """SQL: Python's truth of a value that is a string, null or absent (see ``_text_or_none``)."""
    return f"coalesce({_s(path)} <> '', false)"


def _as_is(py: str, path: str, consumes: str | None = None) -> Column:
    """A value to the row as the record has it (a string: its text)."""
    return Column(py=py, sql=_s(path), sure=_text_or_none(path), consumes=(consumes,) if consumes else ())


_INT = "(CASE WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,18}}') THEN CAST({v} AS BIGINT) END)"


def _whole(py: str, path: str, consumes: str) -> Column:
    """An integer (a port, an int64 counter as text): as the record has it, the driver types it;
    in SQL cast from plain digits only, its text as raw (the driver redoes one that did not cast)."""
    return Column(py=py, sql=_INT.format(v=_s(path)), raw=_s(path), consumes=(consumes,))


def _time(*paths: str) -> Column:
    """Python's ``a or b or record['timestamp']`` over times that are text: the first given."""
    py = " or ".join([*(f"p.get({p.removeprefix('$.')!r})" for p in paths), 'record.get("timestamp")'])
    whens = " ".join(f"WHEN {_given(p)} THEN {_s(p)}" for p in paths)
    return Column(
        py=py,
        sql=f"CASE {whens} ELSE \"timestamp\"->>'$' END",
        # the outer timestamp is read as JSON: only a string (or nothing) is taken as text
        sure=" AND ".join(
            [*(_text_or_none(p) for p in paths), '("timestamp" IS NULL OR starts_with("timestamp"::VARCHAR, \'"\'))']
        ),
        consumes=tuple(p.removeprefix("$.") for p in paths),
    )


def _endpoint(prefix: str, key: str) -> tuple[dict[str, Column], dict[str, Column]]:
    """The lets and the ``src_*`` / ``dst_*`` columns of one side's GKE details."""
    g, pod, work, svc = f"{prefix}_g", f"{prefix}_pod", f"{prefix}_work", f"{prefix}_svc"
    name, ns = f"$.{key}.service[0].service_name", f"$.{key}.service[0].service_namespace"
    lets = {
        g: Column(py=f"as_object(p.get({key!r}))", sql=None),
        pod: Column(py=f"as_object({g}.get('pod'))", sql=None),
        work: Column(py=f"as_object({pod}.get('pod_workload'))", sql=None),
        f"{prefix}_services": Column(py=f"as_list({g}.get('service'))", sql=None),
        svc: Column(py=f"as_object({prefix}_services[0]) if {prefix}_services else {{}}", sql=None),
        f"{prefix}_cluster": Column(py=f"as_object({g}.get('cluster')).get('cluster_name')", sql=None),
    }
    columns = {
        f"{prefix}_namespace": _as_is(f"{pod}.get('pod_namespace')", f"$.{key}.pod.pod_namespace"),
        f"{prefix}_pod": _as_is(f"{pod}.get('pod_name')", f"$.{key}.pod.pod_name"),
        f"{prefix}_workload": _as_is(f"{work}.get('workload_name')", f"$.{key}.pod.pod_workload.workload_name"),
        f"{prefix}_workload_kind": _as_is(f"{work}.get('workload_type')", f"$.{key}.pod.pod_workload.workload_type"),
        f"{prefix}_service": Column(
            py=f"_service({svc})",
            # text(None) is 'None' in the per-record path's f-string: a service without namespace
            sql=f"CASE WHEN {_given(name)} THEN coalesce({_s(ns)}, 'None') || '/' || {_s(name)} END",
            sure=f"{_text_or_none(name)} AND {_text_or_none(ns)}",
        ),
    }
    return lets, columns


_SRC_LETS, _SRC = _endpoint("src", "src_gke_details")
_DST_LETS, _DST = _endpoint("dst", "dest_gke_details")
_PROTO = "$.connection.protocol"
_CLUSTER = ("$.src_gke_details.cluster.cluster_name", "$.dest_gke_details.cluster.cluster_name")
# the payload's fields the columns stand for, which extra leaves out
_MAPPED = ("connection", "start_time", "end_time", "bytes_sent", "packets_sent", "reporter")

LETS: dict[str, Column] = {
    "c": Column(py='as_object(p.get("connection"))', sql=None),
    **_SRC_LETS,
    **_DST_LETS,
}

MAPPING: dict[str, Column] = {
    "time": _time("$.start_time"),
    "time_end": _time("$.end_time", "$.start_time"),
    "src_ip": _as_is('c.get("src_ip")', "$.connection.src_ip", "connection"),
    "dst_ip": _as_is('c.get("dest_ip")', "$.connection.dest_ip", "connection"),
    "src_port": _whole('c.get("src_port")', "$.connection.src_port", "connection"),
    "dst_port": _whole('c.get("dest_port")', "$.connection.dest_port", "connection"),
    "protocol": Column(
        py='_protocol(c.get("protocol"))',
        sql=f"CASE {_s(_PROTO)} {' '.join(f'WHEN {k!r} THEN {v!r}' for k, v in PROTOCOLS.items())} ELSE {_s(_PROTO)} END",
        # an integer's text is what str() gives in Python; a string is itself; null or absent none
        sure=f"coalesce(json_type({_j(_PROTO)}) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'NULL'), true)",
        consumes=("connection",),
    ),
    "verdict": Column(
        py='"allowed"', sql="'allowed'"
    ),  # VPC flow logs record delivered traffic; denials are in firewall logs
    "verdict_raw": Column(py="None", sql="NULL::VARCHAR"),
    "direction": Column(
        py='{"SRC": "egress", "DEST": "ingress"}.get(str(p.get("reporter")))',
        sql=f"CASE {_s('$.reporter')} WHEN 'SRC' THEN 'egress' WHEN 'DEST' THEN 'ingress' END",
        consumes=("reporter",),
    ),
    # is_reply stays unknown: a record is the packets of one direction of a 5-tuple
    # ("bytes_sent: from the source to the destination"), a server's answers get their
    # own record with the server as source, and reporter names the VM that logged it,
    # not the one that opened the connection (GCP docs, "About VPC Flow Logs records").
    # The rules judge such flows by their ports (analysis.network.reply_mask).
    "bytes": _whole('p.get("bytes_sent")', "$.bytes_sent", "bytes_sent"),
    "packets": _whole('p.get("packets_sent")', "$.packets_sent", "packets_sent"),
    **_SRC,
    **_DST,
    # the first side with a cluster name gives the row's (else the driver gives the file's)
    "cluster": Column(
        py="src_cluster or dst_cluster or None",
        sql=f"coalesce(nullif({_s(_CLUSTER[0])}, ''), nullif({_s(_CLUSTER[1])}, ''))",
        sure=" AND ".join(_text_or_none(p) for p in _CLUSTER),
    ),
    # the flow's own pod is its source's
    "namespace": _SRC["src_namespace"],
    "pod": _SRC["src_pod"],
    "workload": _SRC["src_workload"],
    "workload_kind": _SRC["src_workload_kind"],
}

# extra: the payload less the fields the columns stand for, as the per-record path writes it
# (compact JSON, keys in the record's order). DuckDB's JSON writer and the per-record path's
# agree on strings without escapes and on integers of up to 18 digits; a row whose payload
# holds a backslash, a fraction or exponent, a negative or a longer number is redone.
_PATCH = json_text(dict.fromkeys(_MAPPED))  # RFC 7386: a null removes the field
_EXTRA_SQL = f"nullif(json_merge_patch(jsonPayload, '{_PATCH}')::VARCHAR, '{{}}')"
MAPPING["extra"] = Column(
    py=f"json_text(rest) if (rest := {{k: v for k, v in p.items() if k not in {_MAPPED!r}}}) else None",
    sql="_extra",
    sure=r"""coalesce(NOT regexp_matches(_extra, '\\|(":|[\[,])(-|[0-9]+[.eE]|[0-9]{19})'), true)""",
)
LETS["_extra"] = Column(py=None, sql=_EXTRA_SQL)
CONSUMED = consumed(MAPPING) | frozenset(_MAPPED)
LETS = {
    "_s": Column(py=None, sql=f"json_extract_string(jsonPayload, {_PATHS!r})"),
    "_j": Column(py=None, sql=f"json_extract(jsonPayload, {_PATHS!r})"),
    **LETS,
}

# the names the Python expressions use
_NAMES = {
    "as_object": as_object,
    "as_list": as_list,
    "json_text": json_text,
    "_protocol": _protocol,
    "_service": _service,
}
flow_row = compile_row("flow_row", "p, record", LETS, MAPPING, namespace=_NAMES)
flow_row.__doc__ = (
    """One GCP flow record's payload (and the LogEntry around it) → one ``flows`` row, from ``MAPPING``."""
)


# --------------------------------------------------------------------------- fast path


def _fast_applies(records: Sequence[Any], context: Mapping[str, Any]) -> bool:
    """Sink files of LogEntries with a connection take the fast path (a line that is not one is
    redone per record: ``_fast_ok``)."""
    return any(
        isinstance(r, dict) and isinstance(as_object(r.get("jsonPayload")).get("connection"), dict) for r in records
    )


def _fast_query(source: str, head: Sequence[Any], context: Mapping[str, Any]) -> str:
    # the per-record path reads a record the format claims (a connection object) as GCP's;
    # another record may be another format's, so it is redone
    ok = f"json_type(jsonPayload) = 'OBJECT' AND json_type(jsonPayload, '$.connection') = 'OBJECT' AND {MAPPING['time'].sql} IS NOT NULL"
    return select_sql(source, LETS, MAPPING, ok=ok)


fast = FastPath(reads="ndjson", columns=FAST_COLUMNS, query=_fast_query, applies=_fast_applies)
