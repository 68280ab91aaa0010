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
from typing import Any, Iterator

import orjson

from ._driver import BadRecord, NotAnEvent

NAME = "azure-traffic-analytics"
FAMILY = "flows"

_NEEDED = {"FlowStartTime", "FlowDirection", "L4Protocol"}


def sniff_lines(lines: list[str]) -> bool:
    header = next(csv.reader([lines[0]]))
    return _NEEDED <= set(header) and ("SrcIP" in header or "VMIPAddress" in header)


def rows(record: str, context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    values = next(csv.reader([record]))
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
    allowed = _num(r.get("AllowedInFlows")) + _num(r.get("AllowedOutFlows"))
    denied = _num(r.get("DeniedInFlows")) + _num(r.get("DeniedOutFlows"))
    mapped = {"FlowStartTime", "FlowEndTime", "SrcIP", "DestIP", "DestPort", "L4Protocol", "FlowDirection"}
    rest = {k: v for k, v in r.items() if k not in mapped and v is not None and k}
    yield {
        "time": r.get("FlowStartTime") or r.get("TimeGenerated"),
        "time_end": r.get("FlowEndTime") or r.get("FlowStartTime"),
        "src_ip": src,
        "dst_ip": dst,
        "dst_port": _port(r.get("DestPort")),
        "protocol": {"T": "tcp", "U": "udp"}.get(r.get("L4Protocol") or "", r.get("L4Protocol")),
        "verdict": "allowed" if allowed else ("denied" if denied else "unknown"),
        "verdict_raw": f"allowed={allowed:g} denied={denied:g}",
        "direction": {"I": "ingress", "O": "egress"}.get(r.get("FlowDirection") or ""),
        "extra": orjson.dumps(rest).decode() if rest else None,
    }


def _first_ip(v: str | None) -> str | None:
    if not v:
        return None
    try:
        ips = ast.literal_eval(v)  # a literal list of strings, never evaluated as code
    except (ValueError, SyntaxError):
        return v.split(",")[0].strip("[]' ") or None
    return str(ips[0]) if isinstance(ips, list) and ips else None


def _num(v: str | None) -> float:
    try:
        return float(v) if v else 0.0
    except ValueError:
        return 0.0


def _port(v: str | None) -> int | None:
    try:
        return int(float(v)) if v else None
    except ValueError:
        return None
