"""The kill-chain timeline, its phases and narrative, and the entity pivot on the sample breach."""

from __future__ import annotations

import pandas as pd

import k8sforensics as kf
from k8sforensics.analysis import entity_events, phases
from k8sforensics.detect import PHASES


def test_timeline_has_findings_their_evidence_and_context(sample_case: kf.Case) -> None:
    tl = kf.kill_chain(sample_case)
    findings = sample_case.findings()
    assert (tl["kind"] == "finding").sum() == len(findings)
    assert tl["time"].is_monotonic_increasing
    ev = tl[tl["kind"] == "evidence"]
    # every evidence row is an event a finding names, with a readable line
    named = {i for ids in findings["event_ids"] for i in ids}
    assert set(ev["event_id"]) <= named and len(set(ev["event_id"])) == len(named)
    assert ev["summary"].str.len().gt(0).all() and ev["source_table"].isin(["audit", "runtime", "flows"]).all()
    ctx = tl[tl["kind"] == "context"]
    assert len(ctx) and not set(ctx["event_id"]) & named
    assert ctx.groupby("finding_id").size().max() <= 5


def test_filters_narrow_the_timeline(sample_case: kf.Case) -> None:
    shop = kf.kill_chain(sample_case, namespace="shop", max_context=0)
    assert set(shop.loc[shop["kind"] == "finding", "namespace"]) == {"shop"}
    late = kf.kill_chain(sample_case, start="2026-03-10T11:00:00Z", max_context=0)
    assert late.loc[late["kind"] == "finding", "time_end"].min() >= pd.Timestamp("2026-03-10T11:00:00Z")
    one = kf.kill_chain(sample_case, entity="198.51.100.66", phases=["Reconnaissance"], max_context=0)
    assert one.loc[one["kind"] == "finding", "rule_id"].tolist() == ["net-port-scan"]


def test_phases_in_kill_chain_order_with_first_and_last_seen(sample_case: kf.Case) -> None:
    ph = phases(kf.kill_chain(sample_case, max_context=0))
    assert ph["kill_chain_phase"].tolist() == [p for p in PHASES if p in set(ph["kill_chain_phase"])]
    recon = ph.set_index("kill_chain_phase").loc["Reconnaissance"]
    assert recon["first_seen"] == pd.Timestamp("2026-03-10T10:00:00Z") and "MS-TA9031" in recon["techniques"]
    assert (ph["first_seen"] <= ph["last_seen"]).all()


def test_narrative_tells_the_attack_with_evidence_ids(sample_case: kf.Case) -> None:
    text = kf.narrative(kf.kill_chain(sample_case, max_context=0))
    assert "Patient zero: pod shop/web-q7rclvtq89-mtpxj" in text and "reached from 198.51.100.66" in text
    order = [
        text.index(p + " (")
        for p in (
            "Reconnaissance",
            "Delivery",
            "Exploitation",
            "Installation",
            "Command & Control",
            "Actions on Objectives",
        )
    ]
    assert order == sorted(order)
    assert "(evidence: " in text and "MS-TA9019" in text
    assert kf.narrative(kf.kill_chain(sample_case, namespace="no-such-namespace")) == "No findings."


def test_entity_pivot_for_a_pod_an_ip_and_an_identity(sample_case: kf.Case) -> None:
    pod = entity_events(sample_case, "shop/web-q7rclvtq89-mtpxj")
    assert set(pod["source_table"]) == {"audit", "runtime", "flows"} and pod["time"].is_monotonic_increasing
    ip = entity_events(sample_case, "198.51.100.66", end="2026-03-10T10:06:00Z")
    assert len(ip) >= 24 and (ip["source_table"] == "flows").all()
    sa = entity_events(sample_case, "system:serviceaccount:payments:payments-api")
    assert len(sa) >= 5 and (sa["source_table"] == "audit").all()


def test_entity_activity_keeps_the_attack_and_folds_only_repeated_internal_flows(sample_case: kf.Case) -> None:
    from k8sforensics.analysis import attack_window, entity_activity

    findings = sample_case.findings()
    start, end = attack_window(findings)
    assert start < findings["time"].min() and end > findings["time"].max()
    activity = entity_activity(sample_case, "shop/web-q7rclvtq89-mtpxj", findings=findings)
    assert activity["time"].between(start, end).all()
    shown, routine = activity[~activity["routine"]], activity[activity["routine"]]
    assert len(routine) and len(shown)
    # every API request and process is shown; routine is only flows, each a repeat of a shown peer and port
    assert set(routine["source_table"]) == {"flows"}
    assert {"audit", "runtime"} <= set(shown["source_table"])
    first_seen = set(zip(shown["peer"], shown["port"]))
    assert set(zip(routine["peer"], routine["port"])) <= first_seen
    # an event a finding cites is never folded, nor a flow with the outside address
    cited = set(findings["event_ids"].explode().dropna())
    assert not routine["event_id"].isin(cited).any()
    assert "198.51.100.66" in set(shown["peer"]) and "198.51.100.66" not in set(routine["peer"])
