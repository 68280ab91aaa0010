"""Every value is typed against the table's schema: what can be typed without changing it is,
what cannot is quarantined with the field and the value named — never a traceback, never a
value wrapped or truncated into another one."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import k8sforensics as kf
from k8sforensics.errors import BadRecordError
from k8sforensics.schema import AUDIT, FLOWS, RUNTIME
from k8sforensics.sources import open_reader
from k8sforensics.sources._arrow import (
    OK,
    OUT_OF_RANGE,
    UNPARSEABLE,
    TimeRange,
    parse_times,
    type_rows,
)
from k8sforensics.sources._driver import Reader
from k8sforensics.sources._values import Epoch

from ..conftest import FIXTURES

T = "2024-05-11T00:00:00Z"
QUIRKS = FIXTURES / "quirks"  # one tiny file per format and quirk


def read(path: Path, **kw):
    reader = open_reader(path, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(reader.batches())
    r = reader.result
    table = pa.Table.from_batches(batches, schema=reader.table_for(reader.format).arrow_schema)
    assert table.num_rows + r.merged + sum(r.skipped.values()) + r.quarantined == r.records
    return reader, table


def reasons(reader) -> dict[int, str]:
    return {q["evidence_line"]: q["reason"] for q in reader.quarantine}


def audit_event(**changes) -> dict:
    ev = json.loads((FIXTURES / "audit" / "k8s_audit__bad_lines.jsonl").read_text().splitlines()[0])
    ev.update(changes)
    return ev


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, "5"),
        (1.5, "1.5"),
        (True, "true"),
        (["a", 1], '["a",1]'),
        ({"a": {"b": None}}, '{"a":{"b":null}}'),
        ("x", "x"),
    ],
)
def test_text_columns_take_the_json_text_of_other_values(value, expected) -> None:
    batch, bad = type_rows([{"time": T, "output": value}], RUNTIME)
    assert not bad and batch.column("output").to_pylist() == [expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(443, 443), (443.0, 443), ("443", 443), (" 443 ", 443), ("443.0", 443), ("1e3", 1000), (-1, -1)],
)
def test_integers_from_integral_numbers_and_numeric_text(value, expected) -> None:
    batch, bad = type_rows([{"time": T, "dst_port": value}], RUNTIME)
    assert not bad and batch.column("dst_port").to_pylist() == [expected]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-62135596800, "field dst_port: value -62135596800 out of range for int32"),
        (2**31, "field dst_port: value 2147483648 out of range for int32"),
        (float("inf"), "field dst_port: value inf is not a finite number"),
        (float("nan"), "field dst_port: value nan is not a finite number"),
        ("1e400", "field dst_port: value '1e400' is not a finite number"),
        ("-1e400", "field dst_port: value '-1e400' is not a finite number"),
        ("NaN", "field dst_port: value 'NaN' is not a finite number"),
        (1.5, "field dst_port: value 1.5 is not an integer"),
        ("80.5", "field dst_port: value '80.5' is not an integer"),
        (True, "field dst_port: value true is not an integer"),
        ("http", "field dst_port: value 'http' is not an integer"),
        ([80], "field dst_port: value [80] is not an integer"),
        ("9" * 50, "field dst_port: value '" + "9" * 50 + "' out of range for int32"),
        ("0x50", "field dst_port: value '0x50' is not an integer"),
        ("99999999999", "field dst_port: value '99999999999' out of range for int32"),
    ],
)
def test_integers_that_do_not_fit_are_bad(value, reason) -> None:
    batch, bad = type_rows([{"time": T, "dst_port": 1}, {"time": T, "dst_port": value}], RUNTIME)
    assert batch.num_rows == 1 and bad == {1: reason}


def test_numeric_text_column_vectorised_and_value_by_value_agree() -> None:
    batch, bad = type_rows([{"time": T, "dst_port": v} for v in ("80", None, "-5", "080")], RUNTIME)
    assert not bad and batch.column("dst_port").to_pylist() == [80, None, -5, 80]
    batch, bad = type_rows([{"time": T, "dst_port": v} for v in ("80", "0x50", "+7")], RUNTIME)
    assert batch.column("dst_port").to_pylist() == [80, 7] and bad == {
        1: "field dst_port: value '0x50' is not an integer"
    }


def test_int64_range_and_the_vectorised_path_agree() -> None:
    rows = [{"time": T, "pid": v} for v in (2**63 - 1, -(2**63), 2**63)]
    batch, bad = type_rows(rows, RUNTIME)
    assert batch.column("pid").to_pylist() == [2**63 - 1, -(2**63)]
    assert bad == {2: "field pid: value 9223372036854775808 out of range for int64"}


def test_lists_maps_and_booleans() -> None:
    rows = [
        {"time": T, "tags": ["a", 1, None, {"k": True}], "labels": {"app": {"x": 1}, "n": 5}},
        {"time": T, "tags": "T1059"},
        {"time": T, "labels": ["app=x"]},
        {"time": T, "labels": {"app": "\ud800"}},
    ]
    batch, bad = type_rows(rows, RUNTIME)
    assert batch.column("tags").to_pylist() == [["a", "1", None, '{"k":true}']]
    assert batch.column("labels").to_pylist() == [[("app", '{"x":1}'), ("n", "5")]]
    assert bad == {
        1: "field tags: value 'T1059' is not a list",
        2: 'field labels: value ["app=x"] is not an object',
        3: "field labels: under key 'app': value '\ud800' is not valid Unicode text",
    }
    flows, bad = type_rows([{"time": T, "is_reply": "true"}, {"time": T, "is_reply": 1}], FLOWS)
    assert flows.column("is_reply").to_pylist() == [True] and bad == {1: "field is_reply: value 1 is not a boolean"}


def test_list_valued_map_refuses_a_text_value() -> None:
    # pa.array alone would split 'v' into ['v'] (and 'ab' into ['a', 'b'])
    batch, bad = type_rows([{"time": T, "user_extra": {"k": "ab"}}, {"time": T, "user_extra": {"k": ["a", 2]}}], AUDIT)
    assert bad == {0: "field user_extra: under key 'k': value 'ab' is not a list"}
    assert batch.column("user_extra").to_pylist() == [[("k", ["a", "2"])]]


def test_text_list_refuses_text_rather_than_splitting_it() -> None:
    batch, bad = type_rows([{"time": T, "tags": "ab"}], RUNTIME)
    assert batch.num_rows == 0 and bad == {0: "field tags: value 'ab' is not a list"}


def test_deep_value_in_a_text_column() -> None:
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    _, bad = type_rows([{"time": T, "output": deep}], RUNTIME)
    assert bad == {0: "field output: value nested too deeply to store as text"}


# --------------------------------------------------------------------------- times


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T00:00:00Z",
        "9999-12-31",
        253402300800,
        "10000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        float("inf"),
        Epoch(253402300800, "s"),
        Epoch("253402300800", "s"),
    ],
)
def test_times_outside_the_range_are_never_wrapped(value) -> None:
    arr, status = parse_times([T, value])
    assert status.tolist() == [OK, OUT_OF_RANGE]
    assert arr.to_pylist()[1] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
        ("2099-12-31T23:59:59.999999999Z", "2099-12-31T23:59:59.999999999Z"),
        ("2024-05-01 10:00:00.38", "2024-05-01T10:00:00.38Z"),
        (1714557600, "2024-05-01T10:00:00Z"),
        (1714557600123, "2024-05-01T10:00:00.123Z"),
        (1714557600123456, "2024-05-01T10:00:00.123456Z"),
        (1714557600123456789, "2024-05-01T10:00:00.123456789Z"),
        (Epoch("1714557600", "s"), "2024-05-01T10:00:00Z"),
        (Epoch(1714557600123, "ms"), "2024-05-01T10:00:00.123Z"),
    ],
)
def test_times_just_inside_the_range_and_every_spelling_are_kept(value, expected) -> None:
    arr, status = parse_times([value])
    assert status.tolist() == [OK]
    assert arr.to_pylist()[0] == pd.Timestamp(expected)


def test_unparseable_and_missing_times() -> None:
    _, status = parse_times(["yesterday", True, [1], float("nan"), None, Epoch("x", "s")])
    assert status.tolist() == [UNPARSEABLE] * 4 + [0, UNPARSEABLE]


def test_time_range_is_configurable_and_clamped() -> None:
    rng = TimeRange.of(("2024-01-01", None))
    _, status = parse_times(["2023-12-31T23:59:59Z", "2200-01-01T00:00:00Z", "9999-12-31T00:00:00Z"], rng)
    assert status.tolist() == [OUT_OF_RANGE, OK, OUT_OF_RANGE]  # no range goes past what timestamp[ns] holds
    with pytest.raises(ValueError, match="empty"):
        TimeRange.of(("2024-01-01", "2023-01-01"))


@pytest.mark.parametrize("fast", [True, False])
def test_out_of_range_audit_times_are_quarantined_with_their_text(tmp_path: Path, fast: bool) -> None:
    """The three wrapped dates once stored: 0001-01-01 as 1754-08-30, 9999-12-31 as 1816-03-30,
    epoch seconds 253402300800 as 1978-01-11. Now each is quarantined with its text."""
    lines = [
        audit_event(auditID="ok"),
        audit_event(
            auditID="zero", requestReceivedTimestamp="0001-01-01T00:00:00Z", stageTimestamp="0001-01-01T00:00:00Z"
        ),
        audit_event(
            auditID="max", requestReceivedTimestamp="9999-12-31T00:00:00Z", stageTimestamp="9999-12-31T00:00:00Z"
        ),
        audit_event(auditID="epoch", requestReceivedTimestamp=253402300800, stageTimestamp=253402300800),
        audit_event(
            auditID="edge", requestReceivedTimestamp="1970-01-01T00:00:00Z", stageTimestamp="2099-12-31T23:59:59Z"
        ),
        audit_event(auditID="late", stageTimestamp="9999-12-31T00:00:00Z"),
    ]
    p = tmp_path / "audit.jsonl"
    p.write_text("".join(json.dumps(ev) + "\n" for ev in lines))
    reader, table = read(p, fast=fast)
    assert sorted(table.column("audit_id").to_pylist()) == ["edge", "ok"]
    assert reasons(reader) == {
        2: "field time: timestamp '0001-01-01T00:00:00Z' outside the accepted range 1970-01-01..2100-01-01",
        3: "field time: timestamp '9999-12-31T00:00:00Z' outside the accepted range 1970-01-01..2100-01-01",
        4: "field time: timestamp 253402300800 (read as epoch s) outside the accepted range 1970-01-01..2100-01-01",
        6: "field stage_time: timestamp '9999-12-31T00:00:00Z' outside the accepted range 1970-01-01..2100-01-01",
    }
    years = {t.year for t in table.column("time").to_pylist() + table.column("stage_time").to_pylist()}
    assert years <= {1970, 2024, 2099}


def test_reader_time_range(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    p.write_text(
        json.dumps(audit_event(requestReceivedTimestamp="2019-06-01T00:00:00Z"))
        + "\n"
        + json.dumps(audit_event())
        + "\n"
    )
    reader = Reader(
        p,
        kf.sources.hash_file(p),
        kf.sources.formats("audit"),
        table=kf.sources.table_for,
        time_range=("2020-01-01", "2030-01-01"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = sum(b.num_rows for b in reader.batches())
    assert rows == 1 and reasons(reader) == {
        1: "field time: timestamp '2019-06-01T00:00:00Z' outside the accepted range 2020-01-01..2030-01-01"
    }


# --------------------------------------------------------------------------- the defects, per format


@pytest.mark.parametrize("fast", [True, False])
def test_on_bad_lines_error_stops_at_the_first_bad_record(tmp_path: Path, fast: bool) -> None:
    """A missing time (found when the rows are typed) on line 4 comes before a JSON error on
    line 6: 'error' names line 4, the record 'warn' quarantines first."""
    good = json.dumps(audit_event())
    no_time = json.dumps({k: v for k, v in audit_event().items() if "Timestamp" not in k})
    p = tmp_path / "audit.jsonl"
    p.write_text("".join(line + "\n" for line in (good, good, good, no_time, good, '{"truncated', good)))
    reader, _ = read(p, fast=fast)
    assert min(reasons(reader)) == 4
    with pytest.raises(BadRecordError, match=r"audit\.jsonl:4: field time: no timestamp in the record") as e:
        list(open_reader(p, on_bad_lines="error", fast=fast).batches())
    assert e.value.line == 4


@pytest.mark.parametrize("fast", [True, False])
def test_on_bad_lines_error_on_a_type_found_late(tmp_path: Path, fast: bool) -> None:
    good = json.dumps(audit_event())
    p = tmp_path / "audit.jsonl"
    p.write_text(
        "".join(
            line + "\n" for line in (good, json.dumps(audit_event(responseStatus={"code": 1e10})), "not json", good)
        )
    )
    with pytest.raises(BadRecordError, match=r":2: field response_code: value 10000000000.0 out of range for int32"):
        list(open_reader(p, on_bad_lines="error", fast=fast).batches())


@pytest.mark.parametrize("fast", [True, False])
def test_audit_fixture_with_out_of_range_times(fast: bool) -> None:
    reader, table = read(QUIRKS / "k8s_audit__bad_out_of_range_times.jsonl", fast=fast)
    assert sorted(table.column("audit_id").to_pylist()) == ["t0", "t4"]  # t4: 1970-01-01T00:00:00Z, just inside
    assert reasons(reader) == {
        2: "field time: timestamp '0001-01-01T00:00:00Z' outside the accepted range 1970-01-01..2100-01-01",
        3: "field time: timestamp '9999-12-31T00:00:00Z' outside the accepted range 1970-01-01..2100-01-01",
        4: "field time: timestamp 253402300800 (read as epoch s) outside the accepted range 1970-01-01..2100-01-01",
    }


def test_falco_output_number() -> None:
    reader, table = read(QUIRKS / "falco__bad_output_number.jsonl")
    assert table.column("output").to_pylist()[1] == "5"
    assert table.column("pid").to_pylist() == [4242, 4243]  # '4243' is numeric text
    assert reasons(reader) == {3: "field pid: value 'pid-4244' is not an integer"}


def test_tetragon_cwd_list_and_pod_float() -> None:
    reader, table = read(QUIRKS / "tetragon__cwd_list_pod_float.jsonl")
    assert table.column("cwd").to_pylist() == ["/app/", '["/app","/tmp"]', "/app/"]
    assert table.column("pod").to_pylist() == ["cart-5c7b9", "cart-5c7b9", "1.5"]
    assert not reader.quarantine


def test_tracee_container_name_bool() -> None:
    reader, table = read(QUIRKS / "tracee__container_name_bool.jsonl")
    assert table.column("container").to_pylist() == ["cart", "true"] and not reader.quarantine


def test_kubectl_node_label_object_reaches_the_inventory() -> None:
    """The inventory build (rows_to_batch) aborted on a label value that is an object."""
    from k8sforensics.context import read_inventory

    path = QUIRKS / "kubectl__node_label_object.json"
    _, table = read(path)
    labels = dict(next(x for x in table.column("labels").to_pylist() if x and any(k == "example/gpu" for k, _ in x)))
    assert labels["topology.example/zone"] == '{"name":"z1","rack":7}' and labels["example/gpu"] == "true"
    nodes = read_inventory(path).nodes
    assert nodes.iloc[0]["labels"]["topology.example/zone"] == '{"name":"z1","rack":7}'


@pytest.mark.parametrize("fast", [True, False])
def test_traffic_analytics_ports_and_a_bare_cr(fast: bool) -> None:
    reader, table = read(QUIRKS / "azure_traffic_analytics__bad_ports_cr.csv", fast=fast)
    assert reasons(reader) == {
        3: "field dst_port: value '-62135596800' out of range for int32",
        4: "field dst_port: value '1e400' is not a finite number",
    }
    assert table.column("dst_port").to_pylist() == [443, 6379]
    # the CR is data, kept in its field (FlowType goes to extra)
    assert json.loads(table.column("extra").to_pylist()[1])["FlowType"] == "Intra\rVNet"


@pytest.mark.parametrize("fast", [True, False])
def test_numbers_no_float_holds_keep_their_text(tmp_path: Path, fast: bool) -> None:
    """1e400 is valid JSON and NaN/Infinity are what Python and JavaScript tools write: the
    record is read (orjson refused it, DuckDB read it); a text column keeps the number as
    written, an integer column quarantines it. Integers past 64 bits keep every digit (orjson
    read them as floats)."""
    base = json.dumps(audit_event(auditID="a"))
    lines = [
        base,
        base.replace('"level": "Metadata"', '"level": 1e400').replace('"a"', '"b"'),
        base.replace('"level": "Metadata"', '"level": NaN').replace('"a"', '"c"'),
        base.replace('"level": "Metadata"', '"level": 123456789012345678901234567890').replace('"a"', '"d"'),
        base.replace('"level": "Metadata"', '"level": -9223372036854775809').replace('"a"', '"e"'),
        json.dumps(audit_event(auditID="f", responseStatus={"code": 1})).replace('"code": 1', '"code": 1e400'),
    ]
    p = tmp_path / "audit.jsonl"
    p.write_text("".join(line + "\n" for line in lines))
    reader, table = read(p, fast=fast)
    levels = dict(zip(table.column("audit_id").to_pylist(), table.column("level").to_pylist()))
    assert levels == {
        "a": "Metadata",
        "b": "1e400",
        "c": "NaN",
        "d": "123456789012345678901234567890",
        "e": "-9223372036854775809",
    }
    assert reasons(reader) == {6: "field response_code: value 1e400 is not a finite number"}


def test_hubble_verdict_false_is_a_verdict(tmp_path: Path) -> None:
    flow = json.loads((FIXTURES / "flows" / "hubble__flows.jsonl").read_text().splitlines()[0])
    flow["flow"]["verdict"] = False
    p = tmp_path / "hubble.jsonl"
    p.write_text(json.dumps(flow) + "\n")
    for fast in (True, False):
        _, table = read(p, fast=fast)
        assert (table.column("verdict").to_pylist(), table.column("verdict_raw").to_pylist()) == (
            ["unknown"],
            ["false"],
        )
