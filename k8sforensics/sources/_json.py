"""JSON evidence: splitting a byte stream into documents (JSON lines, pretty-printed,
back-to-back, arrays) and documents into records (unwrapping envelopes).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import math
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..bodies import json_depth
from ._values import RawNumber
from .protocol import BadRecord, NotAnEvent

MAX_RECORD_BYTES = 64 << 20  # one record larger than this is quarantined, not buffered
EXCERPT_CHARS = 300
BOM = b"\xef\xbb\xbf"


class WrappedLine(BadRecord):
    """An envelope's message that is a text line, not JSON (``wrapper`` is the envelope's
    event holding it): bad input unless a line format reads the line (see ``message_line``)."""

    def __init__(self, reason: str, wrapper: dict[str, Any]) -> None:
        super().__init__(reason)
        self.wrapper = wrapper


def message_line(value: Any) -> str | None:
    """The text line a ``{"message": "<line>", …}`` wrapper holds, as ``iter_text_records``
    would give it (no line end), or None when ``value`` is not such a wrapper.

    SIEMs, Firehose and CloudWatch Logs re-export a line-oriented log (a VPC flow log line, a
    CSV row) as a JSON object whose ``message`` is the line, sometimes beside ``@timestamp``
    or host metadata: the line is the evidence, the metadata is the re-exporter's."""
    if not isinstance(value, dict):
        return None
    msg = value.get("message")
    if not isinstance(msg, str):
        return None
    line = msg.rstrip("\r\n").removeprefix("\ufeff")
    if not line.strip() or "\n" in line:
        return None  # nothing, or several lines: not one record of a line format
    return line


def _float(text: str) -> float | RawNumber:
    f = float(text)
    return f if math.isfinite(f) else RawNumber(text)


# The stdlib decoder, for what orjson refuses or reads lossily: numbers past a double (1e400,
# valid JSON) and the NaN/Infinity that Python and JavaScript tools write (not JSON, but the
# record around them is data) keep their text; integers past 64 bits keep every digit.
# DuckDB's fast path reads all of them the same way, so both paths give the same rows.
DECODER = json.JSONDecoder(parse_float=_float, parse_constant=RawNumber)
# orjson reads integers outside [-2**63, 2**64) as floats: 20 digits, or 19 after a minus
# (19 alone is common, nanosecond times, and always fits). A regex over every line costs
# ~25 us per KB; mapping digits to '0' and looking for a run of 19 first costs ~1 us.
_LONG_DIGITS = re.compile(rb"(?:-|[0-9])[0-9]{19}")
_LONG_DIGITS_TEXT = re.compile(r"(?:-|[0-9])[0-9]{19}")
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_RUN_OF_19 = b"0" * 19


def _long_digits(data: bytes | str) -> bool:
    if isinstance(data, str):
        return _LONG_DIGITS_TEXT.search(data) is not None
    return _RUN_OF_19 in data.translate(_DIGITS_TO_ZERO) and _LONG_DIGITS.search(data) is not None


def loads(data: bytes | str) -> Any:
    """One JSON document: orjson, or the stdlib (see ``DECODER``) where orjson would refuse
    a valid number or change one. Raises ``ValueError``."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if "recursion" in str(e).lower() or "depth" in str(e).lower():
            raise
        text = data if isinstance(data, str) else data.decode("utf-8")  # UnicodeDecodeError: a ValueError
        try:
            return _stdlib(text)
        except ValueError:
            raise e from None  # the orjson message says where
    if _long_digits(data):
        return _stdlib(data if isinstance(data, str) else data.decode("utf-8"))
    return value


# The stdlib decoder recurses (in C, then in Python for the hooks): near the interpreter's
# recursion limit it raises RecursionError, and a garbage-collected generator finalised on
# that exhausted stack becomes an "unraisable" exception. Its depth is measured first.
_STDLIB_MAX_DEPTH = 400


def _stdlib(text: str) -> Any:
    if json_depth(text) > _STDLIB_MAX_DEPTH:
        raise ValueError(f"record nested deeper than {_STDLIB_MAX_DEPTH} levels")
    return DECODER.decode(text)


@dataclass
class Doc:
    """One top-level JSON document (or a bad one): its record number and bytes."""

    number: int
    raw: bytes
    value: Any = None
    error: str | None = None


def _split_concatenated(text: bytes) -> list[Any] | None:
    """Several JSON values back to back on one line (Firehose writes these). None if not that."""
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if json_depth(s) > _STDLIB_MAX_DEPTH:  # see _stdlib
        return None
    dec = DECODER
    out = []
    i, n = 0, len(s)
    try:
        while i < n:
            while i < n and s[i] in " \t\r\n":
                i += 1
            if i >= n:
                break
            v, i = dec.raw_decode(s, i)
            out.append(v)
    except (ValueError, RecursionError):
        return None
    return out if len(out) > 1 else None


def _reason(e: BaseException) -> str:
    msg = str(e)
    if isinstance(e, RecursionError) or "recursion" in msg.lower() or "depth limit" in msg.lower():
        return "JSON nested too deeply to parse safely"
    if "utf-8" in msg.lower() or isinstance(e, UnicodeDecodeError):
        return "not valid UTF-8 text"
    return f"not valid JSON ({msg})"


def iter_documents(
    chunks: Iterator[bytes],
    *,
    max_record_bytes: int = MAX_RECORD_BYTES,
    layout: dict[str, str] | None = None,
    wanted: Callable[[int], bool] | None = None,
) -> Iterator[Doc]:
    """Split a byte stream into JSON documents.

    JSON lines is the fast case. When the first document spans several lines (a
    pretty-printed event, a ``[...]`` array, objects written back to back), the stream is
    read as a sequence of JSON values instead. Bad records come out as ``Doc.error``.
    ``layout["mode"]`` is set to ``"lines"`` or ``"values"``; ``wanted`` (JSON lines only)
    picks the record numbers to parse, the others are counted but not decoded.
    """
    layout = {} if layout is None else layout
    buf = b""
    first = True
    it = iter(chunks)
    for chunk in it:
        buf += chunk
        if first:
            if buf.startswith(BOM):
                buf = buf[3:]
            stripped = buf.lstrip()
            if not stripped:
                buf = b""  # only whitespace so far: nothing to keep
                continue
            first = False
            line_end = stripped.find(b"\n")
            first_line = stripped if line_end < 0 else stripped[:line_end]
            if stripped[:1] == b"[" or not _is_complete_json(first_line, line_end < 0):
                layout["mode"] = "values"
                yield from _iter_values(buf, it, max_record_bytes)
                return
        layout["mode"] = "lines"
        yield from _iter_lines_from(buf, it, max_record_bytes, wanted)
        return


def _is_complete_json(line: bytes, at_eof: bool) -> bool:
    try:
        orjson.loads(line)
        return True
    except orjson.JSONDecodeError:
        if at_eof:
            return True  # a single bad line: let the line reader quarantine it
        s = line.strip()
        # '{' alone, or a value that continues on the next line: a multi-line document.
        return not (s in (b"{", b"[") or s.endswith((b"{", b"[", b",", b":")))


def _iter_lines_from(
    buf: bytes, it: Iterator[bytes], max_record_bytes: int, wanted: Callable[[int], bool] | None = None
) -> Iterator[Doc]:
    number = 0
    skipping = False  # inside an over-long line we refuse to buffer
    while True:
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if skipping:
                skipping = False
                continue
            if not line.strip():
                continue
            number += 1
            if wanted is None or wanted(number):
                yield from _line_docs(number, line)
        rest = buf[start:]
        if len(rest) > max_record_bytes and not skipping:
            number += 1
            if wanted is None or wanted(number):
                yield Doc(number, rest[:EXCERPT_CHARS], error=f"record longer than {max_record_bytes} bytes; not read")
            skipping = True
            rest = b""
        elif skipping:
            rest = b""
        chunk = next(it, None)
        if chunk is None:
            if rest.strip() and not skipping:
                number += 1
                if wanted is None or wanted(number):
                    yield from _line_docs(number, rest)
            return
        buf = rest + chunk


def _line_docs(number: int, line: bytes) -> Iterator[Doc]:
    err: BaseException
    try:
        yield Doc(number, line, loads(line))
        return
    except (ValueError, RecursionError) as e:  # orjson's JSONDecodeError is a ValueError
        err = e
    parts = _split_concatenated(line) if b"}{" in line or b"} {" in line else None
    if parts is not None:
        # Back-to-back values on one line count as one record holding several documents.
        yield Doc(number, line, parts)
        return
    yield Doc(number, line, error=_reason(err))


def _iter_values(buf: bytes, it: Iterator[bytes], max_record_bytes: int) -> Iterator[Doc]:
    """Read a stream of JSON values: pretty-printed, concatenated, or one top-level array.

    The elements of a top-level array are documents of their own, so a huge
    ``gcloud logging read`` export streams instead of loading whole.
    """
    dec = DECODER
    text = _decode_prefix(buf)
    pending = buf[len(text.encode("utf-8")) :]
    pos = 0
    number = 0
    in_array = False
    exhausted = False

    def more() -> bool:
        nonlocal text, pending, pos, exhausted
        chunk = next(it, None)
        if chunk is None:
            exhausted = True
            if pending:
                # Trailing bytes that are not valid UTF-8: keep them visible as text.
                text = text[pos:] + pending.decode("utf-8", errors="replace")
                pending = b""
                pos = 0
            return False
        data = pending + chunk
        t = _decode_prefix(data)
        pending = data[len(t.encode("utf-8")) :]
        text = text[pos:] + t
        pos = 0
        return True

    while True:
        # skip whitespace and array punctuation
        while True:
            while pos < len(text) and (text[pos] in " \t\r\n" or (in_array and text[pos] == ",")):
                pos += 1
            if pos < len(text):
                break
            if not more():
                return
        if text[pos] == "\ufeff":
            pos += 1
            continue
        if text[pos] == "[" and not in_array and number == 0:
            in_array = True
            pos += 1
            continue
        if in_array and text[pos] == "]":
            in_array = False
            pos += 1
            continue
        while True:
            try:
                value, end = dec.raw_decode(text, pos)
                number += 1
                yield Doc(number, text[pos:end].encode("utf-8"), value)
                pos = end
                break
            except RecursionError:
                err = "JSON nested too deeply to parse safely"
            except ValueError as e:
                err = f"not valid JSON ({e})"
            if not exhausted and len(text) - pos < max_record_bytes:
                more()
                continue
            # A bad document: quarantine up to the next line that starts a new value.
            number += 1
            nxt = _resync(text, pos + 1)
            bad = text[pos:nxt]
            if len(text) - pos >= max_record_bytes and exhausted is False:
                err = f"record longer than {max_record_bytes} bytes; not read"
            yield Doc(number, bad.encode("utf-8", errors="replace")[: max(EXCERPT_CHARS, 1)], error=err)
            pos = nxt
            if pos >= len(text) and exhausted:
                return
            break


def _resync(text: str, start: int) -> int:
    """Where the next top-level value probably starts: a line beginning with '{' or '['."""
    for marker in ("\n{", "\n["):
        i = text.find(marker, start)
        if i >= 0:
            return i + 1
    return len(text)


def _decode_prefix(data: bytes) -> str:
    """Decode as much as is valid UTF-8, leaving an incomplete trailing sequence pending.

    Invalid bytes in the middle are replaced (U+FFFD) so the record holding them fails to
    parse or keeps a visible marker, rather than aborting the file.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start >= len(data) - 3 and e.reason == "unexpected end of data":
            return data[: e.start].decode("utf-8", errors="replace")
        return data.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- envelopes


@dataclass
class Record:
    """One record to map: a JSON object, plus context the envelope gave (e.g. cluster)."""

    number: int
    index: int | None
    value: Any
    context: dict[str, Any] = field(default_factory=dict)
    envelope: str | None = None
    error: str | None = None
    skip: str | None = None
    raw: bytes | None = None


def _eks_cluster(log_group: Any) -> str | None:
    # /aws/eks/<cluster>/cluster
    if isinstance(log_group, str):
        parts = log_group.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "aws" and parts[1] == "eks":
            return parts[2]
    return None


def _json_message(msg: Any) -> Any:
    if isinstance(msg, (dict, list)):
        return msg
    if not isinstance(msg, str):
        raise BadRecord("CloudWatch message is not text")
    try:
        return loads(msg)
    except (ValueError, RecursionError) as e:
        raise BadRecord(f"CloudWatch message is not JSON ({e})") from e


def unwrap(value: Any, context: dict[str, Any] | None = None) -> Iterator[tuple[Any, dict[str, Any], str | None]]:
    """Yield ``(record, context, envelope)`` for each record a document holds.

    Envelopes: JSON arrays, audit ``EventList`` (items inherit apiVersion), Azure
    ``{"records": [...]}``, CloudWatch ``filter-log-events``/``get-log-events`` pages,
    CloudWatch subscription ``DATA_MESSAGE`` payloads (``CONTROL_MESSAGE`` is skipped) and
    Lambda ``{"awslogs": {"data": base64(gzip)}}`` events. Anything else is a record.
    A record that cannot be unwrapped comes out as a ``BadRecord`` instance.
    """
    ctx = dict(context or {})
    if isinstance(value, list):
        for v in value:
            yield from unwrap(v, ctx)
        return
    if not isinstance(value, dict):
        yield BadRecord(f"expected a JSON object, got {type(value).__name__}"), ctx, None
        return
    kind = value.get("kind")
    if kind == "EventList" and isinstance(value.get("items"), list):
        api = value.get("apiVersion")
        for item in value["items"]:
            if isinstance(item, dict):
                if api and "apiVersion" not in item:
                    item = {**item, "apiVersion": api}
                if "kind" not in item:
                    item = {**item, "kind": "Event"}
            yield from _single(item, ctx, "EventList")
        return
    if isinstance(value.get("records"), list) and len(value) <= 3:
        for rec in value["records"]:
            yield from _single(rec, ctx, "records")
        return
    if "messageType" in value and "logEvents" in value:
        if value.get("messageType") != "DATA_MESSAGE":
            yield NotAnEvent(f"CloudWatch {value.get('messageType')}"), ctx, "cloudwatch-subscription"
            return
        c = {**ctx}
        cl = _eks_cluster(value.get("logGroup"))
        if cl:
            c["cluster"] = cl
        for ev in value.get("logEvents") or []:
            yield from _message(ev, c, "cloudwatch-subscription")
        return
    if (
        isinstance(value.get("events"), list)
        and value["events"]
        and all(isinstance(e, dict) and "message" in e for e in value["events"])
    ):
        for ev in value["events"]:
            yield from _message(ev, ctx, "cloudwatch-logs")
        return
    if isinstance(value.get("awslogs"), dict) and "data" in value["awslogs"]:
        try:
            payload = orjson.loads(gzip.decompress(base64.b64decode(value["awslogs"]["data"], validate=True)))
        except (binascii.Error, OSError, EOFError, zlib.error, orjson.JSONDecodeError, ValueError) as e:
            yield BadRecord(f"awslogs.data is not base64 gzip JSON ({e})"), ctx, "awslogs"
            return
        for rec, c, env in unwrap(payload, ctx):
            yield rec, c, env or "awslogs"
        return
    yield value, ctx, None


def _single(item: Any, ctx: dict[str, Any], envelope: str) -> Iterator[tuple[Any, dict[str, Any], str | None]]:
    if isinstance(item, dict):
        yield item, ctx, envelope
    else:
        yield BadRecord(f"{envelope} item is not a JSON object"), ctx, envelope


def _message(ev: Any, ctx: dict[str, Any], envelope: str) -> Iterator[tuple[Any, dict[str, Any], str | None]]:
    c = ctx
    if isinstance(ev, dict) and isinstance(ev.get("logStreamName"), str):
        c = {**ctx, "log_stream": ev["logStreamName"]}
    try:
        msg = _json_message(ev.get("message") if isinstance(ev, dict) else None)
    except BadRecord as e:
        # A text message (VPC flow logs delivered to CloudWatch Logs carry their space-separated
        # line as the message): bad input unless a line format of the family reads the line.
        line = message_line(ev)
        yield (WrappedLine(str(e), ev) if line is not None else e), c, envelope
        return
    if isinstance(msg, dict):
        yield msg, c, envelope
    else:
        yield BadRecord("CloudWatch message is not a JSON object"), c, envelope


def iter_records(docs: Iterable[Doc]) -> Iterator[Record]:
    """Documents → records, numbering records inside an envelope with ``index``."""
    for doc in docs:
        if doc.error is not None:
            yield Record(doc.number, None, None, error=doc.error, raw=doc.raw)
            continue
        try:
            items = list(unwrap(doc.value))
        except RecursionError:  # arrays nested as deep as the parser allowed: one bad record
            yield Record(doc.number, None, None, error="JSON nested too deeply to parse safely", raw=doc.raw)
            continue
        single = len(items) == 1
        for k, (rec, ctx, env) in enumerate(items):
            idx = None if single else k
            if isinstance(rec, NotAnEvent):
                yield Record(doc.number, idx, None, ctx, env, skip=str(rec), raw=doc.raw)
            elif isinstance(rec, BadRecord):
                # a wrapped text line keeps its wrapper as the value: a line format may read it
                wrapper = rec.wrapper if isinstance(rec, WrappedLine) else None
                yield Record(doc.number, idx, wrapper, ctx, env, error=str(rec), raw=doc.raw)
            else:
                yield Record(doc.number, idx, rec, ctx, env, raw=doc.raw if single else None)


def iter_text_records(chunks: Iterator[bytes], *, max_record_bytes: int = MAX_RECORD_BYTES) -> Iterator[Record]:
    """Line-oriented text (VPC flow logs, CSV exports): each non-blank line is a record whose
    value is the line's text; a line that is not UTF-8 is a bad record."""
    first = True
    for doc in _lines(chunks, max_record_bytes):
        raw = doc.raw
        if first:
            raw = raw[3:] if raw.startswith(BOM) else raw
            first = False
        if doc.error is not None:
            yield Record(doc.number, None, None, error=doc.error, raw=raw)
            continue
        try:
            yield Record(doc.number, None, raw.decode("utf-8").rstrip("\r"), raw=raw)
        except UnicodeDecodeError:
            yield Record(doc.number, None, None, error="not valid UTF-8 text", raw=raw)


def _lines(chunks: Iterator[bytes], max_record_bytes: int) -> Iterator[Doc]:
    """Non-blank lines as Docs (no parsing), numbered like JSON lines."""
    number = 0
    rest = b""
    skipping = False
    for chunk in chunks:
        buf = rest + chunk
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            line = buf[start:nl]
            start = nl + 1
            if skipping:
                skipping = False
                continue
            if line.strip():
                number += 1
                yield Doc(number, line)
        rest = buf[start:]
        if len(rest) > max_record_bytes and not skipping:
            number += 1
            yield Doc(number, rest[:EXCERPT_CHARS], error=f"record longer than {max_record_bytes} bytes; not read")
            skipping, rest = True, b""
        elif skipping:
            rest = b""
    if rest.strip() and not skipping:
        yield Doc(number + 1, rest)
