"""Patient zero among pods: a low-rated exploit followed by a high-severity finding is strong,
and a pod made by hand during the evidence (an attacker's tool) never outranks the way in."""

from __future__ import annotations

import pandas as pd

from k8sforensics.analysis import findings_patient_zero

T = pd.Timestamp("2026-05-12T08:00:00Z")


def _f(minute: float, pod: str, title: str, severity: str, phase: str) -> dict:
    ns, name = pod.split("/")
    return {
        "time": T + pd.Timedelta(minutes=minute),
        "entity_type": "pod",
        "entity": pod,
        "namespace": ns,
        "pod": name,
        "title": title,
        "severity": severity,
        "kill_chain_phase": phase,
        "finding_id": f"{pod}@{minute}",
        "source_ip": None,
        "user": None,
    }


def test_a_medium_exploit_followed_by_a_high_finding_outranks_an_earlier_medium_exec() -> None:
    f = pd.DataFrame(
        [
            _f(-60, "payments/api", "Exec or attach into a pod", "medium", "Exploitation"),
            _f(0, "shop/web", "Falco alert: Run shell untrusted", "medium", "Exploitation"),
            _f(2, "shop/web", "Service-account token read inside a container", "high", "Actions on Objectives"),
        ]
    )
    ranked = findings_patient_zero(f, networks=[])
    assert list(ranked["entity"]) == ["shop/web", "payments/api"]
    assert "then Service-account token read" in ranked["reason"].iloc[0]


def test_a_high_finding_long_after_is_not_a_follow_up() -> None:
    f = pd.DataFrame(
        [
            _f(-60, "payments/api", "Exec or attach into a pod", "medium", "Exploitation"),
            _f(0, "shop/web", "Falco alert", "medium", "Exploitation"),
            _f(45, "shop/web", "Cryptominer running", "high", "Actions on Objectives"),
        ]
    )
    assert list(findings_patient_zero(f, networks=[])["entity"]) == ["payments/api", "shop/web"]


def test_a_pod_made_by_hand_ranks_after_the_way_in() -> None:
    f = pd.DataFrame(
        [
            _f(10, "default/debug-tools", "Container escape", "critical", "Exploitation"),
            _f(0, "shop/web", "Shell spawned by an application", "high", "Exploitation"),
        ]
    )
    f = f.sort_values("time")
    ranked = findings_patient_zero(f, networks=[], made={"default/debug-tools"})
    assert list(ranked["entity"]) == ["shop/web", "default/debug-tools"]
    # even when its finding comes first
    f.loc[f["entity"] == "default/debug-tools", "time"] = T - pd.Timedelta(minutes=5)
    assert findings_patient_zero(f, networks=[], made={"default/debug-tools"})["entity"].iloc[0] == "shop/web"
