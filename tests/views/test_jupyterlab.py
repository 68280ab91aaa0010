"""The notebooks in a real JupyterLab: a server on loopback, driven by Playwright with Debian's
Chromium (never a browser Playwright downloads). The remediation checklist runs, a tick in the
browser reaches ``checklist.json`` in the case; the kill-chain notebook's figure and widgets render.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

import k8sforensics as kf

from ..conftest import ROOT

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
KERNEL_STATUS = '#jp-main-statusbar .jp-StatusBar-TextItem[title^="Change kernel"]'  # "Python 3 (ipykernel) | Idle"
# every code cell has run: its prompt shows a number, and the notebook's indicator is idle
ALL_EXECUTED = """() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!nb) return false;
  const ind = nb.querySelector('.jp-Notebook-ExecutionIndicator');
  if (!ind || ind.getAttribute('data-status') !== 'idle') return false;
  const prompts = [...nb.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
  return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t));
}"""


def _require() -> Any:
    """Playwright's sync API, or a skip — a failure where ``make test`` promised a browser."""
    missing = None
    try:
        from playwright import sync_api
    except ImportError:
        missing = "the playwright package is not installed (pip install -e '.[test]')"
    if CHROMIUM is None:
        missing = "chromium is not installed (make test installs Debian's chromium)"
    if missing:
        if os.environ.get("K8SF_REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)
    return sync_api


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(sample_case: kf.Case, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    _require()
    root = tmp_path_factory.mktemp("lab")
    state = tmp_path_factory.mktemp("labstate")  # settings, workspaces, runtime: never ~/.jupyter
    case = root / "case"
    shutil.copytree(sample_case.path, case)  # the shared sample case stays untouched
    for name in ("01_kill_chain_timeline.ipynb", "03_remediation_checklist.ipynb"):
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        params.source = re.sub(r'case_dir = "[^"]*"', f'case_dir = "{case}"', params.source)
        nbformat.write(nb, root / name)
    settings = state / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # render every cell, not only those in view: the test reads outputs far down the notebook
    notebook_settings = state / "settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        JUPYTER_CONFIG_DIR=str(state / "config"),
        JUPYTER_DATA_DIR=str(state / "data"),
        JUPYTERLAB_SETTINGS_DIR=str(state / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
        PYTHONUNBUFFERED="1",
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(state / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited {proc.returncode}:\n{(state / 'server.log').read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError((state / "server.log").read_text()[-3000:])
            time.sleep(0.25)
        yield {"base": base, "token": token, "root": root, "case": case, "log": state / "server.log"}
    finally:
        try:  # SIGTERM lets the server shut its kernels down; the process group makes sure
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(lab: dict[str, Any]) -> Iterator[Any]:
    sync_api = _require()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, lab: dict[str, Any], tmp_path: Path) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(90_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.screenshot(path=str(tmp_path / "last.png"))  # left in the test's tmp folder, for a failure
    ctx.close()


def _open_and_run_all(page: Any, lab: dict[str, Any], notebook: str) -> Any:
    from playwright.sync_api import expect

    # a workspace of its own, reset: only this notebook open, whatever ran before
    page.goto(f"{lab['base']}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?reset&token={lab['token']}")
    nb = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first
    expect(nb).to_be_visible()
    nb.locator(".jp-Cell").first.click()  # the menu acts on the focused notebook
    # the toolbar says idle before a kernel exists; the status bar waits for the real one
    expect(page.locator(KERNEL_STATUS)).to_have_text(re.compile(r"^(?!No Kernel).*\| Idle$"), timeout=120_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    item = page.locator('.lm-Menu-item[data-command="runmenu:run-all"]')
    expect(item).not_to_have_class(re.compile(r"lm-mod-disabled"))
    item.click()
    page.wait_for_function(ALL_EXECUTED, timeout=240_000, polling=500)
    errors = nb.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] .ansi-red-fg, .jp-RenderedText .ansi-red-intense-fg"
    )
    assert errors.count() == 0, errors.first.inner_text()
    return nb


@pytest.mark.slow
def test_ticking_an_action_in_jupyterlab_writes_the_checklist(page: Any, lab: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    saved = lab["case"] / "remediation" / "checklist.json"
    nb = _open_and_run_all(page, lab, "03_remediation_checklist.ipynb")
    box = nb.locator(".k8sf-action input[type=checkbox]").first
    expect(box).to_be_visible(timeout=60_000)
    assert not saved.exists() or not any(v.get("done") for v in json.loads(saved.read_text())["items"].values())
    box.check()
    expect(box).to_be_checked()
    deadline = time.monotonic() + 20
    while not (saved.exists() and any(v.get("done") for v in json.loads(saved.read_text())["items"].values())):
        assert time.monotonic() < deadline, "the tick never reached checklist.json"
        time.sleep(0.2)
    items = json.loads(saved.read_text())["items"]
    first = kf.remediation(kf.Case.open(lab["case"]))["action_id"].iloc[0]
    assert items[first]["done"] is True  # the box ticked is the first action of the checklist
    expect(nb.locator(".widget-html", has_text="1 of ")).to_be_visible()


@pytest.mark.slow
def test_kill_chain_notebook_renders_its_figure_and_widgets(page: Any, lab: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    nb = _open_and_run_all(page, lab, "01_kill_chain_timeline.ipynb")
    figure = nb.locator(".jp-OutputArea .js-plotly-plot").first
    figure.scroll_into_view_if_needed()
    expect(figure.locator("svg.main-svg").first).to_be_visible(timeout=60_000)
    assert figure.locator(".scatterlayer .trace").count() > 0
    expect(nb.locator(".widget-dropdown").first).to_be_attached()
    expect(
        nb.locator(".widget-inline-hbox .widget-slider, .jupyter-widget-slider, .widget-hslider").first
    ).to_be_attached()
    # text_content, not inner_text: JupyterLab leaves cells out of view unrendered (content-visibility)
    assert "Patient zero: pod shop/web-q7rclvtq89-mtpxj" in nb.text_content()
