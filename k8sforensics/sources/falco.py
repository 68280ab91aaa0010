"""Falco alerts (json_output): syscall and k8s_audit sources.

Falco alerts (``json_output: true``, also relayed by falcosidekick): syscall and
k8s_audit sources. ``output_fields`` map onto the runtime columns; ``<NA>`` and null stay
null. Falco's own metrics and drop snapshots (source ``internal``) are not alerts: they are
skipped and counted. Field values go into the row as Falco wrote them; the driver types them
(a pid that is not an integer is quarantined with the field named, not dropped).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._k8s import container_id
from ._mapping import Column, select_sql
from ._values import epoch, json_text, text
from .protocol import BadRecord, FastPath, NotAnEvent

NAME = "falco"
FAMILY = "runtime"
sniff_lines = None  # a JSON format

PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
_PRIORITY = {p.lower(): p for p in PRIORITIES} | {"info": "Informational"}

# output_fields key → runtime column; the first key present wins
_FIELDS: dict[str, tuple[str, ...]] = {
    "namespace": ("k8s.ns.name", "ka.target.namespace"),
    "pod": ("k8s.pod.name",),
    "container": ("container.name",),
    "process": ("proc.exepath", "proc.exe", "proc.name"),
    "args": ("proc.args",),
    "cmdline": ("proc.cmdline",),
    "pid": ("proc.pid",),
    "ppid": ("proc.ppid",),
    "parent_process": ("proc.pexepath", "proc.pname"),
    "parent_cmdline": ("proc.pcmdline",),
    "uid": ("user.uid",),
    "user_name": ("user.name", "ka.user.name"),
    "cwd": ("proc.cwd",),
    "tty": ("proc.tty",),
    "file_path": ("fd.name", "evt.arg.path", "evt.arg.pathname", "fs.path.name"),
    "protocol": ("fd.l4proto",),
}
_INTEGERS = ("pid", "ppid", "uid", "tty")
_RECORD_EXTRA = ("source", "hostname", "uuid")  # the record's own fields extra keeps


def sniff(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and "rule" in record
        and "priority" in record
        and "output" in record
        and ("output_fields" in record or "time" in record)
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    fields = record.get("output_fields") or {}
    if not isinstance(fields, dict):
        raise BadRecord("output_fields is not an object")
    source = record.get("source") or fields.get("evt.source")
    if source == "internal" or str(record.get("rule", "")).startswith("Falco internal"):
        raise NotAnEvent("Falco internal metrics/drop event")
    values = {k: _value(v) for k, v in fields.items()}
    used: set[str] = set()
    row: dict[str, Any] = {
        "time": _time(record.get("time"), values.get("evt.time")),
        "event_type": "alert",
        "rule": record.get("rule"),
        "priority": _priority(record.get("priority")),
        "output": record.get("output"),
        "node": record.get("hostname") or values.get("evt.hostname"),
        "tags": record.get("tags"),
    }
    for column, keys in _FIELDS.items():
        for key in keys:
            if values.get(key) is not None:
                row[column] = values[key]
                used.add(key)
                break
    if source == "k8s_audit" and values.get("ka.target.resource") == "pods" and values.get("ka.target.name"):
        row["pod"] = values["ka.target.name"]
    row["container_id"] = container_id(values.get("container.full_id") or values.get("container.id"))
    used.update(("container.full_id", "container.id"))
    repo, tag = values.get("container.image.repository"), values.get("container.image.tag")
    row["container_image"] = f"{text(repo)}:{text(tag)}" if repo and tag else (repo or values.get("container.image"))
    row["labels"] = _labels(values.get("k8s.pod.labels"))
    client, server = values.get("fd.cip"), values.get("fd.sip")
    if client or server:
        row["src_ip"], row["dst_ip"] = client, server
        row["src_port"], row["dst_port"] = values.get("fd.cport"), values.get("fd.sport")
    elif values.get("fd.lip") or values.get("fd.rip"):
        row["src_ip"], row["dst_ip"] = values.get("fd.lip"), values.get("fd.rip")
        row["src_port"], row["dst_port"] = values.get("fd.lport"), values.get("fd.rport")
    path = row.get("file_path")
    if (row.get("src_ip") or row.get("dst_ip")) and isinstance(path, str) and ":" in path:
        row["file_path"] = None  # fd.name of a socket is 'ip:port->ip:port', not a file
    rest = {k: v for k, v in fields.items() if k not in used and v is not None}
    # the record's own fields beside output_fields; a null one is left out, as a null output
    # field is (both say nothing, and a JSON reader cannot tell a null field from an absent one)
    rest.update({k: record[k] for k in _RECORD_EXTRA if record.get(k) is not None})
    row["extra"] = json_text(rest) if rest else None
    yield row


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$")


def _time(time: Any, evt_time: Any) -> Any:
    # 'time' is evt.time formatted by Falco; when it is mangled ('...046Z+2' seen in the
    # wild) the integer evt.time (epoch ns) is the event time. gRPC output gives {seconds, nanos}.
    if isinstance(time, str) and _RFC3339.match(time):
        return time
    if isinstance(evt_time, int) and not isinstance(evt_time, bool):
        return evt_time  # unit by magnitude: Falco's own docs show evt.time in µs as well as ns
    if isinstance(time, dict) and "seconds" in time:
        seconds, nanos = time["seconds"], time.get("nanos", 0)
        if type(seconds) is int and type(nanos) is int:
            return epoch(seconds * 1_000_000_000 + nanos, "ns")
        return epoch(seconds, "s")  # odd parts: the seconds, judged (and shown) as they are
    return time


def _priority(p: Any) -> str | None:
    if isinstance(p, int) and not isinstance(p, bool) and 0 <= p < len(PRIORITIES):
        return PRIORITIES[p]  # the gRPC output's enum
    return _PRIORITY.get(p.lower(), p) if isinstance(p, str) else p


def _value(v: Any) -> Any:
    return None if v == "<NA>" else v


def _labels(v: Any) -> dict[str, str] | None:
    # k8s.pod.labels: an array of "key:value" strings, or one such string, comma-separated
    items = v if isinstance(v, list) else (text(v).strip("()[]").split(",") if v else [])
    out = {}
    for item in items:
        k, sep, val = (text(item) or "").strip().partition(":")
        if sep and k:
            out[k] = val
    return out or None


# --------------------------------------------------------------------------- fast path
#
# Each column's DuckDB expression (sources._mapping) over the alert's JSON fields, read by
# DuckDB's read_ndjson (``FAST_COLUMNS``). ``output_fields`` is read by path, text (``_s``) or
# JSON (``_j``): one json_extract_string and one json_extract call, each with the list of every
# path the columns name, parse the fields once each. What the SQL cannot be sure it reads as
# ``rows`` does is redone per record (``sure``): a value of another JSON type than Falco writes
# where the type matters (truthiness, a container id), a float or a nested object in the fields
# (DuckDB writes a float or a control character in extra's JSON otherwise than Python), an
# alert whose ``time`` is not RFC 3339 text, internal events. Field reference:
# https://falco.org/docs/reference/rules/supported-fields/ ; the alert's JSON:
# https://falco.org/docs/concepts/outputs/formatting/ (json_output).

# the envelope keys sources._json.unwrap looks for: a record holding one is read per record
_ENVELOPE = ("kind", "records", "events", "messageType", "logEvents", "awslogs")
FAST_COLUMNS = dict.fromkeys(
    ("rule", "priority", "output", "output_fields", "time", "tags", *_RECORD_EXTRA), "JSON"
) | dict.fromkeys(_ENVELOPE, "JSON")

_TEXT_PATHS: list[str] = []
_JSON_PATHS: list[str] = []


def _path(key: str) -> str:
    return '$."' + key + '"'


def _s(key: str) -> str:
    """SQL: the text of an output field (JSON text for a list), NULL when absent or null."""
    if key not in _TEXT_PATHS:
        _TEXT_PATHS.append(key)
    return f"_s[{_TEXT_PATHS.index(key) + 1}]"


def _v(key: str) -> str:
    """SQL: an output field as ``rows`` reads it (``<NA>`` is no value)."""
    return f"nullif({_s(key)}, '<NA>')"


def _jt(key: str) -> str:
    """SQL: the compact JSON text of an output field, 'null' when null, NULL when absent."""
    if key not in _JSON_PATHS:
        _JSON_PATHS.append(key)
    return f"_j[{_JSON_PATHS.index(key) + 1}]::VARCHAR"


def _str_or_null(key: str) -> str:
    """SQL: the field is text, null or absent (where Python tests its truth or its type)."""
    return f"""coalesce(left({_jt(key)}, 1) IN ('"', 'n'), true)"""


def _given(sql: str) -> str:
    """SQL: Python's truth of a text value (not None, not '')."""
    return f"coalesce({sql} <> '', false)"


def _first(keys: tuple[str, ...]) -> str:
    return f"coalesce({', '.join(_v(k) for k in keys)})" if len(keys) > 1 else _v(keys[0])


_INT = "(CASE WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,18}}') THEN CAST({v} AS BIGINT) END)"
# Falco's RFC 3339 time, as ``_RFC3339`` (ASCII digits: where Python's \d takes another digit,
# or its $ a final newline, the row is redone)
_TIME_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})"
# a JSON array of strings only (compact, as DuckDB writes it)
_STRINGS_RE = r'\[("([^"\\]|\\.)*"(,"([^"\\]|\\.)*")*)?\]'
# in the fields' compact JSON: a nested object, an array holding anything but strings, a float
# (text that merely looks so inside a string is redone too: the test only has to be sure)
_NOT_FLAT_RE = r'":(\{|\[[^"\]]|-?[0-9]+[.eE])|",[^"]'
_TEXT = "'\"'"


def _is_text(json_sql: str) -> str:
    return f"starts_with({json_sql}::VARCHAR, {_TEXT})"


_SRC = f"CASE WHEN {_given('source->>' + repr('$'))} THEN source->>'$' ELSE {_s('evt.source')} END"
_CIP, _SIP, _LIP, _RIP = (_v(k) for k in ("fd.cip", "fd.sip", "fd.lip", "fd.rip"))
_CLIENT = f"({_given(_CIP)} OR {_given(_SIP)})"
_LOCAL = f"({_given(_LIP)} OR {_given(_RIP)})"
_REPO, _TAG = _v("container.image.repository"), _v("container.image.tag")
_CID = f"CASE WHEN {_given(_v('container.full_id'))} THEN {_v('container.full_id')} ELSE {_v('container.id')} END"
_LABELS_JSON = _jt("k8s.pod.labels")


def _port(client: str, local: str) -> Column:
    text = f"CASE WHEN {_CLIENT} THEN {_v(client)} WHEN {_LOCAL} THEN {_v(local)} END"
    return Column(py=None, sql=_INT.format(v=text), raw=text)


def _used(keys: tuple[str, ...]) -> str:
    """SQL: the merge-patch member that leaves out of extra the field a column took."""
    return "CASE " + " ".join(f"WHEN {_v(k)} IS NOT NULL THEN '\"{k}\":null'" for k in keys) + " END"


LETS: dict[str, Column] = {
    "_t": Column(py=None, sql="output_fields::VARCHAR"),
    "_src": Column(py=None, sql=_SRC),
    "_cid": Column(
        py=None,
        sql=f"CASE WHEN contains({_CID}, '://') THEN substr({_CID}, position('://' IN {_CID}) + 3) ELSE {_CID} END",
    ),
    # k8s.pod.labels: an array of "key:value" strings, or one such string (see _labels)
    "_items": Column(
        py=None,
        sql=f"""CASE WHEN starts_with({_LABELS_JSON}, '[') THEN from_json({_LABELS_JSON}, '["VARCHAR"]')
            WHEN {_given(_v("k8s.pod.labels"))} THEN string_split(trim({_v("k8s.pod.labels")}, '()[]'), ',') END""",
        sure=f"""coalesce(left({_LABELS_JSON}, 1) = 'n', true)
            OR (starts_with({_LABELS_JSON}, '"') AND regexp_full_match({_v("k8s.pod.labels")}, '[ -~]*'))
            OR (regexp_full_match({_LABELS_JSON}, '{_STRINGS_RE}') AND regexp_full_match({_LABELS_JSON}, '[ -~]*')
                AND NOT contains({_LABELS_JSON}, '\\'))""",
    ),
    "_pairs": Column(
        py=None,
        sql="list_filter(list_transform(_items, lambda x: trim(x)), lambda x: contains(x, ':') AND split_part(x, ':', 1) <> '')",
    ),
    "_keys": Column(
        py=None,
        sql="list_transform(_pairs, lambda x: split_part(x, ':', 1))",
        sure="coalesce(len(list_distinct(_keys)) = len(_keys), true)",
    ),
}

MAPPING: dict[str, Column] = {
    "time": Column(
        py=None,
        sql="\"time\"->>'$'",
        sure=f"""{_is_text('"time"')} AND regexp_full_match("time"->>'$', '{_TIME_RE}')""",
    ),
    "event_type": Column(py=None, sql="'alert'"),
    "rule": Column(
        py=None, sql="rule->>'$'", sure=f"{_is_text('rule')} AND NOT starts_with(rule->>'$', 'Falco internal')"
    ),
    "priority": Column(
        py=None,
        sql="CASE lower(priority->>'$') "
        + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _PRIORITY.items())
        + " ELSE priority->>'$' END",
        # an ASCII name: Python's lower() and DuckDB's agree on it
        sure=f"""{_is_text("priority")} AND (lower(priority->>'$') NOT IN ({", ".join(repr(k) for k in _PRIORITY)})
            OR regexp_full_match(priority->>'$', '[A-Za-z]+'))""",
    ),
    "output": Column(py=None, sql="output->>'$'", sure=_is_text("output")),
    "node": Column(
        py=None,
        sql=f"CASE WHEN {_given('hostname->>' + repr('$'))} THEN hostname->>'$' ELSE {_v('evt.hostname')} END",
        sure=f"(hostname IS NULL OR {_is_text('hostname')}) AND {_str_or_null('evt.hostname')}",
    ),
    "tags": Column(
        py=None,
        sql="""CASE WHEN tags IS NOT NULL THEN from_json(tags, '["VARCHAR"]') END""",
        sure=f"tags IS NULL OR regexp_full_match(tags::VARCHAR, '{_STRINGS_RE}')",
    ),
    **{
        col: (
            Column(py=None, sql=_INT.format(v=_v(keys[0])), raw=_v(keys[0]))
            if col in _INTEGERS
            # a list where a column takes text is redone (as is text that starts like one)
            else Column(py=None, sql=_first(keys), sure=f"coalesce(left({_first(keys)}, 1) <> '[', true)")
        )
        for col, keys in _FIELDS.items()
        if col not in ("pod", "file_path")
    },
    "pod": Column(
        py=None,
        sql=f"""CASE WHEN _src = 'k8s_audit' AND {_v("ka.target.resource")} = 'pods' AND {_given(_v("ka.target.name"))}
            THEN {_v("ka.target.name")} ELSE {_v("k8s.pod.name")} END""",
        sure=f"""(source IS NULL OR {_is_text("source")}) AND {_str_or_null("evt.source")} AND {_str_or_null("ka.target.name")}
            AND _src IS DISTINCT FROM 'internal' AND coalesce(left({_v("k8s.pod.name")}, 1) <> '[', true)""",
    ),
    "container_id": Column(
        py=None,
        sql="CASE WHEN regexp_full_match(_cid, '[0-9A-Fa-f]{1,64}') THEN lower(_cid) END",
        # Python strips and lower-cases before its test: sure where no such step could matter
        sure=f"""{_str_or_null("container.full_id")} AND {_str_or_null("container.id")} AND (_cid IS NULL OR _cid = ''
            OR regexp_full_match(_cid, '[0-9A-Fa-f]{{1,64}}') OR regexp_matches(_cid, '[G-Zg-z]'))""",
    ),
    "container_image": Column(
        py=None,
        sql=f"""CASE WHEN {_given(_REPO)} AND {_given(_TAG)} THEN {_REPO} || ':' || {_TAG}
            WHEN {_given(_REPO)} THEN {_REPO} ELSE {_v("container.image")} END""",
        sure=" AND ".join(
            _str_or_null(k) for k in ("container.image.repository", "container.image.tag", "container.image")
        ),
    ),
    "labels": Column(
        py=None,
        sql="CASE WHEN len(_pairs) > 0 AND len(list_distinct(_keys)) = len(_keys) THEN map_from_entries(list_transform(_pairs, lambda x: {'key': split_part(x, ':', 1), 'value': substr(x, strpos(x, ':') + 1)})) END",
    ),
    "src_ip": Column(
        py=None,
        sql=f"CASE WHEN {_CLIENT} THEN {_CIP} WHEN {_LOCAL} THEN {_LIP} END",
        sure=" AND ".join(_str_or_null(k) for k in ("fd.cip", "fd.sip", "fd.lip", "fd.rip")),
    ),
    "dst_ip": Column(py=None, sql=f"CASE WHEN {_CLIENT} THEN {_SIP} WHEN {_LOCAL} THEN {_RIP} END"),
    "src_port": _port("fd.cport", "fd.lport"),
    "dst_port": _port("fd.sport", "fd.rport"),
    # fd.name of a socket is 'ip:port->ip:port', not a file
    "file_path": Column(
        py=None,
        sql=f"""CASE WHEN ({_given(f"CASE WHEN {_CLIENT} THEN {_CIP} WHEN {_LOCAL} THEN {_LIP} END")}
                OR {_given(f"CASE WHEN {_CLIENT} THEN {_SIP} WHEN {_LOCAL} THEN {_RIP} END")})
                AND contains({_first(_FIELDS["file_path"])}, ':') THEN NULL ELSE {_first(_FIELDS["file_path"])} END""",
        sure=f"coalesce(left({_first(_FIELDS['file_path'])}, 1) <> '[', true)",
    ),
    # the fields no column took, less the null ones (RFC 7386: a null member removes it), then
    # the record's own source, hostname and uuid
    "extra": Column(
        py=None,
        sql="""CASE WHEN _body = '{}' THEN CASE WHEN _tail <> '' THEN '{' || _tail || '}' END
            WHEN _tail = '' THEN _body ELSE left(_body, -1) || ',' || _tail || '}' END""",
        sure=f"""output_fields IS NULL OR (starts_with(_t, '{{') AND NOT regexp_matches(_t, '{_NOT_FLAT_RE}')
            AND NOT contains(_t, '\\u00') AND {" AND ".join(f"{_s(k)} IS NULL" for k in _RECORD_EXTRA)})""",
    ),
}
LETS |= {
    "_patch": Column(
        py=None,
        sql="'{' || concat_ws(',', "
        + ", ".join(_used(keys) for col, keys in _FIELDS.items())
        + """, '"container.full_id":null', '"container.id":null') || '}'""",
    ),
    "_body": Column(
        py=None,
        sql="coalesce(json_merge_patch(CASE WHEN contains(_t, ':null') THEN json_merge_patch('{}', output_fields) "
        "ELSE coalesce(output_fields, '{}') END, _patch)::VARCHAR, '{}')",
    ),
    "_tail": Column(
        py=None,
        sql="concat_ws(',', "
        + ", ".join(f"""CASE WHEN {k} IS NOT NULL THEN '"{k}":' || {k}::VARCHAR END""" for k in _RECORD_EXTRA)
        + ")",
        # text, without a control character DuckDB escapes otherwise than Python
        sure=" AND ".join(
            f"({k} IS NULL OR ({_is_text(k)} AND NOT contains({k}::VARCHAR, '\\u00')))" for k in _RECORD_EXTRA
        ),
    ),
}
LETS = {
    "_s": Column(py=None, sql=f"json_extract_string(output_fields, {[_path(k) for k in _TEXT_PATHS]!r})"),
    "_j": Column(py=None, sql=f"json_extract(output_fields, {[_path(k) for k in _JSON_PATHS]!r})"),
    **LETS,
}
# a Falco alert (sniff): rule, priority and output given, a time, fields an object; no envelope
_IS_ALERT = (
    "rule IS NOT NULL AND priority IS NOT NULL AND output IS NOT NULL "
    "AND (output_fields IS NULL OR starts_with(output_fields::VARCHAR, '{')) "
    + " ".join(f'AND "{k}" IS NULL' for k in _ENVELOPE if k != "kind")
    + """ AND coalesce(kind->>'$' <> 'EventList', true)"""
)


def _fast_applies(records: Sequence[Any], context: Mapping[str, Any]) -> bool:
    """Files of alerts with an RFC 3339 time (json_output) take the fast path; another time
    (gRPC's {seconds, nanos}) would be redone record by record."""
    return any(isinstance(r, dict) and isinstance(r.get("time"), str) for r in records)


def _fast_query(source: str, head: Sequence[Any], context: Mapping[str, Any]) -> str:
    return select_sql(source, LETS, MAPPING, ok=_IS_ALERT)


fast = FastPath(reads="ndjson", columns=FAST_COLUMNS, query=_fast_query, applies=_fast_applies)
