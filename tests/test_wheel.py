"""The built wheel, installed (not editable) in a fresh virtual environment outside the
checkout: the demo and the report work from what the wheel ships — the notebooks, the report
template, the sample evidence generator — and nothing of the checkout is on the path."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import ROOT


@pytest.mark.slow
def test_the_wheel_outside_the_checkout_runs_the_demo_and_writes_the_three_pages(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("k8sforensics-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)  # type: ignore[attr-defined]
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # the dependencies from this environment (a path line, not a site dir: its editable-install hooks
    # are not run, so k8sforensics can only come from the wheel); the wheel itself installed for real
    Path(site, "k8sf_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # and the dependencies' data files (nbconvert's templates), which pip would have put in share/jupyter
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    where = subprocess.run(
        [python, "-c", "import k8sforensics; print(k8sforensics.__file__)"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(Path(site)), where  # the wheel's copy, not the checkout
    p = subprocess.run(
        [venv / "bin" / "k8sforensics", "demo", "--out", "case"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "report: skipped" not in p.stdout and p.stdout.count("report: ") >= 3
    pages = sorted(x.name for x in (work / "case" / "report").glob("*.html"))
    assert pages == ["01_kill_chain_timeline.html", "02_lateral_movement.html", "03_remediation_checklist.html"]
    assert "WARNING" not in p.stderr  # no kernel warnings
    copied = subprocess.run(
        [venv / "bin" / "k8sforensics", "notebooks", "nb"], cwd=work, env=env, capture_output=True, text=True
    )
    assert copied.returncode == 0 and len(list((work / "nb").glob("*.ipynb"))) == 3
