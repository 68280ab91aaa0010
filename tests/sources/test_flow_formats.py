"""Flows family: each format's quirks on tiny fixtures, and every real sample in place."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.sources import read_family

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "flows"


def test_hubble_flow_fields() -> None:
    table, (result,), _ = read_family(FIX / "hubble_flows.jsonl", "flows")
    assert result.skipped == {"Hubble node_status": 1} and result.rows == 3
    df = kf.read_flows(FIX / "hubble_flows.jsonl")
    egress = df.iloc[0]
    assert egress.time == pd.Timestamp("2024-05-01T10:00:05.000000001Z")
    assert (egress.cluster, egress.node) == ("prod", "node-1")  # "cluster/node" split
    assert (egress.src_ip, egress.src_port, egress.dst_ip, egress.dst_port, egress.protocol) == ("10.0.0.5", 43210, "169.254.169.254", 80, "tcp")
    assert (egress.verdict, egress.verdict_raw, egress.direction, egress.is_reply) == ("allowed", "FORWARDED", "egress", False)
    assert egress.src_labels == {"app": "cart"}  # namespace and cilium labels are not pod labels
    assert (egress.src_workload_kind, egress.src_workload) == ("Deployment", "cart")
    assert (egress.namespace, egress.pod) == ("shop", "cart-5c7b9")  # core columns: the source side
    assert json.loads(egress.extra)["destination_reserved"] == ["reserved:world"]
    dropped = df.iloc[1]
    assert (dropped.verdict, dropped.drop_reason, dropped.dst_service, dropped.dst_pod) == ("denied", "POLICY_DENIED", "db/postgres", "postgres-0")
    assert pd.isna(dropped.is_reply)  # absent means unknown, not false
    dns = df.iloc[2]
    assert (dns.l7_type, dns.dns_query, dns.is_reply, dns.protocol) == ("dns", "evil.example.com.", True, "udp")
    assert list(dns.dst_names) == ["kube-dns.kube-system.svc.cluster.local"]  # a bare flow, no wrapper


REAL = {
    "hubble-flows-json/cilium-docs__hubble_exporter_events.log": ("hubble", 2, 2, 0, 0),
    "hubble-flows-json/hubble-otel__basic-sample-10-flows.json": ("hubble", 10, 10, 0, 0),
    "hubble-flows-json/hubble-otel__basic-sample-330-dns-flows.json": ("hubble", 330, 330, 0, 0),
    "hubble-flows-json/hubble-otel__basic-sample-348-http-flows.json": ("hubble", 348, 348, 0, 0),
    "hubble-flows-json/hubble-otel__basic-sample-400-icmpv4-flows.json": ("hubble", 18, 18, 0, 0),
    "hubble-flows-json/hubble-otel__basic-sample-400-l7-redirected-flows.json": ("hubble", 400, 400, 0, 0),
    "hubble-flows-json/hubble-otel__basic-sample-400-tcp-flows.json": ("hubble", 400, 400, 0, 0),
    "hubble-flows-json/hubble-otel__basic-sample-400-udp-flows.json": ("hubble", 400, 400, 0, 0),
    "hubble-flows-json/hubble-otel__basic-sample-5-dns-flows.json": ("hubble", 5, 5, 0, 0),
    "hubble-flows-json/hubble-otel__basic-sample-5-http-flows.json": ("hubble", 5, 5, 0, 0),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_sample_counts(real_samples: Path, name: str) -> None:
    fmt, records, rows, skipped, quarantined = REAL[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, (r,), _ = read_family(real_samples / name, "flows")
    assert (r.format, r.records, r.rows, sum(r.skipped.values()), r.quarantined) == (fmt, records, rows, skipped, quarantined)


def test_hubble_real_values(real_samples: Path) -> None:
    df = kf.read_flows(real_samples / "hubble-flows-json")
    assert df.verdict.value_counts().to_dict() == {"allowed": 1916, "denied": 2}
    dropped = df[df.verdict == "denied"]
    assert set(dropped.drop_reason) == {"INVALID_SOURCE_IP", "POLICY_DENIED"}
    assert set(dropped.node) == {"kind-worker"} and set(dropped.cluster) == {"kind-kind"}
    assert ("xwing", "deathstar-7848d6c4d5-th9v2") in set(zip(dropped.src_pod, dropped.dst_pod))
    assert (df.l7_type == "dns").sum() > 300 and df.dns_query.notna().sum() > 300
    reviews = df[df.src_pod == "reviews-v1-545db77b95-s6jb8"].iloc[0]
    assert reviews.src_labels["app"] == "reviews" and "io.kubernetes.pod.namespace" not in reviews.src_labels
    # both reply flags occur; where neither is present the value stays unknown
    assert df.is_reply.isna().sum() > 0 and df.is_reply.eq(True).sum() > 0
