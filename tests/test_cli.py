"""The CLI is a thin layer: it prints the summary, and errors as one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import k8sforensics as kf
from k8sforensics.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k8sforensics", *args], capture_output=True, text=True)


def test_ingest_prints_summary(tmp_path: Path, audit_fixtures: Path) -> None:
    p = run("ingest", str(audit_fixtures), "--case", str(tmp_path / "case"), "--cluster", "lab")
    assert p.returncode == 0, p.stderr
    assert "k8s-audit" in p.stdout and "quarantined 4 record(s)" in p.stdout
    assert kf.Case.open(tmp_path / "case").cluster == "lab"


def test_errors_are_one_line(tmp_path: Path, audit_fixtures: Path) -> None:
    p = run("ingest", "/no/such/file.log", "--case", str(tmp_path / "case"))
    assert p.returncode == 2
    assert p.stderr.strip() == "k8sforensics: error: /no/such/file.log: no such file or folder — check the path"
    p = run(
        "ingest",
        str(audit_fixtures / "k8s_audit__bad_lines.jsonl"),
        "--case",
        str(tmp_path / "c2"),
        "--on-bad-lines",
        "error",
    )
    assert p.returncode == 2 and "k8s_audit__bad_lines.jsonl:2: not valid JSON" in p.stderr
    assert "Traceback" not in p.stderr


def test_formats_lists_every_format(capsys) -> None:
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for name in ("k8s-audit", "gke-audit", "aks-audit"):
        assert name in out


def test_detect_and_report_commands(tmp_path: Path) -> None:
    from .conftest import FIXTURES, ROOT

    case = tmp_path / "case"
    assert run("ingest", str(ROOT / "sample_data"), "--case", str(case), "--no-progress").returncode == 0
    p = run("detect", str(case), "--sigma", str(FIXTURES / "sigma"))
    assert p.returncode == 0, p.stderr
    assert "findings written to" in p.stdout and "Patient zero" in p.stdout
    assert "skipped" in p.stderr and "hostPath" in p.stderr  # unmapped Sigma fields are reported
    assert kf.Case.open(case).manifest["detections"][-1]["sigma"]["rules"] == 4
    p = run("report", str(case), "--out", str(tmp_path / "html"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "html" / "01_kill_chain_timeline.html").is_file()
    # one progress line per notebook, and nothing else: no kernel warnings (the kernel is on Unix sockets)
    assert p.stderr.splitlines() == [
        "report: running 01_kill_chain_timeline (1/3)",
        "report: running 02_lateral_movement (2/3)",
        "report: running 03_remediation_checklist (3/3)",
    ], p.stderr
    for fmt, names in (
        ("timesketch", ["timeline.jsonl"]),
        ("ocsf", ["ocsf.jsonl"]),
        ("csv", ["findings.csv", "timeline.csv"]),
    ):
        p = run("export", str(case), "--format", fmt, "--out", str(tmp_path / fmt))
        assert p.returncode == 0, p.stderr
        assert sorted(x.name for x in (tmp_path / fmt).iterdir()) == names
    p = run("remediate", str(case))
    assert p.returncode == 0, p.stderr
    assert "2. contain" in p.stdout and "kubectl delete clusterrolebinding system:monitoring-agents" in p.stdout
    assert (case / "remediation" / "10-networkpolicies.yaml").is_file()


def test_version_names_the_package_and_the_case_schema() -> None:
    from k8sforensics.schema import SCHEMA_VERSION

    p = run("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"k8sforensics {kf.__version__} (case schema {SCHEMA_VERSION})"


def test_notebooks_are_copied_out_and_an_edited_one_is_kept(tmp_path: Path) -> None:
    p = run("notebooks", str(tmp_path / "nb"))
    assert p.returncode == 0, p.stderr
    copied = sorted(x.name for x in (tmp_path / "nb").iterdir())
    assert copied == ["01_kill_chain_timeline.ipynb", "02_lateral_movement.ipynb", "03_remediation_checklist.ipynb"]
    (tmp_path / "nb" / "01_kill_chain_timeline.ipynb").write_text("{}")  # an analyst's edits
    p = run("notebooks", str(tmp_path / "nb"))
    assert p.returncode == 2 and "exists" in p.stderr and "Traceback" not in p.stderr
    assert (tmp_path / "nb" / "01_kill_chain_timeline.ipynb").read_text() == "{}"
    assert run("notebooks", str(tmp_path / "nb"), "--force").returncode == 0
    assert (tmp_path / "nb" / "01_kill_chain_timeline.ipynb").read_text() != "{}"


def test_detect_on_a_missing_case_is_one_line(tmp_path: Path) -> None:
    p = run("detect", str(tmp_path / "nope"))
    assert p.returncode == 2 and "not a case" in p.stderr and "Traceback" not in p.stderr
    p = run("report", str(tmp_path / "nope"))
    assert p.returncode == 2 and "not a case" in p.stderr and "Traceback" not in p.stderr
    p = run("remediate", str(tmp_path / "nope"))
    assert p.returncode == 2 and "not a case" in p.stderr and "Traceback" not in p.stderr


def test_ingest_on_a_local_dask_cluster(tmp_path: Path) -> None:
    from .conftest import ROOT

    p = run(
        "ingest",
        str(ROOT / "sample_data" / "flows"),
        "--case",
        str(tmp_path / "case"),
        "--no-progress",
        "--dask",
        "local",
    )
    assert p.returncode == 0, p.stderr
    assert kf.Case.open(tmp_path / "case").manifest["tables"]["flows"]["rows"] > 1000
