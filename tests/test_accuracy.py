"""The accuracy harness (benchmarks/accuracy.py) over a fast subset of the scenario family: one
scenario per entry (every platform among them) and the demo. The full set — 40 scenarios — is a
benchmark (``make accuracy``); its table is in the README."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBSET: list[int | str] = [0, 1, 2, 3, 4, "demo"]
SCALE = 0.15


def _harness() -> Any:
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks" / "accuracy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results() -> list[dict[str, Any]]:
    harness = _harness()
    return [harness.run_one(i, scale=SCALE) for i in SUBSET]


def _report(results: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"[{r['index']} {r['entry']} {r['platform']}] {m}  (repro: {r['repro']})" for r in results for m in r["misses"]
    )


@pytest.mark.accuracy
def test_no_scenario_crashes(results: list[dict[str, Any]]) -> None:
    crashed = [r for r in results if r["entry"] == "crashed"]
    assert not crashed, _report(crashed)


@pytest.mark.accuracy
def test_step_recall(results: list[dict[str, Any]]) -> None:
    found, total = sum(r["steps_found"] for r in results), sum(r["steps"] for r in results)
    assert found / total >= 0.95, _report(results)


@pytest.mark.accuracy
def test_patient_zero_ranks_first(results: list[dict[str, Any]]) -> None:
    assert all(r["pz_rank"] == 1 for r in results), _report(results)


@pytest.mark.accuracy
def test_attribution_and_deleted_pods(results: list[dict[str, Any]]) -> None:
    assert all(r["attribution_ok"] == r["attribution"] for r in results), _report(results)
    assert all(r["deleted_known"] == r["deleted"] for r in results), _report(results)


@pytest.mark.accuracy
def test_remediation_must_and_must_not(results: list[dict[str, Any]]) -> None:
    scored = [r for r in results if r["must"]]
    assert sum(r["must_hit"] for r in scored) == sum(r["must"] for r in scored), _report(results)
    assert sum(r["must_not"] for r in results) == 0, _report(results)


@pytest.mark.accuracy
def test_remediation_preserves_before_it_destroys(results: list[dict[str, Any]]) -> None:
    """Issue 18: no reached pod or held node is deleted, drained, rebuilt or redeployed before its
    evidence is collected (these count among the must-not violations too)."""
    assert sum(r["order_violations"] for r in results) == 0, _report(results)


@pytest.mark.accuracy
def test_noise(results: list[dict[str, Any]]) -> None:
    noisy = [r for r in results if r["noise_medium"] > 2]
    assert not noisy, [(r["index"], r["noise_examples"]) for r in noisy]
    assert all(r["low_shown"] <= 3 * r["steps"] for r in results), [
        (r["index"], r["low_shown"], r["steps"]) for r in results
    ]


def test_no_library_code_reads_a_scenario_truth() -> None:
    """Only the samples write truth.json; nothing in the library reads it."""
    offenders = []
    for path in (ROOT / "k8sforensics").rglob("*.py"):
        if "samples" in path.parts:
            continue
        for line in path.read_text().splitlines():
            if "truth" in line and re.search(r"json\.load|read_text|read_bytes|open\(", line):
                offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert not offenders
