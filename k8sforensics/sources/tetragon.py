"""Tetragon JSON export: exec, exit, kprobe, tracepoint, lsm events.

Tetragon JSON export (``tetra getevents -o json``, the export file): one event per
line, one ``process_*`` key per event (exec, exit, kprobe, tracepoint, uprobe, lsm, and the
legacy connect/close/listen). Pod, labels, workload and container id come from
``process.pod``; kprobe socket and file arguments fill the network and file columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._k8s import container_id
from ._values import as_list, as_object, json_text, text
from .protocol import BadRecord, NotAnEvent

NAME = "tetragon"
FAMILY = "runtime"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record

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
    if key in ("process_connect", "process_close", "process_listen"):
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
    mapped = {
        "process",
        "parent",
        "policy_name",
        "source_ip",
        "source_port",
        "destination_ip",
        "destination_port",
        "protocol",
    }
    rest = {k: v for k, v in ev.items() if k not in mapped}
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
