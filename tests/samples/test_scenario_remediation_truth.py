"""What a scenario's truth says remediation must do about preservation and co-tenants (issue 18):
preserve every reached pod still running and every node held; rotate the account of every pod
that ran on a held node at or after the escape, and never isolate those pods."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from k8sforensics.samples.scenario import Shape, write_scenario


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    shape = Shape(
        "web-rce",
        escalations=("privileged-nsenter",),
        persistence=("cronjob",),
        objectives=("mining",),
        cover_up="logging-tampered",
    )
    root: Path = tmp_path_factory.mktemp("escape")
    return json.loads(write_scenario(root, shape=shape, platform="eks", seed=5, scale=0.1).read_text())


def _must(truth: dict[str, Any], do: str) -> set[str]:
    return {m["target"] for m in truth["remediation"]["must"] if m["do"] == do}


def test_each_held_node_is_preserved_then_rebuilt(truth: dict[str, Any]) -> None:
    assert truth["escaped_nodes"]
    for node in truth["escaped_nodes"]:
        assert f"node:{node}" in _must(truth, "preserve") & _must(truth, "rebuild")


def test_reached_pods_still_running_are_preserved_and_gone_ones_are_not(truth: dict[str, Any]) -> None:
    gone = set(truth["deleted_before_dump"])
    reached = {r["pod"] for r in truth["reached"]}
    preserved = {t.removeprefix("pod:") for t in _must(truth, "preserve") if t.startswith("pod:")}
    assert preserved == reached - gone


def test_co_tenants_running_at_the_dump_have_their_accounts_rotated_never_isolated(truth: dict[str, Any]) -> None:
    running = [e for e in truth["exposed"] if e["running_at_dump"]]
    assert running
    assert {f"sa:{e['service_account']}" for e in running} <= _must(truth, "rotate")
    isolate_forbidden = {m["target"] for m in truth["remediation"]["must_not"] if m["do"] == "isolate"}
    assert {f"pod:{e['pod']}" for e in truth["exposed"]} <= isolate_forbidden
    # system components on the node are co-tenants too: their accounts are rotated (by deleting their pods)
    assert any(e["service_account"].startswith("kube-system/") for e in running)


def test_a_co_tenant_gone_before_the_dump_is_a_should_only(truth: dict[str, Any]) -> None:
    """The attacker deleted the logging agent: its bound tokens died with its pods."""
    ended = {f"sa:{e['service_account']}" for e in truth["exposed"] if not e["running_at_dump"]}
    still = {f"sa:{e['service_account']}" for e in truth["exposed"] if e["running_at_dump"]}
    assert "sa:logging/fluent-bit" in ended - still
    assert "sa:logging/fluent-bit" not in _must(truth, "rotate")
    assert {m["target"] for m in truth["remediation"]["should"]} >= ended - still


def test_one_must_per_action_and_target(truth: dict[str, Any]) -> None:
    keys = [(m["do"], m["target"]) for m in truth["remediation"]["must"]]
    assert len(keys) == len(set(keys))
