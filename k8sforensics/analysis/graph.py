"""The lateral-movement graph: who reached what, as observed in the evidence.

Nodes are typed ids — ``ip:198.51.100.66``, ``pod:shop/web-1``, ``sa:shop/web``, ``user:alice``,
``node:node-2``, ``secret:payments/db``, ``binding:name`` — and edges are what the evidence shows
one did to the other, aggregated per (source, target, type) *before* any networkx object is
made: first and last seen, count, bytes, and the evidence event ids.

Edge types and the evidence behind them (threats.md §5):
``flow`` / ``flow_denied`` (flows), ``exec`` / ``attach`` / ``port_forward`` / ``node_proxy``
(identity → pod or node, audit), ``token_use`` (pod or outside IP → service account: the SA's
requests came from there), ``token_steal`` (pod → its own SA: the token file was read in the
pod, runtime or exec command), ``create_pod`` / ``create_workload`` (identity → pod/workload),
``read_secret``, ``bind_role`` (identity → binding) and ``grants`` (binding → subject),
``host_escape`` (pod → its node: nsenter, release_agent … seen at runtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from ..frames import utc_timestamp
from .audit_rules import SA_TOKEN_PATHS, _allowed, _bodies, _subject_users
from .rules import Evidence, service_accounts
from .runtime_rules import HOST_ESCAPE, _execs

if TYPE_CHECKING:
    import networkx as nx

    from ..case import Case

MAX_EVIDENCE = 100
# edges along which control passes from one node to the next (a flow between two pods carries
# data, not control; a flow from outside into a pod is how an attack comes in)
CONTROL_EDGES = frozenset({"exec", "attach", "port_forward", "node_proxy", "token_use", "token_steal", "create_pod", "create_workload",
                           "bind_role", "grants", "host_escape"})
EDGE_COLUMNS = ["source", "target", "type", "first_seen", "last_seen", "count", "bytes", "event_ids"]


def lateral_movement(case: Case | Evidence, *, start: Any = None, end: Any = None) -> nx.MultiDiGraph:
    """The observed lateral-movement graph of a case (or of an ``Evidence``), optionally
    within [start, end]."""
    import networkx as nx  # here, not at import time: only the graph needs it

    ev = case if isinstance(case, Evidence) else Evidence.from_case(case)
    edges = observed_edges(ev)
    if start is not None:
        edges = edges[edges["last_seen"] >= utc_timestamp(start)]
    if end is not None:
        edges = edges[edges["first_seen"] <= utc_timestamp(end)]
    g = nx.MultiDiGraph()
    for node in pd.unique(pd.concat([edges["source"], edges["target"]])):
        kind, _, name = str(node).partition(":")
        g.add_node(node, kind=kind, label=name)
    for r in edges.itertuples(index=False):
        g.add_edge(r.source, r.target, key=r.type, type=r.type, first_seen=r.first_seen, last_seen=r.last_seen, count=int(r.count),
                   bytes=int(r.bytes), event_ids=list(r.event_ids), observed=True)
    return g


def observed_edges(ev: Evidence) -> pd.DataFrame:
    """Every observed edge, aggregated per (source, target, type)."""
    parts = [_flow_edges(ev), _audit_edges(ev), _runtime_edges(ev)]
    rows = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else pd.DataFrame(
        columns=["source", "target", "type", "time", "bytes", "event_id"])
    if rows.empty:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    rows["bytes"] = pd.to_numeric(rows["bytes"], errors="coerce").fillna(0)
    rows = rows.sort_values("time", kind="stable")
    agg = rows.groupby(["source", "target", "type"], sort=False).agg(
        first_seen=("time", "min"), last_seen=("time", "max"), count=("event_id", "size"), bytes=("bytes", "sum"),
        event_ids=("event_id", lambda s: list(s.astype(str))[:MAX_EVIDENCE]))
    return agg.reset_index()[EDGE_COLUMNS].sort_values("first_seen", kind="stable").reset_index(drop=True)


def _endpoint(ns: pd.Series, pod: pd.Series, node: pd.Series, kind: pd.Series, ip: pd.Series) -> pd.Series:
    pods = "pod:" + ns.astype(str) + "/" + pod.astype(str)
    nodes = "node:" + node.astype(str)
    return pods.where(pod.notna() & ns.notna(), nodes.where((kind == "node") & node.notna(), "ip:" + ip.astype(str)))


def _flow_edges(ev: Evidence) -> pd.DataFrame:
    f = ev.flows
    f = f[f["src_ip"].notna() & f["dst_ip"].notna() & ~f["is_reply"].fillna(False).astype(bool)]
    if f.empty:
        return pd.DataFrame()
    src = _endpoint(f["src_namespace"], f["src_pod"], f["src_node"], f["src_kind"], f["src_ip"])
    dst = _endpoint(f["dst_namespace"], f["dst_pod"], f["dst_node"], f["dst_kind"], f["dst_ip"])
    kind = pd.Series("flow", index=f.index).where(f["verdict"].fillna("allowed") == "allowed", "flow_denied")
    return pd.DataFrame({"source": src, "target": dst, "type": kind, "time": f["time"], "bytes": f["bytes"], "event_id": f["event_id"]})


def _actor(a: pd.DataFrame) -> pd.Series:
    sa = "sa:" + a["sa_namespace"].astype(str) + "/" + a["sa_name"].astype(str)
    return sa.where(a["sa_name"].notna(), "user:" + a["user"].astype(str))


def _audit_edges(ev: Evidence) -> pd.DataFrame:
    a = ev.audit[_allowed(ev)]
    if a.empty:
        return pd.DataFrame()
    actor = _actor(a)
    target_pod = "pod:" + a["object_namespace"].astype(str) + "/" + a["object_name"].astype(str)
    out = []

    def add(mask: pd.Series, source: pd.Series, target: pd.Series, kind: str) -> None:
        if mask.any():
            out.append(pd.DataFrame({"source": source[mask], "target": target[mask], "type": kind, "time": a.loc[mask, "time"], "bytes": 0,
                                     "event_id": a.loc[mask, "event_id"]}))

    pods = a["resource"] == "pods"
    for sub, kind in (("exec", "exec"), ("attach", "attach"), ("portforward", "port_forward")):
        add(pods & (a["subresource"] == sub), actor, target_pod, kind)
    add((a["resource"] == "nodes") & (a["subresource"] == "proxy"), actor, "node:" + a["object_name"].astype(str), "node_proxy")
    creates = (a["verb"] == "create") & a["subresource"].isna() & a["object_name"].notna()
    add(creates & pods, actor, target_pod, "create_pod")
    workloads = a["resource"].isin(["deployments", "daemonsets", "statefulsets", "jobs", "cronjobs", "replicasets"])
    add(creates & workloads, actor, "workload:" + a["object_namespace"].astype(str) + "/" + a["resource"].astype(str) + "/" + a["object_name"].astype(str),
        "create_workload")
    secrets = (a["resource"] == "secrets") & a["verb"].isin(["get", "list", "watch"])
    add(secrets, actor, "secret:" + a["object_namespace"].fillna("*").astype(str) + "/" + a["object_name"].fillna("*").astype(str), "read_secret")
    # token use: where a service account's requests came from (its pod, another pod, outside)
    sa = a["sa_name"].notna() & a["source_ip"].notna()
    src = ("pod:" + a["source_namespace"].astype(str) + "/" + a["source_pod"].astype(str)).where(a["source_pod"].notna(), "ip:" + a["source_ip"].astype(str)) \
        if "source_pod" in a.columns else "ip:" + a["source_ip"].astype(str)
    add(sa & (a.get("source_kind", pd.Series("pod", index=a.index)) != "node"), src, actor, "token_use")
    # the pod a bound token was read in (an exec whose command reads the token file)
    steal = a["exec_command"].fillna("").str.contains(SA_TOKEN_PATHS) & pods & (a["subresource"] == "exec")
    if steal.any():
        sa_of = service_accounts(ev, a["object_namespace"], a["object_name"])
        add(steal & sa_of.notna(), target_pod, "sa:" + a["object_namespace"].astype(str) + "/" + sa_of.astype(str), "token_steal")
    # bindings: who created them, and whom they grant
    binds = a["resource"].isin(["clusterrolebindings", "rolebindings"]) & (a["verb"] == "create")
    binding = "binding:" + a["object_name"].astype(str)
    add(binds, actor, binding, "bind_role")
    if binds.any():
        for i, body in _bodies(a, binds).dropna().items():
            for subject in _subject_users(body):
                node = ("sa:" + subject.removeprefix("system:serviceaccount:").replace(":", "/", 1)) if subject.startswith("system:serviceaccount:") else "user:" + subject
                out.append(pd.DataFrame({"source": [binding[i]], "target": [node], "type": ["grants"], "time": [a.at[i, "time"]], "bytes": [0],
                                         "event_id": [a.at[i, "event_id"]]}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def _runtime_edges(ev: Evidence) -> pd.DataFrame:
    x = _execs(ev)
    x = x[x["pod"].notna() & x["namespace"].notna()]
    if x.empty:
        return pd.DataFrame()
    pod = "pod:" + x["namespace"].astype(str) + "/" + x["pod"].astype(str)
    out = []
    escape = x["command"].str.contains(HOST_ESCAPE) & x["node"].notna()
    if escape.any():
        out.append(pd.DataFrame({"source": pod[escape], "target": "node:" + x.loc[escape, "node"].astype(str), "type": "host_escape",
                                 "time": x.loc[escape, "time"], "bytes": 0, "event_id": x.loc[escape, "event_id"]}))
    steal = x["command"].str.contains(SA_TOKEN_PATHS)
    if steal.any():
        sa = service_accounts(ev, x["namespace"], x["pod"])
        m = steal & sa.notna()
        out.append(pd.DataFrame({"source": pod[m], "target": "sa:" + x.loc[m, "namespace"].astype(str) + "/" + sa[m].astype(str),
                                 "type": "token_steal", "time": x.loc[m, "time"], "bytes": 0, "event_id": x.loc[m, "event_id"]}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def paths(graph: nx.MultiDiGraph, source: str, target: str | None = None) -> pd.DataFrame:
    """How control spread from ``source`` (e.g. ``ip:198.51.100.66``), in time order: a node is
    reached at the first moment an edge from an already reached node gets to it (flows count
    only from ``source`` itself into pods, the way in; after that only control edges — exec, token use
    and theft, pod creation, bindings, host escape). Returns the hops of the chain that reaches
    ``target`` (or every reached node, with its parent, when ``target`` is None)."""
    if source not in graph:
        raise KeyError(f"{source!r} is not in the graph")
    reached: dict[str, tuple[pd.Timestamp, str | None, dict[str, Any] | None]] = {source: (pd.Timestamp.min.tz_localize("UTC"), None, None)}
    candidates = sorted(
        ((d["first_seen"], u, v, d) for u, v, d in graph.edges(data=True)
         if d.get("observed") and (d["type"] in CONTROL_EDGES or (d["type"] == "flow" and u == source and str(v).startswith("pod:")))),
        key=lambda e: e[0])
    changed = True
    while changed:  # edges are in time order; repeat until no node is reached earlier
        changed = False
        for t, u, v, d in candidates:
            if u in reached and reached[u][0] <= t and (v not in reached or t < reached[v][0]) and v != source:
                reached[v] = (t, u, d)
                changed = True
    rows = [{"node": n, "kind": graph.nodes[n].get("kind"), "reached": t if p is not None else pd.NaT, "parent": p,
             "via": d["type"] if d else None, "event_ids": d["event_ids"] if d else []} for n, (t, p, d) in reached.items()]
    table = pd.DataFrame(rows)
    if target is None:
        return table.sort_values("reached", na_position="first", kind="stable").reset_index(drop=True)
    if target not in reached:
        return table.iloc[0:0]
    chain = []
    node: str | None = target
    while node is not None:
        chain.append(node)
        node = reached[node][1]
    order = {n: i for i, n in enumerate(reversed(chain))}
    return table[table["node"].isin(order)].assign(_o=lambda d: d["node"].map(order)).sort_values("_o").drop(columns="_o").reset_index(drop=True)
