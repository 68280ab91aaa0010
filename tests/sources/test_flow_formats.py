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
    _table, (result,), _ = read_family(FIX / "hubble__flows.jsonl", "flows")
    assert result.skipped == {"Hubble node_status": 1} and result.rows == 3
    df = kf.read_flows(FIX / "hubble__flows.jsonl")
    egress = df.iloc[0]
    assert egress.time == pd.Timestamp("2024-05-01T10:00:05.000000001Z")
    assert (egress.cluster, egress.node) == ("prod", "node-1")  # "cluster/node" split
    assert (egress.src_ip, egress.src_port, egress.dst_ip, egress.dst_port, egress.protocol) == (
        "10.0.0.5",
        43210,
        "169.254.169.254",
        80,
        "tcp",
    )
    assert (egress.verdict, egress.verdict_raw, egress.direction, egress.is_reply) == (
        "allowed",
        "FORWARDED",
        "egress",
        False,
    )
    assert egress.src_labels == {"app": "cart"}  # namespace and cilium labels are not pod labels
    assert (egress.src_workload_kind, egress.src_workload) == ("Deployment", "cart")
    assert (egress.namespace, egress.pod) == ("shop", "cart-5c7b9")  # core columns: the source side
    assert json.loads(egress.extra)["destination"]["labels"] == ["reserved:world"]  # extra: the flow as recorded
    dropped = df.iloc[1]
    assert (dropped.verdict, dropped.drop_reason, dropped.dst_service, dropped.dst_pod) == (
        "denied",
        "POLICY_DENIED",
        "db/postgres",
        "postgres-0",
    )
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
        _table, (r,), _ = read_family(real_samples / name, "flows")
    assert (r.format, r.records, r.rows, sum(r.skipped.values()), r.quarantined) == (
        fmt,
        records,
        rows,
        skipped,
        quarantined,
    )


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


def test_aws_vpc_custom_field_order_from_the_header() -> None:
    _table, (r,), q = read_family(FIX / "aws_vpc_flow__bad_count_custom_header.log", "flows")
    assert r.skipped == {"VPC flow log header line": 1, "VPC NODATA record": 1}
    assert r.rows == 2 and r.quarantined == 1  # the last line has one value too many
    assert "20 values for the 19 fields" in q.column("reason")[0].as_py()
    df = kf.read_flows(FIX / "aws_vpc_flow__bad_count_custom_header.log", on_bad_lines="skip")
    imds = df.iloc[0]
    assert imds.src_ip == "10.0.1.57"  # pkt-srcaddr: the pod's secondary IP, not the ENI's
    assert json.loads(imds.extra)["interface-srcaddr"] == "10.0.1.20"
    assert (imds.dst_ip, imds.dst_port, imds.protocol, imds.verdict, imds.direction) == (
        "169.254.169.254",
        80,
        "tcp",
        "allowed",
        "egress",
    )
    assert (imds.time, imds.time_end) == (pd.Timestamp("2024-05-01T10:00:00Z"), pd.Timestamp("2024-05-01T10:01:00Z"))
    assert (imds.bytes, imds.packets) == (420, 5)
    rejected = df.iloc[1]
    assert (rejected.verdict, rejected.verdict_raw) == ("denied", "REJECT")


def test_aws_vpc_default_v2_without_header() -> None:
    df = kf.read_flows(FIX / "aws_vpc_flow__default_no_header.log")
    assert len(df) == 2 and set(df.dst_port) == {3333, 41000}
    assert df.iloc[0].bytes == 90000


def test_gcp_vpc_flow_with_gke_details() -> None:
    r = kf.read_flows(FIX / "gcp_vpc_flow__flows.jsonl").iloc[0]
    assert r.time == pd.Timestamp("2024-05-01T10:00:00.123456789Z")
    assert (r.src_namespace, r.src_pod, r.src_workload, r.src_workload_kind) == (
        "shop",
        "cart-5c7b9",
        "cart",
        "DEPLOYMENT",
    )
    assert (r.dst_pod, r.dst_service, r.cluster) == ("postgres-0", "db/postgres", "gke-prod")
    assert (r.bytes, r.packets, r.protocol, r.direction) == (4096, 12, "tcp", "egress")  # numbers given as strings


def test_azure_nsg_v2_and_vnet_tuples() -> None:
    _table, (res,), _ = read_family(FIX / "azure_flow__nsg_vnet.json", "flows")
    df = kf.read_flows(FIX / "azure_flow__nsg_vnet.json")
    assert len(df) == 4 == res.rows
    nsg_denied = df[(df.dst_port == 22)].iloc[0]
    assert (nsg_denied.verdict, nsg_denied.direction, nsg_denied.protocol) == ("denied", "ingress", "tcp")
    assert nsg_denied.time == pd.Timestamp(1714557600, unit="s", tz="UTC") and pd.isna(nsg_denied.bytes)
    nsg_ok = df[df.dst_port == 443].iloc[0]
    assert (nsg_ok.bytes, nsg_ok.packets) == (13000, 38)
    vnet = df[df.dst_port == 6379].iloc[0]
    assert vnet.time == pd.Timestamp(1714557602000, unit="ms", tz="UTC")  # VNet tuples are epoch ms
    assert (vnet.verdict, vnet.protocol) == ("denied", "tcp")
    assert json.loads(vnet.extra)["rule"] == "BlockHighRiskPorts"


def test_azure_traffic_analytics_csv() -> None:
    df = kf.read_flows(FIX / "azure_traffic_analytics__csv_export.csv")
    out = df.iloc[0]
    assert (out.src_ip, out.dst_ip, out.dst_port, out.direction, out.verdict) == (
        "10.240.0.4",
        "198.51.100.7",
        443,
        "egress",
        "allowed",
    )
    assert out.time == pd.Timestamp("2024-05-01T10:00:07Z")  # no zone given: UTC
    denied = df.iloc[1]
    assert (denied.src_ip, denied.dst_ip, denied.verdict) == ("10.240.0.9", "10.240.0.4", "denied")


def test_calico_aggregated_flow() -> None:
    r = kf.read_flows(FIX / "calico__flows.jsonl").iloc[0]
    assert (r.src_namespace, r.src_pod, r.src_workload) == ("shop", "cart-5c7b9", "cart-5c7b9")
    assert r.src_labels == {"app": "cart", "pod-template-hash": "5c7b9"}
    assert pd.isna(r.dst_namespace) and pd.isna(r.dst_pod) and pd.isna(r.dst_ip)  # '-' and null stay null
    assert (r.verdict, r.direction, r.dst_port, list(r.dst_names)) == ("denied", "egress", 3333, ["pool.miner.example"])
    assert (r.time_end - r.time) == pd.Timedelta(minutes=5) and r.bytes == 120


def test_ocsf_network_activity() -> None:
    r = kf.read_flows(FIX / "ocsf_network__flows.jsonl").iloc[0]
    assert (r.src_ip, r.dst_ip, r.dst_port, r.protocol, r.verdict, r.direction) == (
        "10.0.1.57",
        "169.254.169.254",
        80,
        "tcp",
        "allowed",
        "egress",
    )
    assert r.time == pd.Timestamp(1714557600000, unit="ms", tz="UTC")


REAL.update(
    {
        # AWS documentation examples: the NAT and transit-gateway layouts carry no start/end time
        "vpc-flow-aws/awsdocs-vpc__default_v2_examples.log": ("aws-vpc-flow", 8, 5, 3, 0),
        "vpc-flow-aws/awsdocs-vpc__custom_tcp_flags_examples.log": ("aws-vpc-flow", 9, 8, 1, 0),
        "vpc-flow-aws/awsdocs-vpc__custom_v5_traffic_path_examples.log": ("aws-vpc-flow", 3, 2, 1, 0),
        "vpc-flow-aws/awsdocs-vpc__custom_transit_gateway_examples.log": ("aws-vpc-flow", 5, 0, 1, 4),
        "vpc-flow-aws/awsdocs-vpc__custom_nat_gateway_pkt_addr_examples.log": ("aws-vpc-flow", 7, 0, 1, 6),
        # Panther rule tests: hand-written records, none with a time
        "vpc-flow-aws/panther__rule_tests_AWS_VPCFlow.jsonl": ("aws-vpc-flow", 21, 0, 1, 20),
        "vpc-flow-aws/panther__rule_tests_OCSF_NetworkActivity.jsonl": ("ocsf-network", 8, 0, 1, 7),
        "vpc-flow-azure/msticpy__az_net_flows.csv": ("azure-traffic-analytics", 461, 460, 1, 0),
        "calico-flow-logs/tigera-docs__flow_log_examples_extracted.jsonl": ("calico", 3, 1, 0, 2),
    }
)


@pytest.mark.parametrize("name", sorted(set(REAL) - {k for k in REAL if k.startswith("hubble")}))
def test_real_flow_log_counts(real_samples: Path, name: str) -> None:
    test_real_sample_counts(real_samples, name)


def test_vpc_real_values(real_samples: Path) -> None:
    df = kf.read_flows(real_samples / "vpc-flow-aws" / "awsdocs-vpc__custom_v5_traffic_path_examples.log")
    assert list(df.direction) == ["ingress", "egress"]
    assert json.loads(df.iloc[0].extra)["pkt-src-aws-service"] == "S3"
    v2 = kf.read_flows(real_samples / "vpc-flow-aws" / "awsdocs-vpc__default_v2_examples.log")
    assert "2001:db8:1234:a100:8d6e:3477:df66:f105" in set(v2.src_ip)
    assert v2.verdict.value_counts().to_dict() == {"allowed": 3, "denied": 2}
    az = kf.read_flows(real_samples / "vpc-flow-azure")
    assert len(az) == 460 and az.time.notna().all() and az.src_ip.notna().all()


def test_hubble_exporter_quirks() -> None:
    df = kf.read_flows(FIX / "hubble__exporter_quirks.jsonl").sort_values("evidence_line")
    first, audit, traced, late_time, sctp = (df.iloc[i] for i in range(5))
    assert first.src_labels == {"app": "cart", "version": "", "a": "b=c"}  # reserved: dropped; '=' inside a value kept
    assert pd.isna(first.dst_pod) and pd.isna(first.is_reply)
    assert (audit.verdict, audit.is_reply, audit.dst_service, audit.l7_type, audit.http_status) == (
        "audit",
        True,
        "api",
        "http",
        503,
    )
    assert (traced.verdict, traced.is_reply, traced.protocol, traced.node) == (
        "allowed",
        False,
        "icmp",
        "node-1",
    )  # the flow's node_name wins
    assert (
        pd.isna(traced.src_port)
        and pd.isna(traced.direction)
        and pd.isna(traced.drop_reason)
        and pd.isna(traced.src_pod)
    )
    assert late_time.time == pd.Timestamp("2024-05-01T10:00:11Z")  # the wrapper's time when the flow has none
    assert (sctp.protocol, sctp.dst_port, sctp.verdict, list(sctp.dst_names)) == (
        "sctp",
        38412,
        "error",
        ["a.example", "b.example"],
    )
