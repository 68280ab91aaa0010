"""Sigma rules run over the case: audit and process-creation rules match what they should
on the sample breach; rules with unmapped fields or other log sources are reported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.detect import Evidence, SigmaRules, load_sigma_rules
from k8sforensics.errors import EvidenceError
from tests.event_frames import audit, frame

from ..conftest import FIXTURES

SIGMA = FIXTURES / "sigma"


@pytest.fixture(scope="module")
def loaded() -> SigmaRules:
    return load_sigma_rules(SIGMA)


def test_loaded_and_skipped_rules(loaded) -> None:
    assert sorted(r.title for r in loaded.rules) == [
        "Exec into a pod by a service account",
        "Privileged container in a pod create (request body)",
        "Secret read from the pod network",
        "nsenter into the host's PID 1",
    ]
    reasons = {Path(f).name: r for f, r in zip(loaded.skipped["file"], loaded.skipped["reason"])}
    assert reasons["hostpath_top_level.yml"] == "fields with no column mapping: hostPath"
    assert "windows/process_creation is not read" in reasons["windows_rule.yml"]
    assert reasons["broken.yml"].startswith("unreadable")
    exec_rule = next(r for r in loaded.rules if r.title.startswith("Exec"))
    assert (exec_rule.technique_id, exec_rule.attack_id, exec_rule.tactic, exec_rule.severity) == (
        "MS-TA9006",
        "T1609",
        "Execution",
        "high",
    )
    assert exec_rule.source.startswith("sigma:5b8d1c3e")


def test_sigma_findings_on_the_sample_breach(sample_case: kf.Case, loaded) -> None:
    found = kf.detect(sample_case, rules=loaded.rules, save=False)
    by_title = dict(list(found.groupby("title")))
    assert by_title["Exec into a pod by a service account"]["time"].tolist() == [pd.Timestamp("2026-03-10T10:25:00Z")]
    assert by_title["Privileged container in a pod create (request body)"]["entity"].tolist() == [
        "payments/payments-api"
    ]
    nsenter = by_title["nsenter into the host's PID 1"]
    assert nsenter["entity"].tolist() == ["kube-system/kube-proxy-x7k2p"]
    # the secret was read from patient zero's address, inside the pod CIDR; 403s are attempts but still requests
    assert len(by_title["Secret read from the pod network"]) >= 1
    assert set(found["rule_source"].str.split(":").str[0]) == {"sigma"}


def test_modifiers_against_lists_and_case() -> None:
    rules = load_sigma_rules(SIGMA / "exec_into_pod.yml").rules
    rows = [
        audit(
            "2026-01-01T10:00:00Z", "SYSTEM:SERVICEACCOUNT:a:b", "GET", "pods", subresource="exec"
        ),  # case-insensitive
        audit(
            "2026-01-01T10:01:00Z",
            "system:serviceaccount:a:b",
            "create",
            "pods",
            subresource="exec",
            user_groups=["system:authenticated", "system:nodes"],
        ),  # filtered
        audit("2026-01-01T10:02:00Z", "alice", "create", "pods", subresource="exec"),
    ]  # not a SA
    hits = rules[0].logic(Evidence(audit=frame("audit", *rows)))
    assert hits["time"].tolist() == [pd.Timestamp("2026-01-01T10:00:00Z")]


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="no such Sigma rule"):
        load_sigma_rules(tmp_path / "nope")


def test_extra_field_mapping_makes_a_rule_runnable() -> None:
    got = load_sigma_rules(SIGMA / "hostpath_top_level.yml", audit_fields={"hostPath": "request_object"})
    assert len(got.rules) == 1 and got.skipped.empty
