"""A case holding two breaches: the sample evidence of seeds 1 and 2 ingested into one case, in
one ingest call and in two. Detection, the kill chain, the lateral-movement graph, patient zero
and remediation run on it, and each breach's attack steps are found with that breach's own
evidence and entities (the tests read each seed's truth; the library never does)."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.analysis import graph_patient_zero, phases
from k8sforensics.samples import write_sample_evidence

from .steps import finding_keys, step_keys

SEEDS = (1, 2)
SCALE = 0.25  # a quarter of the background noise: every attack step is still there
MAX_SECONDS = 20  # writing, ingesting and detecting both breaches
# steps whose findings the two breaches share: their entities are the same in both seeds (the
# attacker's address, the kube-system pod name, the C2 and pool addresses)
STEPS = [
    "recon",
    "exploit",
    "download",
    "token-theft",
    "discovery",
    "secret-read",
    "exec",
    "privileged-pod",
    "host-escape",
    "persistence",
    "c2",
    "mining",
    "cover-tracks",
]


def _ingest(case: kf.Case, folders: list[Path]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # each sample plants two bad records
        kf.ingest(case, [str(f) for f in folders], progress=False)


@pytest.fixture(scope="module")
def breaches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("two-breaches")
    t0 = time.perf_counter()
    folders = [root / f"seed-{s}" for s in SEEDS]
    truths = {s: json.loads(write_sample_evidence(f, seed=s, scale=SCALE).read_text()) for s, f in zip(SEEDS, folders)}
    one_call = kf.Case.create(root / "one-call", cluster="prod-eu")
    _ingest(one_call, folders)
    findings = kf.detect(one_call)
    seconds = time.perf_counter() - t0
    two_calls = kf.Case.create(root / "two-calls", cluster="prod-eu")
    for f in folders:
        _ingest(two_calls, [f])
    return {
        "folders": folders,
        "truths": truths,
        "case": one_call,
        "findings": findings,
        "seconds": seconds,
        "two_calls": two_calls,
    }


def test_both_breaches_build_and_detect_quickly(breaches: dict[str, Any]) -> None:
    assert breaches["seconds"] < MAX_SECONDS, (
        f"two breaches took {breaches['seconds']:.1f} s to write, ingest and detect"
    )
    f = breaches["findings"]
    assert len(f) and f["finding_id"].is_unique
    # every column the findings schema types is usable: no void or mixed objects left by a rule
    assert f["technique_id"].map(lambda v: v is None or isinstance(v, str)).all()
    assert f["tactic"].map(lambda v: isinstance(v, str) and bool(v)).all()


def test_ingesting_the_breaches_in_two_calls_gives_the_same_findings(breaches: dict[str, Any]) -> None:
    again = kf.detect(breaches["two_calls"])
    assert sorted(again["finding_id"]) == sorted(breaches["findings"]["finding_id"])


def _evidence_ids(breaches: dict[str, Any], folder: Path, step: dict[str, Any]) -> set[str]:
    """The event ids of the step's evidence lines in this seed's files (not the other seed's)."""
    if "lines" not in breaches:  # (evidence file, line) → event ids, read once
        case = breaches["case"]
        lines: dict[tuple[str, int], set[str]] = {}
        for table in ("audit", "runtime", "flows"):
            got = case.sql(f"select evidence_id, evidence_line, event_id from {table}")
            for sha, line, event_id in zip(got["evidence_id"], got["evidence_line"], got["event_id"]):
                lines.setdefault((sha, int(line)), set()).add(event_id)
        breaches["shas"] = {i["path"]: i["sha256"] for ing in case.manifest["ingests"] for i in ing["inputs"]}
        breaches["lines"] = lines
    ids: set[str] = set()
    for ev in step["evidence"]:
        ids |= breaches["lines"].get((breaches["shas"][str(folder / ev["file"])], ev["line"]), set())
    return ids


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("step_id", STEPS)
def test_each_breach_step_is_found_with_its_own_evidence(breaches: dict[str, Any], seed: int, step_id: str) -> None:
    f = breaches["findings"]
    step = next(s for s in breaches["truths"][seed]["steps"] if s["id"] == step_id)
    technique = (
        f["technique_id"] == step["technique_id"] if step["technique_id"] else f["attack_id"] == step["attack_id"]
    )
    in_window = (f["time"] >= pd.Timestamp(step["start"])) & (f["time"] <= pd.Timestamp(step["end"]))
    candidates = f[technique & in_window]
    right_entity = candidates[[bool(finding_keys(r) & step_keys(step)) for _, r in candidates.iterrows()]]
    assert len(right_entity), (
        f"seed {seed} {step_id}: found {candidates['entity'].tolist()}, expected one of {step_keys(step)}"
    )
    named = {i for ids in right_entity["event_ids"] for i in ids}
    assert _evidence_ids(breaches, breaches["folders"][SEEDS.index(seed)], step) & named, (
        f"seed {seed} {step_id}: the findings name none of this breach's evidence events"
    )


def test_both_patients_zero_lead_the_ranking(breaches: dict[str, Any]) -> None:
    ranked = kf.patient_zero(breaches["case"])
    expected = {f"{t['patient_zero']['namespace']}/{t['patient_zero']['pod']}" for t in breaches["truths"].values()}
    assert len(expected) == 2
    assert set(ranked["entity"].iloc[:2]) == expected
    assert (ranked["came_from"].iloc[:2] == breaches["truths"][SEEDS[0]]["steps"][0]["entities"]["source_ip"]).all()


def test_kill_chain_graph_and_remediation_run_on_both_breaches(breaches: dict[str, Any]) -> None:
    case, truths = breaches["case"], breaches["truths"]
    timeline = kf.kill_chain(case)
    assert (timeline["kind"] == "finding").sum() == len(breaches["findings"])
    assert len(phases(timeline)) >= 5
    text = kf.narrative(timeline)
    graph = kf.lateral_movement(case)
    for truth in truths.values():
        p0 = f"{truth['patient_zero']['namespace']}/{truth['patient_zero']['pod']}"
        assert p0 in text or p0 in set(timeline["entity"].dropna())
        assert f"pod:{p0}" in graph  # each breach's way in is on the graph
        api = next(n["id"] for n in truth["lateral_path"] if n["kind"] == "pod" and n["id"].startswith("payments/"))
        assert f"pod:{api}" in graph
    assert len(graph_patient_zero(graph))
    plan = kf.remediation(case)
    assert len(plan)
