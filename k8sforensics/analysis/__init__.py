"""Analyses over a case and its findings: the kill-chain timeline, the lateral-movement graph
(observed and possible edges), patient zero, paths and the attack's scope.

The modules import one way: ``node_ids`` → ``possible`` → ``graph`` → ``entry`` (patient zero)
→ ``kill_chain`` and ``reach`` → ``scope``."""

from __future__ import annotations

from .entry import findings_patient_zero, graph_patient_zero, made_by_hand, patient_zero
from .graph import graph_evidence, lateral_movement, observed_edges
from .kill_chain import attack_window, entity_activity, entity_events, kill_chain, narrative, phases
from .possible import possible_edges
from .reach import blast_radius, edges_to_cut, paths
from .scope import AttackScope, attack_scope, attack_sources

__all__ = [
    "AttackScope",
    "attack_scope",
    "attack_sources",
    "attack_window",
    "blast_radius",
    "edges_to_cut",
    "entity_activity",
    "entity_events",
    "findings_patient_zero",
    "graph_evidence",
    "graph_patient_zero",
    "kill_chain",
    "lateral_movement",
    "made_by_hand",
    "narrative",
    "observed_edges",
    "paths",
    "patient_zero",
    "phases",
    "possible_edges",
]
