"""Azure NSG flow logs (v1, v2) and VNet flow logs (v4), as stored and as SIEMs keep them.

Azure NSG flow logs (v1, v2) and VNet flow logs (v4): storage-blob ``PT1H.json`` bodies,
``{"records": [...]}`` (the driver unwraps them), each record holding flow tuples — CSV
inside strings. One row per tuple: NSG ``ts,src,dst,sport,dport,T|U,I|O,A|D[,state,
pkts→,bytes→,pkts←,bytes←]`` with epoch-second times; VNet ``ts(ms),src,dst,sport,dport,
proto number,I|O,B|C|E|D,X|NX,…``.

Where the tuples are: NSG records ``properties.flows[].flows[].flowTuples`` (Azure docs,
"Flow logging for network security groups — Log format"); VNet records
``flowRecords.flows[].flowGroups[].flowTuples`` (Azure docs, "VNet flow logs — Log format").
SIEMs that store one record per line may nest a VNet record's flows under ``properties``
(``properties.flows[].flowGroups[]`` or ``properties.flowRecords.flows[]``) and may store
``properties`` (or ``flowRecords``) as a JSON string: all are read; a group under
``flowGroups`` holds VNet tuples, a group under ``flows`` NSG tuples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ._values import add, as_list, as_object, count, epoch, json_text
from .aws_vpc_flow import PROTOCOLS
from .protocol import BadRecord, NotAnEvent

NAME = "azure-flow"
FAMILY = "flows"
sniff_lines = None  # a JSON format
fast = None  # no DuckDB mapping: every record is read per record

_CATEGORIES = ("NetworkSecurityGroupFlowEvent", "FlowLogFlowEvent")
_OPERATIONS = ("NetworkSecurityGroupFlowEvents", "FlowLogFlowEvent")
_PROTO = {"T": "tcp", "U": "udp"}


def sniff(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    if record.get("category") in _CATEGORIES or record.get("operationName") in _OPERATIONS:
        return True
    if "flowRecords" in record or "flowLogVersion" in record:
        return True
    # a SIEM's record without its category: flows with tuples under properties
    props = record.get("properties")
    if isinstance(props, str):
        return "flowTuples" in props and bool(_flows(_decoded(props, "properties")))
    return any(_groups_of(f) for f in _flows(as_object(props)))


def _decoded(v: Any, field: str) -> Any:
    """A JSON string some SIEMs store an object as, decoded; other values as they are."""
    if not isinstance(v, str):
        return v
    try:
        return orjson.loads(v)
    except orjson.JSONDecodeError:
        raise BadRecord(f"field {field}: text that is not a JSON object ({v[:60]!r})") from None


def _flows(container: Any) -> list[Any]:
    """The ``flows`` list of a record's properties or flowRecords (possibly one inside the other)."""
    c = as_object(container)
    flows = as_list(c.get("flows"))
    if not flows and "flowRecords" in c:
        flows = as_list(as_object(_decoded(c["flowRecords"], "properties.flowRecords")).get("flows"))
    return flows


def _groups_of(flow: Any) -> list[tuple[Any, Any, bool]]:
    """A flow's tuple groups as (rule, flowTuples, is VNet): VNet ``flowGroups[]`` carry their
    rule; NSG ``flows[]`` take the enclosing flow's rule."""
    f = as_object(flow)
    out = [(as_object(g).get("rule"), as_object(g).get("flowTuples"), True) for g in as_list(f.get("flowGroups"))]
    out += [(f.get("rule"), as_object(g).get("flowTuples"), False) for g in as_list(f.get("flows"))]
    return out


def rows(record: dict[str, Any], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    props = as_object(_decoded(record.get("properties"), "properties"))
    flows = (
        as_list(as_object(_decoded(record.get("flowRecords"), "flowRecords")).get("flows"))
        if "flowRecords" in record
        else _flows(props)
    )
    version = count(props.get("Version", props.get("version", 1)), "properties.Version") or 1
    groups: list[tuple[Any, list[Any], int]] = []  # (rule, tuples, version)
    for f in flows:
        for rule, tuples, vnet in _groups_of(f):
            groups.append((rule, _tuples(tuples), 4 if vnet else version))
    if not groups:
        raise NotAnEvent("Azure flow record without flow tuples")
    resource = record.get("resourceId") or record.get("targetResourceID")
    for rule, tuples, version in groups:
        for t in tuples:
            try:
                yield _tuple_row(t, rule, version, resource)
            except BadRecord as e:
                yield e  # one bad tuple: the record's other tuples are still rows


def _tuples(v: Any) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise BadRecord(f"field flowTuples: value {json_text(v)[:80]} is not a list")
    return v


def _tuple_row(t: Any, rule: Any, version: int, resource: Any) -> dict[str, Any]:
    if not isinstance(t, str):
        raise BadRecord(f"flow tuple {json_text(t)[:80]} is not text")
    f = t.split(",")
    if len(f) < 8:
        raise BadRecord(f"flow tuple has {len(f)} fields, expected at least 8: {t[:80]}")
    vnet = version >= 4
    state = f[7] if vnet else (f[8] if len(f) > 8 else None)
    decision = ("D" if state == "D" else "A") if vnet else f[7]
    counts = f[9:13]  # packets and bytes out, then in (NSG v2 and VNet alike)
    pk_out, by_out, pk_in, by_in = (counts + ["", "", "", ""])[:4]
    proto = PROTOCOLS.get(f[5], f[5]) if vnet else _PROTO.get(f[5], f[5].lower())
    extra = {"rule": rule, "state": state, "resource": resource}
    if vnet and len(f) > 8:
        extra["encryption"] = f[8]
    ts = epoch(f[0], "ms" if vnet else "s")  # VNet: epoch ms; NSG: epoch s
    return {
        "time": ts,
        "time_end": ts,
        "src_ip": f[1] or None,
        "dst_ip": f[2] or None,
        "src_port": f[3] or None,
        "dst_port": f[4] or None,
        "protocol": proto,
        "verdict": {"A": "allowed", "D": "denied"}.get(decision, "unknown"),
        "verdict_raw": decision,
        "direction": {"I": "ingress", "O": "egress"}.get(f[6]),
        # NSG v2 and VNet tuples are per flow, with counters for both directions (source to
        # destination, destination to source) and a flow state: the source opened the flow
        # (Azure docs, "Flow logging for network security groups — Log format"; "VNet flow
        # logs — Log format"). v1 tuples carry no state or counters: left unknown.
        "is_reply": False if vnet or version >= 2 else None,
        "bytes": add([count(by_out, "bytes sent"), count(by_in, "bytes received")]),
        "packets": add([count(pk_out, "packets sent"), count(pk_in, "packets received")]),
        "extra": json_text({k: v for k, v in extra.items() if v}),
    }
