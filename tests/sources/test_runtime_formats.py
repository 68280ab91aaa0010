"""Runtime family: Falco alerts and Tetragon events, fixtures for each quirk and every real
sample in ../shared/real_samples (read in place, skipped when absent)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.sources import read_family

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "runtime"


def test_falco_syscall_alert_in_a_pod() -> None:
    df = kf.read_runtime(FIX / "falco__alerts.jsonl")
    r = df[df.rule == "Terminal shell in container"].iloc[0]
    assert r.time == pd.Timestamp("2024-05-01T10:00:00.123456789Z")  # nanoseconds kept
    assert (r.namespace, r.pod, r.container, r.node) == ("shop", "cart-5c7b9", "cart", "node-1")
    assert r.labels == {"app": "cart", "pod-template-hash": "5c7b9"}
    assert r.container_id == "3f1b2c4d5e6f" and r.container_image == "registry.example/shop/cart:1.4.2"
    assert (r.process, r.cmdline, r.pid, r.parent_process, r.tty, r.uid) == (
        "/bin/sh",
        "sh -c id",
        4242,
        "runc",
        34816,
        0,
    )
    assert pd.isna(r.cwd)  # "<NA>" is null, not a directory
    assert list(r.tags) == ["container", "mitre_execution", "shell", "T1059"]
    assert r.priority == "Notice" and r.event_type == "alert"
    assert json.loads(r.extra)["user.loginuid"] == -1


def test_falco_network_alert_without_pod_metadata() -> None:
    df = kf.read_runtime(FIX / "falco__alerts.jsonl")
    r = df[df.rule == "Contact cloud metadata service from container"].iloc[0]
    assert r.priority == "Warning"  # lowercase in old Falco
    assert pd.isna(r.namespace) and pd.isna(r.pod)  # null and "<NA>" stay null: enrichment fills them by container id
    assert r.container_id == "3f1b2c4d5e6f00112233445566778899aabbccddeeff00112233445566778899"  # full id preferred
    assert (r.src_ip, r.src_port, r.dst_ip, r.dst_port, r.protocol) == ("10.0.0.5", 43210, "169.254.169.254", 80, "tcp")
    assert pd.isna(r.file_path)  # fd.name of a socket is not a file


def test_falco_k8s_audit_alert_and_internal_events() -> None:
    _table, (result,), _ = read_family(FIX / "falco__alerts.jsonl", "runtime")
    assert result.skipped == {"Falco internal metrics/drop event": 1}
    assert result.rows == 3
    df = kf.read_runtime(FIX / "falco__alerts.jsonl")
    r = df[df.rule == "Attach/Exec Pod"].iloc[0]
    assert (r.user_name, r.namespace, r.pod, r.node) == ("mallory", "shop", "cart-5c7b9", "falco-k8saudit-0")


def test_tetragon_pretty_printed_exec() -> None:
    r = kf.read_runtime(FIX / "tetragon__exec_pretty.json").iloc[0]
    assert r.event_type == "exec" and r.cluster == "prod" and r.node == "node-1"
    assert (
        r.container_id == "3f1b2c4d5e6f00112233445566778899aabbccddeeff00112233445566778899"
    )  # containerd:// stripped, lowercased
    assert (r.workload_kind, r.workload) == ("Deployment", "cart")
    assert r.labels == {"app": "cart", "pod-template-hash": "5c7b9"}
    assert r.cmdline == "/usr/bin/curl -s http://169.254.169.254/latest/meta-data/"
    assert r.exec_id == "bm9kZS0xOjEyMzQ1Njc4OTo0MjQy" and r.parent_exec_id == "bm9kZS0xOjEyMzQ1Njc4ODo0MjQx"
    assert r.parent_process == "/bin/sh" and r.ppid == 4241


def test_tetragon_kprobe_socket_file_exit_and_rate_limit() -> None:
    _table, (result,), _ = read_family(FIX / "tetragon__events.jsonl", "runtime")
    assert result.skipped == {"Tetragon rate-limit/throttle notice": 1}
    df = kf.read_runtime(FIX / "tetragon__events.jsonl")
    net = df[df.event_type == "network"].iloc[0]
    assert (net.src_ip, net.src_port, net.dst_ip, net.dst_port, net.protocol, net.rule) == (
        "10.0.0.5",
        43210,
        "169.254.169.254",
        80,
        "tcp",
        "connect",
    )
    assert json.loads(net.extra)["function_name"] == "tcp_connect"
    f = df[df.event_type == "file"].iloc[0]
    assert f.file_path == "/etc/shadow" and pd.isna(f.pod) and pd.isna(f.namespace)  # a host process
    assert set(df.event_type) == {"network", "exit", "file"}


def test_tracee_both_schema_generations() -> None:
    df = kf.read_runtime(FIX / "tracee__two_generations.jsonl")
    flat, sig = df.iloc[0], df.iloc[1]
    for r in (flat, sig):
        assert (r.namespace, r.pod, r.container) == ("shop", "cart-5c7b9", "cart")
        assert r.container_id == "3f1b2c4d5e6f00112233445566778899aabbccddeeff00112233445566778899"
        assert pd.isna(r.node)  # hostName is the pod's hostname, not the node
    assert flat.event_type == "file" and flat.file_path == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert flat.time == pd.Timestamp(1714557600500000000, tz="UTC") and flat.pid == 4242
    assert (sig.event_type, sig.rule, sig.priority) == ("alert", "K8s service account token file read", "Critical")
    assert "T1528" in list(sig.tags)


# real samples: file → (format, records, rows, skipped, quarantined) per PROVENANCE.md
REAL = {
    "falco-alerts-json/falco-website__alerts_extracted_from_docs_and_blog.jsonl": ("falco", 37, 19, 18, 0),
    "falco-alerts-json/falco__single_rule_with_cat_write.json": ("falco", 8, 8, 0, 0),
    "tetragon-json/tetragon-docs__events_extracted_from_docs.jsonl": ("tetragon", 18, 18, 0, 0),
    "tetragon-json/tetragon__events.json": ("tetragon", 3, 3, 0, 0),
    "tracee-json/tracee-docs__events_extracted_from_docs_history.jsonl": ("tracee", 204, 204, 0, 0),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_sample_counts(real_samples: Path, name: str) -> None:
    fmt, records, rows, skipped, quarantined = REAL[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _table, (r,), _ = read_family(real_samples / name, "runtime")
    assert (r.format, r.records, r.rows, sum(r.skipped.values()), r.quarantined) == (
        fmt,
        records,
        rows,
        skipped,
        quarantined,
    )


def test_every_tetragon_book_event_loads(real_samples: Path) -> None:
    files = sorted((real_samples / "tetragon-json").glob("tetragon-book-*.json"))
    assert len(files) == 22
    df = kf.read_runtime(files)
    assert len(df) == 22  # one pretty-printed event each
    connects = df[(df.event_type == "network") & df.dst_ip.notna()]
    assert ("142.250.180.196", 80) in set(zip(connects.dst_ip, connects.dst_port))  # legacy process_connect
    assert set(df.container_id.dropna().str.len()) <= {64, 24}  # full ids; 'docker' field = first 24 hex


def test_falco_real_values(real_samples: Path) -> None:
    df = kf.read_runtime(real_samples / "falco-alerts-json")
    shells = df[df.rule == "Terminal shell in container"]
    assert len(shells) >= 6 and set(shells.namespace.dropna()) >= {"default"}
    assert set(df.priority) <= {
        "Emergency",
        "Alert",
        "Critical",
        "Error",
        "Warning",
        "Notice",
        "Informational",
        "Debug",
    }
    grpc = df[df.time == pd.Timestamp("2019-10-03T09:20:49.620298462Z")]  # {seconds, nanos} time, enum priority
    assert list(grpc.priority) == ["Warning"]
    mangled = df[df.time == pd.Timestamp("2021-04-13T20:58:39Z")]  # 'time' unparseable: evt.time used
    assert list(mangled.rule) == ["Fake rule"]
    audit = df[df.rule == "Attach/Exec Pod"]
    assert set(audit.user_name) == {"kubernetes-admin"}


def test_tetragon_real_values(real_samples: Path) -> None:
    df = kf.read_runtime(real_samples / "tetragon-json" / "tetragon__events.json")
    assert set(df.event_type) == {"exec"} and set(df.namespace) == {"default"}
    assert df.container_id.str.fullmatch(r"[0-9a-f]{64}").all()
    assert df.labels.map(lambda x: isinstance(x, dict) and len(x) > 0).all()


def test_tracee_real_values(real_samples: Path) -> None:
    df = kf.read_runtime(real_samples / "tracee-json")
    alerts = df[df.event_type == "alert"]
    assert len(alerts) == 5
    dropped = alerts[alerts.rule == "New executable dropped"].iloc[0]
    assert (dropped.namespace, dropped.pod) == ("default", "app-75ff449bcd-hfwnz")
    assert "T1036" in list(dropped.tags)
    assert df.time.dt.year.between(2020, 2025).all()
