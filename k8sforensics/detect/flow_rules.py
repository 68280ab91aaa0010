"""Built-in rules over the flows table, and the context rule that follows an exec or a
shell to the connections it opens.

Each rule keeps what it needs of the flows with a ``FlowRows`` declared next to it (its rows
of each chunk, or a count of them), and the engine keeps every rule's in one pass over the
table (``Evidence.flow_rows``): detection holds one chunk of flows, never the table."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from .. import node_ids
from ..context.networks import (
    KUBELET_PORTS,
    METADATA_IPS,
    MINING_PORTS,
    cluster_networks,
    external_mask,
    within,
)
from .engine import (
    Evidence,
    FlowChunk,
    FlowRows,
    Rule,
    evidence_networks,
    hits_from_rows,
    pod_entity,
    set_where,
)
from .facts import SHELLS, allowed, basename, container_execs

TIME_AND_NAME_PORTS = frozenset({53, 123, 67, 68, 5353})  # DNS, NTP, DHCP: periodic by design
BURST_SECONDS = 1.0  # connections closer than this are one beacon check-in
EDGE_EVIDENCE = (
    100  # evidence ids one aggregated new-edge finding lists (the first, by time); the summary has the count
)
POOL_NAMES = r"(?:pool|xmr|monero|nanopool|minexmr|2miners|supportxmr|hashvault|f2pool|nicehash|ethermine)"


def _endpoint(f: pd.DataFrame, side: str) -> pd.Series:
    """One end of a flow as an analyst names it: namespace/workload, else namespace/pod, else
    node:<name> (host-network traffic, which shares the node's address), else the address."""
    ns = f[f"{side}_namespace"].astype(object)
    by_workload = ns + "/" + f[f"{side}_workload"].astype(object)
    by_pod = ns + "/" + f[f"{side}_pod"].astype(object)
    node = node_ids.nodes(f[f"{side}_node"]).where(f[f"{side}_node"].notna())
    is_node = (
        f[f"{side}_kind"].astype(object) == "node" if f"{side}_kind" in f.columns else pd.Series(False, index=f.index)
    )
    out = by_workload.where(by_workload.notna(), by_pod)
    out = out.where(out.notna(), node.where(is_node))
    return out.where(out.notna(), f[f"{side}_ip"].astype(object))


def _src_entity(f: pd.DataFrame) -> pd.Series:
    """The pod that sent the flow, else its node (a host-network pod shares the node's
    address, and no pod can be told from it), else the address."""
    e = pod_entity(f["src_namespace"], f["src_pod"])
    e = e.where(e.notna(), _src_node(f))
    return e.where(e.notna(), f["src_ip"])


def _src_node(f: pd.DataFrame) -> pd.Series:
    if "src_kind" not in f.columns or "src_node" not in f.columns:
        return pd.Series(None, index=f.index, dtype=object)
    return f["src_node"].astype(object).where((f["src_kind"] == "node") & f["src_pod"].isna(), None)


def _pod_source_hits(rows: pd.DataFrame, summary: Any, *, gap: Any, **kw: Any) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame()
    entity = _src_entity(rows)
    hits = hits_from_rows(
        rows,
        entity_type="pod",
        entity=entity,
        namespace=rows["src_namespace"],
        pod=rows["src_pod"],
        source_ip=rows["src_ip"],
        destination_ip=rows["dst_ip"],
        summary=summary,
        table="flows",
        gap=gap,
        **kw,
    )
    nodes, pods = set(_src_node(rows).dropna()), set(entity[rows["src_pod"].notna()])
    set_where(hits, hits["entity"].isin(nodes) & ~hits["entity"].isin(pods), entity_type="node")
    return set_where(hits, ~hits["entity"].isin(nodes | pods), entity_type="ip")


def _scanning_rows(f: pd.DataFrame, *, reply: pd.Series, window: pd.Timedelta, min_targets: int) -> pd.DataFrame:
    """The initiator flows (``reply``, aligned with ``f``, left out) of each source and scan window that reached at least
    ``min_targets`` address:port pairs and either probed many ports of one host (vertical) or
    was mostly refused (horizontal), with ``targets`` and ``denied`` per window. The counting
    runs in DuckDB over the whole frame; only the matching rows come back to pandas."""
    frame = pd.DataFrame(
        {
            "src_ip": f["src_ip"],
            "dst_ip": f["dst_ip"],
            "dst_port": f["dst_port"],
            "verdict": f["verdict"],
            "is_reply": reply.to_numpy(),
            "time": f["time"],
            "_i": range(len(f)),
        }
    )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("frame", frame)
        seconds = int(window.total_seconds())
        # two bucketings, the second shifted by half a window: a scan no longer than half a
        # window lies whole in a bucket of one of them, wherever it starts
        hits = []
        for offset in (0, seconds // 2):
            hits.append(_scan_hits(con, seconds, offset, min_targets))
        hit = (
            pd.concat(hits, ignore_index=True)
            .sort_values(["_i", "targets"], ascending=[True, False])
            .drop_duplicates("_i")
        )
    finally:
        con.close()
    # the columns a hit needs, not the whole flow: a scan is millions of rows
    keep = ["time", "event_id", "src_ip", "src_namespace", "src_pod", "dst_ip", "dst_port", "verdict"]
    return (
        f[keep]
        .iloc[hit["_i"].to_numpy()]
        .assign(targets=hit["targets"].astype(int).to_numpy(), denied=hit["denied"].astype(int).to_numpy())
    )


def _scan_hits(con: Any, seconds: int, offset: int, min_targets: int) -> pd.DataFrame:
    """The scanning rows of ``frame`` (registered on ``con``) in buckets of ``seconds`` shifted by ``offset``."""
    return con.sql(f"""
            WITH f AS (
                SELECT _i, src_ip, dst_ip, dst_port, coalesce(verdict, '') <> 'allowed' AS refused,
                       floor((epoch(time) + {offset}) / {seconds}) AS bucket
                FROM frame WHERE src_ip IS NOT NULL AND NOT coalesce(is_reply, false)),
            host AS (SELECT src_ip, bucket, dst_ip, count(DISTINCT dst_port) AS ports FROM f WHERE dst_ip IS NOT NULL GROUP BY ALL),
            win AS (SELECT src_ip, bucket, count(DISTINCT (dst_ip, dst_port)) AS targets, avg(refused::INT) AS share,
                           sum(refused::INT) AS denied FROM f GROUP BY ALL),
            wide AS (SELECT src_ip, bucket, max(ports) AS vertical FROM host GROUP BY ALL)
            SELECT f._i, win.targets, win.denied FROM f JOIN win USING (src_ip, bucket) LEFT JOIN wide USING (src_ip, bucket)
            WHERE win.targets >= {int(min_targets)} AND (coalesce(wide.vertical, 0) >= 5 OR win.share >= 0.5)
            ORDER BY f._i""").df()


# the scanning rows of each chunk (chunks hold whole scan windows)
SCAN_ROWS = FlowRows(
    "scanning",
    keep=lambda c: _scanning_rows(
        c.rows,
        reply=c.reply,
        window=pd.Timedelta(c.ev.settings["scan_window"]),
        min_targets=c.ev.settings["scan_min_targets"],
    ),
)


def port_scan(ev: Evidence) -> pd.DataFrame:
    """One source reaching many distinct address:port pairs within the scan window; from
    outside it is reconnaissance, from a pod it is internal network mapping."""
    rows = ev.flow_rows(SCAN_ROWS)
    if rows.empty:
        return pd.DataFrame()
    ext = external_mask(rows["src_ip"], evidence_networks(ev))
    hits = hits_from_rows(
        rows,
        entity_type="ip",
        entity=_src_entity(rows),
        namespace=rows["src_namespace"],
        pod=rows["src_pod"],
        source_ip=rows["src_ip"],
        summary=lambda r: (
            f"{r.entity} probed {r.targets} address:port pairs within {ev.settings['scan_window']} "
            f"({r.denied} rejected or dropped), e.g. {r.dst_ip}:{r.dst_port}"
        ),
        table="flows",
        gap=ev.settings["session_gap"],
    )
    outside = hits["source_ip"].isin(set(rows.loc[ext, "src_ip"]))
    set_where(hits, outside, kill_chain_phase="Reconnaissance")
    return set_where(hits, ~outside, entity_type="pod")


METADATA_ROWS = FlowRows(
    "to the metadata service", keep=lambda c: c.rows[c.rows["dst_ip"].isin(METADATA_IPS) & c.from_pod]
)


def metadata_service(ev: Evidence) -> pd.DataFrame:
    rows = ev.flow_rows(METADATA_ROWS)
    return _pod_source_hits(
        rows,
        lambda r: f"pod {r.entity} connected to the cloud metadata service {r.dst_ip}:{r.dst_port}",
        gap=ev.settings["session_gap"],
    )


def _to_mining_pool(c: FlowChunk) -> pd.DataFrame:
    """Flows to an outside address on a mining-pool port, or named like a pool (DNS names, the query)."""
    f = c.rows
    names = (
        f["dst_names"].map(lambda v: " ".join(v) if v is not None and not isinstance(v, float) else "")
        + " "
        + f["dns_query"].fillna("")
    )
    return f[c.dst_out & (f["dst_port"].isin(MINING_PORTS) | names.str.contains(POOL_NAMES, case=False))]


MINING_ROWS = FlowRows("to a mining pool", keep=_to_mining_pool)


def mining_pool(ev: Evidence) -> pd.DataFrame:
    rows = ev.flow_rows(MINING_ROWS)
    return _pod_source_hits(
        rows,
        lambda r: f"{r.entity} connected {r.n} time(s) to {r.dst_ip}:{r.dst_port}, a mining-pool port or name",
        gap=ev.settings["session_gap"],
    )


# an upload this large to an outside address the cluster never used in the learning window is
# data leaving (ATT&CK T1048 / T1041 / T1567); replies are excluded, so a download is not one
UPLOAD_BYTES = 50 * 2**20
# what beaconing reads, and its hits show, of a flow
_BEACON_COLUMNS = [
    "time",
    "event_id",
    "source",
    "src_ip",
    "src_namespace",
    "src_pod",
    "src_kind",
    "src_node",
    "src_port",
    "dst_ip",
    "dst_port",
]


def _uploads(c: FlowChunk) -> pd.DataFrame:
    out = c.outbound
    big = out["bytes"].fillna(0) >= UPLOAD_BYTES if "bytes" in out.columns else pd.Series(False, index=out.index)
    return out.loc[big, [col for col in (*_BEACON_COLUMNS, "bytes") if col in out.columns]]


def _early_destinations(c: FlowChunk) -> pd.DataFrame:
    start = c.ev.start()
    if start is None:
        return c.rows.iloc[:0][["dst_ip"]]
    learned = start + pd.Timedelta(c.ev.settings["learning_window"])
    out = c.outbound
    return out.loc[out["time"] < learned, ["dst_ip"]].drop_duplicates()


UPLOAD_ROWS = FlowRows("large uploads", keep=_uploads)
# the outside addresses the cluster used in the learning window
EARLY_ROWS = FlowRows("outside addresses used in the learning window", keep=_early_destinations)


def large_upload(ev: Evidence) -> pd.DataFrame:
    """Initiator flows carrying ``UPLOAD_BYTES`` or more to an outside address first contacted
    after the learning window. Flow logs that count both directions in one record (Calico, some
    NSG tuples) can make a download look like one: the summary gives the bytes to check."""
    rows = ev.flow_rows(UPLOAD_ROWS)
    if rows.empty:
        return pd.DataFrame()
    early_rows = ev.flow_rows(EARLY_ROWS)
    early = set(early_rows["dst_ip"]) if len(early_rows) else set()
    rows = rows[~rows["dst_ip"].isin(early)]
    return _pod_source_hits(
        rows,
        lambda r: (
            f"{r.entity} sent {int(r.bytes) / 2**20:.0f} MiB to {r.dst_ip}:{r.dst_port}, an outside address "
            f"the cluster did not use before: data leaving"
        ),
        gap=ev.settings["session_gap"],
    )


def _beacon_candidates(c: FlowChunk) -> pd.DataFrame:
    out = c.outbound
    return out.loc[~out["dst_port"].isin(TIME_AND_NAME_PORTS), [col for col in _BEACON_COLUMNS if col in out.columns]]


# the outbound connections to outside addresses, in a few columns
BEACON_ROWS = FlowRows("outbound to outside addresses", keep=_beacon_candidates)


def beaconing(ev: Evidence) -> pd.DataFrame:
    """Regular connections from one source to one outside address:port — command and
    control. Regularity is judged on the flow source that saw most of them (flow logs that
    aggregate per minute would blur it)."""
    f = ev.flow_rows(BEACON_ROWS)
    if f.empty:
        return pd.DataFrame()
    f = f.assign(entity=_src_entity(f))
    key = ["entity", "dst_ip", "dst_port"]
    f = f.dropna(subset=key)
    if "src_port" in f.columns:
        # one connection logged more than once — an NSG flow's begin and end tuples, a VPC flow
        # log's records of one long connection per aggregation interval — is one check-in, at its start
        f = f.sort_values("time", kind="stable")
        again = f["src_port"].notna() & f.duplicated([*key, "src_port", "source"], keep="first")
        f = f[~again]
    # per (source, address, port): the flow source that saw most of its connections — whole
    # columns at a time, since millions of flows make hundreds of thousands of such groups
    counts = f.groupby([*key, "source"], sort=False).size().rename("n").reset_index()
    counts = counts[counts["n"] >= ev.settings["beacon_min_connections"]]
    if counts.empty:
        return pd.DataFrame()
    best = counts.sort_values("n", ascending=False, kind="stable").drop_duplicates(key)
    seen = f.merge(best[[*key, "source"]], on=[*key, "source"], how="inner").sort_values([*key, "time"], kind="stable")
    gap = seen["time"].diff().dt.total_seconds()
    first = (seen[key].shift() != seen[key]).any(axis=1)  # the first row of a group has no gap
    # connections within a second of the previous one are one check-in: a beacon that opens
    # several at once (or two sources behind one entity that call in together) stays regular
    seen = seen.assign(gap=gap.where(~first & (gap >= BURST_SECONDS)))
    gaps = seen.groupby(key, sort=False)["gap"]
    stats = pd.DataFrame({"mean": gaps.mean(), "median": gaps.median(), "std": gaps.std(ddof=0), "gaps": gaps.count()})
    # as many check-ins as the setting asks for connections: a burst counts once
    regular = stats[
        (stats["gaps"] >= ev.settings["beacon_min_connections"] - 1)
        & (stats["mean"] >= 10)
        & (stats["std"] / stats["mean"] <= ev.settings["beacon_max_jitter"])
    ]
    if regular.empty:
        return pd.DataFrame()
    periods = regular["median"].round().astype(int).rename("period").reset_index()
    rows = f.merge(periods, on=key, how="inner")
    # one finding per source and destination: hits group by entity, and a host that calls a
    # routine update server and a C2 server must not have the C2 folded into the routine one
    hits = [
        _pod_source_hits(
            g,
            lambda r: f"{r.entity} called {r.dst_ip}:{r.dst_port} every ~{r.period} s ({r.n} connections): beaconing",
            gap=pd.Timedelta(days=365),
        )
        for _, g in rows.groupby(["dst_ip", "dst_port"], sort=True)
    ]
    return pd.concat(hits, ignore_index=True).sort_values("time", kind="stable").reset_index(drop=True)


KUBELET_ROWS = FlowRows("to a kubelet port", keep=lambda c: c.rows[c.rows["dst_port"].isin(KUBELET_PORTS) & c.from_pod])


def kubelet_from_pod(ev: Evidence) -> pd.DataFrame:
    rows = ev.flow_rows(KUBELET_ROWS)
    return _pod_source_hits(
        rows,
        lambda r: f"pod {r.entity} connected to a kubelet API at {r.dst_ip}:{r.dst_port}",
        gap=ev.settings["session_gap"],
    )


NODEPORT_ROWS = FlowRows(
    "from outside to a NodePort",
    keep=lambda c: c.rows[
        c.src_out & c.rows["dst_port"].astype("Int64").between(30000, 32767).fillna(False) & c.allowed
    ],
)


def nodeport_from_internet(ev: Evidence) -> pd.DataFrame:
    rows = ev.flow_rows(NODEPORT_ROWS)
    return hits_from_rows(
        rows,
        entity_type="ip",
        entity=rows["src_ip"],
        source_ip=rows["src_ip"],
        destination_ip=rows["dst_ip"],
        summary=lambda r: f"{r.src_ip} reached NodePort {r.dst_ip}:{r.dst_port} from outside the cluster",
        table="flows",
        gap=ev.settings["session_gap"],
    )


SSH_ROWS = FlowRows(
    "SSH to a pod", keep=lambda c: c.rows[(c.rows["dst_port"] == 22) & c.rows["dst_pod"].notna() & c.allowed]
)


def ssh_to_pod(ev: Evidence) -> pd.DataFrame:
    rows = ev.flow_rows(SSH_ROWS)
    return hits_from_rows(
        rows,
        entity_type="pod",
        entity=pod_entity(rows["dst_namespace"], rows["dst_pod"]),
        namespace=rows["dst_namespace"],
        pod=rows["dst_pod"],
        source_ip=rows["src_ip"],
        destination_ip=rows["dst_ip"],
        summary=lambda r: f"SSH to pod {r.entity} from {r.src_ip}",
        table="flows",
        gap=ev.settings["session_gap"],
    )


EDGE = ["src_end", "dst_end", "dst_port"]


def _inside_flows(c: FlowChunk) -> pd.DataFrame:
    """The initiators' allowed flows between two inside ends, each end named (``src_end``,
    ``dst_end``: ``_endpoint``), computed once per chunk."""

    def compute() -> pd.DataFrame:
        f = c.rows
        # a pod-CIDR address no lifetime covers is some pod we cannot name (one the inventory
        # missed, a rollout's replica): as an endpoint of its own every such address would be "new"
        pod_cidrs = c.ev.memo("nodes.pod_cidrs", lambda: cluster_networks(c.ev.context("nodes")[["pod_cidrs"]]))
        inside = f[~c.src_out & ~c.dst_out & c.allowed & ~c.reply]
        inside = inside.assign(src_end=_endpoint(inside, "src"), dst_end=_endpoint(inside, "dst"))
        named = [
            inside[f"{side}_pod"].notna()
            | (inside[f"{side}_end"] != inside[f"{side}_ip"])
            | ~within(inside[f"{side}_ip"], pod_cidrs)
            for side in ("src", "dst")
        ]
        return inside[
            named[0]
            & named[1]
            & inside["src_end"].notna()
            & inside["dst_end"].notna()
            & (inside["src_end"] != inside["dst_end"])
        ]

    return c.memo("inside", compute)


def _first_edges(kept: pd.DataFrame) -> pd.DataFrame:
    # chunks are in time order: the first of the firsts is the first
    return kept.drop_duplicates(EDGE).reset_index(drop=True) if len(kept) else kept


def _pair_hours(kept: pd.DataFrame) -> pd.DataFrame:
    # an hour can span two chunks
    return kept.groupby(["src_end", "dst_end", "hour"], as_index=False)["flows"].sum() if len(kept) else kept


# the first flow of each edge (source endpoint, destination endpoint, port) between two inside ends
EDGE_ROWS = FlowRows(
    "first flow of each inside edge",
    keep=lambda c: _inside_flows(c).sort_values("time", kind="stable").drop_duplicates(EDGE),
    merge=_first_edges,
)
# the flows per endpoint pair and hour
PAIR_HOUR_ROWS = FlowRows(
    "inside flows per endpoint pair and hour",
    keep=lambda c: (
        _inside_flows(c)
        .assign(hour=lambda d: d["time"].dt.floor("h"))
        .groupby(["src_end", "dst_end", "hour"], sort=False)
        .size()
        .rename("flows")
        .reset_index()
    ),
    merge=_pair_hours,
)


def new_internal_edge(ev: Evidence) -> pd.DataFrame:
    """Connections between two inside ends never seen during the learning window or before,
    one finding per endpoint pair (source → destination, each a workload, else a pod, a node
    or an address) and hour: each new (pair, port) is a baseline deviation, low on its own, and
    hundreds of them one by one are unreadable (MS-TA9034 / T1210 are about where control
    spreads, which the pair shows). Evidence: the first flow of each new edge, the first
    ``EDGE_EVIDENCE`` of them; the summary counts them all and the pair's flows that hour."""
    first = ev.flow_rows(EDGE_ROWS)
    start = ev.start()
    if first.empty or start is None:
        return pd.DataFrame()
    rows = first[first["time"] >= start + pd.Timedelta(ev.settings["learning_window"])]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(hour=rows["time"].dt.floor("h")).sort_values(
        ["src_end", "dst_end", "hour", "time", "event_id"], kind="stable"
    )
    flows = ev.flow_rows(PAIR_HOUR_ROWS).set_index(["src_end", "dst_end", "hour"])["flows"]
    out = []
    for (src, dst, hour), g in rows.groupby(["src_end", "dst_end", "hour"], sort=False):
        ports = sorted({int(p) for p in g["dst_port"].dropna()})
        shown = ", ".join(str(p) for p in ports[:10]) + (f" and {len(ports) - 10} more" if len(ports) > 10 else "")
        n_flows = int(flows.get((src, dst, hour), len(g)))
        r = g.iloc[0]
        kind = _endpoint_kind(r, "src")
        out.append(
            {
                "time": g["time"].min(),
                "time_end": g["time"].max(),
                "entity_type": kind,
                "entity": node_ids.parse(src).name if kind == "node" else src,
                "namespace": r["src_namespace"],
                "pod": r["src_pod"] if kind == "pod" else None,
                "source_ip": r["src_ip"],
                "destination_ip": r["dst_ip"] if g["dst_ip"].nunique() == 1 else None,
                "event_ids": g["event_id"].astype(str).head(EDGE_EVIDENCE).tolist(),
                "source_table": "flows",
                "summary": f"{len(g)} new connection(s) from {src} to {dst} in the hour from {hour:%Y-%m-%d %H:00} UTC"
                + (f" on port(s) {shown}" if ports else "")
                + f" ({n_flows} flow(s) between them that hour"
                + (f"; the first {EDGE_EVIDENCE} new ones are the evidence)" if len(g) > EDGE_EVIDENCE else ")"),
            }
        )
    return pd.DataFrame(out).sort_values("time", kind="stable").reset_index(drop=True)


def _endpoint_kind(r: Any, side: str) -> str:
    """The findings entity type of an ``_endpoint`` name."""
    if pd.notna(r[f"{side}_workload"]) and pd.notna(r[f"{side}_namespace"]):
        return "workload"
    if pd.notna(r[f"{side}_pod"]) and pd.notna(r[f"{side}_namespace"]):
        return "pod"
    return "node" if node_ids.is_a(str(r[f"{side}_end"]), "node") else "ip"


def _anchored_egress(c: FlowChunk) -> pd.DataFrame:
    """The outbound connections of the pods an exec or shell anchors (``egress_anchors``)."""
    anchored = c.ev.memo(
        "flows.anchored_pods", lambda: set(zip(*[egress_anchors(c.ev)[col] for col in ("namespace", "pod")]))
    )
    out = c.outbound
    pods = pd.Series(list(zip(out["src_namespace"], out["src_pod"])), index=out.index, dtype=object)
    return out[out["src_pod"].notna() & pods.isin(anchored)]


EGRESS_ROWS = FlowRows("outbound from an anchored pod", keep=_anchored_egress)


def exec_then_egress(ev: Evidence) -> pd.DataFrame:
    """A pod opens a connection to a new outside address within minutes of an exec into it
    (audit) or of a shell, or a command run from one, inside it (runtime)."""
    out = ev.flow_rows(EGRESS_ROWS)
    anc = egress_anchors(ev)
    if out.empty or anc.empty:
        return pd.DataFrame()
    out = out.assign(time=out["time"].astype("datetime64[ns, UTC]")).sort_values("time", kind="stable")
    pairs = pd.merge_asof(
        out,
        anc,
        left_on="time",
        right_on="anchor_time",
        left_by=["src_namespace", "src_pod"],
        right_by=["namespace", "pod"],
        direction="backward",
        tolerance=pd.Timedelta(ev.settings["exec_egress_window"]),
        allow_exact_matches=False,
        suffixes=("", "_anchor"),
    )
    pairs = pairs[pairs["anchor_event"].notna()]
    if pairs.empty:
        return pd.DataFrame()
    # new: that pod had not talked to that address:port before the anchor
    pairs = pairs.assign(
        edge=pairs["src_namespace"]
        + "/"
        + pairs["src_pod"]
        + ">"
        + pairs["dst_ip"]
        + ":"
        + pairs["dst_port"].astype(str)
    )
    seen_first = (
        out.assign(
            edge=out["src_namespace"] + "/" + out["src_pod"] + ">" + out["dst_ip"] + ":" + out["dst_port"].astype(str)
        )
        .groupby("edge")["time"]
        .min()
    )
    pairs = pairs[pairs["edge"].map(seen_first) >= pairs["anchor_time"]].drop_duplicates("edge")
    hits = _pod_source_hits(
        pairs,
        lambda r: (
            f"pod {r.entity} opened a new connection to {r.dst_ip}:{r.dst_port} "
            f"{(r.time - r.anchor_time).total_seconds():.0f} s after {r.anchor}"
        ),
        gap=None,
        linked=pairs["anchor_event"],
        since=pairs["anchor_time"],
    )
    hits["source_table"] = "flows,audit,runtime"
    return hits


def egress_anchors(ev: Evidence) -> pd.DataFrame:
    """Execs into a pod (audit) and shells, or commands run from one, inside it (runtime):
    namespace, pod, anchor_time, anchor_event, anchor — in time order."""

    def compute() -> pd.DataFrame:
        a = ev.audit
        ex = a[(a["resource"] == "pods") & a["subresource"].isin(["exec", "attach"]) & allowed(a)]
        anchors = [
            pd.DataFrame(
                {
                    "namespace": ex["object_namespace"],
                    "pod": ex["object_name"],
                    "anchor_time": ex["time"],
                    "anchor_event": ex["event_id"],
                    "anchor": "exec by " + ex["user"].fillna("?"),
                }
            )
        ]
        x = container_execs(ev)
        sh = x[(basename(x["process"]).isin(SHELLS) | basename(x["parent_process"]).isin(SHELLS)) & x["pod"].notna()]
        anchors.append(
            pd.DataFrame(
                {
                    "namespace": sh["namespace"],
                    "pod": sh["pod"],
                    "anchor_time": sh["time"],
                    "anchor_event": sh["event_id"],
                    "anchor": "shell command " + sh["command"].str.slice(0, 120),
                }
            )
        )
        anc = pd.concat(anchors, ignore_index=True).dropna(subset=["pod"])
        anc["anchor_time"] = pd.to_datetime(anc["anchor_time"], utc=True).astype("datetime64[ns, UTC]")
        return anc.sort_values("anchor_time")

    return ev.memo("flows.egress_anchors", compute)


FLOW_RULES = [
    Rule(
        id="net-port-scan",
        title="Port scan or network mapping",
        severity="medium",
        technique_id="MS-TA9031",
        attack_id="T1046",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="flows",
        logic=port_scan,
        reads="reduced",
        flow_rows=(SCAN_ROWS,),
    ),
    Rule(
        id="net-metadata-service",
        title="Pod connected to the cloud metadata service",
        severity="high",
        technique_id="MS-TA9033",
        attack_id="T1552.005",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="flows",
        logic=metadata_service,
        reads="reduced",
        flow_rows=(METADATA_ROWS,),
    ),
    Rule(
        id="net-mining-pool",
        title="Connections to a mining pool",
        severity="high",
        technique_id="MS-TA9039",
        attack_id="T1496",
        tactic="Impact",
        kill_chain_phase="Actions on Objectives",
        table="flows",
        logic=mining_pool,
        reads="reduced",
        flow_rows=(MINING_ROWS,),
    ),
    Rule(
        id="net-beaconing",
        title="Periodic connections to an outside address (beaconing)",
        severity="high",
        technique_id=None,
        attack_id="T1071",
        tactic="Command and Control",
        kill_chain_phase="Command & Control",
        table="flows",
        logic=beaconing,
        reads="reduced",
        flow_rows=(BEACON_ROWS,),
    ),
    Rule(
        id="net-kubelet-from-pod",
        title="Pod connected to a kubelet API port",
        severity="medium",
        technique_id="MS-TA9030",
        attack_id="T1613",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="flows",
        logic=kubelet_from_pod,
        reads="reduced",
        flow_rows=(KUBELET_ROWS,),
    ),
    Rule(
        id="net-nodeport-from-internet",
        title="NodePort reached from outside the cluster",
        severity="medium",
        technique_id="MS-TA9005",
        attack_id="T1133",
        tactic="Initial Access",
        kill_chain_phase="Delivery",
        table="flows",
        logic=nodeport_from_internet,
        reads="reduced",
        flow_rows=(NODEPORT_ROWS,),
    ),
    Rule(
        id="net-ssh-to-pod",
        title="SSH connection to a pod",
        severity="medium",
        technique_id="MS-TA9010",
        attack_id="T1021.004",
        tactic="Execution",
        kill_chain_phase="Delivery",
        table="flows",
        logic=ssh_to_pod,
        reads="reduced",
        flow_rows=(SSH_ROWS,),
    ),
    Rule(
        id="net-new-internal-edge",
        title="New workload-to-workload connection",
        severity="low",
        technique_id="MS-TA9034",
        attack_id="T1210",
        tactic="Lateral Movement",
        kill_chain_phase="Actions on Objectives",
        table="flows",
        logic=new_internal_edge,
        reads="reduced",
        flow_rows=(EDGE_ROWS, PAIR_HOUR_ROWS),
    ),
    Rule(
        id="net-large-upload",
        title="Large upload to a new outside address (exfiltration)",
        severity="high",
        technique_id=None,
        attack_id="T1048",
        tactic="Exfiltration",
        kill_chain_phase="Actions on Objectives",
        table="flows",
        logic=large_upload,
        reads="reduced",
        flow_rows=(UPLOAD_ROWS, EARLY_ROWS),
    ),
    Rule(
        id="net-exec-then-egress",
        title="New outbound connection right after an exec or shell",
        severity="high",
        technique_id="MS-TA9007",
        attack_id="T1059",
        tactic="Execution",
        kill_chain_phase="Command & Control",
        table="flows",
        logic=exec_then_egress,
        reads="reduced",
        flow_rows=(EGRESS_ROWS,),
        description="Joins audit exec and runtime shells with the pod's flows (settings['exec_egress_window']).",
    ),
]
