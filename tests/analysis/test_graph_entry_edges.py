"""The lateral-movement graph of a breach that exploited no pod: the way in (a credential used
from outside), a token taken from a Secret, what the attacker created to stay (a DaemonSet, a
ServiceAccount, a token Secret, a client certificate, an admission webhook, a static pod) and the
flows of a host-network pod."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd

import k8sforensics as kf
from k8sforensics.analysis import observed_edges
from k8sforensics.analysis.graph import CONTROL_EDGES, csr_common_name
from k8sforensics.detect import Evidence
from tests.event_frames import audit, frame

CSR_PEM = (
    Path(__file__).resolve().parent.parent
    / "fixtures"
    / "certificates"
    / "csr-subject-cn-backdoor-admin-in-system-masters.pem"
)
ATTACKER = "203.0.113.9"
CI = "system:serviceaccount:ci:ci-deployer"


def _breach() -> list[dict]:
    csr = {
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "backdoor"},
        "spec": {
            "request": base64.b64encode(CSR_PEM.read_bytes()).decode(),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
        },
    }
    token_secret = {
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": "keeper-token",
            "namespace": "kube-system",
            "annotations": {"kubernetes.io/service-account.name": "keeper"},
        },
    }
    mirror = {
        "kind": "Pod",
        "metadata": {
            "name": "kube-proxy-node-2",
            "namespace": "kube-system",
            "annotations": {"kubernetes.io/config.mirror": "abc"},
        },
        "spec": {
            "hostNetwork": True,
            "nodeName": "node-2",
            "containers": [{"name": "c", "image": "evil.example/c2:1"}],
        },
    }
    return [
        audit("2026-03-10T08:00:00Z", "system:node:node-2", "update", "leases", source_ip="10.0.1.12"),
        audit("2026-03-10T10:00:00Z", "alice", "list", "namespaces", source_ip=ATTACKER),
        audit(
            "2026-03-10T10:01:00Z",
            "alice",
            "get",
            "secrets",
            source_ip=ATTACKER,
            object_namespace="ci",
            object_name="ci-deployer-token-x7k2p",
        ),
        audit(
            "2026-03-10T10:05:00Z",
            CI,
            "create",
            "daemonsets",
            source_ip=ATTACKER,
            api_group="apps",
            object_namespace="kube-system",
            object_name="node-agent",
        ),
        audit(
            "2026-03-10T10:06:00Z",
            CI,
            "create",
            "serviceaccounts",
            source_ip=ATTACKER,
            object_namespace="kube-system",
            object_name="keeper",
        ),
        audit(
            "2026-03-10T10:07:00Z",
            CI,
            "create",
            "secrets",
            source_ip=ATTACKER,
            object_namespace="kube-system",
            object_name="keeper-token",
            request_object=token_secret,
        ),
        audit(
            "2026-03-10T10:08:00Z",
            CI,
            "create",
            "certificatesigningrequests",
            source_ip=ATTACKER,
            object_name="backdoor",
            request_object=csr,
        ),
        audit(
            "2026-03-10T10:09:00Z",
            CI,
            "update",
            "certificatesigningrequests",
            subresource="approval",
            source_ip=ATTACKER,
            object_name="backdoor",
            request_object=csr,
        ),
        audit(
            "2026-03-10T10:10:00Z",
            CI,
            "create",
            "mutatingwebhookconfigurations",
            source_ip=ATTACKER,
            object_name="pod-defaults",
            api_group="admissionregistration.k8s.io",
        ),
        audit(
            "2026-03-10T10:20:00Z",
            "system:node:node-2",
            "create",
            "pods",
            source_ip="10.0.1.12",
            object_namespace="kube-system",
            object_name="kube-proxy-node-2",
            request_object=mirror,
        ),
    ]


def _flows() -> pd.DataFrame:
    # the static pod runs on the host's network: its beacons leave from the node's address, which no inventory names here
    return frame(
        "flows",
        *[
            {
                "time": f"2026-03-10T10:{m}:00Z",
                "src_ip": "10.0.1.12",
                "dst_ip": "198.51.100.200",
                "dst_port": 443,
                "verdict": "allowed",
                "is_reply": False,
                "bytes": 300,
            }
            for m in (21, 26, 31)
        ],
    )


def test_the_way_in_and_everything_made_to_stay_are_edges() -> None:
    g = kf.lateral_movement(Evidence(audit=frame("audit", *_breach()), flows=_flows()), possible=False)
    assert g.has_edge(f"ip:{ATTACKER}", "user:alice", key="credential_use")
    assert g.has_edge("user:alice", "secret:ci/ci-deployer-token-x7k2p", key="read_token_secret")
    assert g.has_edge("secret:ci/ci-deployer-token-x7k2p", "sa:ci/ci-deployer", key="token_from_secret")
    assert g.has_edge("sa:ci/ci-deployer", "workload:kube-system/daemonsets/node-agent", key="create_workload")
    assert g.has_edge("sa:ci/ci-deployer", "sa:kube-system/keeper", key="create_sa")
    assert g.has_edge("sa:ci/ci-deployer", "secret:kube-system/keeper-token", key="create_token_secret")
    assert g.has_edge("secret:kube-system/keeper-token", "sa:kube-system/keeper", key="token_from_secret")
    assert g.has_edge("sa:ci/ci-deployer", "csr:backdoor", key="create_csr") and g.has_edge(
        "sa:ci/ci-deployer", "csr:backdoor", key="approve_csr"
    )
    assert g.has_edge("csr:backdoor", "user:backdoor-admin", key="csr_identity")
    assert g.has_edge("sa:ci/ci-deployer", "webhook:pod-defaults", key="create_webhook")
    assert g.has_edge("node:node-2", "pod:kube-system/kube-proxy-node-2", key="static_pod")
    assert g.has_edge("node:node-2", "ip:198.51.100.200", key="flow")  # the host-network pod's C2, from its node
    assert g.nodes["webhook:pod-defaults"]["kind"] == "webhook" and g.nodes["csr:backdoor"]["kind"] == "csr"
    # control spreads from the outside address through the stolen token to all of it
    reached = set(kf.paths(g, f"ip:{ATTACKER}")["node"])
    assert {
        "user:alice",
        "sa:ci/ci-deployer",
        "workload:kube-system/daemonsets/node-agent",
        "webhook:pod-defaults",
        "user:backdoor-admin",
        "sa:kube-system/keeper",
    } <= reached
    for kind in (
        "credential_use",
        "read_token_secret",
        "token_from_secret",
        "create_webhook",
        "csr_identity",
        "static_pod",
    ):
        assert kind in CONTROL_EDGES


def test_people_inside_and_the_platforms_agents_are_not_ways_in() -> None:
    rows = [
        audit("2026-03-10T10:00:00Z", "alice", "get", "pods", source_ip="10.8.0.4"),
        audit("2026-03-10T10:00:00Z", "eks:addon-manager", "get", "pods", source_ip="35.163.244.48"),
    ]
    edges = observed_edges(Evidence(audit=frame("audit", *rows)))
    assert "credential_use" not in set(edges["type"])


def test_a_token_secret_read_and_its_use_in_another_chunk_make_the_same_edges() -> None:
    table, flows = frame("audit", *_breach()), _flows()
    whole = observed_edges(Evidence(audit=table, flows=flows))
    small = Evidence(audit=table, flows=flows, chunk_rows=5)
    assert len(list(small.audit_chunks())) > 3
    pd.testing.assert_frame_equal(observed_edges(small), whole)
    link = whole[whole["type"] == "token_from_secret"]
    assert len(link) == 2 and (link["count"] == 1).all()  # the first use only, once


def test_a_static_pod_manifest_written_from_a_container_hands_over_its_node() -> None:
    runtime = frame(
        "runtime",
        {
            "time": "2026-03-10T10:15:00Z",
            "event_type": "file",
            "container_id": "c1",
            "namespace": "kube-system",
            "pod": "node-agent-abc",
            "node": "node-2",
            "process": "/bin/cp",
            "file_path": "/host/etc/kubernetes/manifests/kube-proxy.yaml",
        },
        {
            "time": "2026-03-10T10:16:00Z",
            "event_type": "exec",
            "container_id": "c1",
            "namespace": "kube-system",
            "pod": "node-agent-abc",
            "node": "node-2",
            "process": "/bin/cat",
            "cmdline": "cat /host/etc/kubernetes/manifests/kube-apiserver.yaml",
        },
    )
    edges = observed_edges(Evidence(runtime=runtime))
    escape = edges[edges["type"] == "host_escape"]
    assert escape[["source", "target"]].values.tolist() == [["pod:kube-system/node-agent-abc", "node:node-2"]]
    assert escape["count"].tolist() == [1]  # reading a manifest is not writing one
    alert = frame(
        "runtime",
        {
            "time": "2026-03-10T10:30:00Z",
            "event_type": "alert",
            "rule": "Write below etc",
            "container_id": "c2",
            "namespace": "default",
            "pod": "node-debugger",
            "node": "node-2",
            "process": "/bin/sh",
            "cmdline": 'sh -c "cat > /host/etc/kubernetes/manifests/helper.yaml"',
        },
    )
    edges = observed_edges(Evidence(runtime=alert))
    assert edges[["source", "target", "type"]].values.tolist() == [
        ["pod:default/node-debugger", "node:node-2", "host_escape"]
    ]


def test_the_subject_cn_of_a_real_certificate_signing_request() -> None:
    assert csr_common_name(base64.b64encode(CSR_PEM.read_bytes()).decode()) == "backdoor-admin"
    assert csr_common_name("not base64 at all!") is None and csr_common_name(None) is None
