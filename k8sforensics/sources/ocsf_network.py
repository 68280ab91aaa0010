"""OCSF Network Activity records (class 4001).

OCSF Network Activity records (class 4001; the Security Lake form of VPC flow logs):
``src_endpoint``/``dst_endpoint`` with ip/port, ``connection_info.protocol_name``,
``disposition``/``action``, ``traffic.bytes|packets``, ``time``/``start_time``/``end_time`` in
epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._values import as_object, epoch, json_text
from .aws_vpc_flow import reply_from_tcp_flags
from .protocol import NotAnEvent

NAME = "ocsf-network"
FAMILY = "flows"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record


def sniff(record: Any) -> bool:
    return isinstance(record, dict) and (
        record.get("class_uid") == 4001
        or record.get("p_log_type") == "OCSF.NetworkActivity"
        or ("src_endpoint" in record and "dst_endpoint" in record)
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    status = record.get("status_code")
    if status in ("NODATA", "SKIPDATA"):
        raise NotAnEvent(f"OCSF {status} record")
    src, dst = as_object(record.get("src_endpoint")), as_object(record.get("dst_endpoint"))
    conn, traffic = as_object(record.get("connection_info")), as_object(record.get("traffic"))
    action = record.get("disposition") or record.get("action")
    start = epoch(record.get("start_time", record.get("time")), "ms")
    yield {
        "time": start,
        "time_end": epoch(record["end_time"], "ms") if "end_time" in record else start,
        "src_ip": src.get("ip"),
        "src_port": src.get("port"),
        "dst_ip": dst.get("ip"),
        "dst_port": dst.get("port"),
        "protocol": (conn["protocol_name"].lower() if isinstance(conn["protocol_name"], str) else conn["protocol_name"])
        if conn.get("protocol_name")
        else None,
        "verdict": {
            "allowed": "allowed",
            "accept": "allowed",
            "blocked": "denied",
            "reject": "denied",
            "denied": "denied",
        }.get(str(action).lower(), "unknown")
        if action
        else None,
        "verdict_raw": action,
        "direction": {1: "ingress", 2: "egress"}.get(d) if isinstance(d := conn.get("direction_id"), int) else None,
        # connection_info.tcp_flags and protocol_num carry the VPC record's tcp-flags and
        # protocol (OCSF 1.x Network Connection Information; Security Lake's VPC flow mapping)
        "is_reply": reply_from_tcp_flags(
            conn.get("tcp_flags"),
            conn.get("protocol_num")
            if conn.get("protocol_num") is not None
            else _tcp_number(conn.get("protocol_name")),
        ),
        "bytes": traffic.get("bytes"),
        "packets": traffic.get("packets"),
        "extra": json_text(
            {
                k: v
                for k, v in record.items()
                if k not in ("src_endpoint", "dst_endpoint", "traffic") and not k.startswith("p_")
            }
        ),
    }


def _tcp_number(name: Any) -> str | None:
    return "6" if isinstance(name, str) and name.lower() == "tcp" else None
