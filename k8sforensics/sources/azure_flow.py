"""Azure NSG flow logs (v1, v2) and VNet flow logs (v4).

Azure NSG flow logs (v1, v2) and VNet flow logs (v4): storage-blob ``PT1H.json`` bodies,
``{"records": [...]}`` (the driver unwraps them), each record holding flow tuples — CSV
inside strings. One row per tuple: NSG ``ts,src,dst,sport,dport,T|U,I|O,A|D[,state,
pkts→,bytes→,pkts←,bytes←]`` with epoch-second times; VNet ``ts(ms),src,dst,sport,dport,
proto number,I|O,B|C|E|D,X|NX,…``.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from ._driver import BadRecord, NotAnEvent
from ._values import as_int, as_object
from .aws_vpc_flow import PROTOCOLS

NAME = "azure-flow"
FAMILY = "flows"

_CATEGORIES = ("NetworkSecurityGroupFlowEvent", "FlowLogFlowEvent")
_PROTO = {"T": "tcp", "U": "udp"}


def sniff(record: Any) -> bool:
    return isinstance(record, dict) and (
        record.get("category") in _CATEGORIES or "flowRecords" in record or "flowLogVersion" in record
    )


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    props = as_object(record.get("properties"))
    groups: list[tuple[Any, list[Any], int]] = []  # (rule, tuples, version)
    if "flowRecords" in record:  # VNet flow logs
        for f in as_object(record["flowRecords"]).get("flows") or []:
            for g in as_object(f).get("flowGroups") or []:
                groups.append((as_object(g).get("rule"), as_object(g).get("flowTuples") or [], 4))
    else:
        version = int(props.get("Version", 1) or 1)
        for f in props.get("flows") or []:
            for inner in as_object(f).get("flows") or []:
                groups.append((as_object(f).get("rule"), as_object(inner).get("flowTuples") or [], version))
    if not groups:
        raise NotAnEvent("Azure flow record without flow tuples")
    resource = record.get("resourceId") or record.get("targetResourceID")
    for rule, tuples, version in groups:
        for t in tuples:
            yield _tuple_row(str(t), rule, version, resource)


def _tuple_row(t: str, rule: str | None, version: int, resource: Any) -> dict[str, Any]:
    f = t.split(",")
    if len(f) < 8:
        raise BadRecord(f"flow tuple has {len(f)} fields, expected at least 8: {t[:80]}")
    vnet = version >= 4
    ts = int(f[0])
    state = f[7] if vnet else (f[8] if len(f) > 8 else None)
    decision = ("D" if state == "D" else "A") if vnet else f[7]
    counts = f[9:13] if vnet else f[9:13]
    pk_out, by_out, pk_in, by_in = (counts + ["", "", "", ""])[:4]
    proto = PROTOCOLS.get(f[5], f[5]) if vnet else _PROTO.get(f[5], f[5].lower())
    extra = {"rule": rule, "state": state, "resource": resource}
    if vnet and len(f) > 8:
        extra["encryption"] = f[8]
    return {
        "time": ts * 1_000_000 if vnet else ts * 1_000_000_000,  # VNet: epoch ms; NSG: epoch s
        "time_end": ts * 1_000_000 if vnet else ts * 1_000_000_000,
        "src_ip": f[1] or None,
        "dst_ip": f[2] or None,
        "src_port": as_int(f[3]),
        "dst_port": as_int(f[4]),
        "protocol": proto,
        "verdict": {"A": "allowed", "D": "denied"}.get(decision, "unknown"),
        "verdict_raw": decision,
        "direction": {"I": "ingress", "O": "egress"}.get(f[6]),
        "bytes": _sum(by_out, by_in),
        "packets": _sum(pk_out, pk_in),
        "extra": orjson.dumps({k: v for k, v in extra.items() if v}).decode(),
    }




def _sum(a: str, b: str) -> int | None:
    vals = [x for x in (as_int(a), as_int(b)) if x is not None]
    return sum(vals) if vals else None
