"""Analyses over a case and its findings: the kill-chain timeline, the lateral-movement graph
(observed and possible edges), paths, patient zero and the attack's scope."""

from __future__ import annotations

from .graph import graph_evidence, lateral_movement, observed_edges
from .kill_chain import entity_events, kill_chain, narrative, patient_zero, phases
from .possible import possible_edges
from .reach import attack_source, blast_radius, edges_to_cut, paths

__all__ = [
    "attack_source",
    "blast_radius",
    "edges_to_cut",
    "entity_events",
    "graph_evidence",
    "kill_chain",
    "lateral_movement",
    "narrative",
    "observed_edges",
    "paths",
    "patient_zero",
    "phases",
    "possible_edges",
]
