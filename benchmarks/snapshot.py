"""A canonical record of what the toolkit concludes on the demo and on scenarios of the family:
findings, graph edges, kill-chain steps, patient-zero ranking, remediation rows and the files
written (NetworkPolicies, RBAC, …), case tables' row counts. Two snapshots compared show whether a
change of structure changed behaviour:

    python benchmarks/snapshot.py --out before.json --scenarios 6
    python benchmarks/snapshot.py --out after.json --scenarios 6 --compare before.json

The timings and the case's own ids (ingest ids, paths) are left out: they differ run to run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

VOLATILE = re.compile(r"/tmp/[^\s\"',;)]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _text(v: Any) -> str:
    if isinstance(v, (list, tuple)) or hasattr(v, "tolist"):
        v = list(v.tolist() if hasattr(v, "tolist") else v)
    return VOLATILE.sub("<v>", str(v))


def _rows(frame: pd.DataFrame, *, drop: tuple[str, ...] = ()) -> list[str]:
    cols = [c for c in frame.columns if c not in drop]
    return sorted("|".join(_text(r[c]) for c in cols) for r in frame.to_dict("records"))


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def snapshot_case(evidence: Path, root: Path, *, cluster: str) -> dict[str, Any]:
    import k8sforensics as kf

    case = kf.Case.create(root / "case", cluster=cluster)
    files = [str(p) for p in sorted(evidence.iterdir()) if p.name != "truth.json"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kf.ingest(case, files, progress=False)
        findings = kf.detect(case)
        timeline = kf.kill_chain(case)
        graph = kf.lateral_movement(case)
        ranked = kf.patient_zero(case)
        written = kf.write_remediation(case, findings=findings, graph=graph)
    out: dict[str, Any] = {}
    out["tables"] = {
        t: int(case.sql(f"select count(*) n from {t}")["n"].iloc[0]) for t in ("audit", "runtime", "flows")
    }
    f = findings.drop(columns=[c for c in ("finding_id",) if c in findings.columns])
    out["findings"] = _rows(f)
    out["edges"] = sorted(
        f"{a}|{b}|{k}|{_text(d.get('kind'))}|{_text(d.get('basis'))}|{_text(d.get('time'))}"
        for a, b, k, d in graph.edges(keys=True, data=True)
    )
    out["nodes"] = sorted(f"{n}|{_text(d.get('kind'))}" for n, d in graph.nodes(data=True))
    out["timeline"] = _rows(timeline) if isinstance(timeline, pd.DataFrame) else _text(timeline)
    out["patient_zero"] = _rows(ranked) if isinstance(ranked, pd.DataFrame) else _text(ranked)
    files_out = {}
    for name, path in sorted(written.items()):
        p = Path(path)
        if p.is_file():
            files_out[name] = VOLATILE.sub("<v>", p.read_text(errors="replace")).splitlines()
    out["written"] = files_out
    return out


def _comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Without the checklist's action ids: a file action's id hashes the file's path, which
    differs run to run."""
    for case in snapshot.values():
        written = case.get("written", {})
        lines = written.get("checklist.csv")
        if lines and lines[0].startswith("action_id,"):
            written["checklist.csv"] = [line.split(",", 1)[-1] for line in lines]
    return snapshot


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--scenarios", type=int, default=6, help="scenarios of the family after the demo")
    ap.add_argument("--scale", type=float, default=0.3)
    ap.add_argument("--compare", help="an earlier snapshot: print what differs and exit 1 if anything does")
    args = ap.parse_args(argv)
    from k8sforensics.samples import write_sample_evidence
    from k8sforensics.samples.scenario import family, write_scenario

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ev = Path(tmp) / "demo" / "evidence"
        write_sample_evidence(ev, seed=0, scale=args.scale)
        result["demo"] = snapshot_case(ev, Path(tmp) / "demo", cluster="prod-eu")
        for i, (shape, platform, seed) in enumerate(family(args.scenarios, start=0)):
            ev = Path(tmp) / f"s{i}" / "evidence"
            truth = json.loads(
                write_scenario(ev, shape=shape, platform=platform, seed=seed, scale=args.scale).read_text()
            )
            result[f"{i}:{shape}:{platform}:{seed}"] = snapshot_case(
                ev, Path(tmp) / f"s{i}", cluster=truth.get("cluster", "prod")
            )
            print(f"{i} {shape} {platform}", file=sys.stderr)
    Path(args.out).write_text(json.dumps(result, indent=1, sort_keys=True))
    if not args.compare:
        return 0
    before = _comparable(json.loads(Path(args.compare).read_text()))
    result = _comparable(result)
    differs = 0
    for scenario in sorted(set(before) | set(result)):
        a, b = before.get(scenario, {}), result.get(scenario, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                differs += 1
                x, y = a.get(key), b.get(key)
                if isinstance(x, dict) and isinstance(y, dict):
                    detail = [
                        f"{k}: {_digest(list(map(str, x.get(k) or [])))} → {_digest(list(map(str, y.get(k) or [])))}"
                        for k in sorted(set(x) | set(y))
                        if x.get(k) != y.get(k)
                    ]
                elif isinstance(x, list) and isinstance(y, list):
                    gone, new = sorted(set(map(str, x)) - set(map(str, y))), sorted(set(map(str, y)) - set(map(str, x)))
                    detail = [f"- {g[:300]}" for g in gone[:5]] + [f"+ {n[:300]}" for n in new[:5]]
                else:
                    detail = [f"{str(x)[:200]} → {str(y)[:200]}"]
                print(f"{scenario} {key} differs:\n  " + "\n  ".join(detail))
    print("same behaviour" if not differs else f"{differs} differences")
    return 1 if differs else 0


if __name__ == "__main__":
    raise SystemExit(main())
