"""The DuckDB fast path gives exactly what the per-record path gives: same rows, same values,
same quarantine. Checked on every JSON-lines fixture, the real samples and generated logs."""

from __future__ import annotations

import gzip
import json
import tempfile
import warnings
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sforensics.sources import aws_vpc_flow, open_reader

from ..conftest import FIXTURES, REAL_SAMPLES, ROOT

CASES = (
    sorted((FIXTURES / "audit").glob("*.jsonl"))
    + [ROOT / "sample_data" / "audit" / "kube-apiserver-audit.log.gz", FIXTURES / "flows" / "hubble__exporter_quirks.jsonl"]
    + sorted((FIXTURES / "flows").glob("aws_vpc_flow__*.log"))
)
if REAL_SAMPLES.is_dir():
    CASES += [
        REAL_SAMPLES / "k8s-audit-v1-jsonl" / "audit2rbac__demo.log",
        REAL_SAMPLES / "k8s-audit-v1-jsonl" / "falco-legacy-tests__k8s_audit_trace_files.jsonl",
        REAL_SAMPLES / "cloud-audit-eks" / "panther__rule_tests_Amazon_EKS_Audit.jsonl",
        *sorted((REAL_SAMPLES / "hubble-flows-json").iterdir()),
        *sorted((REAL_SAMPLES / "vpc-flow-aws").glob("*.log")),
    ]


def read(path: Path, fast: bool):
    reader = open_reader(path, fast=fast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(reader.batches())
    table = pa.Table.from_batches(batches, schema=reader.table_for(reader.format).arrow_schema)
    return reader, table.sort_by("event_id")


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_fast_path_equals_per_record_path(path: Path) -> None:
    fast, t_fast = read(path, True)
    slow, t_slow = read(path, False)
    if fast.format.NAME == "hubble" or (fast.format.NAME == "aws-vpc-flow" and "#" not in path.read_text()) or (
        path.suffix in (".jsonl", ".log", ".gz") and fast.format.NAME == "k8s-audit" and "eventlist" not in path.name
    ):
        assert fast.used_fast_path, "plain JSON lines of audit events and Hubble exporter lines take the fast path"
        if "cut" not in path.name:
            assert fast.fast_fallback is None, fast.fast_fallback
    for name in t_slow.column_names:
        assert t_fast.column(name).to_pylist() == t_slow.column(name).to_pylist(), name
    assert fast.quarantine == slow.quarantine
    # only what is in doubt is redone per record: a clean record never is (a check that always
    # failed would still give equal output, ten times slower)
    assert fast.redone <= fast.result.quarantined + sum(fast.result.skipped.values()), (fast.redone, fast.result.quarantined)
    assert (fast.result.records, fast.result.rows, fast.result.quarantined) == (
        slow.result.records,
        slow.result.rows,
        slow.result.quarantined,
    )


def test_type_surprises_take_the_per_record_semantics(tmp_path: Path) -> None:
    """Fields whose JSON type differs from the API server's Go type: both paths agree."""
    base = json.loads((FIXTURES / "audit" / "k8s_audit__bad_lines.jsonl").read_text().splitlines()[0])
    odd = [
        {**base, "auditID": "t1", "sourceIPs": "10.1.1.1"},
        {**base, "auditID": "t2", "responseStatus": {"code": "403"}},
        {**base, "auditID": "t3", "user": {"username": "u", "groups": "g", "extra": {"k": "v", "l": ["x"]}}},
        {**base, "auditID": "t4", "annotations": {"a": 1, "b": {"c": True}}},
        {**base, "auditID": "t5", "annotations": "not-a-map"},
        {**base, "auditID": "t6", "requestURI": "/api/v1/namespaces/x/pods/p/exec?command=a%2Bb&command=c+d&command=%zz"},
    ]
    p = tmp_path / "odd.jsonl"
    p.write_text("\n".join(json.dumps(o) for o in odd) + "\n")
    fast, t_fast = read(p, True)
    _, t_slow = read(p, False)
    assert fast.used_fast_path
    for name in t_slow.column_names:
        assert t_fast.column(name).to_pylist() == t_slow.column(name).to_pylist(), name
    rows = {r["audit_id"]: r for r in t_slow.to_pylist()}
    assert rows["t2"]["response_code"] == 403
    assert rows["t4"]["annotations"] == [("a", "1"), ("b", '{"c":true}')]
    assert rows["t6"]["exec_command"] == "a+b c d %zz"


def test_damaged_gzip_on_the_fast_path(tmp_path: Path) -> None:
    src = ROOT / "sample_data" / "audit" / "kube-apiserver-audit.log.gz"
    data = src.read_bytes()
    p = tmp_path / "cut.log.gz"
    p.write_bytes(data[: len(data) * 2 // 3])
    fast, t_fast = read(p, True)
    slow, t_slow = read(p, False)
    assert t_fast.column("event_id").to_pylist() == t_slow.column("event_id").to_pylist()
    assert fast.quarantine == slow.quarantine and "truncated" in fast.quarantine[-1]["reason"]


def test_vpc_flow_log_gzip_on_the_fast_path(tmp_path: Path) -> None:
    p = tmp_path / "vpc.log.gz"
    p.write_bytes(gzip.compress((FIXTURES / "flows" / "aws_vpc_flow__bad_count_custom_header.log").read_bytes()))
    fast, t_fast = read(p, True)
    slow, t_slow = read(p, False)
    assert fast.used_fast_path and fast.fast_fallback is None
    assert t_fast.to_pylist() == t_slow.to_pylist() and fast.quarantine == slow.quarantine


# --------------------------------------------------------------------------- the declared VPC mapping
#
# aws_vpc_flow.MAPPING declares each column once, in Python and in SQL: for any values of the
# fields the columns read, the fast path and the per-record path give the same rows and the
# same quarantine.

_READ = sorted(aws_vpc_flow.CONSUMED | {"tcp-flags", "account-id"})  # is_reply reads tcp-flags; extra the rest
_GOOD = {
    "start": ["1714557600", "1714557000"], "end": ["1714557660", "0", "-"], "srcport": ["443", "0", "-"], "dstport": ["80", "-"],
    "protocol": ["6", "17", "1", "99", "-"], "action": ["ACCEPT", "REJECT", "-"], "log-status": ["OK", "NODATA", "SKIPDATA"],
    "tcp-flags": ["2", "18", "19", "3", "0", "-"], "flow-direction": ["ingress", "egress", "-"], "packets": ["1", "-"],
    "bytes": ["40", "-"], "srcaddr": ["10.0.0.1", "-"], "dstaddr": ["10.0.0.2"], "pkt-srcaddr": ["10.1.0.1", "-"],
    "pkt-dstaddr": ["10.0.0.2", "10.1.0.2", "-"], "account-id": ["123456789012", "-"],
}
_WEIRD = st.one_of(
    st.sampled_from(["80.5", "1e3", "-5", "+7", "99999999999999999999", "253402300800", "x", "0.0", "007", "-"]),
    st.integers(-(10**20), 10**20).map(str),
    st.text(alphabet="abcAZ09.:+-", min_size=1, max_size=6),
)


def _line(fields: list[str]) -> st.SearchStrategy[str]:
    return st.tuples(*(st.one_of(st.sampled_from(_GOOD.get(n, ["-"])), _WEIRD) for n in fields)).map(" ".join)


@settings(max_examples=40, deadline=None)
@given(lines=st.lists(_line(_READ), min_size=1, max_size=6))
def test_vpc_mapping_fast_and_per_record_agree_for_any_field_values(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "flows.log"
        p.write_text(" ".join(["version", *_READ]) + "\n" + "".join(f"5 {ln}\n" for ln in lines))
        fast, t_fast = read(p, True)
        slow, t_slow = read(p, False)
    assert fast.used_fast_path
    assert t_fast.to_pylist() == t_slow.to_pylist()
    assert fast.quarantine == slow.quarantine
    assert fast.result.skipped == slow.result.skipped
