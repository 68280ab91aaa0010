"""Aqua Tracee JSON events: both schema generations, signature events.

Aqua Tracee JSON events, both schema generations: flat (``containerId``, ``podName``,
``podNamespace``; ≤ v0.12) and nested (``container{}``, ``kubernetes{}``; v0.13+), and the
signature (detection) events with ``metadata.Properties``. Timestamps are epoch ns;
``args[]`` are kept as JSON in ``extra`` and the known ones (path, argv, addresses) are mapped.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from ._k8s import container_id
from ._values import as_int, as_object

NAME = "tracee"
FAMILY = "runtime"

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
    args: dict[str, Any] = {str(a.get("name")): a.get("value") for a in record.get("args") or [] if isinstance(a, dict)}
    name = str(record.get("eventName") or "")
    signature = bool(props) or str(record.get("eventId", "")).startswith("6")
    argv = args.get("argv")
    row: dict[str, Any] = {
        "time": record.get("timestamp"),
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
        "cmdline": " ".join(str(a) for a in argv) if isinstance(argv, list) else None,
        "pid": as_int(record.get("hostProcessId", record.get("processId"))),
        "ppid": as_int(record.get("hostParentProcessId", record.get("parentProcessId"))),
        "uid": as_int(record.get("userId")),
        "parent_process": None,
        "file_path": next((str(args[k]) for k in _PATH_ARGS if isinstance(args.get(k), str) and args[k]), None),
        "tags": [t for t in (props.get("Technique"), props.get("external_id"), props.get("Category")) if t] or None,
    }
    row["extra"] = orjson.dumps(
        {k: record[k] for k in ("eventName", "eventId", "processName", "hostName", "args", "returnValue", "syscall", "matchedPolicies") if k in record}
        | ({"metadata": meta} if meta else {})
    ).decode()
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
    try:
        return levels.get(int(v)) if v is not None else None
    except (TypeError, ValueError):
        return str(v)

