"""New internal edges, a low-severity baseline deviation, come as one finding per endpoint
pair and hour: readable in bulk, bounded in evidence, with stable and unique ids."""

from __future__ import annotations

import pandas as pd

from k8sforensics.detect import Evidence
from k8sforensics.detect import flow_rules as fr
from k8sforensics.detect.engine import run_rules
from tests.event_frames import frame

NODES = pd.DataFrame(
    {"name": ["node-1"], "internal_ips": [["10.0.1.11"]], "external_ips": [None], "pod_cidrs": [["10.244.0.0/16"]]}
)
RULE = next(r for r in fr.FLOW_RULES if r.id == "net-new-internal-edge")


def edge(time: str, src: tuple[str, str, str | None], dst: tuple[str, str, str | None], port: int, **kw) -> dict:
    """A flow from (namespace, pod, workload) to (namespace, pod, workload)."""
    return {
        "time": time,
        "src_ip": kw.pop("src_ip", "10.244.1.10"),
        "dst_ip": kw.pop("dst_ip", "10.244.2.20"),
        "src_port": 45000,
        "dst_port": port,
        "protocol": "tcp",
        "verdict": "allowed",
        "is_reply": False,
        "source": "hubble",
        "src_namespace": src[0],
        "src_pod": src[1],
        "src_workload": src[2],
        "src_kind": "pod",
        "dst_namespace": dst[0],
        "dst_pod": dst[1],
        "dst_workload": dst[2],
        "dst_kind": "pod",
        **kw,
    }


WEB, API, DB = ("shop", "web-1", "web"), ("pay", "api-1", "api"), ("pay", "db-0", "db")
BASELINE = [edge("2026-01-01T08:00:00Z", WEB, API, 8443)]  # learned in the first hour


def findings(*rows: dict) -> pd.DataFrame:
    out, _ = run_rules(Evidence(flows=frame("flows", *BASELINE, *rows), context={"nodes": NODES}), [RULE])
    return out


def test_many_new_ports_between_two_workloads_in_an_hour_are_one_finding() -> None:
    rows = [edge(f"2026-01-01T10:{i:02d}:00Z", WEB, DB, 5000 + i) for i in range(40)] + [
        edge("2026-01-01T10:59:00Z", WEB, DB, 5000)
    ]
    got = findings(*rows)
    assert len(got) == 1
    f = got.iloc[0]
    assert (f.entity_type, f.entity, f.event_count) == ("workload", "shop/web", 40)
    assert (
        "40 new connection(s) from shop/web to pay/db" in f.summary
        and "41 flow(s)" in f.summary
        and "and 30 more" in f.summary
    )


def test_hours_and_pairs_are_kept_apart_and_the_baseline_is_not_new() -> None:
    rows = [
        edge("2026-01-01T10:05:00Z", WEB, DB, 5432),
        edge("2026-01-01T11:05:00Z", WEB, DB, 6379),
        edge("2026-01-01T10:06:00Z", API, DB, 5432),
        edge("2026-01-01T10:07:00Z", WEB, API, 8443),
    ]
    got = findings(*rows)
    assert sorted(zip(got.entity, got.time.dt.hour)) == [("pay/api", 10), ("shop/web", 10), ("shop/web", 11)]
    assert got.finding_id.is_unique


def test_ids_are_stable_and_evidence_is_bounded() -> None:
    rows = [
        edge(f"2026-01-01T10:{i // 4:02d}:{i % 4 * 15:02d}Z", WEB, DB, 1000 + i, event_id=f"e:{i}")
        for i in range(fr.EDGE_EVIDENCE + 50)
    ]
    one, two = findings(*rows), findings(*reversed(rows))
    assert one.finding_id.tolist() == two.finding_id.tolist() and len(one) == 1
    assert (
        one.event_count.iloc[0] == fr.EDGE_EVIDENCE
        and f"{fr.EDGE_EVIDENCE + 50} new connection(s)" in one.summary.iloc[0]
    )
    assert f"the first {fr.EDGE_EVIDENCE} new ones are the evidence" in one.summary.iloc[0]


def test_without_a_workload_the_pod_or_node_names_the_end_and_unnamed_pod_addresses_are_left_out() -> None:
    bare = ("pay", "debug-pod", None)
    rows = [
        edge("2026-01-01T10:00:00Z", bare, DB, 5432),
        edge(
            "2026-01-01T10:01:00Z", (None, None, None), DB, 5432, src_ip="10.0.1.11", src_kind="node", src_node="node-1"
        ),
        # a pod address no lifetime covers: some pod we cannot name, not an endpoint of its own
        edge("2026-01-01T10:02:00Z", (None, None, None), DB, 5432, src_ip="10.244.7.7", src_kind="internal"),
        # an address in the VPC outside the pod network (a managed database): an endpoint
        edge("2026-01-01T10:03:00Z", WEB, (None, None, None), 5432, dst_ip="10.50.0.9", dst_kind="internal"),
        # outside: not an internal edge at all
        edge("2026-01-01T10:04:00Z", WEB, (None, None, None), 443, dst_ip="203.0.113.7", dst_kind="external"),
    ]
    got = findings(*rows)
    assert sorted(zip(got.entity_type, got.entity)) == [
        ("node", "node-1"),
        ("pod", "pay/debug-pod"),
        ("workload", "shop/web"),
    ]
    assert "to 10.50.0.9" in got.loc[got.entity == "shop/web", "summary"].iloc[0]


def test_replies_make_no_edge() -> None:
    rows = [edge("2026-01-01T10:00:00Z", DB, WEB, 45000, src_port=5432, is_reply=None)]  # the database answering
    assert findings(*rows).empty
