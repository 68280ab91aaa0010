"""A pod that takes its node — an escape, the node's crontab written through a hostPath, the
runtime socket — seen in a Falco alert that names the command (not only in an execution event),
is a ``host_escape`` edge and a finding; an escape a sensor saw with no container named is still a
finding, about the node."""

from __future__ import annotations

from k8sforensics.analysis import lateral_movement
from k8sforensics.detect import Evidence
from k8sforensics.detect import runtime_rules as rr
from tests.event_frames import frame


def _alert(time: str, pod: str, cmdline: str, rule: str) -> dict:
    return {
        "time": time,
        "source": "falco",
        "event_type": "alert",
        "rule": rule,
        "priority": "Warning",
        "namespace": "default",
        "pod": pod,
        "container_id": "24582811d140",
        "node": "node-1",
        "process": cmdline.split()[0],
        "cmdline": cmdline,
    }


ALERTS = [
    _alert(
        "2026-01-01T10:00:00Z",
        "log-collector",
        "sh -c \"echo '* * * * * root sh -i' > /host/etc/cron.d/sync\"",
        "Write below etc",
    ),
    _alert(
        "2026-01-01T10:05:00Z", "kube-proxy-x", "nsenter -t 1 -m -u -n -i -p /bin/bash", "Launch Privileged Container"
    ),
    _alert("2026-01-01T10:06:00Z", "web", "sh -c \"echo '0 1 * * *' > /etc/cron.d/app\"", "Write below etc"),
]  # the container's own /etc


def test_alerts_naming_an_escape_or_a_host_crontab_are_host_escape_edges() -> None:
    g = lateral_movement(Evidence(runtime=frame("runtime", *ALERTS)), possible=False)
    escapes = {(u, v) for u, v, k in g.edges(keys=True) if k == "host_escape"}
    assert escapes == {("pod:default/log-collector", "node:node-1"), ("pod:default/kube-proxy-x", "node:node-1")}


def test_an_alert_naming_nsenter_is_a_host_escape_finding() -> None:
    hits = rr.host_escape(Evidence(runtime=frame("runtime", *ALERTS)))
    assert hits["entity"].tolist() == ["default/kube-proxy-x"]


def test_a_release_agent_escape_with_no_container_named_is_reported_about_the_node() -> None:
    lost = {
        "time": "2026-01-01T10:00:00Z",
        "source": "tetragon",
        "event_type": "exec",
        "node": "node-3",
        "process": "/bin/sh",
        "cmdline": '/bin/sh -c "mkdir /tmp/cg && mount -t cgroup -o rdma cgroup /tmp/cg && echo /cmd > /tmp/cg/release_agent"',
    }
    admin = {
        "time": "2026-01-01T10:01:00Z",
        "source": "tetragon",
        "event_type": "exec",
        "node": "node-3",
        "process": "/usr/bin/nsenter",
        "cmdline": "nsenter -t 1 -m sh",
    }  # a host shell's own nsenter: the node's business
    hits = rr.host_escape(Evidence(runtime=frame("runtime", lost, admin)))
    assert hits["entity"].tolist() == ["node-3"] and hits["entity_type"].tolist() == ["node"]
