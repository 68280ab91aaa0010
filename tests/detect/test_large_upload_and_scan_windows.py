"""Two flow rules: a large upload to a new outside address, and a port scan that straddles the
edge of a fixed time bucket."""

from __future__ import annotations

from k8sforensics.detect import Evidence
from k8sforensics.detect import flow_rules as fr
from tests.event_frames import frame

from .test_flow_direction import NODES, flow

MIB = 2**20


def _upload_case(dst: str, *, early_dst: str | None = None, is_reply: bool | None = None) -> Evidence:
    rows = [
        flow(
            "2026-01-01T08:00:00Z",
            "10.244.1.7",
            40000,
            early_dst or "198.51.100.9",
            443,
            bytes=2000,
            src_namespace="shop",
            src_pod="web-1",
        ),
        flow(
            "2026-01-01T10:00:00Z",
            "10.244.1.7",
            40001,
            dst,
            443,
            bytes=180 * MIB,
            is_reply=is_reply,
            src_namespace="shop",
            src_pod="web-1",
        ),
    ]
    return Evidence(flows=frame("flows", *rows), context={"nodes": NODES})


def test_a_large_upload_to_a_new_outside_address_is_exfiltration() -> None:
    hits = fr.large_upload(_upload_case("203.0.113.90"))
    assert hits["destination_ip"].tolist() == ["203.0.113.90"] and hits["entity"].tolist() == ["shop/web-1"]
    assert "180 MiB" in hits.loc[0, "summary"]


def test_an_address_used_in_the_learning_window_and_a_reply_are_not() -> None:
    assert fr.large_upload(_upload_case("203.0.113.90", early_dst="203.0.113.90")).empty
    assert fr.large_upload(_upload_case("203.0.113.90", is_reply=True)).empty  # a download: the responder's bytes


def test_a_scan_across_a_bucket_edge_is_found() -> None:
    # 12 refused ports in 2 minutes, from 10:04 to 10:06 — across the 10:05 edge of 5-minute buckets
    rows = [
        flow(
            f"2026-01-01T10:0{4 + (10 * i) // 60}:{(10 * i) % 60:02d}Z",
            "198.51.100.66",
            51515,
            "10.0.1.11",
            20 + i,
            verdict="denied",
        )
        for i in range(12)
    ]
    hits = fr.port_scan(Evidence(flows=frame("flows", *rows), context={"nodes": NODES}))
    assert len(hits) == 1
