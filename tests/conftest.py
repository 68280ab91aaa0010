"""Shared test fixtures: paths to the tiny hand-written fixtures and to the real public
samples in ../shared/real_samples (read in place; tests that need them skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL_SAMPLES = Path(os.environ.get("K8SF_REAL_SAMPLES", ROOT.parent / "shared" / "real_samples"))


@pytest.fixture(scope="session")
def real_samples() -> Path:
    if not REAL_SAMPLES.is_dir():
        pytest.skip(f"real samples not present at {REAL_SAMPLES}")
    return REAL_SAMPLES


@pytest.fixture(scope="session")
def audit_fixtures() -> Path:
    return FIXTURES / "audit"


@pytest.fixture(scope="session")
def sample_truth() -> dict:
    """The ground truth of the sample breach (``k8sforensics.samples``, seed 0)."""
    import json

    return json.loads((ROOT / "sample_data" / "truth.json").read_text())


@pytest.fixture(scope="session")
def sample_case(tmp_path_factory: pytest.TempPathFactory):
    """The sample breach ingested and run through the built-in rules once per session.
    Tests must not change it: use ``detect(..., save=False)`` for other rule sets."""
    import warnings

    import k8sforensics as kf

    case = kf.Case.create(tmp_path_factory.mktemp("sample") / "case", cluster="prod-eu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the two planted bad records
        kf.ingest(case, ROOT / "sample_data", progress=False)
    kf.detect(case)
    return case
