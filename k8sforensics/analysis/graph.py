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
``host_escape`` (pod → its node: nsenter, release_agent …, a static-pod manifest, the container
runtime's socket, or the node's crontab written through a hostPath — seen at runtime, in an
execution or an alert naming the command).

The ways in and the persistence of a breach that exploited no pod (Threat Matrix MS-TA9001/9003,
MS-TA9015, MS-TA9016, MS-TA9017): ``credential_use`` (outside IP → the user whose credential
made requests from there; a service account's is ``token_use``), ``read_token_secret`` (identity
→ a Secret holding a service-account token, read before the account acted from the reader's
address or from outside) and ``token_from_secret`` (that Secret → the account; also for a token
Secret someone created, ``create_token_secret``), ``create_sa`` (identity → a ServiceAccount it
created), ``create_webhook`` (identity → ``webhook:name``, a mutating or validating admission
webhook configuration it wrote), ``create_csr`` / ``approve_csr`` (identity → ``csr:name``) and
``csr_identity`` (an approved CSR → ``user:<CN>``, the identity its certificate authenticates as),
``static_pod`` (node → the mirror pod of a static pod its kubelet registered). Flows from a
host-network pod carry its node's address: an address the node's kubelet called the API from is
that node's.

**Possible** edges (``observed=False``) come from RBAC and pod specs (``possible.py``) and carry
``reason``, ``basis``, ``fix`` and ``cuttable`` instead of evidence ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
import pyarrow as pa

from .. import node_ids
from ..bodies import UnreadableBodies
from ..context.enrich import enriched
from ..context.networks import cluster_networks, external_mask
from ..detect.audit_rules import (
    first_token_links,
    token_secret_links,
    token_secret_owners,
    token_secret_rows,
)
from ..detect.engine import Evidence, service_accounts
from ..detect.facts import (
    PLATFORM_USERS,
    SA_TOKEN_PATHS,
    SA_TOKEN_TYPE,
    STATIC_MANIFEST,
    STATIC_MANIFEST_WRITE,
    allowed_requests,
    container_execs,
    parsed_bodies,
    subject_users,
)
from ..detect.runtime_rules import host_takeovers
from ..frames import utc_timestamp
from .possible import POSSIBLE_COLUMNS, possible_edges

if TYPE_CHECKING:
    import networkx as nx

    from ..case import Case

MAX_EVIDENCE = 100
# edges along which control passes from one node to the next (a flow between two pods carries
# data, not control; a flow from outside into a pod is how an attack comes in)
CONTROL_EDGES = frozenset(
    {
        "exec",
        "attach",
        "debug",
        "port_forward",
        "node_proxy",
        "token_use",
        "token_steal",
        "token_request",
        "impersonate",
        "create_pod",
        "create_workload",
        "patch",
        "bind_role",
        "grants",
        "host_escape",
        "credential_use",
        "read_token_secret",
        "token_from_secret",
        "create_token_secret",
        "create_sa",
        "create_webhook",
        "create_csr",
        "approve_csr",
        "csr_identity",
        "static_pod",
    }
)
# what else hands over control when it is merely possible: structure and secrets
REACH_EDGES = CONTROL_EDGES | {"read_secret", "hosts", "runs", "member_of"}
EDGE_COLUMNS = ["source", "target", "type", "first_seen", "last_seen", "count", "bytes", "event_ids"]
# the columns the graph reads: a big case is never loaded whole for it
AUDIT_COLUMNS = [
    "time",
    "event_id",
    "namespace",
    "pod",
    "verb",
    "user",
    "user_groups",
    "sa_namespace",
    "sa_name",
    "token_pod",
    "source_ip",
    "resource",
    "subresource",
    "object_namespace",
    "object_name",
    "decision",
    "response_code",
    "authz_reason",
    "exec_command",
    "impersonated_user",
    "request_object",
]  # bodies: read a chunk at a time, parsed only for creations that name what they grant
RUNTIME_COLUMNS = [
    "time",
    "event_id",
    "event_type",
    "container_id",
    "namespace",
    "pod",
    "node",
    "process",
    "args",
    "cmdline",
    "file_path",
]
FLOW_COLUMNS = [
    "time",
    "time_end",
    "event_id",
    "src_ip",
    "dst_ip",
    "is_reply",
    "verdict",
    "bytes",
    *(f"{side}_{c}" for side in ("src", "dst") for c in ("namespace", "pod", "node")),
]
_FLOW_ENDPOINTS = [*FLOW_COLUMNS, "src_kind", "dst_kind"]  # the kinds come from enrichment


def lateral_movement(
    case: Case | Evidence,
    *,
    start: Any = None,
    end: Any = None,
    possible: bool = True,
    unreadable: UnreadableBodies | None = None,
) -> nx.MultiDiGraph:
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
        g.add_node(node, kind=node_ids.kind(node), label=node_ids.label(node))
    _pod_attributes(g, ev)
    for r in edges.itertuples(index=False):
        g.add_edge(
            r.source,
            r.target,
            key=r.type,
            type=r.type,
            observed=True,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            count=int(r.count),
            bytes=int(r.bytes),
            event_ids=list(r.event_ids),
        )
    for r in maybe.itertuples(index=False):
        g.add_edge(
            r.source,
            r.target,
            key=f"{r.type}?",
            type=r.type,
            observed=False,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            count=0,
            bytes=0,
            event_ids=[],
            reason=r.reason,
            basis=r.basis,
            fix=r.fix,
            cuttable=bool(r.cuttable),
        )
    # request bodies left unread (too large, too deep, not JSON): the edges they would give are missing
    g.graph["unreadable_bodies"] = ev.unreadable.summary()
    ev.unreadable.warn("lateral-movement graph", before)
    if unreadable is not None and unreadable is not ev.unreadable:
        unreadable.merge(ev.unreadable)
    return g


def graph_evidence(case: Case, *, unreadable: UnreadableBodies | None = None) -> Evidence:
    """The case's tables with only the columns the graph reads (enriched); the graph reads them
    a chunk at a time. Bodies left unread go to ``unreadable`` (a new collector if None)."""
    return Evidence(
        audit=lambda: enriched(case, "audit", columns=AUDIT_COLUMNS, max_rows=None),
        runtime=lambda: enriched(case, "runtime", columns=RUNTIME_COLUMNS, max_rows=None),
        flows=lambda: enriched(case, "flows", columns=FLOW_COLUMNS, max_rows=None),
        context=case.context,
        case=case,
        flow_columns=FLOW_COLUMNS,
        audit_columns=AUDIT_COLUMNS,
        runtime_columns=RUNTIME_COLUMNS,
        unreadable=unreadable,
    )


def _pod_attributes(g: nx.MultiDiGraph, ev: Evidence) -> None:
    pods = pd.concat(
        [
            ev.context("pods")[["namespace", "name", "workload_kind", "workload", "node"]],
            ev.context("pod_ips").rename(columns={"pod": "name"})[
                ["namespace", "name", "workload_kind", "workload", "node"]
            ],
        ]
    )
    for r in pods.drop_duplicates(["namespace", "name"]).itertuples(index=False):
        node = node_ids.pod(r.namespace, r.name)
        if node in g:
            g.nodes[node].update(
                namespace=r.namespace,
                workload=f"{r.workload_kind} {r.workload}" if isinstance(r.workload, str) else None,
                host=r.node if isinstance(r.node, str) else None,
            )


def observed_edges(ev: Evidence) -> pd.DataFrame:
    """Every observed edge, aggregated per (source, target, type) (columns ``EDGE_COLUMNS``)."""
    # the audit log and the runtime events a chunk at a time, as the flows: each chunk's edges aggregated, then merged
    nets = cluster_networks(ev.context("nodes"))
    owners_ctx = ev.context("service_accounts")
    window = pd.Timedelta(ev.settings["token_secret_use_window"])
    parts, links, addresses = [], [], []
    carried: pd.DataFrame | None = None  # Secret reads and creations, while a later use can still be linked to them
    for chunk in ev.audit_chunks():
        part = Evidence(audit=chunk, context=ev.context, settings=ev.settings, unreadable=ev.unreadable)
        parts.append(_aggregate(_audit_edges(part, networks=nets)))
        addresses.append(_node_addresses(chunk, nets))
        frame = chunk if carried is None else pd.concat([carried, chunk], ignore_index=True)
        owners = token_secret_owners(frame, owners_ctx, unreadable=ev.unreadable)
        links.append(
            token_secret_links(frame, owners=owners, outside=external_mask(frame["source_ip"], nets), window=window)
        )
        if len(chunk):
            fresh = [] if carried is None else [carried[carried["time"] >= chunk["time"].max() - window]]
            carried = pd.concat([*fresh, token_secret_rows(chunk)], ignore_index=True).drop_duplicates("event_id")
    parts.append(_aggregate(_token_secret_edges(pd.concat(links, ignore_index=True) if links else pd.DataFrame())))
    parts += [
        _aggregate(
            _runtime_edges(Evidence(runtime=chunk, context=ev.context, settings=ev.settings, unreadable=ev.unreadable))
        )
        for chunk in ev.runtime_chunks()
    ]
    audit = _merge(parts)
    known = pd.concat(addresses, ignore_index=True) if addresses else pd.DataFrame(columns=["ip", "node", "time"])
    node_of = (
        known.sort_values("time", kind="stable").drop_duplicates("ip")[["ip", "node"]]
        if len(known)
        else pd.DataFrame(columns=["ip", "node"])
    )
    parts = [p for p in (_flow_edges(ev, node_of=node_of), audit) if len(p)]
    if not parts:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    for col in ("first_seen", "last_seen"):
        out[col] = pd.to_datetime(out[col], utc=True)
    out["event_ids"] = [list(ids) for ids in out["event_ids"]]
    return (
        out[EDGE_COLUMNS].sort_values(["first_seen", "source", "target", "type"], kind="stable").reset_index(drop=True)
    )


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
    rows = rows.assign(
        bytes=pd.to_numeric(rows["bytes"], errors="coerce"),
        time=pd.to_datetime(rows["time"], utc=True),
        **{c: rows[c].astype(str) for c in ("source", "target", "type", "event_id")},
    )
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
    # an address no pod held and no inventory names, from which a node's kubelet called the API,
    # is that node's (a host-network pod's flows carry it)
    return (
        f"CASE WHEN {side}_pod IS NOT NULL AND {side}_namespace IS NOT NULL THEN {node_ids.sql('pod', f'{side}_namespace', f'{side}_pod')} "
        f"WHEN {side}_kind = 'node' AND {side}_node IS NOT NULL THEN {node_ids.sql('node', f'{side}_node')} "
        f"WHEN {side}_n.node IS NOT NULL THEN {node_ids.sql('node', f'{side}_n.node')} ELSE {node_ids.sql('ip', f'{side}_ip')} END"
    )


def _node_addresses(a: pd.DataFrame, networks: list[Any]) -> pd.DataFrame:
    """(ip, node, time): the inside addresses nodes' kubelets (``system:node:<name>``) called the
    API from, that no pod held (kubernetes.io/docs/reference/access-authn-authz/node/)."""
    if a.empty:
        return pd.DataFrame(columns=["ip", "node", "time"])
    user = a["user"].fillna("").astype(str)
    kind = a["source_kind"] if "source_kind" in a.columns else pd.Series(None, index=a.index, dtype=object)
    m = (
        user.str.startswith(node_ids.NODE_USER)
        & a["source_ip"].notna()
        & kind.astype(object).ne("pod")
        & ~external_mask(a["source_ip"], networks)
    )
    return pd.DataFrame(
        {
            "ip": a.loc[m, "source_ip"].astype(str),
            "node": user[m].str.removeprefix(node_ids.NODE_USER),
            "time": a.loc[m, "time"],
        }
    )


def _flow_edges(ev: Evidence, *, node_of: pd.DataFrame | None = None) -> pd.DataFrame:
    """Flows aggregated in DuckDB, chunk by chunk, straight from the enriched frames: millions
    of flows become a few thousand (source, target, verdict) rows without a Python string per
    flow, and only one chunk of flows is held at a time. ``node_of`` (ip, node) names the nodes
    of addresses the enrichment left unattributed."""
    nodes = node_of if node_of is not None else pd.DataFrame(columns=["ip", "node"])
    return _merge([_flow_chunk_edges(f, nodes) for f in ev.flow_chunks()])


def _flow_chunk_edges(f: pd.DataFrame, node_of: pd.DataFrame) -> pa.Table | None:
    if f.empty:
        return None
    frame = pd.DataFrame({c: f[c] if c in f.columns else None for c in _FLOW_ENDPOINTS})
    con = duckdb.connect()
    try:
        con.register("f", frame)
        con.register("n", pd.DataFrame({"ip": node_of["ip"].astype(str), "node": node_of["node"].astype(str)}))
        return con.sql(f"""
            WITH rows AS (
                SELECT {_endpoint_sql("src")} AS source, {_endpoint_sql("dst")} AS target,
                       CASE WHEN coalesce(verdict, 'allowed') = 'allowed' THEN 'flow' ELSE 'flow_denied' END AS type,
                       time, bytes, event_id
                FROM f LEFT JOIN n src_n ON f.src_ip = src_n.ip LEFT JOIN n dst_n ON f.dst_ip = dst_n.ip
                WHERE src_ip IS NOT NULL AND dst_ip IS NOT NULL AND NOT coalesce(is_reply, false))
            {_AGGREGATE}""").to_arrow_table()
    finally:
        con.close()


def _audit_edges(ev: Evidence, *, networks: list[Any] | None = None) -> pd.DataFrame:
    a = ev.audit[allowed_requests(ev)]
    if a.empty:
        return pd.DataFrame()
    actor = node_ids.actors(a["sa_namespace"], a["sa_name"], a["user"])
    target_pod = node_ids.pods(a["object_namespace"], a["object_name"])
    out = []

    def add(mask: pd.Series, source: pd.Series, target: pd.Series, kind: str) -> None:
        if mask.any():
            out.append(
                pd.DataFrame(
                    {
                        "source": source[mask],
                        "target": target[mask],
                        "type": kind,
                        "time": a.loc[mask, "time"],
                        "bytes": 0,
                        "event_id": a.loc[mask, "event_id"],
                    }
                )
            )

    pods = a["resource"] == "pods"
    for sub, kind in (("exec", "exec"), ("attach", "attach"), ("portforward", "port_forward")):
        add(pods & (a["subresource"] == sub), actor, target_pod, kind)
    # kubectl debug: an ephemeral container added to a running pod
    add(
        pods & (a["subresource"] == "ephemeralcontainers") & a["verb"].isin(["patch", "update"]),
        actor,
        target_pod,
        "debug",
    )
    add(
        (a["resource"] == "nodes") & (a["subresource"] == "proxy"),
        actor,
        node_ids.nodes(a["object_name"]),
        "node_proxy",
    )
    # a token minted for another service account, and requests made as someone else
    add(
        (a["resource"] == "serviceaccounts") & (a["subresource"] == "token") & (a["verb"] == "create"),
        actor,
        node_ids.service_accounts(a["object_namespace"], a["object_name"]),
        "token_request",
    )
    if "impersonated_user" in a.columns:
        who = a["impersonated_user"]
        add(who.notna(), actor, node_ids.identities(who).astype(str), "impersonate")
    creates = (a["verb"] == "create") & a["subresource"].isna() & a["object_name"].notna()
    add(creates & pods, actor, target_pod, "create_pod")
    workloads = a["resource"].isin(["deployments", "daemonsets", "statefulsets", "jobs", "cronjobs", "replicasets"])
    workload = node_ids.workloads(a["object_namespace"], a["resource"], a["object_name"])
    add(creates & workloads, actor, workload, "create_workload")
    # a patch or update of a pod or a workload can swap its image or command: code runs there
    changes = a["verb"].isin(["patch", "update"]) & a["subresource"].isna() & a["object_name"].notna()
    add(changes & pods, actor, target_pod, "patch")
    add(changes & workloads, actor, workload, "patch")
    secrets = (a["resource"] == "secrets") & a["verb"].isin(["get", "list", "watch"])
    add(
        secrets, actor, node_ids.secrets(a["object_namespace"].fillna("*"), a["object_name"].fillna("*")), "read_secret"
    )
    # token use: where a service account's requests came from (its pod, another pod, outside)
    sa = a["sa_name"].notna() & a["source_ip"].notna()
    src = (
        node_ids.pods(a["source_namespace"], a["source_pod"]).where(
            a["source_pod"].notna(), node_ids.ips(a["source_ip"])
        )
        if "source_pod" in a.columns
        else node_ids.ips(a["source_ip"])
    )
    add(sa & (a.get("source_kind", pd.Series("pod", index=a.index)) != "node"), src, actor, "token_use")
    # the pod a bound token was read in (an exec whose command reads the token file)
    steal = a["exec_command"].fillna("").str.contains(SA_TOKEN_PATHS) & pods & (a["subresource"] == "exec")
    if steal.any():
        sa_of = service_accounts(ev, a.loc[steal, "object_namespace"], a.loc[steal, "object_name"]).reindex(a.index)
        add(steal & sa_of.notna(), target_pod, node_ids.service_accounts(a["object_namespace"], sa_of), "token_steal")
    # bindings: who created them, and whom they grant
    binds = a["resource"].isin(["clusterrolebindings", "rolebindings"]) & (a["verb"] == "create")
    binding = node_ids.bindings(a["object_name"])
    add(binds, actor, binding, "bind_role")
    # and who used one: the authorizer names the binding that allowed a request
    used = (
        a["authz_reason"].astype("string").str.extract(r'by (?:Cluster)?RoleBinding "([^"]+)"', expand=False)
        if "authz_reason" in a.columns
        else pd.Series(pd.NA, index=a.index, dtype="string")
    )
    add(used.notna(), actor, node_ids.bindings(used), "use_binding")
    _entry_edges(
        ev, a, actor, add, out, networks=cluster_networks(ev.context("nodes")) if networks is None else networks
    )
    if binds.any():
        for i, body in parsed_bodies(a, binds, unreadable=ev.unreadable).dropna().items():
            for subject in subject_users(body):
                out.append(
                    pd.DataFrame(
                        {
                            "source": [binding[i]],
                            "target": [node_ids.identity(subject)],
                            "type": ["grants"],
                            "time": [a.at[i, "time"]],
                            "bytes": [0],
                            "event_id": [a.at[i, "event_id"]],
                        }
                    )
                )
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def _entry_edges(
    ev: Evidence, a: pd.DataFrame, actor: pd.Series, add: Any, out: list[pd.DataFrame], *, networks: list[Any]
) -> None:
    """The edges of a breach that exploited no pod: credentials used from outside, identities,
    token Secrets, certificates and admission webhooks created, static pods (see the module)."""
    # a person's (or a node's, or anonymous) credential used from outside: the address holds it;
    # the managed platforms' own agents call from the provider's addresses
    user = a["user"].fillna("").astype(str)
    outside = external_mask(a["source_ip"], networks)
    add(
        outside & a["sa_name"].isna() & a["user"].notna() & ~user.str.match(PLATFORM_USERS),
        node_ids.ips(a["source_ip"]),
        node_ids.users(user),
        "credential_use",
    )
    creates = (a["verb"] == "create") & a["subresource"].isna() & a["object_name"].notna()
    writes = a["verb"].isin(["create", "update", "patch"]) & a["subresource"].isna() & a["object_name"].notna()
    add(
        writes & a["resource"].isin(["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]),
        actor,
        node_ids.webhooks(a["object_name"]),
        "create_webhook",
    )
    obj_sa = node_ids.service_accounts(a["object_namespace"], a["object_name"])
    add(creates & (a["resource"] == "serviceaccounts"), actor, obj_sa, "create_sa")
    secret = node_ids.secrets(a["object_namespace"], a["object_name"])
    made = creates & (a["resource"] == "secrets")
    if made.any():
        for i, body in parsed_bodies(a, made, unreadable=ev.unreadable).dropna().items():
            md = body.get("metadata") if isinstance(body, dict) and isinstance(body.get("metadata"), dict) else {}
            owner = (
                (md.get("annotations") or {}).get("kubernetes.io/service-account.name")
                if isinstance(md.get("annotations"), dict)
                else None
            )
            if body.get("type") == SA_TOKEN_TYPE and isinstance(owner, str):
                one = pd.Series(False, index=a.index)
                one.at[i] = True
                add(one, actor, secret, "create_token_secret")
                add(
                    one,
                    secret,
                    pd.Series(node_ids.service_account(a.at[i, "object_namespace"], owner), index=a.index),
                    "token_from_secret",
                )
    csr = a["resource"] == "certificatesigningrequests"
    name = node_ids.csrs(a["object_name"])
    add(creates & csr, actor, name, "create_csr")
    approval = csr & (a["subresource"] == "approval") & a["verb"].isin(["update", "patch"]) & a["object_name"].notna()
    add(approval, actor, name, "approve_csr")
    if approval.any():
        # the identity the certificate will carry: the subject CN of the request, from the
        # approval's body (kubectl certificate approve sends the whole object) or the creation's
        cns: dict[str, str] = {}
        for i, body in parsed_bodies(a, csr & a["object_name"].notna(), unreadable=ev.unreadable).dropna().items():
            cn = csr_common_name(((body.get("spec") or {}).get("request")) if isinstance(body, dict) else None)
            if cn:
                cns[str(a.at[i, "object_name"])] = cn
        who = a["object_name"].astype(str).map(cns)
        add(approval & who.notna(), name, node_ids.users(who), "csr_identity")
    # a static pod's mirror, registered by its node's kubelet: the manifest on the node runs it
    pods = (a["resource"] == "pods") & creates & user.str.startswith(node_ids.NODE_USER)
    if pods.any():
        bodies = parsed_bodies(a, pods, unreadable=ev.unreadable)
        mirror = bodies.map(
            lambda o: (
                isinstance(o, dict)
                and isinstance((o.get("metadata") or {}).get("annotations"), dict)
                and "kubernetes.io/config.mirror" in o["metadata"]["annotations"]
            )
        ).astype(bool)
        add(
            pods & mirror,
            node_ids.nodes(user.str.removeprefix(node_ids.NODE_USER)),
            node_ids.pods(a["object_namespace"], a["object_name"]),
            "static_pod",
        )


def csr_common_name(request: Any) -> str | None:
    """The subject common name of a CertificateSigningRequest's ``spec.request`` (base64 of a
    PEM PKCS#10 request): the user name its certificate authenticates as
    (kubernetes.io/docs/reference/access-authn-authz/authentication/#x509-client-certificates).
    Read by finding the CN attribute (OID 2.5.4.3) in the DER bytes; None if it is not there."""
    import base64
    import binascii

    if not isinstance(request, str) or len(request) > 65536:
        return None
    try:
        pem = base64.b64decode(request, validate=False).decode("ascii", "replace")
        der = base64.b64decode("".join(x for x in pem.splitlines() if x and not x.startswith("-----")), validate=False)
    except (binascii.Error, ValueError):
        return None
    at = der.find(b"\x06\x03\x55\x04\x03")
    if at < 0 or at + 7 > len(der):
        return None
    tag, size, start = der[at + 5], der[at + 6], at + 7
    if tag not in (0x0C, 0x13, 0x14, 0x16) or size & 0x80:  # UTF8/Printable/Teletex/IA5 string, short length
        return None
    return der[start : start + size].decode("utf-8", "replace") or None


def _token_secret_edges(links: pd.DataFrame) -> pd.DataFrame:
    """``read_token_secret`` and ``token_from_secret`` from ``token_secret_links`` over every chunk."""
    if links.empty:
        return pd.DataFrame()
    links = first_token_links(links)
    secret = node_ids.secrets(links["secret_namespace"].fillna("*"), links["secret"].fillna("*"))
    sa = node_ids.service_accounts(links["sa_namespace"], links["sa_name"])
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "source": links["reader_actor"],
                    "target": secret,
                    "type": "read_token_secret",
                    "time": links["read_time"],
                    "bytes": 0,
                    "event_id": links["read_event"],
                }
            ),
            pd.DataFrame(
                {
                    "source": secret,
                    "target": sa,
                    "type": "token_from_secret",
                    "time": links["use_time"],
                    "bytes": 0,
                    "event_id": links["use_event"],
                }
            ),
        ],
        ignore_index=True,
    )


def _runtime_edges(ev: Evidence) -> pd.DataFrame:
    out = []
    r = ev.runtime
    if "file_path" in r.columns:
        # a static-pod manifest written from a container (through a hostPath): the node runs what it says
        # (a file event, or an alert naming the file or the command that wrote it)
        cmd = r["cmdline"].fillna("") if "cmdline" in r.columns else pd.Series("", index=r.index)
        wrote = r[
            (r["event_type"] != "exec")
            & (r["file_path"].fillna("").str.contains(STATIC_MANIFEST) | cmd.str.contains(STATIC_MANIFEST_WRITE))
            & r["pod"].notna()
            & r["namespace"].notna()
            & r["node"].notna()
        ]
        if len(wrote):
            out.append(
                pd.DataFrame(
                    {
                        "source": node_ids.pods(wrote["namespace"], wrote["pod"]),
                        "target": node_ids.nodes(wrote["node"]),
                        "type": "host_escape",
                        "time": wrote["time"],
                        "bytes": 0,
                        "event_id": wrote["event_id"],
                    }
                )
            )
    # an escape, a static-pod manifest, the runtime socket or the node's crontab, from an exec or an
    # alert naming the command (Falco's proc.cmdline)
    taken = host_takeovers(ev)
    if len(taken):
        out.append(
            pd.DataFrame(
                {
                    "source": node_ids.pods(taken["namespace"], taken["pod"]),
                    "target": node_ids.nodes(taken["node"]),
                    "type": "host_escape",
                    "time": taken["time"],
                    "bytes": 0,
                    "event_id": taken["event_id"],
                }
            )
        )
    if "file_path" in r.columns:
        # the token file opened (a file event, or an alert such as Falco's "Read sensitive file
        # untrusted" naming it): the pod's account is the attacker's (MS-TA9016, T1528)
        opened = r[
            (r["event_type"] != "exec")
            & r["file_path"].fillna("").str.contains(SA_TOKEN_PATHS)
            & r["pod"].notna()
            & r["namespace"].notna()
        ]
        if len(opened):
            sa = service_accounts(ev, opened["namespace"], opened["pod"])
            m = sa.notna()
            out.append(
                pd.DataFrame(
                    {
                        "source": node_ids.pods(opened.loc[m, "namespace"], opened.loc[m, "pod"]),
                        "target": node_ids.service_accounts(opened.loc[m, "namespace"], sa[m]),
                        "type": "token_steal",
                        "time": opened.loc[m, "time"],
                        "bytes": 0,
                        "event_id": opened.loc[m, "event_id"],
                    }
                )
            )
    x = container_execs(ev)
    x = x[x["pod"].notna() & x["namespace"].notna()]
    if x.empty:
        return pd.concat(out, ignore_index=True) if out else pd.DataFrame()
    pod = node_ids.pods(x["namespace"], x["pod"])
    steal = x["command"].str.contains(SA_TOKEN_PATHS)
    if steal.any():
        sa = service_accounts(ev, x["namespace"], x["pod"])
        m = steal & sa.notna()
        out.append(
            pd.DataFrame(
                {
                    "source": pod[m],
                    "target": node_ids.service_accounts(x.loc[m, "namespace"], sa[m]),
                    "type": "token_steal",
                    "time": x.loc[m, "time"],
                    "bytes": 0,
                    "event_id": x.loc[m, "event_id"],
                }
            )
        )
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()
