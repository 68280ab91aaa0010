"""Enrichment on the sample breach: every event answers which pod, which workload — at that moment."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import k8sforensics as kf
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> kf.Case:
    c = kf.Case.create(tmp_path_factory.mktemp("enrich") / "case")
    kf.ingest(c, ROOT / "sample_data")
    return c


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((ROOT / "sample_data" / "truth.json").read_text())


def test_vpc_flows_get_both_ends_at_flow_time(case: kf.Case, truth: dict) -> None:
    flows = case.flows()
    vpc = kf.enrich(flows[flows.source == "aws-vpc-flow"], case, table="flows")
    assert len(vpc) == (flows.source == "aws-vpc-flow").sum()  # no row dropped or repeated
    pz = truth["patient_zero"]
    download = vpc[(vpc.dst_ip == "198.51.100.66") & (vpc.src_ip == pz["ip"])]
    assert set(download.src_pod) == {pz["pod"]} and set(download.dst_kind) == {"external"}
    later = vpc[
        (vpc.src_ip == pz["ip"])
        & (vpc.time > pd.Timestamp(truth["ip_attribution"][1]["time"]) - pd.Timedelta(minutes=1))
    ]
    assert len(later) and pz["pod"] not in set(later.src_pod)  # the reused IP is not patient zero any more
    scan = vpc[vpc.src_ip == "198.51.100.66"]
    assert set(scan.dst_kind) == {"node"}  # the scan hit node addresses


def test_runtime_alert_with_only_a_container_id(case: kf.Case, truth: dict) -> None:
    rt = kf.enrich(case.runtime(), case, table="runtime")
    check = next(c for c in truth["container_ids"] if len(c["container_id"]) == 12)
    hit = rt[rt.container_id == check["container_id"]]
    assert len(hit) and set(hit.pod) == {check["pod"]} and set(hit.namespace) == {check["namespace"]}


def test_audit_actor_by_token_and_by_source_ip(case: kf.Case, truth: dict) -> None:
    audit = kf.enrich(case.audit(), case, table="audit")
    pz = truth["patient_zero"]
    web = audit[audit.user == "system:serviceaccount:shop:web"]
    assert set(web.actor_pod) == {pz["pod"]}  # the bound token names its pod
    api = audit[(audit.user == "system:serviceaccount:payments:payments-api") & (audit.verb == "create")]
    assert set(api.actor_pod) != set(api.source_pod)  # the api token is used from the web pod's IP
    assert set(api.source_pod) == {pz["pod"]}
    exec_row = audit[audit.subresource == "exec"].iloc[0]
    assert exec_row.workload == "api" and exec_row.node == "node-2"  # the target pod's workload and node


def test_enrich_on_read_and_the_manifest_says_so(case: kf.Case) -> None:
    flows = kf.enrich(case.flows(), case)
    assert "src_kind" in flows.columns and flows.src_pod.notna().sum() > case.flows().src_pod.notna().sum()
    steps = case.manifest["enrichment"]["steps"]
    assert steps["flows"] == ["src_endpoint_by_ip_at_time", "dst_endpoint_by_ip_at_time"]
