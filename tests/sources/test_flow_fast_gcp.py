"""GCP VPC flow logs: the DuckDB fast path gives exactly the rows, quarantine and skips of the
per-record path, for any values of the fields the mapping reads (gcp_vpc_flow.MAPPING)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from k8sforensics.sources import gcp_vpc_flow

from ..conftest import FIXTURES
from .test_fast_path import _T, _both_paths_agree, _json_path, _object, _odd, _record, _value, read


def _gke() -> st.SearchStrategy[object]:
    return _object(
        {
            "cluster": _object({"cluster_name": _value("gke-prod", ""), "cluster_location": _value("europe-west1")}),
            "pod": _object(
                {
                    "pod_name": _value("cart-5c7b9", ""),
                    "pod_namespace": _value("shop", ""),
                    "pod_workload": _object({"workload_name": _value("cart"), "workload_type": _value("DEPLOYMENT")}),
                }
            ),
            "service": _value(
                [{"service_name": "db", "service_namespace": "shop"}], [{"service_name": "db"}], [], ["x"]
            ),
        }
    )


_PAYLOAD = _record(
    {
        "connection": _record(
            {
                "src_ip": _value("10.8.0.12", "2001:db8::1"),
                "dest_ip": _value("10.8.1.30"),
                "src_port": _value(51000, "443"),
                "dest_port": _value(5432, 0),
                "protocol": _value(6, 17, "6", 99, 1),
            }
        ),
        "start_time": _value(*_T, ""),
        "end_time": _value(*_T),
        "bytes_sent": _value("4096", 4096, "0"),
        "packets_sent": _value("12"),
        "reporter": _value("SRC", "DEST", "X"),
        "rtt_msec": _value("3", 3, 0.5, -1, "é ✓", 'a"b', 12345678901234567890),
        "src_instance": _value({"vm_name": "ip-10-0-13-95", "zone": "europe-west1-b"}, []),
        "src_gke_details": _gke(),
        "dest_gke_details": _gke(),
    }
)
_LOG_ENTRY = _record(
    {
        "insertId": _value("x1"),
        "logName": _value("projects/p1/logs/compute.googleapis.com%2Fvpc_flows"),
        "timestamp": _value(*_T),
        "jsonPayload": _PAYLOAD,
    }
).filter(lambda r: isinstance(r.get("jsonPayload", {}).get("connection"), dict))
_PATHS = [("jsonPayload", *_json_path(p)) for p in gcp_vpc_flow._PATHS]
_GCP = _odd(_LOG_ENTRY, [("timestamp",), ("jsonPayload",), ("jsonPayload", "connection"), *_PATHS])
_FIRST = {
    "timestamp": _T[0],
    "jsonPayload": {"connection": {"src_ip": "10.0.0.1", "dest_ip": "10.0.0.2"}, "start_time": _T[0]},
}


@settings(max_examples=120, deadline=None)
@given(records=st.lists(_GCP, min_size=1, max_size=6))
def test_gcp_mapping_fast_and_per_record_agree_for_any_field_values(records: list[dict]) -> None:
    _both_paths_agree("gcp.jsonl", _FIRST, records)


def test_the_gcp_fixture_takes_the_fast_path_whole() -> None:
    fast, t_fast = read(FIXTURES / "flows" / "gcp_vpc_flow__flows.jsonl", True)
    slow, t_slow = read(FIXTURES / "flows" / "gcp_vpc_flow__flows.jsonl", False)
    assert fast.used_fast_path and fast.redone == 0
    assert t_fast.to_pylist() == t_slow.to_pylist()


def test_a_payload_duckdb_would_write_otherwise_is_redone_per_record(tmp_path: Path) -> None:
    """Fractions, exponents, negatives, long integers and escapes are written differently by
    DuckDB's JSON writer and the per-record path's: such a row is redone, never written apart."""
    odd = [0.5, 1e5, -1, 12345678901234567890, 'a"b', "tab\there"]
    lines = [_FIRST] + [{**_FIRST, "jsonPayload": {**_FIRST["jsonPayload"], "rtt_msec": v}} for v in odd]
    p = tmp_path / "gcp.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in lines))
    fast, t_fast = read(p, True)
    slow, t_slow = read(p, False)
    assert fast.used_fast_path and fast.redone == len(odd)
    assert t_fast.to_pylist() == t_slow.to_pylist()
    assert json.loads(t_fast.column("extra")[1].as_py()) == {"rtt_msec": 0.5}
