"""The machinery every format shares: reading one evidence file into canonical Arrow
batches — format sniffing, the DuckDB fast path, batching, provenance, bad-input policy.

A format module (``protocol.FormatModule``) only says what a record of its kind looks like
(``sniff``/``sniff_lines``) and how one record becomes canonical rows (``rows``); it may add a
DuckDB mapping for the fast path (``fast``). The driver calls those members and no others.

Typing: every row goes through the table's schema value by value where it must (see
``_arrow.type_rows``): what can be typed without changing it is (a number in a text column
becomes its text), what cannot — an integer out of range, a fraction, a non-list where a list
is declared, a time outside ``TIME_RANGE`` or the reader's ``time_range`` — makes the record bad
input, quarantined with the field and the value named. The DuckDB fast path hands every row
it is not sure of to the per-record path, so both give the same rows and the same quarantine.

Accounting: every record read ends in exactly one of four places, per file —
``rows`` (a table row), ``merged`` (another stage of an audit request already kept),
``skipped`` (a valid record that is not an event of the table, e.g. a Falco stats
snapshot or a CloudWatch control message; counted by reason) or ``quarantined`` (bad
input, one quarantine entry each). ``records == rows + merged + skipped + quarantined``.

``on_bad_lines="error"`` raises at the first bad record in file order, whichever stage finds it.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import BadRecordError, EvidenceError, UnknownFormatError
from ..schema import TIME, Table
from ._arrow import (
    MISSING,
    OK,
    TIME_RANGE,
    TimeRange,
    parse_times,
    quarantine_table,
    to_timestamps,
    type_rows,
)
from ._files import (
    Evidence,
    Truncated,
    compression_of,
    decompressed_chunks,
    expand_paths,
    hash_file,
)
from ._json import (
    EXCERPT_CHARS,
    MAX_RECORD_BYTES,
    Record,
    iter_documents,
    iter_records,
    iter_text_records,
    message_line,
)
from .protocol import BadRecord, FormatModule, NotAnEvent
from .redact import redact_batch, redact_excerpt

OnBadLines = Literal["warn", "error", "skip"]

BATCH_ROWS = 50_000
SNIFF_RECORDS = 50
FAST_MAX_OBJECT = 16 << 20  # DuckDB sizes its read buffers from this; longer lines go the per-record way
# a file this small is read by DuckDB in one batch: no parse to overlap with, so no prefetch thread
PREFETCH_MIN_BYTES = 1 << 20
# Below this many bytes of records a file costs less per record than through DuckDB: a fast-path
# query costs 20-40 ms of CPU (its threads' included) however small the file, binding and planning
# the mapping's SELECT; the per-record path ~0.05 ms per audit event or Hubble flow (~1.3 KB) and
# ~0.025 ms per VPC line (~170 B), i.e. 0.04-0.15 ms per KB (2-core machine, measured per format):
# at 256 KB VPC lines break even, audit and Hubble are still twice as cheap per record; 128 KB keeps
# every format below its break-even. A reader uses it when asked (``small_file_bytes``).
SMALL_FILE_BYTES = 128 << 10


# --------------------------------------------------------------------------- formats


def sniff_format(records: Sequence[Record], formats: Sequence[FormatModule]) -> FormatModule | None:
    """The first format (in priority order) that claims a sampled record."""
    values = [r.value for r in records if r.value is not None]
    for fmt in (f for f in formats if f.sniff is not None):
        if any(_safe_sniff(fmt, v) for v in values):
            return fmt
    return None


def sniff_wrapped(
    records: Sequence[Record], formats: Sequence[FormatModule], context: Mapping[str, Any] | None = None
) -> FormatModule | None:
    """The first line format that claims the lines a file's ``{"message": "<line>"}`` wrappers
    hold (a SIEM or Firehose re-export of a text log), when its first record is one."""
    lines = [message_line(r.value) for r in records if r.value is not None]
    if not lines or lines[0] is None:
        return None
    lines = [ln for ln in lines if ln is not None][:20]
    return next((f for f in formats if _safe_sniff_lines(f, lines, context)), None)


def _safe_sniff_lines(fmt: FormatModule, lines: list[str], context: Mapping[str, Any] | None = None) -> bool:
    """``fmt.sniff_lines`` on the lines and a copy of the options (False for a JSON format)."""
    if fmt.sniff_lines is None:
        return False
    try:
        return bool(fmt.sniff_lines(lines, dict(context or {})))
    except Exception:
        return False


def _safe_sniff(fmt: FormatModule, value: Any) -> bool:
    """``fmt.sniff`` on a JSON value (False for a text format)."""
    if fmt.sniff is None:
        return False
    try:
        return bool(fmt.sniff(value))
    except Exception:
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
    # rows each format gave (a file may mix variants of its family), counted as delivered: an
    # ingest's stage merge later moves some audit rows to ``merged``, so the values sum to
    # ``rows + merged``
    rows_by_format: Counter[str] = field(default_factory=Counter)
    merged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    quarantined: int = 0
    time_min: Any = None
    time_max: Any = None
    unrecognised: str | None = None
    redactions: Counter[str] = field(default_factory=Counter)  # values replaced, by rule (sources.redact)
    secrets_kept: bool = False

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
            "rows_by_format": dict(self.rows_by_format),
            "merged": self.merged,
            "skipped": dict(self.skipped),
            "quarantined": self.quarantined,
            "time_min": None if self.time_min is None else str(self.time_min),
            "time_max": None if self.time_max is None else str(self.time_max),
            "unrecognised": self.unrecognised,
            "redactions": dict(self.redactions),
            "secrets_kept": self.secrets_kept,
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
        time_range: tuple[Any, Any] | TimeRange | None = None,
        keep_secrets: bool = False,
        format_options: Mapping[str, Any] | None = None,
        small_file_bytes: int = 0,
    ) -> None:
        """``time_range``: accepted event times ``(start, end)`` (ISO text, datetimes or epoch ns;
        None for an open end), default ``TIME_RANGE``; a time outside it is quarantined.
        ``keep_secrets=True`` turns credential redaction off (for a sealed, access-controlled
        case only); by default every batch and every quarantine excerpt is redacted.
        ``format_options`` seed the file context each format's ``rows(record, context)`` gets
        (e.g. ``vpc_fields``: the field order of a headerless VPC flow log); each format gets
        its own copy, to which it may add (a text header's field order).
        ``small_file_bytes``: a file whose records end within this many bytes is read per record
        even where the fast path applies (``SMALL_FILE_BYTES`` is the measured break-even; 0,
        the default, never) — the same rows either way, by the fast path's contract."""
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
        self.time_range = TimeRange.of(time_range)
        self.fast_path = False
        self.small_file_bytes = small_file_bytes
        self.small_file = False  # the fast path applied, but the file was small enough to read per record
        self.used_fast_path = False
        self.fast_fallback: str | None = None  # why the fast path stopped early, if it did
        self.redone = 0  # records the fast path handed to the per-record path
        self.result = FileResult(evidence, secrets_kept=keep_secrets)
        self.keep_secrets = keep_secrets
        self._prepared = False
        self.format_options: dict[str, Any] = dict(format_options or {})
        self._file_context: dict[str, Any] = dict(self.format_options)  # the file's format's
        self._contexts: dict[str, dict[str, Any]] = {}  # the family's other formats', by name
        self._wrapped = False  # the file's format was sniffed from {"message": "<line>"} wrappers
        self._layout: str | None = None
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
        if not self.keep_secrets:  # a bad record is still evidence, and may still hold a credential
            excerpt = redact_excerpt(excerpt, self.result.redactions)
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
        text_fmt = self._sniff_text()
        if text_fmt is not None:
            layout["mode"] = "text"
            self._records = iter_text_records(decompressed_chunks(self.path), max_record_bytes=self.max_record_bytes)
        else:
            self._records = iter_records(
                iter_documents(decompressed_chunks(self.path), max_record_bytes=self.max_record_bytes, layout=layout)
            )
        head = self._head
        try:
            for r in self._records:
                head.append(r)
                if len(head) >= SNIFF_RECORDS:
                    break
        except Truncated as e:
            self._truncated = str(e)
        self._layout = layout.get("mode")
        fmt = text_fmt or sniff_format(head, self.formats)
        if fmt is None and (fmt := sniff_wrapped(head, self.formats, self.format_options)) is not None:
            self._wrapped = True
        if fmt is None:
            names = [f.NAME for f in self.formats]
            seen = next((r.raw[:60].decode("utf-8", "replace") for r in head if r.raw), "")
            if self._truncated and not head:
                raise EvidenceError(self.result.evidence.path, self._truncated, "re-copy the file from its source")
            if not head:
                if self.explicit:
                    raise EvidenceError(
                        self.result.evidence.path,
                        "is empty: it holds no records",
                        "check that the right file was given",
                    )
                self.result.unrecognised = "empty: no records"
            elif self.explicit:
                raise UnknownFormatError(self.result.evidence.path, names, seen)
            else:
                self.result.unrecognised = "no format recognises this file (tried: " + ", ".join(names) + ")"
            return self
        self.format = fmt
        self.result.format = fmt.NAME
        self.result.family = fmt.FAMILY
        plain_lines = layout.get("mode") in ("lines", "text") and all(
            r.envelope is None and r.index is None for r in head
        )
        self.fast_path = (
            self.fast
            and plain_lines
            and fmt.fast is not None
            and self._truncated is None
            and bool(fmt.fast.applies([r.value for r in head if r.value is not None], self._file_context))
        )
        if (
            self.fast_path
            and self.result.evidence.size <= self.small_file_bytes  # compressed, it may still be more
            and self._whole_file_in_head()
        ):
            self.fast_path, self.small_file = False, True
        return self

    def _whole_file_in_head(self) -> bool:
        """Read on while the records read stay within ``small_file_bytes``; whether the file
        ended there (its records are then all in the head, for the per-record path)."""
        size = sum(len(r.raw or b"") + 1 for r in self._head)
        try:
            while size <= self.small_file_bytes:
                r = next(self._records, None)
                if r is None:
                    return True
                self._head.append(r)
                size += len(r.raw or b"") + 1
        except Truncated as e:
            # the per-record path keeps what came before the damage and quarantines the loss,
            # as the fast path's fallback does for a truncated file
            self._truncated = str(e)
            return True
        return False

    def _sniff_text(self) -> FormatModule | None:
        """Line-oriented text formats (VPC flow logs, CSV exports) are claimed from their first
        lines; a file that starts like JSON never is."""
        text = [f for f in self.formats if f.sniff_lines is not None]
        if not text:
            return None
        try:
            chunk = next(decompressed_chunks(self.path), b"")
        except Truncated:
            return None
        lines = [
            ln for ln in chunk[: 1 << 16].decode("utf-8", errors="replace").lstrip("\ufeff").splitlines() if ln.strip()
        ][:20]
        if not lines or lines[0].lstrip()[:1] in ("{", "["):
            return None
        return next((f for f in text if _safe_sniff_lines(f, lines, self.format_options)), None)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Canonical rows of the file's table, in Arrow batches of at most ``batch_rows``."""
        self.prepare()
        fmt = self.format
        if fmt is None:
            return
        table = self.table_for(fmt)
        if self.fast_path:
            self._records.close()
            out = self._fast(fmt, table)
        else:
            out = self._map(self._until_truncation(self._head, self._records), fmt, table)
        # one redaction pass for every row of every format and path, before anything is kept
        for batch in out:
            yield batch if self.keep_secrets else redact_batch(batch, table.name, self.result.redactions)
        if not self.fast_path:
            self._note_truncation()
        if self.result.quarantined and self.on_bad_lines == "warn":
            warnings.warn(
                f"{self.result.evidence.path}: {self.result.quarantined} bad record(s) quarantined "
                f"(see the case's quarantine table)",
                stacklevel=2,
            )

    @cached_property
    def compression(self) -> str:
        return compression_of(self.path)

    def lines_source(self) -> str:
        """A DuckDB ``read_csv(...)`` giving each line of this text file as one ``line`` column."""
        path = "'" + str(self.path).replace("'", "''") + "'"
        return (
            f"read_csv({path}, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\x1f', quote = '', "
            f"escape = '', auto_detect = false, compression = '{self.compression}', max_line_size = {FAST_MAX_OBJECT})"
        )

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
        except Truncated as e:
            self._truncated = str(e)

    def _note_truncation(self) -> None:
        if self._truncated is not None:
            # The file ends mid-stream: what came before is kept; the loss is on record.
            last = max([q["evidence_line"] for q in self.quarantine] + [self._last_number, 0])
            self.result.records += 1
            self._bad(last + 1, self._truncated + "; records after this point are lost", None)

    def _fast(self, fmt: FormatModule, table: Table) -> Iterator[pa.RecordBatch]:
        """JSON lines through DuckDB (~10x faster than per-record Python: benchmarks/bench_ingest.py); what it cannot map, or maps into a
        value the per-record path might judge otherwise, is redone per record."""
        import duckdb

        ev = self.result.evidence
        fast = fmt.fast
        assert fast is not None  # prepare() takes the fast path only for a format that has one
        source = self.lines_source() if fast.reads == "lines" else self.ndjson_source(fast.columns or {})
        # a text format's query depends on the file's header, or on the field order it was given
        # the sniffed records only, as without a read-ahead (the query may depend on them: a text header)
        head = self._head[:SNIFF_RECORDS]
        sql = fast.query(source, [r.value for r in head if r.value is not None], self._file_context)
        redo: set[int] = set()
        last = last_ok = 0
        failed = False
        con = _fast_connection()
        self.used_fast_path = True
        stream: Any = None
        try:
            # DuckDB keeps file order (preserve_insertion_order) and skips blank lines, as
            # iter_documents does, so a running count is the record number; a streaming
            # row_number() would cost a third of the parse.
            stream = con.sql(sql).to_arrow_reader(self.batch_rows)
            if ev.size >= PREFETCH_MIN_BYTES or self.compression != "none":
                stream = _prefetch(stream)
            for batch in stream:
                numbers = np.arange(last + 1, last + 1 + batch.num_rows, dtype=np.int64)
                batch, ok = self._fast_check(batch.append_column("evidence_line", pa.array(numbers)), table)
                if not ok.all() and self.on_bad_lines == "error":
                    # The first record in doubt may be the first bad one: from there on the file
                    # is read per record and in order, so the error names the first bad record.
                    first = int(numbers[np.argmin(ok)])
                    ok &= numbers < first
                    last, failed = first - 1, True
                    self.fast_fallback = f"record {first} needs the per-record path (on_bad_lines='error')"
                elif not ok.all():
                    redo.update(numbers[~ok].tolist())
                    last += len(numbers)
                else:
                    last += len(numbers)
                batch = batch.filter(pa.array(ok)) if not ok.all() else batch
                if batch.num_rows:
                    try:
                        finished = batch if fast.finish is None else fast.finish(batch)
                    except Exception:
                        finished = None
                        if self.on_bad_lines == "error":
                            last, failed = int(batch.column("evidence_line")[0].as_py()) - 1, True
                        else:
                            redo.update(batch.column("evidence_line").to_pylist())
                    if finished is not None:
                        last_ok = pc.max(batch.column("evidence_line")).as_py()
                        yield from self._fast_deliver(finished, fmt, table, ev)
                if failed:
                    break
        except (duckdb.Error, OSError, pa.ArrowException) as e:
            failed = True  # e.g. a damaged archive or an over-long line
            self.fast_fallback = str(e).splitlines()[0]  # carry on per record after the last line delivered
        finally:
            if stream is not None:
                stream.close()  # a prefetch thread stops pulling before its connection is closed
            con.close()
        if not failed and self.compression == "zstd":
            # DuckDB reads a truncated zstd stream as a shorter file; check the stream ourselves.
            try:
                for _ in decompressed_chunks(self.path):
                    pass
            except Truncated:
                failed = True
        if redo or failed:
            self.redone = len(redo)
            self._last_number = last_ok
            chunks = decompressed_chunks(self.path)
            wanted = lambda n: n in redo or (failed and n > last)
            redone: Iterator[Record]
            if self._layout == "text":
                redone = (
                    r for r in iter_text_records(chunks, max_record_bytes=self.max_record_bytes) if wanted(r.number)
                )
            else:
                redone = iter_records(iter_documents(chunks, max_record_bytes=self.max_record_bytes, wanted=wanted))
            yield from self._map(self._until_truncation([], redone), fmt, table)
            self._note_truncation()

    def _fast_deliver(
        self, batch: pa.RecordBatch, fmt: FormatModule, table: Table, ev: Evidence
    ) -> Iterator[pa.RecordBatch]:
        self.result.records += batch.num_rows
        out = self._fast_batch(batch, fmt, table, ev)
        self._count(out)
        yield out

    def _fast_check(self, batch: pa.RecordBatch, table: Table) -> tuple[pa.RecordBatch, np.ndarray]:
        """The rows of a DuckDB batch the fast path may keep, with their values typed to the
        table; the others (``_fast_ok`` false, a time missing, unparseable or out of range, a
        ``_raw_<col>`` text whose typed ``<col>`` came out null, a value the column's type cannot
        hold) are for the per-record path, whose reasons the quarantine then carries."""
        n = batch.num_rows
        names = batch.schema.names
        ok = pc.fill_null(batch.column("_fast_ok"), False).to_numpy(zero_copy_only=False).copy()
        cols = {}
        for col in table.columns:
            if col.name not in names or col.name == "evidence_line":
                continue
            arr = batch.column(col.name)
            if col.type == TIME:
                arr, status = parse_times(arr, self.time_range)
                ok &= (status == OK) | ((status == MISSING) & (col.name != "time"))
            elif arr.type != col.type:
                try:
                    arr = arr.cast(col.type)  # safe: a value the type cannot hold raises
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                    arr, fits = _cast_what_fits(arr, col.type)
                    ok &= fits
            cols[col.name] = arr
        for name in names:
            if name.startswith("_raw_") and name[5:] in cols:
                lost = pc.and_(pc.is_valid(batch.column(name)), pc.is_null(cols[name[5:]]))
                ok &= ~lost.to_numpy(zero_copy_only=False)
        keep = [pa.field(nm, cols[nm].type) for nm in cols]
        rest = [nm for nm in names if nm not in cols]
        typed = pa.RecordBatch.from_arrays(
            [cols[f.name] for f in keep] + [batch.column(nm) for nm in rest],
            schema=pa.schema(keep + [batch.schema.field(nm) for nm in rest]),
        )
        return typed, np.asarray(ok, dtype=bool) if n else np.ones(0, bool)

    def _fast_batch(self, batch: pa.RecordBatch, fmt: FormatModule, table: Table, ev: Evidence) -> pa.RecordBatch:
        n = batch.num_rows
        lines = batch.column("evidence_line").cast(pa.int64())
        default_cluster = pa.array([self.cluster] * n, pa.string())
        provided = {
            "evidence_line": lines,
            "evidence_id": pa.array([ev.sha256] * n, pa.string()),
            "event_id": pc.binary_join_element_wise(ev.short_id, pc.cast(lines, pa.string()), ":"),
            "source": pa.array([fmt.NAME] * n, pa.string()),
            # the record's own cluster (e.g. Hubble's 'cluster/node') wins over the default
            "cluster": pc.coalesce(batch.column("cluster").cast(pa.string()), default_cluster)
            if "cluster" in batch.schema.names
            else default_cluster,
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

    def _count(self, batch: pa.RecordBatch) -> None:
        self.result.rows += batch.num_rows
        for item in pc.value_counts(batch.column("source")).to_pylist():
            self.result.rows_by_format[item["values"]] += item["counts"]
        times = batch.column("time")
        tmin, tmax = pc.min(times).as_py(), pc.max(times).as_py()
        if tmin is not None and (self.result.time_min is None or tmin < self.result.time_min):
            self.result.time_min = tmin
        if tmax is not None and (self.result.time_max is None or tmax > self.result.time_max):
            self.result.time_max = tmax

    _last_number = 0

    def _map(self, records: Iterator[Record], fmt: FormatModule, table: Table) -> Iterator[pa.RecordBatch]:
        ev = self.result.evidence
        buf: list[dict[str, Any]] = []
        strict = self.on_bad_lines == "error"
        for rec in records:
            self.result.records += 1
            self._last_number = rec.number
            if rec.envelope:
                self.result.envelopes[rec.envelope] += 1
            if rec.skip is not None:
                self.result.skipped[rec.skip] += 1
                continue
            mapped = self._dispatch(rec, fmt)
            if mapped.skip is not None:
                self.result.skipped[mapped.skip] += 1
                continue
            reason, rows = mapped.reason, mapped.rows
            if reason is not None:
                if strict and buf:
                    # the rows held back for typing come first in the file: check them first
                    yield from self._flush(buf, table)
                    buf = []
                self._bad(rec.number, reason, rec.raw or _dump(rec.value))
                continue
            if not rows:
                self.result.skipped[f"{mapped.format.NAME}: record yields no event"] += 1
                continue
            # One record normally gives one row; if it gives several they share the record's place.
            for k, row in enumerate(rows):
                if isinstance(row, BadRecord):
                    # a format yields BadRecord for one bad part (a flow tuple, a list item) of
                    # a record whose other parts are good rows
                    if strict and buf:
                        yield from self._flush(buf, table)
                        buf = []
                    part = f" (row {k + 1} of the {len(rows)} this record gives)" if len(rows) > 1 else ""
                    self._bad(rec.number, f"{row}{part}", rec.raw or _dump(rec.value))
                    continue
                # the record's place (line, and index inside a multi-record document), then the row's
                # place in the record: ".<index>.<k>" never equals another record's ".<index>"
                sub = rec.index if len(rows) == 1 else (k if rec.index is None else f"{rec.index}.{k}")
                row["evidence_id"] = ev.sha256
                row["evidence_line"] = rec.number
                row["event_id"] = f"{ev.short_id}:{rec.number}" + ("" if sub is None else f".{sub}")
                row["source"] = mapped.format.NAME
                if row.get("cluster") is None or row.get("cluster") == "":
                    row["cluster"] = rec.context.get("cluster") or self.cluster
                row["_record"] = rec
                if len(rows) > 1:
                    row["_part"] = (k + 1, len(rows))
                buf.append(row)
            if len(rows) > 1:
                self.result.records += len(rows) - 1  # each extra row is its own record for accounting
            if len(buf) >= self.batch_rows:
                yield from self._flush(buf, table)
                buf = []
        if buf:
            yield from self._flush(buf, table)

    # -- per-record dispatch inside the family

    def _dispatch(self, rec: Record, fmt: FormatModule) -> _Mapped:
        """The rows of one record. A SIEM export or a concatenation of several sources mixes
        the variants of a family in one file (raw audit events, GKE LogEntries, AKS diagnostic
        records): a record the file's format does not claim, or cannot map, goes to the first
        other format of the family (sniff order) that claims it and maps it. JSON formats are
        asked first; then, for a ``{"message": "<line>"}`` wrapper, the line formats on its line.
        When none fits, the file's format maps the record, or gives the reason it is bad."""
        if rec.error is not None:
            line = message_line(rec.value)  # an envelope's text message (CloudWatch Logs)
            for other, value in self._claims(fmt, None, line):
                if (out := self._attempt(other, value, rec)).reason is None:
                    return out
            return _Mapped(fmt, reason=rec.error)
        if self._layout == "text":
            return self._attempt(fmt, rec.value, rec)  # a line of a text file: its header gives the layout
        own: _Mapped | None = None
        for other, value in self._claims(fmt, rec.value, None):
            out = self._attempt(other, value, rec)
            if out.reason is None:
                return out
            if other is fmt and own is None:
                own = out
        if own is None:
            line = message_line(rec.value) if self._wrapped else None
            own = self._attempt(fmt, rec.value if line is None else line, rec)
        return own

    def _claims(self, fmt: FormatModule, value: Any, line: str | None) -> Iterator[tuple[FormatModule, Any]]:
        """The formats of ``fmt``'s family that claim a record, the file's format first, each
        with what its ``rows`` is given: the JSON value, or the line a wrapper holds."""
        order = [fmt, *(f for f in self.formats if f is not fmt and f.FAMILY == fmt.FAMILY)]
        if value is not None:
            yield from ((f, value) for f in order if _safe_sniff(f, value))
            line = message_line(value)
        if line is not None:
            yield from ((f, line) for f in order if _safe_sniff_lines(f, [line], self.format_options))

    def _attempt(self, fmt: FormatModule, value: Any, rec: Record) -> _Mapped:
        try:
            return _Mapped(fmt, rows=list(fmt.rows(value, self._context(fmt, rec))))
        except NotAnEvent as e:
            return _Mapped(fmt, skip=str(e))
        except RecursionError:
            return _Mapped(fmt, reason="record nested too deeply")
        except (BadRecord, ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
            return _Mapped(fmt, reason=f"not a valid {fmt.NAME} record ({e})")
        except Exception as e:
            return _Mapped(fmt, reason=f"not a valid {fmt.NAME} record ({type(e).__name__}: {e})")

    def _context(self, fmt: FormatModule, rec: Record) -> dict[str, Any]:
        """One dict per format for the whole file (a text header's field order, the options);
        an envelope's context (a cluster name) travels with its record, over the file's."""
        ctx = (
            self._file_context if fmt is self.format else self._contexts.setdefault(fmt.NAME, dict(self.format_options))
        )
        return {**ctx, **rec.context} if rec.context else ctx

    def _flush(self, buf: list[dict[str, Any]], table: Table) -> Iterator[pa.RecordBatch]:
        batch, bad = type_rows(buf, table, time_range=self.time_range)
        for i, reason in bad.items():
            row = buf[i]
            rec: Record = row["_record"]
            if "_part" in row:
                reason += " (row {} of the {} this record gives)".format(*row["_part"])
            self._bad(rec.number, reason, rec.raw or _dump(rec.value))
        if batch.num_rows:
            self._count(batch)
            yield batch


@dataclass
class _Mapped:
    """What one format made of one record: rows, a reason to skip it (not an event), or the
    reason it is bad input."""

    format: FormatModule
    rows: list[Any] = field(default_factory=list)
    skip: str | None = None
    reason: str | None = None


_FAST_DB: tuple[int, Any] | None = None  # (pid, connection): the fast path's in-memory database
_FAST_DB_LOCK = threading.Lock()


def _fast_connection() -> Any:
    """A new connection (a DuckDB cursor) to this process's fast-path database, for one read.

    Opening an in-memory DuckDB database costs ~15 ms of CPU, a cursor of an open one ~4 µs:
    on many small files the open was a third of the fixed cost per file. Each read has its own
    cursor (one pending result per connection: two readers may stream at once, on one thread or
    several) and closes it; the database's threads and memory limit are shared. A forked child
    (a Dask worker process) opens its own database: DuckDB's threads do not survive a fork."""
    import duckdb

    global _FAST_DB
    with _FAST_DB_LOCK:
        if _FAST_DB is None or _FAST_DB[0] != os.getpid():
            con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
            con.execute("SET enable_progress_bar = false")
            _FAST_DB = (os.getpid(), con)
        return _FAST_DB[1].cursor()


def _cast_what_fits(arr: pa.Array, t: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """``arr`` cast to ``t`` where each value fits (null elsewhere), and which ones did."""
    if pa.types.is_integer(t) and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        info = np.iinfo(t.to_pandas_dtype())
        fits = pc.and_(
            pc.greater_equal(arr, pa.scalar(int(info.min)).cast(arr.type))
            if pa.types.is_integer(arr.type)
            else pc.greater_equal(arr, float(info.min)),
            pc.less_equal(arr, pa.scalar(int(info.max)).cast(arr.type))
            if pa.types.is_integer(arr.type)
            else pc.less_equal(arr, float(info.max)),
        )
        if pa.types.is_floating(arr.type):
            fits = pc.and_(fits, pc.equal(pc.floor(arr), arr))
        fits = pc.fill_null(fits, True)
        out = pc.if_else(fits, arr, pa.scalar(None, arr.type)).cast(t)
        return out, fits.to_numpy(zero_copy_only=False)
    # no element-wise rule for this pair of types: the whole batch goes the per-record way
    return pa.nulls(len(arr), t), np.zeros(len(arr), bool)


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
        except BaseException as e:
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


__all__ = [
    "TIME_RANGE",
    "Evidence",
    "FileResult",
    "OnBadLines",
    "SMALL_FILE_BYTES",
    "Reader",
    "TimeRange",
    "expand_paths",
    "hash_file",
    "quarantine_table",
    "to_timestamps",
]
