"""Attribution: an IP at a time, or a container id, → the pod (namespace, name, uid,
workload, node). Node IPs map to nodes, Services' cluster and load-balancer addresses to the
Service; any other address is ``internal`` or ``external`` by the one predicate of
``analysis.network.external_mask``."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ..frames import utc_timestamp
from .networks import Network, external_mask


def attribute_ip(pod_ips: pd.DataFrame, nodes: pd.DataFrame | None, ip: str, time: Any) -> dict[str, Any] | None:
    """The pod that held ``ip`` at ``time`` (``start <= time < end``, open end = still alive),
    or the node whose address it is, or None."""
    t = utc_timestamp(time)
    rows = pod_ips[(pod_ips.ip == ip) & (pod_ips.start <= t) & (pod_ips.end.isna() | (pod_ips.end > t))]
    if len(rows):
        r = rows.iloc[0]
        return {
            "kind": "pod",
            **{
                k: (None if pd.isna(r[k]) else r[k])
                for k in ("namespace", "pod", "pod_uid", "workload_kind", "workload", "node")
            },
        }
    node = _node_of(nodes, ip)
    return {"kind": "node", "node": node} if node else None


def attribute_container(containers: pd.DataFrame, container_id: str) -> dict[str, Any] | None:
    """The pod that ran the container: a full 64-hex id, a 12-hex short id, or a runtime-prefixed one."""
    cid = str(container_id).split("://")[-1].lower()
    rows = (
        containers[containers.container_id.str.startswith(cid)]
        if len(cid) < 64
        else containers[containers.container_id == cid]
    )
    if not len(rows):
        return None
    r = rows.iloc[0]
    return {
        "kind": "pod",
        "container_id": r.container_id,
        **{
            k: (None if pd.isna(r[k]) else r[k])
            for k in ("namespace", "pod", "pod_uid", "workload_kind", "workload", "node")
        },
    }


def attribute_frame(
    frame: pd.DataFrame,
    pod_ips: pd.DataFrame,
    nodes: pd.DataFrame | None,
    *,
    ip: str,
    time: str = "time",
    prefix: str = "",
    services: pd.DataFrame | None = None,
    networks: list[Network] | None = None,
) -> pd.DataFrame:
    """Vectorised: ``frame`` plus ``<prefix>kind, <prefix>namespace, <prefix>pod, <prefix>pod_uid,
    <prefix>workload_kind, <prefix>workload, <prefix>node, <prefix>service`` for the IP column
    ``ip`` at ``time``. ``kind`` is pod, node, service (a cluster IP or load-balancer address of
    ``services``), else external or internal as ``external_mask`` judges it with ``networks``
    (``analysis.network.cluster_networks``; RFC 1918, CGNAT and ULA are always internal).
    A DuckDB range join on the IP with the explicit end check (measured: without it ~1% of
    flows go to pods that had already ended). ``pod_ips`` intervals of one IP must not overlap
    (``fold_pods`` guarantees it), so each row matches at most once; no row is dropped or repeated."""
    result = frame.copy(deep=False)  # new columns only: the caller's data is neither changed nor copied
    columns = ("kind", "namespace", "pod", "pod_uid", "workload_kind", "workload", "node", "service")
    if not len(frame):
        for col in columns:
            result[prefix + col] = pd.Series(dtype=object)
        return result
    con = duckdb.connect()
    # the frame's own columns, not Python objects: DuckDB reads Arrow-backed strings without copying
    con.register(
        "_f",
        pd.DataFrame(
            {
                "_row": np.arange(len(frame)),
                "ip": frame[ip].astype("str").array if frame[ip].dtype == object else frame[ip].array,
                "t": pd.to_datetime(frame[time], utc=True).array,
            }
        ),
    )
    # the join returns where each row's lifetime is in pod_ips (its position), not its strings:
    # a narrow result to sort back into the frame's order, then one take per column
    con.register(
        "_p",
        pd.DataFrame(
            {
                "_i": np.arange(len(pod_ips)),
                "ip": pod_ips["ip"].array,
                "start": pod_ips["start"].array,
                "end": pod_ips["end"].array,
            }
        ),
    )
    node_map = _node_table(nodes)
    con.register("_n", node_map)
    node_join = (
        "LEFT JOIN _n n ON f.ip = n.ip"
        if len(node_map)
        else "LEFT JOIN (SELECT NULL::VARCHAR AS ip, NULL::VARCHAR AS node) n ON false"
    )
    out = con.sql(
        f"""
        SELECT f._row, coalesce(p._i, -1) AS lifetime, n.node AS node_of_ip,
               CASE WHEN p._i IS NOT NULL THEN 'pod' WHEN n.node IS NOT NULL THEN 'node'
                    WHEN f.ip IS NULL THEN NULL ELSE 'other' END AS kind
        FROM _f f
        LEFT JOIN _p p ON f.ip = p.ip AND f.t >= p.start AND (p."end" IS NULL OR f.t < p."end")
        {node_join}
        """
    ).to_arrow_table()
    con.close()
    if out.num_rows != len(frame):
        raise ValueError("pod_ips has overlapping intervals for one IP; build it with fold_pods")
    # back into the frame's order: _row is a permutation, so its inverse takes one pass, not a sort
    order = np.empty(len(frame), dtype=np.int64)
    order[out.column("_row").to_numpy()] = np.arange(len(frame))
    out = out.take(order)
    at = out.column("lifetime").to_numpy()
    for col in ("namespace", "pod", "pod_uid", "workload_kind", "workload"):
        result[prefix + col] = pod_ips[col].array.take(at, allow_fill=True)
    node_of_ip = out.column("node_of_ip").to_pandas()
    node = pd.Series(pod_ips["node"].array.take(at, allow_fill=True), index=frame.index)
    result[prefix + "node"] = node.where(node.notna(), node_of_ip.to_numpy()).array
    kind = out.column("kind").to_numpy(zero_copy_only=False).astype(object)
    other = np.flatnonzero(kind == "other")
    # only the addresses no pod or node held are judged, as the column's own text (not millions
    # of Python strings): a Service address by one lookup each over the few distinct ones, the
    # rest by ``external_mask``
    rest = frame[ip].iloc[other]
    table = _service_table(services) if services is not None and len(services) else {}
    service = np.full(len(frame), None, dtype=object)
    if table and len(other):
        named = rest.isin(list(table)).to_numpy(dtype=bool)
        codes, uniq = pd.factorize(rest[named])
        service[other[named]] = np.array([table[v] for v in uniq] + [None], dtype=object)[codes]
    outside = external_mask(rest, list(networks or ())).to_numpy(dtype=bool)
    kind[other] = np.where(service[other] != None, "service", np.where(outside, "external", "internal"))  # noqa: E711
    result[prefix + "kind"] = pd.array(kind, dtype=object)
    result[prefix + "service"] = pd.array(service, dtype=object)
    return result


def _service_table(services: pd.DataFrame) -> dict[str, str]:
    """Each Service address (cluster IPs, external and load-balancer ingress IPs) → namespace/name."""
    table: dict[str, str] = {}
    for r in services.itertuples():
        for col in ("cluster_ips", "external_ips"):
            for a in list(getattr(r, col, None)) if getattr(r, col, None) is not None else []:
                if a and a != "None":  # a headless Service's clusterIP is "None"
                    table.setdefault(str(a), f"{r.namespace}/{r.name}")
    return table


def _node_table(nodes: pd.DataFrame | None) -> pd.DataFrame:
    rows = []
    if nodes is not None:
        for r in nodes.itertuples():
            for ips in (r.internal_ips, r.external_ips):
                for ip in list(ips) if ips is not None else []:
                    rows.append({"ip": ip, "node": r.name})
    return pd.DataFrame(rows, columns=["ip", "node"])


def _node_of(nodes: pd.DataFrame | None, ip: str) -> str | None:
    table = _node_table(nodes)
    hit = table[table.ip == ip]
    return str(hit.node.iloc[0]) if len(hit) else None
