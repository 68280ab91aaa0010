"""Bodies parsed after the loaders have a size and a depth bound: a body nested 2,000 levels
deep or 50 MB large is left unread with a reason — in the helper, the pod-lifetime rebuild and
the inventory builder — never a RecursionError or a crash."""

from __future__ import annotations

import logging
import math

import orjson
import pandas as pd
import pyarrow as pa
import pytest

from k8sforensics.bodies import (
    MAX_BODY_DEPTH,
    NOT_JSON,
    NOT_OBJECT,
    TOO_DEEP,
    TOO_LARGE,
    Body,
    UnreadableBodies,
    parse_body,
)
from k8sforensics.context.inventory import Inventory, build_context
from k8sforensics.context.lifetimes import fold_pods, pods_from_all_sources
from k8sforensics.schema import OBJECTS
from tests.event_frames import audit, frame

FIFTY_MB = 50 * 1024 * 1024


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


def test_parse_body_reads_json_and_says_why_it_does_not() -> None:
    assert parse_body('{"a": [1, {"b": 2}]}') == Body({"a": [1, {"b": 2}]}, None)
    assert (
        parse_body(None) == Body(None, None)
        and parse_body("") == Body(None, None)
        and parse_body(float("nan")) == Body(None, None)
    )
    assert parse_body("{not json") == Body(None, NOT_JSON)
    # what orjson refuses and the standard library reads
    assert math.isnan(parse_body('{"n": NaN}').value["n"])
    assert parse_body(nested(MAX_BODY_DEPTH)).reason is None
    for depth in (MAX_BODY_DEPTH + 1, 1024, 1025, 2000, 100_000):  # below, at and past orjson's own limit (1,024)
        assert parse_body(nested(depth)) == Body(None, TOO_DEEP), depth
        assert parse_body("[" * depth + "]" * depth).reason == TOO_DEEP
    # too deep and only the standard library would read it (NaN): measured before json recurses
    assert parse_body('{"x": NaN, "y": ' + "[" * 2000 + "]" * 2000 + "}").reason == TOO_DEEP
    # brackets inside strings are not nesting
    assert parse_body(orjson.dumps({"s": "[" * 5000}).decode()).reason is None
    assert parse_body(nested(5), max_depth=4).reason == TOO_DEEP
    assert parse_body('{"s": "' + "x" * 100 + '"}', max_bytes=50) == Body(None, TOO_LARGE)
    assert parse_body('{"s": "' + "é" * 40 + '"}', max_bytes=60).reason == TOO_LARGE  # bytes of UTF-8, not characters


def test_a_fifty_megabyte_body_is_not_parsed() -> None:
    big = '{"a": "' + "x" * FIFTY_MB + '"}'
    assert parse_body(big) == Body(None, TOO_LARGE)
    assert parse_body(big.encode()) == Body(None, TOO_LARGE)


def test_the_collector_counts_each_event_once_and_summarises() -> None:
    bodies = UnreadableBodies(keep=1)
    for _ in range(3):  # detection reads a body once per chunk pass: it counts once
        assert bodies.parse(nested(2000), where="x", event_id="ev:1") is None
    assert bodies.parse("nope", where="y") is None
    assert bodies.parse('{"ok": 1}', where="y", event_id="ev:2") == {"ok": 1}
    summary = bodies.summary()
    assert summary["total"] == bodies.total == 2
    assert summary["by_reason"] == {TOO_DEEP: 1, NOT_JSON: 1} and summary["by_where"] == {"x": 1, "y": 1}
    assert summary["examples"] == [{"where": "x", "event_id": "ev:1", "reason": TOO_DEEP}]
    orjson.dumps(summary)  # ready for the manifest


def _pod_create(name: str, body: str, t: str = "2026-01-01T10:00:00Z") -> dict:
    return {
        **audit(t, "system:admin", "create", "pods", object_namespace="ns", object_name=name, code=201),
        "request_object": body,
    }


def _status(name: str, body: str, t: str) -> dict:
    return {
        **audit(t, "system:node:n1", "patch", "pods", object_namespace="ns", object_name=name, subresource="status"),
        "request_object": body,
    }


def test_fold_pods_and_pods_from_all_sources_survive_a_2000_level_request_object(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deep = '{"metadata": {"name": "deep", "labels": ' + nested(2000) + '}, "spec": {"nodeName": "n1"}}'
    good = orjson.dumps(
        {
            "metadata": {
                "name": "good",
                "uid": "u-good",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d9c7b", "controller": True}],
                "labels": {"pod-template-hash": "5d9c7b"},
            },
            "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "i"}]},
        }
    ).decode()
    a = frame(
        "audit",
        _pod_create("deep", deep),
        _pod_create("good", good),
        _status("deep", '{"status": {"podIP": "10.0.0.5"}}', "2026-01-01T10:00:03Z"),
        _status("good", '{"status": {"podIP": "10.0.0.6"}}', "2026-01-01T10:00:04Z"),
        _status(
            "third",
            '{"status": {"podIP": "10.0.0.7", "containerStatuses": ' + nested(2000) + "}}",
            "2026-01-01T10:00:05Z",
        ),
    )
    bodies = UnreadableBodies()
    with caplog.at_level(logging.WARNING, logger="k8sforensics.bodies"):
        pod_ips, _, _ = fold_pods(None, a, unreadable=bodies)
    # the requests still count: both pods exist, the deep one from its create, its IP from its readable status
    by_pod = pod_ips.set_index("pod")
    assert by_pod.loc["deep", "ip"] == "10.0.0.5" and pd.isna(by_pod.loc["deep", "node"])
    assert by_pod.loc["good", "node"] == "n2" and by_pod.loc["good", "workload"] == "web"
    assert "third" not in by_pod.index  # its only status body was unread: no IP known
    assert bodies.by_reason == {TOO_DEEP: 2} and bodies.by_where == {"pod lifetimes": 2}
    assert {e["event_id"] for e in bodies.examples} == {a.loc[0, "event_id"], a.loc[4, "event_id"]}
    assert "pod lifetimes: 2 body(ies) left unread (too deep: 2)" in caplog.text

    rows = pods_from_all_sources(pd.DataFrame(columns=["namespace", "name"]), a, pod_ips, "c", unreadable=bodies)
    got = {r["name"]: r for r in rows}
    assert set(got) == {"deep", "good"}
    assert got["deep"]["labels"] is None and got["deep"]["created"] == "2026-01-01T10:00:00+00:00"  # name and time only
    assert got["good"]["node"] == "n2"
    assert bodies.by_where == {"pod lifetimes": 2, "pods from audit": 1}


def test_fold_pods_without_a_collector_still_logs(caplog: pytest.LogCaptureFixture) -> None:
    a = frame("audit", _pod_create("deep", nested(2000)))
    with caplog.at_level(logging.WARNING, logger="k8sforensics.bodies"):
        fold_pods(None, a)
    assert "too deep: 1" in caplog.text


def test_a_fifty_megabyte_pod_create_is_skipped_with_a_reason() -> None:
    big = '{"metadata": {"name": "big"}, "spec": {"nodeName": "n1", "x": "' + "x" * FIFTY_MB + '"}}'
    a = frame(
        "audit", _pod_create("big", big), _status("big", '{"status": {"podIP": "10.0.0.7"}}', "2026-01-01T10:00:01Z")
    )
    bodies = UnreadableBodies()
    pod_ips, _, _ = fold_pods(None, a, unreadable=bodies)
    assert pod_ips["pod"].tolist() == ["big"] and pd.isna(pod_ips.loc[0, "node"])
    rows = pods_from_all_sources(pd.DataFrame(columns=["namespace", "name"]), a, pod_ips, "c", unreadable=bodies)
    assert [r["name"] for r in rows] == ["big"]
    assert bodies.by_reason == {TOO_LARGE: 2}


def _objects(*objects: str) -> pa.Table:
    rows = [
        {"cluster": "c", "kind": "Pod", "object": o, "evidence_id": "sha", "evidence_line": i + 1}
        for i, o in enumerate(objects)
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema([f for f in OBJECTS.arrow_schema if f.name in rows[0]]))


def test_the_inventory_builder_leaves_out_an_object_with_a_deep_field() -> None:
    good = orjson.dumps(
        {
            "kind": "Pod",
            "metadata": {"name": "ok", "namespace": "n", "labels": {"app": "x"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
        }
    ).decode()
    deep = (
        '{"kind": "Pod", "metadata": {"name": "deep", "namespace": "n"}, "spec": {"containers": [{"name": "c", "env": '
        + nested(2000)
        + "}]}}"
    )
    # within the bound, but deeper than the label map: written back as JSON text, no recursion past the bound
    mid = (
        '{"kind": "Pod", "metadata": {"name": "mid", "namespace": "n", "labels": {"app": '
        + nested(MAX_BODY_DEPTH - 3)
        + "}}}"
    )
    big = '{"kind": "Pod", "metadata": {"name": "big", "namespace": "n"}, "x": "' + "x" * FIFTY_MB + '"}'
    bodies = UnreadableBodies()
    tables = build_context(_objects(good, deep, mid, big, "[1, 2]", "{broken"), unreadable=bodies)
    assert tables["pods"].column("name").to_pylist() == ["ok", "mid"]
    assert bodies.by_reason == {TOO_DEEP: 1, TOO_LARGE: 1, NOT_OBJECT: 1, NOT_JSON: 1}
    assert [e["event_id"] for e in bodies.examples] == ["sha:2", "sha:4", "sha:5", "sha:6"]
    # the Inventory API the same way
    inventory = Inventory.from_objects(_objects(good, deep))
    assert inventory.pods["name"].tolist() == ["ok"]
