"""AWS VPC Flow Logs: any field order from the header; the documented layouts without a
header; JSON renditions.

AWS VPC Flow Logs: space-separated text, the default v2 format or any custom field order
(v3–v8 fields: pkt-srcaddr/pkt-dstaddr, flow-direction, traffic-path, ECS, reject-reason …)
taken from the header line S3 delivery writes first; ``-`` is null; NODATA/SKIPDATA records
are skipped and counted (SKIPDATA means AWS dropped records in that window).

Without a header (CloudWatch Logs delivery, SIEM exports) a line is read in a documented
layout only when its field count, its version and the shape of every value fit it: the
default format (version 2, 14 fields) or all the fields up to version 3, 4, 5, 7 or 8 in the
order of the AWS VPC user guide's "Flow log records — Available fields" table. Any other
line is quarantined with a hint to name the fields (``--vpc-fields "version account-id …"``,
``read_flows(..., vpc_fields=[...])``; the file context's ``vpc_fields``). A custom format
that only reorders the fields of a documented layout cannot be told from it by the values:
the header (S3) or ``vpc_fields`` settles it.

Also the JSON objects SIEMs and Firehose re-exports write, one per record, with the field
names hyphenated (``account-id``), in snake_case (``account_id``) or in camelCase
(``accountId``, Panther's AWS.VPCFlow); numbers as numbers, text or integral floats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._values import as_int, epoch, json_text, text
from .protocol import BadRecord, FastPath, NotAnEvent

NAME = "aws-vpc-flow"
FAMILY = "flows"

# AWS VPC user guide, "Flow log records — Available fields": each field with the version that
# introduced it, in the table's order. The default format is the version-2 fields in this
# order; a custom format's records carry "the highest version among the specified fields".
FIELDS_BY_VERSION: dict[int, list[str]] = {
    2: [
        "version",
        "account-id",
        "interface-id",
        "srcaddr",
        "dstaddr",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "action",
        "log-status",
    ],
    3: ["vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr"],
    4: ["region", "az-id", "sublocation-type", "sublocation-id"],
    5: ["pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path"],
    7: [
        "ecs-cluster-arn",
        "ecs-cluster-name",
        "ecs-container-instance-arn",
        "ecs-container-instance-id",
        "ecs-container-id",
        "ecs-second-container-id",
        "ecs-service-name",
        "ecs-task-definition-arn",
        "ecs-task-arn",
        "ecs-task-id",
    ],
    8: ["reject-reason"],
}
DEFAULT_V2 = FIELDS_BY_VERSION[2]
# later additions to the same table; known as names (a header, vpc_fields), not as a layout
LATER_FIELDS = ["resource-id", "encryption-status"]
FIELDS = frozenset([n for names in FIELDS_BY_VERSION.values() for n in names] + LATER_FIELDS)


def _all_fields_up_to(version: int) -> list[str]:
    return [n for v, names in FIELDS_BY_VERSION.items() if v <= version for n in names]


# The layouts a headerless line may be in, by (field count, version value): the default
# format and "all fields" of each version. The counts differ (14, 21, 25, 29, 39, 40), so a
# line's count and version name at most one layout.
LAYOUTS: dict[tuple[int, str], list[str]] = {
    (len(_all_fields_up_to(v)), str(v)): _all_fields_up_to(v) for v in FIELDS_BY_VERSION
}

PROTOCOLS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "icmpv6", "132": "sctp", "47": "gre", "50": "esp"}
VERDICTS = {"ACCEPT": "allowed", "REJECT": "denied"}

# The shape each value of a headerless line must have for a documented layout to be taken
# (values as the field table describes them; '-' is "not applicable", allowed everywhere but
# in version and log-status). RE2 and Python read these alike: the fast path checks the same.
_IP = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"
_ARN = r"arn:[a-z0-9-]+:[a-z0-9-]+:\S*"
SHAPES: dict[str, str] = {
    "account-id": r"[0-9]{12}|unknown",
    "interface-id": r"[a-z]+-[0-9A-Za-z-]+",
    "srcaddr": _IP,
    "dstaddr": _IP,
    "pkt-srcaddr": _IP,
    "pkt-dstaddr": _IP,
    "srcport": r"[0-9]{1,5}",
    "dstport": r"[0-9]{1,5}",
    "protocol": r"[0-9]{1,3}",
    "packets": r"[0-9]{1,19}",
    "bytes": r"[0-9]{1,19}",
    "start": r"[0-9]{1,12}",
    "end": r"[0-9]{1,12}",
    "action": r"ACCEPT|REJECT",
    "log-status": r"OK|NODATA|SKIPDATA",
    "vpc-id": r"vpc-[0-9a-f]+",
    "subnet-id": r"subnet-[0-9a-f]+",
    "instance-id": r"i-[0-9a-f]+",
    "tcp-flags": r"[0-9]{1,3}",
    "type": r"IPv4|IPv6|EFA",
    "region": r"[a-z]{2}(?:-[a-z]+)+-[0-9]+",
    "az-id": r"[a-z]+[0-9]*-az[0-9]+",
    "sublocation-type": r"wavelength|outpost|localzone",
    "pkt-src-aws-service": r"[A-Z0-9_]+",
    "pkt-dst-aws-service": r"[A-Z0-9_]+",
    "flow-direction": r"ingress|egress",
    "traffic-path": r"[0-9]{1,2}",
    "ecs-cluster-arn": _ARN,
    "ecs-container-instance-arn": _ARN,
    "ecs-task-definition-arn": _ARN,
    "ecs-task-arn": _ARN,
}
_NEVER_DASH = ("version", "log-status")
_INT_FIELDS = frozenset(
    {"version", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "tcp-flags", "traffic-path"}
)
_DIGITS = re.compile(r"[0-9]{1,12}")
_SHAPE_RE = {n: re.compile(f"(?:{p})" + ("" if n in _NEVER_DASH else "|-")) for n, p in SHAPES.items()}

HINT = (
    'if the flow log has a custom format, name its fields in order: --vpc-fields "version account-id interface-id …" '
    "(read_flows(..., vpc_fields=[...]))"
)


def _key(name: str) -> str:
    """One spelling for a field name: ``account-id``, ``account_id`` and ``accountId`` alike."""
    return name.replace("-", "").replace("_", "").lower()


_BY_KEY = {_key(n): n for n in FIELDS}
# Panther's AWS.VPCFlow calls log-status "status" (only read so inside a VPC record)
_ALIASES = {"status": "log-status"}


def vpc_field_names(fields: str | Sequence[str]) -> list[str]:
    """The field order a user names for a headerless file, in the flow log's own spelling.

    Takes a list or one text: names separated by blanks or commas, or the flow log's format
    string as AWS returns it (``${version} ${account-id} …``); snake_case and camelCase names
    are read as the hyphenated ones. Raises ``ValueError`` naming any unknown or repeated name."""
    items = re.split(r"[\s,]+", fields) if isinstance(fields, str) else [str(f) for f in fields]
    names = [re.sub(r"^\$\{(.*)\}$", r"\1", f.strip()) for f in items if f.strip()]
    if not names:
        raise ValueError("vpc_fields names no field")
    unknown = [n for n in names if _key(n) not in _BY_KEY]
    if unknown:
        raise ValueError(
            f"vpc_fields: unknown VPC flow log field(s) {', '.join(repr(n) for n in unknown)}; "
            f"known (AWS VPC user guide, 'Flow log records — Available fields'): {' '.join(sorted(FIELDS))}"
        )
    out = [_BY_KEY[_key(n)] for n in names]
    repeated = sorted({n for n in out if out.count(n) > 1})
    if repeated:
        raise ValueError(f"vpc_fields: field(s) named twice: {', '.join(repeated)}")
    return out


def _is_header(tokens: list[str]) -> bool:
    return bool(tokens) and all(t in FIELDS for t in tokens) and ("srcaddr" in tokens or "interface-id" in tokens)


def _misfits(names: list[str], tokens: list[str]) -> list[str]:
    """The values of a headerless line that do not have the shape of their field in ``names``."""
    bad = [f"{n}={v[:40]!r}" for n, v in zip(names, tokens) if n in _SHAPE_RE and not _SHAPE_RE[n].fullmatch(v)]
    values = dict(zip(names, tokens))
    start, end = values.get("start", "-"), values.get("end", "-")
    if _DIGITS.fullmatch(start) and _DIGITS.fullmatch(end) and int(end) != 0 and int(end) < int(start):
        bad.append(f"end {end} before start {start}")
    return bad


def documented_layout(tokens: list[str]) -> list[str]:
    """The documented layout a headerless line is in; ``BadRecord`` with the hint when none fits."""
    version = tokens[0] if tokens else ""
    names = LAYOUTS.get((len(tokens), version))
    if names is None:
        raise BadRecord(
            f"no header, and no documented VPC flow log layout has {len(tokens)} values with version {version[:20]!r}; {HINT}"
        )
    bad = _misfits(names, tokens)
    if bad:
        raise BadRecord(
            f"no header, and the values do not fit the documented version-{version} layout of {len(names)} fields "
            f"({', '.join(bad[:4])}); {HINT}"
        )
    return names


def _fits_a_layout(tokens: list[str]) -> bool:
    names = LAYOUTS.get((len(tokens), tokens[0] if tokens else ""))
    return names is not None and not _misfits(names, tokens)


_LOOKS_IP = re.compile(_IP)


def _looks_like_flow_log(tokens: list[str]) -> bool:
    """A line of some VPC flow log layout: a log status and an interface id or two addresses,
    and nothing of CSV or JSON about it (so an unknown layout is quarantined with the hint
    instead of refused as an unknown file)."""
    if len(tokens) < 5 or any(c in t for t in tokens for c in ',"{}'):
        return False
    status = any(t in ("OK", "NODATA", "SKIPDATA") for t in tokens)
    where = any(t.startswith("eni-") for t in tokens) or sum(1 for t in tokens if _LOOKS_IP.fullmatch(t)) >= 2
    return status and where


def sniff_lines(lines: list[str], context: Mapping[str, Any]) -> bool:
    """A header, a documented layout, the ``vpc_fields`` count, or lines that look like some
    flow log layout (those are then quarantined with the hint to name the fields)."""
    first = _strip_comment(lines[0]).split()
    if _is_header(first) or _fits_a_layout(first):
        return True
    if context and context.get("vpc_fields"):
        try:
            if len(first) == len(vpc_field_names(context["vpc_fields"])):
                return True
        except ValueError:
            pass  # claimed below if it looks like a flow log: each line then says what is wrong with the names
    sample = [t for t in (_strip_comment(ln).split() for ln in lines) if t]
    return bool(sample) and all(_looks_like_flow_log(t) for t in sample)


def sniff(record: Any) -> bool:
    """A JSON rendition: both addresses and another VPC field, or an interface with a log
    status, in any of the three spellings; or Panther's log type."""
    if not isinstance(record, dict):
        return False
    if record.get("p_log_type") == "AWS.VPCFlow":
        return True
    names = {_BY_KEY.get(_key(k)) for k in record if isinstance(k, str)}
    names.discard(None)
    return ({"srcaddr", "dstaddr"} <= names and len(names) >= 3) or {"interface-id", "log-status"} <= names


def _given_fields(context: dict[str, Any]) -> list[str] | None:
    if not context.get("vpc_fields"):
        return None
    if "_vpc_fields" not in context:
        try:
            context["_vpc_fields"] = vpc_field_names(context["vpc_fields"])
        except ValueError as e:
            context["_vpc_fields"] = str(e)
    given = context["_vpc_fields"]
    if isinstance(given, str):
        raise BadRecord(given)
    return given


def rows(record: Any, context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if isinstance(record, dict):
        fields = _json_fields(record)
    else:
        tokens = _strip_comment(record).split()
        if _is_header(tokens):
            context["fields"] = tokens  # a header (again, in concatenated S3 objects) sets the layout from here on
            raise NotAnEvent("VPC flow log header line")
        names = context.get("fields")
        given = None if names else _given_fields(context)
        if names is None and given is None:
            names = documented_layout(tokens)
        elif names is None:
            names = given
            if len(tokens) != len(names):
                raise BadRecord(f"{len(tokens)} values for the {len(names)} fields named in vpc_fields")
        elif len(tokens) != len(names):
            raise BadRecord(f"{len(tokens)} values for the {len(names)} fields of the header")
        fields = {n: (None if v == "-" else v) for n, v in zip(names, tokens)}
    yield flow_row(fields)


def _json_fields(record: dict[str, Any]) -> dict[str, str | None]:
    """A JSON rendition's fields under the text format's names, values as the text format
    writes them: an integral float (25238.0, "25238.0") is that integer; a fraction in an
    integer field is bad input, never rounded."""
    spelled = {k: _BY_KEY.get(_key(k)) for k in record if isinstance(k, str)}
    has_status = "log-status" in spelled.values()
    fields: dict[str, str | None] = {}
    for k, v in record.items():
        if not isinstance(k, str) or k.startswith("p_"):
            continue  # Panther's p_ fields are its own metadata, not the record's
        name = spelled.get(k) or (None if has_status else _ALIASES.get(k)) or k
        value = _json_value(name, k, v)
        if name in fields and fields[name] != value:
            raise BadRecord(f"field {name} given twice with different values ({k!r} = {text(v)!s:.40})")
        fields[name] = value
    return fields


def _json_value(name: str, key: str, v: Any) -> str | None:
    if v is None or v in ("-", "", "null"):
        return None
    if name in _INT_FIELDS and not isinstance(v, bool):
        number: float | None = None
        if isinstance(v, float):
            number = v
        elif isinstance(v, str) and re.fullmatch(
            r"\s*[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+)\s*", v
        ):
            number = float(v)
        if number is not None:
            if not math.isfinite(number) or not number.is_integer():
                raise BadRecord(f"field {key}: value {text(v)!s:.40} is not a whole number")
            return str(int(number))
    return text(v)


# --------------------------------------------------------------------------- the mapping
#
# Each canonical column is declared once, from the record's named fields: ``py`` maps one record
# (``flow_row``, the per-record path), ``sql`` gives the DuckDB expression the fast path selects
# (``fast_query``), side by side so the two cannot drift apart unseen; a test holds them equal
# over generated values of every field a column reads. A value goes into the row as the record
# has it and the driver types it (a port that is not a whole number is quarantined); the SQL
# casts only plain digits and names the field as ``raw``, so the driver redoes per record a row
# whose text did not cast. ``consumes``: the fields the column stands for, which ``extra`` leaves out.

_INT = "(CASE WHEN regexp_full_match({v}, '[+-]?[0-9]{{1,18}}') THEN CAST({v} AS BIGINT) END)"
# times past year 5138 are not handed to to_timestamp (it would raise): such a row is redone
_TIME = "to_timestamp(CASE WHEN abs({i}) < 100000000000 THEN {i} END)"

Fields = Mapping[str, "str | None"]
FieldSql = Callable[[str], str]  # a field's name → the SQL of its text (NULL for '-' or absent)


@dataclass(frozen=True)
class Column:
    """How one canonical column is read from the named fields, in Python and in SQL."""

    py: Callable[[Fields], Any]
    sql: Callable[[FieldSql, Sequence[str]], str]  # (field, the file's field order) → SQL
    consumes: tuple[str, ...] = ()
    raw: str | None = None  # the field whose text the driver checks a null typed value against


def _as_is(name: str) -> Column:
    return Column(py=lambda f: f.get(name), sql=lambda field, names: field(name), consumes=(name,))


def _whole(name: str) -> Column:
    """An integer field: its text to the row (the driver types it), plain digits cast in SQL."""
    return Column(
        py=lambda f: f.get(name), sql=lambda field, names: _INT.format(v=field(name)), consumes=(name,), raw=name
    )


def _packet_or_interface(side: str) -> Column:
    """The packet's original address when logged (pods behind secondary ENI IPs and NAT), else
    the interface's."""
    return Column(
        py=lambda f: f.get(f"pkt-{side}addr") or f.get(f"{side}addr"),
        sql=lambda field, names: f"coalesce({field(f'pkt-{side}addr')}, {field(f'{side}addr')})",
        consumes=(f"pkt-{side}addr", f"{side}addr"),
    )


def _named(name: str, table: Mapping[str, str], other: str | None) -> Column:
    """A code by its name in ``table``; another code as ``other`` (itself when None)."""

    def py(f: Fields) -> Any:
        v = f.get(name)
        return (table.get(v, v) if other is None else table.get(v, other)) if v else None

    def sql(field: FieldSql, names: Sequence[str]) -> str:
        v = field(name)
        whens = " ".join(f"WHEN {v} = '{k}' THEN '{t}'" for k, t in table.items())
        return f"CASE WHEN {v} IS NULL THEN NULL {whens} ELSE {v if other is None else repr(other)} END"

    return Column(py=py, sql=sql, consumes=(name,))


def _end_py(f: Fields) -> Any:
    end = f.get("end")
    return epoch(f.get("start"), "s") if end is None or as_int(end) == 0 else epoch(end, "s")  # end 0: a single packet


def _reply_sql(field: FieldSql, names: Sequence[str]) -> str:
    flags = field("tcp-flags")
    return (
        f"CASE WHEN {field('protocol')} = '6' AND regexp_full_match({flags}, '[0-9]{{1,9}}') AND (TRY_CAST({flags} AS BIGINT) & 2) = 2 "
        f"THEN (TRY_CAST({flags} AS BIGINT) & 16) = 16 END"
    )


def _extra_py(f: Fields) -> Any:
    rest: dict[str, str | None] = {k: v for k, v in f.items() if k not in CONSUMED and v is not None}
    for k in ("srcaddr", "dstaddr"):
        if f.get(f"pkt-{k}") and f.get(k) and f[f"pkt-{k}"] != f[k]:
            rest[f"interface-{k}"] = f[k]  # the interface's address, when the packet's differs
    return json_text(rest) if rest else None


def _extra_sql(field: FieldSql, names: Sequence[str]) -> str:
    # the other fields as a JSON object, nulls left out (concat_ws skips NULLs)
    parts = [
        f"CASE WHEN {field(n)} IS NOT NULL THEN '\"{n}\":' || to_json({field(n)}) END"
        for n in names
        if n not in CONSUMED
    ]
    for k in ("srcaddr", "dstaddr"):
        if f"pkt-{k}" in names and k in names:
            parts.append(
                f"CASE WHEN {field('pkt-' + k)} IS NOT NULL AND {field(k)} IS NOT NULL AND {field('pkt-' + k)} <> {field(k)} "
                f"THEN '\"interface-{k}\":' || to_json({field(k)}) END"
            )
    return f"nullif('{{' || concat_ws(',', {', '.join(parts)}) || '}}', '{{}}')" if parts else "NULL::VARCHAR"


MAPPING: dict[str, Column] = {
    "time": Column(
        py=lambda f: epoch(f.get("start"), "s"),
        sql=lambda field, names: _TIME.format(i=_INT.format(v=field("start"))),
        consumes=("start",),
        # a time SQL leaves null (out of range, not digits) is redone per record, which quarantines it
        raw="start",
    ),
    "time_end": Column(
        py=_end_py,
        consumes=("end",),
        sql=lambda field, names: _TIME.format(
            i=f"coalesce(nullif({_INT.format(v=field('end'))}, 0), {_INT.format(v=field('start'))})"
        ),
        raw="end",
    ),
    "src_ip": _packet_or_interface("src"),
    "dst_ip": _packet_or_interface("dst"),
    "src_port": _whole("srcport"),
    "dst_port": _whole("dstport"),
    "protocol": _named("protocol", PROTOCOLS, None),
    "verdict": _named("action", VERDICTS, "unknown"),
    "verdict_raw": _as_is("action"),
    "direction": _as_is("flow-direction"),
    # the TCP flags stay in extra as recorded: the reply flag is read from them, not instead of them
    "is_reply": Column(py=lambda f: reply_from_tcp_flags(f.get("tcp-flags"), f.get("protocol")), sql=_reply_sql),
    "bytes": _whole("bytes"),
    "packets": _whole("packets"),
    "extra": Column(py=_extra_py, sql=_extra_sql),
}
# log-status decides whether a record is an event at all (NODATA, SKIPDATA are skipped)
CONSUMED = frozenset({"log-status"}.union(*(c.consumes for c in MAPPING.values())))
_ROW = tuple((name, column.py) for name, column in MAPPING.items())  # flow_row's loop, without attribute look-ups


def flow_row(f: Mapping[str, str | None]) -> dict[str, Any]:
    """One record's fields (by their flow-log names, text, None for '-') → one ``flows`` row,
    through ``MAPPING``."""
    status = f.get("log-status")
    if status in ("NODATA", "SKIPDATA"):
        raise NotAnEvent(
            f"VPC {status} record" + (" (AWS dropped flow records in this window)" if status == "SKIPDATA" else "")
        )
    if f.get("start") is None:
        # the record's own time or none: a missing start is never replaced by another date
        raise BadRecord("field start: no timestamp in the record")
    return {name: py(f) for name, py in _ROW}


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
# come out with _fast_ok = false and are redone per record, so the output is the same. The
# columns are ``MAPPING``'s SQL: integers cast only from plain digits (no rounding of '80.5',
# which the per-record path quarantines).


# the characters str.split() takes for blanks that RE2's \s (space, \t, \n, \f, \r) does not,
# \n, \f and \r inside a line, and '#'
_NOT_SPLIT_ALIKE = (
    r"[#\n\x0b\x0c\r\x1c-\x1f\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
)


def _fast_applies(records: Sequence[Any], context: Mapping[str, Any]) -> bool:
    """Text files without '#' comments (the AWS docs' examples carry them) whose field order
    is known: a header, ``vpc_fields``, or a documented layout some line of the head fits."""
    return (
        bool(records)
        and all(isinstance(r, str) and "#" not in r for r in records)
        and _fast_layout(records, context)[0] is not None
    )


def _fast_layout(head: Sequence[Any], context: Mapping[str, Any]) -> tuple[list[str] | None, bool]:
    """The field order the fast path maps, and whether it is a guessed (documented) layout
    whose values the query must check as the per-record path does."""
    lines = [r.split() for r in head if isinstance(r, str)]
    first = lines[0] if lines else []
    if _is_header(first):
        return first, False
    if context and context.get("vpc_fields"):
        try:
            return vpc_field_names(context["vpc_fields"]), False
        except ValueError:
            return None, False
    return next((LAYOUTS[(len(t), t[0])] for t in lines if _fits_a_layout(t)), None), True


def fast_query(source: str, head: Sequence[Any], context: Mapping[str, Any]) -> str:
    """The DuckDB query for a text file; ``context`` is the file context (``vpc_fields``: the
    field order the user named for a headerless file). A line that the chosen field order
    does not map exactly as the per-record path would (another count, another version, a value
    of the wrong shape in a guessed layout) is handed to the per-record path."""
    names, guessed = _fast_layout(head, context)
    if names is None:  # nothing to map: every line goes the per-record way
        names, guessed = DEFAULT_V2, False
        checks = ["FALSE"]
    else:
        checks = []
    pos = {n: i + 1 for i, n in enumerate(names)}

    def f(name: str) -> str:
        return f"nullif(_f[{pos[name]}], '-')" if name in pos else "NULL::VARCHAR"

    if guessed:  # documented_layout, value by value: the same version, shapes and time order
        version = next(v for (_n, v), layout in LAYOUTS.items() if layout == names)
        checks.append(f"_f[1] = '{version}'")
        for n in names:
            if n in SHAPES:
                checks.append(f"regexp_full_match(_f[{pos[n]}], '{_SHAPE_RE[n].pattern}')")
        checks.append(
            f"NOT (regexp_full_match(_f[{pos['start']}], '{_DIGITS.pattern}') AND regexp_full_match(_f[{pos['end']}], '{_DIGITS.pattern}')"
            f" AND TRY_CAST(_f[{pos['end']}] AS BIGINT) <> 0 AND TRY_CAST(_f[{pos['end']}] AS BIGINT) < TRY_CAST(_f[{pos['start']}] AS BIGINT))"
        )

    # Python's split() takes more characters for blanks than RE2's \s, and '#' starts a comment
    # the per-record path strips: a line with either is redone
    checks.append(f"NOT regexp_matches(_l, '{_NOT_SPLIT_ALIKE}')")
    # A header further down (concatenated S3 objects) sets the field order from there on in the
    # per-record path: a file with one that is not this layout is read per record throughout.
    layout = " ".join(names)
    checks.append(
        f"(SELECT count(*) = 0 FROM (SELECT trim(line, ' ' || chr(9) || chr(13)) AS _l FROM {source} WHERE line IS NOT NULL) "
        # (a CASE: DuckDB would otherwise order the conditions by cost, and split every line)
        f"WHERE CASE WHEN left(_l, 1) BETWEEN 'a' AND 'z' THEN regexp_replace(_l, '\\s+', ' ', 'g') <> '{layout}' "
        f"AND list_has_all({sorted(FIELDS)!r}, string_split(regexp_replace(_l, '\\s+', ' ', 'g'), ' ')) ELSE false END)"
    )
    start, end = _INT.format(v=f("start")), _INT.format(v=f("end"))
    columns = [f"{column.sql(f, names)} AS {name}" for name, column in MAPPING.items()]
    columns += [f"{f(column.raw)} AS _raw_{name}" for name, column in MAPPING.items() if column.raw]
    select = ",\n        ".join(columns)
    return f"""
    SELECT
        {select},
        len(_f) = {len(names)} AND coalesce({f("log-status")}, '') NOT IN ('NODATA', 'SKIPDATA')
            AND _f[1] NOT IN ({", ".join("'" + n + "'" for n in sorted(FIELDS))})
            AND {start} IS NOT NULL AND ({f("end")} IS NULL OR {end} IS NOT NULL)
            {"".join(" AND " + c for c in checks)} AS _fast_ok
    FROM (
        -- a plain split unless the line has runs of blanks (seen in the AWS docs' examples)
        SELECT _l, CASE WHEN contains(_l, '  ') OR contains(_l, chr(9)) THEN string_split(regexp_replace(_l, '\\s+', ' ', 'g'), ' ')
                    ELSE string_split(_l, ' ') END AS _f
        FROM (SELECT trim(line, ' ' || chr(9) || chr(13)) AS _l FROM {source} WHERE line IS NOT NULL)
        WHERE _l <> ''
    )
    """


fast = FastPath(reads="lines", query=fast_query, applies=_fast_applies)
