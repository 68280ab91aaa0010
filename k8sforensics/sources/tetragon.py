"""Tetragon JSON export: exec, exit, kprobe, tracepoint, lsm events.

Tetragon JSON export (``tetra getevents -o json``, the export file): one event per
line, one ``process_*`` key per event (exec, exit, kprobe, tracepoint, uprobe, lsm, and the
legacy connect/close/listen). Pod, labels, workload and container id come from
``process.pod``; kprobe socket and file arguments fill the network and file columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._k8s import container_id
from ._mapping import Column, select_sql
from ._values import as_list, as_object, json_text, text
from .protocol import BadRecord, FastPath, NotAnEvent

NAME = "tetragon"
FAMILY = "runtime"
sniff_lines = None  # a JSON format

_TYPES = {
    "process_exec": "exec",
    "process_exit": "exit",
    "process_kprobe": "syscall",
    "process_tracepoint": "syscall",
    "process_uprobe": "syscall",
    "process_lsm": "lsm",
    "process_loader": "exec",
    "process_connect": "network",
    "process_close": "network",
    "process_listen": "network",
}
_NOT_EVENTS = ("rate_limit_info", "process_throttle")
_LEGACY = ("process_connect", "process_close", "process_listen")
# the event's fields the columns stand for (the rest is extra)
_MAPPED = (
    "process",
    "parent",
    "policy_name",
    "source_ip",
    "source_port",
    "destination_ip",
    "destination_port",
    "protocol",
)
_PROTOCOLS = {"IPPROTO_TCP": "tcp", "IPPROTO_UDP": "udp", "IPPROTO_ICMP": "icmp", "IPPROTO_ICMPV6": "icmpv6"}


def _event_key(record: dict[str, Any]) -> str | None:
    for key, value in record.items():
        if key.startswith("process_") and isinstance(value, dict):
            return key
    return None


def sniff(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and (_event_key(record) is not None or any(k in record for k in _NOT_EVENTS))
        and ("time" in record or "node_name" in record or _event_key(record) is not None)
        and "flow" not in record
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    key = _event_key(record)
    if key is None:
        if any(k in record for k in _NOT_EVENTS):
            raise NotAnEvent("Tetragon rate-limit/throttle notice")
        raise BadRecord("no process_* event in the record")
    ev = record[key]
    proc, parent = as_object(ev.get("process")), as_object(ev.get("parent"))
    pod = as_object(proc.get("pod"))
    container = as_object(pod.get("container"))
    args = proc.get("arguments")
    binary = proc.get("binary")
    row: dict[str, Any] = {
        "time": record.get("time") or ev.get("time") or proc.get("start_time"),
        "cluster": record.get("cluster_name"),
        "node": record.get("node_name"),
        "namespace": pod.get("namespace"),
        "pod": pod.get("name"),
        "container": container.get("name"),
        "workload": pod.get("workload"),
        "workload_kind": pod.get("workload_kind"),
        "labels": pod.get("pod_labels"),
        "event_type": _TYPES.get(key, key.removeprefix("process_")),
        "rule": ev.get("policy_name"),
        "process": binary,
        "args": args,
        "cmdline": _join(binary, args),
        "pid": proc.get("pid"),
        "ppid": parent.get("pid"),
        "parent_process": parent.get("binary"),
        "parent_cmdline": _join(parent.get("binary"), parent.get("arguments")),
        "exec_id": proc.get("exec_id"),
        "parent_exec_id": proc.get("parent_exec_id") or parent.get("exec_id"),
        "uid": proc.get("uid"),
        "cwd": proc.get("cwd"),
        "container_id": container_id(container.get("id")) or container_id(proc.get("docker")),
        "container_image": as_object(container.get("image")).get("name"),
    }
    if key in _LEGACY:
        row.update(
            src_ip=ev.get("source_ip"),
            src_port=ev.get("source_port"),
            dst_ip=ev.get("destination_ip"),
            dst_port=ev.get("destination_port"),
            protocol=_lower(ev.get("protocol")) if ev.get("protocol") else None,
        )
    for arg in as_list(ev.get("args")):
        if not isinstance(arg, dict):
            continue
        sock = arg.get("sock_arg") or arg.get("skb_arg") or arg.get("sockaddr_arg")
        if isinstance(sock, dict) and row.get("dst_ip") is None:
            row.update(
                event_type="network",
                src_ip=sock.get("saddr"),
                src_port=sock.get("sport"),
                dst_ip=sock.get("daddr"),
                dst_port=sock.get("dport"),
                protocol=_protocol(sock.get("protocol")),
            )
        for name in ("file_arg", "path_arg", "linux_binprm_arg"):
            f = arg.get(name)
            if isinstance(f, dict) and f.get("path") and row.get("file_path") is None:
                row["file_path"] = f["path"]
                if row["event_type"] == "syscall":
                    row["event_type"] = "file"
    rest = {k: v for k, v in ev.items() if k not in _MAPPED}
    if rest:
        row["extra"] = json_text(rest)
    if row["pod"] is None and row["container_id"] is None:
        row["container"] = None  # a host process
    yield row


def _join(*parts: Any) -> str | None:
    """A command line from its parts, each as the text its own column holds."""
    return " ".join(text(x) or "" for x in parts if x) or None


def _protocol(v: Any) -> Any:
    # IPPROTO_TCP → tcp; other text lower-cased; '' is no protocol
    return (_PROTOCOLS.get(v) or v.lower() or None) if isinstance(v, str) else v


def _lower(v: Any) -> Any:
    # lower-cased when text; anything else goes to the driver as it is
    return v.lower() if isinstance(v, str) else v


# --------------------------------------------------------------------------- fast path
#
# Each column's DuckDB expression (sources._mapping) over the event, read by DuckDB's
# read_ndjson (``FAST_COLUMNS``: each process_* key as JSON). The event's fields are read by
# path, text (``_s``) or JSON (``_j``): one json_extract_string and one json_extract call over the
# one process_* object the record holds. What the SQL cannot be sure it reads as ``rows`` does
# is redone per record (``sure``): two event keys, the legacy connect/close/listen events, a
# value of another JSON type than Tetragon writes where the type matters (a command line's
# parts, a container id), a float or a control character anywhere in the event (DuckDB writes
# them in extra's JSON otherwise than Python), more than one socket or file argument of a
# kprobe. Event reference: https://tetragon.io/docs/reference/grpc-api/ (GetEventsResponse,
# Process, Pod, KprobeArgument); the JSON export: https://tetragon.io/docs/concepts/events/

_ENVELOPE = ("kind", "records", "events", "messageType", "logEvents", "awslogs")
_KEYS = (*_TYPES, *(k for k in _NOT_EVENTS if k not in _TYPES))
FAST_COLUMNS = dict.fromkeys((*_KEYS, "time", "node_name", "cluster_name", "flow", *_ENVELOPE), "JSON")
_EVENTS = [k for k in _TYPES if k not in _LEGACY]

_TEXT_PATHS: list[str] = []
_JSON_PATHS: list[str] = []


def _s(path: str) -> str:
    """SQL: the text at a path of the event (JSON text for an object or a list)."""
    if path not in _TEXT_PATHS:
        _TEXT_PATHS.append(path)
    return f"_s[{_TEXT_PATHS.index(path) + 1}]"


def _jt(path: str) -> str:
    """SQL: the compact JSON text at a path of the event ('null' when null, NULL when absent)."""
    if path not in _JSON_PATHS:
        _JSON_PATHS.append(path)
    return f"_j[{_JSON_PATHS.index(path) + 1}]::VARCHAR"


def _str_or_null(path: str) -> str:
    return f"""coalesce(left({_jt(path)}, 1) IN ('"', 'n'), true)"""


def _scalar(sql: str) -> str:
    """SQL: a text column's value is no object or list (a float anywhere is redone with the
    event: see ``_FLAT``), so its text is the driver's text of the value."""
    return f"coalesce(left({sql}, 1) NOT IN ('{{', '['), true)"


def _text_column(path: str) -> Column:
    return Column(py=None, sql=_s(path), sure=_scalar(_s(path)))


_INT = "(CASE WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,18}}') THEN CAST({v} AS BIGINT) END)"


def _int_column(sql: str) -> Column:
    return Column(py=None, sql=_INT.format(v=sql), raw=sql)


def _joined(*paths: str) -> Column:
    """``_join``: the parts (text, or the row is redone), the empty ones left out."""
    return Column(
        py=None,
        sql=f"nullif(concat_ws(' ', {', '.join(f'nullif({_s(p)}, {chr(39) * 2})' for p in paths)}), '')",
        sure=" AND ".join(_str_or_null(p) for p in paths),
    )


def _cid(path: str) -> str:
    """SQL: ``container_id`` of the text at ``path`` (sure: see the container_id column)."""
    v = _s(path)
    after = f"CASE WHEN contains({v}, '://') THEN substr({v}, position('://' IN {v}) + 3) ELSE {v} END"
    return f"CASE WHEN regexp_full_match({after}, '[0-9A-Fa-f]{{1,64}}') THEN lower({after}) END"


def _cid_sure(path: str) -> str:
    v = _s(path)
    after = f"CASE WHEN contains({v}, '://') THEN substr({v}, position('://' IN {v}) + 3) ELSE {v} END"
    # Python strips and lower-cases before its test: sure where no such step could matter
    return f"""{_str_or_null(path)} AND ({v} IS NULL OR {after} = '' OR regexp_full_match({after}, '[0-9A-Fa-f]{{1,64}}')
        OR regexp_matches({after}, '[G-Zg-z]'))"""


_POD = "$.process.pod"
_LABELS = _jt(_POD + ".pod_labels")  # registers the path: the JSON value is _j[_LABELS_AT]
_LABELS_AT = _JSON_PATHS.index(_POD + ".pod_labels") + 1
_CONTAINER_ID = f"coalesce({_cid(_POD + '.container.id')}, {_cid('$.process.docker')})"
# a float (a member's or an element's number with a point or an exponent) or an escaped
# control character anywhere in the event; text that merely looks so inside a string is redone
# too (the test only has to be sure)
_FLAT = """NOT regexp_matches(_t, '(":|[\\[,])-?[0-9]+[.eE]') AND NOT contains(_t, '\\u00')"""
_SOCK_KEYS = ("sock_arg", "skb_arg", "sockaddr_arg")
_FILE_KEYS = ("file_arg", "path_arg", "linux_binprm_arg")


def _has(keys: tuple[str, ...]) -> str:
    return "lambda a: json_type(a) = 'OBJECT' AND (" + " OR ".join(f"json_exists(a, '$.{k}')" for k in keys) + ")"


LETS: dict[str, Column] = {
    "_ev": Column(py=None, sql=f"coalesce({', '.join(_EVENTS)})"),
    "_n": Column(py=None, sql=" + ".join(f"({k} IS NOT NULL)::INTEGER" for k in (*_KEYS, "flow"))),
    "_t": Column(py=None, sql="_ev::VARCHAR"),
    # the kprobe's arguments: the ones holding a socket, and the ones holding a file
    "_args": Column(
        py=None,
        sql=f"CASE WHEN starts_with({_jt('$.args')}, '[') THEN json_extract(_j[{_JSON_PATHS.index('$.args') + 1}], '$[*]') END",
    ),
    "_socks": Column(py=None, sql=f"list_filter(_args, {_has(_SOCK_KEYS)})", sure="coalesce(len(_socks), 0) <= 1"),
    "_files": Column(py=None, sql=f"list_filter(_args, {_has(_FILE_KEYS)})", sure="coalesce(len(_files), 0) <= 1"),
    # Python's 'sock_arg or skb_arg or sockaddr_arg': the first not null, sure when it is a
    # non-empty object (a falsy one would hand over to the next)
    "_sock": Column(
        py=None,
        sql="coalesce(" + ", ".join(f"nullif(_socks[1]->'$.{k}', 'null'::JSON)" for k in _SOCK_KEYS) + ")",
        sure="""_sock IS NULL OR (json_type(_sock) = 'OBJECT' AND _sock::VARCHAR <> '{}'
            AND coalesce(left(json_extract(_sock, '$.saddr')::VARCHAR, 1) IN ('"', 'n'), true)
            AND coalesce(left(json_extract(_sock, '$.daddr')::VARCHAR, 1) IN ('"', 'n'), true)
            AND coalesce(left(json_extract(_sock, '$.protocol')::VARCHAR, 1) NOT IN ('{', '['), true)
            AND coalesce(regexp_full_match(_sock->>'$.protocol', '[ -~]*'), true))""",
    ),
    "_file": Column(
        py=None,
        sql="CASE "
        + " ".join(
            f"WHEN json_type(_files[1]->'$.{k}') = 'OBJECT' AND coalesce(_files[1]->>'$.{k}.path' <> '', false) "
            f"THEN _files[1]->>'$.{k}.path'"
            for k in _FILE_KEYS
        )
        + " END",
        sure=" AND ".join(
            f"""coalesce(left(json_extract(_files[1], '$.{k}.path')::VARCHAR, 1) IN ('"', 'n'), true)"""
            for k in _FILE_KEYS
        ),
    ),
    # a map holds each key once (Python's dict keeps the last value, DuckDB's cast refuses)
    "_unique_labels": Column(
        py=None,
        sql=f"coalesce(len(list_distinct(json_keys(_j[{_LABELS_AT}]))) = len(json_keys(_j[{_LABELS_AT}])), true)",
        sure="_unique_labels",
    ),
    "_base": Column(
        py=None,
        sql="CASE "
        + " ".join(f"WHEN {k} IS NOT NULL THEN '{v}'" for k, v in _TYPES.items() if k not in _LEGACY)
        + " END",
    ),
}

MAPPING: dict[str, Column] = {
    "time": Column(py=None, sql="\"time\"->>'$'", sure="""starts_with("time"::VARCHAR, '"') AND "time"->>'$' <> ''"""),
    # '' is no cluster: the driver gives such a row the file's (as it does a per-record row's)
    "cluster": Column(
        py=None, sql="nullif(cluster_name->>'$', '')", sure="""coalesce(left(cluster_name::VARCHAR, 1) = '"', true)"""
    ),
    "node": Column(py=None, sql="node_name->>'$'", sure="""coalesce(left(node_name::VARCHAR, 1) = '"', true)"""),
    "namespace": _text_column(_POD + ".namespace"),
    "pod": _text_column(_POD + ".name"),
    # a host process (neither pod nor container id) has no container
    "container": Column(
        py=None,
        sql=f"CASE WHEN {_s(_POD + '.name')} IS NULL AND {_CONTAINER_ID} IS NULL THEN NULL ELSE {_s(_POD + '.container.name')} END",
        sure=_scalar(_s(_POD + ".container.name")),
    ),
    "workload": _text_column(_POD + ".workload"),
    "workload_kind": _text_column(_POD + ".workload_kind"),
    "labels": Column(
        py=None,
        sql=f"""CASE WHEN starts_with({_LABELS}, '{{') AND _unique_labels THEN _j[{_LABELS_AT}]::MAP(VARCHAR, VARCHAR) END""",
        # an object of strings (another value is the driver's to judge, per record)
        sure=f"""coalesce(left({_LABELS}, 1) = 'n', true) OR regexp_full_match({_LABELS},
            '\\{{("([^"\\\\]|\\\\.)*":"([^"\\\\]|\\\\.)*"(,"([^"\\\\]|\\\\.)*":"([^"\\\\]|\\\\.)*")*)?\\}}')""",
    ),
    "event_type": Column(
        py=None,
        sql="CASE WHEN _sock IS NOT NULL THEN 'network' WHEN _file IS NOT NULL AND _base = 'syscall' THEN 'file' ELSE _base END",
    ),
    "rule": _text_column("$.policy_name"),
    "process": _text_column("$.process.binary"),
    "args": _text_column("$.process.arguments"),
    "cmdline": _joined("$.process.binary", "$.process.arguments"),
    "pid": _int_column(_s("$.process.pid")),
    "ppid": _int_column(_s("$.parent.pid")),
    "parent_process": _text_column("$.parent.binary"),
    "parent_cmdline": _joined("$.parent.binary", "$.parent.arguments"),
    "exec_id": _text_column("$.process.exec_id"),
    "parent_exec_id": Column(
        py=None,
        sql=f"CASE WHEN coalesce({_s('$.process.parent_exec_id')} <> '', false) THEN {_s('$.process.parent_exec_id')} ELSE {_s('$.parent.exec_id')} END",
        sure=f"{_str_or_null('$.process.parent_exec_id')} AND {_scalar(_s('$.parent.exec_id'))}",
    ),
    "uid": _int_column(_s("$.process.uid")),
    "cwd": _text_column("$.process.cwd"),
    "container_id": Column(
        py=None, sql=_CONTAINER_ID, sure=f"{_cid_sure(_POD + '.container.id')} AND {_cid_sure('$.process.docker')}"
    ),
    "container_image": _text_column(_POD + ".container.image.name"),
    "src_ip": Column(py=None, sql="_sock->>'$.saddr'"),
    "src_port": _int_column("_sock->>'$.sport'"),
    "dst_ip": Column(py=None, sql="_sock->>'$.daddr'"),
    "dst_port": _int_column("_sock->>'$.dport'"),
    # IPPROTO_TCP → tcp; other text lower-cased (ASCII: Python and DuckDB agree); '' is none
    "protocol": Column(
        py=None,
        sql="CASE WHEN starts_with(json_extract(_sock, '$.protocol')::VARCHAR, '\"') THEN CASE _sock->>'$.protocol' "
        + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _PROTOCOLS.items())
        + " ELSE nullif(lower(_sock->>'$.protocol'), '') END ELSE _sock->>'$.protocol' END",
    ),
    "file_path": Column(py=None, sql="_file"),
    # the event less the fields the columns stand for (RFC 7386: a null member removes it)
    "extra": Column(
        py=None,
        sql="nullif(json_merge_patch(_ev, '" + json_text(dict.fromkeys(_MAPPED)) + "')::VARCHAR, '{}')",
        sure=_FLAT,
    ),
}
LETS = {
    "_ev": LETS.pop("_ev"),
    "_s": Column(py=None, sql=f"json_extract_string(_ev, {_TEXT_PATHS!r})"),
    "_j": Column(py=None, sql=f"json_extract(_ev, {_JSON_PATHS!r})"),
    **LETS,
}
# one event key, an object, and nothing another format or an envelope would claim
_IS_OK = "_n = 1 AND starts_with(_t, '{') AND " + " AND ".join(f'"{k}" IS NULL' for k in (*_LEGACY, *_ENVELOPE))


def _fast_applies(records: Sequence[Any], context: Mapping[str, Any]) -> bool:
    """Files of Tetragon's JSON export (one process_* event and its time per line)."""
    return any(isinstance(r, dict) and isinstance(r.get("time"), str) for r in records)


def _fast_query(source: str, head: Sequence[Any], context: Mapping[str, Any]) -> str:
    return select_sql(source, LETS, MAPPING, ok=_IS_OK)


fast = FastPath(reads="ndjson", columns=FAST_COLUMNS, query=_fast_query, applies=_fast_applies)
