#!/usr/bin/env python3
"""The benchmark suite of the performance issue: runs the existing benchmarks at the issue's sizes
and prints ONE summary table -- each measurement next to its baseline measured in the same run,
the ratio, and the target with met / MISSED.

Parts (``--only`` takes these names, or ``ingest`` / ``flows`` for both of their parts)
    detect        ``k8sforensics.detect(case, save=False)`` on bench_graph.py's big case (5M VPC
                  flows + 1M audit events, cached in its workdir), against its floor: reading the
                  three tables enriched (``kf.enrich(case.<table>(), case)``, as in
                  bench_detect.py). Measured here (``--child detect|detect_floor CASEDIR``), one
                  subprocess per run, interleaved per round, the case's Parquet warmed before every
                  round. Target: detect wall < 60 s.
    graph         bench_graph.py on the same case (``lateral_movement`` vs reading its columns).
    ingest        bench_ingest.py at 1M events: k8sforensics vs duckdb_baseline vs pandas_naive.
                  Targets: k8sforensics <= 1.5x DuckDB, peak RSS <= 1 GiB.
    ingest-large  bench_ingest.py at 4M events (k8sforensics, duckdb_baseline): same targets, plus
                  peak RSS flat in input size (4M / 1M peak RSS <= FLAT_RSS_FACTOR).
    flows-vpc     bench_flows.py, VPC Flow Logs, 5M records (no ratio target: reported).
    flows-hubble  bench_flows.py, Hubble JSONL, 5M records (no ratio target: reported).
    attribution   bench_attribution.py (5M flows; it times both approaches in one process,
                  interleaved; its stdout is parsed). Target: attribute_frame <= DuckDB range join.

Every sub-benchmark runs as a subprocess with its own workdir under WORKDIR (``python
benchmarks/<bench>.py ... --workdir WORKDIR/<part>``); its results.json is read back, never
re-measured. Generated inputs are cached: before a part runs, inputs (and bench_graph's case)
already present in a cache dir (``--cache-dir``, default: the sub-benchmarks' default workdirs)
are symlinked into the part's workdir, so nothing is generated twice. The summary is rewritten
after every part to WORKDIR/summary.json and WORKDIR/summary.md (so an interrupted suite keeps
what it measured); ``--report`` reprints it without running anything.

    python benchmarks/suite.py --quick                 # 100k audit / 200k flows, 1 round: minutes
    python benchmarks/suite.py                         # the issue's sizes
    python benchmarks/suite.py --only detect,ingest --rounds 3 --big-rounds 2
    python benchmarks/suite.py --report                # reprint WORKDIR/summary.json
    python benchmarks/suite.py --shapes [--quick]      # the shape matrix instead (benchmarks/shapes.py):
                                                       # every shape of evidence vs its DuckDB baseline,
                                                       # results in WORKDIR/shapes/shapes.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import types
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_graph as bg  # noqa: E402  sibling script: ensure_inputs, ensure_case, warm_case, _last_json
import bench_ingest as bi  # noqa: E402  sibling script: run_measured, warm, machine_info
import shapes  # noqa: E402  sibling script: the shape matrix (--shapes)

PARTS = ("detect", "graph", "ingest", "flows-vpc", "attribution", "ingest-large", "flows-hubble")  # run order
GROUPS = {"ingest": ("ingest", "ingest-large"), "flows": ("flows-vpc", "flows-hubble")}
GIB_MIB = 1024.0
INGEST_RATIO_TARGET = 1.5
DETECT_TARGET_S = 60.0
FLAT_RSS_FACTOR = 1.25  # "flat": peak RSS at 4x the input grows by at most 25 %
DEFAULT_CACHES = ("/tmp/kf_bench_ingest", "/tmp/kf_bench_flows", "/tmp/k8sf-bench-graph")

FULL = {
    "audit": 1_000_000,
    "audit_large": 4_000_000,
    "flows": 5_000_000,
    "graph_flows": 5_000_000,
    "graph_audit": 1_000_000,
    "attr_flows": 5_000_000,
    "attr_pods": 135_000,
    "attr_ips": 5_000,
}
QUICK = {
    "audit": 100_000,
    "audit_large": 400_000,
    "flows": 200_000,
    "graph_flows": 200_000,
    "graph_audit": 100_000,
    "attr_flows": 200_000,
    "attr_pods": 20_000,
    "attr_ips": 1_000,
}
FLOW_SEED, AUDIT_SEED = 7, 42


def code_state() -> str:
    """HEAD of the repo, '+dirty' when k8sforensics/ has uncommitted changes (the code under test can move)."""
    try:
        head = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--", "k8sforensics"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except Exception:
        return "?"


def log(msg: str) -> None:
    print(f"[suite {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def env_for_children() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# --------------------------------------------------------------------------------------------
# Children: detection and its floor (``suite.py --child detect|detect_floor CASEDIR``)
# --------------------------------------------------------------------------------------------
def child_detect(case_dir: str) -> int:
    import k8sforensics as kf
    from k8sforensics.detect import BUILTIN_RULES

    t0 = time.perf_counter()
    case = kf.Case.open(case_dir)
    t_open = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t1 = time.perf_counter()
        findings = kf.detect(case, save=False)
        t_detect = time.perf_counter() - t1
    out = {
        "open_s": round(t_open, 3),
        "detect_s": round(t_detect, 3),
        "findings": len(findings),
        "rules": len(BUILTIN_RULES),
        "rss_mib": bg._maxrss_mib(),
    }
    if len(findings) and "rule_id" in getattr(findings, "columns", []):
        out["findings_by_rule"] = {str(k): int(v) for k, v in findings["rule_id"].value_counts().head(15).items()}
    print(json.dumps(out))
    return 0


def child_detect_floor(case_dir: str) -> int:
    """What every rule needs before it can run: the three tables, enriched (bench_detect.py's floor)."""
    import k8sforensics as kf

    case = kf.Case.open(case_dir)
    out: dict = {"read_s": {}, "rows": {}}
    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for name in ("audit", "runtime", "flows"):
            t = time.perf_counter()
            f = kf.enrich(getattr(case, name)(), case)
            out["read_s"][name] = round(time.perf_counter() - t, 3)
            out["rows"][name] = len(f)
            frames.append(f)  # kept, as detect keeps all three
    out["rss_mib"] = bg._maxrss_mib()
    print(json.dumps(out))
    return 0


# --------------------------------------------------------------------------------------------
# Input / case cache: symlink what another workdir already holds
# --------------------------------------------------------------------------------------------
def link_cached(dst: str, rel_candidates: list[str], caches: list[str], with_meta: bool = True) -> bool:
    """If dst is absent and some cache holds one of rel_candidates (and its .meta.json), symlink them."""
    if os.path.lexists(dst):
        return os.path.exists(dst)
    for c in caches:
        for rel in rel_candidates:
            src = os.path.join(c, rel)
            if os.path.exists(src) and (not with_meta or os.path.exists(src + ".meta.json")):
                if os.path.realpath(src) == os.path.realpath(dst):
                    return True
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.symlink(os.path.realpath(src), dst)
                if with_meta:
                    os.symlink(os.path.realpath(src + ".meta.json"), dst + ".meta.json")
                log(f"cache: {dst} -> {os.path.realpath(src)}")
                return True
    return False


def audit_rel(n: int) -> list[str]:
    name = f"audit_{n}_s{AUDIT_SEED}.jsonl"
    return [f"inputs/{name}", name]


def flows_rel(fmt: str, n: int) -> list[str]:
    import gen_flows

    base = os.path.basename(gen_flows.output_path("", fmt, n))
    return [f"inputs/s{FLOW_SEED}/{base}", f"inputs/{fmt}_s{FLOW_SEED}/{base}", f"inputs/vpc_s{FLOW_SEED}/{base}"]


def graph_case(a, sizes: dict, caches: list[str]) -> str:
    """bench_graph.py's case for (graph_flows, graph_audit), reused from a cache or built (once)."""
    wd = os.path.join(a.workdir, "graph")
    name = f"f{sizes['graph_flows']}_a{sizes['graph_audit']}_s{FLOW_SEED}-{AUDIT_SEED}"
    cases = os.path.join(wd, "cases")
    os.makedirs(cases, exist_ok=True)
    for c in caches:
        src = os.path.join(c, "cases", name)
        if (
            not os.path.lexists(os.path.join(cases, name))
            and os.path.exists(os.path.join(src, "manifest.json"))
            and os.path.exists(src + ".ingest.json")
        ):
            os.symlink(os.path.realpath(src), os.path.join(cases, name))
            os.symlink(os.path.realpath(src + ".ingest.json"), os.path.join(cases, name + ".ingest.json"))
            log(f"cache: case {os.path.join(cases, name)} -> {os.path.realpath(src)}")
            break
    link_cached(
        os.path.join(wd, "inputs", f"audit_{sizes['graph_audit']}_s{AUDIT_SEED}.jsonl"),
        audit_rel(sizes["graph_audit"]),
        caches,
    )
    import gen_flows

    link_cached(
        gen_flows.output_path(os.path.join(wd, "inputs", f"vpc_s{FLOW_SEED}"), "vpc", sizes["graph_flows"]),
        flows_rel("vpc", sizes["graph_flows"]),
        caches,
    )
    ga = types.SimpleNamespace(
        flows=sizes["graph_flows"],
        audit=sizes["graph_audit"],
        flow_seed=FLOW_SEED,
        audit_seed=AUDIT_SEED,
        cluster="prod-eks",
        repo=REPO,
    )
    inputs = bg.ensure_inputs(ga, wd)
    case_dir, _ = bg.ensure_case(ga, wd, inputs, env_for_children())
    return os.path.realpath(case_dir)


# --------------------------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------------------------
def run_bench(cmd: list[str], log_path: str, timeout: float | None) -> int:
    """A sub-benchmark as a subprocess, its output teed to log_path and to our stdout."""
    log(" ".join(cmd[1:]))
    with open(log_path, "w") as f:
        p = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env_for_children(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        t0 = time.perf_counter()
        for line in p.stdout:
            f.write(line)
            f.flush()
            sys.stdout.write("    " + line)
            sys.stdout.flush()
            if timeout and time.perf_counter() - t0 > timeout:
                p.kill()
        rc = p.wait()
    if rc:
        log(f"exit status {rc}; log: {log_path}")
    return rc


def load_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def part_ingest(a, sizes, caches, n: int, approaches: list[str], rounds: int) -> dict:
    wd = os.path.join(a.workdir, f"ingest_{n}")
    link_cached(os.path.join(wd, "inputs", f"audit_{n}_s{AUDIT_SEED}.jsonl"), audit_rel(n), caches)
    rc = run_bench(
        [
            sys.executable,
            os.path.join(HERE, "bench_ingest.py"),
            "--n",
            str(n),
            "--rounds",
            str(rounds),
            "--workdir",
            wd,
            "--approaches",
            *approaches,
        ],
        os.path.join(wd + ".log"),
        None,
    )
    res = load_json(os.path.join(wd, "results.json"))
    summ = res.get("summary", {}).get(str(n), {})
    return {"rc": rc, "n": n, "rounds": rounds, "summary": summ, "results": os.path.join(wd, "results.json")}


def part_flows(a, sizes, caches, fmt: str, rounds: int) -> dict:
    n = sizes["flows"]
    wd = os.path.join(a.workdir, f"flows_{fmt}")
    import gen_flows

    link_cached(gen_flows.output_path(os.path.join(wd, "inputs", f"s{FLOW_SEED}"), fmt, n), flows_rel(fmt, n), caches)
    rc = run_bench(
        [
            sys.executable,
            os.path.join(HERE, "bench_flows.py"),
            "--n",
            str(n),
            "--rounds",
            str(rounds),
            "--formats",
            fmt,
            "--workdir",
            wd,
        ],
        wd + ".log",
        None,
    )
    res = load_json(os.path.join(wd, "results.json"))
    summ = res.get("summary", {}).get(fmt, {}).get(str(n), {})
    return {"rc": rc, "n": n, "rounds": rounds, "summary": summ, "results": os.path.join(wd, "results.json")}


def part_graph(a, sizes, caches, rounds: int) -> dict:
    graph_case(a, sizes, caches)  # symlinks / builds the case where bench_graph looks for it
    wd = os.path.join(a.workdir, "graph")
    rc = run_bench(
        [
            sys.executable,
            os.path.join(HERE, "bench_graph.py"),
            "--flows",
            str(sizes["graph_flows"]),
            "--audit",
            str(sizes["graph_audit"]),
            "--rounds",
            str(rounds),
            "--workdir",
            wd,
        ],
        wd + ".log",
        None,
    )
    res = load_json(os.path.join(wd, "results.json"))
    return {
        "rc": rc,
        "rounds": rounds,
        "summary": res.get("summary", {}),
        "rows": res.get("rows"),
        "results": os.path.join(wd, "results.json"),
    }


def part_detect(a, sizes, caches, rounds: int) -> dict:
    case_dir = graph_case(a, sizes, caches)
    wd = os.path.join(a.workdir, "detect")
    os.makedirs(os.path.join(wd, "logs"), exist_ok=True)
    import k8sforensics as kf

    rows = {
        t: kf.Case.open(case_dir).manifest["tables"].get(t, {}).get("rows", 0) for t in ("audit", "flows", "runtime")
    }
    log(f"detect on {case_dir}: rows {rows}, {rounds} round(s)")
    runs = []
    for rnd in range(1, rounds + 1):
        w = bg.warm_case(case_dir)
        for approach in ("detect", "floor"):
            kind = "detect" if approach == "detect" else "detect_floor"
            log_base = os.path.join(wd, "logs", f"{approach}_r{rnd}")
            r = bi.run_measured(
                [sys.executable, os.path.abspath(__file__), "--child", kind, case_dir],
                REPO,
                env_for_children(),
                log_base,
                a.timeout or None,
            )
            r.update(approach=approach, round=rnd, warm_s=round(w, 2))
            if r["ok"]:
                r["child"] = bg._last_json(log_base)
            runs.append(r)
            state = (
                f"wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s, peak RSS {r['maxrss_kib'] / 1024:,.0f} MiB; "
                f"{json.dumps({k: v for k, v in r.get('child', {}).items() if k != 'findings_by_rule'})}"
                if r["ok"]
                else f"FAILED rc={r['rc']}; stderr: {log_base}.stderr"
            )
            log(f"[detect round {rnd}/{rounds}] {approach:<6} {state}")
    summ = bg.summarise(runs, ["detect", "floor"])
    res = {"case": case_dir, "rows": rows, "rounds": rounds, "runs": runs, "summary": summ, "rc": 0}
    with open(os.path.join(wd, "results.json"), "w") as f:
        json.dump(res, f, indent=2, default=str)
    return res


ATTR_RE = re.compile(r"^(?P<name>.+?)\s+median\s+(?P<med>[\d.]+) s \(min (?P<min>[\d.]+), max (?P<max>[\d.]+)\)")


def part_attribution(a, sizes, caches, rounds: int) -> dict:
    wd = os.path.join(a.workdir, "attribution")
    os.makedirs(wd, exist_ok=True)
    cmd = [
        sys.executable,
        os.path.join(HERE, "bench_attribution.py"),
        "--flows",
        str(sizes["attr_flows"]),
        "--pods",
        str(sizes["attr_pods"]),
        "--ips",
        str(sizes["attr_ips"]),
        "--rounds",
        str(rounds),
    ]
    log(" ".join(cmd[1:]))
    r = bi.run_measured(cmd, REPO, env_for_children(), os.path.join(wd, "run"), a.timeout or None)
    with open(os.path.join(wd, "run.stdout")) as f:
        out = f.read()
    sys.stdout.write("".join("    " + ln + "\n" for ln in out.splitlines()))
    parsed = {}
    for ln in out.splitlines():
        m = ATTR_RE.match(ln.strip())
        if m:
            parsed[m["name"].strip()] = {
                "wall_s_median": float(m["med"]),
                "wall_s_min": float(m["min"]),
                "wall_s_max": float(m["max"]),
            }
    agree = re.search(r"agreement with brute force on ([\d,]+) sampled flows: ([\d,]+)/([\d,]+)", out)
    res = {
        "rc": r["rc"],
        "ok": r["ok"],
        "rounds": rounds,
        "flows": sizes["attr_flows"],
        "wall_s_process": r["wall_s"],
        "maxrss_mib_process": round(r["maxrss_kib"] / 1024, 1),
        "summary": parsed,
        "agreement": agree.group(0) if agree else None,
        "stderr_tail": r.get("stderr_tail"),
    }
    with open(os.path.join(wd, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
    return res


# --------------------------------------------------------------------------------------------
# The summary table
# --------------------------------------------------------------------------------------------
def fmt_wall(s: dict | None) -> str:
    if not s or not s.get("wall_s_median"):
        return "-"
    lo, hi = s.get("wall_s_min"), s.get("wall_s_max")
    rng = f" ({lo:.2f}-{hi:.2f})" if lo is not None and hi is not None and lo != hi else ""
    return f"{s['wall_s_median']:.2f}{rng}"


def fmt_rss(s: dict | None) -> str:
    return f"{s['rss_mib_median']:,.0f}" if s and s.get("rss_mib_median") is not None else "-"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def build_rows(parts: dict, sizes: dict) -> list[dict]:
    rows: list[dict] = []

    def row(part, what, mine, base_name, base, ratio, target, status, note=""):
        rows.append(
            {
                "part": part,
                "measurement": what,
                "wall_s": fmt_wall(mine),
                "rss_mib": fmt_rss(mine),
                "baseline": base_name,
                "baseline_wall_s": fmt_wall(base),
                "baseline_rss_mib": fmt_rss(base),
                "ratio": ratio,
                "target": target,
                "status": status,
                "note": note,
                "rounds": (mine or {}).get("ok"),
            }
        )

    def ok(s):
        return bool(s) and bool(s.get("ok")) and s.get("wall_s_median") is not None

    def failed_note(*ss):
        bad = [s for s in ss if s and not s.get("ok")]
        if bad and bad[0].get("first_failure"):
            t = (bad[0]["first_failure"].get("stderr_tail") or "").strip().splitlines()
            return "FAILED: " + (t[-1][:80] if t else f"rc={bad[0]['first_failure'].get('rc')}")
        return ""

    ing_rss = {}
    for key in ("ingest", "ingest-large"):
        p = parts.get(key)
        if not p:
            continue
        n = p["n"]
        label = f"audit ingest {n / 1e6:g}M" if n >= 1e6 else f"audit ingest {n / 1e3:g}k"
        k, d, pn = (p["summary"].get(x) for x in ("k8sforensics", "duckdb_baseline", "pandas_naive"))
        if ok(k) and ok(d):
            r = k.get("ratio_vs_baseline_median")
            row(
                key,
                f"{label}: k8sforensics time",
                k,
                "duckdb read_ndjson->parquet",
                d,
                f"{r:.2f}x",
                f"<= {INGEST_RATIO_TARGET}x",
                verdict(r <= INGEST_RATIO_TARGET),
            )
            ing_rss[n] = k["rss_mib_median"]
            row(
                key,
                f"{label}: k8sforensics peak RSS",
                k,
                "duckdb read_ndjson->parquet",
                d,
                f"{k['rss_mib_median'] / d['rss_mib_median']:.2f}x (RSS)",
                "<= 1024 MiB",
                verdict(k["rss_mib_max"] <= GIB_MIB),
                f"max over rounds {k['rss_mib_max']:,.0f} MiB",
            )
        else:
            row(
                key,
                f"{label}: k8sforensics",
                k,
                "duckdb",
                d,
                "-",
                f"<= {INGEST_RATIO_TARGET}x",
                "n/a",
                failed_note(k, d) or "not measured",
            )
        if pn is not None:
            if ok(pn) and ok(d):
                row(
                    key,
                    f"{label}: naive pandas read_json+to_parquet",
                    pn,
                    "duckdb read_ndjson->parquet",
                    d,
                    f"{pn['ratio_vs_baseline_median']:.2f}x",
                    "(baseline; report)",
                    "report",
                    f"k8sforensics is {pn['wall_s_median'] / k['wall_s_median']:.1f}x faster" if ok(k) else "",
                )
            else:
                row(key, f"{label}: naive pandas", pn, "duckdb", d, "-", "(report)", "n/a", failed_note(pn, d))
    if len(ing_rss) >= 2:
        lo, hi = min(ing_rss), max(ing_rss)
        f = ing_rss[hi] / ing_rss[lo]
        rows.append(
            {
                "part": "ingest",
                "measurement": f"audit ingest peak RSS flat: {hi / 1e6:g}M vs {lo / 1e6:g}M",
                "wall_s": "-",
                "rss_mib": f"{ing_rss[hi]:,.0f}",
                "baseline": f"k8sforensics at {lo / 1e6:g}M",
                "baseline_wall_s": "-",
                "baseline_rss_mib": f"{ing_rss[lo]:,.0f}",
                "ratio": f"{f:.2f}x (RSS)",
                "target": f"<= {FLAT_RSS_FACTOR}x for {hi / lo:g}x input",
                "status": verdict(f <= FLAT_RSS_FACTOR),
                "note": "",
                "rounds": None,
            }
        )

    for key, fmt in (("flows-vpc", "vpc"), ("flows-hubble", "hubble")):
        p = parts.get(key)
        if not p:
            continue
        n = p["n"]
        k, d = p["summary"].get("k8sforensics"), p["summary"].get("duckdb_baseline")
        label = f"{fmt} flows ingest {n / 1e6:g}M"
        if ok(k) and ok(d):
            note = "" if k.get("rows_match") and d.get("rows_match") else f"rows {k.get('rows')} vs {d.get('rows')}"
            row(
                key,
                f"{label}: k8sforensics",
                k,
                f"duckdb {'read_ndjson' if fmt == 'hubble' else 'read_csv'}->parquet",
                d,
                f"{k['ratio_vs_baseline_median']:.2f}x / {k['rss_mib_median'] / d['rss_mib_median']:.2f}x RSS",
                "none stated (report)",
                "report",
                note,
            )
        else:
            row(key, f"{label}: k8sforensics", k, "duckdb", d, "-", "(report)", "n/a", failed_note(k, d))

    p = parts.get("attribution")
    if p:
        s = p["summary"]
        k, d = s.get("k8sforensics attribute_frame"), s.get("duckdb range join")
        if k and d:
            r = k["wall_s_median"] / d["wall_s_median"]
            row(
                "attribution",
                f"attribution pod@IP@time, {p['flows'] / 1e6:g}M flows",
                k,
                "duckdb range join",
                d,
                f"{r:.2f}x",
                "<= 1.0x",
                verdict(r <= 1.0),
                f"same process, peak RSS {p['maxrss_mib_process']:,.0f} MiB for both; {p.get('agreement') or ''}",
            )
        else:
            row(
                "attribution",
                "attribution",
                None,
                "duckdb range join",
                None,
                "-",
                "<= 1.0x",
                "n/a",
                f"FAILED rc={p['rc']}: {(p.get('stderr_tail') or '').strip()[-80:]}",
            )

    p = parts.get("detect")
    if p:
        k, d = p["summary"].get("detect"), p["summary"].get("floor")
        label = f"detect, {p['rows'].get('audit', 0) / 1e6:.2g}M audit + {p['rows'].get('flows', 0) / 1e6:.2g}M flows"
        if ok(k):
            ratio = f"{k['wall_ratio_vs_floor_median']:.2f}x" if k.get("wall_ratio_vs_floor_median") else "-"
            inside = statistics.median(
                r["child"]["detect_s"] for r in p["runs"] if r["approach"] == "detect" and r["ok"]
            )
            nf = [r["child"].get("findings") for r in p["runs"] if r["approach"] == "detect" and r["ok"]][-1]
            row(
                "detect",
                f"{label}: kf.detect wall (process)",
                k,
                "read 3 tables enriched",
                d if ok(d) else None,
                ratio,
                f"< {DETECT_TARGET_S:g} s",
                verdict(k["wall_s_median"] < DETECT_TARGET_S),
                f"detect() alone {inside:.2f} s; {nf} findings",
            )
        else:
            row(
                "detect",
                label,
                k,
                "read 3 tables enriched",
                d,
                "-",
                f"< {DETECT_TARGET_S:g} s",
                "n/a",
                failed_note(k, d),
            )

    p = parts.get("graph")
    if p:
        k, d = p["summary"].get("graph"), p["summary"].get("floor")
        rws = p.get("rows") or {}
        label = (
            f"lateral_movement graph, {rws.get('audit', 0) / 1e6:.2g}M audit + {rws.get('flows', 0) / 1e6:.2g}M flows"
        )
        if ok(k) and ok(d):
            row(
                "graph",
                label,
                k,
                "read its columns enriched",
                d,
                f"{k['wall_ratio_vs_floor_median']:.2f}x / {k['rss_ratio_vs_floor_median']:.2f}x RSS",
                "none stated (report)",
                "report",
            )
        else:
            row("graph", label, k, "read its columns", d, "-", "(report)", "n/a", failed_note(k, d))
    return rows


COLS = [
    ("measurement", "measurement"),
    ("wall_s", "wall s median (min-max)"),
    ("rss_mib", "peak RSS MiB"),
    ("baseline", "baseline (same run)"),
    ("baseline_wall_s", "baseline wall s"),
    ("baseline_rss_mib", "baseline RSS MiB"),
    ("ratio", "ratio"),
    ("target", "target"),
    ("status", "status"),
]


def text_table(rows: list[dict]) -> str:
    widths = [max(len(h), *(len(str(r[k])) for r in rows)) if rows else len(h) for k, h in COLS]
    lines = ["  ".join(h.ljust(w) for (_, h), w in zip(COLS, widths)), "  ".join("-" * w for w in widths)]
    for r in rows:
        lines.append("  ".join(str(r[k]).ljust(w) for (k, _), w in zip(COLS, widths)))
    notes = [f"  - {r['measurement']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + (["notes:"] + notes if notes else []))


def md_table(rows: list[dict]) -> str:
    out = ["| " + " | ".join(h for _, h in COLS) + " | note |", "|" + "---|" * (len(COLS) + 1)]
    for r in rows:
        out.append("| " + " | ".join(str(r[k]).replace("|", "/") for k, _ in COLS) + f" | {r.get('note', '')} |")
    return "\n".join(out)


def save_summary(a, state: dict) -> list[dict]:
    rows = build_rows(state["parts"], state["sizes"])
    state["table"] = rows
    with open(os.path.join(a.workdir, "summary.json.tmp"), "w") as f:
        json.dump(state, f, indent=2, default=str)
    os.replace(os.path.join(a.workdir, "summary.json.tmp"), os.path.join(a.workdir, "summary.json"))
    ran = ", ".join(f"{k} ({v.get('rounds')} round(s), code {v.get('code', '?')})" for k, v in state["parts"].items())
    skipped = ", ".join(p for p in state["planned"] if p not in state["parts"]) or "none"
    with open(os.path.join(a.workdir, "summary.md"), "w") as f:
        f.write(
            f"# k8sforensics benchmark suite ({'quick' if state['quick'] else 'full'})\n\n"
            f"started {state['started']}, updated {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; "
            f"commit {state['machine'].get('repo_commit')}; {state['machine'].get('cpus')} CPUs, "
            f"{state['machine'].get('mem_total_gib')} GiB\n\nran: {ran or 'nothing'}; not run: {skipped}\n\n"
            + md_table(rows)
            + "\n"
        )
    return rows


def print_summary(state: dict, rows: list[dict]) -> None:
    print("\n" + "=" * 30 + f" SUMMARY ({'quick' if state['quick'] else 'full'} sizes) " + "=" * 30)
    print(
        f"started {state['started']}; parts run: "
        + (
            ", ".join(
                f"{k} ({v.get('rounds')} round(s), {v.get('elapsed_s', 0):.0f} s, code {v.get('code', '?')})"
                for k, v in state["parts"].items()
            )
            or "none"
        )
    )
    skipped = [p for p in state["planned"] if p not in state["parts"]]
    if skipped:
        print(f"planned but not run: {', '.join(skipped)}")
    print(text_table(rows))


# --------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (100k audit, 200k flows), 1 round")
    ap.add_argument("--rounds", type=int, default=None, help="rounds for the <=1M parts (default 3; --quick: 1)")
    ap.add_argument(
        "--big-rounds",
        type=int,
        default=None,
        help="rounds for the 4M/5M parts: ingest-large, flows-*, detect, graph (default 1)",
    )
    ap.add_argument("--workdir", default="/tmp/k8sf-suite")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}, ingest, flows")
    ap.add_argument("--cache-dir", action="append", default=[], help="extra workdir whose inputs/cases to reuse")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per measured child (0 = none)")
    ap.add_argument(
        "--no-naive", action="store_true", help="ingest: skip pandas_naive (~100 s and ~12 GB per 1M events)"
    )
    ap.add_argument("--report", action="store_true", help="only reprint WORKDIR/summary.json")
    ap.add_argument(
        "--shapes",
        action="store_true",
        help="run the shape matrix (benchmarks/shapes.py: every audit, flow and runtime shape vs DuckDB) "
        "with --quick / --rounds / --timeout / --report, in WORKDIR/shapes",
    )
    ap.add_argument("--child", nargs=2, metavar=("KIND", "CASEDIR"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child:
        kind, case_dir = a.child
        return {"detect": child_detect, "detect_floor": child_detect_floor}[kind](case_dir)

    a.workdir = os.path.abspath(a.workdir)
    os.makedirs(a.workdir, exist_ok=True)
    if a.shapes:
        return shapes.main(
            ["--workdir", os.path.join(a.workdir, "shapes"), "--timeout", str(a.timeout)]
            + (["--quick"] if a.quick else [])
            + (["--rounds", str(a.rounds)] if a.rounds else [])
            + (["--report"] if a.report else [])
        )
    if a.report:
        state = load_json(os.path.join(a.workdir, "summary.json"))
        print_summary(state, build_rows(state["parts"], state["sizes"]))
        return 0

    wanted = []
    for x in (s.strip() for s in a.only.split(",") if s.strip()):
        if x in GROUPS:
            wanted += GROUPS[x]
        elif x in PARTS:
            wanted.append(x)
        else:
            ap.error(f"unknown part {x!r}")
    planned = [p for p in PARTS if p in wanted]
    sizes = QUICK if a.quick else FULL
    rounds = a.rounds if a.rounds is not None else (1 if a.quick else 3)
    big = a.big_rounds if a.big_rounds is not None else 1
    caches = [c for c in (*a.cache_dir, *DEFAULT_CACHES, os.path.join(a.workdir, "graph")) if os.path.isdir(c)]

    state = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": a.quick,
        "sizes": sizes,
        "planned": planned,
        "rounds": rounds,
        "big_rounds": big,
        "machine": bi.machine_info(),
        "parts": {},
        "argv": sys.argv,
    }
    prev = os.path.join(a.workdir, "summary.json")
    if os.path.exists(prev):
        os.replace(prev, prev + ".prev")
    log(f"workdir {a.workdir}; parts {planned}; sizes {sizes}; rounds {rounds} (<=1M), {big} (4M/5M); caches {caches}")
    runners = {
        "detect": lambda: part_detect(a, sizes, caches, big),
        "graph": lambda: part_graph(a, sizes, caches, big),
        "ingest": lambda: part_ingest(
            a,
            sizes,
            caches,
            sizes["audit"],
            ["k8sforensics", "duckdb_baseline"] + ([] if a.no_naive else ["pandas_naive"]),
            rounds,
        ),
        "ingest-large": lambda: part_ingest(
            a, sizes, caches, sizes["audit_large"], ["k8sforensics", "duckdb_baseline"], big
        ),
        "flows-vpc": lambda: part_flows(a, sizes, caches, "vpc", big),
        "flows-hubble": lambda: part_flows(a, sizes, caches, "hubble", big),
        "attribution": lambda: part_attribution(a, sizes, caches, rounds),
    }
    for p in planned:
        log(f"=== part {p} (load average {os.getloadavg()[0]:.1f}) ===")
        t0 = time.perf_counter()
        code = code_state()
        try:
            res = runners[p]()
        except (Exception, SystemExit) as e:  # a broken part never stops the suite
            log(f"part {p} failed: {type(e).__name__}: {e}")
            state.setdefault("failed", {})[p] = f"{type(e).__name__}: {e}"
            continue
        res["elapsed_s"] = round(time.perf_counter() - t0, 1)
        res["loadavg_after"] = os.getloadavg()
        res["code"] = code if code == code_state() else f"{code} -> {code_state()} (changed during the part)"
        state["parts"][p] = res
        save_summary(a, state)
        log(f"part {p} done in {res['elapsed_s']:.0f} s")
    state["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    rows = save_summary(a, state)
    print_summary(state, rows)
    print(f"\nsummary: {os.path.join(a.workdir, 'summary.json')}, {os.path.join(a.workdir, 'summary.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
