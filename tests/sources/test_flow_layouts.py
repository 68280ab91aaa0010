"""Flow logs as they really arrive: VPC lines without a header in each documented layout, a
layout that is not guessed, the field order named by the user, VPC records as JSON objects in
three spellings, and Azure flow records as SIEMs store them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import k8sforensics as kf
from k8sforensics.sources import (
    FORMATS,
    aws_vpc_flow,
    azure_flow,
    open_reader,
    read_family,
)
from k8sforensics.sources.protocol import BadRecord, NotAnEvent

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "flows"
UNKNOWN = FIX / "aws_vpc_flow__bad_no_header_unknown_layout.log"
# the custom format (version 3) of the two middle lines of UNKNOWN: the same fields as the
# documented "all fields up to version 3" layout, in another order
CUSTOM_V3 = (
    "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport "
    "pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status"
)


def _read(path: Path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_family(path, "flows", **options)


def _read_both(path: Path, **options) -> tuple[pa.Table, pa.Table, list, list, object]:
    """The same file through the fast path and the per-record path."""
    out = []
    for fast in (True, False):
        reader = open_reader(path, family="flows", fast=fast, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batches = list(reader.batches())
        table = pa.Table.from_batches(batches, schema=reader.table_for(reader.format).arrow_schema).sort_by("event_id")
        out.append((reader, table))
    (fast_reader, t_fast), (slow_reader, t_slow) = out
    return t_fast, t_slow, fast_reader.quarantine, slow_reader.quarantine, fast_reader


# --------------------------------------------------------------------------- documented layouts


def test_layouts_follow_the_documented_field_table() -> None:
    # AWS VPC user guide, "Flow log records — Available fields": all fields up to each version
    counts = {int(v): n for (n, v) in aws_vpc_flow.LAYOUTS}
    assert counts == {2: 14, 3: 21, 4: 25, 5: 29, 7: 39, 8: 40}
    v5 = aws_vpc_flow.LAYOUTS[(29, "5")]
    assert v5[:14] == aws_vpc_flow.DEFAULT_V2 and v5[-4:] == [
        "pkt-src-aws-service",
        "pkt-dst-aws-service",
        "flow-direction",
        "traffic-path",
    ]
    v8 = aws_vpc_flow.LAYOUTS[(40, "8")]
    assert v8[29] == "ecs-cluster-arn" and v8[38] == "ecs-task-id" and v8[-1] == "reject-reason"


LAYOUT_FIXTURES = {
    "aws_vpc_flow__default_no_header.log": ("2", 2, 0),
    "aws_vpc_flow__no_header_v3_all_fields.log": ("3", 2, 1),  # and a NODATA line
    "aws_vpc_flow__no_header_v4_all_fields.log": ("4", 2, 0),
    "aws_vpc_flow__no_header_v5_all_fields.log": ("5", 3, 0),
    "aws_vpc_flow__no_header_v7_ecs_fields.log": ("7", 2, 0),
    "aws_vpc_flow__no_header_v8_reject_reason.log": ("8", 2, 0),
}


@pytest.mark.parametrize("name", sorted(LAYOUT_FIXTURES))
def test_headerless_layout_is_recognised(name: str) -> None:
    version, rows, skipped = LAYOUT_FIXTURES[name]
    table, (r,), _q = _read(FIX / name)
    assert (r.format, r.rows, sum(r.skipped.values()), r.quarantined) == ("aws-vpc-flow", rows, skipped, 0)
    extras = [json.loads(e) for e in table.column("extra").to_pylist()]
    assert {e["version"] for e in extras} == {version}
    assert all(t is not None for t in table.column("time").to_pylist())


@pytest.mark.parametrize("name", sorted(LAYOUT_FIXTURES))
def test_headerless_layout_fast_path_equals_per_record_path(name: str) -> None:
    t_fast, t_slow, q_fast, q_slow, fast = _read_both(FIX / name)
    assert fast.used_fast_path and fast.fast_fallback is None
    assert t_fast.to_pylist() == t_slow.to_pylist() and q_fast == q_slow
    assert fast.redone == sum(fast.result.skipped.values())  # only the NODATA line is redone


def test_v5_all_fields_values() -> None:
    df = kf.read_flows(FIX / "aws_vpc_flow__no_header_v5_all_fields.log").sort_values("evidence_line")
    out, back, s3 = (df.iloc[i] for i in range(3))
    assert (out.src_ip, out.dst_ip, out.direction, out.is_reply) == (
        "10.0.1.57",
        "198.51.100.7",
        "egress",
        False,
    )  # pkt-srcaddr: the pod
    assert json.loads(out.extra)["interface-srcaddr"] == "10.0.1.20" and json.loads(out.extra)["region"] == "us-east-1"
    assert (back.direction, back.is_reply, back.bytes) == ("ingress", True, 40000)  # SYN-ACK: the responder's record
    assert json.loads(s3.extra)["pkt-dst-aws-service"] == "S3" and json.loads(s3.extra)["traffic-path"] == "7"
    assert out.time == pd.Timestamp(1714557700, unit="s", tz="UTC") and out.time_end == pd.Timestamp(
        1714557760, unit="s", tz="UTC"
    )


def test_v7_ecs_and_v8_reject_reason_values() -> None:
    ecs = json.loads(kf.read_flows(FIX / "aws_vpc_flow__no_header_v7_ecs_fields.log").iloc[0].extra)
    assert (ecs["ecs-cluster-name"], ecs["ecs-service-name"], ecs["ecs-task-id"]) == (
        "prod",
        "web",
        "3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c",
    )
    assert "ecs-second-container-id" not in ecs  # '-' is null, left out
    df = kf.read_flows(FIX / "aws_vpc_flow__no_header_v8_reject_reason.log")
    rejected = df[df.verdict == "denied"].iloc[0]
    assert (rejected.src_ip, rejected.dst_port, json.loads(rejected.extra)["reject-reason"]) == (
        "203.0.113.9",
        22,
        "BPA",
    )


# --------------------------------------------------------------------------- not guessed


def test_unknown_layout_is_quarantined_with_the_hint() -> None:
    table, (r,), q = _read(UNKNOWN)
    assert (r.format, r.rows, r.quarantined) == ("aws-vpc-flow", 1, 3)  # the default-format line is read
    reasons = dict(zip(q.column("evidence_line").to_pylist(), q.column("reason").to_pylist()))
    assert sorted(reasons) == [2, 3, 4]
    for reason in reasons.values():
        assert '--vpc-fields "version account-id' in reason and "read_flows(..., vpc_fields=[...])" in reason
    # 21 values with version 3: the count and version of a documented layout, values that are not
    assert "version-3 layout of 21 fields" in reasons[2] and "account-id='vpc-0c1d2e3f4a5b6c7d8'" in reasons[2]
    assert "no documented VPC flow log layout has 14 values with version '5'" in reasons[4]
    t_fast, t_slow, q_fast, q_slow, _ = _read_both(UNKNOWN)
    assert t_fast.to_pylist() == t_slow.to_pylist() and q_fast == q_slow


def test_a_value_of_the_wrong_shape_is_not_read_in_a_documented_layout(tmp_path: Path) -> None:
    good = (FIX / "aws_vpc_flow__no_header_v5_all_fields.log").read_text().splitlines()
    fields = good[0].split()
    port = fields.copy()
    port[6] = "80.5"  # dstport
    backwards = fields.copy()
    backwards[10], backwards[11] = fields[11], fields[10]  # end before start
    p = tmp_path / "v5.log"
    p.write_text("\n".join([good[0], " ".join(port), " ".join(backwards), good[1]]) + "\n")
    t_fast, t_slow, q_fast, q_slow, fast = _read_both(p)
    assert fast.used_fast_path and t_fast.to_pylist() == t_slow.to_pylist() and q_fast == q_slow
    assert t_slow.num_rows == 2 and [q["evidence_line"] for q in q_slow] == [2, 3]
    assert "dstport='80.5'" in q_slow[0]["reason"] and "end 1714557700 before start 1714557760" in q_slow[1]["reason"]


def test_text_that_is_not_a_flow_log_is_not_claimed() -> None:
    assert not aws_vpc_flow.sniff_lines(["FlowStartTime,SrcIP,DestIP", "2024-05-01 10:00:00,10.0.0.1,10.0.0.2"], {})
    assert not aws_vpc_flow.sniff_lines(
        ["2024-05-01T10:00:00Z GET /healthz 200 OK 10.0.0.1"], {}
    )  # no interface, one address
    assert aws_vpc_flow.sniff_lines(
        UNKNOWN.read_text().splitlines()[1:3], {}
    )  # a flow log's lines, in an unknown layout


# --------------------------------------------------------------------------- vpc_fields


def test_vpc_fields_names_the_order() -> None:
    line = UNKNOWN.read_text().splitlines()[1]
    context = {"vpc_fields": CUSTOM_V3.split()}
    (row,) = aws_vpc_flow.rows(line, context)
    assert (row["src_ip"], row["dst_ip"], row["bytes"], row["packets"]) == ("10.0.1.57", "198.51.100.7", "90000", "200")
    assert aws_vpc_flow.sniff_lines([line], {"vpc_fields": CUSTOM_V3})
    with pytest.raises(BadRecord, match="14 values for the 21 fields named in vpc_fields"):
        list(aws_vpc_flow.rows(UNKNOWN.read_text().splitlines()[0], context))


def test_vpc_fields_end_to_end(tmp_path: Path) -> None:
    p = tmp_path / "custom.log"
    p.write_text("\n".join(UNKNOWN.read_text().splitlines()[1:3]) + "\n")
    df = kf.read_flows(p, vpc_fields=CUSTOM_V3.split())
    assert len(df) == 2 and list(df.bytes) == [90000, 40000] and list(df.is_reply) == [False, True]
    t_fast, t_slow, q_fast, q_slow, fast = _read_both(p, vpc_fields=CUSTOM_V3.split())
    assert fast.used_fast_path and fast.redone == 0  # the named order maps on the fast path
    assert t_fast.to_pylist() == t_slow.to_pylist() and q_fast == q_slow == []
    # an unknown name is refused before any file is read: nothing half-read, nothing quarantined for the user's typo
    with pytest.raises(ValueError, match="unknown VPC flow log field\\(s\\) 'no-such-field'"):
        _read(p, vpc_fields=["version", "srcaddr", "no-such-field"])


def test_vpc_field_names_spellings_and_errors() -> None:
    assert aws_vpc_flow.vpc_field_names("${version} ${account-id} ${interface-id}") == [
        "version",
        "account-id",
        "interface-id",
    ]
    assert aws_vpc_flow.vpc_field_names(["account_id", "srcAddr", "pktSrcAwsService"]) == [
        "account-id",
        "srcaddr",
        "pkt-src-aws-service",
    ]
    with pytest.raises(ValueError, match="'dest-port'"):
        aws_vpc_flow.vpc_field_names("version dest-port")
    with pytest.raises(ValueError, match="named twice: srcaddr"):
        aws_vpc_flow.vpc_field_names("srcaddr src_addr")


# --------------------------------------------------------------------------- JSON renditions


def test_json_three_spellings() -> None:
    table, (r,), _q = _read(FIX / "aws_vpc_flow__json_three_spellings.jsonl")
    assert (r.format, r.rows, r.quarantined) == ("aws-vpc-flow", 3, 0)
    hyphen, snake, camel = (
        kf.read_flows(FIX / "aws_vpc_flow__json_three_spellings.jsonl").sort_values("evidence_line").itertuples()
    )
    assert (hyphen.src_ip, hyphen.dst_port, hyphen.direction, hyphen.is_reply) == ("10.0.1.57", 3333, "egress", False)
    assert (snake.src_ip, snake.src_port, snake.bytes, snake.protocol) == ("198.51.100.7", 3333, 40000, "tcp")
    assert json.loads(snake.extra) == {
        "version": "2",
        "account-id": "111122223333",
        "interface-id": "eni-0a1b2c3d4e5f60718",
    }
    assert (camel.verdict, camel.dst_port, camel.time) == ("denied", 22, pd.Timestamp("2024-05-01T10:01:40Z"))
    assert "p_row_id" not in camel.extra and json.loads(camel.extra)["vpc-id"] == "vpc-0c1d2e3f4a5b6c7d8"


def test_json_float_counts_and_missing_time() -> None:
    _t, (r,), q = _read(FIX / "aws_vpc_flow__bad_json_float_counts.jsonl")
    assert (r.rows, r.skipped, r.quarantined) == (2, {"VPC NODATA record": 1}, 2)
    df = kf.read_flows(FIX / "aws_vpc_flow__bad_json_float_counts.jsonl", on_bad_lines="skip").sort_values(
        "evidence_line"
    )
    assert list(df.bytes) == [25238, 12000] and list(df.src_port) == [41000, 3333] and list(df.packets) == [21, 19]
    reasons = dict(zip(q.column("evidence_line").to_pylist(), q.column("reason").to_pylist()))
    assert "field bytes: value 25238.5 is not a whole number" in reasons[3]  # never rounded
    assert "field start: no timestamp" in reasons[4]  # never given another date


def test_json_two_spellings_of_one_field_must_agree() -> None:
    with pytest.raises(BadRecord, match="given twice"):
        list(aws_vpc_flow.rows({"srcaddr": "10.0.0.1", "src_addr": "10.0.0.2", "dstaddr": "10.0.0.3", "start": 1}, {}))
    with pytest.raises(NotAnEvent):
        list(aws_vpc_flow.rows({"status": "SKIPDATA", "p_log_type": "AWS.VPCFlow"}, {}))


def _records(path: Path) -> list:
    text = path.read_text()
    if path.suffix == ".json":
        doc = json.loads(text)
        return doc["records"] if isinstance(doc, dict) and "records" in doc else doc if isinstance(doc, list) else [doc]
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


JSON_FLOW_FIXTURES = sorted(p for p in FIX.iterdir() if p.suffix in (".json", ".jsonl"))


@pytest.mark.parametrize("path", JSON_FLOW_FIXTURES, ids=lambda p: p.name)
def test_json_flow_records_are_claimed_by_their_own_format_only(path: Path) -> None:
    """VPC JSON renditions are not taken for OCSF, GCP, Azure, Hubble or Calico records, nor
    the other way round."""
    owner = _read(path)[1][0].format
    for record in _records(path):
        claimed = [f.NAME for f in FORMATS if f.FAMILY == "flows" and f.sniff is not None and f.sniff(record)]
        assert owner in claimed and (owner != "aws-vpc-flow" or claimed == ["aws-vpc-flow"]), (path.name, claimed)
        assert aws_vpc_flow.sniff(record) == (owner == "aws-vpc-flow")


# --------------------------------------------------------------------------- Azure as SIEMs store it


def test_azure_records_one_per_line_with_nested_or_stringified_properties() -> None:
    _t, (r,), _q = _read(FIX / "azure_flow__siem_nested_properties.jsonl")
    assert (r.format, r.rows, r.quarantined, dict(r.skipped)) == ("azure-flow", 5, 0, {})
    df = kf.read_flows(FIX / "azure_flow__siem_nested_properties.jsonl")
    by_port = {row.dst_port: row for row in df.itertuples()}
    ssh = by_port[22]  # NSG v2, properties an object
    assert (ssh.verdict, ssh.direction, ssh.time) == ("denied", "ingress", pd.Timestamp(1714557600, unit="s", tz="UTC"))
    redis = by_port[6379]  # VNet tuples under properties.flows[].flowGroups[]: epoch ms, protocol numbers
    assert (redis.verdict, redis.protocol, redis.time) == (
        "denied",
        "tcp",
        pd.Timestamp(1714557602000, unit="ms", tz="UTC"),
    )
    assert json.loads(redis.extra)["rule"] == "BlockHighRiskPorts"
    https = by_port[443]  # NSG v2, properties a JSON string
    assert (https.bytes, https.packets, json.loads(https.extra)["rule"]) == (13000, 38, "UserRule_AllowHttpsOut")
    pg = by_port[5432]  # VNet, properties a JSON string holding flowRecords
    assert (pg.bytes, pg.verdict, pg.time) == (6500, "allowed", pd.Timestamp(1714557604000, unit="ms", tz="UTC"))


def test_azure_stringified_properties_that_are_not_json() -> None:
    record = {"category": "NetworkSecurityGroupFlowEvent", "properties": '{"Version": 2, "flows": [ cut'}
    assert azure_flow.sniff(record)
    with pytest.raises(BadRecord, match="field properties: text that is not a JSON object"):
        list(azure_flow.rows(record, {}))
    # without its category, a record is claimed only for flows that hold tuples
    assert azure_flow.sniff({"properties": {"flows": [{"flowGroups": [{"flowTuples": []}]}]}})
    assert not azure_flow.sniff({"properties": {"flows": "x", "Version": 2}})
