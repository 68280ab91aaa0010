#!/usr/bin/env python3
"""Flow-ingest benchmark: k8sforensics against a DuckDB baseline on Hubble JSONL and AWS VPC Flow Logs.

What it measures
    For each format and input size N it times whole processes turning N synthetic flow records
    (``gen_flows.py``: Hubble exporter lines ~1.3 KB, VPC Flow Log v5 lines ~170 B) into Parquet:

    k8sforensics     ``python -m k8sforensics ingest INPUT --case <fresh empty dir> --no-progress``
                     (same interpreter, cwd = the repo, so the package under development imports).
                     It does more than the baseline: every column of the flows table (label maps,
                     workloads, services, dst_names, l7_type, the flow as ``extra`` JSON,
                     provenance), date partitions, manifest, quarantine.
    duckdb_baseline  DuckDB reading the file with an explicit schema and writing the core columns
                     the toolkit extracts -> ``con.sql(q).to_arrow_reader(100_000)`` -> pyarrow
                     ParquetWriter (zstd), batches regrouped into ~100k-row row groups, 2 threads
                     (the recipe of bench_ingest.py's duckdb_baseline).
                     Hubble: ``read_ndjson(path, columns={flow: STRUCT(...), node_name})`` ->
                     time, node, src/dst ip, ports, protocol, verdict, drop reason, direction,
                     is_reply (``is_reply`` or the old ``reply``), src/dst namespace, pod and labels
                     (the raw ``k8s:key=value`` list), dns query, http method/url/code.
                     VPC: ``read_csv(path, delim=' ', header=true, columns={...}, nullstr='-')`` ->
                     time, time_end, src/dst ip (pkt-* address when present), ports, protocol name,
                     verdict (action), direction, bytes, packets, account, interface and VPC ids;
                     NODATA/SKIPDATA records are filtered out, as the toolkit skips them, so both
                     approaches should report the same row count.

How (as in bench_ingest.py)
    The inputs for each N are generated once and cached in WORKDIR/inputs/s<seed>/. Before timing,
    and again before every round (untimed), the file is read end to end so every run sees a warm
    page cache. Each round runs both approaches once, as separate subprocesses, interleaved
    (A B, A B, ...) so drift on a noisy machine hits both alike. Per run: wall time
    (perf_counter around spawn..wait4), user+sys CPU and peak RSS from ``os.wait4``
    (``ru_maxrss``: the largest single process, not the summed tree). Output rows are counted from
    the Parquet metadata afterwards (untimed; for k8sforensics the files under <case>/flows/), then
    the output is deleted unless ``--keep-outputs``. Reported per format and N: median wall
    (min-max), median CPU, median peak RSS, rows, flows/s, and the median of the per-round wall
    ratios to duckdb_baseline. A failed run (non-zero exit, timeout) is recorded with its stderr
    tail and never stops the benchmark. Everything goes to WORKDIR/results.json (rewritten after
    every run, so an interrupted benchmark keeps what it measured).

How to run (from the repo root; the venv needs duckdb, pyarrow, orjson)
    python benchmarks/bench_flows.py                               # N = 5M, 3 rounds, hubble and vpc
    python benchmarks/bench_flows.py --n 50000 --rounds 2          # quick check
    python benchmarks/bench_flows.py --formats vpc --n 1000000 5000000
    python benchmarks/bench_flows.py --help
Inputs need disk: ~1.3 GB (Hubble) + ~0.17 GB (VPC) per million records (cached; delete
WORKDIR/inputs to free it). A single figure can be reproduced by hand with ``/usr/bin/time -v``:
    python benchmarks/bench_flows.py --child duckdb_baseline hubble INPUT.jsonl OUTDIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_ingest as bi  # noqa: E402 (after the path insert) sibling script: measuring, warming, summarising, machine info

REPO = bi.REPO
FORMATS = ("hubble", "vpc")
APPROACHES = ("k8sforensics", "duckdb_baseline")
BASELINE = bi.BASELINE
ROW_GROUP = bi.ROW_GROUP

# --------------------------------------------------------------------------------------------
# The baseline (run in a child process: ``bench_flows.py --child duckdb_baseline FORMAT INPUT OUTDIR``)
# --------------------------------------------------------------------------------------------
_PORTS = "STRUCT(source_port INTEGER, destination_port INTEGER)"
_ENDPOINT = "STRUCT(namespace VARCHAR, pod_name VARCHAR, labels VARCHAR[])"
HUBBLE_COLUMNS = {
    "flow": (
        'STRUCT("time" TIMESTAMPTZ, verdict VARCHAR, drop_reason_desc VARCHAR, '
        '"IP" STRUCT(source VARCHAR, destination VARCHAR), '
        f'l4 STRUCT("TCP" {_PORTS}, "UDP" {_PORTS}, "SCTP" {_PORTS}, "ICMPv4" STRUCT("type" INTEGER), '
        '"ICMPv6" STRUCT("type" INTEGER)), '
        f"source {_ENDPOINT}, destination {_ENDPOINT}, node_name VARCHAR, traffic_direction VARCHAR, "
        "is_reply BOOLEAN, reply BOOLEAN, "
        "l7 STRUCT(dns STRUCT(query VARCHAR), http STRUCT(method VARCHAR, url VARCHAR, code INTEGER)))"
    ),
    "node_name": "VARCHAR",
}
HUBBLE_SELECT = """
SELECT flow."time"                                  AS time,
       coalesce(flow.node_name, node_name)          AS node,
       flow."IP".source                             AS src_ip,
       flow."IP".destination                        AS dst_ip,
       coalesce(flow.l4."TCP".source_port, flow.l4."UDP".source_port, flow.l4."SCTP".source_port)
                                                    AS src_port,
       coalesce(flow.l4."TCP".destination_port, flow.l4."UDP".destination_port, flow.l4."SCTP".destination_port)
                                                    AS dst_port,
       CASE WHEN flow.l4."TCP" IS NOT NULL THEN 'tcp' WHEN flow.l4."UDP" IS NOT NULL THEN 'udp'
            WHEN flow.l4."ICMPv4" IS NOT NULL THEN 'icmp' WHEN flow.l4."ICMPv6" IS NOT NULL THEN 'icmpv6'
            WHEN flow.l4."SCTP" IS NOT NULL THEN 'sctp' END AS protocol,
       flow.verdict                                 AS verdict,
       flow.drop_reason_desc                        AS drop_reason,
       lower(flow.traffic_direction)                AS direction,
       coalesce(flow.is_reply, flow.reply)          AS is_reply,
       flow.source.namespace                        AS src_namespace,
       flow.source.pod_name                         AS src_pod,
       flow.source.labels                           AS src_labels,
       flow.destination.namespace                   AS dst_namespace,
       flow.destination.pod_name                    AS dst_pod,
       flow.destination.labels                      AS dst_labels,
       flow.l7.dns.query                            AS dns_query,
       flow.l7.http.method                          AS http_method,
       flow.l7.http.url                             AS http_url,
       flow.l7.http.code                            AS http_status
FROM read_ndjson({path}, columns={columns})
"""

VPC_COLUMNS = {
    "version": "INTEGER",
    "account-id": "VARCHAR",
    "interface-id": "VARCHAR",
    "srcaddr": "VARCHAR",
    "dstaddr": "VARCHAR",
    "srcport": "INTEGER",
    "dstport": "INTEGER",
    "protocol": "INTEGER",
    "packets": "BIGINT",
    "bytes": "BIGINT",
    "start": "BIGINT",
    "end": "BIGINT",
    "action": "VARCHAR",
    "log-status": "VARCHAR",
    "vpc-id": "VARCHAR",
    "pkt-srcaddr": "VARCHAR",
    "pkt-dstaddr": "VARCHAR",
    "flow-direction": "VARCHAR",
}
VPC_SELECT = """
SELECT to_timestamp("start")                        AS time,
       to_timestamp("end")                          AS time_end,
       coalesce("pkt-srcaddr", srcaddr)             AS src_ip,
       coalesce("pkt-dstaddr", dstaddr)             AS dst_ip,
       srcport                                      AS src_port,
       dstport                                      AS dst_port,
       CASE protocol WHEN 6 THEN 'tcp' WHEN 17 THEN 'udp' WHEN 1 THEN 'icmp' WHEN 58 THEN 'icmpv6'
            WHEN 132 THEN 'sctp' ELSE protocol::VARCHAR END AS protocol,
       action                                       AS verdict,
       "flow-direction"                             AS direction,
       bytes, packets,
       "account-id"                                 AS account_id,
       "interface-id"                               AS interface_id,
       "vpc-id"                                     AS vpc_id
FROM read_csv({path}, delim=' ', header=true, auto_detect=false, columns={columns}, nullstr='-')
WHERE "log-status" = 'OK'
"""


def duckdb_query(fmt: str, inp: str) -> str:
    cols, select = (HUBBLE_COLUMNS, HUBBLE_SELECT) if fmt == "hubble" else (VPC_COLUMNS, VPC_SELECT)
    columns = "{" + ", ".join(f"{bi.sql_str(k)}: {bi.sql_str(v)}" for k, v in cols.items()) + "}"
    return select.format(path=bi.sql_str(inp), columns=columns)


def child_duckdb(fmt: str, inp: str, outdir: str, threads: int) -> int:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    con = duckdb.connect()
    con.execute(f"SET threads={int(threads)}")
    con.execute("SET TimeZone='UTC'")  # TIMESTAMPTZ -> Arrow timestamp[us, tz=UTC]
    reader = con.sql(duckdb_query(fmt, inp)).to_arrow_reader(ROW_GROUP)
    rows = 0
    pending, pending_rows = [], 0
    # DuckDB hands out ~2-12k-row batches; regroup them so the Parquet layout has ~100k-row groups.
    with pq.ParquetWriter(os.path.join(outdir, "flows.parquet"), reader.schema, compression="zstd") as w:
        for batch in reader:
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= ROW_GROUP:
                w.write_table(pa.Table.from_batches(pending, reader.schema), row_group_size=pending_rows)
                rows += pending_rows
                pending, pending_rows = [], 0
        if pending_rows:
            w.write_table(pa.Table.from_batches(pending, reader.schema), row_group_size=pending_rows)
            rows += pending_rows
    print(json.dumps({"rows": rows}))
    return 0


# --------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------
def flow_rows(outdir: str) -> tuple[int | None, int, int]:
    """(rows of the flows table, quarantined rows, bytes of all Parquet) in a case dir or output dir."""
    import pyarrow.parquet as pq

    files = []
    for root, _, names in os.walk(outdir):
        files += [os.path.join(root, n) for n in names if n.endswith(".parquet")]
    nbytes = sum(os.path.getsize(p) for p in files)
    flows_dir = os.path.join(outdir, "flows") + os.sep
    quar_dir = os.path.join(outdir, "quarantine") + os.sep
    flows = [p for p in files if p.startswith(flows_dir) or os.path.basename(p) == "flows.parquet"]
    quarantined = sum(pq.ParquetFile(p).metadata.num_rows for p in files if p.startswith(quar_dir))
    if not flows:
        return None, quarantined, nbytes
    return sum(pq.ParquetFile(p).metadata.num_rows for p in flows), quarantined, nbytes


def ensure_input(fmt: str, n: int, seed: int, workdir: str) -> dict:
    import gen_flows

    d = os.path.join(workdir, "inputs", f"s{seed}")
    path = gen_flows.output_path(d, fmt, n)
    meta_path = path + ".meta.json"
    if not (os.path.exists(path) and os.path.exists(meta_path)):
        print(f"[gen] {n:,} {fmt} records -> {path}", flush=True)
        subprocess.run(
            [sys.executable, os.path.join(HERE, "gen_flows.py"), str(n), d, "--seed", str(seed), "--formats", fmt],
            check=True,
        )
    with open(meta_path) as f:
        meta = json.load(f)
    if meta.get("bytes") != os.path.getsize(path):
        raise SystemExit(f"{path} does not match its meta file; delete both and rerun")
    return meta


def command_for(approach: str, fmt: str, inp: str, outdir: str, a) -> tuple[list[str], str]:
    if approach == "k8sforensics":
        return (
            [sys.executable, "-m", "k8sforensics", "ingest", inp, "--case", outdir, "--no-progress"] + a.k8sf_arg,
            a.repo,
        )
    return [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        approach,
        fmt,
        inp,
        outdir,
        "--threads",
        str(a.threads),
    ], HERE


def print_table(fmt: str, n: int, meta: dict, rounds: int, summ: dict) -> None:
    print(
        f"\n=== {fmt}: N = {n:,} records, {meta['bytes'] / 1e6:,.0f} MB input "
        f"({meta['bytes'] / max(n, 1):,.0f} B/record), {rounds} round(s) ==="
    )
    hdr = (
        f"{'approach':<16} {'ok':>5} {'wall s median (min-max)':>26} {'CPU s':>8} {'peak RSS MiB':>13} "
        f"{'flows/s':>10} {'MB/s':>7} {'vs duckdb':>10} {'rows':>11} {'out MB':>8}"
    )
    print(hdr)
    print("-" * len(hdr))
    for ap, s in summ.items():
        okstr = f"{s['ok']}/{s['runs']}"
        if not s["ok"]:
            tail = (s.get("first_failure", {}).get("stderr_tail") or "").strip().splitlines()
            why = "timeout" if s.get("first_failure", {}).get("timed_out") else (tail[-1] if tail else "no stderr")
            print(f"{ap:<16} {okstr:>5}  FAILED (rc={s['first_failure']['rc']}): {why[:110]}")
            continue
        wall = f"{s['wall_s_median']:.2f} ({s['wall_s_min']:.2f}-{s['wall_s_max']:.2f})"
        ratio = f"{s['ratio_vs_baseline_median']:.2f}x" if s["ratio_vs_baseline_median"] else "-"
        rows = ",".join(f"{x:,}" if x is not None else "?" for x in s["rows"])
        print(
            f"{ap:<16} {okstr:>5} {wall:>26} {s['cpu_s_median']:>8.2f} {s['rss_mib_median']:>13,.0f} "
            f"{s['events_per_s']:>10,} {s['mb_per_s']:>7,.0f} {ratio:>10} {rows:>11} {s['out_mb_median']:>8,.1f}"
        )
    extra = (
        f" ({meta['records'] - meta['expected_rows']:,} NODATA/SKIPDATA records skipped by both)"
        if meta["records"] != meta["expected_rows"]
        else ""
    )
    print(f"rows expected: {meta['expected_rows']:,} for both approaches{extra}")


def overview(summaries: dict) -> dict:
    """k8sforensics/duckdb per format and N."""
    out = {}
    print("\n=== k8sforensics / duckdb_baseline ===")
    for fmt, by_n in summaries.items():
        for n, sm in by_n.items():
            k, d = sm.get("k8sforensics", {}), sm.get(BASELINE, {})
            if k.get("ok") and d.get("ok"):
                r = {
                    "wall_ratio_median_per_round": k.get("ratio_vs_baseline_median"),
                    "rss_ratio": round(k["rss_mib_median"] / d["rss_mib_median"], 2),
                    "cpu_ratio": round(k["cpu_s_median"] / d["cpu_s_median"], 2),
                }
                out.setdefault(fmt, {})[n] = r
                print(
                    f"{fmt:<7} N={n:>11,}: wall {r['wall_ratio_median_per_round']:.2f}x, "
                    f"CPU {r['cpu_ratio']:.2f}x, peak RSS {r['rss_ratio']:.2f}x"
                )
            else:
                print(f"{fmt:<7} N={n:>11,}: n/a (a side has no successful run)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Flow-ingest benchmark: k8sforensics vs DuckDB (see module doc).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--n", type=int, nargs="+", default=[5_000_000], help="input sizes in records (default 5000000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    ap.add_argument("--workdir", default="/tmp/kf_bench_flows", help="inputs, outputs, logs, results.json")
    ap.add_argument("--approaches", nargs="+", choices=APPROACHES, default=list(APPROACHES))
    ap.add_argument("--seed", type=int, default=7, help="gen_flows.py seed")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads for duckdb_baseline")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run before it is killed (0 = none)")
    ap.add_argument("--repo", default=REPO, help="cwd for `python -m k8sforensics` (default: this repo)")
    ap.add_argument(
        "--k8sf-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `k8sforensics ingest` (repeatable)",
    )
    ap.add_argument("--keep-outputs", action="store_true", help="keep each run's Parquet output / case dir")
    ap.add_argument("--child", nargs=4, metavar=("APPROACH", "FORMAT", "INPUT", "OUTDIR"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child:
        name, fmt, inp, outdir = a.child
        os.makedirs(outdir, exist_ok=True)
        if name == "duckdb_baseline" and fmt in FORMATS:
            return child_duckdb(fmt, inp, outdir, a.threads)
        raise SystemExit(f"unknown child approach/format {name}/{fmt}")

    workdir = os.path.abspath(a.workdir)
    os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
    results_path = os.path.join(workdir, "results.json")
    env = dict(os.environ)
    env["PYTHONPATH"] = a.repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    results = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": bi.machine_info(),
        "config": {k: v for k, v in vars(a).items() if k != "child"},
        "inputs": {},
        "runs": [],
        "summary": {},
        "k8sforensics_vs_duckdb": {},
    }

    def save():
        tmp = results_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2, default=str)
        os.replace(tmp, results_path)

    summaries: dict = {}
    for fmt in a.formats:
        for n in a.n:
            meta = ensure_input(fmt, n, a.seed, workdir)
            inp = meta["path"]
            results["inputs"].setdefault(fmt, {})[n] = meta
            print(f"[warm] {inp}: {bi.warm(inp):.2f} s", flush=True)
            runs = []
            for rnd in range(1, a.rounds + 1):
                meta["warm_s_round_%d" % rnd] = round(bi.warm(inp), 2)
                for approach in a.approaches:
                    outdir = os.path.join(workdir, "out", fmt, str(n), f"{approach}_r{rnd}")
                    shutil.rmtree(outdir, ignore_errors=True)
                    os.makedirs(outdir)  # fresh, empty
                    cmd, cwd = command_for(approach, fmt, inp, outdir, a)
                    log_base = os.path.join(workdir, "logs", f"{fmt}_{n}_{approach}_r{rnd}")
                    r = bi.run_measured(cmd, cwd, env, log_base, a.timeout or None)
                    r.update({"format": fmt, "n": n, "approach": approach, "round": rnd})
                    if r["ok"]:
                        try:
                            r["rows"], r["quarantined"], r["out_bytes"] = flow_rows(outdir)
                        except Exception as e:  # unreadable output: a failure
                            r.update(ok=False, stderr_tail=f"counting rows: {type(e).__name__}: {e}")
                    if not a.keep_outputs:
                        shutil.rmtree(outdir, ignore_errors=True)
                    runs.append(r)
                    results["runs"].append(r)
                    state = (
                        (
                            f"wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s, peak RSS "
                            f"{r['maxrss_kib'] / 1024:,.0f} MiB, rows {r.get('rows')}"
                            + (f", quarantined {r['quarantined']:,}" if r.get("quarantined") else "")
                        )
                        if r["ok"]
                        else f"FAILED rc={r['rc']}{' (timeout)' if r['timed_out'] else ''}; stderr: {log_base}.stderr"
                    )
                    print(f"[{fmt} N={n:,} round {rnd}/{a.rounds}] {approach:<16} {state}", flush=True)
                    save()
            summ = bi.summarise(runs, n, meta["bytes"], list(a.approaches))
            for s in summ.values():  # row counts vs what the generator wrote
                s["rows_expected"] = meta["expected_rows"]
                s["rows_match"] = bool(s.get("rows")) and s["rows"] == [meta["expected_rows"]]
            summaries.setdefault(fmt, {})[n] = summ
            results["summary"].setdefault(fmt, {})[n] = summ
            print_table(fmt, n, meta, a.rounds, summ)
            save()

    results["k8sforensics_vs_duckdb"] = overview(summaries)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save()
    for fmt, by_n in summaries.items():
        for n, sm in by_n.items():
            for ap_name, s in sm.items():
                if s.get("ok") and not s["rows_match"]:
                    print(f"\nNOTE {ap_name} on {fmt} N={n:,}: rows {s['rows']} != expected {s['rows_expected']:,}")
                f = s.get("first_failure")
                if f:
                    print(
                        f"\n--- {ap_name} on {fmt} N={n:,}: first failure (round {f['round']}, rc={f['rc']}), "
                        f"stderr tail ---"
                    )
                    print((f["stderr_tail"] or "").rstrip()[-1500:])
    print(f"\nresults: {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
