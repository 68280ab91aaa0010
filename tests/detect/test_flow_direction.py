"""Direction and outside-ness of flows: a server answering its clients is not a scan, a
load balancer's private address is not "external", and traffic to genuinely outside
addresses — from a pod or from a node's address — still makes its findings."""

from __future__ import annotations

import ipaddress

import pandas as pd

from k8sforensics.context.attribution import attribute_frame
from k8sforensics.context.networks import (
    cluster_networks,
    external_mask,
    interface_addresses,
    listening_sockets,
    reply_mask,
)
from k8sforensics.detect import Evidence
from k8sforensics.detect import flow_rules as fr
from tests.event_frames import frame

NODES = pd.DataFrame(
    {"name": ["node-1"], "internal_ips": [["10.0.1.11"]], "external_ips": [None], "pod_cidrs": [["10.244.1.0/24"]]}
)


def flow(time: str, src: str, sport: int | None, dst: str, dport: int, **kw) -> dict:
    return {
        "time": time,
        "src_ip": src,
        "src_port": sport,
        "dst_ip": dst,
        "dst_port": dport,
        "protocol": "tcp",
        "verdict": "allowed",
        "source": "aws-vpc-flow",
        **kw,
    }


def server_answering(n: int, *, is_reply=None) -> list[dict]:
    """A web server (10.0.2.5:443) answering n clients, each on its own ephemeral port."""
    return [
        flow(f"2026-01-01T10:00:{i:02d}Z", "10.0.2.5", 443, f"198.51.100.{i + 1}", 40000 + i, is_reply=is_reply)
        for i in range(n)
    ]


def test_server_replies_are_not_a_scan_by_ports_when_the_format_cannot_tell() -> None:
    assert fr.port_scan(Evidence(flows=frame("flows", *server_answering(30)))).empty


def test_server_replies_are_not_a_scan_when_tcp_flags_said_so() -> None:
    # many clients behind one NAT address, which hands out low ports: only the format's own flag tells
    rows = [
        flow(f"2026-01-01T10:00:{i:02d}Z", "10.0.2.5", 443, "198.51.100.1", 1000 + i, is_reply=True) for i in range(30)
    ]
    assert fr.port_scan(Evidence(flows=frame("flows", *rows))).empty
    rows = [{**r, "is_reply": None} for r in rows]  # the same flows, direction unknown: they look like a scan
    assert len(fr.port_scan(Evidence(flows=frame("flows", *rows)))) == 1


def test_a_real_scan_from_a_high_source_port_is_still_found() -> None:
    rows = [
        flow(f"2026-01-01T10:00:{i:02d}Z", "198.51.100.66", 51515, "10.0.1.11", 20 + i, verdict="denied")
        for i in range(15)
    ]
    hits = fr.port_scan(Evidence(flows=frame("flows", *rows), context={"nodes": NODES}))
    assert len(hits) == 1 and hits.loc[0, "kill_chain_phase"] == "Reconnaissance"


def test_listening_sockets_seen_by_the_runtime_mark_replies() -> None:
    # a pod serving on an ephemeral-range port (40443) to a client's many connections: ports cannot tell
    rows = [
        flow(
            f"2026-01-01T10:00:{i:02d}Z",
            "10.244.1.7",
            40443,
            "10.9.0.1",
            50000 + i,
            src_namespace="shop",
            src_pod="web-1",
            source="hubble",
        )
        for i in range(12)
    ]
    rt = frame(
        "runtime",
        {
            "time": "2026-01-01T09:59:00Z",
            "event_type": "network",
            "rule": "process_listen",
            "namespace": "shop",
            "pod": "web-1",
            "src_ip": "0.0.0.0",
            "src_port": 40443,
            "source": "tetragon",
        },
    )
    assert len(fr.port_scan(Evidence(flows=frame("flows", *rows)))) == 1
    assert fr.port_scan(Evidence(flows=frame("flows", *rows), runtime=rt)).empty
    assert listening_sockets(rt) == frozenset({("shop", "web-1", 40443)})


def test_reply_mask_prefers_what_the_source_said() -> None:
    f = pd.DataFrame(
        {
            "is_reply": [None, False, True, None, None, None],
            "src_port": [443, 443, 50000, 51000, 30080, None],
            "dst_port": [40001, 40001, 443, 443, 45000, None],
        }
    )
    assert reply_mask(f).tolist() == [True, False, True, False, True, False]


def test_load_balancer_and_service_addresses_are_inside() -> None:
    services = pd.DataFrame(
        {"namespace": ["shop"], "name": ["web"], "cluster_ips": [["172.20.14.3"]], "external_ips": [["34.120.9.9"]]}
    )  # a cloud LB's public ingress address
    nets = cluster_networks(NODES, services=services, interfaces=["2600:1f18:1::15"])
    ips = pd.Series(["172.20.14.3", "34.120.9.9", "10.0.9.9", "2600:1f18:1::15", "203.0.113.77", "10.0.1.11", None])
    assert external_mask(ips, nets).tolist() == [False, False, False, False, True, False, False]
    empty_pods = pd.DataFrame(
        columns=["ip", "start", "end", "namespace", "pod", "pod_uid", "workload_kind", "workload", "node"]
    )
    got = attribute_frame(
        pd.DataFrame({"ip": ips, "time": pd.Timestamp("2026-01-01", tz="UTC")}),
        empty_pods,
        NODES,
        ip="ip",
        services=services,
        networks=nets,
    )
    assert got["kind"].tolist()[:6] == ["service", "service", "internal", "internal", "external", "node"]
    assert got["service"].tolist()[:2] == ["shop/web", "shop/web"]


def test_interface_addresses_of_vpc_records_are_learned() -> None:
    f = pd.DataFrame(
        {
            "source": ["aws-vpc-flow", "aws-vpc-flow", "aws-vpc-flow", "hubble"],
            "direction": ["ingress", "egress", "egress", "egress"],
            "src_ip": ["203.0.113.5", "2600:1f18:1::15", "198.51.100.9", "8.8.8.8"],
            "dst_ip": ["100.20.0.4", "2606:4700::1", "10.0.3.3", "1.1.1.1"],
            # an NLB forwarding with client-IP preservation: the packet's source is the client
            "extra": [None, None, '{"interface-srcaddr": "10.0.0.220"}', None],
        }
    )
    assert interface_addresses(f) == frozenset({"100.20.0.4", "2600:1f18:1::15", "10.0.0.220"})
    nets = cluster_networks(NODES, interfaces=interface_addresses(f))
    assert not external_mask(pd.Series(["100.20.0.4"]), nets).iloc[0]  # a VPC CIDR outside RFC 1918
    assert external_mask(pd.Series(["198.51.100.9"]), nets).iloc[0]  # the client stays outside
    assert ipaddress.ip_network("2600:1f18:1::15/128") in nets


def test_a_beacon_from_a_node_address_is_the_nodes_and_still_fires() -> None:
    # a host-network pod shares the node's address: no pod can be told, the node is the entity
    rows = [
        flow(
            f"2026-01-01T10:{5 * i:02d}:00Z",
            "10.0.1.11",
            41000 + i,
            "203.0.113.77",
            443,
            src_kind="node",
            src_node="node-1",
        )
        for i in range(6)
    ]
    hits = fr.beaconing(Evidence(flows=frame("flows", *rows), context={"nodes": NODES}))
    assert hits["entity"].tolist() == ["node-1"] and hits.loc[0, "entity_type"] == "node"
    mining = [
        flow("2026-01-01T10:00:00Z", "10.0.1.11", 41000, "203.0.113.88", 3333, src_kind="node", src_node="node-1")
    ]
    hits = fr.mining_pool(Evidence(flows=frame("flows", *mining), context={"nodes": NODES}))
    assert hits["entity"].tolist() == ["node-1"] and hits.loc[0, "entity_type"] == "node"


def test_a_beacon_from_a_pod_is_the_pods_and_one_to_a_service_address_is_not_a_beacon() -> None:
    services = pd.DataFrame(
        {"namespace": ["shop"], "name": ["lb"], "cluster_ips": [["172.20.0.9"]], "external_ips": [["34.120.9.9"]]}
    )
    out = [
        flow(
            f"2026-01-01T10:{5 * i:02d}:00Z",
            "10.244.1.7",
            41000 + i,
            "203.0.113.77",
            443,
            src_namespace="k",
            src_pod="x",
            src_kind="pod",
        )
        for i in range(6)
    ]
    to_lb = [
        flow(
            f"2026-01-01T10:{5 * i:02d}:00Z",
            "10.244.1.8",
            42000 + i,
            "34.120.9.9",
            443,
            src_namespace="k",
            src_pod="y",
            src_kind="pod",
        )
        for i in range(6)
    ]
    hits = fr.beaconing(Evidence(flows=frame("flows", *out, *to_lb), context={"nodes": NODES, "services": services}))
    assert hits["entity"].tolist() == ["k/x"] and hits.loc[0, "entity_type"] == "pod"


def test_a_second_beacon_of_the_same_host_is_its_own_finding() -> None:
    # a node calls an update server hourly and, later, a C2 server every five minutes
    routine = [
        flow(
            f"2026-01-01T{h:02d}:00:00Z",
            "10.0.1.11",
            41000 + h,
            "198.51.100.88",
            443,
            src_kind="node",
            src_node="node-1",
        )
        for h in range(6)
    ]
    c2 = [
        flow(
            f"2026-01-01T05:{5 * i:02d}:30Z",
            "10.0.1.11",
            42000 + i,
            "203.0.113.150",
            443,
            src_kind="node",
            src_node="node-1",
        )
        for i in range(6)
    ]
    hits = fr.beaconing(Evidence(flows=frame("flows", *routine, *c2), context={"nodes": NODES}))
    assert sorted(hits["destination_ip"]) == ["198.51.100.88", "203.0.113.150"] and set(hits["entity"]) == {"node-1"}
    assert hits.loc[hits["destination_ip"] == "203.0.113.150", "event_ids"].map(len).tolist() == [6]
