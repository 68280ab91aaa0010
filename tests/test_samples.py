"""The sample breach: deterministic, loads cleanly through the project's own loaders, and its
ground truth points at rows that exist."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import k8sforensics as kf
from k8sforensics.samples import write_sample_evidence

from .conftest import ROOT


@pytest.fixture(scope="module")
def breach(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, kf.Case]:
    root = tmp_path_factory.mktemp("breach")
    truth = json.loads(write_sample_evidence(root / "evidence", seed=0).read_text())
    case = kf.Case.create(root / "case")
    kf.ingest(case, root / "evidence")
    return root / "evidence", truth, case


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "README.md"
    }


def test_same_seed_same_bytes_other_seed_other_story(tmp_path: Path) -> None:
    write_sample_evidence(tmp_path / "a", seed=0)
    write_sample_evidence(tmp_path / "b", seed=0)
    write_sample_evidence(tmp_path / "c", seed=1)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    a, c = files(tmp_path / "a"), files(tmp_path / "c")
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if k.endswith((".jsonl", ".gz", "truth.json")))


def test_sample_data_is_the_generated_breach(tmp_path: Path) -> None:
    write_sample_evidence(tmp_path, seed=0)
    assert files(ROOT / "sample_data") == files(tmp_path)


def test_only_the_planted_records_are_quarantined(breach: tuple[Path, dict, kf.Case]) -> None:
    root, truth, case = breach
    q = case.quarantine()
    got = sorted((str(Path(p).relative_to(root)), int(line)) for p, line in zip(q.path, q.evidence_line))
    want = sorted(
        (m["file"] + (".gz" if m["file"].startswith("audit/") else ""), m["line"]) for m in truth["malformed"]
    )
    assert got == want


def test_every_evidence_pointer_resolves_to_a_row(breach: tuple[Path, dict, kf.Case]) -> None:
    root, truth, case = breach
    sha = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
    tables = {"audit": case.audit(), "runtime": case.runtime(), "flows": case.flows()}
    rows = {(e, int(n)) for t in tables.values() for e, n in zip(t.evidence_id, t.evidence_line)}
    for step in truth["steps"]:
        assert step["evidence"], f"step {step['id']} has evidence"
        for ev in step["evidence"]:
            assert (sha[ev["file"]], ev["line"]) in rows, (step["id"], ev)


def test_steps_cover_the_kill_chain_with_threat_matrix_ids(breach: tuple[Path, dict, kf.Case]) -> None:
    _, truth, _ = breach
    phases = {s["kill_chain_phase"] for s in truth["steps"]}
    assert {
        "Reconnaissance",
        "Delivery",
        "Exploitation",
        "Installation",
        "Command & Control",
        "Actions on Objectives",
    } <= phases
    for s in truth["steps"]:
        assert s["technique_id"] is None or s["technique_id"].startswith("MS-TA90")
        assert s["attack_id"].startswith("T1") and s["start"] <= s["end"]


def test_traps_are_in_place(breach: tuple[Path, dict, kf.Case]) -> None:
    root, truth, case = breach
    inventory_pods = {f"{p.namespace}/{p.name}" for p in kf.read_inventory(root / "inventory").pods.itertuples()}
    # pods deleted before the dump: only the audit log knows them
    gone = set(truth["deleted_before_dump"])
    pz = f"{truth['patient_zero']['namespace']}/{truth['patient_zero']['pod']}"
    assert pz in gone and not gone & inventory_pods
    audit = case.audit()
    assert pz.split("/")[1] in set(audit.object_name)
    # the patient-zero IP is reused by an innocent pod later
    reuse = [c for c in truth["ip_attribution"] if c["ip"] == truth["patient_zero"]["ip"]]
    assert len({c["pod"] for c in reuse}) == 2
    # a runtime event with a container id and no pod metadata
    rt = case.runtime()
    bare = rt[rt.pod.isna() & rt.container_id.notna() & (rt.source == "falco")]
    assert set(bare.container_id) & {c["container_id"] for c in truth["container_ids"]}


def test_demo_runs_on_the_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from k8sforensics.cli import main

    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    for fmt in ("k8s-audit", "falco", "tetragon", "hubble", "aws-vpc-flow", "kubectl"):
        assert fmt in out
    assert "quarantined 2 record(s)" in out
    # it goes on to detect and to report: the attack in kill-chain order, then the HTML
    assert "findings written to" in out and "Patient zero: pod shop/" in out
    assert out.index("Reconnaissance (") < out.index("Exploitation (") < out.index("Actions on Objectives (")
    assert (tmp_path / "demo" / "report" / "01_kill_chain_timeline.html").is_file()
