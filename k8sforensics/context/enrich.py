"""Enrichment: fill the context columns of event rows from the case's pod lifetimes.

A fixed list of column-filling steps per table; rows are never dropped, values the source
gave are never overwritten:

- ``flows``: both ends — the pod that held the address at the flow's time (``src_*``/``dst_*``),
  node addresses as nodes, Service cluster/load-balancer addresses as that Service, everything
  else ``internal`` or ``external`` by ``analysis.network.external_mask`` over the case's
  networks (``case_networks``: nodes, pod CIDRs, Services, the flow logs' own interfaces) —
  the same predicate the rules use;
- ``runtime``: the pod that ran the container, for events that carry only a container id;
- ``audit``: the *actor* — the pod a service-account token was bound to (``user.extra``), else
  the pod that held the source IP at that time (``actor_*`` columns), and the target pod's
  workload and node.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from .attribution import attribute_frame
from .networks import case_networks

if TYPE_CHECKING:
    from ..case import Case


class ContextSource(Protocol):
    """What enrichment reads: the context tables (``pod_ips``, ``containers``, ``nodes``,
    ``services``), by name — a Case, or detection's Evidence."""

    def context(self, name: str) -> pd.DataFrame: ...


STEPS = {
    "flows": ("src_endpoint_by_ip_at_time", "dst_endpoint_by_ip_at_time"),
    "runtime": ("pod_by_container_id",),
    "audit": ("actor_by_bound_token", "actor_by_source_ip_at_time", "target_pod_workload_and_node"),
}


def enrich(frame: pd.DataFrame, source: ContextSource, *, table: str | None = None) -> pd.DataFrame:
    """``frame`` (rows of ``table``) with its context columns filled from ``source``, the case
    it was read from. ``table`` defaults to the one the case read the frame from
    (``frame.attrs["table"]``). Returns a new DataFrame with the same rows in the same order."""
    table = table or frame.attrs.get("table")
    if table not in STEPS:
        raise ValueError(f"no enrichment for table {table!r}; tables: {', '.join(STEPS)} (pass table=)")
    pod_ips, containers, nodes = source.context("pod_ips"), source.context("containers"), source.context("nodes")
    if table == "flows":
        out = _flows(frame, pod_ips, nodes, services=source.context("services"), networks=case_networks(source))
    elif table == "runtime":
        out = _runtime(frame, containers)
    else:
        out = _audit(frame, pod_ips, nodes, services=source.context("services"), networks=case_networks(source))
    out.attrs["table"] = table
    return out


def enriched(case: Case, table: str, **read: Any) -> pd.DataFrame:
    """``case.table(table, **read)`` with its context columns filled (``enrich``)."""
    return enrich(case.table(table, **read), case, table=table)


def enriched_chunks(case: Case, table: str, **read: Any) -> Iterator[pd.DataFrame]:
    """``case.chunks(table, **read)``, each chunk with its context columns filled (``enrich``)."""
    for chunk in case.chunks(table, **read):
        yield enrich(chunk, case, table=table)


def _fill(frame: pd.DataFrame, column: str, values: Any) -> None:
    # Arrow-backed strings, not Python objects: millions of flows hold a few hundred distinct names
    new = pd.Series(values.array if isinstance(values, pd.Series) else values, index=frame.index)
    if new.dtype != "str":
        new = new.astype(object).astype("str")
    if column in frame.columns:
        old = frame[column]
        old = old if old.dtype == new.dtype else old.astype("str")
        frame[column] = old.where(old.notna(), new)
    else:
        frame[column] = new


def _flows(
    frame: pd.DataFrame, pod_ips: pd.DataFrame, nodes: pd.DataFrame, *, services: pd.DataFrame, networks: list[Any]
) -> pd.DataFrame:
    out = frame.copy()
    for side in ("src", "dst"):
        got = attribute_frame(
            frame, pod_ips, nodes, ip=f"{side}_ip", time="time", prefix="_a_", services=services, networks=networks
        )
        if "time_end" in frame.columns:
            # flow logs that aggregate (VPC: a minute) start before a pod that appeared within the
            # window; its end names the pod
            late = got["_a_pod"].isna() & frame["time_end"].notna().to_numpy()
            if late.any():
                again = attribute_frame(
                    frame[late.to_numpy()],
                    pod_ips,
                    nodes,
                    ip=f"{side}_ip",
                    time="time_end",
                    prefix="_a_",
                    services=services,
                    networks=networks,
                )
                found = again[again["_a_pod"].notna()]
                cols = [c for c in found.columns if c.startswith("_a_")]
                got.loc[found.index, cols] = found[cols]
        for col in ("namespace", "pod", "workload_kind", "workload", "node", "service"):
            _fill(out, f"{side}_{col}", got[f"_a_{col}"])
        _fill(out, f"{side}_kind", got["_a_kind"])
    for col in ("namespace", "pod", "workload_kind", "workload"):
        _fill(out, col, out[f"src_{col}"])
    return out


def _runtime(frame: pd.DataFrame, containers: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    by_full = containers.drop_duplicates("container_id").set_index("container_id")
    short = containers.assign(short=containers.container_id.str[:12]).drop_duplicates("short").set_index("short")
    ids = out["container_id"].astype(object)
    for col in ("namespace", "pod", "workload_kind", "workload", "node"):
        full = ids.map(by_full[col]) if len(by_full) else pd.Series(None, index=ids.index)
        part = ids.str[:12].map(short[col]) if len(short) else pd.Series(None, index=ids.index)
        _fill(out, col, full.where(full.notna(), part).to_numpy())
    return out


def _audit(
    frame: pd.DataFrame, pod_ips: pd.DataFrame, nodes: pd.DataFrame, *, services: pd.DataFrame, networks: list[Any]
) -> pd.DataFrame:
    out = frame.copy()
    # 1. a bound service-account token says which pod it belongs to
    _fill(out, "actor_namespace", out["sa_namespace"].where(out["token_pod"].notna()).to_numpy())
    _fill(out, "actor_pod", out["token_pod"].to_numpy())
    # 2. else the pod that held the source IP at that moment (tokens used from elsewhere show here)
    by_ip = attribute_frame(
        frame, pod_ips, nodes, ip="source_ip", time="time", prefix="_a_", services=services, networks=networks
    )
    _fill(out, "source_kind", by_ip["_a_kind"].to_numpy())
    _fill(out, "source_namespace", by_ip["_a_namespace"].to_numpy())
    _fill(out, "source_pod", by_ip["_a_pod"].to_numpy())
    _fill(out, "actor_namespace", by_ip["_a_namespace"].to_numpy())
    _fill(out, "actor_pod", by_ip["_a_pod"].to_numpy())
    # 3. the target pod's workload and node, from its lifetime
    columns = ["workload_kind", "workload", "node"]
    targets = pod_ips.drop_duplicates(["namespace", "pod"])[["namespace", "pod", *columns]].astype(object)
    keys = pd.DataFrame({"namespace": out["object_namespace"].astype(object), "pod": out["pod"].astype(object)})
    keys.loc[keys["pod"].isna() | keys["namespace"].isna(), "pod"] = (
        "\0no pod"  # never joins: merge would match null to null
    )
    found = keys.merge(targets, on=["namespace", "pod"], how="left")  # left merge on unique keys keeps rows and order
    for col in columns:
        _fill(out, col, found[col].where(found[col].notna(), None).to_numpy())
    return out
