"""The evidence a rule reads: the parts a reduction makes of it keep what they must of the
original (its case for ``sql``, its settings, start and record of unreadable bodies)."""

from __future__ import annotations

import pandas as pd

from k8sforensics.detect import Evidence, FlowRows
from tests.event_frames import audit, frame


def test_part_holds_only_its_rows_and_shares_the_rest() -> None:
    table = frame(
        "audit",
        audit("2026-01-01T10:00:00Z", "alice", "get", "pods"),
        audit("2026-01-01T11:00:00Z", "bob", "get", "pods"),
    )
    ev = Evidence(audit=table, settings={"scan_min_targets": 3})
    part = ev.part(audit=table.iloc[1:])
    assert len(part.audit) == 1 and part.runtime.empty and part.flows.empty and part.case is None
    assert (
        part.start() == ev.start() == pd.Timestamp("2026-01-01T10:00:00Z")
    )  # the whole evidence's start, not the part's
    assert part.settings["scan_min_targets"] == 3 and part.unreadable is ev.unreadable


def test_with_rows_keeps_the_flows_and_replaces_audit_and_runtime() -> None:
    flows = frame("flows", {"time": "2026-01-01T09:00:00Z", "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 80})
    table = frame("audit", audit("2026-01-01T10:00:00Z", "alice", "get", "pods"))
    ev = Evidence(audit=table, flows=flows)
    kept = ev.with_rows(audit=table.iloc[:0], runtime=ev.runtime)
    assert kept.audit.empty and len(kept.flows) == 1 and kept.start() == pd.Timestamp("2026-01-01T09:00:00Z")
    assert not kept.reads_case("audit")  # no case: nothing is read from one


def test_flow_rows_are_kept_in_one_pass_for_every_planned_part() -> None:
    flows = frame(
        "flows",
        *[
            {
                "time": f"2026-01-01T10:{10 * i:02d}:00Z",
                "src_ip": "10.0.0.1",
                "dst_ip": "203.0.113.9",
                "dst_port": 443 + i,
            }
            for i in range(4)
        ],
    )
    passes = []
    low = FlowRows("low", keep=lambda c: passes.append(1) or c.rows[c.rows["dst_port"] < 445])
    outside = FlowRows("outside", keep=lambda c: c.rows[c.dst_out], merge=lambda kept: kept.tail(1))
    ev = Evidence(flows=flows, chunk_rows=2)
    ev.plan_flow_rows([low, outside])
    assert ev.flow_rows(outside)["dst_port"].tolist() == [446]
    assert ev.flow_rows(low)["dst_port"].tolist() == [443, 444]
    assert len(passes) == len(list(ev.flow_chunks())) > 1  # one call per chunk, all in the one pass
