"""Fault injection: ``kill -9`` an ingest at many points. After each kill the case opens and
holds, in every table and context table, either exactly what it held before or exactly what
the uninterrupted ingest gives; running the ingest again needs no manual step and gives the
same case as an uninterrupted run.

The kill points are spread over the ingest as an uninterrupted run times it, half of them
between the moment its first file is moved into place and the moment the manifest is
replaced (the window a torn write would show). ``K8SF_FAULT_POINTS`` sets how many (default 8).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import k8sforensics as kf
import k8sforensics.samples
from k8sforensics.case import MANIFEST
from k8sforensics.schema import CONTEXT_TABLES, TABLES

ROOT = Path(__file__).resolve().parent.parent
POINTS = int(os.environ.get("K8SF_FAULT_POINTS", "8"))


def content(case_dir: Path) -> dict[str, str]:
    """A digest of every table and context table as a reader sees it."""
    case = kf.Case.open(case_dir)
    out = {}
    for name in TABLES:
        frame = case.table(name, max_rows=None)
        out[name] = _digest(frame.sort_values("event_id") if "event_id" in frame else frame)
    for name in CONTEXT_TABLES:
        frame = case.context(name)
        out[f"context/{name}"] = _digest(frame)
    out["findings"] = _digest(case.findings())
    out["inputs"] = json.dumps(sorted(i["sha256"] for ing in case.manifest["ingests"] for i in ing["inputs"]))
    return out


def _digest(frame) -> str:  # type: ignore[no-untyped-def]
    text = frame.astype(str)
    text = text.sort_values(list(text.columns)) if len(text.columns) else text
    return hashlib.sha256(text.to_csv(index=False).encode()).hexdigest()


def _ingest_cmd(evidence: Path, case_dir: Path) -> list[str]:
    return [sys.executable, "-m", "k8sforensics", "ingest", str(evidence), "--case", str(case_dir), "--no-progress"]


def _timeline(evidence: Path, case_dir: Path) -> tuple[float, float, float]:
    """An uninterrupted ingest, watched: seconds to its first published file and to its commit, and in all."""
    listed = set(json.loads((case_dir / MANIFEST).read_text())["files"])
    before = (case_dir / MANIFEST).read_bytes()
    t0 = time.monotonic()
    proc = subprocess.Popen(_ingest_cmd(evidence, case_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = commit = None
    while proc.poll() is None:
        now = time.monotonic() - t0
        if first is None and any(
            p.relative_to(case_dir).as_posix() not in listed for p in case_dir.glob("*/date=*/*.parquet")
        ):
            first = now
        if commit is None and (case_dir / MANIFEST).read_bytes() != before:
            commit = now
        time.sleep(0.005)
    total = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return (first or total * 0.5), (commit or total), total


@pytest.mark.slow
def test_kill_at_any_point_leaves_the_old_or_the_new_case(tmp_path: Path, audit_fixtures: Path) -> None:
    evidence = tmp_path / "evidence"
    kf.samples.write_sample_evidence(evidence, seed=7, scale=1.0)
    base = tmp_path / "base"
    kf.ingest(kf.Case.create(base, cluster="prod-eu"), audit_fixtures / "k8s_audit__log_backend_stages.jsonl")
    old = content(base)

    reference = tmp_path / "reference"
    shutil.copytree(base, reference)
    first, commit, total = _timeline(evidence, reference)
    new = content(reference)
    assert new != old

    # kill points: half anywhere up to the commit, half inside the publish→commit window
    times = [commit * (i + 0.5) / (POINTS - POINTS // 2) for i in range(POINTS - POINTS // 2)]
    times += [first + (commit - first) * (i + 0.5) / (POINTS // 2) for i in range(POINTS // 2)]
    outcomes = []
    for k, at in enumerate(sorted(times)):
        case_dir = tmp_path / f"kill{k}"
        shutil.copytree(base, case_dir)
        proc = subprocess.Popen(_ingest_cmd(evidence, case_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(at)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        got = content(case_dir)
        assert got in (old, new), f"kill {k} at {at:.2f} s left a case that is neither the old nor the new one"
        torn = bool(kf.Case.open(case_dir).verify().problems)  # leftovers of the dead writer
        outcomes.append("new" if got == new else ("old, leftovers" if torn else "old"))
        # the same command again: no manual step, and the case the uninterrupted run made
        rerun = subprocess.run(_ingest_cmd(evidence, case_dir), capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert content(case_dir) == new, f"kill {k} at {at:.2f} s: the re-run differs from an uninterrupted ingest"
        v = kf.Case.open(case_dir).verify()
        assert v.ok, str(v)
    # the test is only worth something if some kills landed inside the write
    assert "old, leftovers" in outcomes, (outcomes, first, commit, total)
