"""Questions over the lateral-movement graph, each answered as a DataFrame: how control spread
from a source (``paths``), where it can still go (``blast_radius``), which configuration edges to
remove to stop it (``edges_to_cut``), and which pod the attacker came in through
(``graph_patient_zero``, behind ``kf.patient_zero``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..frames import clock
from .graph import CONTROL_EDGES, REACH_EDGES

if TYPE_CHECKING:
    import networkx as nx

BLAST_COLUMNS = ["node", "kind", "hops", "parent", "via", "observed", "reason", "event_ids"]
CUT_COLUMNS = ["source", "target", "type", "observed", "cuttable", "reason", "basis", "fix"]
# what removes an observed edge that no configuration in the inventory explains
OBSERVED_FIX = {
    "token_use": "rotate the service account's credentials (recreate its pods; delete legacy token secrets)",
    "token_steal": "rotate the service account's credentials and stop mounting the token",
    "create_pod": "delete the pod the attacker created",
    "create_workload": "delete the workload the attacker created",
    "bind_role": "delete the binding the attacker created",
    "grants": "delete the binding the attacker created",
    "exec": "revoke the identity's exec rights", "attach": "revoke the identity's attach rights",
    "debug": "revoke the identity's pods/ephemeralcontainers rights and redeploy the pod",
    "token_request": "revoke serviceaccounts/token and rotate the account's credentials",
    "impersonate": "revoke the impersonate right", "patch": "revoke patch/update and redeploy from a trusted image",
    "port_forward": "revoke the identity's port-forward rights", "node_proxy": "revoke nodes/proxy",
    "host_escape": "redeploy the pod without host access and rebuild the node",
    "hosts": "rebuild the node", "runs": "delete the workload", "member_of": "remove the group's binding",
    "read_secret": "rotate the secret and revoke read access",
    "flow": "block the address (ingress, firewall, NetworkPolicy) and fix the service it exploited",
}
# the cost of cutting a pair with no configuration edge: far above any count of configuration
# edges; what the attacker did (rotate, delete) before structure (a node's hold on its pods)
_OBSERVED_COST, _STRUCTURE_COST = 10**6, 10**9


def paths(graph: nx.MultiDiGraph, source: str, target: str | None = None) -> pd.DataFrame:
    """How control spread from ``source`` (e.g. ``ip:198.51.100.66``), in time order, over observed
    edges: a node is reached at the first moment an edge from an already reached node gets to it
    (flows count only from ``source`` itself into pods, the way in; after that only control edges —
    exec, token use and theft, pod creation, bindings, host escape). Returns the hops of the chain
    that reaches ``target`` (or every reached node, with its parent, when ``target`` is None)."""
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


def _nodes(graph: nx.MultiDiGraph, nodes: str | Iterable[str]) -> list[str]:
    out = [nodes] if isinstance(nodes, str) else list(nodes)
    missing = [n for n in out if n not in graph]
    if missing:
        raise KeyError(f"not in the graph: {', '.join(map(repr, missing))}")
    return out


def _reach_edges(graph: nx.MultiDiGraph, sources: list[str], *, observed_only: bool) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """Control edges, plus — from an outside address among ``sources`` — its observed flows into
    pods: the way in, as in ``paths``."""
    entry = {s for s in sources if s.startswith("ip:")}
    for u, v, d in graph.edges(data=True):
        control = d["type"] in REACH_EDGES and (d.get("observed") or not observed_only)
        way_in = u in entry and d["type"] == "flow" and d.get("observed") and str(v).startswith("pod:")
        if control or way_in:
            yield u, v, d


def blast_radius(graph: nx.MultiDiGraph, node: str | Iterable[str], *, observed_only: bool = False) -> pd.DataFrame:
    """Everything control can spread to from ``node`` (one node or several, e.g. every
    compromised one) along control edges — observed ones only, or possible ones as well —
    with the fewest hops, the edge that gets there (an observed one when there is one) and
    why. ``observed`` says whether the node is reachable over observed edges alone. Flows are
    not control — reaching a pod over the network needs an exploit this graph cannot know —
    except an outside address's own observed flows into pods, the way it came in."""
    sources = _nodes(graph, node)
    out_edges: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for u, v, d in _reach_edges(graph, sources, observed_only=observed_only):
        out_edges.setdefault(u, []).append((v, d))
    for edges in out_edges.values():
        edges.sort(key=lambda e: not e[1].get("observed"))  # the observed edge first
    seen_observed = _bfs(sources, {u: [e for e in es if e[1].get("observed")] for u, es in out_edges.items()})
    found = _bfs(sources, out_edges)
    rows = [{"node": n, "kind": graph.nodes[n].get("kind"), "hops": hops, "parent": parent, "via": d["type"], "observed": n in seen_observed,
             "reason": d.get("reason") or f"observed {d['type']} ×{d.get('count', 0)}", "event_ids": list(d.get("event_ids", []))}
            for n, (hops, parent, d) in found.items() if parent is not None]
    table = pd.DataFrame(rows, columns=BLAST_COLUMNS)
    return table.sort_values(["hops", "observed", "kind", "node"], ascending=[True, False, True, True], kind="stable").reset_index(drop=True)


def _bfs(sources: list[str], out_edges: dict[str, list[tuple[str, dict[str, Any]]]]) -> dict[str, tuple[int, str | None, dict[str, Any]]]:
    found: dict[str, tuple[int, str | None, dict[str, Any]]] = {s: (0, None, {}) for s in sources}
    queue = deque(sources)
    while queue:
        u = queue.popleft()
        for v, d in out_edges.get(u, []):
            if v not in found:
                found[v] = (found[u][0] + 1, u, d)
                queue.append(v)
    return found


def edges_to_cut(graph: nx.MultiDiGraph, from_: str | Iterable[str], to: str | Iterable[str]) -> pd.DataFrame:
    """The fewest configuration edges whose removal disconnects ``from_`` from ``to`` along
    control edges (a minimum cut; a pair of nodes costs the number of possible edges between
    them). An observed edge that no configuration in the inventory explains cannot be cut by a
    configuration change: when the cut must go through one it is listed with ``cuttable=False``
    and what removes it instead (rotate a credential, delete what the attacker created). Empty
    when ``to`` is not reachable at all."""
    import networkx as nx

    sources, targets = _nodes(graph, from_), _nodes(graph, to)
    if set(sources) & set(targets):
        raise ValueError(f"{sorted(set(sources) & set(targets))} is on both sides: nothing can cut a node from itself")
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for u, v, d in _reach_edges(graph, sources, observed_only=False):
        pairs.setdefault((u, v), []).append(d)
    flow = nx.DiGraph()
    for (u, v), ds in pairs.items():
        cuttable = [d for d in ds if not d.get("observed") and d.get("cuttable")]
        cost = len(cuttable) or (_OBSERVED_COST if any(d.get("observed") for d in ds) else _STRUCTURE_COST)
        flow.add_edge(u, v, capacity=cost)
    s, t = ("\0from", None), ("\0to", None)  # tuples: cannot clash with the graph's string ids
    for n in sources:
        flow.add_edge(s, n)  # no capacity: infinite
    for n in targets:
        flow.add_edge(n, t)
    if not nx.has_path(flow, s, t):
        return pd.DataFrame(columns=CUT_COLUMNS)
    _, (side, _) = nx.minimum_cut(flow, s, t)
    rows = []
    for (u, v), ds in pairs.items():
        if u in side and v not in side:
            cuttable = [d for d in ds if not d.get("observed") and d.get("cuttable")]
            for d in cuttable or [d for d in ds if d.get("observed")] or ds:
                rows.append({"source": u, "target": v, "type": d["type"], "observed": bool(d.get("observed")), "cuttable": bool(cuttable),
                             "reason": d.get("reason") or f"observed {d['type']} ×{d.get('count', 0)} (evidence {', '.join(d.get('event_ids', [])[:3])})",
                             "basis": d.get("basis"), "fix": d.get("fix") if cuttable else OBSERVED_FIX.get(d["type"], "remove what grants it")})
    return pd.DataFrame(rows, columns=CUT_COLUMNS).sort_values(["cuttable", "source", "target"], ascending=[False, True, True],
                                                               kind="stable").reset_index(drop=True)


def attack_source(graph: nx.MultiDiGraph) -> str | None:
    """The outside address patient zero came from, as a node id (``ip:...``), if any: where
    ``paths`` starts when no source is given."""
    came = graph_patient_zero(graph)["came_from"].dropna()
    return f"ip:{came.iloc[0]}" if len(came) else None


def graph_patient_zero(graph: nx.MultiDiGraph) -> pd.DataFrame:
    """Pods ranked as the way in: a pod that outside addresses reached over the network and
    from which control then moved on (a token used, a pod exec'd, the host escaped), earliest
    onward move first; ``came_from`` is the outside address whose flows reached the pod last
    before that move (an address that also touched other nodes — a scanner — preferred)."""
    from .kill_chain import PATIENT_ZERO_COLUMNS

    rows = []
    for pod in (n for n, k in graph.nodes(data="kind") if k == "pod"):
        onward = [(d["first_seen"], v, d) for _, v, d in graph.out_edges(pod, data=True) if d.get("observed") and d["type"] in CONTROL_EDGES]
        if not onward:
            continue
        t, target, d = min(onward, key=lambda e: e[0])
        inbound = [(u, e) for u, _, e in graph.in_edges(pod, data=True)
                   if e.get("observed") and e["type"] == "flow" and str(u).startswith("ip:") and e["first_seen"] <= t]
        came_from, via = None, ""
        if inbound:
            u, e = max(inbound, key=lambda x: (graph.out_degree(x[0]) > 1, x[1]["last_seen"] if x[1]["last_seen"] <= t else x[1]["first_seen"]))
            came_from = u.removeprefix("ip:")
            via = f"reached from {came_from} over the network at {clock(e['first_seen'])}, then "
        ns, _, name = pod.removeprefix("pod:").partition("/")
        rows.append({"entity": f"{ns}/{name}", "namespace": ns, "pod": name, "first_seen": t, "came_from": came_from, "finding_id": None,
                     "_in": bool(inbound), "reason": f"{via}{d['type']} → {target} at {clock(t)} (evidence {', '.join(d['event_ids'][:3])})"})
    if not rows:
        return pd.DataFrame(columns=PATIENT_ZERO_COLUMNS)
    out = pd.DataFrame(rows).sort_values(["_in", "first_seen"], ascending=[False, True], kind="stable").reset_index(drop=True)
    out["rank"] = range(1, len(out) + 1)
    return out[PATIENT_ZERO_COLUMNS]

