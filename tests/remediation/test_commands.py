"""Commands in the checklist are argument lists quoted for the shell, and a name no API
server would accept (forged or tampered evidence) never reaches a command. Every command is
run through bash with kubectl and jq replaced by recorders: the argv they receive is exactly
the one intended, and nothing else runs."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.analysis import attack_scope
from k8sforensics.remediation.actions import remediation_actions
from k8sforensics.remediation.commands import command, kubectl, valid_name

EVIL_POD = "p;touch${IFS}/tmp/x;"
EVIL_SA = "'$(touch /tmp/y)'"
EVIL_NODE = "node-1`touch /tmp/z`"


@pytest.mark.parametrize(
    "name, kind, ok",
    [
        ("web-7d9c8b6f5-x2x9z", "pod", True),
        ("kube-system", "namespace", True),
        ("a.b.c", "pod", True),
        ("system:controller:cron", "clusterrolebinding", True),
        (EVIL_POD, "pod", False),
        (EVIL_SA, "serviceaccount", False),
        ("Web", "pod", False),
        ("x" * 254, "pod", False),
        ("ns.with.dots", "namespace", False),
        ("", "pod", False),
        ("a b", "clusterrolebinding", False),
        (None, "pod", False),
    ],
)
def test_valid_name(name: object, kind: str, ok: bool) -> None:
    assert valid_name(name, kind=kind) is ok


def test_quoting_keeps_each_argument_whole() -> None:
    assert shlex.split(kubectl("delete", "pod", "a b;c", namespace="n s")) == [
        "kubectl",
        "-n",
        "n s",
        "delete",
        "pod",
        "a b;c",
    ]
    assert command("echo", "$(id)") == "echo '$(id)'"


def forged_graph() -> nx.MultiDiGraph:
    """A breach whose evidence names objects no API server would accept."""
    g = nx.MultiDiGraph()
    t = pd.Timestamp("2024-05-10T10:00:00Z")

    def edge(u: str, v: str, kind: str, minutes: int) -> None:
        g.add_edge(
            u,
            v,
            type=kind,
            observed=True,
            first_seen=t + pd.Timedelta(minutes=minutes),
            last_seen=t + pd.Timedelta(minutes=minutes),
            event_ids=[f"e{minutes}"],
            count=1,
        )

    g.add_node("ip:203.0.113.9", kind="ip")
    g.add_node(f"pod:payments/{EVIL_POD}", kind="pod", workload="Deployment/api")
    g.add_node("pod:payments/api-1", kind="pod", workload="Deployment/api")
    g.add_node(f"sa:payments/{EVIL_SA}", kind="sa")
    g.add_node(f"node:{EVIL_NODE}", kind="node")
    g.add_node("sa:payments/api", kind="sa")
    edge("ip:203.0.113.9", f"pod:payments/{EVIL_POD}", "flow", 1)
    edge("ip:203.0.113.9", "pod:payments/api-1", "flow", 1)
    edge(f"pod:payments/{EVIL_POD}", f"sa:payments/{EVIL_SA}", "token_use", 2)
    edge("pod:payments/api-1", "sa:payments/api", "token_use", 2)
    edge(f"pod:payments/{EVIL_POD}", f"node:{EVIL_NODE}", "host_escape", 3)
    return g


def findings() -> pd.DataFrame:
    return pd.DataFrame({"finding_id": ["f1"], "event_ids": [["e1"]], "technique_id": ["MS-TA9006"], "title": ["exec"]})


def recorders(tmp_path: Path) -> dict[str, str]:
    """kubectl, k8sforensics, jq and xargs on PATH that only write the argv they got."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "argv.jsonl"
    for tool in ("kubectl", "k8sforensics", "jq", "xargs"):
        script = bin_dir / tool
        script.write_text(
            f'#!/usr/bin/env python3\nimport json, sys\nopen({str(log)!r}, "a").write(json.dumps(sys.argv) + "\\n")\n'
        )
        script.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}


def run_all(commands: list[str], tmp_path: Path) -> list[list[str]]:
    env = recorders(tmp_path)
    for c in commands:
        assert subprocess.run(["bash", "-n", "-c", c], capture_output=True).returncode == 0, c
        subprocess.run(["bash", "-c", c], env=env, cwd=tmp_path, capture_output=True, timeout=30)
    log = tmp_path / "argv.jsonl"
    return [[Path(a[0]).name, *a[1:]] for a in map(json.loads, log.read_text().splitlines())] if log.exists() else []


def expected(commands: list[str]) -> list[list[str]]:
    out = []
    for c in commands:
        for part in c.split(" && "):
            out.append(shlex.split(part))
    return out


def test_forged_names_never_reach_a_command(tmp_path: Path) -> None:
    for f in ("/tmp/x", "/tmp/y", "/tmp/z"):
        Path(f).unlink(missing_ok=True)
    g = forged_graph()
    actions = remediation_actions(findings(), g, scope=attack_scope(g, sources=["ip:203.0.113.9"]))
    commands = [c for c in actions["command"] if c]
    assert not any(EVIL_POD in c or "touch" in c for c in commands), commands
    flagged = actions[actions["action"].str.contains("SUSPICIOUS EVIDENCE")]
    assert {"pod:payments/" + EVIL_POD, "sa:payments/" + EVIL_SA, "node:" + EVIL_NODE} <= set(flagged["target"])
    # the valid ones still get their command, and it runs as exactly the argv intended
    assert any("api-1" in c for c in commands) and any("serviceaccount api" in c for c in commands)
    assert run_all(commands, tmp_path) == expected(commands)
    assert not any(Path(f).exists() for f in ("/tmp/x", "/tmp/y", "/tmp/z"))


def test_every_command_of_the_sample_checklist_runs_as_its_argv(sample_case: kf.Case, tmp_path: Path) -> None:
    actions = kf.remediation(sample_case)
    # the preservation block redirects into files: tests/remediation/test_preserve.py runs it
    commands = [c for c, kind in zip(actions["command"], actions["kind"]) if c and kind != "preserve"]
    assert len(commands) >= 5
    assert run_all(commands, tmp_path) == expected(commands)


def test_every_command_of_the_sample_checklist_parses(sample_case: kf.Case) -> None:
    actions = kf.remediation(sample_case)
    assert set(actions.loc[actions["command"] != "", "kind"]) >= {
        "preserve",
        "isolate",
        "cordon",
        "rotate",
        "delete",
        "rebuild",
        "apply",
        "verify",
    }
    for c in actions["command"]:
        if c:
            assert subprocess.run(["bash", "-n", "-c", c], capture_output=True).returncode == 0, c
