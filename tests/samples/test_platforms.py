"""The platform writers: a small hand-built scenario written as each platform's evidence and
read back by the repository's own loaders — every audit event once (also when an export
page is delivered twice), a truncated export record in quarantine and nothing else lost,
flows with the addresses each log really shows, replies recognisable as the format marks
them, and the evidence lines pointing at the records of each step."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import uuid
import warnings
from pathlib import Path

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.samples.platforms import PLATFORMS, write_evidence
from k8sforensics.samples.records import Emitted, Endpoint, Flow, Written
from k8sforensics.sources import read_family

T0 = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)
NODES = {"node-1": "10.0.1.11", "node-2": "10.0.1.12"}
WEB = Endpoint("shop", "web-7d9f8c6b5-x2k7p", (("app", "web"),), ("Deployment", "web"), "node-1")
API = Endpoint("payments", "api-5hf8d9c7b-88flg", (("app", "api"),), ("Deployment", "api"), "node-2")
DNS = Endpoint(
    "kube-system", "coredns-6d4b75cb6d-abcde", (("k8s-app", "kube-dns"),), ("Deployment", "coredns"), "node-2"
)
WEB_IP, API_IP, DNS_IP, C2, ATTACKER = "10.0.1.50", "10.0.1.80", "10.0.1.90", "203.0.113.77", "198.51.100.66"
BOTH_TRAPS = frozenset({"truncated-export", "duplicated-export"})
CNI = {"eks": "hubble", "gke": "hubble", "aks": "calico", "self-managed": "hubble"}


def _event(
    k: int, t: dt.datetime, *, step: str | None = None, body: dict | None = None
) -> tuple[dt.datetime, dict, str | None]:
    ev = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request" if body else "Metadata",
        "auditID": str(uuid.UUID(int=k + 1)),
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/shop/pods/p{k}" if not body else "/api/v1/namespaces/shop/pods",
        "verb": "create" if body else "get",
        "user": {
            "username": "system:serviceaccount:shop:web",
            "groups": ["system:serviceaccounts", "system:authenticated"],
        },
        "sourceIPs": [WEB_IP],
        "userAgent": "kubectl/v1.30.2",
        "objectRef": {"resource": "pods", "namespace": "shop", "name": f"p{k}", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201 if body else 200},
        "requestReceivedTimestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "stageTimestamp": (t + dt.timedelta(milliseconds=4)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
    if body:
        ev["requestObject"] = body
    return t, ev, step


PRIVILEGED = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p5", "namespace": "shop"},
    "spec": {"containers": [{"name": "c", "image": "alpine", "securityContext": {"privileged": True}}]},
}


def _emitted() -> Emitted:
    em = Emitted()
    for k in range(30):  # one every 7 minutes: several hours, pages and blobs
        em.audit.append(
            _event(
                k,
                T0 + dt.timedelta(minutes=7 * k),
                step="discovery" if k % 9 == 4 else None,
                body=PRIVILEGED if k == 5 else None,
            )
        )
    em.audit[5] = (em.audit[5][0], em.audit[5][1], "privileged-pod")
    em.flows = [
        Flow(
            T0 + dt.timedelta(minutes=10),
            WEB_IP,
            API_IP,
            40000,
            8443,
            src=WEB,
            dst=API,
            src_host=NODES["node-1"],
            dst_host=NODES["node-2"],
            step="lateral",
        ),
        Flow(
            T0 + dt.timedelta(minutes=20),
            WEB_IP,
            C2,
            50000,
            443,
            src=WEB,
            src_host=NODES["node-1"],
            snat=True,
            step="c2",
        ),
        # a scan of a pod reachable from outside (a load balancer with pod targets): a node's
        # own address would be seen by Cilium only with its host firewall on
        Flow(
            T0 + dt.timedelta(minutes=30),
            ATTACKER,
            API_IP,
            61000,
            8443,
            action="REJECT",
            dst=API,
            dst_host=NODES["node-2"],
            reply_packets=0,
            reply_bytes=0,
            step="recon",
        ),
        Flow(
            T0 + dt.timedelta(minutes=40),
            WEB_IP,
            DNS_IP,
            53001,
            53,
            protocol="UDP",
            src=WEB,
            dst=DNS,
            src_host=NODES["node-1"],
            dst_host=NODES["node-2"],
            dns_query="pool.evil.example",
            step="dns",
        ),
    ]
    falco = {
        "time": "2026-03-10T08:11:00.000000000Z",
        "rule": "Terminal shell in container",
        "priority": "Notice",
        "source": "syscall",
        "hostname": "node-1",
        "output": "08:11:00.000000000: Notice A shell was spawned",
        "output_fields": {
            "container.id": "abcdef012345",
            "k8s.ns.name": "shop",
            "k8s.pod.name": WEB.pod,
            "proc.cmdline": "sh",
        },
    }
    em.runtime["runtime/falco-alerts.jsonl"] = [(T0 + dt.timedelta(minutes=11), falco, "exploit")]
    return em


def _write(root: Path, platform: str, traps: frozenset[str] = BOTH_TRAPS, seed: int = 1) -> Written:
    return write_evidence(
        _emitted(),
        root,
        platform=platform,
        cluster="prod-eu",
        nodes=NODES,
        cni=CNI[platform],
        traps=traps,
        rng=random.Random(seed),
    )


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the truncated record warns; the tests check the quarantine instead
        return fn(*args, **kw)


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [ln for ln in data.decode().split("\n") if ln.strip()]


def _flows(root: Path) -> pd.DataFrame:
    return _quiet(kf.read_flows, root)


@pytest.fixture(scope="module", params=PLATFORMS)
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Written]:
    root = tmp_path_factory.mktemp(request.param)
    return request.param, root, _write(root, request.param)


# --------------------------------------------------------------------------- audit


def test_every_audit_event_is_read_once_and_only_the_truncated_one_is_lost(written: tuple[str, Path, Written]) -> None:
    platform, root, w = written
    audit = _quiet(kf.read_audit, root)
    expected = {ev["auditID"] for _, ev, _ in _emitted().audit}
    assert len(w.malformed) == 1
    bad = w.malformed[0]
    cut = _lines(root / bad["file"])[bad["line"] - 1]
    lost = {a for a in expected if a in cut}
    assert len(lost) == 1, "the truncated line still names the one event it held"
    assert audit["audit_id"].is_unique
    assert set(audit["audit_id"]) == expected - lost
    _, results, quarantine = _quiet(read_family, root, "audit")
    q = quarantine.to_pandas()
    assert len(q) == 1 and q.iloc[0]["path"].endswith(bad["file"]) and q.iloc[0]["evidence_line"] == bad["line"]
    assert sum(r.records for r in results) == sum(
        r.rows + r.merged + sum(r.skipped.values()) + r.quarantined for r in results
    )


def test_the_duplicated_export_really_holds_copies_that_the_dedupe_removes(written: tuple[str, Path, Written]) -> None:
    _, root, _ = written
    rows, _, _ = _quiet(read_family, root, "audit")
    raw = rows.to_pandas()
    copies = raw.groupby(["audit_id", "stage"]).size()
    assert (copies > 1).any(), "some request was delivered twice"
    assert _quiet(kf.read_audit, root)["audit_id"].is_unique


def test_without_traps_nothing_is_malformed_or_duplicated(tmp_path: Path) -> None:
    for platform in PLATFORMS:
        root = tmp_path / platform
        w = _write(root, platform, traps=frozenset())
        assert w.malformed == []
        rows, _, quarantine = read_family(root, "audit")
        assert quarantine.num_rows == 0
        assert rows.to_pandas().groupby(["audit_id", "stage"]).size().max() == 1


def test_the_request_body_survives_every_wrapping(written: tuple[str, Path, Written]) -> None:
    _, root, _ = written
    audit = _quiet(kf.read_audit, root)
    create = audit[audit["verb"] == "create"].iloc[0]
    body = (
        json.loads(create["request_object"]) if isinstance(create["request_object"], str) else create["request_object"]
    )
    assert body["spec"]["containers"][0]["securityContext"]["privileged"] is True
    assert create["object_namespace"] == "shop" and create["object_name"] == "p5" and create["source_ip"] == WEB_IP
    assert create["user"] == "system:serviceaccount:shop:web"


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    for platform in PLATFORMS:
        a, b = tmp_path / f"{platform}-a", tmp_path / f"{platform}-b"
        assert _write(a, platform) == _write(b, platform)
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


# --------------------------------------------------------------------------- evidence lines


def test_evidence_lines_point_at_the_records_of_their_step(written: tuple[str, Path, Written]) -> None:
    """Each (step, file, line) is a record the loader reports at that evidence_line, and it is
    a record of that step: the audit event's ID, the flow's addresses."""
    platform, root, w = written
    em = _emitted()
    step_ids = {}
    for _, ev, step in em.audit:
        step_ids.setdefault(step, set()).add(ev["auditID"])
    step_addrs = {}
    for f in em.flows:
        step_addrs.setdefault(f.step, set()).update({f.src_ip, f.dst_ip, f.src_host, f.dst_host} - {None})
    assert {s for s, _, _ in w.evidence} >= {"privileged-pod", "discovery", "lateral", "c2", "exploit", "dns"}
    matched: set[tuple[str, str, int]] = set()
    for family in ("audit", "flows", "runtime"):
        rows, results, _ = _quiet(read_family, root, family)
        df = rows.to_pandas()
        path_of = {r.evidence.sha256: str(Path(r.evidence.path).relative_to(root)) for r in results}
        df["file"] = df["evidence_id"].map(path_of)
        for step, file, line in w.evidence:
            hit = df[(df["file"] == file) & (df["evidence_line"] == line)]
            if not len(hit):
                continue
            matched.add((step, file, line))
            if family == "audit":
                assert set(hit["audit_id"]) & step_ids[step], (step, file, line)
            elif family == "flows":
                ok = hit[[bool({r.src_ip, r.dst_ip} & step_addrs[step]) for r in hit.itertuples()]]
                assert len(ok), (step, file, line)
    assert matched == set(w.evidence), "every evidence line is a record some loader reads at that line"
    for step, file, line in w.evidence:
        text = _lines(root / file)
        assert 1 <= line <= len(text), (step, file, line)
        if (
            text[0].startswith("{") and text[0].strip() != "{" and step in step_ids
        ):  # JSON lines: the line names the record
            assert any(a in text[line - 1] for a in step_ids[step]), (step, file, line)
    assert all(n == len(_lines(root / f)) for f, n in w.files.items())


# --------------------------------------------------------------------------- flows


def _extra(row: pd.Series) -> dict:
    return json.loads(row["extra"]) if isinstance(row["extra"], str) else {}


def test_eks_vpc_flow_logs_have_both_interfaces_both_directions_and_the_pod_addresses(tmp_path: Path) -> None:
    _write(tmp_path, "eks")
    f = _flows(tmp_path)
    vpc = f[f["source"] == "aws-vpc-flow"]
    # pod → pod across nodes: node-1's ENI logs egress, node-2's ingress; each logs the reply too
    fwd = vpc[(vpc["src_ip"] == WEB_IP) & (vpc["dst_ip"] == API_IP) & (vpc["dst_port"] == 8443)]
    rep = vpc[(vpc["src_ip"] == API_IP) & (vpc["dst_ip"] == WEB_IP) & (vpc["src_port"] == 8443)]
    assert sorted(fwd["direction"]) == ["egress", "ingress"] and sorted(rep["direction"]) == ["egress", "ingress"]
    # srcaddr on the egress record is the node's interface address; pkt-srcaddr the pod's
    egress = fwd[fwd["direction"] == "egress"].iloc[0]
    assert _extra(egress)["interface-srcaddr"] == NODES["node-1"]
    # replies are marked by the responder's SYN-ACK in tcp-flags (AWS: flags OR-ed per interval)
    assert all(int(_extra(r)["tcp-flags"]) & 18 == 18 for _, r in rep.iterrows())
    assert all(int(_extra(r)["tcp-flags"]) & 16 == 0 for _, r in fwd.iterrows())
    assert (rep["is_reply"].isna() | rep["is_reply"].astype("boolean")).all()
    # SNAT to the Internet: only the node's ENI, and the wire shows the node's address
    c2 = vpc[(vpc["dst_ip"] == C2) | (vpc["src_ip"] == C2)]
    assert len(c2) == 2 and set(c2["src_ip"]) | set(c2["dst_ip"]) == {NODES["node-1"], C2}
    # the refused scan: one ingress REJECT record at the node, nothing at the CNI
    scan = f[f["src_ip"] == ATTACKER]
    assert len(scan) == 1 and scan.iloc[0]["verdict"] == "denied" and scan.iloc[0]["direction"] == "ingress"
    assert scan.iloc[0]["source"] == "aws-vpc-flow"


def test_gke_vpc_flow_logs_report_from_both_vms_with_pod_details(tmp_path: Path) -> None:
    _write(tmp_path, "gke")
    f = _flows(tmp_path)
    vpc = f[f["source"] == "gcp-vpc-flow"]
    fwd = vpc[(vpc["src_ip"] == WEB_IP) & (vpc["dst_ip"] == API_IP)]
    rep = vpc[(vpc["src_ip"] == API_IP) & (vpc["dst_ip"] == WEB_IP) & (vpc["src_port"] == 8443)]
    # reporter SRC (egress) and DEST (ingress) for each direction; the reply swaps the tuple
    assert sorted(fwd["direction"]) == ["egress", "ingress"] and sorted(rep["direction"]) == ["egress", "ingress"]
    assert (
        set(fwd["src_pod"]) == {WEB.pod}
        and set(fwd["dst_pod"]) == {API.pod}
        and set(fwd["dst_namespace"]) == {"payments"}
    )
    assert set(rep["src_pod"]) == {API.pod}
    # SNATed to the Internet: the node's address, no pod named; reported by the node's VM only
    c2 = vpc[(vpc["dst_ip"] == C2) | (vpc["src_ip"] == C2)]
    assert len(c2) == 2 and NODES["node-1"] in set(c2["src_ip"]) | set(c2["dst_ip"]) and c2["src_pod"].isna().all()
    # VPC flow logs hold no refused connections (Firewall Rules Logging does), and the CNI never saw it
    assert not len(f[f["src_ip"] == ATTACKER])


def test_aks_nsg_flow_tuples_per_nic_and_direction(tmp_path: Path) -> None:
    _write(tmp_path, "aks")
    f = _flows(tmp_path)
    nsg = f[f["source"] == "azure-flow"]
    conn = nsg[(nsg["src_ip"] == WEB_IP) & (nsg["dst_ip"] == API_IP)]
    # begin and end tuples at each NIC: O at the initiator's, I at the responder's
    assert sorted(conn["direction"]) == ["egress", "egress", "ingress", "ingress"]
    # the end tuple carries both directions' counters: the reply has no tuple of its own
    assert conn["bytes"].max() == 1500 + 4000
    assert not len(nsg[(nsg["src_ip"] == API_IP) & (nsg["src_port"] == 8443)])
    scan = nsg[nsg["src_ip"] == ATTACKER]
    assert len(scan) == 1 and scan.iloc[0]["verdict"] == "denied" and scan.iloc[0]["direction"] == "ingress"
    assert "DenyAllInBound" in _extra(scan.iloc[0])["rule"]
    snat = nsg[nsg["dst_ip"] == C2]
    assert set(snat["src_ip"]) == {NODES["node-1"]}


def test_self_managed_has_no_vpc_log_and_the_cni_sees_the_refusal(tmp_path: Path) -> None:
    w = _write(tmp_path, "self-managed")
    assert not [p for p in w.files if not p.startswith(("audit/", "flows/hubble/", "runtime/"))]
    f = _flows(tmp_path)
    assert set(f["source"]) == {"hubble"}
    scan = f[f["src_ip"] == ATTACKER]
    assert len(scan) == 1 and scan.iloc[0]["verdict"] == "denied" and scan.iloc[0]["drop_reason"] == "POLICY_DENIED"
    assert scan.iloc[0]["direction"] == "ingress"


def test_hubble_marks_replies_and_carries_the_dns_query(tmp_path: Path) -> None:
    _write(tmp_path, "eks")
    f = _flows(tmp_path)
    h = f[f["source"] == "hubble"]
    conn = h[h["l7_type"].isna() & h["src_ip"].isin([WEB_IP, API_IP]) & h["dst_ip"].isin([WEB_IP, API_IP])]
    assert sorted(conn["is_reply"].astype(bool)) == [False, False, True, True]
    assert set(conn[~conn["is_reply"].astype(bool)]["direction"]) == {"egress", "ingress"}
    replies = conn[conn["is_reply"].astype(bool)]
    assert set(replies["src_ip"]) == {API_IP} and set(replies["src_port"]) == {8443}
    # Cilium sees the pod's own address before SNAT
    c2 = h[h["dst_ip"] == C2]
    assert set(c2["src_ip"]) == {WEB_IP} and set(c2["src_pod"]) == {WEB.pod}
    dns = h[h["l7_type"] == "dns"]
    assert set(dns["dns_query"]) == {"pool.evil.example."} and sorted(dns["is_reply"].astype(bool)) == [False, True]


def test_calico_reports_each_managed_end_once(tmp_path: Path) -> None:
    _write(tmp_path, "aks")
    f = _flows(tmp_path)
    c = f[f["source"] == "calico"]
    conn = c[(c["src_ip"] == WEB_IP) & (c["dst_ip"] == API_IP)]
    assert sorted(conn["direction"]) == ["egress", "ingress"]
    assert set(conn["src_pod"]) == {WEB.pod} and set(conn["dst_workload"]) == {"api-5hf8d9c7b"}
    assert set(conn["bytes"]) == {1500 + 4000}
    # the Internet end reports nothing; the refused scan never reached a node (the NSG refused it)
    assert len(c[c["dst_ip"] == C2]) == 1 and not len(c[c["src_ip"] == ATTACKER])


def test_runtime_records_come_back_in_time_order(written: tuple[str, Path, Written]) -> None:
    _, root, w = written
    r = _quiet(kf.read_runtime, root)
    assert len(r) == 1 and r.iloc[0]["pod"] == WEB.pod
    assert ("exploit", "runtime/falco-alerts.jsonl", 1) in w.evidence


def test_case_ingest_reads_every_file_it_is_given(written: tuple[str, Path, Written], tmp_path: Path) -> None:
    _, root, w = written
    case = kf.Case.create(tmp_path / "case", cluster="prod-eu")
    _quiet(kf.ingest, case, [root])
    inputs = [i for ing in case.manifest["ingests"] for i in ing["inputs"]]
    assert len(inputs) == len(w.files)
    assert all(i["format"] for i in inputs)
    assert len(case.quarantine()) == 1
