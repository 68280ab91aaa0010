"""Input formats and the readers built on them.

``FORMATS`` is the ordered registry: the order is the sniff priority (wrapped cloud
formats before the bare audit Event, which a wrapper's inner record would also match).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..schema import ALERTS, AUDIT, CLOUD, FLOWS, OBJECTS, RUNTIME, TABLES, Table
from . import (
    aks_audit,
    aws_cloudtrail,
    aws_vpc_flow,
    azure_flow,
    azure_traffic_analytics,
    calico,
    defender_containers,
    falco,
    gcp_cloud_audit,
    gcp_scc,
    gcp_vpc_flow,
    gke_audit,
    guardduty,
    hubble,
    k8s_audit,
    kubectl,
    ocsf_network,
    tetragon,
    tracee,
)
from ._driver import (
    MAX_RECORD_BYTES,
    SMALL_FILE_BYTES,
    Evidence,
    FileResult,
    OnBadLines,
    Reader,
    expand_paths,
    hash_file,
    quarantine_table,
)
from .protocol import FormatModule, problems

FORMATS: tuple[FormatModule, ...] = (
    gke_audit,
    aks_audit,
    k8s_audit,
    falco,
    tetragon,
    tracee,
    hubble,
    gcp_vpc_flow,
    azure_flow,
    calico,
    ocsf_network,
    aws_vpc_flow,
    azure_traffic_analytics,
    guardduty,
    defender_containers,
    gcp_scc,
    aws_cloudtrail,
    gcp_cloud_audit,
    kubectl,
)
FAMILIES: dict[str, Table] = {
    "audit": AUDIT,
    "runtime": RUNTIME,
    "flows": FLOWS,
    "cloud": CLOUD,
    "alerts": ALERTS,
    "objects": OBJECTS,
}

PathsLike = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def formats(family: str | None = None) -> list[FormatModule]:
    """The registered format modules, in sniff order, optionally of one family."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    return [f for f in FORMATS if family is None or family == f.FAMILY]


def table_for(fmt: FormatModule) -> Table:
    """The table a format's rows go to."""
    return TABLES[fmt.FAMILY]


def format_options(*, vpc_fields: Sequence[str] | str | None = None) -> dict[str, Any]:
    """The options the formats read from a reader's file context, checked.

    ``vpc_fields``: the field names of a headerless VPC flow log, in the order its lines
    hold them (the ``${field}`` list of the flow log's custom format, AWS "Flow log records");
    a text of space-separated names is split. Raises ``ValueError`` for an empty list, a
    name that is not text, or one the flow log does not know (``aws_vpc_flow.vpc_field_names``)."""
    out: dict[str, Any] = {}
    if vpc_fields is not None:
        names = vpc_fields.split() if isinstance(vpc_fields, str) else list(vpc_fields)
        if not names or not all(isinstance(n, str) and n.strip() and not any(c.isspace() for c in n) for n in names):
            raise ValueError(f"vpc_fields must name the fields, one word each (got {vpc_fields!r})")
        out["vpc_fields"] = aws_vpc_flow.vpc_field_names(
            names
        )  # unknown or repeated names fail here, before any file is read
    return out


def open_reader(
    path: Path,
    *,
    family: str | None = None,
    cluster: str | None = None,
    on_bad_lines: OnBadLines = "warn",
    explicit: bool = True,
    evidence: Evidence | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
    fast: bool = True,
    keep_secrets: bool = False,
    time_range: tuple[Any, Any] | None = None,
    vpc_fields: Sequence[str] | None = None,
    small_file_bytes: int = 0,
) -> Reader:
    """A reader for one file; its format is sniffed by ``prepare()`` or when ``batches()``
    starts. ``fast=False`` turns the DuckDB fast path off (the per-record path is the reference);
    ``keep_secrets=True`` turns credential redaction off (a sealed case only); ``time_range``
    the accepted event times ``(start, end)`` (default 1970-01-01 to 2100-01-01);
    ``vpc_fields`` the field order of a headerless VPC flow log (see ``format_options``);
    ``small_file_bytes`` reads a file whose records end within that many bytes per record even
    where the fast path applies (ingest passes ``SMALL_FILE_BYTES``; 0, the default, keeps the
    fast path for every file, as the format tests want)."""
    return Reader(
        path,
        evidence or hash_file(path),
        formats(family),
        table=table_for,
        cluster=cluster,
        on_bad_lines=on_bad_lines,
        explicit=explicit,
        max_record_bytes=max_record_bytes,
        fast=fast,
        keep_secrets=keep_secrets,
        time_range=time_range,
        format_options=format_options(vpc_fields=vpc_fields),
        small_file_bytes=small_file_bytes,
    )


def read_family(
    paths: PathsLike,
    family: str,
    *,
    cluster: str | None = None,
    on_bad_lines: OnBadLines = "warn",
    time_range: tuple[Any, Any] | None = None,
    vpc_fields: Sequence[str] | None = None,
) -> tuple[pa.Table, list[FileResult], pa.Table]:
    """Read every file of one family into one Arrow table (not deduplicated).

    Returns ``(rows, per-file results, quarantine)``. ``vpc_fields``: see ``format_options``.
    """
    format_options(vpc_fields=vpc_fields)  # a bad option fails before any file is read
    table = FAMILIES[family]
    batches: list[pa.RecordBatch] = []
    results: list[FileResult] = []
    quarantine: list[dict[str, Any]] = []
    for path, explicit in expand_paths(paths):
        reader = open_reader(
            path,
            family=family,
            cluster=cluster,
            on_bad_lines=on_bad_lines,
            explicit=explicit,
            time_range=time_range,
            vpc_fields=vpc_fields,
        )
        batches.extend(reader.batches())
        results.append(reader.result)
        quarantine.extend(reader.quarantine)
    return pa.Table.from_batches(batches, schema=table.arrow_schema), results, quarantine_table(quarantine)


__all__ = [
    "FAMILIES",
    "FORMATS",
    "Evidence",
    "FileResult",
    "FormatModule",
    "OnBadLines",
    "PathsLike",
    "Reader",
    "SMALL_FILE_BYTES",
    "expand_paths",
    "format_options",
    "formats",
    "hash_file",
    "open_reader",
    "read_family",
    "table_for",
]


def _check_registry(fmts: Sequence[FormatModule]) -> None:
    """Every registered module declares every member of ``FormatModule``, each of its kind."""
    for f in fmts:
        if found := problems(f, FAMILIES):
            raise TypeError(f"format module {getattr(f, '__name__', f)}: {'; '.join(found)}")


_check_registry(FORMATS)
