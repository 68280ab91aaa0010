"""How evidence files become part of a case, in one transaction of the store.

1. Under the case lock, with the manifest read again: every file is hashed and sniffed;
   files the case already holds are passed over.
2. Rows stream into one Parquet part per evidence file and date (``parts.PartWriter``) in the
   transaction's staging folder; audit rows pass ``stages.StageMerger`` first. Files are
   parsed here or, with a Dask client, one task per file on the workers.
3. ``stages.resolve_collisions`` settles the requests still seen twice (across files, or
   against rows earlier ingests published): new parts are rewritten, published rows superseded.
4. Quarantine, superseded rows and the context tables (objects, then the pod lifetimes folded
   from the case as the transaction would leave it) are built; everything is published and the
   manifest replaced last. A failure or kill before that leaves the case as it was.
"""

from __future__ import annotations

import datetime as dt
import os
import time as _time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..case import Case, Transaction, superseded_table
from ..context.enrich import STEPS as ENRICH_STEPS
from ..context.rebuild import rebuild_context
from ..schema import AUDIT, QUARANTINE, TABLES
from ..sources import (
    SMALL_FILE_BYTES,
    FileResult,
    OnBadLines,
    PathsLike,
    Reader,
    expand_paths,
    format_options,
    hash_file,
    open_reader,
)
from .parts import PartWriter, parse_file, rewrite_part
from .stages import StageMerger, resolve_collisions

__all__ = ["IngestReport", "ingest"]


@dataclass
class IngestReport:
    """What one ingest did; ``str(report)`` is the one-screen summary."""

    case: Path
    ingest_id: str
    seconds: float
    files: list[FileResult] = field(default_factory=list)
    already_ingested: list[str] = field(default_factory=list)
    unrecognised: list[tuple[str, str]] = field(default_factory=list)
    # path → (sha256, bytes) of each file no format recognises: kept in the manifest all the same,
    # so a preserved artifact (a log, a checkpoint archive, a memory image) has its hash on record
    unrecognised_hashes: dict[str, tuple[str, int]] = field(default_factory=dict)
    not_read: list[tuple[str, str]] = field(default_factory=list)
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
    if report.not_read:
        lines.append(f"  not read ({len(report.not_read)} file(s); the manifest lists why):")
        for path, why in report.not_read[:8]:
            lines.append(f"    {path}: {why}")
        if len(report.not_read) > 8:
            lines.append(f"    … and {len(report.not_read) - 8} more")
    if report.superseded:
        lines.append(
            f"  {report.superseded} row(s) from earlier ingests replaced by a more final stage of the same request"
        )
    if report.unrecognised:
        lines.append(
            f"  not evidence ({len(report.unrecognised)} file(s) no format recognises; the manifest lists why):"
        )
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


def ingest(
    case: Case,
    paths: PathsLike,
    *,
    cluster: str | None = None,
    on_bad_lines: OnBadLines = "warn",
    progress: bool | None = None,
    client: Any = None,
    lock_timeout: float | None = None,
    keep_secrets: bool = False,
    time_range: tuple[Any, Any] | None = None,
    vpc_fields: Sequence[str] | None = None,
) -> IngestReport:
    """Read evidence files into ``case`` in one transaction. Files already in the case (same
    sha256) are passed over. Returns a report whose ``str()`` is the summary.

    ``client`` (a ``dask.distributed.Client``) parses the files on its workers, one task per
    file, retried on failure; the workers must see the case folder at the same path (a
    shared volume). The case is the same as a single-process ingest's. ``lock_timeout``:
    seconds to wait for another writer (None: as long as it takes). ``keep_secrets=True``
    stores credentials unredacted, for a sealed, access-controlled case only: the manifest
    records it and ``report`` refuses such a case unless asked again. ``time_range``: the
    accepted event times ``(start, end)``; a record outside is quarantined (default 1970–2100).
    ``vpc_fields``: the field order of headerless VPC flow logs (``sources.format_options``),
    recorded in the manifest with the other arguments."""
    t0 = _time.perf_counter()
    vpc_fields = format_options(vpc_fields=vpc_fields).get("vpc_fields")  # checked before the case is locked
    not_read: list[tuple[str, str]] = []
    files = expand_paths(paths, not_read=not_read)
    with case.transaction("ingest", timeout=lock_timeout) as tx:
        report = IngestReport(case.path, tx.id, 0.0, not_read=not_read)
        cluster = cluster or tx.manifest.get("cluster")
        known = {i["sha256"] for ing in tx.manifest["ingests"] for i in ing["inputs"]}
        new = tx.staging / "stage"
        new.mkdir(parents=True, exist_ok=True)
        readers: list[tuple[int, Reader]] = []
        for ordinal, (path, explicit) in enumerate(files):
            ev = hash_file(path)
            if ev.sha256 in known:
                report.already_ingested.append(str(path))
                continue
            known.add(ev.sha256)
            reader = open_reader(
                path,
                cluster=cluster,
                on_bad_lines=on_bad_lines,
                explicit=explicit,
                evidence=ev,
                keep_secrets=keep_secrets,
                time_range=time_range,
                vpc_fields=vpc_fields,
                # below its break-even a small file is cheaper per record than through DuckDB
                small_file_bytes=SMALL_FILE_BYTES,
            ).prepare()
            if reader.result.unrecognised:
                report.unrecognised.append((str(path), reader.result.unrecognised))
                report.unrecognised_hashes[str(path)] = (ev.sha256, ev.size)
                continue
            readers.append((ordinal, reader))
        if client is None:
            parts, quarantine, merged = _parse_here(readers, new, tx.id, report, progress)
        else:
            parts, quarantine, merged = _parse_on(
                client,
                readers,
                tx,
                report,
                progress,
                cluster=cluster,
                on_bad_lines=on_bad_lines,
                keep_secrets=keep_secrets,
                time_range=time_range,
                vpc_fields=vpc_fields,
            )
        old = tx.view()
        if parts.get("audit"):
            col = resolve_collisions(
                new,
                parts["audit"],
                case.path,
                old._parts("audit"),
                set(old._superseded("audit")),
                spill=tx.staging / "spill",
            )
            for rel in sorted(set(col.drop_new) | set(col.stages_new)):
                if not rewrite_part(
                    new / rel, AUDIT.arrow_schema, col.drop_new.get(rel, set()), col.stages_new.get(rel, {})
                ):
                    parts["audit"].remove(rel)
            merged.update(col.merged)
            if col.superseded_old:
                rel = f"superseded/audit-{tx.id}.parquet"
                pq.write_table(pa.table({"event_id": pa.array(col.superseded_old, pa.string())}), tx.stage(rel))
                parts[superseded_table("audit")] = [rel]
                report.superseded = len(col.superseded_old)
        for f in report.files:
            n = merged.get(f.evidence.sha256, 0)
            f.merged, f.rows = n, f.rows - n
        for q in quarantine:
            report.quarantine_reasons[q["reason"]] += 1
        if quarantine:
            rel = f"quarantine/part-{tx.id}.parquet"
            pq.write_table(pa.Table.from_pylist(quarantine, schema=QUARANTINE.arrow_schema), tx.stage(rel))
            parts["quarantine"] = [rel]
        parts = {k: v for k, v in parts.items() if v}
        tx.publish(rel for names in parts.values() for rel in names)
        _record_ingest(
            tx,
            report,
            parts,
            cluster=cluster,
            on_bad_lines=on_bad_lines,
            keep_secrets=keep_secrets,
            time_range=list(time_range) if time_range else None,
            vpc_fields=vpc_fields,
        )
        if keep_secrets:
            tx.manifest["secrets_kept"] = True  # for good: the case holds credentials from now on
        # The context tables are derived from the whole case as this transaction leaves it.
        if readers or not tx.manifest.get("context"):
            context, record = rebuild_context(tx.view())
            tx.manifest["ingests"][-1]["context"] = record
            _publish_context(tx, context)
            tx.manifest["enrichment"] = {
                "context_built": tx.id,
                "steps": {k: list(v) for k, v in ENRICH_STEPS.items()},
                "applied": "on read (kf.enrich)",
            }
        report.seconds = _time.perf_counter() - t0
        tx.manifest["ingests"][-1]["seconds"] = round(report.seconds, 3)
    return report


def _publish_context(tx: Transaction, tables: dict[str, pa.Table]) -> None:
    """A new generation of the context tables, replacing the last one whole."""
    rels = {}
    for name, table in sorted(tables.items()):
        rel = f"context/{tx.id}/{name}.parquet"
        pq.write_table(table, tx.stage(rel))
        rels[name] = rel
    tx.publish(rels.values())
    tx.retire(tx.manifest.get("context", {}).get("tables", {}).values())
    tx.manifest["context"] = {"generation": tx.id, "tables": rels}


def _record_ingest(tx: Transaction, report: IngestReport, parts: dict[str, list[str]], **args: Any) -> None:
    m = tx.manifest
    m["ingests"].append(
        {
            "id": report.ingest_id,
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": None,
            "args": args,
            "inputs": [f.as_dict() for f in report.files],
            "already_ingested": report.already_ingested,
            "unrecognised": [
                {
                    "path": p,
                    "why": w,
                    "sha256": report.unrecognised_hashes.get(p, (None, None))[0],
                    "bytes": report.unrecognised_hashes.get(p, (None, None))[1],
                }
                for p, w in report.unrecognised
            ],
            "not_read": [{"path": p, "why": w} for p, w in report.not_read],
            "superseded": report.superseded,
        }
    )
    tables = m.setdefault("tables", {})
    for name, new in parts.items():
        tables.setdefault(name, {"parts": []})["parts"].extend(new)
    view = tx.view()
    for name in (n for n in TABLES if n != QUARANTINE.name):
        if name in parts or (name == "audit" and report.superseded):
            t = tables.setdefault(name, {"parts": []})
            t["rows"] = sum(m["files"][p]["rows"] for p in t["parts"]) - len(view._superseded(name))


def _parse_here(
    readers: list[tuple[int, Reader]], new: Path, ingest_id: str, report: IngestReport, progress: bool | None
) -> tuple[dict[str, list[str]], list[dict[str, Any]], Counter[str]]:
    """Parse every file in this process, one stage merge across all of them."""
    from tqdm.auto import tqdm

    merger = StageMerger()
    quarantine: list[dict[str, Any]] = []
    writers: dict[str, PartWriter] = {}
    total = sum(r.result.evidence.size for _, r in readers)
    show = progress if progress is not None else total > (64 << 20)
    try:
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
                        for rows in released:
                            writer.write(f"{ingest_id}-held", rows, row_by_row=True)
                    writer.write(name, batch, keep)
                writer.finish_part(name)
                bar.update(ev.size)
                report.files.append(reader.result)
                quarantine.extend(reader.quarantine)
        if "audit" in writers:
            for rows in merger.drain():
                writers["audit"].write(f"{ingest_id}-held", rows, row_by_row=True)
    finally:
        parts = {name: w.close() for name, w in writers.items()}  # the writer threads end either way
    return parts, quarantine, merger.merged


def _parse_on(
    client: Any,
    readers: list[tuple[int, Reader]],
    tx: Transaction,
    report: IngestReport,
    progress: bool | None,
    *,
    cluster: str | None,
    on_bad_lines: str,
    keep_secrets: bool,
    time_range: tuple[Any, Any] | None,
    vpc_fields: Sequence[str] | None,
) -> tuple[dict[str, list[str]], list[dict[str, Any]], Counter[str]]:
    """Parse each file as a task on a Dask cluster, into a folder of its own; a finished
    task's files are moved into the staging folder in file order, so the case does not depend
    on which worker was quicker."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    new = tx.staging / "stage"
    futures = {}
    for ordinal, reader in readers:
        ev = reader.result.evidence
        name = f"{tx.id}-{ordinal:05d}-{ev.short_id}"
        fut = client.submit(
            parse_file,
            str(reader.path),
            explicit=reader.explicit,
            cluster=cluster,
            on_bad_lines=on_bad_lines,
            keep_secrets=keep_secrets,
            time_range=time_range,
            vpc_fields=vpc_fields,
            small_file_bytes=SMALL_FILE_BYTES,
            evidence=ev,
            folder=str(tx.staging / "tasks" / name),
            name=name,
            retries=2,
            pure=False,
            key=f"parse-{name}",
        )
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
