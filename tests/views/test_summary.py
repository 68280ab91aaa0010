"""The executive summary: its claims on the sample breach (a pod patient zero) and on a leaked
kubeconfig used from outside (an identity, no exploited pod), each with the ids behind it; the
page escapes what the attacker named, shows compact UTC times, links each claim to its section
and lists the checklist's first five actions."""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.remediation import Remediation
from k8sforensics.samples.scenario import Shape, write_scenario
from k8sforensics.views.summary import CLAIM_COLUMNS, Summary, executive_summary, summary_html

TABLES = ("addresses", "identities", "pods", "nodes", "persistence", "data")


@pytest.fixture(scope="module")
def demo(sample_case: kf.Case) -> Summary:
    return executive_summary(sample_case)


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> tuple[kf.Case, Summary]:
    """A leaked kubeconfig used from outside: a CSR minted a second identity, a webhook left."""
    root = tmp_path_factory.mktemp("kubeconfig")
    shape = Shape(
        "leaked-kubeconfig",
        escalations=("csr",),
        persistence=("webhook",),
        objectives=("secret-dump",),
        cover_up=None,
    )
    write_scenario(root / "evidence", shape=shape, platform="aks", seed=7, scale=0.1)
    case = kf.Case.create(root / "case", cluster="aks-prod")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the scenario's planted bad records
        kf.ingest(case, root / "evidence", progress=False)
    kf.detect(case)
    return case, executive_summary(case)


def _finding_ids(case: kf.Case) -> set[str]:
    return set(case.findings()["finding_id"].astype(str))


def test_demo_claims(demo: Summary) -> None:
    assert demo.patient_zero_kind == "pod"
    assert demo.patient_zero.startswith("shop/web-")
    assert demo.came_from == "198.51.100.66"
    assert "remote code execution" in demo.entry
    assert demo.what_happened.startswith("The attacker scouted the cluster")
    assert set(demo.nodes["item"]) == {"node-2"}
    assert {"shop/web", "payments/payments-api"} <= set(demo.identities["item"])
    assert {"203.0.113.77", "203.0.113.88", "198.51.100.66"} <= set(demo.addresses["item"])
    kinds = set(demo.persistence["kind"])
    assert {"cronjobs", "clusterrolebindings"} <= kinds
    assert "payments/db-credentials" in set(demo.data["item"])
    # first activity is the scan, last the miner; the dwell is the span between
    assert demo.first_activity == pd.Timestamp("2026-03-10 10:00:00Z")
    assert demo.dwell == demo.last_activity - demo.first_activity > pd.Timedelta(hours=3)
    assert demo.last_activity <= demo.evidence_end


def test_an_identity_used_from_outside_is_patient_zero(kubeconfig: tuple[kf.Case, Summary]) -> None:
    case, s = kubeconfig
    assert s.patient_zero_kind == "user"
    assert s.came_from and not s.came_from.startswith(("10.", "192.168.", "172."))
    assert s.entry.startswith("the credential of user ")
    assert s.came_from in set(s.addresses["item"])
    assert s.addresses.set_index("item").loc[s.came_from, "kind"].startswith("reached in")
    assert s.patient_zero in set(s.identities["item"])
    assert s.patient_zero not in set(s.pods["item"])  # no exploited pod
    assert any("webhook" in k for k in s.persistence["kind"])
    assert "got in through the credential of user" in s.what_happened


@pytest.mark.parametrize("which", ["demo", "kubeconfig"])
def test_every_claim_has_its_ids(which: str, request: pytest.FixtureRequest, sample_case: kf.Case) -> None:
    if which == "demo":
        case, s = sample_case, request.getfixturevalue("demo")
    else:
        case, s = request.getfixturevalue("kubeconfig")
    known = _finding_ids(case)
    for name in TABLES:
        table = getattr(s, name)
        assert list(table.columns) == CLAIM_COLUMNS
        for r in table.itertuples(index=False):
            assert r.finding_ids or r.event_ids, f"{name}: {r.item} has no ids"
            assert set(r.finding_ids) <= known
    assert s.what_happened_findings and set(s.what_happened_findings) <= known
    assert s.when_findings and set(s.when_findings) <= known
    assert s.entry_finding_id in known and s.patient_zero_events
    assert set(s.attack_finding_ids) <= known


def test_the_top_five_are_the_checklists_first_five(demo: Summary, sample_case: kf.Case) -> None:
    checklist = Remediation(sample_case).actions()
    assert list(demo.actions["action_id"]) == list(checklist["action_id"].head(5))
    assert list(demo.actions["step"]) == [1, 2, 3, 4, 5]
    page = summary_html(demo)
    assert re.findall(r'data-action="([0-9a-f]+)"', page) == list(checklist["action_id"].head(5))


def test_given_actions_are_used(sample_case: kf.Case) -> None:
    mine = Remediation(sample_case).actions().iloc[::-1].reset_index(drop=True)
    s = executive_summary(sample_case, actions=mine)
    assert list(s.actions["action_id"]) == list(mine["action_id"].head(5))


def test_the_page_escapes_what_the_attacker_named(demo: Summary) -> None:
    evil = "<script>alert(1)</script>"
    pods = demo.pods.copy()
    pods.loc[0, "item"] = f"shop/{evil}"
    forged = dataclasses.replace(
        demo, pods=pods, patient_zero=f"shop/{evil}", cluster=f'"><img src=x onerror=alert(1)>{evil}'
    )
    page = summary_html(forged)
    assert "<script" not in page and "<img" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3


def test_times_are_compact_utc(demo: Summary) -> None:
    page = summary_html(demo)
    assert "2026-03-10 10:00:00Z" in page
    assert "+00:00" not in page and "T10:" not in page
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", page)  # no fractions of a second
    assert "3 h 32 min" in page


def test_each_claim_links_to_its_section(demo: Summary) -> None:
    page = summary_html(demo)
    for anchor in ("#findings", "#patient-zero", "#lateral-movement", "#checklist"):
        assert f'href="{anchor}"' in page
    elsewhere = summary_html(demo, links={"checklist": "03_remediation_checklist.html#checklist"})
    assert 'href="03_remediation_checklist.html#checklist"' in elsewhere
    assert "<table" not in page  # nothing wider than the screen: a two-column list
    assert "grid-template-columns" in page


def test_no_persistence_is_said_plainly(demo: Summary) -> None:
    empty = dataclasses.replace(demo, persistence=demo.persistence.iloc[0:0], data=demo.data.iloc[0:0])
    page = summary_html(empty)
    assert "No persistence found." in page
    assert "No secret read or data exfiltration found." in page


def test_a_case_without_an_attack(tmp_path: Path) -> None:
    """Detection found nothing tied to a way in: the summary says so rather than guessing."""
    case = kf.Case.create(tmp_path / "case", cluster="quiet")
    s = executive_summary(case, findings=case.findings(), actions=pd.DataFrame(columns=["action_id", "step"]))
    assert s.patient_zero is None
    assert s.what_happened.startswith("No attack found")
    assert pd.isna(s.first_activity)
    page = summary_html(s)
    assert "No persistence found." in page and "no attacker activity found" in page
