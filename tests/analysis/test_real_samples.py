"""The rules on real public evidence (../shared/real_samples, read in place): they run on
every format without error, find what the samples were made to show, and stay quiet on the
managed platforms' own agents."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import k8sforensics as kf


@pytest.fixture(scope="module")
def case(real_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> kf.Case:
    case = kf.Case.create(tmp_path_factory.mktemp("real") / "case")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        kf.ingest(case, real_samples, progress=False)
    return case


@pytest.fixture(scope="module")
def findings(case: kf.Case):
    return kf.detect(case)


def test_lateral_movement_graph_on_real_evidence(case: kf.Case) -> None:
    g = kf.lateral_movement(case)
    observed = [d for _, _, d in g.edges(data=True) if d["observed"]]
    assert observed and all(d["event_ids"] for d in observed)
    assert any(d["type"] == "exec" for d in observed)  # the samples' pods/exec requests
    # OpenShift's etcd static pod is privileged with /etc/kubernetes/manifests mounted: it can take its node
    etcd = next(n for n in g if n.startswith("pod:openshift-etcd/etcd-master-0"))
    escape = g.get_edge_data(etcd, "node:master-0.imeixner20210707.lab.upshift.rdu2.redhat.com")
    assert (
        "privileged" in escape["host_escape?"]["reason"]
        and "/etc/kubernetes/manifests" in escape["host_escape?"]["reason"]
    )
    # a CA certificate mounted from the host is not a way out; a pod that opts out of its token has none to steal
    mco = next(n for n in g if n.startswith("pod:openshift-machine-config-operator/machine-config-operator-"))
    assert not any(d["type"] == "host_escape" for _, _, d in g.out_edges(mco, data=True))
    svclb = [n for n in g if n.startswith("pod:kube-system/svclb-traefik-")]
    assert svclb and not any(d["type"] == "token_steal" for n in svclb for _, _, d in g.out_edges(n, data=True))
    pods = case.context("pods")
    placed = pods[pods["node"].notna()]
    assert all(g.has_edge(f"node:{r.node}", f"pod:{r.namespace}/{r.name}") for r in placed.itertuples())


def test_what_the_samples_show_is_found(findings) -> None:
    by_rule = findings.groupby("rule_id")["summary"].apply(" | ".join)
    assert "minikube-user ran exec in pod default/nginx-deployment" in by_rule["k8s-exec-into-pod"]
    assert "clusterrolebindings some-reader-binding" in by_rule["k8s-cluster-admin-binding"]
    assert "granting *" in by_rule["k8s-risky-role"]
    # Panther's "system principal from a public IP" test event
    assert (
        "kube-system/coredns" in by_rule["k8s-token-used-elsewhere"]
        and "5.5.5.5" in by_rule["k8s-token-used-elsewhere"]
    )
    assert "not-reverse-shell.com" in by_rule["rt-network-tool"]
    assert len(findings[findings["rule_source"].str.startswith("falco:")]) >= 20


def test_platform_agents_and_ordinary_clients_are_not_findings(findings) -> None:
    text = " ".join(findings["summary"])
    assert "container-engine-robot" not in text and "aksService" not in text
    assert "resourcequota-controller" not in text  # controller tokens used by the control plane
    assert "istio-system/prometheus" not in " ".join(
        findings.loc[findings["rule_id"] == "net-port-scan", "summary"]
    )  # a scraper
    assert not findings["summary"].str.contains(":123 every").any()  # NTP is periodic by design
