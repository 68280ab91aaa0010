"""Aqua Tracee JSON events: both schema generations, signature events.

Aqua Tracee JSON events, both schema generations: flat (``containerId``, ``podName``,
``podNamespace``; ≤ v0.12) and nested (``container{}``, ``kubernetes{}``; v0.13+), and the
signature (detection) events with ``metadata.Properties``. Timestamps are epoch ns (read as ns);
``args[]`` are kept as JSON in ``extra`` and the known ones (path, argv, addresses) are mapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._k8s import container_id
from ._values import as_list, as_object, epoch, json_text, text

NAME = "tracee"
FAMILY = "runtime"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record

_PATH_ARGS = ("pathname", "filename", "path", "cmdpath")
_NET_EVENTS = ("net_packet", "security_socket_connect", "security_socket_accept", "connect", "accept")


def sniff(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and "eventName" in record
        and ("processId" in record or "hostProcessId" in record)
        and "timestamp" in record
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    container = as_object(record.get("container"))
    k8s = as_object(record.get("kubernetes"))
    meta = as_object(record.get("metadata"))
    props = as_object(meta.get("Properties"))
    args: dict[str, Any] = {
        text(a.get("name")) or "": a.get("value") for a in as_list(record.get("args")) if isinstance(a, dict)
    }
    name = record.get("eventName") if isinstance(record.get("eventName"), str) else ""
    signature = bool(props) or str(record.get("eventId", "")).startswith("6")
    argv = args.get("argv")
    row: dict[str, Any] = {
        "time": epoch(record.get("timestamp"), "ns"),
        "node": None,  # Tracee's hostName is the container's hostname (the pod name), not the node
        "namespace": k8s.get("podNamespace") or record.get("podNamespace") or None,
        "pod": k8s.get("podName") or record.get("podName") or None,
        "container": container.get("name") or record.get("containerName") or None,
        "container_id": container_id(container.get("id") or record.get("containerId")),
        "container_image": container.get("image") or record.get("containerImage") or None,
        "event_type": "alert" if signature else _event_type(name, args),
        "rule": props.get("signatureName") or (name if signature else None),
        "priority": _severity(props.get("Severity")),
        "output": meta.get("Description"),
        "process": as_object(record.get("executable")).get("path")
        or (args.get("pathname") if name in ("sched_process_exec", "execve") else None)
        or record.get("processName"),
        "cmdline": " ".join(text(a) or "" for a in argv) if isinstance(argv, list) else None,
        "pid": record.get("hostProcessId", record.get("processId")),
        "ppid": record.get("hostParentProcessId", record.get("parentProcessId")),
        "uid": record.get("userId"),
        "parent_process": None,
        "file_path": next((str(args[k]) for k in _PATH_ARGS if isinstance(args.get(k), str) and args[k]), None),
        "tags": [t for t in (props.get("Technique"), props.get("external_id"), props.get("Category")) if t] or None,
    }
    row["extra"] = json_text(
        {
            k: record[k]
            for k in (
                "eventName",
                "eventId",
                "processName",
                "hostName",
                "args",
                "returnValue",
                "syscall",
                "matchedPolicies",
            )
            if k in record
        }
        | ({"metadata": meta} if meta else {})
    )
    yield row


def _event_type(name: str, args: dict[str, Any]) -> str:
    if name in ("sched_process_exec", "execve", "execveat"):
        return "exec"
    if name in ("sched_process_exit",):
        return "exit"
    if name.startswith(_NET_EVENTS):
        return "network"
    if any(k in args for k in _PATH_ARGS):
        return "file"
    return "syscall"


def _severity(v: Any) -> str | None:
    # Tracee signature severity 0..3 → Falco-style priorities, so one column sorts both
    levels = {0: "Informational", 1: "Notice", 2: "Warning", 3: "Critical"}
    if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer():
        return levels.get(int(v))
    if isinstance(v, str) and v.strip().isdigit():
        return levels.get(int(v))
    return text(v)  # another spelling: kept as written
