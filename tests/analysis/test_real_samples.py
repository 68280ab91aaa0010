"""The rules on real public evidence (../shared/real_samples, read in place): they run on
every format without error, find what the samples were made to show, and stay quiet on the
managed platforms' own agents."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import k8sforensics as kf


@pytest.fixture(scope="module")
def findings(real_samples: Path, tmp_path_factory: pytest.TempPathFactory):
    case = kf.Case.create(tmp_path_factory.mktemp("real") / "case")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        case.ingest(real_samples, progress=False)
    return kf.detect(case)


def test_what_the_samples_show_is_found(findings) -> None:
    by_rule = findings.groupby("rule_id")["summary"].apply(" | ".join)
    assert "minikube-user ran exec in pod default/nginx-deployment" in by_rule["k8s-exec-into-pod"]
    assert "clusterrolebindings some-reader-binding" in by_rule["k8s-cluster-admin-binding"]
    assert "granting *" in by_rule["k8s-risky-role"]
    # Panther's "system principal from a public IP" test event
    assert "kube-system/coredns" in by_rule["k8s-token-used-elsewhere"] and "5.5.5.5" in by_rule["k8s-token-used-elsewhere"]
    assert "not-reverse-shell.com" in by_rule["rt-network-tool"]
    assert len(findings[findings["rule_source"].str.startswith("falco:")]) >= 20


def test_platform_agents_and_ordinary_clients_are_not_findings(findings) -> None:
    text = " ".join(findings["summary"])
    assert "container-engine-robot" not in text and "aksService" not in text
    assert "resourcequota-controller" not in text  # controller tokens used by the control plane
    assert "istio-system/prometheus" not in " ".join(findings.loc[findings["rule_id"] == "net-port-scan", "summary"])  # a scraper
    assert not findings["summary"].str.contains(":123 every").any()  # NTP is periodic by design
