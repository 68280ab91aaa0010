#!/usr/bin/env python3
"""Detection cost against its own floor: the sample breach generated at a larger scale
(``write_sample_evidence(scale=S)``: more noise, same attack), ingested once; then, interleaved
per round, (a) reading the three tables enriched — what every rule needs before it can run —
and (b) ``kf.detect`` (which includes that read). Medians, the ratio, the slowest rules, and a
check that the attack is still found at that scale.

    python benchmarks/bench_detect.py [--scale 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import k8sforensics as kf
from k8sforensics.detect import BUILTIN_RULES
from k8sforensics.samples import write_sample_evidence


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=200.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        truth = json.loads(write_sample_evidence(root / "evidence", seed=0, scale=args.scale).read_text())
        case = kf.Case.create(root / "case", cluster="prod-eu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            kf.ingest(case, root / "evidence", progress=False)
        rows = {t: case.manifest["tables"][t]["rows"] for t in ("audit", "runtime", "flows")}
        print(f"scale {args.scale}: {rows} (generated and ingested in {time.perf_counter() - t0:.1f} s)")
        load, detect = [], []
        findings = None
        for _ in range(args.rounds):
            t = time.perf_counter()
            kf.enrich(case.audit(), case), kf.enrich(case.runtime(), case), kf.enrich(case.flows(), case)
            load.append(time.perf_counter() - t)
            t = time.perf_counter()
            findings = kf.detect(case, save=False)
            detect.append(time.perf_counter() - t)
        ml, md = statistics.median(load), statistics.median(detect)
        print(f"read enriched tables: median {ml:.2f} s  {[round(x, 2) for x in load]}")
        print(
            f"kf.detect ({len(BUILTIN_RULES)} rules): median {md:.2f} s  {[round(x, 2) for x in detect]}  → {md / ml:.2f}× the read"
        )
        kf.detect(case)  # once more, saved, for the per-rule times in the manifest
        run = case.manifest["detections"][-1]
        print(
            f"saved run: {run['seconds']:.2f} s, of which reading the enriched tables {run['read_seconds']:.2f} s "
            f"and the rules themselves {sum(r['seconds'] for r in run['per_rule']):.2f} s"
        )
        per_rule = sorted(run["per_rule"], key=lambda r: -r["seconds"])[:6]
        print("slowest rules: " + ", ".join(f"{r['rule_id']} {r['seconds']:.2f} s" for r in per_rule))
        assert findings is not None
        steps = {s["id"]: s for s in truth["steps"]}
        found = [
            sid
            for sid, s in steps.items()
            if (
                (findings["technique_id"] == s["technique_id"])
                if s["technique_id"]
                else (findings["attack_id"] == s["attack_id"])
            )
            .loc[(findings["time"] >= s["start"]) & (findings["time"] <= s["end"])]
            .any()
        ]
        print(f"{len(findings)} findings; attack steps found: {len(found)}/{len(steps)}")


if __name__ == "__main__":
    main()
