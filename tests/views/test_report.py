"""The report end to end: the shipped notebooks run headless (papermill) on a case that holds
the sample breach plus attacker-controlled strings made to look like markup; the HTML is
opened in headless Chromium, the plotly figure must render and no planted script may run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

import k8sforensics as kf
from k8sforensics.views.report import ReportError, run_report, shipped_notebooks

from ..conftest import ROOT

MARK = "data-k8sf-xss"
PAYLOADS = [
    f"<img src=x onerror=\"document.body.setAttribute('{MARK}','img')\">",
    f"<script>document.body.setAttribute('{MARK}','script')</script>",
    f"\"><svg onload=\"document.body.setAttribute('{MARK}','svg')\">",
]


def _event(t: str, user: str, ua: str, verb: str, ref: dict, uri: str, code: int = 200) -> str:
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": f"x-{t}-{verb}",
            "stage": "ResponseComplete",
            "requestURI": uri,
            "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]},
            "sourceIPs": ["198.51.100.66"],
            "userAgent": ua,
            "objectRef": ref,
            "responseStatus": {"code": code},
            "requestReceivedTimestamp": t,
            "stageTimestamp": t,
            "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
        }
    )


@pytest.fixture(scope="module")
def hostile_case(tmp_path_factory: pytest.TempPathFactory) -> kf.Case:
    root = tmp_path_factory.mktemp("hostile")
    evil = root / "evil-audit.jsonl"
    api = json.loads((ROOT / "sample_data" / "truth.json").read_text())["lateral_path"][3]["id"].split("/")[1]
    cmd = "&command=".join(["sh", "-c", PAYLOADS[1].replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")])
    evil.write_text(
        "\n".join(
            [
                _event(
                    "2026-03-10T12:00:00.000000Z",
                    PAYLOADS[0],
                    PAYLOADS[2],
                    "create",
                    {"resource": "pods", "namespace": "payments", "name": api, "subresource": "exec"},
                    f"/api/v1/namespaces/payments/pods/{api}/exec?command={cmd}&stdout=true",
                    code=101,
                ),
                _event(
                    "2026-03-10T12:01:00.000000Z",
                    PAYLOADS[0],
                    PAYLOADS[1],
                    "get",
                    {"resource": "secrets", "namespace": "kube-system", "name": "admin-token"},
                    "/api/v1/namespaces/kube-system/secrets/admin-token",
                ),
                # a phase with few findings, so the payload reaches the narrative too
                _event(
                    "2026-03-10T12:02:00.000000Z",
                    PAYLOADS[1],
                    PAYLOADS[0],
                    "create",
                    {"resource": "pods", "namespace": "payments", "name": api, "subresource": "portforward"},
                    f"/api/v1/namespaces/payments/pods/{api}/portforward",
                ),
            ]
        )
        + "\n"
    )
    case = kf.Case.create(root / "case", cluster="prod-eu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        kf.ingest(case, [ROOT / "sample_data", evil], progress=False)
    kf.detect(case)
    return case


@pytest.fixture(scope="module")
def report(hostile_case: kf.Case) -> list[Path]:
    return run_report(hostile_case.path)


@pytest.mark.slow
def test_every_shipped_notebook_runs_headless(report: list[Path]) -> None:
    assert [p.stem for p in report] == [nb.stem for nb in shipped_notebooks()] and report
    for page in report:
        assert page.stat().st_size > 100_000  # plotly.js is inlined: the page works offline
        executed = json.loads(page.with_suffix(".ipynb").read_text())
        errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors


@pytest.mark.slow
def test_report_tells_the_attack_and_hides_code(report: list[Path]) -> None:
    text = report[0].read_text()
    assert "Patient zero: pod shop/web-q7rclvtq89-mtpxj" in text and "Actions on Objectives" in text
    assert "kf.kill_chain(" not in text  # code hidden by default


@pytest.mark.slow
def test_attacker_strings_are_escaped_everywhere(report: list[Path], hostile_case: kf.Case) -> None:
    findings = hostile_case.findings()
    assert findings["summary"].str.contains("<img src=x", regex=False).any()  # the payload is in the findings...
    assert "<script>" in kf.narrative(kf.kill_chain(hostile_case, max_context=0))  # ...and in the narrative
    for page in report:
        text = page.read_text()
        for payload in PAYLOADS:
            assert payload not in text  # ...and never raw in any page
    assert "&lt;img src=x" in report[0].read_text()  # shown, as text


@pytest.mark.slow
def test_lateral_movement_page_shows_the_path_the_cut_and_exports(report: list[Path], hostile_case: kf.Case) -> None:
    page = next(p for p in report if p.stem == "02_lateral_movement")
    text = page.read_text()
    assert "pod:shop/web-q7rclvtq89-mtpxj" in text and "host_escape" in text and "edges to cut" in text.lower()
    assert "kf.lateral_movement(" not in text  # code hidden
    assert (hostile_case.path / "graph" / "lateral_movement.graphml").exists()
    assert (hostile_case.path / "graph" / "lateral_movement.cyjs").exists()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_remediation_page_is_the_checklist_and_the_objects_are_written(
    report: list[Path], hostile_case: kf.Case
) -> None:
    page = next(p for p in report if p.stem == "03_remediation_checklist")
    text = page.read_text()
    assert (
        "2. contain" in text
        and "1. preserve evidence" in text
        and "delete the binding system:monitoring-agents the attacker created" in text
    )
    assert "☐ isolate pod shop/web-q7rclvtq89-mtpxj" in text
    # every generated object file whole, in a collapsible monospace block (never cut mid-object)
    import html as html_module

    for path in sorted((hostile_case.path / "remediation").glob("*.yaml")):
        # (the page's serialiser writes quotes in text as they are: only &, < and > stay escaped)
        assert f"<summary>{path.name} (" in text and html_module.escape(path.read_text(), quote=False) in text
    assert (hostile_case.path / "remediation" / "10-networkpolicies.yaml").exists()


@pytest.mark.slow
@pytest.mark.parametrize("page", [0, 1, 2], ids=["kill_chain", "lateral_movement", "remediation"])
def test_report_renders_in_a_real_browser_and_no_planted_script_runs(
    report: list[Path], tmp_path: Path, page: int
) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("K8SF_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed; `make test` installs Debian's chromium package")
        pytest.skip("chromium not installed (make test installs it)")
    p = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            report[page].as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    dom = p.stdout
    assert "<html" in dom, p.stderr[-2000:]
    if page < 2:
        assert 'class="main-svg"' in dom, "the plotly figure did not render"
        assert re.search(r'class="trace scatter', dom), "the figure has no traces"
    else:
        assert 'class="k8sf-checklist"' in dom, "the checklist did not render"
    assert MARK not in re.search(r"<body[^>]*>", dom).group(0), "a planted script ran"  # type: ignore[union-attr]
    if page == 0:
        assert "&lt;img src=x onerror=" in dom  # shown as text


def test_report_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(kf.CaseError, match="not a case"):
        run_report(tmp_path)
    case = kf.Case.create(tmp_path / "c")
    broken = tmp_path / "99_broken.ipynb"
    broken.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "id": "parameters",
                        "cell_type": "code",
                        "metadata": {"tags": ["parameters"]},
                        "source": "case_dir = ''\ninteractive = True",
                        "outputs": [],
                        "execution_count": None,
                    },
                    {
                        "id": "broken",
                        "cell_type": "code",
                        "metadata": {},
                        "source": "1/0",
                        "outputs": [],
                        "execution_count": None,
                    },
                ],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    with pytest.raises(ReportError, match="99_broken.ipynb failed in cell .*ZeroDivisionError"):
        run_report(case.path, notebooks=[broken], out=tmp_path / "out")


# Everything a page may load: itself and inline data. Anything else is a request that leaves the
# page (a CDN script, a font, a tile) and fails offline.
_LOCAL = ("file:", "data:", "blob:", "about:")
# elements wider than the viewport, and whether the page scrolls sideways (plotly's text-measuring
# svg sits off screen at -10000 px: not shown, not counted)
_TOO_WIDE = """() => {
  const w = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getClientRects().length)
    .filter(e => { const r = e.getBoundingClientRect(); return r.right > 0 && r.left < w && r.width > w + 1; })
    .map(e => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')} ${Math.round(e.getBoundingClientRect().width)}px`);
  return {scroll: document.documentElement.scrollWidth, width: w, wide: wide.slice(0, 10)};
}"""


@pytest.mark.slow
@pytest.mark.parametrize("page", [0, 1, 2], ids=["kill_chain", "lateral_movement", "remediation"])
def test_report_page_is_self_contained_and_fits_1280px(report: list[Path], tmp_path: Path, page: int) -> None:
    """Opened with every name unresolvable and every non-local request refused: nothing is
    requested, nothing fails, the figure draws, no element is wider than a 1280 px window.
    The screenshot goes to $K8SF_SCREENSHOTS (``make screenshots`` writes docs/screenshots)."""
    from .test_jupyterlab import CHROMIUM, _require

    sync_api = _require()
    outside: list[str] = []
    failed: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND"],
        )
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            pg = ctx.new_page()
            pg.on("requestfailed", lambda r: failed.append(r.url))

            def refuse(route: Any) -> None:
                if route.request.url.startswith(_LOCAL):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            pg.route("**/*", refuse)
            pg.goto(report[page].as_uri(), wait_until="load", timeout=120_000)
            pg.wait_for_timeout(1500)  # plotly draws after load
            if page < 2:
                assert pg.locator(".main-svg").count() > 0, "the plotly figure did not render"
            if page == 0:  # the executive summary first: above the findings, on the first screens
                assert pg.locator("#summary").count() == 1
                assert pg.locator("#summary").bounding_box()["y"] < pg.locator("#findings").bounding_box()["y"]
            fit = pg.evaluate(_TOO_WIDE)
            shots = Path(os.environ.get("K8SF_SCREENSHOTS") or tmp_path)
            shots.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(shots / f"{report[page].stem}.png"))  # the first screen
        finally:
            browser.close()
    assert outside == [] and failed == [], f"requests that left the page: {outside}; failed: {failed}"
    assert fit["scroll"] <= fit["width"] and not fit["wide"], f"wider than 1280 px: {fit}"
