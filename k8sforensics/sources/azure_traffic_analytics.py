"""Azure Traffic Analytics exports (CSV).

Azure Traffic Analytics exports (``AzureNetworkAnalytics_CL``, Log Analytics CSV): one
row per aggregated flow with ``FlowStartTime``/``FlowEndTime`` (UTC, no zone), ``SrcIP``,
``DestIP``, ``DestPort``, ``L4Protocol`` (T/U), ``FlowDirection`` (I/O) and allowed/denied
flow counts. For flows to public addresses the VM side is ``VMIPAddress`` and the remote
side is in ``PublicIPs`` (a Python-list string).
"""

from __future__ import annotations

import ast
import csv
import math
from collections.abc import Iterator, Mapping
from typing import Any

from ._values import json_text
from .protocol import BadRecord, NotAnEvent

NAME = "azure-traffic-analytics"
FAMILY = "flows"
sniff = None  # a text format: see sniff_lines
fast = None  # no DuckDB mapping: every line is read per record

_NEEDED = {"FlowStartTime", "FlowDirection", "L4Protocol"}


def sniff_lines(lines: list[str], context: Mapping[str, Any]) -> bool:
    header = next(csv.reader([lines[0]]))
    return set(header) >= _NEEDED and ("SrcIP" in header or "VMIPAddress" in header)


def _fields(record: str) -> list[str]:
    """One CSV line's fields. A bare CR inside a field (Log Analytics keeps one from the
    source) is data: the csv module would refuse it, so it is parked on a character the line
    does not hold and put back in its field."""
    if "\r" not in record:
        return next(csv.reader([record]), [])
    park = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in record)
    return [v.replace(park, "\r") for v in next(csv.reader([record.replace("\r", park)]), [])]


def rows(record: str, context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    values = _fields(record)
    if "header" not in context:
        context["header"] = values
        raise NotAnEvent("CSV header line")
    header = context["header"]
    if len(values) != len(header):
        raise BadRecord(f"{len(values)} values for the {len(header)} columns of the header")
    r = {k: (v if v != "" else None) for k, v in zip(header, values)}
    if r.get("FlowStartTime") is None and r.get("TimeGenerated") is None:
        raise BadRecord("no FlowStartTime")
    outbound = r.get("FlowDirection") == "O"
    remote = _first_ip(r.get("PublicIPs")) or r.get("AllExtIPs")
    vm = r.get("VMIPAddress")
    src = r.get("SrcIP") or (vm if outbound else remote)
    dst = r.get("DestIP") or (remote if outbound else vm)
    allowed = _num(r, "AllowedInFlows") + _num(r, "AllowedOutFlows")
    denied = _num(r, "DeniedInFlows") + _num(r, "DeniedOutFlows")
    mapped = {"FlowStartTime", "FlowEndTime", "SrcIP", "DestIP", "DestPort", "L4Protocol", "FlowDirection"}
    rest = {k: v for k, v in r.items() if k not in mapped and v is not None and k}
    yield {
        "time": r.get("FlowStartTime") or r.get("TimeGenerated"),
        "time_end": r.get("FlowEndTime") or r.get("FlowStartTime"),
        "src_ip": src,
        "dst_ip": dst,
        "dst_port": r.get("DestPort"),  # '443.0' as exported; the driver types it
        "protocol": {"T": "tcp", "U": "udp"}.get(r.get("L4Protocol") or "", r.get("L4Protocol")),
        "verdict": "allowed" if allowed else ("denied" if denied else "unknown"),
        "verdict_raw": f"allowed={allowed:g} denied={denied:g}",
        "direction": {"I": "ingress", "O": "egress"}.get(r.get("FlowDirection") or ""),
        # Traffic Analytics aggregates NSG/VNet flows (opened by their source) to source →
        # destination:DestPort, the server's port (Azure docs, "Traffic analytics schema"):
        # every row is the initiator's side
        "is_reply": False,
        "extra": json_text(rest) if rest else None,
    }


def _first_ip(v: str | None) -> str | None:
    if not v:
        return None
    try:
        ips = ast.literal_eval(v)  # a literal list of strings, never evaluated as code
    except (ValueError, SyntaxError):
        return v.split(",")[0].strip("[]' ") or None
    return str(ips[0]) if isinstance(ips, list) and ips else None


def _num(r: dict[str, str | None], key: str) -> float:
    # flow counts decide the verdict: a count that is not a finite number makes the row bad
    v = r.get(key)
    if not v:
        return 0.0
    try:
        f = float(v)
    except ValueError:
        raise BadRecord(f"field {key}: value {v[:80]!r} is not a number") from None
    if not math.isfinite(f):
        raise BadRecord(f"field {key}: value {v[:80]!r} is not a finite number")
    return f
