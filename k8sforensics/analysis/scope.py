"""What the attacker reached, computed in one place (``attack_scope``): the ways in, then every
node control spread to from them (``reach.paths``: held, or only exposed), with the evidence of
each hop, and where control could still go (``reach.blast_radius``). Remediation, the network
views and the notebooks read the same ``AttackScope``."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import node_ids
from ..context.networks import Network
from .entry import FOOTHOLD_PHASES, findings_patient_zero, graph_patient_zero
from .reach import BLAST_COLUMNS, EXPOSED, PATHS_COLUMNS, REACHED, SOURCE, blast_radius, paths

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True)
class AttackScope:
    """The attack's reach on one graph. ``sources`` are the ways in (node ids, in the order they
    were found); ``held_since`` the time from which a source was the attacker's (an identity
    acting from outside; the others always were); ``paths`` is ``reach.paths`` from the
    sources (columns ``PATHS_COLUMNS``: when each node was reached, from which parent, over
    which edge, its evidence ids, and ``how`` — source, reached or exposed)."""

    sources: list[str]
    held_since: dict[str, Any]
    paths: pd.DataFrame
    graph: nx.MultiDiGraph = field(repr=False, compare=False)

    @property
    def held(self) -> dict[str, Any]:
        """What the attacker held (a source, or reached — not merely exposed) → since when
        (NaT: from the start)."""
        r = self.paths
        keep = r["how"].isin([SOURCE, REACHED])
        return dict(zip(r.loc[keep, "node"], r.loc[keep, "reached"]))

    def nodes(self, *how: str, kind: str | None = None) -> list[str]:
        """The nodes of the scope, in the order control got there: those whose ``how`` is one
        of ``how`` (every one by default), of ``kind`` (``pod``, ``sa``, …) when given."""
        r = self.paths
        keep = r["how"].isin(how) if how else pd.Series(True, index=r.index)
        if kind is not None:
            keep &= r["kind"] == kind
        return list(r.loc[keep, "node"])

    def by_kind(self) -> pd.DataFrame:
        """How many nodes of each kind the attack held and exposed (columns kind, source,
        reached, exposed)."""
        counts = self.paths.groupby(["kind", "how"]).size().unstack(fill_value=0)
        return counts.reindex(columns=[SOURCE, REACHED, EXPOSED], fill_value=0).reset_index()

    @functools.cached_property
    def possible(self) -> pd.DataFrame:
        """Where control could still go from every node in the scope, over observed and
        possible edges (``reach.blast_radius``; columns ``BLAST_COLUMNS``)."""
        start = list(self.paths["node"])
        return blast_radius(self.graph, start) if start else pd.DataFrame(columns=BLAST_COLUMNS)


def attack_scope(
    graph: nx.MultiDiGraph,
    *,
    sources: Iterable[str] | None = None,
    networks: Iterable[Network] = (),
    findings: pd.DataFrame | None = None,
    made: Collection[str] = frozenset(),
) -> AttackScope:
    """What the attacker reached on ``graph``: ``paths`` from the ways in. ``sources`` gives the
    ways in (node ids of the graph); by default they are found: the graph's ways in
    (``attack_sources``; outside ``networks`` only), then — with ``findings`` — the first pod the
    findings rank as the way in when nothing from outside leads to it (a poisoned image or an
    implant calls out; nobody reaches it over the network; ``made``: ``ns/name`` of the pods
    made by hand, ranked after) and every identity the findings show acting from outside in a
    foothold (a leaked kubeconfig or token; held from its first such finding on)."""
    nets = tuple(networks)
    since: dict[str, Any] = {}
    if sources is not None:
        ways_in = list(sources)
    else:
        ways_in = attack_sources(graph, networks=nets, findings=findings)
        if findings is not None and not findings.empty:
            _foothold_pod(graph, ways_in, findings, networks=nets, made=made)
            since = _outside_identities(graph, ways_in, findings, networks=nets)
    spread = paths(graph, ways_in, held_since=since) if ways_in else pd.DataFrame(columns=PATHS_COLUMNS)
    return AttackScope(sources=ways_in, held_since=since, paths=spread, graph=graph)


def _foothold_pod(
    graph: nx.MultiDiGraph,
    sources: list[str],
    findings: pd.DataFrame,
    *,
    networks: tuple[Network, ...],
    made: Collection[str],
) -> None:
    """Add to ``sources`` the pod the findings rank first, when nothing from outside leads to it."""
    ranked = findings_patient_zero(findings, networks=networks, made=made)
    first = ranked[ranked["entity_type"] == "pod"].head(1)
    if not len(first) or int(first["rank"].iloc[0]) != 1:
        return
    node = node_ids.entity("pod", first["entity"].iloc[0])
    spread = paths(graph, sources) if sources else pd.DataFrame(columns=PATHS_COLUMNS)
    later = set(
        spread.loc[spread["how"] != EXPOSED, "node"]
    )  # a pod merely on a node they took can still be the way in
    if node in graph and node not in later:
        sources.append(node)


def _outside_identities(
    graph: nx.MultiDiGraph, sources: list[str], findings: pd.DataFrame, *, networks: tuple[Network, ...]
) -> dict[str, Any]:
    """Add to ``sources`` the identities the findings show acting from outside in a foothold
    and not already held; returns each one's first such time."""
    ranked = findings_patient_zero(findings, networks=networks)
    already = set(paths(graph, sources)["node"]) if sources else set()  # held before it acted from outside
    since: dict[str, Any] = {}
    for r in ranked[ranked["entity_type"].isin(["user", "service_account"])].itertuples(index=False):
        node = node_ids.entity(r.entity_type, str(r.entity))
        if (
            node in graph
            and node not in sources
            and node not in already
            and _foothold(findings, user=node_ids.username(node), ip=r.came_from)
        ):
            sources.append(node)
            since[node] = r.first_seen
    return since


def _foothold(findings: pd.DataFrame, *, user: str, ip: object) -> bool:
    """A finding about what ``user`` did from ``ip`` is high or critical or in a foothold
    phase: an identity merely seen from outside (an administrator on the public endpoint) is
    not taken for the attacker."""
    hit = findings[(findings["user"] == user) & (findings["source_ip"] == ip)]
    return bool(len(hit)) and bool(
        (hit["severity"].isin(["high", "critical"]) | hit["kill_chain_phase"].isin(FOOTHOLD_PHASES)).any()
    )


def attack_sources(
    graph: nx.MultiDiGraph, *, networks: Iterable[Network] = (), findings: pd.DataFrame | None = None
) -> list[str]:
    """Every way in the graph shows, as node ids for ``paths``: the outside addresses the
    patient-zero candidates came from, and a candidate itself when no outside address is known
    (a pod behind a load balancer that hides the client's address). With ``findings``, only the
    candidates a finding names (the pod, or the identity acting from that address) — so an
    administrator working from the Internet is not taken for the attacker; without, the first
    candidate."""
    ranked = graph_patient_zero(graph, networks=networks)
    if ranked.empty:
        return []
    if findings is None or findings.empty:
        ranked = ranked.head(1)
    else:
        ranked = ranked[[_confirmed(r, findings) for r in ranked.itertuples(index=False)]]
    out = list(dict.fromkeys(node_ids.ip(ip) for ip in ranked["came_from"].dropna() if node_ids.ip(ip) in graph))
    # a foothold with no outside address known is a way in of its own only when the ways in
    # from outside do not lead to it (else it is a later hop, not an entry)
    later = set(paths(graph, out)["node"]) if out else set()
    for r in ranked[ranked["came_from"].isna()].itertuples(index=False):
        node = node_ids.entity(r.entity_type, r.entity)
        if node in graph and node not in later and node not in out:
            out.append(node)
    return out


def _confirmed(row: Any, findings: pd.DataFrame) -> bool:
    """A finding names this candidate: the pod it is about, or the identity acting from the
    address it came from."""
    f = findings[findings["kind"] == "finding"] if "kind" in findings.columns else findings
    node = node_ids.entity(row.entity_type, str(row.entity))
    if row.entity_type == "pod":
        ns, pod = node_ids.namespaced(node)
        about = (f["entity"] == row.entity) | ((f["namespace"] == ns) & (f["pod"] == pod))
        if not isinstance(row.came_from, str):
            # with no outside address, only a foothold finding makes a pod a way in: any pod that calls
            # the API has "onward" edges, and a scanner or operator draws medium findings
            about &= f["severity"].isin(["high", "critical"]) & f["kill_chain_phase"].isin(FOOTHOLD_PHASES)
        return bool(about.any())
    mine = (f["user"] == node_ids.username(node)) | (
        (f["entity"] == row.entity) & (f["entity_type"] == row.entity_type)
    )
    return (
        bool((mine & (f["source_ip"] == row.came_from)).any()) if isinstance(row.came_from, str) else bool(mine.any())
    )
