"""Hubble: extra keeps what no column holds (identities, reserved and Cilium labels, TCP flags,
DNS answers), the same text on the fast and the per-record path."""

from __future__ import annotations

import json
from pathlib import Path

from .test_fast_path import read

FLOW = {
    "time": "2024-05-11T00:00:00Z",
    "verdict": "FORWARDED",
    "IP": {"source": "10.0.0.1", "destination": "10.0.0.2", "ipVersion": "IPv4"},
    "l4": {"UDP": {"source_port": 53, "destination_port": 40000}},
    "source": {
        "identity": 1234,
        "namespace": "kube-system",
        "pod_name": "coredns-1",
        "labels": ["k8s:k8s-app=kube-dns", "k8s:io.cilium.k8s.policy.serviceaccount=coredns"],
    },
    "destination": {"identity": 2, "labels": ["reserved:world"]},
    "l7": {"type": "RESPONSE", "dns": {"query": "c2.example.", "ips": ["203.0.113.9"], "rcode": 0}},
    "traffic_direction": "EGRESS",
    "trace_observation_point": "TO_ENDPOINT",
}


def test_extra_keeps_what_no_column_holds(tmp_path: Path) -> None:
    p = tmp_path / "flows.jsonl"
    p.write_text("".join(json.dumps({"flow": FLOW, "node_name": "k8s1"}) + "\n" for _ in range(3)))
    fast, t_fast = read(p, True)
    slow, t_slow = read(p, False)
    assert fast.used_fast_path and fast.redone == 0
    assert t_fast.to_pylist() == t_slow.to_pylist()
    extra = json.loads(t_fast.column("extra")[0].as_py())
    assert extra["source"]["identity"] == 1234 and extra["destination"]["labels"] == ["reserved:world"]
    assert "k8s:io.cilium.k8s.policy.serviceaccount=coredns" in extra["source"]["labels"]
    assert extra["l7"]["dns"]["ips"] == ["203.0.113.9"]
    assert t_fast.column("src_labels")[0].as_py() == [("k8s-app", "kube-dns")]  # the Cilium label is not a pod label
