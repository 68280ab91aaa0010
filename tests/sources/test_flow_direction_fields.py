"""Which end opened a connection, as each flow format can tell it (``is_reply``), and where
it cannot: left unknown, never guessed at load time."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import k8sforensics as kf
from k8sforensics.sources.aws_vpc_flow import reply_from_tcp_flags

QUIRKS = Path(__file__).parent.parent / "fixtures" / "quirks"


def _by_ports(df: pd.DataFrame) -> dict[tuple[int, int, str], object]:
    """is_reply by (source port, destination port, direction), for the keys one record has."""
    return {
        (int(r.src_port), int(r.dst_port), r.direction): (None if pd.isna(r.is_reply) else bool(r.is_reply))
        for r in df.itertuples()
    }


def test_aws_tcp_flags_tell_the_responder_from_the_initiator() -> None:
    df = kf.read_flows(QUIRKS / "aws_vpc_flow__reply_tcp_flags.log")
    got = _by_ports(df)
    assert got[(51022, 443, "ingress")] is False  # SYN|FIN (3): the client's record
    assert got[(44100, 443, "egress")] is False  # SYN alone (2), even rejected
    assert got[(41000, 53, "egress")] is None  # UDP: no flags to read
    replies = df[(df.src_port == 443) & (df.dst_port == 51022)]
    # SYN-ACK|FIN (19) is the server's record; FIN alone (1), mid-connection, says nothing
    assert sorted(map(str, replies.is_reply.tolist())) == ["None", "True"]
    assert all("tcp-flags" in e for e in df.extra)  # the value as written stays in extra


def test_aws_json_reexport_reads_the_flags_like_the_text_form(tmp_path: Path) -> None:
    text = kf.read_flows(QUIRKS / "aws_vpc_flow__reply_tcp_flags.log")
    lines = (QUIRKS / "aws_vpc_flow__reply_tcp_flags.log").read_text().splitlines()
    names = lines[0].split()
    camel = {
        "srcaddr": "srcAddr",
        "dstaddr": "dstAddr",
        "srcport": "srcPort",
        "dstport": "dstPort",
        "tcp-flags": "tcpFlags",
        "flow-direction": "flowDirection",
        "log-status": "logStatus",
        "interface-id": "interfaceId",
        "account-id": "accountId",
    }
    records = [{camel.get(k, k): v for k, v in zip(names, line.split())} for line in lines[1:]]
    assert [r["tcpFlags"] for r in records] == ["3", "19", "1", "2", "0"]
    path = tmp_path / "reexport.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    js = kf.read_flows(path)

    def key(df: pd.DataFrame) -> list[tuple[int, int, str]]:
        return sorted((int(r.src_port), int(r.dst_port), str(r.is_reply)) for r in df.itertuples())

    assert key(js) == key(text)


def test_tcp_flag_values() -> None:
    assert [reply_from_tcp_flags(v, "6") for v in ("2", "3", "6", "18", "19", "22", "1", "0", "4")] == [
        False,
        False,
        False,
        True,
        True,
        True,
        None,
        None,
        None,
    ]
    assert (
        reply_from_tcp_flags("18", "17") is None
        and reply_from_tcp_flags("0x12", "6") is None
        and reply_from_tcp_flags(None, "6") is None
    )


def test_azure_nsg_v2_tuples_are_the_opened_flow_and_v1_stays_unknown() -> None:
    df = kf.read_flows(QUIRKS / "azure_flow__nsg_v1_v2_flow_state.json")
    v2 = df[df.src_ip == "10.0.0.4"]
    assert len(v2) == 2 and set(v2.is_reply) == {False} and set(v2.direction) == {"egress"}
    v1 = df[df.src_ip == "198.51.100.7"]
    assert len(v1) == 1 and pd.isna(v1.is_reply.iloc[0])


def test_calico_records_are_connections() -> None:
    df = kf.read_flows(QUIRKS / "calico__flow_connection_counters.jsonl")
    assert df.is_reply.tolist() == [False] and df.direction.tolist() == ["egress"]


def test_ocsf_tcp_flags() -> None:
    df = kf.read_flows(QUIRKS / "ocsf_network__tcp_flags.jsonl")
    got = dict(zip(df.src_port.astype(int), df.is_reply))
    assert got == {443: True, 51022: False}


def test_hubble_and_gcp_keep_what_they_say(real_samples: Path, tmp_path: Path) -> None:
    hubble = kf.read_flows(real_samples / "hubble-flows-json" / "hubble-otel__basic-sample-400-tcp-flows.json")
    assert hubble.is_reply.notna().any()  # Hubble says it on every flow that carries is_reply
    gcp = {
        "logName": "projects/p/logs/compute.googleapis.com%2Fvpc_flows",
        "timestamp": "2026-03-10T10:00:00Z",
        "jsonPayload": {
            "reporter": "DEST",
            "connection": {
                "src_ip": "10.8.0.5",
                "dest_ip": "10.8.1.7",
                "src_port": 443,
                "dest_port": 40110,
                "protocol": 6,
            },
            "start_time": "2026-03-10T10:00:00Z",
        },
    }
    path = tmp_path / "gcp.jsonl"
    path.write_text(json.dumps(gcp) + "\n")
    df = kf.read_flows(path)
    assert df.direction.tolist() == ["ingress"] and pd.isna(
        df.is_reply.iloc[0]
    )  # GCP cannot tell: the rules decide by ports
