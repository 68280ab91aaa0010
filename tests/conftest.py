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
