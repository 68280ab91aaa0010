"""Cilium Hubble flows: hubble observe -o json and exporter files.

Cilium Hubble flows: ``hubble observe -o json|jsonpb`` and Hubble exporter files, one
``{"flow": {...}, "node_name", "time"}`` per line, or bare flow objects. Endpoint labels
(``k8s:key=value`` strings) become label maps, the verdict is normalised with the original
kept. ``node_status``, ``lost_events`` and ``agent_event`` lines are skipped and counted.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from ._driver import BadRecord, NotAnEvent
from .k8s_audit import as_object

NAME = "hubble"
FAMILY = "flows"

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
        "verdict": VERDICTS.get(str(verdict), "unknown") if verdict else None,
        "verdict_raw": verdict,
        "drop_reason": f.get("drop_reason_desc") or (str(f["drop_reason"]) if f.get("drop_reason") else None),
        "direction": str(f["traffic_direction"]).lower() if f.get("traffic_direction") not in (None, "TRAFFIC_DIRECTION_UNKNOWN") else None,
        "is_reply": _reply(f),
        "dst_names": [str(n) for n in f["destination_names"]] if isinstance(f.get("destination_names"), list) else None,
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
        row[f"{side}_namespace"] = ep.get("namespace") or None
        row[f"{side}_pod"] = ep.get("pod_name") or None
        row[f"{side}_workload"] = w.get("name")
        row[f"{side}_workload_kind"] = w.get("kind")
        row[f"{side}_labels"] = pod_labels(ep.get("labels"))
        row[f"{side}_service"] = f"{s.get('namespace')}/{s['name']}" if s.get("name") else None
    row["namespace"], row["pod"] = row["src_namespace"], row["src_pod"]
    row["workload"], row["workload_kind"], row["labels"] = row["src_workload"], row["src_workload_kind"], row["src_labels"]
    mapped = {"time", "verdict", "IP", "l4", "source", "destination", "node_name", "drop_reason", "drop_reason_desc",
              "traffic_direction", "is_reply", "reply", "destination_names", "source_service", "destination_service", "ethernet"}
    rest = {k: v for k, v in f.items() if k not in mapped}
    for side, ep in (("source", src), ("destination", dst)):
        if ep.get("identity") is not None:
            rest[f"{side}_identity"] = ep["identity"]
        reserved = [x for x in ep.get("labels") or [] if isinstance(x, str) and x.startswith("reserved:")]
        if reserved:
            rest[f"{side}_reserved"] = reserved
    row["extra"] = orjson.dumps(rest).decode() if rest else None
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


def _reply(f: dict[str, Any]) -> bool | None:
    # both the old 'reply' and the new wrapped 'is_reply' occur; absent means unknown, not false
    v = f.get("is_reply", f.get("reply"))
    if isinstance(v, dict):
        v = v.get("value", False)
    return v if isinstance(v, bool) else None
