"""Two remediation behaviours on whole scenarios of the family: what the attacker deleted is
restored from its definition, and a workload a CI pipeline rolled out with a poisoned image is
redeployed from the last good one (the pods a controller made are not the attacker's own)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import k8sforensics as kf
from k8sforensics.samples.scenario import Shape, write_scenario


def _checklist(tmp_path: Path, shape: Shape, platform: str) -> tuple[kf.Case, list[tuple[str, str]]]:
    write_scenario(tmp_path / "evidence", shape=shape, platform=platform, seed=3, scale=0.1)
    case = kf.Case.create(tmp_path / "case")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kf.ingest(case, [str(p) for p in (tmp_path / "evidence").iterdir() if p.name != "truth.json"], progress=False)
        kf.detect(case)
        actions = kf.remediation(case)
    return case, list(zip(actions["action"], actions["target"]))


@pytest.mark.parametrize("platform", ["self-managed", "aks"])
def test_the_logging_agent_the_attacker_deleted_is_restored(tmp_path: Path, platform: str) -> None:
    shape = Shape(
        "leaked-kubeconfig",
        escalations=("token-reuse",),
        persistence=("cronjob",),
        objectives=("mining",),
        cover_up="logging-tampered",
    )
    _, rows = _checklist(tmp_path, shape, platform)
    restores = [t for a, t in rows if a.startswith("restore")]
    assert "workload:logging/daemonsets/fluent-bit" in restores
    # the attacker's own CronJob is deleted, never restored
    assert not any("log-rotate" in t for t in restores)
    assert any(a.startswith("delete") and t == "workload:kube-system/cronjobs/log-rotate" for a, t in rows)


def test_a_poisoned_rollout_is_redeployed_and_its_token_rotated(tmp_path: Path) -> None:
    shape = Shape(
        "supply-chain", escalations=("token-reuse",), persistence=("cronjob",), objectives=("mining",), cover_up=None
    )
    _, rows = _checklist(tmp_path, shape, "eks")
    assert any(a.startswith("redeploy") and t == "workload:shop/Deployment/cart" for a, t in rows), rows
    assert any(a.startswith("rotate") and t == "sa:shop/cart" for a, t in rows)
