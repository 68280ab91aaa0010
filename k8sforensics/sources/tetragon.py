"""Tetragon JSON export: exec, exit, kprobe, tracepoint, lsm events.

Tetragon JSON export (``tetra getevents -o json``, the export file): one event per
line, one ``process_*`` key per event (exec, exit, kprobe, tracepoint, uprobe, lsm, and the
legacy connect/close/listen). Pod, labels, workload and container id come from
``process.pod``; kprobe socket and file arguments fill the network and file columns.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from ._driver import BadRecord, NotAnEvent
from ._k8s import container_id
from ._values import as_int, as_object

NAME = "tetragon"
FAMILY = "runtime"

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
    for key in record:
        if key.startswith("process_") and isinstance(record[key], dict):
            return key
    return None


def sniff(record: Any) -> bool:
    return isinstance(record, dict) and (
        _event_key(record) is not None or any(k in record for k in _NOT_EVENTS)
    ) and ("time" in record or "node_name" in record or _event_key(record) is not None) and "flow" not in record


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
        "labels": {str(k): str(v) for k, v in pod["pod_labels"].items()} if isinstance(pod.get("pod_labels"), dict) else None,
        "event_type": _TYPES.get(key, key.removeprefix("process_")),
        "rule": ev.get("policy_name"),
        "process": binary,
        "args": args,
        "cmdline": " ".join(x for x in (binary, args) if x) or None,
        "pid": as_int(proc.get("pid")),
        "ppid": as_int(parent.get("pid")),
        "parent_process": parent.get("binary"),
        "parent_cmdline": " ".join(x for x in (parent.get("binary"), parent.get("arguments")) if x) or None,
        "exec_id": proc.get("exec_id"),
        "parent_exec_id": proc.get("parent_exec_id") or parent.get("exec_id"),
        "uid": as_int(proc.get("uid")),
        "cwd": proc.get("cwd"),
        "container_id": container_id(container.get("id")) or container_id(proc.get("docker")),
        "container_image": as_object(container.get("image")).get("name"),
    }
    if key in ("process_connect", "process_close", "process_listen"):
        row.update(
            src_ip=ev.get("source_ip"), src_port=as_int(ev.get("source_port")),
            dst_ip=ev.get("destination_ip"), dst_port=as_int(ev.get("destination_port")),
            protocol=str(ev["protocol"]).lower() if ev.get("protocol") else None,
        )
    for arg in ev.get("args") or []:
        if not isinstance(arg, dict):
            continue
        sock = arg.get("sock_arg") or arg.get("skb_arg") or arg.get("sockaddr_arg")
        if isinstance(sock, dict) and row.get("dst_ip") is None:
            row.update(
                event_type="network",
                src_ip=sock.get("saddr"), src_port=as_int(sock.get("sport")),
                dst_ip=sock.get("daddr"), dst_port=as_int(sock.get("dport")),
                protocol=_PROTOCOLS.get(str(sock.get("protocol")), str(sock["protocol"]).lower() if sock.get("protocol") else None),
            )
        for name in ("file_arg", "path_arg", "linux_binprm_arg"):
            f = arg.get(name)
            if isinstance(f, dict) and f.get("path") and row.get("file_path") is None:
                row["file_path"] = f["path"]
                if row["event_type"] == "syscall":
                    row["event_type"] = "file"
    mapped = {"process", "parent", "policy_name", "source_ip", "source_port", "destination_ip", "destination_port", "protocol"}
    rest = {k: v for k, v in ev.items() if k not in mapped}
    if rest:
        row["extra"] = orjson.dumps(rest).decode()
    if row["pod"] is None and row["container_id"] is None:
        row["container"] = None  # a host process
    yield row

