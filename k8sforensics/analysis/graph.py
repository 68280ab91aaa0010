"""The lateral-movement graph: who reached what — as observed in the evidence, and as the
configuration makes possible — on one ``networkx.MultiDiGraph``.

Nodes are typed ids — ``ip:198.51.100.66``, ``pod:shop/web-1``, ``sa:shop/web``, ``user:alice``,
``group:system:masters``, ``node:node-2``, ``secret:payments/db``, ``binding:name``,
``workload:ns/deployments/web``, ``role:*`` — with ``kind`` and ``label`` attributes (pods also
``namespace``, ``workload`` and ``host``).

**Observed** edges (``observed=True``) are what the evidence shows one did to the other,
aggregated per (source, target, type) *before* any networkx object is made (DuckDB): first and
last seen, count, bytes and the evidence event ids. Edge types and their evidence (after KubeHound's attack edges):
``flow`` / ``flow_denied`` (flows), ``exec`` / ``attach`` / ``debug`` (an ephemeral container) /
``port_forward`` / ``node_proxy`` (identity → pod or node, audit), ``token_request`` (identity →
the SA it minted a token for), ``impersonate`` (identity → whom it acted as), ``token_use`` (pod or outside IP → service account: the SA's
requests came from there), ``token_steal`` (pod → its own SA: the token file was read in the
pod, runtime or exec command), ``create_pod`` / ``create_workload`` (identity → pod/workload), ``patch`` (identity → pod or
workload: a patch or update can swap the image),
``read_secret``, ``bind_role`` (identity → binding), ``grants`` (binding → subject) and
``use_binding`` (identity → the binding the authorizer says allowed its request),
``host_escape`` (pod → its node: nsenter, release_agent … seen at runtime).

**Possible** edges (``observed=False``) come from RBAC and pod specs (``possible.py``) and carry
``reason``, ``basis``, ``fix`` and ``cuttable`` instead of evidence ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import pyarrow as pa

from ..bodies import UnreadableBodies
from ..frames import utc_timestamp
from .audit_rules import SA_TOKEN_PATHS, _allowed, _bodies, _subject_users
from .possible import POSSIBLE_COLUMNS, possible_edges
from .rules import Evidence, service_accounts
from .runtime_rules import HOST_ESCAPE, _execs

if TYPE_CHECKING:
    import networkx as nx

    from ..case import Case

MAX_EVIDENCE = 100
# edges along which control passes from one node to the next (a flow between two pods carries
# data, not control; a flow from outside into a pod is how an attack comes in)
CONTROL_EDGES = frozenset({"exec", "attach", "debug", "port_forward", "node_proxy", "token_use", "token_steal", "token_request", "impersonate",
                           "create_pod", "create_workload", "patch", "bind_role", "grants", "host_escape"})
# what else hands over control when it is merely possible: structure and secrets
REACH_EDGES = CONTROL_EDGES | {"read_secret", "hosts", "runs", "member_of"}
EDGE_COLUMNS = ["source", "target", "type", "first_seen", "last_seen", "count", "bytes", "event_ids"]
# the columns the graph reads: a big case is never loaded whole for it
AUDIT_COLUMNS = ["time", "event_id", "namespace", "pod", "verb", "user", "user_groups", "sa_namespace", "sa_name", "token_pod", "source_ip",
                 "resource", "subresource", "object_namespace", "object_name", "decision", "response_code", "authz_reason", "exec_command",
                 "impersonated_user", "request_object"]  # bodies: read a chunk at a time, parsed only for binding creations
RUNTIME_COLUMNS = ["time", "event_id", "event_type", "container_id", "namespace", "pod", "node", "process", "args", "cmdline"]
FLOW_COLUMNS = ["time", "time_end", "event_id", "src_ip", "dst_ip", "is_reply", "verdict", "bytes",
                *(f"{side}_{c}" for side in ("src", "dst") for c in ("namespace", "pod", "node"))]
_FLOW_ENDPOINTS = [*FLOW_COLUMNS, "src_kind", "dst_kind"]  # the kinds come from enrichment


def lateral_movement(case: Case | Evidence, *, start: Any = None, end: Any = None, possible: bool = True,
                     unreadable: UnreadableBodies | None = None) -> nx.MultiDiGraph:
    """The lateral-movement graph of a case (or of an ``Evidence``): observed edges within
    [start, end] and, with ``possible=True``, the possible edges of the inventory (those tied to a
    pod's lifetime only when it overlaps the window). Request bodies left unread (too large, too
    deep, not JSON) are logged, summarised in ``graph.graph["unreadable_bodies"]`` and recorded
    in ``unreadable`` when given."""
    import networkx as nx  # here, not at import time: only the graph needs it

    ev = case if isinstance(case, Evidence) else graph_evidence(case, unreadable=unreadable)
    before = ev.unreadable.snapshot()
    edges = observed_edges(ev)
    maybe = possible_edges(ev) if possible else pd.DataFrame(columns=POSSIBLE_COLUMNS)
    if start is not None:
        t = utc_timestamp(start)
        edges = edges[edges["last_seen"] >= t]
        maybe = maybe[~(maybe["last_seen"] < t)]
    if end is not None:
        t = utc_timestamp(end)
        edges = edges[edges["first_seen"] <= t]
        maybe = maybe[~(maybe["first_seen"] > t)]
    g = nx.MultiDiGraph()
    for node in pd.unique(pd.concat([edges["source"], edges["target"], maybe["source"], maybe["target"]])):
        kind, _, name = str(node).partition(":")
        g.add_node(node, kind=kind, label=name)
    _pod_attributes(g, ev)
    for r in edges.itertuples(index=False):
        g.add_edge(r.source, r.target, key=r.type, type=r.type, observed=True, first_seen=r.first_seen, last_seen=r.last_seen,
                   count=int(r.count), bytes=int(r.bytes), event_ids=list(r.event_ids))
    for r in maybe.itertuples(index=False):
        g.add_edge(r.source, r.target, key=f"{r.type}?", type=r.type, observed=False, first_seen=r.first_seen, last_seen=r.last_seen,
                   count=0, bytes=0, event_ids=[], reason=r.reason, basis=r.basis, fix=r.fix, cuttable=bool(r.cuttable))
    # request bodies left unread (too large, too deep, not JSON): the edges they would give are missing
    g.graph["unreadable_bodies"] = ev.unreadable.summary()
    ev.unreadable.warn("lateral-movement graph", before)
    if unreadable is not None and unreadable is not ev.unreadable:
        unreadable.merge(ev.unreadable)
    return g


def graph_evidence(case: Case, *, unreadable: UnreadableBodies | None = None) -> Evidence:
    """The case's tables with only the columns the graph reads (enriched); the graph reads them
    a chunk at a time. Bodies left unread go to ``unreadable`` (a new collector if None)."""
    return Evidence(audit=lambda: case.audit(columns=AUDIT_COLUMNS, enrich=True, max_rows=None),
                    runtime=lambda: case.runtime(columns=RUNTIME_COLUMNS, enrich=True, max_rows=None),
                    flows=lambda: case.flows(columns=FLOW_COLUMNS, enrich=True, max_rows=None), context=case.context,
                    case=case, flow_columns=FLOW_COLUMNS, audit_columns=AUDIT_COLUMNS, runtime_columns=RUNTIME_COLUMNS,
                    unreadable=unreadable)


def _pod_attributes(g: nx.MultiDiGraph, ev: Evidence) -> None:
    pods = pd.concat([ev.context("pods")[["namespace", "name", "workload_kind", "workload", "node"]],
                      ev.context("pod_ips").rename(columns={"pod": "name"})[["namespace", "name", "workload_kind", "workload", "node"]]])
    for r in pods.drop_duplicates(["namespace", "name"]).itertuples(index=False):
        node = f"pod:{r.namespace}/{r.name}"
        if node in g:
            g.nodes[node].update(namespace=r.namespace, workload=f"{r.workload_kind} {r.workload}" if isinstance(r.workload, str) else None,
                                 host=r.node if isinstance(r.node, str) else None)


def observed_edges(ev: Evidence) -> pd.DataFrame:
    """Every observed edge, aggregated per (source, target, type) (columns ``EDGE_COLUMNS``)."""
    # the audit log and the runtime events a chunk at a time, as the flows: each chunk's edges aggregated, then merged
    audit = _merge([_aggregate(_audit_edges(Evidence(audit=chunk, context=ev.context, settings=ev.settings, unreadable=ev.unreadable))) for chunk in ev.audit_chunks()]
                   + [_aggregate(_runtime_edges(Evidence(runtime=chunk, context=ev.context, settings=ev.settings, unreadable=ev.unreadable)))
                      for chunk in ev.runtime_chunks()])
    parts = [p for p in (_flow_edges(ev), audit) if len(p)]
    if not parts:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    for col in ("first_seen", "last_seen"):
        out[col] = pd.to_datetime(out[col], utc=True)
    out["event_ids"] = [list(ids) for ids in out["event_ids"]]
    return out[EDGE_COLUMNS].sort_values(["first_seen", "source", "target", "type"], kind="stable").reset_index(drop=True)


# per part (a chunk of rows): the first MAX_EVIDENCE events with their times, so parts merge exactly
_AGGREGATE = f"""
    SELECT source, target, type, min(time) AS first_seen, max(time) AS last_seen, count(*) AS count,
           coalesce(sum(bytes), 0)::BIGINT AS bytes,
           list({{'t': time, 'e': event_id::VARCHAR}} ORDER BY time, event_id::VARCHAR)[1:{MAX_EVIDENCE}] AS evidence
    FROM rows GROUP BY source, target, type"""
_MERGE = f"""
    SELECT source, target, type, min(first_seen) AS first_seen, max(last_seen) AS last_seen, sum(count)::BIGINT AS count,
           sum(bytes)::BIGINT AS bytes, list_transform(list_sort(flatten(list(evidence)))[1:{MAX_EVIDENCE}], lambda x: x.e) AS event_ids
    FROM parts GROUP BY source, target, type"""


def _aggregate(rows: pd.DataFrame) -> pa.Table | None:
    """Edge rows (source, target, type, time, bytes, event_id) aggregated per edge: a part, kept
    in Arrow (its evidence lists would be millions of Python objects)."""
    if rows.empty:
        return None
    rows = rows.assign(bytes=pd.to_numeric(rows["bytes"], errors="coerce"), time=pd.to_datetime(rows["time"], utc=True),
                       **{c: rows[c].astype(str) for c in ("source", "target", "type", "event_id")})
    con = duckdb.connect()
    try:
        con.register("rows", rows)
        return con.sql(_AGGREGATE).to_arrow_table()
    finally:
        con.close()


def _merge(parts: list[pa.Table | None]) -> pd.DataFrame:
    """Parts of the same edges merged (columns ``EDGE_COLUMNS``): counts and bytes summed, the
    first and last times, and the first events in time order."""
    present = [p for p in parts if p is not None and p.num_rows]
    if not present:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    con = duckdb.connect()
    try:
        con.register("parts", pa.concat_tables(present))
        return con.sql(_MERGE).df()
    finally:
        con.close()


def _endpoint_sql(side: str) -> str:
    return (f"CASE WHEN {side}_pod IS NOT NULL AND {side}_namespace IS NOT NULL THEN 'pod:' || {side}_namespace || '/' || {side}_pod "
            f"WHEN {side}_kind = 'node' AND {side}_node IS NOT NULL THEN 'node:' || {side}_node ELSE 'ip:' || {side}_ip END")


def _flow_edges(ev: Evidence) -> pd.DataFrame:
    """Flows aggregated in DuckDB, chunk by chunk, straight from the enriched frames: millions
    of flows become a few thousand (source, target, verdict) rows without a Python string per
    flow, and only one chunk of flows is held at a time."""
    return _merge([_flow_chunk_edges(f) for f in ev.flow_chunks()])


def _flow_chunk_edges(f: pd.DataFrame) -> pa.Table | None:
    if f.empty:
        return None
    frame = pd.DataFrame({c: f[c] if c in f.columns else None for c in _FLOW_ENDPOINTS})
    con = duckdb.connect()
    try:
        con.register("f", frame)
        return con.sql(f"""
            WITH rows AS (
                SELECT {_endpoint_sql('src')} AS source, {_endpoint_sql('dst')} AS target,
                       CASE WHEN coalesce(verdict, 'allowed') = 'allowed' THEN 'flow' ELSE 'flow_denied' END AS type,
                       time, bytes, event_id
                FROM f WHERE src_ip IS NOT NULL AND dst_ip IS NOT NULL AND NOT coalesce(is_reply, false))
            {_AGGREGATE}""").to_arrow_table()
    finally:
        con.close()


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
    # kubectl debug: an ephemeral container added to a running pod
    add(pods & (a["subresource"] == "ephemeralcontainers") & a["verb"].isin(["patch", "update"]), actor, target_pod, "debug")
    add((a["resource"] == "nodes") & (a["subresource"] == "proxy"), actor, "node:" + a["object_name"].astype(str), "node_proxy")
    # a token minted for another service account, and requests made as someone else
    add((a["resource"] == "serviceaccounts") & (a["subresource"] == "token") & (a["verb"] == "create"), actor,
        "sa:" + a["object_namespace"].astype(str) + "/" + a["object_name"].astype(str), "token_request")
    if "impersonated_user" in a.columns:
        who = a["impersonated_user"].astype("string")
        as_sa = who.str.startswith("system:serviceaccount:").fillna(False).astype(bool)
        target = ("sa:" + who.str.removeprefix("system:serviceaccount:").str.replace(":", "/", n=1)).where(as_sa, "user:" + who)
        add(who.notna(), actor, target.astype(str), "impersonate")
    creates = (a["verb"] == "create") & a["subresource"].isna() & a["object_name"].notna()
    add(creates & pods, actor, target_pod, "create_pod")
    workloads = a["resource"].isin(["deployments", "daemonsets", "statefulsets", "jobs", "cronjobs", "replicasets"])
    workload = "workload:" + a["object_namespace"].astype(str) + "/" + a["resource"].astype(str) + "/" + a["object_name"].astype(str)
    add(creates & workloads, actor, workload, "create_workload")
    # a patch or update of a pod or a workload can swap its image or command: code runs there
    changes = a["verb"].isin(["patch", "update"]) & a["subresource"].isna() & a["object_name"].notna()
    add(changes & pods, actor, target_pod, "patch")
    add(changes & workloads, actor, workload, "patch")
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
        sa_of = service_accounts(ev, a.loc[steal, "object_namespace"], a.loc[steal, "object_name"]).reindex(a.index)
        add(steal & sa_of.notna(), target_pod, "sa:" + a["object_namespace"].astype(str) + "/" + sa_of.astype(str), "token_steal")
    # bindings: who created them, and whom they grant
    binds = a["resource"].isin(["clusterrolebindings", "rolebindings"]) & (a["verb"] == "create")
    binding = "binding:" + a["object_name"].astype(str)
    add(binds, actor, binding, "bind_role")
    # and who used one: the authorizer names the binding that allowed a request
    used = a["authz_reason"].astype("string").str.extract(r'by (?:Cluster)?RoleBinding "([^"]+)"', expand=False) \
        if "authz_reason" in a.columns else pd.Series(pd.NA, index=a.index, dtype="string")
    add(used.notna(), actor, "binding:" + used.astype(str), "use_binding")
    if binds.any():
        for i, body in _bodies(a, binds, unreadable=ev.unreadable).dropna().items():
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
