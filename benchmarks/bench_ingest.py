#!/usr/bin/env python3
"""Ingest benchmark: k8sforensics against a DuckDB baseline and naive pandas on audit JSONL.

What it measures
    For each input size N it times whole processes turning N synthetic audit.k8s.io/v1 events
    (``gen_audit.py``, ~1.4 KB/line) into Parquet:

    k8sforensics     ``python -m k8sforensics ingest INPUT --case <fresh empty dir>``
                     (same interpreter, cwd = the repo, so the package under development imports).
                     Note it does more than the baselines: dedup on auditID, redaction, date
                     partitions, manifest, quarantine.
    duckdb_baseline  DuckDB ``read_ndjson(path, columns={...})`` with the 25 flat columns of
                     the audit table's core -> ``con.sql(q).to_arrow_reader(100_000)`` -> pyarrow
                     ParquetWriter (zstd), batches regrouped into ~100k-row row groups, 2 threads.
                     The fastest DuckDB route we measured ("duckdb_arrow_batches").
    pandas_naive     ``pd.read_json(path, lines=True)`` + ``.str.get`` extraction of the same columns
                     + ``to_parquet(zstd)``. ~12 GB peak RSS at 1M events, so it only runs for
                     N <= 1,000,000 unless ``--pandas`` is given.

How
    The input for each N is generated once and cached in WORKDIR/inputs. Before timing, and again
    before every round (untimed), the file is read end to end so every run sees a warm page cache.
    Each round runs every approach once, as a separate subprocess, interleaved (A B C, A B C, ...)
    so drift on a noisy machine hits all of them alike. Per run: wall time (perf_counter around
    spawn..wait4), user+sys CPU and peak RSS from ``os.wait4`` (``ru_maxrss``, KiB on Linux: the
    largest single process, not the summed tree). Output rows are counted from the Parquet
    metadata afterwards (untimed), then the output is deleted unless ``--keep-outputs``.
    Reported per N: median wall (min-max), median CPU, median peak RSS, events/s, and the median of
    the per-round ratios to duckdb_baseline; then the k8sforensics/duckdb ratio per N and how peak
    RSS grows from the smallest to the largest N. A failed run (non-zero exit, timeout) is recorded
    with its stderr tail and never stops the benchmark. Everything goes to WORKDIR/results.json
    (rewritten after every run, so an interrupted benchmark keeps what it measured).

How to run (from the repo root; the venv needs duckdb, pyarrow, pandas)
    python benchmarks/bench_ingest.py                              # N = 1M, 3 rounds, all approaches
    python benchmarks/bench_ingest.py --n 1000000 4000000          # memory growth with input size
    python benchmarks/bench_ingest.py --n 20000 --rounds 2 --approaches duckdb_baseline pandas_naive
    python benchmarks/bench_ingest.py --approaches k8sforensics duckdb_baseline --k8sf-arg=--cluster=bench
    python benchmarks/bench_ingest.py --help
Inputs need disk: ~1.44 GB per million events (cached; delete WORKDIR/inputs to free it).
A single figure can be reproduced by hand with ``/usr/bin/time -v`` around one approach, e.g.
    python benchmarks/bench_ingest.py --child duckdb_baseline INPUT.jsonl OUTDIR
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
APPROACHES = ("k8sforensics", "duckdb_baseline", "pandas_naive")
BASELINE = "duckdb_baseline"
PANDAS_MAX_N = 1_000_000
ROW_GROUP = 100_000
TAIL_CHARS = 4000

# --------------------------------------------------------------------------------------------
# The baselines (run in a child process: ``bench_ingest.py --child NAME INPUT OUTDIR``)
# --------------------------------------------------------------------------------------------
# the baseline's target: 25 flat columns, timestamps as timestamp[us, UTC], user_groups as
# list<string>, response_code int32, request_object the raw JSON text of requestObject.
DUCKDB_COLUMNS = {
    "requestReceivedTimestamp": "TIMESTAMPTZ",
    "stageTimestamp": "TIMESTAMPTZ",
    "auditID": "VARCHAR",
    "level": "VARCHAR",
    "stage": "VARCHAR",
    "verb": "VARCHAR",
    "requestURI": "VARCHAR",
    "user": "STRUCT(username VARCHAR, uid VARCHAR, groups VARCHAR[])",
    "impersonatedUser": "STRUCT(username VARCHAR)",
    "sourceIPs": "VARCHAR[]",
    "userAgent": "VARCHAR",
    "objectRef": "STRUCT(resource VARCHAR, subresource VARCHAR, namespace VARCHAR, name VARCHAR, "
    "apiGroup VARCHAR, apiVersion VARCHAR)",
    "responseStatus": "STRUCT(code INTEGER, status VARCHAR, reason VARCHAR)",
    "annotations": 'STRUCT("authorization.k8s.io/decision" VARCHAR, "authorization.k8s.io/reason" VARCHAR)',
    "requestObject": "JSON",  # JSON keeps heterogeneous bodies (objects and JSON-patch arrays) as text
}

DUCKDB_SELECT = """
SELECT requestReceivedTimestamp        AS ts,
       stageTimestamp                  AS stage_ts,
       auditID                         AS audit_id,
       level, stage, verb,
       requestURI                      AS request_uri,
       "user".username                 AS user_username,
       "user".uid                      AS user_uid,
       "user".groups                   AS user_groups,
       impersonatedUser.username       AS impersonated_username,
       sourceIPs[1]                    AS source_ip,
       userAgent                       AS user_agent,
       objectRef.resource              AS objref_resource,
       objectRef.subresource           AS objref_subresource,
       objectRef.namespace             AS objref_namespace,
       objectRef.name                  AS objref_name,
       objectRef.apiGroup              AS objref_api_group,
       objectRef.apiVersion            AS objref_api_version,
       responseStatus.code             AS response_code,
       responseStatus.status           AS response_status,
       responseStatus.reason           AS response_reason,
       annotations."authorization.k8s.io/decision" AS authz_decision,
       annotations."authorization.k8s.io/reason"   AS authz_reason,
       requestObject::VARCHAR          AS request_object
FROM read_ndjson({path}, columns={columns})
"""


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def child_duckdb(inp: str, outdir: str, threads: int) -> int:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    con = duckdb.connect()
    con.execute(f"SET threads={int(threads)}")
    con.execute("SET TimeZone='UTC'")  # TIMESTAMPTZ -> Arrow timestamp[us, tz=UTC]
    columns = "{" + ", ".join(f"{sql_str(k)}: {sql_str(v)}" for k, v in DUCKDB_COLUMNS.items()) + "}"
    reader = con.sql(DUCKDB_SELECT.format(path=sql_str(inp), columns=columns)).to_arrow_reader(ROW_GROUP)
    rows = 0
    pending, pending_rows = [], 0
    # DuckDB hands out ~2-12k-row batches; regroup them so the Parquet layout has ~100k-row groups.
    with pq.ParquetWriter(os.path.join(outdir, "audit.parquet"), reader.schema, compression="zstd") as w:
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


def child_pandas(inp: str, outdir: str) -> int:
    import pandas as pd

    df = pd.read_json(inp, lines=True)
    n = len(df)

    def col(name: str) -> pd.Series:
        return df[name] if name in df.columns else pd.Series([None] * n, dtype=object)

    def ts(s: pd.Series) -> pd.Series:
        return pd.to_datetime(s, utc=True, format="ISO8601").astype("datetime64[us, UTC]")

    def raw_json(o):
        return None if not isinstance(o, (dict, list)) else json.dumps(o, separators=(",", ":"), ensure_ascii=False)

    user, ref, status, ann = col("user"), col("objectRef"), col("responseStatus"), col("annotations")
    out = pd.DataFrame(
        {
            "ts": ts(col("requestReceivedTimestamp")),
            "stage_ts": ts(col("stageTimestamp")),
            "audit_id": col("auditID"),
            "level": col("level"),
            "stage": col("stage"),
            "verb": col("verb"),
            "request_uri": col("requestURI"),
            "user_username": user.str.get("username"),
            "user_uid": user.str.get("uid"),
            "user_groups": user.str.get("groups"),
            "impersonated_username": col("impersonatedUser").str.get("username"),
            "source_ip": col("sourceIPs").str.get(0),
            "user_agent": col("userAgent"),
            "objref_resource": ref.str.get("resource"),
            "objref_subresource": ref.str.get("subresource"),
            "objref_namespace": ref.str.get("namespace"),
            "objref_name": ref.str.get("name"),
            "objref_api_group": ref.str.get("apiGroup"),
            "objref_api_version": ref.str.get("apiVersion"),
            "response_code": status.str.get("code").astype("Int32"),
            "response_status": status.str.get("status"),
            "response_reason": status.str.get("reason"),
            "authz_decision": ann.str.get("authorization.k8s.io/decision"),
            "authz_reason": ann.str.get("authorization.k8s.io/reason"),
            "request_object": col("requestObject").map(raw_json),
        }
    )
    out.to_parquet(os.path.join(outdir, "audit.parquet"), compression="zstd", index=False)
    print(json.dumps({"rows": len(out)}))
    return 0


# --------------------------------------------------------------------------------------------
# Measuring one subprocess
# --------------------------------------------------------------------------------------------
def run_measured(cmd: list[str], cwd: str, env: dict, log_base: str, timeout: float | None) -> dict:
    """Spawn cmd, wait with os.wait4, return wall/CPU/peak RSS and the exit status."""
    with open(log_base + ".stdout", "wb") as out, open(log_base + ".stderr", "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the process group of the child we started
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if timer:
            timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it has been reaped
    res = {
        "cmd": cmd,
        "rc": proc.returncode,
        "wall_s": round(wall, 3),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
        "user_s": round(ru.ru_utime, 3),
        "sys_s": round(ru.ru_stime, 3),
        "maxrss_kib": ru.ru_maxrss,
        "timed_out": timed_out.is_set(),
        "log": log_base,
    }
    res["ok"] = res["rc"] == 0 and not res["timed_out"]
    if not res["ok"]:
        with open(log_base + ".stderr", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - TAIL_CHARS))
            res["stderr_tail"] = f.read().decode("utf-8", "replace")
    return res


def parquet_rows(outdir: str) -> tuple[int | None, int]:
    """(rows of the audit table, bytes of all Parquet) in an output dir or case dir."""
    import pyarrow.parquet as pq

    files = []
    for root, _, names in os.walk(outdir):
        files += [os.path.join(root, n) for n in names if n.endswith(".parquet")]
    nbytes = sum(os.path.getsize(p) for p in files)
    sep = os.sep
    audit = [p for p in files if f"{sep}audit{sep}" in p[len(outdir) :] or os.path.basename(p) == "audit.parquet"]
    if not audit:
        audit = [p for p in files if "quarantine" not in p and f"{sep}context{sep}" not in p and "findings" not in p]
    if not audit:
        return None, nbytes
    return sum(pq.ParquetFile(p).metadata.num_rows for p in audit), nbytes


def warm(path: str) -> float:
    t0 = time.perf_counter()
    buf = bytearray(16 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------
def ensure_input(n: int, seed: int, workdir: str) -> dict:
    d = os.path.join(workdir, "inputs")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"audit_{n}_s{seed}.jsonl")
    meta_path = path + ".meta.json"
    if not (os.path.exists(path) and os.path.exists(meta_path)):
        print(f"[gen] {n:,} events -> {path}", flush=True)
        subprocess.run(
            [sys.executable, os.path.join(HERE, "gen_audit.py"), str(n), path, "--seed", str(seed), "--meta"],
            check=True,
        )
    with open(meta_path) as f:
        meta = json.load(f)
    if meta.get("bytes") != os.path.getsize(path):
        raise SystemExit(f"{path} does not match its meta file; delete both and rerun")
    return meta


def command_for(approach: str, inp: str, outdir: str, a) -> tuple[list[str], str]:
    if approach == "k8sforensics":
        return [sys.executable, "-m", "k8sforensics", "ingest", inp, "--case", outdir] + a.k8sf_arg, a.repo
    if approach == "duckdb_baseline":
        return [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            approach,
            inp,
            outdir,
            "--threads",
            str(a.threads),
        ], HERE
    return [sys.executable, os.path.abspath(__file__), "--child", approach, inp, outdir], HERE


def med(xs):
    return statistics.median(xs) if xs else None


def summarise(runs: list[dict], n: int, nbytes: int, approaches: list[str]) -> dict:
    summ = {}
    base_by_round = {r["round"]: r["wall_s"] for r in runs if r["approach"] == BASELINE and r["ok"]}
    for ap in approaches:
        rs = [r for r in runs if r["approach"] == ap]
        ok = [r for r in rs if r["ok"]]
        walls = [r["wall_s"] for r in ok]
        ratios = [r["wall_s"] / base_by_round[r["round"]] for r in ok if r["round"] in base_by_round]
        s = {"runs": len(rs), "ok": len(ok), "failed": len(rs) - len(ok)}
        if ok:
            w = med(walls)
            s.update(
                {
                    "wall_s_median": round(w, 3),
                    "wall_s_min": min(walls),
                    "wall_s_max": max(walls),
                    "cpu_s_median": round(med([r["cpu_s"] for r in ok]), 3),
                    "rss_mib_median": round(med([r["maxrss_kib"] for r in ok]) / 1024, 1),
                    "rss_mib_max": round(max(r["maxrss_kib"] for r in ok) / 1024, 1),
                    "events_per_s": round(n / w),
                    "mb_per_s": round(nbytes / 1e6 / w, 1),
                    "ratio_vs_baseline_median": round(med(ratios), 3) if ratios else None,
                    "rows": sorted({r.get("rows") for r in ok}, key=lambda x: (x is None, x)),
                    "out_mb_median": round(med([r.get("out_bytes", 0) for r in ok]) / 1e6, 1),
                }
            )
        fails = [r for r in rs if not r["ok"]]
        if fails:
            s["first_failure"] = {
                "round": fails[0]["round"],
                "rc": fails[0]["rc"],
                "timed_out": fails[0]["timed_out"],
                "stderr_tail": fails[0].get("stderr_tail", ""),
            }
        summ[ap] = s
    return summ


def print_table(n: int, meta: dict, rounds: int, summ: dict) -> None:
    print(
        f"\n=== N = {n:,} events, {meta['bytes'] / 1e6:,.0f} MB input ({meta['bytes'] / n:,.0f} B/line), "
        f"{meta['unique_audit_ids']:,} unique auditIDs, {rounds} round(s) ==="
    )
    hdr = (
        f"{'approach':<16} {'ok':>5} {'wall s median (min-max)':>26} {'CPU s':>8} {'peak RSS MiB':>13} "
        f"{'events/s':>10} {'MB/s':>7} {'vs duckdb':>10} {'rows':>11} {'out MB':>8}"
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
    print(
        f"rows expected: {n:,} for the flat baselines (one row per line); "
        f"{meta['unique_audit_ids']:,} for k8sforensics (deduplicated on auditID)"
    )


def cross_n(summaries: dict, approaches: list[str]) -> dict:
    """k8sforensics/duckdb per N, and RSS growth from the smallest to the largest N."""
    out = {"k8sforensics_vs_duckdb": {}, "rss_growth": {}}
    ns = sorted(summaries)
    print("\n=== across N ===")
    for n in ns if "k8sforensics" in approaches else []:
        k, d = summaries[n].get("k8sforensics", {}), summaries[n].get(BASELINE, {})
        if k.get("ok") and d.get("ok"):
            r = {
                "wall_ratio_median_per_round": k.get("ratio_vs_baseline_median"),
                "rss_ratio": round(k["rss_mib_median"] / d["rss_mib_median"], 2),
                "cpu_ratio": round(k["cpu_s_median"] / d["cpu_s_median"], 2),
            }
            out["k8sforensics_vs_duckdb"][n] = r
            print(
                f"k8sforensics / duckdb_baseline at N={n:,}: wall {r['wall_ratio_median_per_round']:.2f}x, "
                f"CPU {r['cpu_ratio']:.2f}x, peak RSS {r['rss_ratio']:.2f}x"
            )
        else:
            print(f"k8sforensics / duckdb_baseline at N={n:,}: n/a (a side has no successful run)")
    if len(ns) >= 2:
        lo, hi = ns[0], ns[-1]
        for ap in approaches:
            a, b = summaries[lo].get(ap, {}), summaries[hi].get(ap, {})
            if a.get("ok") and b.get("ok"):
                g = {
                    "n_small": lo,
                    "n_large": hi,
                    "rss_mib_small": a["rss_mib_median"],
                    "rss_mib_large": b["rss_mib_median"],
                    "delta_mib": round(b["rss_mib_median"] - a["rss_mib_median"], 1),
                    "rss_factor": round(b["rss_mib_median"] / a["rss_mib_median"], 2),
                    "input_factor": round(hi / lo, 2),
                    "wall_factor": round(b["wall_s_median"] / a["wall_s_median"], 2),
                }
                out["rss_growth"][ap] = g
                print(
                    f"peak RSS {ap:<16} {g['rss_mib_small']:>8,.0f} MiB @ {lo:,} -> {g['rss_mib_large']:>8,.0f} MiB "
                    f"@ {hi:,}  ({g['delta_mib']:+,.0f} MiB, x{g['rss_factor']} for x{g['input_factor']} input; "
                    f"wall x{g['wall_factor']})"
                )
            else:
                print(f"peak RSS {ap:<16} n/a (not measured at both {lo:,} and {hi:,})")
    else:
        print("RSS growth: needs at least two --n values")
    return out


def machine_info() -> dict:
    info = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        info["mem_total_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    for mod in ("duckdb", "pyarrow", "pandas", "orjson"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = None
    try:
        info["repo_commit"] = (
            subprocess.run(
                ["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except Exception:
        info["repo_commit"] = None
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Ingest benchmark: k8sforensics vs DuckDB vs pandas (see module doc).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--n", type=int, nargs="+", default=[1_000_000], help="input sizes in events (default 1000000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/kf_bench_ingest", help="inputs, outputs, logs, results.json")
    ap.add_argument("--approaches", nargs="+", choices=APPROACHES, default=list(APPROACHES))
    ap.add_argument("--pandas", action="store_true", help=f"run pandas_naive also for N > {PANDAS_MAX_N:,}")
    ap.add_argument("--seed", type=int, default=42, help="gen_audit.py seed")
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
    ap.add_argument("--child", nargs=3, metavar=("APPROACH", "INPUT", "OUTDIR"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child:
        name, inp, outdir = a.child
        os.makedirs(outdir, exist_ok=True)
        if name == "duckdb_baseline":
            return child_duckdb(inp, outdir, a.threads)
        if name == "pandas_naive":
            return child_pandas(inp, outdir)
        raise SystemExit(f"unknown child approach {name}")

    workdir = os.path.abspath(a.workdir)
    os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
    results_path = os.path.join(workdir, "results.json")
    env = dict(os.environ)
    env["PYTHONPATH"] = a.repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    results = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "config": {k: v for k, v in vars(a).items() if k != "child"},
        "inputs": {},
        "runs": [],
        "summary": {},
        "cross_n": {},
    }

    def save():
        tmp = results_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2, default=str)
        os.replace(tmp, results_path)

    summaries = {}
    for n in a.n:
        meta = ensure_input(n, a.seed, workdir)
        inp = meta["path"]
        results["inputs"][n] = meta
        approaches = [x for x in a.approaches if x != "pandas_naive" or n <= PANDAS_MAX_N or a.pandas]
        if len(approaches) < len(a.approaches):
            print(f"[skip] pandas_naive at N={n:,} (needs ~12 GB per million events; pass --pandas to force)")
        print(f"[warm] {inp}: {warm(inp):.2f} s", flush=True)
        runs = []
        for rnd in range(1, a.rounds + 1):
            meta["warm_s_round_%d" % rnd] = round(warm(inp), 2)
            for approach in approaches:
                outdir = os.path.join(workdir, "out", str(n), f"{approach}_r{rnd}")
                shutil.rmtree(outdir, ignore_errors=True)
                os.makedirs(outdir)  # fresh, empty
                cmd, cwd = command_for(approach, inp, outdir, a)
                log_base = os.path.join(workdir, "logs", f"{n}_{approach}_r{rnd}")
                r = run_measured(cmd, cwd, env, log_base, a.timeout or None)
                r.update({"n": n, "approach": approach, "round": rnd})
                if r["ok"]:
                    r["rows"], r["out_bytes"] = parquet_rows(outdir)
                if not a.keep_outputs:
                    shutil.rmtree(outdir, ignore_errors=True)
                runs.append(r)
                results["runs"].append(r)
                state = (
                    (
                        f"wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s, peak RSS {r['maxrss_kib'] / 1024:,.0f} MiB"
                        f", rows {r.get('rows')}"
                    )
                    if r["ok"]
                    else f"FAILED rc={r['rc']}{' (timeout)' if r['timed_out'] else ''}; stderr: {log_base}.stderr"
                )
                print(f"[N={n:,} round {rnd}/{a.rounds}] {approach:<16} {state}", flush=True)
                save()
        summaries[n] = summarise(runs, n, meta["bytes"], approaches)
        results["summary"][n] = summaries[n]
        print_table(n, meta, a.rounds, summaries[n])
        save()

    results["cross_n"] = cross_n(summaries, list(a.approaches))
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save()
    failed = {(n, ap): s["first_failure"] for n, sm in summaries.items() for ap, s in sm.items() if s.get("failed")}
    for (n, ap), f in failed.items():
        print(f"\n--- {ap} at N={n:,}: first failure (round {f['round']}, rc={f['rc']}), stderr tail ---")
        print((f["stderr_tail"] or "").rstrip()[-1500:])
    print(f"\nresults: {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
