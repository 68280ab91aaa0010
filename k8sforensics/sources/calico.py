"""Calico Enterprise / Calico Cloud flow logs.

Calico Enterprise / Calico Cloud flow logs (``flows.log`` JSON lines, or the
Elasticsearch ``tigera_secure_ee_flows*`` documents): aggregated per window, endpoint
names with ``name_aggr`` prefixes, ``-`` for global or network endpoints, labels as
``{"labels": ["k=v", ...]}``. The same connection is reported by both ends (``reporter``).
``start_time``/``end_time`` are epoch seconds, ``@timestamp`` epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._values import add, as_object, count, epoch, json_text, text

NAME = "calico"
FAMILY = "flows"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record

VERDICTS = {"allow": "allowed", "deny": "denied", "pass": "allowed"}
_MAPPED = {
    "start_time",
    "end_time",
    "startTime",
    "endTime",
    "@timestamp",
    "proto",
    "action",
    "bytes_in",
    "bytes_out",
    "packets_in",
    "packets_out",
    "dest_domains",
    "reporter",
    "host",
}


def sniff(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and "reporter" in record
        and ("source_name_aggr" in record or "dest_name_aggr" in record)
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    start = epoch(record.get("start_time", record.get("startTime")), "s")
    end = epoch(record.get("end_time", record.get("endTime")), "s")
    if start is None and record.get("@timestamp") is not None:
        start = epoch(record["@timestamp"], "ms")  # Elasticsearch documents
    action = record.get("action")
    row: dict[str, Any] = {
        "time": start,
        "time_end": end if end is not None else start,
        "node": record.get("host"),
        "src_ip": record.get("source_ip"),
        "dst_ip": record.get("dest_ip"),
        "src_port": record.get("source_port"),
        "dst_port": record.get("dest_port"),
        "protocol": _lower(record.get("proto")),
        "verdict": VERDICTS.get(str(action), "unknown") if action else None,
        "verdict_raw": action,
        "direction": {"src": "egress", "dst": "ingress"}.get(str(record.get("reporter"))),
        # a record is a connection with both directions' counters (bytes_in/bytes_out,
        # packets_in/packets_out) and source_*/dest_* as it was opened (Calico docs, "Flow log
        # data types"): never the reply direction on its own
        "is_reply": False,
        "bytes": add([count(record.get("bytes_in"), "bytes_in"), count(record.get("bytes_out"), "bytes_out")]),
        "packets": add(
            [count(record.get("packets_in"), "packets_in"), count(record.get("packets_out"), "packets_out")]
        ),
        "dst_names": record.get("dest_domains"),
    }
    for side, prefix in (("src", "source"), ("dst", "dest")):
        name, aggr = record.get(f"{prefix}_name"), record.get(f"{prefix}_name_aggr")
        kind = record.get(f"{prefix}_type")
        ns = record.get(f"{prefix}_namespace")
        row[f"{side}_namespace"] = ns if ns not in (None, "-") else None
        row[f"{side}_pod"] = name if kind in (None, "wep") and name not in (None, "-") else None
        # the aggregated name (a pod-name prefix ending in '*') stands for the workload
        row[f"{side}_workload"] = aggr.rstrip("*").rstrip("-") if isinstance(aggr, str) and aggr.endswith("*") else None
        row[f"{side}_labels"] = _labels(record.get(f"{prefix}_labels"))
    svc_ns, svc = record.get("dest_service_namespace"), record.get("dest_service_name")
    row["dst_service"] = f"{text(svc_ns)}/{text(svc)}" if svc and svc != "-" else None
    row["namespace"], row["pod"], row["workload"], row["labels"] = (
        row["src_namespace"],
        row["src_pod"],
        row["src_workload"],
        row["src_labels"],
    )
    rest = {k: v for k, v in record.items() if k not in _MAPPED and not k.startswith(("source_", "dest_"))}
    rest.update(
        {
            k: record[k]
            for k in ("reporter", "source_type", "dest_type", "source_name_aggr", "dest_name_aggr")
            if k in record
        }
    )
    row["extra"] = json_text(rest) if rest else None
    yield row


def _labels(v: Any) -> dict[str, str] | None:
    items = as_object(v).get("labels") if isinstance(v, dict) else v
    if not isinstance(items, list):
        return None
    out = {}
    for item in items:
        k, sep, val = (text(item) or "").partition("=")
        if sep:
            out[k] = val
    return out or None


def _lower(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v
