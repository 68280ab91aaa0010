"""Pod lifetimes and attribution: the rules, the sample breach's ground truth, and a property
test against brute force."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import k8sforensics as kf
from k8sforensics.context import attribute_frame, fold_pods

from ..conftest import ROOT

T = pd.Timestamp("2026-03-10T08:00:00Z")


def ts(minutes: float) -> pd.Timestamp:
    return T + pd.Timedelta(minutes=minutes)


def audit_rows(events: list[tuple]) -> pd.DataFrame:
    """(minute, verb, namespace, pod, subresource, body) → the audit columns fold_pods reads."""
    rows = []
    for minute, verb, ns, pod, sub, body in events:
        rows.append(
            {
                "time": ts(minute),
                "verb": verb,
                "resource": "pods",
                "subresource": sub,
                "object_namespace": ns,
                "object_name": pod,
                "response_code": 200,
                "request_object": json.dumps(body) if body else None,
                "sa_namespace": None,
                "token_pod": None,
                "token_pod_uid": None,
                "token_node": None,
            }
        )
    return pd.DataFrame(rows)


def lifecycle(
    ns: str, pod: str, ip: str, start: float, end: float | None, *, host_network: bool = False
) -> list[tuple]:
    ev = [
        (
            start,
            "create",
            ns,
            pod,
            None,
            {
                "metadata": {"name": pod, "uid": f"uid-{pod}"},
                "spec": {"nodeName": "node-1", "hostNetwork": host_network},
            },
        ),
        (start + 0.05, "patch", ns, pod, "status", {"status": {"podIP": ip, "podIPs": [{"ip": ip}]}}),
    ]
    if end is not None:
        ev.append((end, "delete", ns, pod, None, None))
    return ev


def test_intervals_of_one_ip_never_overlap_and_conflicts_are_reported() -> None:
    # a finished Job pod is never deleted; a new pod takes its IP
    audit = audit_rows(
        lifecycle("ops", "backup-1", "10.244.1.5", 0, None) + lifecycle("shop", "web-1", "10.244.1.5", 30, None)
    )
    pod_ips, _, conflicts = fold_pods(audit=audit)
    a, b = pod_ips.iloc[0], pod_ips.iloc[1]
    assert (a.pod, a.end) == ("backup-1", b.start)  # held only until the new pod took it
    assert pd.isna(b.end)  # still alive: open end
    assert conflicts.to_dict("records") == [
        {"ip": "10.244.1.5", "pod": "ops/backup-1", "next_pod": "shop/web-1", "end_was": None, "end_set": b.start}
    ]


def test_the_boundary_belongs_to_the_new_pod() -> None:
    audit = audit_rows(
        lifecycle("shop", "old", "10.244.1.7", 0, 10) + lifecycle("shop", "new", "10.244.1.7", 9.95, None)
    )
    pod_ips, _, _ = fold_pods(audit=audit)
    new_start = pod_ips[pod_ips.pod == "new"].start.iloc[0]
    flows = pd.DataFrame({"ip": ["10.244.1.7"] * 3, "time": [new_start - pd.Timedelta("1ns"), new_start, ts(20)]})
    got = attribute_frame(flows, pod_ips, None, ip="ip")
    assert list(got.pod) == ["old", "new", "new"]


def test_host_network_pods_never_claim_the_node_ip() -> None:
    audit = audit_rows(lifecycle("kube-system", "kube-proxy-abc", "10.0.1.11", 0, None, host_network=True))
    pod_ips, _, _ = fold_pods(audit=audit)
    assert pod_ips.empty
    nodes = pd.DataFrame({"name": ["node-1"], "internal_ips": [["10.0.1.11"]], "external_ips": [None]})
    got = attribute_frame(
        pd.DataFrame({"ip": ["10.0.1.11", "8.8.8.8"], "time": [ts(5), ts(5)]}), pod_ips, nodes, ip="ip"
    )
    assert list(got.kind) == ["node", "external"] and got.node.iloc[0] == "node-1" and pd.isna(got.node.iloc[1])


@pytest.fixture(scope="module")
def breach_case(tmp_path_factory: pytest.TempPathFactory) -> kf.Case:
    case = kf.Case.create(tmp_path_factory.mktemp("lifetimes") / "case")
    kf.ingest(case, ROOT / "sample_data")
    return case


def test_ground_truth_ip_and_container_checks(breach_case: kf.Case) -> None:
    truth = json.loads((ROOT / "sample_data" / "truth.json").read_text())
    for check in truth["ip_attribution"]:
        got = kf.attribute(breach_case, ip=check["ip"], time=check["time"])
        assert (got and got.get("pod")) == check["pod"], check
    for check in truth["container_ids"]:
        got = kf.attribute(breach_case, container_id=check["container_id"])
        assert got is not None and (got["namespace"], got["pod"]) == (check["namespace"], check["pod"]), check


def test_pods_gone_before_the_dump_come_from_the_audit_log(breach_case: kf.Case) -> None:
    truth = json.loads((ROOT / "sample_data" / "truth.json").read_text())
    pod_ips = breach_case.context("pod_ips")
    for name in truth["deleted_before_dump"]:
        ns, pod = name.split("/")
        rows = pod_ips[(pod_ips.namespace == ns) & (pod_ips.pod == pod)]
        assert len(rows) == 1 and rows.end.notna().all(), name
    pz = truth["patient_zero"]
    row = pod_ips[pod_ips.pod == pz["pod"]].iloc[0]
    assert (row.pod_uid, row.workload_kind, row.workload) == (
        pz["pod_uid"],
        "Deployment",
        "web",
    )  # from the token and Tetragon


intervals = st.lists(
    st.tuples(
        st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        st.integers(0, 100),
        st.one_of(st.none(), st.integers(1, 60)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    spec=intervals,
    probes=st.lists(
        st.tuples(st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.9.9.9"]), st.integers(-5, 180)), max_size=30
    ),
)
def test_no_overlaps_and_attribution_equals_brute_force(
    spec: list[tuple[str, int, int | None]], probes: list[tuple[str, int]]
) -> None:
    events = []
    for k, (ip, start, length) in enumerate(spec):
        events += lifecycle("ns", f"p{k}", ip, start, None if length is None else start + length)
    pod_ips, _, _ = fold_pods(audit=audit_rows(events))
    for _, group in pod_ips.groupby("ip"):
        g = group.sort_values("start")
        ends = g.end.tolist()[:-1]
        assert all(pd.notna(e) for e in ends)  # only the last interval of an IP may be open
        assert all(e <= s for e, s in zip(ends, g.start.tolist()[1:]))
    flows = pd.DataFrame({"ip": [p[0] for p in probes], "time": [ts(p[1]) for p in probes]})
    got = attribute_frame(flows, pod_ips, None, ip="ip")
    for (ip, minute), pod in zip(probes, got.pod):
        t = ts(minute)
        inside = pod_ips[(pod_ips.ip == ip) & (pod_ips.start <= t) & (pod_ips.end.isna() | (t < pod_ips.end))]
        assert len(inside) <= 1
        assert (pod if isinstance(pod, str) else None) == (inside.pod.iloc[0] if len(inside) else None)


def test_context_pods_include_pods_only_the_events_knew(breach_case: kf.Case) -> None:
    truth = json.loads((ROOT / "sample_data" / "truth.json").read_text())
    pods = breach_case.context("pods").set_index("name")
    for name in truth["deleted_before_dump"]:
        assert name.split("/")[1] in pods.index, name
    evil = pods.loc["kube-proxy-x7k2p"]  # created in the audit log, spec from the request
    assert evil.privileged and evil.host_pid and list(evil.host_paths) == ["/"] and pd.notna(evil.deleted)
    pz = pods.loc[truth["patient_zero"]["pod"]]  # never created nor dumped: known from its token and flows
    assert (pz.uid, pz.node, pz.workload) == (truth["patient_zero"]["pod_uid"], "node-1", "web") and pd.notna(
        pz.deleted
    )
