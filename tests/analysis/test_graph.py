"""The observed lateral-movement graph on the sample breach (issue 7, first part): the path
from the attacker's address follows the ground truth, in order, every hop backed by evidence."""

from __future__ import annotations

import pandas as pd
import pytest

import k8sforensics as kf

KIND = {"ip": "ip", "pod": "pod", "service_account": "sa", "node": "node"}


@pytest.fixture(scope="module")
def graph(sample_case: kf.Case):
    return kf.lateral_movement(sample_case)


def test_observed_path_matches_the_ground_truth(graph, sample_truth: dict) -> None:
    truth = [f"{KIND[h['kind']]}:{h['id']}" for h in sample_truth["lateral_path"]]
    hops = kf.paths(graph, truth[0], truth[-1])
    assert hops["node"].tolist() == truth
    assert hops["reached"].iloc[1:].is_monotonic_increasing
    assert hops["via"].tolist()[1:] == ["flow", "token_use", "exec", "token_steal", "create_pod", "host_escape"]
    assert all(len(ids) for ids in hops["event_ids"].iloc[1:])


def test_ip_reuse_does_not_put_the_innocent_pod_on_the_path(graph, sample_truth: dict) -> None:
    innocent = next(a for a in sample_truth["ip_attribution"] if "innocent" in a["note"])
    reached = kf.paths(graph, "ip:198.51.100.66")
    assert f"pod:{innocent['namespace']}/{innocent['pod']}" not in set(reached["node"])
    # what else the attacker reached: persistence
    assert {"binding:system:monitoring-agents", "sa:kube-system/default", "workload:kube-system/cronjobs/log-rotate"} <= set(reached["node"])


def test_edges_are_aggregated_per_pair_and_type(graph) -> None:
    edges = [(u, v, d) for u, v, d in graph.edges(data=True)]
    keys = [(u, v, d["type"]) for u, v, d in edges]
    assert len(keys) == len(set(keys))
    beacons = graph.get_edge_data("pod:kube-system/kube-proxy-x7k2p", "ip:203.0.113.77")["flow"]
    assert beacons["count"] == 10 and beacons["first_seen"] == pd.Timestamp("2026-03-10T10:35:00Z") and len(beacons["event_ids"]) == 10
    assert graph.nodes["sa:shop/web"]["kind"] == "sa"


def test_unknown_source_is_a_clear_error(graph) -> None:
    with pytest.raises(KeyError, match="not in the graph"):
        kf.paths(graph, "ip:192.0.2.1")


def test_time_window(sample_case: kf.Case) -> None:
    early = kf.lateral_movement(sample_case, end="2026-03-10T10:20:00Z")
    assert "node:node-2" not in kf.paths(early, "ip:198.51.100.66")["node"].tolist()
    assert "sa:shop/web" in kf.paths(early, "ip:198.51.100.66")["node"].tolist()
