"""The case store: Parquet tables plus a manifest, write-once, readable by pandas and DuckDB.

Layout::

    case/
      manifest.json                 tool and schema version; every ingest: inputs with sha256,
                                    bytes, format, counts and time range; the table parts
      audit/date=YYYY-MM-DD/part-<ingest>.parquet    hive-partitioned by UTC date
      quarantine/part-<ingest>.parquet               bad records, one row each
      superseded/audit-<ingest>.parquet              rows a later ingest replaced (see below)

Files are written under ``_tmp/`` and renamed into place; the manifest is replaced last
and lists every part, so a crashed ingest leaves nothing a reader would see. A file whose
sha256 the case already holds is not read again.

One row per audit request holds across ingests too: when a later ingest brings a more
final stage of a request already in the case, the old row's event_id is recorded as
superseded (the old file stays untouched) and readers leave it out.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time as _time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import Any, TypeAlias

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from . import __version__
from .context import build_context
from .context.lifetimes import fold_pods, pods_from_all_sources
from .enrich import STEPS as ENRICH_STEPS
from .errors import CaseError
from .frames import time_chunks, to_frame, utc_timestamp
from .ingest import PartWriter, StageMerger, resolve_collisions, rewrite_part
from .schema import (
    AUDIT,
    CONTEXT_TABLES,
    EVENT_TABLES,
    FINDINGS,
    OBJECTS,
    PODS,
    QUARANTINE,
    SCHEMA_VERSION,
    TABLES,
    Table,
)
from .sources import (
    FileResult,
    OnBadLines,
    PathsLike,
    Reader,
    expand_paths,
    hash_file,
    open_reader,
)
from .sources._arrow import rows_to_batch

MANIFEST = "manifest.json"
FINDINGS_FILE = "findings.parquet"
TimeLike: TypeAlias = "str | dt.datetime | pd.Timestamp | None"


@dataclass
class IngestReport:
    """What one ingest did; ``str(report)`` is the one-screen summary."""

    case: Path
    ingest_id: str
    seconds: float
    files: list[FileResult] = field(default_factory=list)
    already_ingested: list[str] = field(default_factory=list)
    unrecognised: list[tuple[str, str]] = field(default_factory=list)
    superseded: int = 0
    quarantine_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    def __str__(self) -> str:
        return summary_text(self)


def summary_text(report: IngestReport) -> str:
    lines = [f"case {report.case}  ingest {report.ingest_id}  ({report.seconds:.1f} s)"]
    by: dict[tuple[str, str], list[FileResult]] = {}
    for f in report.files:
        by.setdefault((f.family or "?", f.format or "?"), []).append(f)
    head = f"  {'family':<8} {'format':<24} {'files':>5} {'records':>10} {'rows':>10} {'merged':>8} {'skipped':>8} {'quarant.':>8}  time range (UTC)"
    lines.append(head)
    for (fam, fmt), fs in sorted(by.items()):
        tmin = min((f.time_min for f in fs if f.time_min is not None), default=None)
        tmax = max((f.time_max for f in fs if f.time_max is not None), default=None)
        rng = f"{_ts(tmin)} → {_ts(tmax)}" if tmin is not None else "—"
        lines.append(
            f"  {fam:<8} {fmt:<24} {len(fs):>5} {sum(f.records for f in fs):>10,} {sum(f.rows for f in fs):>10,} "
            f"{sum(f.merged for f in fs):>8,} {sum(sum(f.skipped.values()) for f in fs):>8,} "
            f"{sum(f.quarantined for f in fs):>8,}  {rng}"
        )
    if not report.files:
        lines.append("  (no new evidence)")
    if report.already_ingested:
        lines.append(f"  already in the case (same sha256), not read again: {len(report.already_ingested)} file(s)")
    if report.superseded:
        lines.append(f"  {report.superseded} row(s) from earlier ingests replaced by a more final stage of the same request")
    if report.unrecognised:
        lines.append(f"  not evidence ({len(report.unrecognised)} file(s) no format recognises; the manifest lists why):")
        for path, why in report.unrecognised[:8]:
            lines.append(f"    {path}" + ("  (empty)" if why.startswith("empty") else ""))
        if len(report.unrecognised) > 8:
            lines.append(f"    … and {len(report.unrecognised) - 8} more")
    if report.quarantined:
        top = ", ".join(f"{r} ×{n}" for r, n in report.quarantine_reasons.most_common(3))
        lines.append(f"  quarantined {report.quarantined:,} record(s): {top}")
        lines.append("  see case.quarantine() or quarantine/*.parquet")
    skipped = Counter[str]()
    for f in report.files:
        skipped.update(f.skipped)
    if skipped:
        lines.append("  skipped (valid, not events): " + ", ".join(f"{r} ×{n}" for r, n in skipped.most_common(3)))
    return "\n".join(lines)


def _ts(t: Any) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t is not None else "—"


_COLUMNS_PER_READ = 8  # a whole-table read converts this many columns at a time


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
        if (p / MANIFEST).exists():
            if exist_ok:
                return cls.open(p)
            raise CaseError(f"{p}: a case already exists here; open it with Case.open, or choose another folder")
        if p.exists() and any(p.iterdir()):
            raise CaseError(f"{p}: folder is not empty and holds no case; choose an empty or new folder")
        p.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {
            "tool": "k8sforensics",
            "tool_version": __version__,
            "schema_version": SCHEMA_VERSION,
            "created": _now(),
            "cluster": cluster,
            "ingests": [],
            "tables": {},
        }
        case = cls(p, manifest)
        case._write_manifest()
        return case

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Case:
        """Open an existing case."""
        p = Path(path)
        try:
            manifest = json.loads((p / MANIFEST).read_text())
        except FileNotFoundError:
            raise CaseError(f"{p}: not a case (no {MANIFEST}); create one with Case.create or `k8sforensics ingest --case`") from None
        except (OSError, json.JSONDecodeError) as e:
            raise CaseError(f"{p / MANIFEST}: unreadable manifest ({e})") from e
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise CaseError(
                f"{p}: case has schema version {manifest.get('schema_version')}, this k8sforensics "
                f"writes {SCHEMA_VERSION}; re-ingest the evidence into a new case"
            )
        return cls(p, manifest)

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest (a copy): versions, every ingest with its inputs and counts, table parts."""
        return json.loads(json.dumps(self._manifest))

    @property
    def cluster(self) -> str | None:
        return self._manifest.get("cluster")

    def __repr__(self) -> str:
        return f"Case({str(self.path)!r})"

    # ------------------------------------------------------------------ ingest

    def ingest(
        self,
        paths: PathsLike,
        *,
        cluster: str | None = None,
        on_bad_lines: OnBadLines = "warn",
        progress: bool | None = None,
        client: Any = None,
    ) -> IngestReport:
        """Read evidence files into the case. Files already in the case (same sha256) are
        passed over. Returns a report whose ``str()`` is the summary.

        ``client`` (a ``dask.distributed.Client``) parses the files on its workers, one task per
        file, retried on failure; the workers must see the case folder at the same path (a
        shared volume). The case is the same as a single-process ingest's."""

        t0 = _time.perf_counter()
        ingest_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        report = IngestReport(self.path, ingest_id, 0.0)
        files = expand_paths(paths)
        known = {i["sha256"] for ing in self._manifest["ingests"] for i in ing["inputs"]}
        with self._lock():
            tmp = self.path / "_tmp" / ingest_id
            new = tmp / "new"
            new.mkdir(parents=True)
            try:
                readers: list[tuple[int, Reader]] = []
                for ordinal, (path, explicit) in enumerate(files):
                    ev = hash_file(path)
                    if ev.sha256 in known:
                        report.already_ingested.append(str(path))
                        continue
                    known.add(ev.sha256)
                    reader = open_reader(
                        path, cluster=cluster or self.cluster, on_bad_lines=on_bad_lines, explicit=explicit, evidence=ev
                    ).prepare()
                    if reader.result.unrecognised:
                        report.unrecognised.append((str(path), reader.result.unrecognised))
                        continue
                    readers.append((ordinal, reader))
                if client is None:
                    parts, quarantine, merged = self._parse_here(readers, new, ingest_id, report, progress)
                else:
                    parts, quarantine, merged = self._parse_on(client, readers, new, ingest_id, report, progress,
                                                               cluster=cluster or self.cluster, on_bad_lines=on_bad_lines)
                superseded_part = None
                if parts.get("audit"):
                    col = resolve_collisions(
                        new, parts["audit"], self.path, self._parts("audit"), set(self._superseded("audit")), spill=tmp / "spill"
                    )
                    for rel in sorted(set(col.drop_new) | set(col.stages_new)):
                        if not rewrite_part(new / rel, AUDIT.arrow_schema, col.drop_new.get(rel, set()), col.stages_new.get(rel, {})):
                            parts["audit"].remove(rel)
                    merged.update(col.merged)
                    if col.superseded_old:
                        superseded_part = f"superseded/audit-{ingest_id}.parquet"
                        out = new / superseded_part
                        out.parent.mkdir(parents=True, exist_ok=True)
                        pq.write_table(pa.table({"event_id": pa.array(col.superseded_old, pa.string())}), out)
                        parts["superseded_audit"] = [superseded_part]
                        report.superseded = len(col.superseded_old)
                for f in report.files:
                    n = merged.get(f.evidence.sha256, 0)
                    f.merged, f.rows = n, f.rows - n
                for q in quarantine:
                    report.quarantine_reasons[q["reason"]] += 1
                if quarantine:
                    rel = f"quarantine/part-{ingest_id}.parquet"
                    (new / rel).parent.mkdir(parents=True, exist_ok=True)
                    pq.write_table(pa.Table.from_pylist(quarantine, schema=QUARANTINE.arrow_schema), new / rel)
                    parts["quarantine"] = [rel]
                if parts.get("objects"):
                    # context tables are derived from every object the case holds: rebuilt whole
                    objects = [str(new / p) for p in parts["objects"]] + [str(self.path / p) for p in self._parts("objects")]
                    for name, table in build_context(pq.read_table(objects, schema=OBJECTS.arrow_schema)).items():
                        out = new / "context" / f"{name}.parquet"
                        out.parent.mkdir(parents=True, exist_ok=True)
                        pq.write_table(table, out)
                # Publish: rename every file into place, then replace the manifest.
                for src in sorted(new.rglob("*.parquet")):
                    dst = self.path / src.relative_to(new)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, dst)
                self._record_ingest(report, {k: v for k, v in parts.items() if v}, cluster=cluster, on_bad_lines=on_bad_lines)
                self._rebuild_lifetimes(tmp)
                self._manifest["enrichment"] = {"context_built": _now(), "steps": {k: list(v) for k, v in ENRICH_STEPS.items()},
                                                "applied": "on read (case.<table>(enrich=True), kf.enrich)"}
                self._write_manifest()
                report.seconds = _time.perf_counter() - t0
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
                try:
                    (self.path / "_tmp").rmdir()
                except OSError:
                    pass
        return report

    def _parse_here(self, readers: list[tuple[int, Reader]], new: Path, ingest_id: str, report: IngestReport,
                    progress: bool | None) -> tuple[dict[str, list[str]], list[dict[str, Any]], Counter[str]]:
        """Parse every file in this process, one stage merge across all of them."""
        from tqdm.auto import tqdm

        merger = StageMerger()
        quarantine: list[dict[str, Any]] = []
        writers: dict[str, PartWriter] = {}
        total = sum(r.result.evidence.size for _, r in readers)
        show = progress if progress is not None else total > (64 << 20)
        with tqdm(total=total, unit="B", unit_scale=True, desc="ingest", disable=not show, leave=False) as bar:
            for ordinal, reader in readers:
                table = TABLES[reader.result.family or ""]
                writer = writers.get(table.name) or writers.setdefault(table.name, PartWriter(new, table))
                ev = reader.result.evidence
                name = f"{ingest_id}-{ordinal:05d}-{ev.short_id}"
                for batch in reader.batches():
                    keep = None
                    if table is AUDIT:
                        batch, keep, released = merger.feed(batch)
                        for row in released:
                            writer.write(f"{ingest_id}-held", row)
                    writer.write(name, batch, keep)
                writer.finish_part(name)
                bar.update(ev.size)
                report.files.append(reader.result)
                quarantine.extend(reader.quarantine)
        if "audit" in writers:
            for row in merger.drain():
                writers["audit"].write(f"{ingest_id}-held", row)
        return {name: w.close() for name, w in writers.items()}, quarantine, merger.merged

    def _parse_on(self, client: Any, readers: list[tuple[int, Reader]], new: Path, ingest_id: str, report: IngestReport,
                  progress: bool | None, *, cluster: str | None, on_bad_lines: str) -> tuple[dict[str, list[str]], list[dict[str, Any]], Counter[str]]:
        """Parse each file as a task on a Dask cluster, into a folder of its own; a finished
        task's files are moved into ``new`` in file order, so the case does not depend on which
        worker was quicker."""
        from distributed import as_completed
        from tqdm.auto import tqdm

        from .ingest import parse_file

        futures = {}
        for ordinal, reader in readers:
            ev = reader.result.evidence
            name = f"{ingest_id}-{ordinal:05d}-{ev.short_id}"
            fut = client.submit(parse_file, str(reader.path), explicit=reader.explicit, cluster=cluster, on_bad_lines=on_bad_lines,
                                evidence=ev, folder=str(new.parent / "tasks" / name), name=name, retries=2, pure=False, key=f"parse-{name}")
            futures[fut] = ordinal
        done: dict[int, Any] = {}
        total = sum(r.result.evidence.size for _, r in readers)
        show = progress if progress is not None else total > (64 << 20)
        with tqdm(total=total, unit="B", unit_scale=True, desc="ingest (dask)", disable=not show, leave=False) as bar:
            for fut in as_completed(futures):
                parsed = fut.result()  # a task that failed after its retries raises here, naming the file
                done[futures[fut]] = parsed
                bar.update(parsed.result.evidence.size)
        parts: dict[str, list[str]] = {}
        quarantine: list[dict[str, Any]] = []
        merged: Counter[str] = Counter()
        for ordinal in sorted(done):
            parsed = done[ordinal]
            for rel in parsed.parts:
                dst = new / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(Path(parsed.folder) / rel, dst)
                parts.setdefault(parsed.table, []).append(rel)
            report.files.append(parsed.result)
            quarantine.extend(parsed.quarantine)
            merged.update(parsed.merged)
        return {k: sorted(v) for k, v in parts.items()}, quarantine, merged

    def _rebuild_lifetimes(self, tmp: Path) -> None:
        """context/pod_ips and context/containers, folded from every table the case holds."""
        # Only what the folding uses, filtered and aggregated in DuckDB: the pod and namespace
        # requests, each bound token's pod once, each (pod, IP) of the flows once with its first
        # time — so the ingest's memory does not grow with the size of the tables.
        pod_requests = (
            # the request body only where the folding reads it: creates, status and binding writes
            "SELECT time, verb, resource, subresource, object_namespace, object_name, response_code, "
            "CASE WHEN (verb = 'create' AND (subresource IS NULL OR subresource = 'binding')) "
            "OR (subresource = 'status' AND verb IN ('patch', 'update')) THEN request_object END AS request_object, "
            "sa_namespace, token_pod, token_pod_uid, token_node FROM audit "
            "WHERE resource IN ('pods', 'namespaces') AND (response_code IS NULL OR response_code < 400)")
        tokens = self.sql("SELECT min(time) AS time, sa_namespace, token_pod, token_pod_uid, token_node FROM audit "
                          "WHERE token_pod IS NOT NULL GROUP BY sa_namespace, token_pod, token_pod_uid, token_node")
        tokens["time"] = pd.to_datetime(tokens["time"], utc=True)

        columns = ["time", "verb", "resource", "subresource", "object_namespace", "object_name", "response_code",
                   "request_object", "sa_namespace", "token_pod", "token_pod_uid", "token_node"]

        def audit(query: str, *, tokens: pd.DataFrame | None = None) -> Iterator[pd.DataFrame]:
            """The query's rows in time order, 10,000 at a time. Sorting them all at once would
            hold every pod request and its body (1.1 GB at 4M events): they are sorted a time
            range of at most 50,000 rows at a time instead."""
            con = self.connect()
            try:
                for lo, hi in self._time_ranges(f"({query})", every=pd.Timedelta(minutes=1), rows=50_000, con=con):
                    reader = con.sql(f"SELECT * FROM ({query}) WHERE time >= $lo AND time < $hi ORDER BY time",
                                     params={"lo": lo.to_pydatetime(), "hi": hi.to_pydatetime()}).to_arrow_reader(10_000)
                    for batch in reader:
                        yield to_frame(pa.Table.from_batches([batch]))
            finally:
                con.close()
            if tokens is not None:
                yield tokens.reindex(columns=columns)

        flows = self.sql(
            "SELECT min(time) AS time, src_namespace, src_pod, src_ip, NULL AS dst_namespace, NULL AS dst_pod, NULL AS dst_ip FROM flows "
            "WHERE src_pod IS NOT NULL AND src_ip IS NOT NULL GROUP BY src_namespace, src_pod, src_ip UNION ALL "
            "SELECT min(time), NULL, NULL, NULL, dst_namespace, dst_pod, dst_ip FROM flows "
            "WHERE dst_pod IS NOT NULL AND dst_ip IS NOT NULL GROUP BY dst_namespace, dst_pod, dst_ip")
        flows["time"] = pd.to_datetime(flows["time"], utc=True)
        runtime = self.sql("SELECT min(time) AS time, namespace, pod, container_id, any_value(workload) AS workload, "
                           "any_value(workload_kind) AS workload_kind, any_value(node) AS node FROM runtime "
                           "WHERE pod IS NOT NULL AND container_id IS NOT NULL GROUP BY namespace, pod, container_id")
        runtime["time"] = pd.to_datetime(runtime["time"], utc=True)
        inventory_pods = self._inventory_pods()
        pod_ips, containers, _ = fold_pods(inventory_pods, audit(pod_requests, tokens=tokens), flows, runtime)
        # the second pass needs only the pod creates: their bodies give the pods the dumps lack
        pod_creates = ("SELECT time, verb, resource, subresource, object_namespace, object_name, response_code, request_object "
                       "FROM audit WHERE resource = 'pods' AND verb = 'create' AND subresource IS NULL AND request_object IS NOT NULL "
                       "AND (response_code IS NULL OR response_code < 400)")
        extra = pods_from_all_sources(inventory_pods, audit(pod_creates), pod_ips, self.cluster)
        pods_table = pa.concat_tables([pa.Table.from_pandas(inventory_pods, schema=PODS.arrow_schema, preserve_index=False),
                                       pa.Table.from_batches([rows_to_batch(extra, PODS)]) if extra else PODS.arrow_schema.empty_table()])
        pq.write_table(pods_table, tmp / "pods.parquet")
        (self.path / "context").mkdir(exist_ok=True)
        os.replace(tmp / "pods.parquet", self.path / "context" / "pods.parquet")
        for name, frame in (("pod_ips", pod_ips), ("containers", containers)):
            table = CONTEXT_TABLES[name]
            frame = frame.assign(cluster=self.cluster)
            arrow = pa.Table.from_pandas(frame[table.names], schema=table.arrow_schema, preserve_index=False)
            out = tmp / f"{name}.parquet"
            pq.write_table(arrow, out)
            (self.path / "context").mkdir(exist_ok=True)
            os.replace(out, self.path / "context" / f"{name}.parquet")

    def _inventory_pods(self) -> pd.DataFrame:
        """The pods the dumps show (context/pods is rebuilt from them plus every other source)."""
        objects = self._parts("objects")
        if not objects:
            return to_frame(PODS.arrow_schema.empty_table())
        table = pq.read_table([str(self.path / p) for p in objects], schema=OBJECTS.arrow_schema)
        return to_frame(build_context(table)["pods"])

    def _record_ingest(self, report: IngestReport, parts: dict[str, list[str]], **args: Any) -> None:
        m = self._manifest
        m["ingests"].append(
            {
                "id": report.ingest_id,
                "finished": _now(),
                "seconds": round(report.seconds, 3),
                "args": args,
                "inputs": [f.as_dict() for f in report.files],
                "already_ingested": report.already_ingested,
                "unrecognised": [{"path": p, "why": w} for p, w in report.unrecognised],
                "superseded": report.superseded,
            }
        )
        tables = m.setdefault("tables", {})
        for name, new in parts.items():
            t = tables.setdefault(name, {"parts": []})
            t["parts"].extend(new)
        for name in (*EVENT_TABLES, "objects"):
            if name in parts or (name == "audit" and report.superseded):
                t = tables.setdefault(name, {"parts": []})
                t["rows"] = sum(pq.ParquetFile(self.path / p).metadata.num_rows for p in t["parts"]) - len(self._superseded(name))
        self._write_manifest()

    # ------------------------------------------------------------------ reading

    def _parts(self, table: str) -> list[str]:
        return list(self._manifest.get("tables", {}).get(table, {}).get("parts", []))

    def _superseded(self, table: str) -> list[str]:
        ids: list[str] = []
        for p in self._parts(f"superseded_{table}"):
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
        enrich: bool = False,
        max_rows: int | None | EllipsisType = ...,
    ) -> pd.DataFrame:
        """One table as a DataFrame; time (``start <= time < end``), namespace and pod filters are
        pushed down to the Parquet files (partitions and row groups outside them are not read).
        ``enrich=True`` fills the context columns from the case's pod lifetimes (``kf.enrich``).
        A read that would load more than ``max_rows`` rows (default ``case.max_rows``) stops with
        a message saying how to narrow it, before anything is loaded."""
        if name not in TABLES:
            raise CaseError(f"no table {name!r}; tables: {', '.join(TABLES)}")
        limit = self.max_rows if max_rows is ... else max_rows
        if limit is not None:
            n = self._count(TABLES[name], start=start, end=end, namespace=namespace, pod=pod)
            if n > limit:
                raise CaseError(f"case.{name}() would load {n:,} rows, more than max_rows={limit:,}: narrow it with start=, end=, "
                                f"namespace=, pod= (and columns= to hold less), aggregate in DuckDB with case.sql(...), or pass "
                                f"max_rows=None (or set case.max_rows) if this machine has the memory")
        frame = self._read(TABLES[name], start=start, end=end, namespace=namespace, pod=pod, columns=columns)
        if enrich:
            from .enrich import enrich as enrich_frame

            frame = enrich_frame(frame, self, table=name)
        return frame

    def chunks(
        self,
        name: str,
        *,
        rows: int = 1_000_000,
        every: dt.timedelta | pd.Timedelta = pd.Timedelta(minutes=1),
        columns: list[str] | None = None,
        enrich: bool = False,
    ) -> Iterator[pd.DataFrame]:
        """One table in time order, a chunk at a time: what a pass over a table larger than
        memory reads. Each chunk holds whole ``every``-long time buckets (counted from the
        epoch) and at most ``rows`` rows, unless one bucket alone holds more; the chunks
        together hold every row once, in the order ``case.table`` gives."""
        if name not in TABLES:
            raise CaseError(f"no table {name!r}; tables: {', '.join(TABLES)}")
        if pd.Timedelta(every).value <= 0 or rows <= 0:
            raise ValueError("chunks: every and rows must be positive")
        for start, end in self._time_ranges(name, every=every, rows=rows):
            yield self.table(name, start=start, end=end, columns=columns, enrich=enrich, max_rows=None)

    def _time_ranges(self, source: str, *, every: dt.timedelta | pd.Timedelta, rows: int,
                     con: duckdb.DuckDBPyConnection | None = None) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """``frames.time_chunks`` over ``source`` (a table, or a parenthesised query over the
        case's views), its rows counted per bucket in DuckDB."""
        step = pd.Timedelta(every).value
        query = f"SELECT epoch_ns(time) // {step} AS bucket, count(*) AS n FROM {source} WHERE time IS NOT NULL GROUP BY 1"
        counts = self.sql(query) if con is None else con.sql(query).df()
        return time_chunks(counts.set_index("bucket")["n"], every=every, rows=rows)

    def _count(self, table: Table, *, start: TimeLike, end: TimeLike, namespace: Any, pod: Any = None) -> int:
        """Rows a read with these filters returns (Parquet statistics where they settle it)."""
        scan = self._scan(table, start=start, end=end, namespace=namespace, pod=pod)
        return 0 if scan is None else int(scan[0].count_rows(filter=scan[1]))

    def _scan(self, table: Table, *, start: TimeLike, end: TimeLike, namespace: Any, pod: Any = None) -> tuple[ds.Dataset, Any] | None:
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

    def _read(self, table: Table, *, start: TimeLike, end: TimeLike, namespace: Any, columns: list[str] | None, pod: Any = None) -> pd.DataFrame:
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
        order = pc.sort_indices(dataset.to_table(columns=keys, filter=flt), [(k, "ascending") for k in keys]) if "time" in names else None
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
        enrich: bool = False,
        max_rows: int | None | EllipsisType = ...,
    ) -> pd.DataFrame:
        """The audit table (one row per request), ordered by time; filters are pushed down."""
        return self.table("audit", start=start, end=end, namespace=namespace, pod=pod, columns=columns, enrich=enrich, max_rows=max_rows)

    def runtime(
        self,
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        namespace: str | list[str] | None = None,
        pod: str | list[str] | None = None,
        columns: list[str] | None = None,
        enrich: bool = False,
        max_rows: int | None | EllipsisType = ...,
    ) -> pd.DataFrame:
        """The runtime table (Falco, Tetragon, ...), ordered by time; filters are pushed down."""
        return self.table("runtime", start=start, end=end, namespace=namespace, pod=pod, columns=columns, enrich=enrich, max_rows=max_rows)

    def flows(
        self,
        *,
        start: TimeLike = None,
        end: TimeLike = None,
        namespace: str | list[str] | None = None,
        pod: str | list[str] | None = None,
        columns: list[str] | None = None,
        enrich: bool = False,
        max_rows: int | None | EllipsisType = ...,
    ) -> pd.DataFrame:
        """The flows table (Hubble, VPC/NSG/Calico flow logs), ordered by time; the namespace
        and pod filters apply to the source side as the flow source recorded it (a flow log that
        names no pod matches neither: use ``enrich=True`` and filter the frame); filters are
        pushed down."""
        return self.table("flows", start=start, end=end, namespace=namespace, pod=pod, columns=columns, enrich=enrich, max_rows=max_rows)

    def context(self, name: str) -> pd.DataFrame:
        """A context table built from the case's Kubernetes objects: pods, namespaces,
        services, endpoints, nodes, service_accounts, rbac, network_policies, workloads."""
        if name not in CONTEXT_TABLES:
            raise CaseError(f"no context table {name!r}; tables: {', '.join(CONTEXT_TABLES)}")
        path = self.path / "context" / f"{name}.parquet"
        if not path.exists():
            return to_frame(CONTEXT_TABLES[name].arrow_schema.empty_table())
        return to_frame(pq.read_table(path, schema=CONTEXT_TABLES[name].arrow_schema))

    def objects(self) -> pd.DataFrame:
        """Every Kubernetes object ingested (kubectl dumps), one row each."""
        return self.table("objects")

    def findings(self) -> pd.DataFrame:
        """The findings of the last detection run (``kf.detect(case)``), ordered by time;
        empty when detection has not run."""
        path = self.path / FINDINGS_FILE
        if not path.exists():
            return to_frame(FINDINGS.arrow_schema.empty_table())
        return to_frame(pq.read_table(path, schema=FINDINGS.arrow_schema))

    def save_findings(self, table: pa.Table, run: dict[str, Any]) -> None:
        """Replace ``findings.parquet`` (derived from the tables and the rules, so a new run
        replaces the last one) and record the run in the manifest."""
        if table.schema != FINDINGS.arrow_schema:
            table = table.cast(FINDINGS.arrow_schema)
        with self._lock():
            tmp = self.path / (FINDINGS_FILE + ".tmp")
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, self.path / FINDINGS_FILE)
            self._manifest.setdefault("detections", []).append({"time": _now(), **run})
            self._write_manifest()

    def quarantine(self) -> pd.DataFrame:
        """Every record that did not become a row, with the file, record number and reason."""
        parts = self._parts("quarantine")
        if not parts:
            return to_frame(QUARANTINE.arrow_schema.empty_table())
        return to_frame(pa.concat_tables([pq.read_table(self.path / p, schema=QUARANTINE.arrow_schema) for p in parts]))

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with one view per table (``audit``, ``quarantine``, ...)."""
        con = duckdb.connect()
        for name, table in TABLES.items():
            parts = self._parts(name)
            if parts:
                files = ", ".join(_sql_str(str(self.path / p)) for p in parts)
                src = f"read_parquet([{files}], hive_partitioning = false, union_by_name = true)"
            else:
                cols = ", ".join(f"NULL::{_duck_type(c.type)} AS {c.name}" for c in table.columns)
                src = f"(SELECT {cols} WHERE false)"
            gone = self._parts(f"superseded_{name}")
            where = ""
            if gone:
                sfiles = ", ".join(_sql_str(str(self.path / p)) for p in gone)
                where = f" WHERE event_id NOT IN (SELECT event_id FROM read_parquet([{sfiles}]))"
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {src}{where}")
        if (self.path / FINDINGS_FILE).exists():
            con.execute(f"CREATE VIEW findings AS SELECT * FROM read_parquet({_sql_str(str(self.path / FINDINGS_FILE))})")
        return con

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL over the case's tables through DuckDB, e.g.
        ``case.sql("select verb, count(*) n from audit group by verb order by n desc")``."""
        con = self.connect()
        try:
            rel = con.sql(query, params=params) if params else con.sql(query)
            return to_frame(rel.to_arrow_table() if rel is not None else pa.table({}))
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

    # ------------------------------------------------------------------ internals

    def _write_manifest(self) -> None:
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self._manifest, indent=2, default=str) + "\n")
        os.replace(tmp, self.path / MANIFEST)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        lock = self.path / ".lock"
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            raise CaseError(
                f"{self.path}: another ingest is running (or one crashed); if none is running, delete {lock}"
            ) from None
        try:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            yield
        finally:
            lock.unlink(missing_ok=True)


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
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
