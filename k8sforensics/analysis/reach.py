"""Questions over the lateral-movement graph, each answered as a DataFrame: how control spread
from a source (``paths``), where it can still go (``blast_radius``) and which configuration edges
to remove to stop it (``edges_to_cut``). Where the attack starts is ``scope.attack_scope``'s."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import node_ids
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
    "exec": "revoke the identity's exec rights",
    "attach": "revoke the identity's attach rights",
    "debug": "revoke the identity's pods/ephemeralcontainers rights and redeploy the pod",
    "token_request": "revoke serviceaccounts/token and rotate the account's credentials",
    "impersonate": "revoke the impersonate right",
    "patch": "revoke patch/update and redeploy from a trusted image",
    "port_forward": "revoke the identity's port-forward rights",
    "node_proxy": "revoke nodes/proxy",
    "host_escape": "redeploy the pod without host access and rebuild the node",
    "hosts": "rebuild the node",
    "runs": "delete the workload",
    "member_of": "remove the group's binding",
    "read_secret": "rotate the secret and revoke read access",
    "flow": "block the address (ingress, firewall, NetworkPolicy) and fix the service it exploited",
}
# the cost of cutting a pair with no configuration edge: far above any count of configuration
# edges; what the attacker did (rotate, delete) before structure (a node's hold on its pods)
_OBSERVED_COST, _STRUCTURE_COST = 10**6, 10**9


PATHS_COLUMNS = ["node", "kind", "reached", "parent", "via", "event_ids", "how"]
# how the attacker got to a node (``paths``' ``how`` column):
SOURCE = "source"  # where the spread starts: the attacker's address, or a foothold given as the source
REACHED = "reached"  # the attacker ran code in it, exec'd into it, created or changed it, or acted with its identity
# its credentials were within the attacker's reach but nothing shows them acting as it: a pod
# on a node the attacker escaped to (root on a node reads every token the kubelet keeps for its
# pods, /var/lib/kubelet/pods/*/volumes; Microsoft Threat Matrix MS-TA9016, ATT&CK T1528), the
# service account whose token a compromised pod mounts. What it needs is a new credential and a
# clean node, not isolation.
EXPOSED = "exposed"
# observed edges whose target then runs what the attacker chose (the spec is theirs): the
# possible edges out of such a pod (host access, the token it mounts) are the attacker's too
_ATTACKER_SPEC = frozenset({"create_pod", "create_workload", "patch", "runs"})
_TOKEN_EDGES = frozenset({"token_use", "token_steal"})
_NEVER = pd.Timestamp.min.tz_localize("UTC")


def _creates(kind: str) -> bool:
    """A creation edge, whatever object it makes (create_pod, create_workload, and any
    ``create_*`` type the graph adds: DaemonSets, webhooks, service accounts, secrets)."""
    return kind.startswith("create")


def _control(u: str, v: str, d: dict[str, Any]) -> bool:
    """An observed edge along which control passes, told by its type or, for a type this
    module does not know, by its ends: an address acting as an identity (a credential used
    from there), a secret holding an identity's token."""
    kind = str(d["type"])
    return (
        kind in CONTROL_EDGES
        or _creates(kind)
        or kind == "read_secret"
        or (node_ids.is_a(u, "ip", "secret") and node_ids.is_a(v, "sa", "user") and not kind.startswith("flow"))
    )


def paths(
    graph: nx.MultiDiGraph,
    source: str | Iterable[str],
    target: str | None = None,
    *,
    held_since: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """How control spread from ``source`` (e.g. ``ip:198.51.100.66``; or several entry points),
    in time order: a node is reached at the first moment an edge from an already reached node
    gets to it — observed control edges (exec, token use and theft, creations, patches,
    bindings, secret reads, host escape; flows only from an outside source into pods, the way
    in). ``held_since`` gives the time from which a source is the attacker's (default: always).

    ``how`` says what that means: ``reached`` — the attacker acted there (ran code, exec'd,
    created or changed it, used its identity); ``exposed`` — only its credentials were within
    reach: pods on a node the attacker got root on and their service accounts, the service
    account whose token a reached pod mounts. From what the attacker made, the spec's own
    grants count as used (a privileged pod they created holds its node; a workload they made
    runs its pods). Returns the hops of the chain that reaches ``target`` (or every node, with
    its parent, when ``target`` is None); columns ``PATHS_COLUMNS``."""
    sources = _nodes(graph, source)
    since = dict.fromkeys(sources, _NEVER) | {s: _when(t) for s, t in (held_since or {}).items() if s in sources}
    held: dict[str, tuple[pd.Timestamp, str | None, dict[str, Any] | None, str]] = {
        s: (since[s], None, None, SOURCE) for s in sources
    }

    def offer(v: str, t: pd.Timestamp, u: str, d: dict[str, Any], how: str) -> bool:
        cur = held.get(v)
        if cur is not None and (
            cur[3] == SOURCE or (cur[3] == REACHED and how == EXPOSED) or (cur[3] == how and cur[0] <= t)
        ):
            return False
        held[v] = (t, u, d, how)
        return True

    observed = sorted(
        ((d["first_seen"], u, v, d) for u, v, d in graph.edges(data=True) if d.get("observed")), key=lambda e: e[0]
    )
    structure = [(u, v, d) for u, v, d in graph.edges(data=True) if not d.get("observed") or node_ids.is_a(u, "secret")]
    has_observed = {(u, v, d["type"]) for _, u, v, d in observed}
    mounted: dict[str, set[str]] = {}
    for u, v, d in graph.edges(data=True):
        if d["type"] == "token_steal" and not d.get("observed"):
            mounted.setdefault(u, set()).add(v)
    life = _lifetimes(graph)
    changed = True
    while changed:  # repeat until no node is reached earlier or more surely
        changed = False
        for t, u, v, d in observed:
            h = held.get(u)
            if h is None or v in sources:
                continue
            if h[3] in (SOURCE, REACHED):
                way_in = d["type"] == "flow" and h[3] == SOURCE and node_ids.is_a(u, "ip") and node_ids.is_a(v, "pod")
                if (way_in or _control(u, v, d)) and h[0] <= t:
                    # the kubelet fetches the tokens of the pods it runs: on a node the attacker holds they are exposed
                    how = EXPOSED if d["type"] == "token_request" and node_ids.is_kubelet(u) else REACHED
                    changed |= offer(v, t, u, d, how)
            elif h[3] == EXPOSED and node_ids.is_a(u, "pod") and node_ids.is_a(v, "sa") and d["type"] in _TOKEN_EDGES:
                # a token used from a pod of a node the attacker holds (a host-network pod shares the
                # node's address) that is not the token that pod mounts: the attacker used it
                used = d["type"] == "token_use" and t >= h[0] and bool(mounted.get(u)) and v not in mounted[u]
                changed |= offer(v, max(t, h[0]), u, d, REACHED if used else EXPOSED)
        for u, v, d in structure:
            h = held.get(u)
            if h is None or v in sources or (u, v, d["type"]) in has_observed:
                continue
            if pd.notna(d.get("last_seen")) and _when(d["last_seen"]) < h[0]:
                continue  # it was over before the attacker got there
            t = max(h[0], _when(d.get("first_seen")))
            via = h[2]["type"] if h[2] is not None else None
            kind = d["type"]
            if h[3] == EXPOSED:
                if kind == "token_steal" and node_ids.is_a(u, "pod"):
                    changed |= offer(v, t, u, d, EXPOSED)
            elif node_ids.is_a(u, "secret") and node_ids.is_a(v, "sa", "user"):
                changed |= offer(v, t, u, d, REACHED)  # whoever read the secret holds the token in it
            elif kind == "runs":
                changed |= offer(v, t, u, d, REACHED)  # the workload is the attacker's: so are its pods
            elif kind in ("host_escape", "token_steal") and node_ids.is_a(u, "pod"):
                changed |= offer(v, t, u, d, REACHED if via in _ATTACKER_SPEC or (via and _creates(via)) else EXPOSED)
            elif kind == "hosts" and node_ids.is_a(u, "node"):
                first, last = life.get(v, (_NEVER, None))
                if last is None or last >= h[0]:
                    changed |= offer(v, max(h[0], first), u, d, EXPOSED)
        for n in [n for n, h in held.items() if node_ids.is_a(n, "node") and h[3] in (SOURCE, REACHED)]:
            kubelet = node_ids.kubelet(n)
            if kubelet in graph and kubelet not in sources:
                changed |= offer(kubelet, held[n][0], n, {"type": "node_credential", "event_ids": []}, REACHED)
    rows = [
        {
            "node": n,
            "kind": graph.nodes[n].get("kind"),
            "reached": t if p is not None or t != _NEVER else pd.NaT,
            "parent": p,
            "via": d["type"] if d else None,
            "event_ids": list(d.get("event_ids", [])) if d else [],
            "how": how,
        }
        for n, (t, p, d, how) in held.items()
    ]
    table = pd.DataFrame(rows, columns=PATHS_COLUMNS)
    table["reached"] = pd.to_datetime(table["reached"], utc=True)
    if target is None:
        return table.sort_values("reached", na_position="first", kind="stable").reset_index(drop=True)
    if target not in held:
        return table.iloc[0:0]
    chain = []
    node: str | None = target
    while node is not None and node not in chain:
        chain.append(node)
        node = held[node][1]
    order = {n: i for i, n in enumerate(reversed(chain))}
    return (
        table[table["node"].isin(order)]
        .assign(_o=lambda d: d["node"].map(order))
        .sort_values("_o")
        .drop(columns="_o")
        .reset_index(drop=True)
    )


def _when(t: Any) -> pd.Timestamp:
    """A time as a UTC timestamp; a missing one is "always" (the earliest time)."""
    if t is None or (not isinstance(t, str) and pd.isna(t)):
        return _NEVER
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _lifetimes(graph: nx.MultiDiGraph) -> dict[str, tuple[pd.Timestamp, pd.Timestamp | None]]:
    """pod → (start, end or None while it runs), from the inventory's edges that carry a pod's
    lifetime (its token mount, its host access, its workload's runs edge)."""
    out: dict[str, tuple[pd.Timestamp, pd.Timestamp | None]] = {}
    for u, v, d in graph.edges(data=True):
        if d.get("observed") or d["type"] not in ("token_steal", "host_escape", "runs"):
            continue
        pod = u if d["type"] != "runs" else v
        first, last = _when(d.get("first_seen")), (_when(d["last_seen"]) if pd.notna(d.get("last_seen")) else None)
        if pod in out:
            f0, l0 = out[pod]
            first, last = min(first, f0), (None if l0 is None or last is None else max(l0, last))
        out[pod] = (first, last)
    return out


def _nodes(graph: nx.MultiDiGraph, nodes: str | Iterable[str]) -> list[str]:
    out = [nodes] if isinstance(nodes, str) else list(nodes)
    missing = [n for n in out if n not in graph]
    if missing:
        raise KeyError(f"not in the graph: {', '.join(map(repr, missing))}")
    return out


def _reach_edges(
    graph: nx.MultiDiGraph, sources: list[str], *, observed_only: bool
) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """Control edges, plus — from an outside address among ``sources`` — its observed flows into
    pods: the way in, as in ``paths``."""
    entry = {s for s in sources if node_ids.is_a(s, "ip")}
    for u, v, d in graph.edges(data=True):
        control = d["type"] in REACH_EDGES and (d.get("observed") or not observed_only)
        way_in = u in entry and d["type"] == "flow" and d.get("observed") and node_ids.is_a(v, "pod")
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
    rows = [
        {
            "node": n,
            "kind": graph.nodes[n].get("kind"),
            "hops": hops,
            "parent": parent,
            "via": d["type"],
            "observed": n in seen_observed,
            "reason": d.get("reason") or f"observed {d['type']} ×{d.get('count', 0)}",
            "event_ids": list(d.get("event_ids", [])),
        }
        for n, (hops, parent, d) in found.items()
        if parent is not None
    ]
    table = pd.DataFrame(rows, columns=BLAST_COLUMNS)
    return table.sort_values(
        ["hops", "observed", "kind", "node"], ascending=[True, False, True, True], kind="stable"
    ).reset_index(drop=True)


def _bfs(
    sources: list[str], out_edges: dict[str, list[tuple[str, dict[str, Any]]]]
) -> dict[str, tuple[int, str | None, dict[str, Any]]]:
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
                rows.append(
                    {
                        "source": u,
                        "target": v,
                        "type": d["type"],
                        "observed": bool(d.get("observed")),
                        "cuttable": bool(cuttable),
                        "reason": d.get("reason")
                        or f"observed {d['type']} ×{d.get('count', 0)} (evidence {', '.join(d.get('event_ids', [])[:3])})",
                        "basis": d.get("basis"),
                        "fix": d.get("fix") if cuttable else OBSERVED_FIX.get(d["type"], "remove what grants it"),
                    }
                )
    return (
        pd.DataFrame(rows, columns=CUT_COLUMNS)
        .sort_values(["cuttable", "source", "target"], ascending=[False, True, True], kind="stable")
        .reset_index(drop=True)
    )
