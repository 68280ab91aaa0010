#!/usr/bin/env python3
"""Lateral-movement graph cost against its own floor, on a big case (default: 5M VPC flow records
and 1M audit events), wall time and peak RSS per approach.

What it measures
    graph   ``k8sforensics.Case.open(dir)`` then ``g = k8sforensics.lateral_movement(case)``: reads
            the three tables (only ``AUDIT_COLUMNS`` / ``FLOW_COLUMNS`` / ``RUNTIME_COLUMNS``,
            enriched) plus the request bodies of binding creations, aggregates the observed edges
            (flows in DuckDB), derives the possible edges from the inventory and builds the
            ``networkx.MultiDiGraph``. Prints node/edge counts (observed vs possible, per type).
            The child also splits its time (and the peak RSS reached so far) by phase, by
            wrapping -- not changing -- the case's read methods and ``graph``'s module functions
            (``observed_edges``, ``_flow_edges``, ``_audit_edges``, ``_runtime_edges``,
            ``_aggregate``, ``possible_edges``, ``_pod_attributes``); ``lateral_movement`` looks
            them up at call time, so the timed call is the library's own. Times are exclusive
            (a read done inside ``_flow_edges`` counts as a read, not as ``_flow_edges``);
            "networkx build + rest" is the remainder of the lateral_movement call.
    floor   the baseline: open the case and only read what the graph must read --
            the three tables with only the graph's columns,
            enriched (``kf.enrich``).

How (the house method of bench_flows.py / bench_ingest.py)
    Inputs are generated once and cached in WORKDIR/inputs/ (``gen_flows.py N DIR --formats vpc``,
    ``gen_audit.py M OUT --meta``); they are ingested once, in a child process (wall and peak RSS
    printed), into WORKDIR/cases/f<N>_a<M>_s<seeds>/, which later runs reuse (a case counts as
    complete when its manifest and WORKDIR/cases/<name>.ingest.json exist). Before every round
    the case's Parquet files are read end to end (untimed) so each run sees a warm page cache.
    Each round runs every approach once as a separate subprocess, interleaved (graph floor,
    graph floor, ...). Per run: wall time (perf_counter around spawn..wait4), user+sys CPU and
    peak RSS from ``os.wait4`` (``ru_maxrss``). Reported: median wall (min-max), median CPU,
    median peak RSS, the median of the per-round ratios graph/floor (wall) and the ratio of the
    median peak RSS. Everything also goes to WORKDIR/results.json (rewritten after every run).

Inventory
    Neither generator writes Kubernetes objects (no kubectl dump of pods/nodes/RBAC; there is no
    option for it). The case derives a partial inventory from the audit log (context ``pods``,
    ``pod_ips``, ``containers`` from pod creates and status patches), but gen_audit.py's cluster
    gives pods overlay addresses (10.244.x.x, nodes k8s-worker-NN) while gen_flows.py's cluster
    is in ENI mode (pods and nodes on 10.0.x.x, other names): the two are not the same
    population, so no flow resolves to a pod or node and every flow edge joins ``ip:`` nodes.
    Possible edges come only from the audit-derived pods (no RBAC: no exec/secret/bind
    possibilities). The summary prints how many enriched flow rows got a pod.

How to run (from the repo root)
    python benchmarks/bench_graph.py --flows 200000 --audit 50000 --rounds 1     # quick check
    python benchmarks/bench_graph.py                                              # 5M + 1M, 3 rounds
    python benchmarks/bench_graph.py --child graph CASEDIR                        # one run by hand
Disk: ~0.17 GB per million flow records and ~1.4 GB per million audit events (inputs), plus the
case. Ingesting 5M + 1M takes minutes; it is done once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_ingest as bi  # noqa: E402 (after the path insert) sibling script: its public measuring helpers (as bench_flows.py does)

REPO = os.path.dirname(HERE)
APPROACHES = ("graph", "floor")
BASELINE = "floor"
TABLES = ("audit", "flows", "runtime")


def _maxrss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --------------------------------------------------------------------------------------------
# Children (``bench_graph.py --child APPROACH CASEDIR [INPUTS...]``)
# --------------------------------------------------------------------------------------------
def child_ingest(case_dir: str, inputs: list[str], cluster: str) -> int:
    import k8sforensics as kf

    t0 = time.perf_counter()
    case = kf.Case.create(case_dir, cluster=cluster)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = kf.ingest(case, inputs, progress=False)
    secs = time.perf_counter() - t0
    m = case.manifest
    print(str(report), file=sys.stderr)
    print(
        json.dumps({"ingest_s": round(secs, 2), "rows": {t: m["tables"].get(t, {}).get("rows") for t in m["tables"]}})
    )
    return 0


class _Phases:
    """Exclusive wall time per wrapped function (nested calls are subtracted from their caller),
    and the process's peak RSS when each phase last ended."""

    def __init__(self) -> None:
        self.excl: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.rss_after: dict[str, float] = {}
        self._stack: list[list[float]] = []  # per active call: [child time]

    def wrap(self, name: str, fn):
        def wrapper(*args, **kwargs):
            self._stack.append([0.0])
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                total = time.perf_counter() - t0
                children = self._stack.pop()[0]
                self.excl[name] = self.excl.get(name, 0.0) + total - children
                self.calls[name] = self.calls.get(name, 0) + 1
                self.rss_after[name] = _maxrss_mib()
                if self._stack:
                    self._stack[-1][0] += total

        return wrapper


def child_graph(case_dir: str, split: bool) -> int:
    import k8sforensics as kf
    from k8sforensics.analysis import graph as gmod

    t0 = time.perf_counter()
    case = kf.Case.open(case_dir)
    t_open = time.perf_counter() - t0
    ph = _Phases()
    if split:
        for meth in ("audit", "flows", "runtime", "sql", "context"):
            setattr(case, meth, ph.wrap(f"read {meth}", getattr(case, meth)))
        for fn in (
            "observed_edges",
            "_flow_edges",
            "_audit_edges",
            "_runtime_edges",
            "_aggregate",
            "possible_edges",
            "_pod_attributes",
        ):
            setattr(gmod, fn, ph.wrap(fn, getattr(gmod, fn)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t1 = time.perf_counter()
        g = kf.lateral_movement(case)
        t_graph = time.perf_counter() - t1
    rss_graph = _maxrss_mib()
    # counting (untimed by the split; part of the process wall, but cheap next to the build)
    t2 = time.perf_counter()
    observed = possible = 0
    by_type: dict[str, int] = {}
    for _, _, d in g.edges(data=True):
        key = ("" if d.get("observed") else "?") + str(d.get("type"))
        by_type[key] = by_type.get(key, 0) + 1
        if d.get("observed"):
            observed += 1
        else:
            possible += 1
    kinds: dict[str, int] = {}
    for _, d in g.nodes(data=True):
        kinds[d.get("kind", "?")] = kinds.get(d.get("kind", "?"), 0) + 1
    out = {
        "nodes": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "observed_edges": observed,
        "possible_edges": possible,
        "edges_by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
        "nodes_by_kind": kinds,
        "open_s": round(t_open, 3),
        "lateral_movement_s": round(t_graph, 3),
        "count_s": round(time.perf_counter() - t2, 3),
        "rss_mib_after_graph": rss_graph,
    }
    if split:
        phases = {k: round(v, 3) for k, v in sorted(ph.excl.items(), key=lambda kv: -kv[1])}
        phases["networkx build + rest"] = round(t_graph - sum(ph.excl.values()), 3)
        out.update(phases_s=phases, phase_calls=ph.calls, rss_mib_after_phase=ph.rss_after)
    print(json.dumps(out))
    return 0


def child_floor(case_dir: str) -> int:
    import k8sforensics as kf
    from k8sforensics.analysis.graph import AUDIT_COLUMNS, FLOW_COLUMNS, RUNTIME_COLUMNS

    case = kf.Case.open(case_dir)
    out: dict = {"read_s": {}, "rows": {}, "rss_mib_after": {}}
    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for name, read, cols in (
            ("audit", case.audit, AUDIT_COLUMNS),
            ("flows", case.flows, FLOW_COLUMNS),
            ("runtime", case.runtime, RUNTIME_COLUMNS),
        ):
            t = time.perf_counter()
            f = kf.enrich(read(columns=cols), case)
            out["read_s"][name] = round(time.perf_counter() - t, 3)
            out["rows"][name] = len(f)
            out["rss_mib_after"][name] = _maxrss_mib()
            if name == "flows":
                for side in ("src", "dst"):
                    if f"{side}_pod" in f.columns:
                        out[f"flows_with_{side}_pod"] = int(f[f"{side}_pod"].notna().sum())
                    if f"{side}_kind" in f.columns:
                        out[f"flows_{side}_kind"] = {
                            str(k): int(v) for k, v in f[f"{side}_kind"].value_counts(dropna=False).items()
                        }
            frames.append(f)  # kept, as the graph keeps all three (Evidence caches them)
    print(json.dumps(out))
    return 0


# --------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------
def ensure_inputs(a, workdir: str) -> dict:
    import subprocess

    import gen_flows

    d = os.path.join(workdir, "inputs")
    os.makedirs(d, exist_ok=True)
    flows = gen_flows.output_path(os.path.join(d, f"vpc_s{a.flow_seed}"), "vpc", a.flows)
    if not (os.path.exists(flows) and os.path.exists(flows + ".meta.json")):
        print(f"[gen] {a.flows:,} VPC flow records -> {flows}", flush=True)
        subprocess.run(
            [
                sys.executable,
                os.path.join(HERE, "gen_flows.py"),
                str(a.flows),
                os.path.dirname(flows),
                "--seed",
                str(a.flow_seed),
                "--formats",
                "vpc",
            ],
            check=True,
        )
    audit = os.path.join(d, f"audit_{a.audit}_s{a.audit_seed}.jsonl")
    if not (os.path.exists(audit) and os.path.exists(audit + ".meta.json")):
        print(f"[gen] {a.audit:,} audit events -> {audit}", flush=True)
        subprocess.run(
            [
                sys.executable,
                os.path.join(HERE, "gen_audit.py"),
                str(a.audit),
                audit,
                "--seed",
                str(a.audit_seed),
                "--meta",
            ],
            check=True,
        )
    metas = {}
    for name, path in (("flows", flows), ("audit", audit)):
        with open(path + ".meta.json") as f:
            metas[name] = json.load(f)
        if metas[name].get("bytes") != os.path.getsize(path):
            raise SystemExit(f"{path} does not match its meta file; delete both and rerun")
        metas[name]["path"] = path
    return metas


def ensure_case(a, workdir: str, inputs: dict, env: dict) -> tuple[str, dict]:
    name = f"f{a.flows}_a{a.audit}_s{a.flow_seed}-{a.audit_seed}"
    cases = os.path.join(workdir, "cases")
    case_dir = os.path.join(cases, name)
    marker = os.path.join(cases, name + ".ingest.json")
    if os.path.exists(os.path.join(case_dir, "manifest.json")) and os.path.exists(marker):
        with open(marker) as f:
            info = json.load(f)
        print(
            f"[case] reusing {case_dir} (ingested earlier in {info['wall_s']:.1f} s, peak RSS "
            f"{info['maxrss_kib'] / 1024:,.0f} MiB)",
            flush=True,
        )
        info["reused"] = True
        return case_dir, info
    shutil.rmtree(case_dir, ignore_errors=True)  # absent, or an interrupted ingest
    os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
    print(f"[ingest] {inputs['flows']['path']} + {inputs['audit']['path']} -> {case_dir} ...", flush=True)
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        "ingest",
        case_dir,
        inputs["flows"]["path"],
        inputs["audit"]["path"],
        "--cluster",
        a.cluster,
    ]
    r = bi.run_measured(cmd, a.repo, env, os.path.join(workdir, "logs", f"ingest_{name}"), None)
    if not r["ok"]:
        print(r.get("stderr_tail", ""), file=sys.stderr)
        raise SystemExit(f"ingest failed (rc={r['rc']}); logs: {r['log']}.stderr")
    r.update(_last_json(r["log"]), reused=False)
    with open(marker, "w") as f:
        json.dump(r, f, indent=2)
    print(
        f"[ingest] done in {r['wall_s']:.1f} s wall ({r['ingest_s']:.1f} s inside), CPU {r['cpu_s']:.1f} s, "
        f"peak RSS {r['maxrss_kib'] / 1024:,.0f} MiB",
        flush=True,
    )
    return case_dir, r


def _last_json(log_base: str) -> dict:
    try:
        with open(log_base + ".stdout") as f:
            lines = [ln for ln in f.read().splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else {}
    except (OSError, json.JSONDecodeError):
        return {}


def warm_case(case_dir: str) -> float:
    t0 = time.perf_counter()
    for root, _, names in os.walk(case_dir):
        for n in names:
            if n.endswith(".parquet"):
                bi.warm(os.path.join(root, n))
    return time.perf_counter() - t0


def summarise(runs: list[dict], approaches: list[str]) -> dict:
    med = statistics.median
    base = {r["round"]: r for r in runs if r["approach"] == BASELINE and r["ok"]}
    summ = {}
    for ap in approaches:
        rs = [r for r in runs if r["approach"] == ap]
        ok = [r for r in rs if r["ok"]]
        s: dict = {"runs": len(rs), "ok": len(ok)}
        if ok:
            walls = [r["wall_s"] for r in ok]
            ratios = [r["wall_s"] / base[r["round"]]["wall_s"] for r in ok if r["round"] in base]
            rss_ratios = [r["maxrss_kib"] / base[r["round"]]["maxrss_kib"] for r in ok if r["round"] in base]
            s.update(
                wall_s_median=round(med(walls), 3),
                wall_s_min=min(walls),
                wall_s_max=max(walls),
                cpu_s_median=round(med([r["cpu_s"] for r in ok]), 3),
                rss_mib_median=round(med([r["maxrss_kib"] for r in ok]) / 1024, 1),
                rss_mib_min=round(min(r["maxrss_kib"] for r in ok) / 1024, 1),
                rss_mib_max=round(max(r["maxrss_kib"] for r in ok) / 1024, 1),
                wall_ratio_vs_floor_median=round(med(ratios), 3) if ratios else None,
                rss_ratio_vs_floor_median=round(med(rss_ratios), 3) if rss_ratios else None,
            )
        fails = [r for r in rs if not r["ok"]]
        if fails:
            s["first_failure"] = {k: fails[0].get(k) for k in ("round", "rc", "timed_out", "stderr_tail", "log")}
        summ[ap] = s
    return summ


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Lateral-movement graph vs reading its columns (see module doc).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--flows", type=int, default=5_000_000, help="VPC flow records (default 5000000)")
    ap.add_argument("--audit", type=int, default=1_000_000, help="audit events (default 1000000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/k8sf-bench-graph", help="inputs, case, logs, results.json")
    ap.add_argument("--approaches", nargs="+", choices=APPROACHES, default=list(APPROACHES))
    ap.add_argument("--flow-seed", type=int, default=7, help="gen_flows.py seed")
    ap.add_argument("--audit-seed", type=int, default=42, help="gen_audit.py seed")
    ap.add_argument("--cluster", default="prod-eks", help="the case's cluster name (the generators simulate prod-eks)")
    ap.add_argument("--no-split", action="store_true", help="graph child: do not wrap functions to split its time")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run before it is killed (0 = none)")
    ap.add_argument("--repo", default=REPO, help="cwd and PYTHONPATH for the children (default: this repo)")
    ap.add_argument("--child", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child:
        kind, rest = a.child[0], a.child[1:]
        if kind == "ingest":
            return child_ingest(rest[0], rest[1:], a.cluster)
        if kind == "graph":
            return child_graph(rest[0], not a.no_split)
        if kind == "floor":
            return child_floor(rest[0])
        raise SystemExit(f"unknown child {kind}")

    workdir = os.path.abspath(a.workdir)
    os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
    results_path = os.path.join(workdir, "results.json")
    env = dict(os.environ)
    env["PYTHONPATH"] = a.repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    results: dict = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": bi.machine_info(),
        "config": {k: v for k, v in vars(a).items() if k != "child"},
        "runs": [],
    }

    def save():
        tmp = results_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2, default=str)
        os.replace(tmp, results_path)

    inputs = ensure_inputs(a, workdir)
    results["inputs"] = inputs
    print(
        f"[inputs] flows {inputs['flows']['path']} ({inputs['flows']['bytes'] / 1e6:,.0f} MB, "
        f"{inputs['flows']['expected_rows']:,} expected rows); audit {inputs['audit']['path']} "
        f"({inputs['audit']['bytes'] / 1e6:,.0f} MB)",
        flush=True,
    )
    case_dir, ingest = ensure_case(a, workdir, inputs, env)
    results["ingest"] = ingest
    import k8sforensics as kf

    manifest = kf.Case.open(case_dir).manifest
    rows = {t: manifest["tables"].get(t, {}).get("rows", 0) for t in (*TABLES, "objects", "quarantine")}
    results["rows"] = rows
    ctx = sorted(manifest.get("context", {}).get("tables", {}))
    results["context_tables"] = ctx
    case_mb = sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(case_dir) for n in ns) / 1e6
    print(
        f"[case] {case_dir}: {case_mb:,.0f} MB; rows "
        + ", ".join(f"{t} {n:,}" for t, n in rows.items())
        + f"; context tables: {', '.join(ctx) or 'none'}",
        flush=True,
    )
    save()

    runs = []
    for rnd in range(1, a.rounds + 1):
        w = warm_case(case_dir)
        for approach in a.approaches:
            cmd = [sys.executable, os.path.abspath(__file__), "--child", approach, case_dir] + (
                ["--no-split"] if a.no_split else []
            )
            log_base = os.path.join(workdir, "logs", f"{approach}_r{rnd}")
            r = bi.run_measured(cmd, a.repo, env, log_base, a.timeout or None)
            r.update(approach=approach, round=rnd, warm_s=round(w, 2))
            if r["ok"]:
                r["child"] = _last_json(log_base)
            runs.append(r)
            results["runs"].append(r)
            state = (
                f"wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s, peak RSS {r['maxrss_kib'] / 1024:,.0f} MiB"
                if r["ok"]
                else f"FAILED rc={r['rc']}{' (timeout)' if r['timed_out'] else ''}; stderr: {log_base}.stderr"
            )
            if r["ok"] and approach == "graph":
                c = r["child"]
                state += (
                    f"; lateral_movement {c['lateral_movement_s']:.2f} s; {c['nodes']:,} nodes, {c['edges']:,} edges "
                    f"({c['observed_edges']:,} observed, {c['possible_edges']:,} possible)"
                )
            elif r["ok"] and approach == "floor":
                state += "; reads " + ", ".join(f"{t} {s:.2f} s" for t, s in r["child"]["read_s"].items())
            print(f"[round {rnd}/{a.rounds}] {approach:<6} {state}", flush=True)
            save()

    summ = summarise(runs, list(a.approaches))
    results["summary"] = summ
    print(f"\n=== lateral_movement: {a.flows:,} VPC flow records + {a.audit:,} audit events, {a.rounds} round(s) ===")
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
    ing = f"{ingest['wall_s']:.1f} s wall, peak RSS {ingest['maxrss_kib'] / 1024:,.0f} MiB"
    print(f"ingest (once{', cached from an earlier run' if ingest.get('reused') else ''}): {ing}")
    hdr = f"{'approach':<8} {'ok':>4} {'wall s median (min-max)':>26} {'CPU s':>8} {'peak RSS MiB median (min-max)':>31} {'wall/floor':>11} {'RSS/floor':>10}"
    print(hdr)
    print("-" * len(hdr))
    for name, s in summ.items():
        if not s["ok"]:
            f = s["first_failure"]
            tail = (f.get("stderr_tail") or "").strip().splitlines()
            why = "timeout" if f.get("timed_out") else (tail[-1] if tail else "no stderr")
            print(f"{name:<8} {s['ok']}/{s['runs']}  FAILED (rc={f['rc']}): {why[:120]}")
            continue
        wall = f"{s['wall_s_median']:.2f} ({s['wall_s_min']:.2f}-{s['wall_s_max']:.2f})"
        rss = f"{s['rss_mib_median']:,.0f} ({s['rss_mib_min']:,.0f}-{s['rss_mib_max']:,.0f})"
        wr = f"{s['wall_ratio_vs_floor_median']:.2f}x" if s.get("wall_ratio_vs_floor_median") else "-"
        rr = f"{s['rss_ratio_vs_floor_median']:.2f}x" if s.get("rss_ratio_vs_floor_median") else "-"
        print(f"{name:<8} {s['ok']}/{s['runs']:<2} {wall:>26} {s['cpu_s_median']:>8.2f} {rss:>31} {wr:>11} {rr:>10}")

    g_ok = [r for r in runs if r["approach"] == "graph" and r["ok"]]
    f_ok = [r for r in runs if r["approach"] == "floor" and r["ok"]]
    if f_ok:
        c = f_ok[-1]["child"]
        print(
            "floor reads (median s): "
            + ", ".join(f"{t} {statistics.median(r['child']['read_s'][t] for r in f_ok):.2f}" for t in TABLES)
            + "; enriched rows: "
            + ", ".join(f"{t} {n:,}" for t, n in c["rows"].items())
        )
        with_pod = {k: c[k] for k in ("flows_with_src_pod", "flows_with_dst_pod") if k in c}
        kinds = {k: c[k] for k in ("flows_src_kind", "flows_dst_kind") if k in c}
        print(f"flows attributed to pods: {with_pod or 'no pod columns'}; endpoint kinds: {kinds or 'none'}")
        results["flow_attribution"] = {**with_pod, **kinds}
    if g_ok:
        c = g_ok[-1]["child"]
        print(
            f"graph: {c['nodes']:,} nodes {c['nodes_by_kind']}; {c['edges']:,} edges = {c['observed_edges']:,} observed "
            f"+ {c['possible_edges']:,} possible (a '?' prefix marks possible types): {c['edges_by_type']}"
        )
        if "phases_s" in c:
            keys = list(c["phases_s"])
            print("graph time split, exclusive s (median over rounds; peak RSS MiB when the phase ended):")
            for k in keys:
                m = statistics.median(r["child"]["phases_s"].get(k, 0.0) for r in g_ok)
                rss = c["rss_mib_after_phase"].get(k)
                print(f"  {k:<24} {m:8.2f}" + (f"   rss {rss:,.0f}" if rss else ""))
            print(f"  {'(open case)':<24} {statistics.median(r['child']['open_s'] for r in g_ok):8.2f}")
            print(
                f"  {'= lateral_movement':<24} {statistics.median(r['child']['lateral_movement_s'] for r in g_ok):8.2f}"
            )
    if not rows.get("objects"):
        attributed = results.get("flow_attribution", {})
        pods = sum(attributed.get(k, 0) for k in ("flows_with_src_pod", "flows_with_dst_pod"))
        print(
            f"NOTE: no Kubernetes objects ingested (the generators write none); context tables derived from the "
            f"evidence: {', '.join(ctx) or 'none'}; flow endpoints attributed to pods: {pods:,}"
            + (" -> flow edges join ip: nodes only" if not pods else "")
        )
    for name, s in summ.items():
        f = s.get("first_failure")
        if f:
            print(f"\n--- {name}: first failure (round {f['round']}, rc={f['rc']}), stderr tail ---")
            print((f.get("stderr_tail") or "").rstrip()[-1500:])
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save()
    print(f"\nresults: {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
