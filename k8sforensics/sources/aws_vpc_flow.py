"""AWS VPC Flow Logs: any field order from the header; JSON re-exports.

AWS VPC Flow Logs: space-separated text, the default v2 format or any custom field order
(v3–v8 fields: pkt-srcaddr/pkt-dstaddr, flow-direction, traffic-path, ECS, reject-reason …)
taken from the header line S3 delivery writes first; ``-`` is null; NODATA/SKIPDATA records
are skipped and counted (SKIPDATA means AWS dropped records in that window). Also the JSON
form SIEMs re-export (camelCase keys, e.g. Panther's AWS.VPCFlow).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ._driver import BadRecord, NotAnEvent
from ._values import as_int, epoch, json_text, text

NAME = "aws-vpc-flow"
FAMILY = "flows"

DEFAULT_V2 = ["version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "action", "log-status"]
FIELDS = frozenset(
    DEFAULT_V2
    + ["vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr", "region", "az-id", "sublocation-type", "sublocation-id", "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path", "ecs-cluster-arn", "ecs-cluster-name", "ecs-container-instance-arn", "ecs-container-instance-id", "ecs-container-id", "ecs-second-container-id", "ecs-service-name", "ecs-task-definition-arn", "ecs-task-arn", "ecs-task-id", "reject-reason"]
)
PROTOCOLS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "icmpv6", "132": "sctp", "47": "gre", "50": "esp"}
VERDICTS = {"ACCEPT": "allowed", "REJECT": "denied"}
# camelCase keys of JSON re-exports → the field names of the text format
_CAMEL = {
    "version": "version", "accountId": "account-id", "interfaceId": "interface-id", "srcAddr": "srcaddr", "dstAddr": "dstaddr",
    "srcPort": "srcport", "dstPort": "dstport", "protocol": "protocol", "packets": "packets", "bytes": "bytes",
    "start": "start", "end": "end", "action": "action", "status": "log-status", "logStatus": "log-status",
    "vpcId": "vpc-id", "subNetId": "subnet-id", "subnetId": "subnet-id", "instanceId": "instance-id", "tcpFlags": "tcp-flags",
    "type": "type", "pktSrcAddr": "pkt-srcaddr", "pktDstAddr": "pkt-dstaddr", "region": "region", "azId": "az-id",
    "flowDirection": "flow-direction", "trafficPath": "traffic-path", "pktSrcAwsService": "pkt-src-aws-service",
    "pktDstAwsService": "pkt-dst-aws-service",
}


def _is_header(tokens: list[str]) -> bool:
    return bool(tokens) and all(t in FIELDS for t in tokens) and ("srcaddr" in tokens or "interface-id" in tokens)


def sniff_lines(lines: list[str]) -> bool:
    first = _strip_comment(lines[0]).split()
    if _is_header(first):
        return True
    # no header (CloudWatch delivery): only the default v2 layout can be recognised
    return len(first) == 14 and first[0] == "2" and first[-1] in ("OK", "NODATA", "SKIPDATA")


def sniff(record: Any) -> bool:
    """The JSON re-export: camelCase flow-log keys."""
    return isinstance(record, dict) and (
        record.get("p_log_type") == "AWS.VPCFlow" or ("srcAddr" in record and "dstAddr" in record)
    )


def rows(record: Any, context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if isinstance(record, dict):
        fields: dict[str, str | None] = {
            _CAMEL.get(k, k): (None if v is None or v in ("-", "null") else text(v)) for k, v in record.items() if not k.startswith("p_")
        }
    else:
        tokens = _strip_comment(record).split()
        if "fields" not in context:
            if _is_header(tokens):
                context["fields"] = tokens
                raise NotAnEvent("VPC flow log header line")
            context["fields"] = DEFAULT_V2
        names: list[str] = context["fields"]
        if _is_header(tokens):
            context["fields"] = tokens  # concatenated S3 objects: a new header starts a new layout
            raise NotAnEvent("VPC flow log header line")
        if len(tokens) != len(names):
            raise BadRecord(f"{len(tokens)} values for the {len(names)} fields of the header")
        fields = {n: (None if v == "-" else v) for n, v in zip(names, tokens)}
    yield flow_row(fields)


def flow_row(f: dict[str, str | None]) -> dict[str, Any]:
    status = f.get("log-status")
    if status in ("NODATA", "SKIPDATA"):
        raise NotAnEvent(f"VPC {status} record" + (" (AWS dropped flow records in this window)" if status == "SKIPDATA" else ""))
    proto = f.get("protocol")
    action = f.get("action")
    used = {"srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr", "srcport", "dstport", "protocol", "packets", "bytes",
            "start", "end", "action", "flow-direction", "log-status"}
    rest: dict[str, str | None] = {k: v for k, v in f.items() if k not in used and v is not None}
    # the packet's original addresses when logged: pods behind secondary ENI IPs and NAT
    for k in ("srcaddr", "dstaddr"):
        if f.get(f"pkt-{k}") and f.get(k) and f[f"pkt-{k}"] != f[k]:
            rest[f"interface-{k}"] = f[k]
    start = epoch(f.get("start"), "s")
    end = f.get("end")
    return {
        "time": start,
        "time_end": start if end is None or as_int(end) == 0 else epoch(end, "s"),  # end 0: a single packet
        "src_ip": f.get("pkt-srcaddr") or f.get("srcaddr"),
        "dst_ip": f.get("pkt-dstaddr") or f.get("dstaddr"),
        "src_port": f.get("srcport"),
        "dst_port": f.get("dstport"),
        "protocol": PROTOCOLS.get(proto, proto) if proto else None,
        "verdict": VERDICTS.get(action, "unknown") if action else None,
        "verdict_raw": action,
        "direction": f.get("flow-direction"),
        "is_reply": reply_from_tcp_flags(f.get("tcp-flags"), proto),
        "bytes": f.get("bytes"),
        "packets": f.get("packets"),
        "extra": json_text(rest) if rest else None,
    }


def reply_from_tcp_flags(flags: Any, protocol: Any) -> bool | None:
    """Which end wrote a TCP record, from the OR of its TCP flags over the window (AWS docs,
    "Flow log records — TCP flag sequence": FIN 1, SYN 2, RST 4, SYN-ACK 18; ACK is logged only
    with SYN): SYN-ACK (18, with FIN 19, with RST 22) is the responder's, SYN without ACK (2,
    3, 6) the initiator's. A record with neither (mid-connection, 0, FIN alone) says nothing."""
    if str(protocol) != "6" or flags is None or not re.fullmatch(r"[0-9]{1,9}", str(flags)):
        return None  # another value stays as written in extra; the direction stays unknown
    bits = int(str(flags))
    if not bits & 2:
        return None
    return bool(bits & 16)


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0]




# --------------------------------------------------------------------------- fast path
#
# Flow logs are large. DuckDB reads each line as text and the header's field order turns
# into positions; rows it cannot map (wrong field count, NODATA/SKIPDATA, the header itself)
# come out with _fast_ok = false and are redone per record, so the output is the same.
# Integers are cast only from plain digits (no rounding of '80.5', which the per-record path
# quarantines); the driver redoes a row whose ``_raw_<col>`` text did not cast, or whose value
# its column cannot hold. Times past year 5138 are not handed to to_timestamp (it would raise).

_INT = "(CASE WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,18}}') THEN CAST({v} AS BIGINT) END)"
_TIME = "to_timestamp(CASE WHEN abs({i}) < 100000000000 THEN {i} END)"


def fast_applies(records: list[Any]) -> bool:
    """Text files without '#' comments (the AWS docs' examples carry them)."""
    return bool(records) and all(isinstance(r, str) and "#" not in r for r in records)


def fast_query(source: str, head: list[Any], context: dict[str, Any] | None = None) -> str:
    """The DuckDB query for a text file; ``context`` is the file context (``vpc_fields``: the
    field order the user named for a headerless file)."""
    lines = [r for r in head if isinstance(r, str)]
    first = lines[0].split() if lines else []
    names = first if _is_header(first) else DEFAULT_V2
    pos = {n: i + 1 for i, n in enumerate(names)}

    def f(name: str) -> str:
        return f"nullif(_f[{pos[name]}], '-')" if name in pos else "NULL::VARCHAR"

    used = {"srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr", "srcport", "dstport", "protocol", "packets", "bytes",
            "start", "end", "action", "flow-direction", "log-status"}
    # extra: the other fields as a JSON object, nulls left out (concat_ws skips NULLs)
    parts = [f"CASE WHEN {f(n)} IS NOT NULL THEN '\"{n}\":' || to_json({f(n)}) END" for n in names if n not in used]
    for k in ("srcaddr", "dstaddr"):
        if f"pkt-{k}" in pos and k in pos:
            parts.append(
                f"CASE WHEN {f('pkt-' + k)} IS NOT NULL AND {f(k)} IS NOT NULL AND {f('pkt-' + k)} <> {f(k)} "
                f"THEN '\"interface-{k}\":' || to_json({f(k)}) END"
            )
    extra = f"nullif('{{' || concat_ws(',', {', '.join(parts)}) || '}}', '{{}}')" if parts else "NULL::VARCHAR"
    protocols = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in PROTOCOLS.items())
    start, end = _INT.format(v=f("start")), _INT.format(v=f("end"))
    return f"""
    SELECT
        {_TIME.format(i=start)} AS time,
        {_TIME.format(i=f"coalesce(nullif({end}, 0), {start})")} AS time_end,
        coalesce({f('pkt-srcaddr')}, {f('srcaddr')}) AS src_ip,
        coalesce({f('pkt-dstaddr')}, {f('dstaddr')}) AS dst_ip,
        {_INT.format(v=f('srcport'))} AS src_port,
        {_INT.format(v=f('dstport'))} AS dst_port,
        {f('srcport')} AS _raw_src_port,
        {f('dstport')} AS _raw_dst_port,
        {f('bytes')} AS _raw_bytes,
        {f('packets')} AS _raw_packets,
        CASE {f('protocol')} {protocols} ELSE {f('protocol')} END AS protocol,
        CASE WHEN {f('action')} IS NULL THEN NULL WHEN {f('action')} = 'ACCEPT' THEN 'allowed'
             WHEN {f('action')} = 'REJECT' THEN 'denied' ELSE 'unknown' END AS verdict,
        {f('action')} AS verdict_raw,
        {f('flow-direction')} AS direction,
        -- reply_from_tcp_flags: SYN with ACK (18) is the responder's record, SYN alone the initiator's
        CASE WHEN {f('protocol')} = '6' AND regexp_full_match({f('tcp-flags')}, '[0-9]{{1,9}}')
                  AND (TRY_CAST({f('tcp-flags')} AS BIGINT) & 2) = 2
             THEN (TRY_CAST({f('tcp-flags')} AS BIGINT) & 16) = 16 END AS is_reply,
        {_INT.format(v=f('bytes'))} AS bytes,
        {_INT.format(v=f('packets'))} AS packets,
        {extra} AS extra,
        len(_f) = {len(names)} AND coalesce({f('log-status')}, '') NOT IN ('NODATA', 'SKIPDATA')
            AND _f[1] NOT IN ({', '.join("'" + n + "'" for n in ("version", *names[:1]))})
            AND {start} IS NOT NULL AND ({f('end')} IS NULL OR {end} IS NOT NULL) AS _fast_ok
    FROM (
        -- a plain split unless the line has runs of blanks (seen in the AWS docs' examples)
        SELECT CASE WHEN contains(_l, '  ') OR contains(_l, chr(9)) THEN string_split(regexp_replace(_l, '\\s+', ' ', 'g'), ' ')
                    ELSE string_split(_l, ' ') END AS _f
        FROM (SELECT trim(line, ' ' || chr(9) || chr(13)) AS _l FROM {source} WHERE line IS NOT NULL)
        WHERE _l <> ''
    )
    """
