"""Falco alerts (json_output): syscall and k8s_audit sources.

Falco alerts (``json_output: true``, also relayed by falcosidekick): syscall and
k8s_audit sources. ``output_fields`` map onto the runtime columns; ``<NA>`` and null stay
null. Falco's own metrics and drop snapshots (source ``internal``) are not alerts: they are
skipped and counted. Field values go into the row as Falco wrote them; the driver types them
(a pid that is not an integer is quarantined with the field named, not dropped).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ._k8s import container_id
from ._values import epoch, json_text, text
from .protocol import BadRecord, NotAnEvent

NAME = "falco"
FAMILY = "runtime"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record

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
    rest.update({k: record[k] for k in ("source", "hostname", "uuid") if k in record})
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
