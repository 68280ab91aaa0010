"""The machinery every format shares: files, decompression, JSON layouts, envelopes,
batching, provenance and the bad-input policy.

A format module only says what a record of its kind looks like (``sniff``) and how one
record becomes canonical rows (``rows``). Everything else lives here, once.

Accounting: every record read ends in exactly one of four places, per file —
``rows`` (a table row), ``merged`` (another stage of an audit request already kept),
``skipped`` (a valid record that is not an event of the table, e.g. a Falco stats
snapshot or a CloudWatch control message; counted by reason) or ``quarantined`` (bad
input, one quarantine entry each). ``records == rows + merged + skipped + quarantined``.
"""

from __future__ import annotations

import base64
import binascii
import glob
import gzip
import hashlib
import io
import json
import os
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import zstandard

from ..errors import BadRecordError, EvidenceError, UnknownFormatError
from ..schema import QUARANTINE, TIME, Table

OnBadLines = Literal["warn", "error", "skip"]

CHUNK_BYTES = 8 << 20  # 8 MiB reads: big enough to amortise calls, small enough to avoid mmap page faults
MAX_RECORD_BYTES = 64 << 20  # one record larger than this is quarantined, not buffered
FAST_MAX_OBJECT = 16 << 20  # DuckDB sizes its read buffers from this; longer lines go the per-record way
BATCH_ROWS = 50_000
SNIFF_RECORDS = 50
EXCERPT_CHARS = 300

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BOM = b"\xef\xbb\xbf"


class NotAnEvent(Exception):
    """Raised by a format's ``rows`` for a valid record that is not an event of its table.

    The driver counts it under ``skipped`` with the message as the reason; it is not bad input.
    """


class BadRecord(Exception):
    """Raised by a format's ``rows`` (or the driver) for a record that cannot become a row."""


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class Evidence:
    """One input file: where it is and what it hashes to."""

    path: str
    size: int
    sha256: str

    @property
    def short_id(self) -> str:
        return self.sha256[:16]


def expand_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[tuple[Path, bool]]:
    """Resolve paths, folders and globs into files.

    Returns ``(file, explicit)`` pairs: ``explicit`` is True for a file named directly (an
    unknown format there is an error) and False for one found in a folder or glob (an
    unknown format there is reported and passed over). Links that lead out of a folder are
    not followed.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[tuple[Path, bool]] = []
    seen: set[Path] = set()

    def add(p: Path, explicit: bool) -> None:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            out.append((p, explicit))

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            root = p.resolve()
            for f in sorted(p.rglob("*")):
                if f.name.startswith(".") or not f.is_file():
                    continue
                if f.is_symlink() and not f.resolve().is_relative_to(root):
                    continue  # never follow a link out of the evidence folder
                add(f, False)
        elif p.exists():
            add(p, True)
        elif glob.has_magic(str(raw)):
            matches = sorted(glob.glob(str(raw), recursive=True))
            if not matches:
                raise EvidenceError(str(raw), "the pattern matches no file", "check the path and quoting")
            for m in matches:
                mp = Path(m)
                if mp.is_file():
                    add(mp, False)
        else:
            raise EvidenceError(str(raw), "no such file or folder", "check the path")
    return out


def _open_read_only(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")  # evidence is only ever opened for reading
    except PermissionError as e:
        raise EvidenceError(str(path), "permission denied", "run as a user who can read the evidence") from e
    except IsADirectoryError as e:
        raise EvidenceError(str(path), "is a folder, not a file") from e
    except OSError as e:
        raise EvidenceError(str(path), f"cannot be opened ({e.strerror or e})") from e


def hash_file(path: Path) -> Evidence:
    h = hashlib.sha256()
    size = 0
    with _open_read_only(path) as f:
        try:
            while chunk := f.read(CHUNK_BYTES):
                h.update(chunk)
                size += len(chunk)
        except OSError as e:
            raise EvidenceError(str(path), f"read failed ({e.strerror or e})") from e
    return Evidence(str(path), size, h.hexdigest())


class _Truncated(Exception):
    pass


def _decompressed_chunks(path: Path) -> Iterator[bytes]:
    """Yield the file's bytes in chunks, gunzipped or un-zstd'ed when the magic says so.

    Decompression is incremental, so a truncated or damaged archive still gives every byte
    before the damage; ``_Truncated`` is raised only after those bytes are out.
    """
    with _open_read_only(path) as raw:
        head = raw.read(4)
        raw.seek(0)
        try:
            if head[:2] == GZIP_MAGIC:
                yield from _inflate(raw, lambda: zlib.decompressobj(wbits=31), "gzip")
            elif head == ZSTD_MAGIC:
                yield from _inflate(raw, lambda: zstandard.ZstdDecompressor().decompressobj(), "zstd")
            else:
                while chunk := raw.read(CHUNK_BYTES):
                    yield chunk
        except OSError as e:
            raise _Truncated(f"read failed ({e.strerror or e})") from e


def _inflate(raw: BinaryIO, new: Callable[[], Any], kind: str) -> Iterator[bytes]:
    dec = new()
    pending = b""
    while True:
        data = pending or raw.read(1 << 20)
        pending = b""
        if not data:
            break
        try:
            out = dec.decompress(data)
        except (zlib.error, zstandard.ZstdError) as e:
            raise _Truncated(f"{kind} stream is damaged ({e})") from e
        if out:
            yield out
        if dec.eof:
            # concatenated members/frames (common with log shippers): start the next one
            pending = dec.unused_data
            if not pending:
                pending = raw.read(1 << 20)
                if not pending:
                    return
            if pending[:2] != GZIP_MAGIC and pending[:4] != ZSTD_MAGIC:
                if pending.strip(b"\x00"):
                    raise _Truncated(f"{kind} stream is followed by {len(pending)}+ bytes of non-{kind} data")
                return
            dec = new()
    if not dec.eof:
        raise _Truncated(f"{kind} stream is truncated (the file ends before the end of the compressed data)")


# --------------------------------------------------------------------------- documents


@dataclass
class Doc:
    """One top-level JSON document (or a bad one): its record number and bytes."""

    number: int
    raw: bytes
    value: Any = None
    error: str | None = None


def _loads(raw: bytes) -> Any:
    return orjson.loads(raw)


def _split_concatenated(text: bytes) -> list[Any] | None:
    """Several JSON values back to back on one line (Firehose writes these). None if not that."""
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        return None
    dec = json.JSONDecoder()
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
            if not stripped and len(buf) < CHUNK_BYTES:
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
    try:
        yield Doc(number, line, _loads(line))
        return
    except orjson.JSONDecodeError as e:
        err = e
    except RecursionError as e:  # pragma: no cover - orjson reports depth as JSONDecodeError
        err = e  # type: ignore[assignment]
    parts = _split_concatenated(line) if b"}{" in line or b"} {" in line else None
    if parts is not None:
        # Back-to-back values on one line count as one record holding several documents.
        yield Doc(number, line, parts)
        return
    yield Doc(number, line, error=_reason(err))


_WS = b" \t\r\n"


def _iter_values(buf: bytes, it: Iterator[bytes], max_record_bytes: int) -> Iterator[Doc]:
    """Read a stream of JSON values: pretty-printed, concatenated, or one top-level array.

    The elements of a top-level array are documents of their own, so a huge
    ``gcloud logging read`` export streams instead of loading whole.
    """
    dec = json.JSONDecoder()
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
        return orjson.loads(msg)
    except orjson.JSONDecodeError as e:
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
    if isinstance(value.get("events"), list) and value["events"] and all(
        isinstance(e, dict) and "message" in e for e in value["events"]
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
    try:
        msg = _json_message(ev.get("message") if isinstance(ev, dict) else None)
    except BadRecord as e:
        yield e, ctx, envelope
        return
    c = ctx
    if isinstance(ev, dict) and isinstance(ev.get("logStreamName"), str):
        c = {**ctx, "log_stream": ev["logStreamName"]}
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
        items = list(unwrap(doc.value))
        single = len(items) == 1
        for k, (rec, ctx, env) in enumerate(items):
            idx = None if single else k
            if isinstance(rec, NotAnEvent):
                yield Record(doc.number, idx, None, ctx, env, skip=str(rec), raw=doc.raw)
            elif isinstance(rec, BadRecord):
                yield Record(doc.number, idx, None, ctx, env, error=str(rec), raw=doc.raw)
            else:
                yield Record(doc.number, idx, rec, ctx, env, raw=doc.raw if single else None)


# --------------------------------------------------------------------------- formats


FormatModule = ModuleType


def sniff_format(records: Sequence[Record], formats: Sequence[FormatModule]) -> FormatModule | None:
    """The first format (in priority order) that claims a sampled record."""
    values = [r.value for r in records if r.value is not None]
    for fmt in formats:
        if any(_safe_sniff(fmt, v) for v in values):
            return fmt
    return None


def _safe_sniff(fmt: FormatModule, value: Any) -> bool:
    try:
        return bool(fmt.sniff(value))
    except Exception:  # a sniff must never take the ingest down; it just doesn't claim
        return False


# --------------------------------------------------------------------------- reading


@dataclass
class FileResult:
    """What reading one file gave: counts for the manifest, quarantine rows."""

    evidence: Evidence
    format: str | None = None
    family: str | None = None
    envelopes: Counter[str] = field(default_factory=Counter)
    records: int = 0
    rows: int = 0
    merged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    quarantined: int = 0
    time_min: Any = None
    time_max: Any = None
    unrecognised: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.evidence.path,
            "sha256": self.evidence.sha256,
            "bytes": self.evidence.size,
            "family": self.family,
            "format": self.format,
            "envelopes": dict(self.envelopes),
            "records": self.records,
            "rows": self.rows,
            "merged": self.merged,
            "skipped": dict(self.skipped),
            "quarantined": self.quarantined,
            "time_min": None if self.time_min is None else str(self.time_min),
            "time_max": None if self.time_max is None else str(self.time_max),
            "unrecognised": self.unrecognised,
        }


class Reader:
    """Reads one evidence file into canonical Arrow batches of one table.

    Usage: ``for batch in reader.batches(): ...``; then ``reader.result`` and
    ``reader.quarantine`` hold the accounting.
    """

    def __init__(
        self,
        path: Path,
        evidence: Evidence,
        formats: Sequence[FormatModule],
        *,
        table: Callable[[FormatModule], Table],
        cluster: str | None = None,
        on_bad_lines: OnBadLines = "warn",
        batch_rows: int = BATCH_ROWS,
        max_record_bytes: int = MAX_RECORD_BYTES,
        explicit: bool = True,
        fast: bool = True,
    ) -> None:
        if on_bad_lines not in ("warn", "error", "skip"):
            raise ValueError("on_bad_lines must be 'warn', 'error' or 'skip'")
        self.path = path
        self.formats = formats
        self.table_for = table
        self.cluster = cluster
        self.on_bad_lines = on_bad_lines
        self.batch_rows = batch_rows
        self.max_record_bytes = max_record_bytes
        self.explicit = explicit
        self.fast = fast
        self.fast_path = False
        self.used_fast_path = False
        self.result = FileResult(evidence)
        self._prepared = False
        self._head: list[Record] = []
        self._records: Any = iter(())
        self.quarantine: list[dict[str, Any]] = []
        self.format: FormatModule | None = None

    # -- bad input

    def _bad(self, number: int, reason: str, raw: bytes | None) -> None:
        self.result.quarantined += 1
        if self.on_bad_lines == "error":
            raise BadRecordError(self.result.evidence.path, number, reason)
        excerpt = "" if raw is None else raw[:EXCERPT_CHARS].decode("utf-8", errors="replace")
        self.quarantine.append(
            {
                "evidence_id": self.result.evidence.sha256,
                "evidence_line": number,
                "path": self.result.evidence.path,
                "source": self.result.format or self.result.family or "unknown",
                "reason": reason,
                "excerpt": excerpt,
            }
        )

    # -- the read

    def prepare(self) -> Reader:
        """Sniff the format (and whether the DuckDB fast path applies) without reading on."""
        if self._prepared:
            return self
        self._prepared = True
        layout: dict[str, str] = {}
        self._records = iter_records(
            iter_documents(_decompressed_chunks(self.path), max_record_bytes=self.max_record_bytes, layout=layout)
        )
        head = self._head
        try:
            for r in self._records:
                head.append(r)
                if len(head) >= SNIFF_RECORDS:
                    break
        except _Truncated as e:
            self._truncated = str(e)
        fmt = sniff_format(head, self.formats)
        if fmt is None:
            names = [f.NAME for f in self.formats]
            seen = next((r.raw[:60].decode("utf-8", "replace") for r in head if r.raw), "")
            if self._truncated and not head:
                raise EvidenceError(self.result.evidence.path, self._truncated, "re-copy the file from its source")
            if not head:
                if self.explicit:
                    raise EvidenceError(self.result.evidence.path, "is empty: it holds no records", "check that the right file was given")
                self.result.unrecognised = "empty: no records"
            elif self.explicit:
                raise UnknownFormatError(self.result.evidence.path, names, seen)
            else:
                self.result.unrecognised = "no format recognises this file (tried: " + ", ".join(names) + ")"
            return self
        self.format = fmt
        self.result.format = fmt.NAME
        self.result.family = fmt.FAMILY
        plain_lines = layout.get("mode") == "lines" and all(r.envelope is None and r.index is None for r in head)
        self.fast_path = self.fast and plain_lines and hasattr(fmt, "FAST_SELECT") and self._truncated is None
        return self

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Canonical rows of the file's table, in Arrow batches of at most ``batch_rows``."""
        self.prepare()
        fmt = self.format
        if fmt is None:
            return
        table = self.table_for(fmt)
        if self.fast_path:
            self._records.close()
            yield from self._fast(fmt, table)
        else:
            yield from self._map(self._until_truncation(self._head, self._records), fmt, table)
            self._note_truncation()
        if self.result.quarantined and self.on_bad_lines == "warn":
            warnings.warn(
                f"{self.result.evidence.path}: {self.result.quarantined} bad record(s) quarantined "
                f"(see the case's quarantine table)",
                stacklevel=2,
            )

    @property
    def compression(self) -> str:
        with _open_read_only(self.path) as f:
            magic = f.read(4)
        return "gzip" if magic[:2] == GZIP_MAGIC else "zstd" if magic == ZSTD_MAGIC else "none"

    def ndjson_source(self, columns: dict[str, str]) -> str:
        """A DuckDB ``read_ndjson(...)`` over this file with the given columns (fast path only)."""
        compression = self.compression
        cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
        path = "'" + str(self.path).replace("'", "''") + "'"
        return (
            f"read_ndjson({path}, columns = {cols}, ignore_errors = true, compression = '{compression}', "
            f"maximum_object_size = {min(self.max_record_bytes, FAST_MAX_OBJECT)})"
        )

    _truncated: str | None = None

    def _until_truncation(self, head: list[Record], rest: Iterator[Record]) -> Iterator[Record]:
        yield from head
        try:
            yield from rest
        except _Truncated as e:
            self._truncated = str(e)

    def _note_truncation(self) -> None:
        if self._truncated is not None:
            # The file ends mid-stream: what came before is kept; the loss is on record.
            last = max([q["evidence_line"] for q in self.quarantine] + [self._last_number, 0])
            self.result.records += 1
            self._bad(last + 1, self._truncated + "; records after this point are lost", None)

    def _fast(self, fmt: FormatModule, table: Table) -> Iterator[pa.RecordBatch]:
        """JSON lines through DuckDB (see performance.md); what it cannot map is redone per record."""
        import duckdb

        ev = self.result.evidence
        sql = f"SELECT {fmt.FAST_SELECT} FROM (SELECT {fmt.FAST_PREPARE} FROM {self.ndjson_source(fmt.FAST_COLUMNS)})"
        redo: set[int] = set()
        last = last_ok = 0
        failed = False
        con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
        con.execute("SET enable_progress_bar = false")
        self.used_fast_path = True
        try:
            # DuckDB keeps file order (preserve_insertion_order) and skips blank lines, as
            # iter_documents does, so a running count is the record number; a streaming
            # row_number() would cost a third of the parse.
            for batch in _prefetch(con.sql(sql).to_arrow_reader(self.batch_rows)):
                lines = pa.array(np.arange(last + 1, last + 1 + batch.num_rows, dtype=np.int64))
                batch = batch.append_column("evidence_line", lines)
                times = to_timestamps(batch.column("time"))
                ok = pc.and_(pc.fill_null(batch.column("_fast_ok"), False), pc.is_valid(times))
                if not pc.all(ok).as_py():
                    redo.update(lines.filter(pc.invert(ok)).to_pylist())
                    batch, times = batch.filter(ok), times.filter(ok)
                last += len(lines)
                if batch.num_rows:
                    last_ok = pc.max(batch.column("evidence_line")).as_py()
                if not batch.num_rows:
                    continue
                self.result.records += batch.num_rows
                out = self._fast_batch(fmt.fast_finish(batch), times, fmt, table, ev)
                self._count(out.column("time"), out.num_rows)
                yield out
        except (duckdb.Error, OSError, pa.ArrowException):
            failed = True  # e.g. a damaged archive or an over-long line: carry on per record after the last line delivered
        finally:
            con.close()
        if not failed and self.compression == "zstd":
            # DuckDB reads a truncated zstd stream as a shorter file; check the stream ourselves.
            try:
                for _ in _decompressed_chunks(self.path):
                    pass
            except _Truncated:
                failed = True
        if redo or failed:
            self._last_number = last_ok
            chunks = _decompressed_chunks(self.path)
            docs = iter_documents(chunks, max_record_bytes=self.max_record_bytes, wanted=lambda n: n in redo or (failed and n > last))
            yield from self._map(self._until_truncation([], iter_records(docs)), fmt, table)
            self._note_truncation()

    def _fast_batch(self, batch: pa.RecordBatch, times: pa.Array, fmt: FormatModule, table: Table, ev: Evidence) -> pa.RecordBatch:
        n = batch.num_rows
        lines = batch.column("evidence_line").cast(pa.int64())
        provided = {
            "time": times,
            "stage_time": to_timestamps(batch.column("stage_time")),
            "evidence_line": lines,
            "evidence_id": pa.array([ev.sha256] * n, pa.string()) if n else pa.array([], pa.string()),
            "event_id": pc.binary_join_element_wise(ev.short_id, pc.cast(lines, pa.string()), ":"),
            "source": pa.array([fmt.NAME] * n, pa.string()),
            "cluster": pa.array([self.cluster] * n, pa.string()),
        }
        names = set(batch.schema.names)
        arrays = []
        for col in table.columns:
            if col.name in provided:
                arr = provided[col.name]
            elif col.name in names:
                arr = batch.column(col.name)
            else:
                arr = pa.nulls(n, col.type)
            arrays.append(arr if arr.type == col.type else arr.cast(col.type))
        return pa.RecordBatch.from_arrays(arrays, schema=table.arrow_schema)

    def _count(self, times: pa.Array, rows: int) -> None:
        self.result.rows += rows
        tmin, tmax = pc.min(times).as_py(), pc.max(times).as_py()
        if self.result.time_min is None or tmin < self.result.time_min:
            self.result.time_min = tmin
        if self.result.time_max is None or tmax > self.result.time_max:
            self.result.time_max = tmax

    _last_number = 0

    def _map(self, records: Iterator[Record], fmt: FormatModule, table: Table) -> Iterator[pa.RecordBatch]:
        ev = self.result.evidence
        buf: list[dict[str, Any]] = []
        for rec in records:
            self.result.records += 1
            self._last_number = rec.number
            if rec.envelope:
                self.result.envelopes[rec.envelope] += 1
            if rec.error is not None:
                self._bad(rec.number, rec.error, rec.raw)
                continue
            if rec.skip is not None:
                self.result.skipped[rec.skip] += 1
                continue
            try:
                rows = list(fmt.rows(rec.value, rec.context))
            except NotAnEvent as e:
                self.result.skipped[str(e)] += 1
                continue
            except (BadRecord, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
                self._bad(rec.number, f"not a valid {fmt.NAME} record ({e})", rec.raw or _dump(rec.value))
                continue
            except RecursionError:
                self._bad(rec.number, "record nested too deeply", rec.raw or b"")
                continue
            if not rows:
                self.result.skipped[f"{fmt.NAME}: record yields no event"] += 1
                continue
            # One record normally gives one row; if it gives several they share the record's place.
            for k, row in enumerate(rows):
                sub = rec.index if len(rows) == 1 else (k if rec.index is None else rec.index * 1000 + k)
                row["evidence_id"] = ev.sha256
                row["evidence_line"] = rec.number
                row["event_id"] = f"{ev.short_id}:{rec.number}" + ("" if sub is None else f".{sub}")
                row["source"] = fmt.NAME
                if not row.get("cluster"):
                    row["cluster"] = rec.context.get("cluster") or self.cluster
                row["_record"] = rec
                buf.append(row)
            if len(rows) > 1:
                self.result.records += len(rows) - 1  # each extra row is its own record for accounting
            if len(buf) >= self.batch_rows:
                yield from self._flush(buf, table)
                buf = []
        if buf:
            yield from self._flush(buf, table)

    def _flush(self, buf: list[dict[str, Any]], table: Table) -> Iterator[pa.RecordBatch]:
        times = to_timestamps([r.get("time") for r in buf])
        bad = pc.is_null(times).to_numpy(zero_copy_only=False)
        if bad.any():
            keep = []
            for r, b in zip(buf, bad):
                if b:
                    rec: Record = r["_record"]
                    self._bad(rec.number, "no parseable timestamp in the record", rec.raw or _dump(rec.value))
                else:
                    keep.append(r)
            buf = keep
            times = times.filter(pc.invert(pc.is_null(times)))
        if not buf:
            return
        batch = rows_to_batch(buf, table, times)
        self._count(times, batch.num_rows)
        yield batch


def _prefetch(reader: Iterable[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Pull batches on a thread so DuckDB parses the next batch while Python works on this
    one (DuckDB releases the GIL); errors are re-raised here, in order."""
    import queue
    import threading

    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def pull() -> None:
        try:
            for b in reader:
                if stop.is_set():
                    return
                q.put(b)
            q.put(done)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    t = threading.Thread(target=pull, name="k8sforensics-duckdb", daemon=True)
    t.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.01)


def _dump(value: Any) -> bytes:
    try:
        return orjson.dumps(value)[:EXCERPT_CHARS]
    except (TypeError, orjson.JSONEncodeError):
        return repr(value)[:EXCERPT_CHARS].encode()


# --------------------------------------------------------------------------- arrow


def to_timestamps(values: Sequence[Any] | pa.Array) -> pa.Array:
    """Strings (RFC3339 with 0-9 fraction digits, 'Z' or an offset, or a space for 'T'),
    epoch numbers (s/ms/us/ns guessed by magnitude) → timestamp[ns, UTC]; unparseable → null."""
    import numpy as np
    import pandas as pd

    if isinstance(values, pa.Array):
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            try:
                return pc.cast(values, TIME)  # RFC3339: Arrow's parser, ~30 ms per million
            except pa.ArrowInvalid:
                pass
        values = values.to_pylist()
    elif values and all(isinstance(v, str) for v in values):
        try:
            return pc.cast(pa.array(values, pa.string()), TIME)
        except pa.ArrowInvalid:
            pass

    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    strs_idx, strs = [], []
    for i, v in enumerate(values):
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, str):
            strs_idx.append(i)
            strs.append(v)
        elif isinstance(v, (int, float)):
            out[i] = _epoch_to_ns(v)
    if strs:
        parsed = pd.to_datetime(pd.Series(strs, dtype=object), utc=True, errors="coerce", format="ISO8601")
        arr = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
        for j in np.flatnonzero(np.isnat(arr)):
            # Spellings the ISO parser refused (e.g. '2022-11-29 00:09:04.38'): one at a time.
            if _looks_like_time(strs[j]):
                try:
                    ts = pd.Timestamp(strs[j])
                    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
                    arr[j] = ts.tz_localize(None).to_datetime64()
                except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
                    pass
        out[np.asarray(strs_idx)] = arr
    return pa.array(out, type=pa.timestamp("ns")).cast(TIME)


def _looks_like_time(s: str) -> bool:
    return len(s) >= 10 and s[:4].isdigit() and s[4] == "-"


def _epoch_to_ns(v: float) -> Any:
    import numpy as np

    a = abs(v)
    if a < 1e11:
        ns = v * 1e9
    elif a < 1e14:
        ns = v * 1e6
    elif a < 1e17:
        ns = v * 1e3
    else:
        ns = v
    try:
        return np.datetime64(int(ns), "ns")
    except (OverflowError, ValueError):
        return np.datetime64("NaT")


def rows_to_batch(rows: list[dict[str, Any]], table: Table, times: pa.Array | None = None) -> pa.RecordBatch:
    """Column lists → a RecordBatch of exactly ``table``'s schema (missing columns are null)."""
    arrays = []
    n = len(rows)
    for col in table.columns:
        if col.name == "time" and times is not None:
            arrays.append(times)
            continue
        vals = [r.get(col.name) for r in rows]
        if col.type == TIME:
            arrays.append(to_timestamps(vals))
        elif pa.types.is_map(col.type):
            arrays.append(pa.array([None if v is None else list(v.items()) for v in vals], type=col.type))
        elif vals.count(None) == n:
            arrays.append(pa.nulls(n, col.type))
        else:
            arrays.append(pa.array(vals, type=col.type))
    return pa.RecordBatch.from_arrays(arrays, schema=table.arrow_schema)


def quarantine_table(entries: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(entries, schema=QUARANTINE.arrow_schema)


def read_text_sample(path: Path, n: int = 200) -> str:
    """The first bytes of a file, decompressed, for error messages."""
    try:
        chunk = next(_decompressed_chunks(path), b"")
    except (_Truncated, EvidenceError):
        return ""
    return chunk[:n].decode("utf-8", errors="replace")


__all__ = [
    "BadRecord",
    "Evidence",
    "FileResult",
    "NotAnEvent",
    "OnBadLines",
    "Reader",
    "expand_paths",
    "hash_file",
    "io",
]
