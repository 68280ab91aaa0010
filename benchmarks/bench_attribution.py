#!/usr/bin/env python3
"""Time-aware IP attribution: ``k8sforensics.context.attribute_frame`` against a plain DuckDB
range join, on synthetic pod lifetimes with heavy IP reuse (many short-lived pods per address), and
agreement with a brute-force reference on a sample.

    python benchmarks/bench_attribution.py [--flows 5000000] [--pods 135000] [--ips 5000] [--rounds 3]

Each approach runs in this process, interleaved per round (A B, A B, ...); medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import duckdb
import numpy as np
import pandas as pd

from k8sforensics.context import attribute_frame

T0 = pd.Timestamp("2026-03-01T00:00:00Z")


def lifetimes(n_pods: int, n_ips: int, seed: int) -> pd.DataFrame:
    """Back-to-back pod lifetimes per IP, with gaps, exact handovers and still-running pods."""
    rng = np.random.default_rng(seed)
    ips = rng.integers(0, n_ips, n_pods)
    order = np.argsort(ips, kind="stable")
    ips = ips[order]
    span = 30 * 24 * 3600
    dur = rng.exponential(span * n_ips / n_pods, n_pods)
    gap = np.where(rng.random(n_pods) < 0.03, 0.0, rng.exponential(60.0, n_pods))  # 3% exact handovers
    start = np.zeros(n_pods)
    end = np.zeros(n_pods)
    for i in range(n_pods):
        prev_end = end[i - 1] if i and ips[i - 1] == ips[i] else 0.0
        start[i] = prev_end + gap[i]
        end[i] = start[i] + dur[i]
    last = np.r_[ips[1:] != ips[:-1], True]
    frame = pd.DataFrame(
        {
            "ip": [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in ips],
            "start": T0 + pd.to_timedelta(start, unit="s"),
            "end": (T0 + pd.to_timedelta(end, unit="s")).where(~last, pd.NaT),  # the last pod on each IP is alive
            "namespace": "ns",
            "pod": [f"pod-{i}" for i in range(n_pods)],
            "pod_uid": [f"uid-{i}" for i in range(n_pods)],
            "workload_kind": "Deployment",
            "workload": "w",
            "node": "node-1",
            "evidence": "audit",
            "confidence": "high",
        }
    )
    return frame


def flows(n: int, pods: pd.DataFrame, n_ips: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    ip_idx = rng.integers(0, int(n_ips * 1.05), n)  # ~5% from addresses no pod ever had
    secs = rng.uniform(0, 30 * 24 * 3600 * 1.1, n)
    return pd.DataFrame(
        {
            "ip": [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in ip_idx],
            "time": T0 + pd.to_timedelta(secs, unit="s"),
        }
    )


def baseline(frame: pd.DataFrame, pods: pd.DataFrame) -> np.ndarray:
    con = duckdb.connect()
    con.register("f", frame.assign(_row=np.arange(len(frame))))
    con.register("p", pods)
    out = con.sql(
        "SELECT p.pod FROM f LEFT JOIN p ON f.ip = p.ip AND f.time >= p.start AND f.time < coalesce(p.\"end\", 'infinity'::TIMESTAMPTZ) ORDER BY f._row"
    ).df()
    return out["pod"].to_numpy()


def brute(frame: pd.DataFrame, pods: pd.DataFrame) -> list:
    by_ip = dict(pods.groupby("ip"))
    out = []
    for ip, t in zip(frame.ip, frame.time):
        g = by_ip.get(ip)
        hit = None if g is None else g[(g.start <= t) & (g.end.isna() | (t < g.end))]
        out.append(None if hit is None or not len(hit) else hit.pod.iloc[0])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=5_000_000)
    ap.add_argument("--pods", type=int, default=135_000)
    ap.add_argument("--ips", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    pods = lifetimes(a.pods, a.ips, a.seed)
    fl = flows(a.flows, pods, a.ips, a.seed)
    print(
        f"{len(fl):,} flows, {len(pods):,} pod lifetimes on {pods.ip.nunique():,} IPs "
        f"({len(pods) / pods.ip.nunique():.1f} pods per IP), {pods.end.isna().sum():,} alive"
    )
    sample = fl.sample(min(2000, len(fl)), random_state=1).reset_index(drop=True)
    ours = attribute_frame(sample, pods, None, ip="ip")
    reference = brute(sample, pods)
    agree = sum((x if isinstance(x, str) else None) == y for x, y in zip(ours.pod, reference))
    print(f"agreement with brute force on {len(sample):,} sampled flows: {agree:,}/{len(sample):,}")
    times: dict[str, list[float]] = {"k8sforensics attribute_frame": [], "duckdb range join": []}
    for _ in range(a.rounds):
        t = time.perf_counter()
        attribute_frame(fl, pods, None, ip="ip")
        times["k8sforensics attribute_frame"].append(time.perf_counter() - t)
        t = time.perf_counter()
        baseline(fl, pods)
        times["duckdb range join"].append(time.perf_counter() - t)
    base = statistics.median(times["duckdb range join"])
    for name, ts in times.items():
        m = statistics.median(ts)
        print(
            f"{name:32} median {m:6.2f} s (min {min(ts):.2f}, max {max(ts):.2f})  {len(fl) / m / 1e6:.2f} M flows/s  {m / base:.2f}x"
        )


if __name__ == "__main__":
    main()
