"""The case store: Parquet tables plus a manifest, readable by pandas and DuckDB.

Layout::

    case/
      manifest.json                 the record of what the case holds: versions, every ingest with
                                    its inputs and counts, every data file with its sha256, bytes
                                    and rows, the current context generation and findings
      audit/date=YYYY-MM-DD/part-<ingest>-….parquet   hive-partitioned by UTC date
      objects/part-….parquet        Kubernetes objects from inventory dumps
      quarantine/part-<ingest>.parquet               bad records, one row each
      superseded/audit-<ingest>.parquet              rows a later ingest replaced
      context/<generation>/<table>.parquet           pods, pod_ips, rbac, …
      findings/<run>.parquet        the last detection run

**The manifest is the record.** A file the manifest does not list is not part of the case.
Every write is one transaction (``Case.transaction``): under the case lock the manifest is
read again, everything the write derives is built in ``_tmp/<transaction>/`` and moved into
place under names no manifest lists yet, and the new manifest replaces the old one last, in
one rename. A failure or a kill at any point leaves the case as it was before (or, after the
rename, as it is after); what a dead writer left behind is removed by the next writer.

Readers see a snapshot: a ``Case`` reads the manifest when it is opened (``refresh()`` reads
it again) and every file that manifest lists stays on disk at least until the write after the
one that replaced it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import EllipsisType
from typing import Any, TypeAlias

import duckdb
import filelock
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .errors import CaseError
from .frames import time_chunks, to_frame, utc_timestamp
from .schema import CONTEXT_TABLES, FINDINGS, QUARANTINE, SCHEMA_VERSION, TABLES, Table
from .sources.redact import Redactions, redact_batch
from .version import __version__

MANIFEST = "manifest.json"
#: the layout of the case folder and its manifest; a case of another layout is refused
STORE_VERSION = 2
LOCK = ".lock"
LOCK_HOLDER = ".lock.json"  # who holds the lock: present only while a writer holds it, or after one died
STAGING = "_tmp"
#: the folders whose Parquet files the manifest accounts for (anything else in the case is not ours)
DATA_FOLDERS = (
    "audit",
    "runtime",
    "flows",
    "cloud",
    "alerts",
    "objects",
    "quarantine",
    "superseded",
    "context",
    "findings",
)
TimeLike: TypeAlias = "str | dt.datetime | pd.Timestamp | None"
_COLUMNS_PER_READ = 8  # a whole-table read converts this many columns at a time


class CaseNotice(RuntimeWarning):
    """Something a person using the case should know that is not an error: a writer waiting
    for the case lock, a lock taken over from a writer that died, leftovers removed."""


def _notice(message: str) -> None:
    warnings.warn(message, CaseNotice, stacklevel=3)


# --------------------------------------------------------------------------- the lock


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) the case lock."""

    operation: str
    pid: int
    host: str
    user: str
    started: str

    def __str__(self) -> str:
        return f"{self.operation} by {self.user} (pid {self.pid} on {self.host}, since {self.started})"


class CaseLock:
    """One writer at a time, across processes and hosts that share the folder.

    The lock itself is ``filelock.FileLock``: an OS lock (``flock``) that the kernel releases
    when its holder dies, so a ``kill -9`` can never leave a case locked; on a filesystem
    without ``flock`` it falls back to filelock's soft lock, which reclaims a marker whose
    process is gone (same host, by PID and process start time). Beside it, ``.lock.json``
    names the holder — for the message a waiting writer prints — and is removed on release,
    so finding one when the lock is taken means the last writer died without finishing."""

    def __init__(self, case: Path, operation: str, *, timeout: float | None = None) -> None:
        self.case = case
        self.operation = operation
        self.timeout = timeout
        self._lock = filelock.FileLock(str(case / LOCK), thread_local=False)

    def holder(self) -> LockHolder | None:
        try:
            raw = json.loads((self.case / LOCK_HOLDER).read_text())
            return LockHolder(
                str(raw["operation"]), int(raw["pid"]), str(raw["host"]), str(raw["user"]), str(raw["started"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def __enter__(self) -> LockHolder | None:
        """Takes the lock; returns the holder a dead writer left behind, if any."""
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            holder = self.holder()
            _notice(f"{self.case}: waiting for the case lock: {holder or 'another writer'} is writing")
            try:
                self._lock.acquire(timeout=-1 if self.timeout is None else self.timeout)
            except filelock.Timeout:
                raise CaseError(
                    f"{self.case}: the case is busy ({self.holder() or 'another writer'}); "
                    f"try again when it has finished"
                ) from None
        dead = self.holder()
        if dead is not None:
            _notice(
                f"{self.case}: took over the case lock from {dead}: that writer ended without finishing, "
                f"its unfinished work is discarded and the case is as its last completed write left it"
            )
        me = {
            "operation": self.operation,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "user": _user(),
            "started": _now(),
        }
        _write_atomic(self.case / LOCK_HOLDER, json.dumps(me).encode())
        return dead

    def __exit__(self, *exc: object) -> None:
        try:
            (self.case / LOCK_HOLDER).unlink(missing_ok=True)
        finally:
            self._lock.release()


# --------------------------------------------------------------------------- transactions


@dataclass
class Transaction:
    """One write to a case: build files in ``staging``, ``publish`` them, change ``manifest``
    (a fresh copy read under the lock); ``Case.transaction`` commits it by replacing the
    manifest, or discards it."""

    id: str
    case: Path
    manifest: dict[str, Any]
    staging: Path
    published: list[str] = field(default_factory=list)

    def stage(self, rel: str) -> Path:
        """Where to build the file that will live at ``rel`` in the case."""
        path = self.staging / "stage" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, rels: Iterable[str]) -> None:
        """Move staged files into place and account for them (sha256, bytes, rows) in the
        manifest. They are part of the case only once the transaction commits."""
        files = self.manifest.setdefault("files", {})
        for rel in rels:
            _check_rel(rel, self.case)
            src, dst = self.staging / "stage" / rel, self.case / rel
            if dst.exists() or rel in files:
                raise CaseError(f"{dst}: a file of this name is already in the case; a write never replaces one")
            entry = _file_entry(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            self.published.append(rel)
            files[rel] = entry

    def view(self) -> Case:
        """The case as this transaction would leave it, to derive tables from (read-only)."""
        return Case(self.case, self.manifest)

    def retire(self, rels: Iterable[str]) -> None:
        """Files the new manifest replaces (a context generation, a findings run): listed as
        retired, they stay on disk for readers of older snapshots until the next write."""
        files = self.manifest.get("files", {})
        retired = self.manifest.setdefault("retired", [])
        for rel in rels:
            if files.pop(rel, None) is not None:
                retired.append(rel)


@dataclass
class Problem:
    """One thing ``verify`` found wrong, and what to do about it."""

    what: str
    path: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what} ({self.fix})"


@dataclass
class Verification:
    """What ``Case.verify`` checked: the manifest's own hash, each file, and every problem."""

    case: Path
    manifest_sha256: str
    files: int
    bytes: int
    rows: dict[str, int]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [
            f"case {self.case}",
            f"  manifest sha256 {self.manifest_sha256}",
            f"  {self.files} data file(s), {self.bytes:,} bytes: "
            + (
                "every sha256, size and row count matches the manifest"
                if self.ok
                else f"{len(self.problems)} problem(s)"
            ),
        ]
        lines += [f"  {name:<12} {n:>12,} rows" for name, n in self.rows.items()]
        lines += [f"  PROBLEM {p}" for p in self.problems]
        return "\n".join(lines)


# --------------------------------------------------------------------------- the case


class Case:
    """A case directory. Make one with ``Case.create(dir)``, reopen it with ``Case.open(dir)``."""

    #: the most rows ``case.audit()`` / ``runtime()`` / ``flows()`` / ``table()`` load into a
    #: DataFrame unless told otherwise (``max_rows=``); None: no limit. The analyses read the
    #: tables a chunk at a time (``chunks``) instead.
    max_rows: int | None = 10_000_000

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self._manifest = manifest

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, cluster: str | None = None, exist_ok: bool = False) -> Case:
        """Create an empty case (``exist_ok=True`` opens an existing one instead)."""
        p = Path(path)
        if p.exists() and not p.is_dir():
            raise CaseError(f"{p}: is a file, not a folder; give a new or empty folder for the case")
        if (p / MANIFEST).exists():
            if exist_ok:
                return cls.open(p)
            raise CaseError(f"{p}: a case already exists here; open it with Case.open, or choose another folder")
        if p.exists() and not all(_left_by_a_create(f.name) for f in p.iterdir()):
            raise CaseError(f"{p}: folder is not empty and holds no case; choose an empty or new folder")
        p.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {
            "tool": "k8sforensics",
            "tool_version": __version__,
            "schema_version": SCHEMA_VERSION,
            "store_version": STORE_VERSION,
            "created": _now(),
            "cluster": cluster,
            "revision": 0,
            "ingests": [],
            "tables": {},
            "files": {},
        }
        with CaseLock(p, "create"):
            created_meanwhile = (p / MANIFEST).exists()  # by another process, between the checks and the lock
            if not created_meanwhile:
                _write_atomic(p / MANIFEST, _manifest_bytes(manifest))
        if created_meanwhile:
            return cls.create(p, cluster=cluster, exist_ok=exist_ok)
        return cls(p, manifest)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Case:
        """Open an existing case (a snapshot: see ``refresh``)."""
        p = Path(path)
        return cls(p, _read_manifest(p))

    def refresh(self) -> Case:
        """Read the manifest again: the case as the last completed write left it."""
        self._manifest = _read_manifest(self.path)
        return self

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest (a copy): versions, every ingest with its inputs and counts, every file."""
        return json.loads(json.dumps(self._manifest))

    @property
    def cluster(self) -> str | None:
        return self._manifest.get("cluster")

    def __repr__(self) -> str:
        return f"Case({str(self.path)!r})"

    # ------------------------------------------------------------------ writing

    @contextmanager
    def transaction(self, operation: str, *, timeout: float | None = None) -> Iterator[Transaction]:
        """One write: take the lock (waiting up to ``timeout`` seconds, None: as long as it
        takes), read the manifest again, remove what dead writers left, and yield a
        ``Transaction``; commit it when the block ends, discard it if the block raises."""
        if not self.path.is_dir():
            raise CaseError(f"{self.path}: not a case folder")
        with CaseLock(self.path, operation, timeout=timeout):
            manifest = _read_manifest(self.path)
            self._remove_leftovers(manifest)
            tx_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
            tx = Transaction(tx_id, self.path, manifest, self.path / STAGING / tx_id)
            tx.staging.mkdir(parents=True)
            try:
                yield tx
                manifest["revision"] = int(manifest.get("revision", 0)) + 1
                manifest["tool_version"] = __version__
                _write_atomic(self.path / MANIFEST, _manifest_bytes(manifest))  # the commit
            except BaseException:
                for rel in tx.published:  # nothing lists them: take them back out now
                    (self.path / rel).unlink(missing_ok=True)
                raise
            finally:
                shutil.rmtree(tx.staging, ignore_errors=True)
                _rmdir_quietly(self.path / STAGING)
            self._manifest = manifest

    def _remove_leftovers(self, manifest: dict[str, Any]) -> None:
        """Under the lock no other writer is at work: every staging folder and every data
        file the manifest does not list was left by a writer that died, or was replaced by
        a write before the last one."""
        removed = 0
        for rel in manifest.pop("retired", []):
            (self.path / rel).unlink(missing_ok=True)
        staging = self.path / STAGING
        if staging.is_dir():
            for child in staging.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
                removed += 1
            _rmdir_quietly(staging)
        for rel in self._unlisted(manifest):
            (self.path / rel).unlink(missing_ok=True)
            removed += 1
        for folder in DATA_FOLDERS:  # empty date= and generation folders
            root = self.path / folder
            if root.is_dir():
                for d in sorted((d for d in root.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
                    _rmdir_quietly(d)
        if removed:
            _notice(
                f"{self.path}: removed {removed} file(s) or folder(s) no completed write lists (left by a writer that "
                f"was stopped, or replaced by later writes)"
            )

    def _unlisted(self, manifest: dict[str, Any]) -> list[str]:
        listed = set(manifest.get("files", {})) | set(manifest.get("retired", []))
        out = []
        for folder in DATA_FOLDERS:
            root = self.path / folder
            if root.is_dir():
                for f in root.rglob("*"):
                    if f.is_file() and not f.is_symlink():
                        rel = f.relative_to(self.path).as_posix()
                        if rel not in listed:
                            out.append(rel)
        return sorted(out)

    def save_findings(self, table: pa.Table, run: dict[str, Any]) -> None:
        """Replace the findings (derived from the tables and the rules, so a new run replaces
        the last one) and record the run in the manifest, with the ingests it saw."""
        if table.schema != FINDINGS.arrow_schema:
            table = table.cast(FINDINGS.arrow_schema)
        # findings are built from redacted tables; their text is redacted once more in case a
        # rule quoted something that only becomes a credential when joined (defence in depth)
        counts = Redactions()
        table = pa.Table.from_batches(
            [redact_batch(b, "findings", counts) for b in table.to_batches()], schema=table.schema
        )
        seen = [i["id"] for i in self._manifest.get("ingests", [])]
        with self.transaction("detect") as tx:
            rel = f"findings/{tx.id}.parquet"
            pq.write_table(table, tx.stage(rel), compression="zstd")
            old = tx.manifest.get("findings", {}).get("path")
            tx.publish([rel])
            if old:
                tx.retire([old])
            tx.manifest["findings"] = {"path": rel, "rows": table.num_rows}
            later = [i["id"] for i in tx.manifest["ingests"] if i["id"] not in seen]
            tx.manifest.setdefault("detections", []).append(
                {"time": _now(), **run, "ingests_seen": seen, "ingests_not_seen": later}
            )
        if later:
            _notice(
                f"{self.path}: these findings are from the case as it was before ingest(s) {', '.join(later)}; "
                f"run detection again to include them"
            )

    # ------------------------------------------------------------------ checking

    def verify(self) -> Verification:
        """Chain of custody: every file the manifest lists is on disk with its sha256, size and
        row count; the tables' row counts add up; every input's records are accounted for;
        nothing unlisted lies in the data folders; no writer died leaving work behind."""
        raw = (self.path / MANIFEST).read_bytes()
        m = _read_manifest(self.path)
        problems: list[Problem] = []
        files = m.get("files", {})
        total = 0
        for rel, entry in sorted(files.items()):
            path = self.path / rel
            if not path.is_file():
                problems.append(Problem("listed in the manifest, missing on disk", rel, "restore the case from a copy"))
                continue
            size = path.stat().st_size
            total += size
            if size != entry.get("bytes"):
                problems.append(
                    Problem(
                        f"{size:,} bytes on disk, {entry.get('bytes'):,} in the manifest",
                        rel,
                        "restore the case from a copy",
                    )
                )
                continue
            if _sha256(path) != entry.get("sha256"):
                problems.append(
                    Problem(
                        "sha256 differs from the manifest: the file was changed", rel, "restore the case from a copy"
                    )
                )
                continue
            try:
                rows = pq.ParquetFile(path).metadata.num_rows
            except (OSError, pa.ArrowException) as e:
                problems.append(Problem(f"not a readable Parquet file ({e})", rel, "restore the case from a copy"))
                continue
            if rows != entry.get("rows"):
                problems.append(
                    Problem(f"{rows:,} rows, {entry.get('rows')} in the manifest", rel, "restore the case from a copy")
                )
        for name, t in m.get("tables", {}).items():
            for rel in t.get("parts", []):
                if rel not in files:
                    problems.append(
                        Problem(
                            f"a part of table {name} the manifest's file list does not account for",
                            rel,
                            "the manifest is inconsistent: restore the case from a copy",
                        )
                    )
        rows = {}
        for name in TABLES:
            if name in m.get("tables", {}) and "rows" in m["tables"][name]:
                listed = sum(files.get(p, {}).get("rows") or 0 for p in m["tables"][name]["parts"])
                gone = sum(files.get(p, {}).get("rows") or 0 for p in _parts_of(m, superseded_table(name)))
                rows[name] = m["tables"][name]["rows"]
                if listed - gone != rows[name]:
                    problems.append(
                        Problem(
                            f"table {name}: its parts hold {listed - gone:,} rows, the manifest says {rows[name]:,}",
                            MANIFEST,
                            "restore the case from a copy",
                        )
                    )
        for ing in m.get("ingests", []):
            for i in ing.get("inputs", []):
                accounted = (
                    i.get("rows", 0)
                    + i.get("merged", 0)
                    + sum((i.get("skipped") or {}).values())
                    + i.get("quarantined", 0)
                )
                if accounted != i.get("records"):
                    problems.append(
                        Problem(
                            f"{i.get('records')} records read but {accounted} accounted for (rows, merged, skipped, "
                            f"quarantined)",
                            str(i.get("path")),
                            "re-ingest the file into a new case",
                        )
                    )
        for rel in self._unlisted(m):
            problems.append(
                Problem(
                    "in the case folder but not listed in the manifest (left by a writer that was stopped, or "
                    "put there by hand)",
                    rel,
                    "the next write removes it; it is not part of the case",
                )
            )
        if (self.path / STAGING).exists():
            problems.append(Problem("unfinished work of a writer", STAGING, "the next write removes it"))
        lock = CaseLock(self.path, "verify")
        holder = lock.holder()
        if holder is not None:
            try:
                with lock._lock.acquire(timeout=0):
                    problems.append(
                        Problem(
                            f"{holder} ended without finishing",
                            LOCK_HOLDER,
                            "the next write takes the lock over and removes what it left",
                        )
                    )
            except filelock.Timeout:
                problems.append(Problem(f"{holder} is writing now", LOCK_HOLDER, "verify again when it has finished"))
        return Verification(self.path, hashlib.sha256(raw).hexdigest(), len(files), total, rows, problems)

    def _damaged(self, error: BaseException) -> CaseError:
        """The error to raise when reading failed: names the listed file that is missing or
        damaged when there is one, else says what failed."""
        for rel, entry in sorted(self._manifest.get("files", {}).items()):
            path = self.path / rel
            if not path.is_file():
                return CaseError(
                    f"{path}: listed in the manifest but missing; the case cannot be read until it is restored "
                    f"from a copy (`k8sforensics verify {self.path}` lists every problem)"
                )
            if path.stat().st_size != entry.get("bytes"):
                return CaseError(
                    f"{path}: {path.stat().st_size:,} bytes, the manifest says {entry.get('bytes'):,} (truncated or "
                    f"changed); restore the case from a copy (`k8sforensics verify {self.path}` lists every problem)"
                )
        return CaseError(
            f"{self.path}: reading the case failed ({type(error).__name__}: {error}); "
            f"`k8sforensics verify {self.path}` checks every file"
        )

    # ------------------------------------------------------------------ reading

    def _parts(self, table: str) -> list[str]:
        return _parts_of(self._manifest, table)

    def _superseded(self, table: str) -> list[str]:
        """The event ids of ``table``'s rows a later ingest replaced (a more final stage of the
        same request): every read — ``table()``, ``sql()``, ``verify()`` — leaves them out."""
        ids: list[str] = []
        for p in _parts_of(self._manifest, superseded_table(table)):
            ids.extend(pq.read_table(self.path / p, columns=["event_id"]).column(0).to_pylist())
        return ids

    def table(
        self,
        name: str,
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        namespace: str | list[str] | None = None,
        pod: str | list[str] | None = None,
        columns: list[str] | None = None,
        max_rows: int | None | EllipsisType = ...,
    ) -> pd.DataFrame:
        """One table as a DataFrame; time (``start <= time < end``), namespace and pod filters are
        pushed down to the Parquet files (partitions and row groups outside them are not read).
        The frame's ``attrs["table"]`` names the table (``kf.enrich`` fills its context columns).
        A read that would load more than ``max_rows`` rows (default ``case.max_rows``) stops with
        a message saying how to narrow it, before anything is loaded."""
        if name not in TABLES:
            raise CaseError(f"no table {name!r}; tables: {', '.join(TABLES)}")
        limit = self.max_rows if max_rows is ... else max_rows
        try:
            if limit is not None:
                n = self._count(TABLES[name], start=start, end=end, namespace=namespace, pod=pod)
                if n > limit:
                    raise CaseError(
                        f"case.{name}() would load {n:,} rows, more than max_rows={limit:,}: narrow it with start=, "
                        f"end=, namespace=, pod= (and columns= to hold less), aggregate in DuckDB with case.sql(...), "
                        f"or pass max_rows=None (or set case.max_rows) if this machine has the memory"
                    )
            frame = self._read(TABLES[name], start=start, end=end, namespace=namespace, pod=pod, columns=columns)
        except (OSError, pa.ArrowException) as e:
            raise self._damaged(e) from None
        frame.attrs["table"] = name
        return frame

    def chunks(
        self,
        name: str,
        *,
        rows: int = 1_000_000,
        every: dt.timedelta | pd.Timedelta = dt.timedelta(minutes=1),
        columns: list[str] | None = None,
    ) -> Iterator[pd.DataFrame]:
        """One table in time order, a chunk at a time: what a pass over a table larger than
        memory reads. Each chunk holds whole ``every``-long time buckets (counted from the
        epoch) and at most ``rows`` rows, unless one bucket alone holds more; the chunks
        together hold every row once, in the order ``case.table`` gives."""
        if name not in TABLES:
            raise CaseError(f"no table {name!r}; tables: {', '.join(TABLES)}")
        if pd.Timedelta(every).value <= 0 or rows <= 0:
            raise ValueError("chunks: every and rows must be positive")
        for start, end in self.time_ranges(name, every=every, rows=rows):
            yield self.table(name, start=start, end=end, columns=columns, max_rows=None)

    def time_ranges(
        self,
        source: str,
        *,
        every: dt.timedelta | pd.Timedelta,
        rows: int,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """``frames.time_chunks`` over ``source`` (a table, or a parenthesised query over the
        case's views), its rows counted per bucket in DuckDB."""
        step = pd.Timedelta(every).value
        query = (
            f"SELECT epoch_ns(time) // {step} AS bucket, count(*) AS n FROM {source} WHERE time IS NOT NULL GROUP BY 1"
        )
        counts = self.sql(query) if con is None else con.sql(query).df()
        return time_chunks(counts.set_index("bucket")["n"], every=every, rows=rows)

    def _count(self, table: Table, *, start: TimeLike, end: TimeLike, namespace: Any, pod: Any = None) -> int:
        """Rows a read with these filters returns (Parquet statistics where they settle it)."""
        scan = self._scan(table, start=start, end=end, namespace=namespace, pod=pod)
        return 0 if scan is None else int(scan[0].count_rows(filter=scan[1]))

    def _scan(
        self, table: Table, *, start: TimeLike, end: TimeLike, namespace: Any, pod: Any = None
    ) -> tuple[ds.Dataset, Any] | None:
        parts = self._parts(table.name)
        if not parts:
            return None
        dataset = ds.dataset([str(self.path / p) for p in parts], schema=table.arrow_schema, format="parquet")
        flt = None
        if start is not None:
            flt = _and(flt, ds.field("time") >= _utc(start))
        if end is not None:
            flt = _and(flt, ds.field("time") < _utc(end))
        if namespace is not None:
            ns = [namespace] if isinstance(namespace, str) else list(namespace)
            flt = _and(flt, ds.field("namespace").isin(ns))
        if pod is not None:
            pods = [pod] if isinstance(pod, str) else list(pod)
            flt = _and(flt, ds.field("pod").isin(pods))
        gone = self._superseded(table.name)
        if gone:
            flt = _and(flt, ~ds.field("event_id").isin(gone))
        return dataset, flt

    def _read(
        self,
        table: Table,
        *,
        start: TimeLike,
        end: TimeLike,
        namespace: Any,
        columns: list[str] | None,
        pod: Any = None,
    ) -> pd.DataFrame:
        if columns is not None:
            unknown = [c for c in columns if c not in table.names]
            if unknown:
                raise CaseError(f"table {table.name} has no column(s) {unknown}; columns: {', '.join(table.names)}")
        scan = self._scan(table, start=start, end=end, namespace=namespace, pod=pod)
        names = list(columns) if columns is not None else table.names
        if scan is None:
            return to_frame(table.arrow_schema.empty_table().select(names))
        dataset, flt = scan
        keys = [k for k in ("time", "event_id") if k in table.names]
        order = (
            pc.sort_indices(dataset.to_table(columns=keys, filter=flt), [(k, "ascending") for k in keys])
            if "time" in names
            else None
        )
        # A few columns at a time, each put in time order and converted before the next is
        # read: the peak is the frame plus a few columns, not the frame plus the table twice.
        frames = []
        for i in range(0, len(names), _COLUMNS_PER_READ):
            part = dataset.to_table(columns=names[i : i + _COLUMNS_PER_READ], filter=flt)
            frames.append(to_frame(part if order is None else part.take(order)))
            del part
        return pd.concat(frames, axis=1) if len(frames) > 1 else frames[0]

    def audit(
        self,
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        namespace: str | list[str] | None = None,
        pod: str | list[str] | None = None,
        columns: list[str] | None = None,
        max_rows: int | None | EllipsisType = ...,
    ) -> pd.DataFrame:
        """The audit table (one row per request), ordered by time; filters are pushed down."""
        return self.table(
            "audit", start=start, end=end, namespace=namespace, pod=pod, columns=columns, max_rows=max_rows
        )

    def runtime(
        self,
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        namespace: str | list[str] | None = None,
        pod: str | list[str] | None = None,
        columns: list[str] | None = None,
        max_rows: int | None | EllipsisType = ...,
    ) -> pd.DataFrame:
        """The runtime table (Falco, Tetragon, ...), ordered by time; filters are pushed down."""
        return self.table(
            "runtime", start=start, end=end, namespace=namespace, pod=pod, columns=columns, max_rows=max_rows
        )

    def flows(
        self,
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        namespace: str | list[str] | None = None,
        pod: str | list[str] | None = None,
        columns: list[str] | None = None,
        max_rows: int | None | EllipsisType = ...,
    ) -> pd.DataFrame:
        """The flows table (Hubble, VPC/NSG/Calico flow logs), ordered by time; the namespace
        and pod filters apply to the source side as the flow source recorded it (a flow log that
        names no pod matches neither: enrich the frame with ``kf.enrich`` and filter it); filters are
        pushed down."""
        return self.table(
            "flows", start=start, end=end, namespace=namespace, pod=pod, columns=columns, max_rows=max_rows
        )

    def cloud(
        self,
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        columns: list[str] | None = None,
        max_rows: int | None | EllipsisType = ...,
    ) -> pd.DataFrame:
        """The cloud table (CloudTrail, GCP Cloud Audit Logs), ordered by time, as the records
        say; the pod or node each session was used from comes from ``context.cloud.cloud_sessions``."""
        return self.table("cloud", start=start, end=end, columns=columns, max_rows=max_rows)

    def alerts(
        self,
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        namespace: str | list[str] | None = None,
        pod: str | list[str] | None = None,
        columns: list[str] | None = None,
        max_rows: int | None | EllipsisType = ...,
    ) -> pd.DataFrame:
        """The vendor alerts (GuardDuty, Defender for Containers, Security Command Center),
        ordered by time; filters are pushed down."""
        return self.table(
            "alerts", start=start, end=end, namespace=namespace, pod=pod, columns=columns, max_rows=max_rows
        )

    def context(self, name: str) -> pd.DataFrame:
        """A context table built from the case's Kubernetes objects and events: pods, pod_ips,
        containers, namespaces, services, endpoints, nodes, service_accounts, rbac,
        network_policies, workloads."""
        if name not in CONTEXT_TABLES:
            raise CaseError(f"no context table {name!r}; tables: {', '.join(CONTEXT_TABLES)}")
        rel = self._manifest.get("context", {}).get("tables", {}).get(name)
        if rel is None:
            return to_frame(CONTEXT_TABLES[name].arrow_schema.empty_table())
        try:
            return to_frame(pq.read_table(self.path / rel, schema=CONTEXT_TABLES[name].arrow_schema))
        except (OSError, pa.ArrowException) as e:
            raise self._damaged(e) from None

    def objects(self) -> pd.DataFrame:
        """Every Kubernetes object ingested (kubectl dumps), one row each."""
        return self.table("objects")

    def findings(self) -> pd.DataFrame:
        """The findings of the last detection run (``kf.detect(case)``), ordered by time;
        empty when detection has not run."""
        rel = self._manifest.get("findings", {}).get("path")
        if rel is None:
            return to_frame(FINDINGS.arrow_schema.empty_table())
        try:
            return to_frame(pq.read_table(self.path / rel, schema=FINDINGS.arrow_schema))
        except (OSError, pa.ArrowException) as e:
            raise self._damaged(e) from None

    def quarantine(self) -> pd.DataFrame:
        """Every record that did not become a row, with the file, record number and reason."""
        parts = self._parts("quarantine")
        if not parts:
            return to_frame(QUARANTINE.arrow_schema.empty_table())
        try:
            return to_frame(
                pa.concat_tables([pq.read_table(self.path / p, schema=QUARANTINE.arrow_schema) for p in parts])
            )
        except (OSError, pa.ArrowException) as e:
            raise self._damaged(e) from None

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per table (``audit``, ``quarantine``, ...)."""
        con = duckdb.connect()
        try:
            for name, table in TABLES.items():
                parts = self._parts(name)
                if parts:
                    files = ", ".join(_sql_str(str(self.path / p)) for p in parts)
                    src = f"read_parquet([{files}], hive_partitioning = false, union_by_name = true)"
                else:
                    cols = ", ".join(f"NULL::{_duck_type(c.type)} AS {c.name}" for c in table.columns)
                    src = f"(SELECT {cols} WHERE false)"
                gone = self._parts(superseded_table(name))
                where = ""
                if gone:
                    sfiles = ", ".join(_sql_str(str(self.path / p)) for p in gone)
                    where = f" WHERE event_id NOT IN (SELECT event_id FROM read_parquet([{sfiles}]))"
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM {src}{where}")
            rel = self._manifest.get("findings", {}).get("path")
            if rel is not None:
                con.execute(f"CREATE VIEW findings AS SELECT * FROM read_parquet({_sql_str(str(self.path / rel))})")
        except duckdb.Error as e:
            con.close()
            raise self._damaged(e) from None
        return con

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run SQL over the case's tables through DuckDB, e.g.
        ``case.sql("select verb, count(*) n from audit group by verb order by n desc")``."""
        con = self.connect()
        try:
            rel = con.sql(query, params=params) if params else con.sql(query)
            return to_frame(rel.to_arrow_table() if rel is not None else pa.table({}))
        except (duckdb.IOException, duckdb.InvalidInputException) as e:
            raise self._damaged(e) from None
        except duckdb.Error as e:
            raise CaseError(f"SQL failed: {e}") from None
        finally:
            con.close()

    def summary(self) -> str:
        """Tables, row counts, inputs and time range of the whole case."""
        m = self._manifest
        lines = [f"case {self.path}  (schema {m['schema_version']}, cluster {m.get('cluster') or '—'})"]
        inputs = [i for ing in m["ingests"] for i in ing["inputs"]]
        lines.append(f"  {len(m['ingests'])} ingest(s), {len(inputs)} evidence file(s)")
        for name, t in m.get("tables", {}).items():
            if name in TABLES and "rows" in t:
                lines.append(f"  {name:<12} {t['rows']:>12,} rows")
        q = sum(i["quarantined"] for i in inputs)
        lines.append(f"  {'quarantine':<12} {q:>12,} records")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the manifest


def superseded_table(table: str) -> str:
    """The manifest entry listing the parts that hold ``table``'s superseded event ids."""
    return f"superseded_{table}"


def _parts_of(manifest: dict[str, Any], table: str) -> list[str]:
    return list(manifest.get("tables", {}).get(table, {}).get("parts", []))


def _read_manifest(p: Path) -> dict[str, Any]:
    """The manifest, checked for the shape every reader relies on: a damaged or foreign
    manifest is one clear error, never a traceback later."""
    if p.exists() and not p.is_dir():
        raise CaseError(f"{p}: is a file, not a case folder; give the folder that holds manifest.json")
    where = p / MANIFEST
    try:
        raw = where.read_bytes()
    except FileNotFoundError:
        raise CaseError(
            f"{p}: not a case (no {MANIFEST}); create one with Case.create or `k8sforensics ingest --case`"
        ) from None
    except OSError as e:
        raise CaseError(f"{where}: unreadable ({e.strerror or e}); check the permissions") from None
    fix = "restore the case from a copy, or ingest the evidence into a new case"
    try:
        m = json.loads(raw)
    except ValueError as e:
        raise CaseError(f"{where}: not valid JSON ({e}); {fix}") from None
    if not isinstance(m, dict):
        raise CaseError(f"{where}: a manifest is a JSON object, this is a {type(m).__name__}; {fix}")
    if m.get("tool") != "k8sforensics":
        raise CaseError(f"{where}: not a k8sforensics manifest (tool is {m.get('tool')!r}); {fix}")
    if m.get("schema_version") != SCHEMA_VERSION or m.get("store_version") != STORE_VERSION:
        raise CaseError(
            f"{p}: case has schema {m.get('schema_version')} / store layout {m.get('store_version')}, this k8sforensics "
            f"writes schema {SCHEMA_VERSION} / layout {STORE_VERSION}; re-ingest the evidence into a new case"
        )
    _check_shape(m, where, fix)
    return m


def _check_shape(m: dict[str, Any], where: Path, fix: str) -> None:
    def bad(what: str) -> CaseError:
        return CaseError(f"{where}: {what}; {fix}")

    if not isinstance(m.get("ingests"), list):
        raise bad("'ingests' is missing or not a list")
    for k, ing in enumerate(m["ingests"]):
        if not isinstance(ing, dict) or not isinstance(ing.get("id"), str) or not isinstance(ing.get("inputs"), list):
            raise bad(f"ingest #{k + 1} is not an object with an 'id' and a list of 'inputs'")
        for i in ing["inputs"]:
            if not isinstance(i, dict) or not isinstance(i.get("sha256"), str):
                raise bad(f"ingest {ing['id']}: an input without a sha256")
    if not isinstance(m.get("tables"), dict) or not isinstance(m.get("files"), dict):
        raise bad("'tables' or 'files' is missing or not an object")
    case = where.parent
    for name, t in m["tables"].items():
        if (
            not isinstance(t, dict)
            or not isinstance(t.get("parts"), list)
            or not all(isinstance(r, str) for r in t["parts"])
        ):
            raise bad(f"table {name!r} has no list of parts")
        for rel in t["parts"]:
            _check_rel(rel, case, where)
    for rel, entry in m["files"].items():
        _check_rel(rel, case, where)
        if not isinstance(entry, dict):
            raise bad(f"file {rel!r} has no sha256, bytes and rows")
    if not isinstance(m.get("retired", []), list):
        raise bad("'retired' is not a list")
    for rel in m.get("retired", []):
        _check_rel(rel, case, where)
    for key in ("context", "findings"):
        if key in m and not isinstance(m[key], dict):
            raise bad(f"{key!r} is not an object")
    for rel in list(m.get("context", {}).get("tables", {}).values()) + [m.get("findings", {}).get("path")]:
        if rel is not None:
            _check_rel(rel, case, where)


def _check_rel(rel: Any, case: Path, where: Path | None = None) -> None:
    """A file of the case is a relative path inside one of its data folders: a manifest
    never makes the toolkit read or write outside the case."""
    p = PurePosixPath(rel) if isinstance(rel, str) else None
    if p is None or p.is_absolute() or ".." in p.parts or not p.parts or p.parts[0] not in DATA_FOLDERS:
        raise CaseError(
            f"{where or case / MANIFEST}: {rel!r} is not a path inside the case's data folders; "
            f"restore the case from a copy"
        )


def _manifest_bytes(m: dict[str, Any]) -> bytes:
    return (json.dumps(m, indent=2, default=str) + "\n").encode()


def _left_by_a_create(name: str) -> bool:
    """The lock, its holder note, the manifest or the half-written sibling of either: what another
    process creating the same case leaves in the folder while it works (or just after)."""
    creating = (LOCK, LOCK_HOLDER, MANIFEST)
    return name in creating or any(name.startswith(f".{c}.") and name.endswith(".tmp") for c in creating)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside, flush to disk, rename over, flush the folder: a reader (or a crash) sees
    the old file or the new one, never half of either."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_entry(path: Path) -> dict[str, Any]:
    """sha256, bytes and rows of a file about to be published, flushed to disk first so the
    manifest never lists a file a power cut could lose."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    rows = pq.ParquetFile(path).metadata.num_rows if path.suffix == ".parquet" else None
    return {"sha256": _sha256(path), "bytes": path.stat().st_size, "rows": rows}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def _rmdir_quietly(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _and(a: Any, b: Any) -> Any:
    return b if a is None else a & b


def _utc(t: Any) -> pa.Scalar:
    return pa.scalar(utc_timestamp(t), type=pa.timestamp("ns", tz="UTC"))


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_list(t):
        return _duck_type(t.value_type) + "[]"
    if pa.types.is_map(t):
        return f"MAP(VARCHAR, {_duck_type(t.item_type)})"
    return "VARCHAR"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
