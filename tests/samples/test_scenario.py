"""The scenario family: every part used, deterministic output, truth consistent with the evidence."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from k8sforensics.samples.platforms import PLATFORMS
from k8sforensics.samples.scenario import (
    COVER_UPS,
    ENTRIES,
    ESCALATIONS,
    OBJECTIVES,
    PERSISTENCE,
    Shape,
    family,
    write_scenario,
)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_forty_scenarios_use_every_part_and_platform() -> None:
    combos = list(family(40))
    used = {
        "entry": set(),
        "escalations": set(),
        "persistence": set(),
        "objectives": set(),
        "cover_up": set(),
        "platform": set(),
    }
    for shape, platform, _ in combos:
        used["entry"].add(shape.entry)
        used["escalations"].update(shape.escalations)
        used["persistence"].update(shape.persistence)
        used["objectives"].update(shape.objectives)
        used["cover_up"].add(shape.cover_up)
        used["platform"].add(platform)
    assert used == {
        "entry": set(ENTRIES),
        "escalations": set(ESCALATIONS),
        "persistence": set(PERSISTENCE),
        "objectives": set(OBJECTIVES),
        "cover_up": set(COVER_UPS),
        "platform": set(PLATFORMS),
    }
    # every entry meets every platform
    assert {(s.entry, p) for s, p, _ in combos} == {(e, p) for e in ENTRIES for p in PLATFORMS}


def test_an_unknown_part_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown part"):
        Shape("web-rce", escalations=("teleport",))
    with pytest.raises(ValueError, match="unknown platform"):
        write_scenario("/nonexistent", platform="openshift")


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_same_arguments_same_bytes_and_truth_points_at_the_evidence(tmp_path: Path, index: int) -> None:
    shape, platform, seed = next(family(1, start=index))
    a, b = tmp_path / "a", tmp_path / "b"
    truth = json.loads(write_scenario(a, shape=shape, platform=platform, seed=seed, scale=0.1).read_text())
    write_scenario(b, shape=shape, platform=platform, seed=seed, scale=0.1)
    assert _digest(a) == _digest(b)
    assert truth["platform"] == platform and truth["shape"] == shape.as_dict()
    # every step has evidence, and each evidence line exists in its file
    for step in truth["steps"]:
        assert step["techniques"], step["id"]
        assert step["evidence"], f"step {step['id']} has no evidence line"
        for ev in step["evidence"][:3]:
            path = a / ev["file"]
            text = (gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()).decode()
            assert 1 <= ev["line"] <= len(text.splitlines()), (step["id"], ev)
    must = truth["remediation"]["must"]
    assert {m["do"] for m in must} <= {"preserve", "rotate", "delete", "rebuild", "block", "redeploy", "restore"}
    assert all(":" in m["target"] for m in must)
    # an attacker address is an outside one; remediation never blocks a private address
    assert all(not ip.startswith(("10.", "192.168.", "172.16.")) for ip in truth["attack_ips"])


def test_an_escape_exposes_its_node_s_other_pods(tmp_path: Path) -> None:
    shape = Shape(
        "web-rce", escalations=("privileged-nsenter",), persistence=("cronjob",), objectives=("mining",), cover_up=None
    )
    truth = json.loads(write_scenario(tmp_path, shape=shape, platform="eks", seed=5, scale=0.1).read_text())
    node = truth["escaped_nodes"][0]
    assert {"do": "rebuild", "target": f"node:{node}"} in [
        {k: m[k] for k in ("do", "target")} for m in truth["remediation"]["must"]
    ]
    exposed = {e["pod"] for e in truth["exposed"]}
    assert exposed and not exposed & {r["pod"] for r in truth["reached"]}
    forbidden = {m["target"] for m in truth["remediation"]["must_not"] if m["do"] == "isolate"}
    assert {f"pod:{p}" for p in exposed} <= forbidden
