"""The DuckDB fast path gives exactly what the per-record path gives: same rows, same values,
same quarantine. Checked on every JSON-lines fixture, the real samples and generated logs."""

from __future__ import annotations

import functools
import gzip
import json
import re
import tempfile
import warnings
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8sforensics.sources import aws_vpc_flow, hubble, k8s_audit, open_reader
from k8sforensics.sources._mapping import compile_row

from ..conftest import FIXTURES, REAL_SAMPLES, ROOT

CASES = (
    sorted((FIXTURES / "audit").glob("*.jsonl"))
    + [
        ROOT / "sample_data" / "audit" / "kube-apiserver-audit.log.gz",
        FIXTURES / "flows" / "hubble__exporter_quirks.jsonl",
    ]
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
    if (
        fast.format.NAME == "hubble"
        or (fast.format.NAME == "aws-vpc-flow" and "#" not in path.read_text())
        or (
            path.suffix in (".jsonl", ".log", ".gz")
            and fast.format.NAME == "k8s-audit"
            and "eventlist" not in path.name
        )
    ):
        assert fast.used_fast_path, "plain JSON lines of audit events and Hubble exporter lines take the fast path"
        if "cut" not in path.name:
            assert fast.fast_fallback is None, fast.fast_fallback
    for name in t_slow.column_names:
        assert t_fast.column(name).to_pylist() == t_slow.column(name).to_pylist(), name
    assert fast.quarantine == slow.quarantine
    # only what is in doubt is redone per record: a clean record never is (a check that always
    # failed would still give equal output, ten times slower)
    assert fast.redone <= fast.result.quarantined + sum(fast.result.skipped.values()), (
        fast.redone,
        fast.result.quarantined,
    )
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
        {
            **base,
            "auditID": "t6",
            "requestURI": "/api/v1/namespaces/x/pods/p/exec?command=a%2Bb&command=c+d&command=%zz",
        },
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
    "start": ["1714557600", "1714557000"],
    "end": ["1714557660", "0", "-"],
    "srcport": ["443", "0", "-"],
    "dstport": ["80", "-"],
    "protocol": ["6", "17", "1", "99", "-"],
    "action": ["ACCEPT", "REJECT", "-"],
    "log-status": ["OK", "NODATA", "SKIPDATA"],
    "tcp-flags": ["2", "18", "19", "3", "0", "-"],
    "flow-direction": ["ingress", "egress", "-"],
    "packets": ["1", "-"],
    "bytes": ["40", "-"],
    "srcaddr": ["10.0.0.1", "-"],
    "dstaddr": ["10.0.0.2"],
    "pkt-srcaddr": ["10.1.0.1", "-"],
    "pkt-dstaddr": ["10.0.0.2", "10.1.0.2", "-"],
    "account-id": ["123456789012", "-"],
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


@pytest.mark.parametrize("field", ["start", "end"])
def test_vpc_time_out_of_range_is_quarantined_on_both_paths(tmp_path: Path, field: str) -> None:
    """A flow whose start or end lies past what a timestamp holds is a bad record, on the fast
    path too: never a row with a missing time (the SQL's null is redone per record)."""
    good = {"start": "1700000000", "end": "1700000060"}
    bad = {**good, field: "253402300800"}  # year 10000
    names = [
        "version",
        "srcaddr",
        "dstaddr",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "action",
        "log-status",
    ]
    line = lambda t: f"5 10.0.0.1 10.0.0.2 443 50000 6 1 40 {t['start']} {t['end']} ACCEPT OK\n"
    p = tmp_path / "flows.log"
    p.write_text(" ".join(names) + "\n" + line(good) * 5 + line(bad))
    fast, t_fast = read(p, True)
    slow, t_slow = read(p, False)
    assert fast.used_fast_path
    assert t_fast.num_rows == t_slow.num_rows == 5
    assert len(fast.quarantine) == len(slow.quarantine) == 1
    assert t_fast.to_pylist() == t_slow.to_pylist()


# --------------------------------------------------------------------------- the declared audit and Hubble mappings
#
# k8s_audit.MAPPING and hubble.MAPPING declare each column once, in Python and in SQL: for any
# values of the fields they read (as text, numbers, booleans, null, lists, objects, or absent),
# the fast path and the per-record path give the same rows, quarantine and skips.

_ANY = st.one_of(
    st.none(),
    st.sampled_from(["", "0", "x", "a/b", "/x", "true", " 403 ", "403.0", "{", "[1]"]),
    st.integers(-3, 3),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.sampled_from([1.5, 403.0, 0.0]),
    st.lists(st.sampled_from(["a", "", 1, None, True]), max_size=3),
    st.dictionaries(
        st.sampled_from(["a", "value", "name", ""]), st.sampled_from(["x", "", 0, None, False, [1]]), max_size=2
    ),
)
_ABSENT = object()


def _value(*good: object) -> st.SearchStrategy[object]:
    """One of a field's good values, or absent."""
    return st.sampled_from([*good, _ABSENT])


def _record(fields: dict[str, st.SearchStrategy[object]]) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not _ABSENT})


def _object(fields: dict[str, st.SearchStrategy[object]]) -> st.SearchStrategy[object]:
    return st.one_of(_record(fields), st.just(_ABSENT))


def _set(record: dict, path: tuple, value: object) -> dict:
    """``record`` with ``value`` at ``path`` (objects on the way made where missing; a list
    index only followed into a list that is there)."""
    out = json.loads(json.dumps(record))
    node = out
    for key in path[:-1]:
        if isinstance(node, dict) and not isinstance(key, int):
            if not isinstance(node.get(key), (dict, list)):
                node[key] = {}
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return out
    last = path[-1]
    if (isinstance(node, dict) and not isinstance(last, int)) or (
        isinstance(node, list) and isinstance(last, int) and last < len(node)
    ):
        node[last] = value
    return out


def _odd(good: st.SearchStrategy[dict], paths: list[tuple]) -> st.SearchStrategy[dict]:
    """A good record with one or two of the fields the mapping reads set to anything: a record
    with an odd value everywhere is redone per record (or quarantined) and says nothing of the
    SQL; one odd value in a good record does."""
    changes = st.lists(st.tuples(st.sampled_from(paths), _ANY), max_size=2)
    return st.builds(lambda r, cs: functools.reduce(lambda acc, c: _set(acc, *c), cs, r), good, changes)


def _json_path(path: str) -> tuple:
    """'$.source.workloads[0].name' → ('source', 'workloads', 0, 'name')."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", path.removeprefix("$.")) if p)


_T = ["2024-05-11T00:00:00Z", "2024-05-11T00:00:01.123456Z", "2024-05-11T00:00:02+02:00"]
_SA = [
    "system:serviceaccount:ns:name",
    "system:serviceaccount::x",
    "system:serviceaccount:ns",
    "system:serviceaccount:a:b:c",
    "alice",
]
_EXTRA = {
    k: _value(["v"], [], ["v", "w"])
    for k in (
        "authentication.kubernetes.io/pod-name",
        "authentication.kubernetes.io/pod-uid",
        "authentication.kubernetes.io/node-name",
        "authentication.kubernetes.io/credential-id",
    )
}
_AUDIT = _record(
    {
        "kind": st.just("Event"),
        "apiVersion": st.just("audit.k8s.io/v1"),
        "auditID": _value("a1", "a2"),
        "stage": _value("ResponseComplete", "RequestReceived"),
        "level": _value("Metadata"),
        "verb": st.one_of(st.just("get"), _value("create")),
        "requestURI": _value(
            "/api/v1/namespaces/x/pods/p/exec?command=sh&command=-c&command=id%20-u",
            "/api/v1/pods?command=",
            "/api/v1/pods",
            "/x?command=a+b#c",
        ),
        "userAgent": _value("kubectl/v1.30"),
        "requestReceivedTimestamp": _value(*_T),
        "stageTimestamp": _value(*_T),
        "timestamp": _value(*_T),
        "metadata": _object({"creationTimestamp": _value(*_T)}),
        "user": _object(
            {
                "username": _value(*_SA),
                "uid": _value("u1"),
                "groups": _value(["system:authenticated"], []),
                "extra": st.one_of(_object(_EXTRA), _value({"k": ["v"]}, {"k": None})),
            }
        ),
        "impersonatedUser": _object({"username": _value("bob"), "groups": _value(["g"])}),
        "sourceIPs": _value(["10.0.0.1", "10.0.0.2"], [], ["10.0.0.3"]),
        "objectRef": _object(
            {
                "resource": _value("pods", "secrets"),
                "subresource": _value("exec", "attach", "log"),
                "namespace": _value("default", ""),
                "name": _value("web-1"),
                "apiGroup": _value("", "apps"),
                "apiVersion": _value("v1"),
            }
        ),
        "responseStatus": _object({"code": _value(200, 403, "403", " 201 "), "reason": _value("Forbidden")}),
        "annotations": _value(
            {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC"}, {"a": 1}, {}
        ),
        "requestObject": _value({"kind": "Pod", "spec": {"containers": []}}, [{"op": "add"}]),
        "responseObject": _value({"kind": "Status", "code": 403}),
    }
)

_AUDIT_PATHS = [(k,) for k in k8s_audit.READ] + [
    (k, f) for k, t in k8s_audit.READ.items() if isinstance(t, dict) for f in t
]
_AUDIT = _odd(_AUDIT, _AUDIT_PATHS + [("user", "extra", k) for k in _EXTRA])

_LABELS = [
    "k8s:app=web",
    "k8s:io.kubernetes.pod.namespace=default",
    "k8s:io.cilium.k8s.policy.cluster=c1",
    "reserved:host",
    "k8s:a=b=c",
    "k8s:=x",
    "k8s:novalue",
    5,
]


def _endpoint() -> st.SearchStrategy[object]:
    return _object(
        {
            "namespace": _value("default", ""),
            "pod_name": _value("web-1", ""),
            "cluster_name": _value("c1", ""),
            "labels": st.one_of(st.lists(st.sampled_from(_LABELS), max_size=4, unique_by=str), _value()),
            "workloads": _value([{"name": "web", "kind": "Deployment"}], [], [{"name": "w"}], ["x"]),
        }
    )


_PORTS = _record({"source_port": _value(443, 0, "80"), "destination_port": _value(8080)})
_FLOW = _record(
    {
        "time": _value(*_T),
        "verdict": _value("FORWARDED", "DROPPED", "AUDIT", "", "NEW"),
        "IP": _object({"source": _value("10.0.0.1"), "destination": _value("10.0.0.2")}),
        "drop_reason_desc": _value("POLICY_DENIED", ""),
        "drop_reason": _value(133, 0, "0"),
        "traffic_direction": _value("INGRESS", "EGRESS", "TRAFFIC_DIRECTION_UNKNOWN"),
        "node_name": _value("k8s1", "c1/k8s1", "/k8s1", "c1/"),
        "source": _endpoint(),
        "destination": _endpoint(),
        "l4": st.dictionaries(st.sampled_from(["TCP", "UDP", "ICMPv4", "SCTP", "GRE", ""]), _PORTS, max_size=2),
        "l7": _object(
            {
                "dns": _value({"query": "a.example."}, {}),
                "http": _value({"method": "GET", "url": "/", "code": 200}, {"code": "404"}),
                "kafka": _value({"topic": "t"}, {}),
            }
        ),
        "source_service": _object({"name": _value("svc", ""), "namespace": _value("default", "")}),
        "destination_service": _object({"name": _value("svc"), "namespace": _value("default")}),
        "is_reply": _value(True, False, {"value": True}, {}),
        "reply": _value(True, False),
        "destination_names": _value(["a.example"], []),
    }
)
_FLOW_PATHS = sorted(
    {p[: i + 1] for p in map(_json_path, hubble._TEXT_PATHS + hubble._JSON_PATHS) for i in range(len(p))}, key=str
)
_HUBBLE = _odd(
    _record({"flow": _FLOW, "node_name": _value("k8s2", "c2/k8s2", "", "/x"), "time": _value(*_T)}),
    [("flow", *p) for p in _FLOW_PATHS] + [("node_name",), ("time",), ("flow", "l4", "TCP", "source_port")],
)


def _both_paths_agree(name: str, first: dict, records: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / name
        p.write_text("".join(json.dumps(r) + "\n" for r in [first, *records]))
        fast, t_fast = read(p, True)
        slow, t_slow = read(p, False)
    assert fast.used_fast_path and fast.format is slow.format
    assert fast.fast_fallback is None, fast.fast_fallback  # the SQL ran to the end: what is equal was compared
    assert t_fast.to_pylist() == t_slow.to_pylist()
    assert fast.quarantine == slow.quarantine
    assert fast.result.skipped == slow.result.skipped


@settings(max_examples=80, deadline=None)
@given(events=st.lists(_AUDIT, min_size=1, max_size=6))
def test_audit_mapping_fast_and_per_record_agree_for_any_field_values(events: list[dict]) -> None:
    first = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "first",
        "verb": "get",
        "stageTimestamp": _T[0],
    }
    _both_paths_agree("audit.jsonl", first, events)


@settings(max_examples=80, deadline=None)
@given(flows=st.lists(_HUBBLE, min_size=1, max_size=6))
def test_hubble_mapping_fast_and_per_record_agree_for_any_field_values(flows: list[dict]) -> None:
    _both_paths_agree("flows.jsonl", {"flow": {"time": _T[0], "verdict": "FORWARDED"}}, flows)


@settings(max_examples=30, deadline=None)
@given(record=_HUBBLE)
def test_hubble_extra_without_the_consumed_fields_is_the_same_on_both_paths(record: dict) -> None:
    """What a later change turns on (extra leaves out the fields the columns stand for) is built
    from the mapping the same way on both paths."""
    column = hubble._extra(hubble.CONSUMED)
    row = compile_row("extra_row", "f, record", {}, {"extra": column}, namespace=hubble._NAMES)
    flow = record["flow"]
    con = duckdb.connect()
    (sql,) = con.execute(f"SELECT {column.sql} FROM (SELECT ?::JSON AS flow)", [json.dumps(flow)]).fetchone()
    assert sql == row(flow, record)["extra"]
    assert not set(json.loads(sql)) & hubble.CONSUMED
