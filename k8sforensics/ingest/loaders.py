"""Loaders: evidence files straight into a DataFrame, for a script or a notebook — the same
parsing, typing and quarantine as an ingest, and for audit the same one row per request
(``stages.dedupe_audit_table``), without a case."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from ..frames import to_frame
from ..sources import OnBadLines, PathsLike, read_family
from .stages import dedupe_audit_table


def _in_time_order(rows: pa.Table) -> pd.DataFrame:
    return to_frame(rows.sort_by([("time", "ascending"), ("event_id", "ascending")]))


def read_runtime(
    paths: PathsLike,
    *,
    cluster: str | None = None,
    on_bad_lines: OnBadLines = "warn",
    time_range: tuple[Any, Any] | None = None,
) -> pd.DataFrame:
    """Runtime events (Falco alerts, Tetragon events) from any supported file, format
    auto-detected, in time order. Same paths and bad-input policy as ``read_audit``."""
    return _in_time_order(
        read_family(paths, "runtime", cluster=cluster, on_bad_lines=on_bad_lines, time_range=time_range)[0]
    )


def read_flows(
    paths: PathsLike,
    *,
    cluster: str | None = None,
    on_bad_lines: OnBadLines = "warn",
    time_range: tuple[Any, Any] | None = None,
    vpc_fields: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Network flows (Hubble, VPC/NSG/Calico flow logs) from any supported file, format
    auto-detected, in time order. Same paths and bad-input policy as ``read_audit``.
    ``vpc_fields``: the field order of headerless VPC flow logs, e.g.
    ``"version account-id interface-id srcaddr …"`` (see ``format_options``)."""
    return _in_time_order(
        read_family(
            paths, "flows", cluster=cluster, on_bad_lines=on_bad_lines, time_range=time_range, vpc_fields=vpc_fields
        )[0]
    )


def read_cloud(
    paths: PathsLike,
    *,
    cluster: str | None = None,
    on_bad_lines: OnBadLines = "warn",
    time_range: tuple[Any, Any] | None = None,
) -> pd.DataFrame:
    """Cloud control-plane calls (AWS CloudTrail in its S3, Lake, lookup-events, EventBridge and
    CloudWatch shapes; GCP Cloud Audit Logs of non-Kubernetes services) from any supported file,
    format auto-detected, in time order. Same paths and bad-input policy as ``read_audit``."""
    return _in_time_order(
        read_family(paths, "cloud", cluster=cluster, on_bad_lines=on_bad_lines, time_range=time_range)[0]
    )


def read_alerts(
    paths: PathsLike,
    *,
    cluster: str | None = None,
    on_bad_lines: OnBadLines = "warn",
    time_range: tuple[Any, Any] | None = None,
) -> pd.DataFrame:
    """Vendor findings (GuardDuty, Defender for Containers, Security Command Center) as alerts,
    mapped to the Threat Matrix and ATT&CK, in time order. Same paths and bad-input policy as
    ``read_audit``."""
    return _in_time_order(
        read_family(paths, "alerts", cluster=cluster, on_bad_lines=on_bad_lines, time_range=time_range)[0]
    )


def read_audit(
    paths: PathsLike,
    *,
    cluster: str | None = None,
    on_bad_lines: OnBadLines = "warn",
    time_range: tuple[Any, Any] | None = None,
) -> pd.DataFrame:
    """Kubernetes audit events from any supported file (format auto-detected), one row per request.

    Paths may be files, folders or globs; ``.gz``/``.zst`` are read transparently. Bad
    records are quarantined (``"warn"``, the default, also warns), raise ``BadRecordError``
    (``"error"``) or are quarantined silently (``"skip"``). For the quarantine entries and
    per-file counts, ingest into a case (``kf.Case``) instead.
    """
    rows, _, _ = read_family(paths, "audit", cluster=cluster, on_bad_lines=on_bad_lines, time_range=time_range)
    return to_frame(dedupe_audit_table(rows)[0])
