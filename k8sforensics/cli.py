"""The command line: a thin layer over the Python API.

k8sforensics ingest PATH... --case DIR [--cluster NAME] [--on-bad-lines warn|error|skip] [--vpc-fields "NAME ..."] [--dask ADDRESS|local]
k8sforensics verify CASE
k8sforensics detect CASE [--sigma DIR]
k8sforensics remediate CASE [--out DIR] [--verify SNAPSHOT [--preserved DIR]]
k8sforensics report CASE [--out DIR] [--show-code]
k8sforensics notebooks DIR [--force]
k8sforensics export CASE --format timesketch|ocsf|csv [--out DIR] [--all-events]
k8sforensics formats
k8sforensics demo [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import K8sForensicsError

if TYPE_CHECKING:
    from .case import Case


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="k8sforensics", description="Kubernetes breach investigation toolkit.")
    p.add_argument("--version", action="version", version=_version_text())
    sub = p.add_subparsers(dest="command", required=True)

    ing = sub.add_parser("ingest", help="read evidence files into a case")
    ing.add_argument("paths", nargs="+", help="files, folders or globs (.gz/.zst read transparently)")
    ing.add_argument("--case", required=True, help="case folder (created if missing)")
    ing.add_argument("--cluster", help="cluster name for evidence that does not carry one")
    ing.add_argument(
        "--on-bad-lines",
        choices=["warn", "error", "skip"],
        default="warn",
        help="bad records: quarantine and warn (default), stop with file:line, or quarantine quietly",
    )
    ing.add_argument("--no-progress", action="store_true", help="no progress bar")
    ing.add_argument(
        "--time-range",
        nargs=2,
        metavar=("START", "END"),
        help="accepted event times (default 1970-01-01 2100-01-01); a record outside is quarantined with its time",
    )
    ing.add_argument(
        "--keep-secrets",
        action="store_true",
        help="store credentials unredacted (a sealed, access-controlled case only; recorded in the manifest, "
        "and `report` refuses the case unless given --include-secrets)",
    )
    ing.add_argument(
        "--vpc-fields",
        metavar='"NAME ..."',
        type=_vpc_fields,
        help="field order of headerless VPC flow logs, space-separated as in the flow log's format "
        '(e.g. "version account-id interface-id srcaddr dstaddr ...")',
    )
    ing.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="parse the files on a Dask cluster: its scheduler address (tcp://host:8786), "
        "or 'local' for a LocalCluster on this machine; the workers must see the case folder at the same path",
    )

    col = sub.add_parser("collect", help="snapshot the inventory of a live cluster, read-only")
    col.add_argument("--out", required=True, help="folder for the kubectl-style JSON files")
    col.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    col.add_argument("--context", help="kubeconfig context (default: the current one)")
    col.add_argument("--timeout", type=float, default=30.0, help="seconds per request")

    ver = sub.add_parser(
        "verify",
        help="check a case before handing it over: every file's sha256, size and rows against the "
        "manifest, orphaned files, unfinished writes (exit 1 when anything is wrong)",
    )
    ver.add_argument("case", help="case folder")

    det = sub.add_parser("detect", help="run the detection rules over a case (writes findings/<run>.parquet)")
    det.add_argument("case", help="case folder")
    det.add_argument("--sigma", help="folder of Sigma rules (kubernetes/audit, linux/process_creation) to run as well")

    rep = sub.add_parser("report", help="run the notebooks on a case and write self-contained HTML")
    rep.add_argument("case", help="case folder")
    rep.add_argument("--out", help="folder for the HTML (default: CASE/report)")
    rep.add_argument("--show-code", action="store_true", help="keep the notebooks' code in the HTML")
    rep.add_argument(
        "--include-secrets",
        action="store_true",
        help="make the report even though the case was ingested with --keep-secrets (the pages may carry credentials)",
    )

    exp = sub.add_parser("export", help="write the case in a format another tool reads: Timesketch, OCSF, CSV")
    exp.add_argument("case", help="case folder")
    exp.add_argument(
        "--format",
        required=True,
        choices=["timesketch", "ocsf", "csv"],
        help="timesketch: timeline.jsonl for Timesketch's importer; ocsf: ocsf.jsonl (OCSF 1.5 events, checked "
        "against the schema); csv: findings.csv and timeline.csv",
    )
    exp.add_argument("--out", help="folder for the files (default: CASE/export)")
    exp.add_argument(
        "--all-events",
        action="store_true",
        help="every audit, runtime and flow event, not only the kill-chain timeline (timesketch, ocsf; streamed, "
        "but large for a large case)",
    )
    exp.add_argument("--no-validate", action="store_true", help="skip the OCSF schema check (about 1-2 ms an event)")
    exp.add_argument(
        "--include-secrets",
        action="store_true",
        help="export even though the case was ingested with --keep-secrets (the files may carry credentials)",
    )

    nbs = sub.add_parser("notebooks", help="copy the shipped notebooks into a folder, to open in JupyterLab and edit")
    nbs.add_argument("out", help="folder to copy them into (created if missing)")
    nbs.add_argument("--force", action="store_true", help="replace notebooks of the same name already there")

    rem = sub.add_parser("remediate", help="the remediation checklist, and the Kubernetes objects that carry it out")
    rem.add_argument("case", help="case folder")
    rem.add_argument("--out", help="folder for the YAML and checklist.csv (default: CASE/remediation)")
    rem.add_argument(
        "--verify",
        metavar="SNAPSHOT",
        help="check the checklist against a fresh inventory (the folder `k8sforensics collect --out` wrote, or kubectl "
        "-o json/yaml dumps): writes verification.csv and verification.md, exit 1 when an action is not done",
    )
    rem.add_argument(
        "--preserved",
        metavar="DIR",
        default=".",
        help="with --verify: the folder the preservation commands ran in (default: the current directory)",
    )

    sub.add_parser("formats", help="list the input formats this version reads")

    demo = sub.add_parser("demo", help="ingest the bundled sample evidence and print the case summary")
    demo.add_argument("--out", default="demo-case", help="where to write the case (default: ./demo-case, replaced)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)  # the summary reports quarantine; no per-file warnings on the CLI
    _show_case_notices()
    try:
        if args.command == "ingest":
            return _ingest(args)
        if args.command == "collect":
            from .context.collect import collect_inventory

            record = collect_inventory(args.out, kubeconfig=args.kubeconfig, context=args.context, timeout=args.timeout)
            counts = ", ".join(f"{k} {v}" for k, v in record["counts"].items())
            print(
                f"collected from {record['server']} ({record['server_version'].get('gitVersion', '?')}) into {args.out}: {counts}"
            )
            return 0
        if args.command == "verify":
            from .case import Case

            verification = Case.open(args.case).verify()
            print(verification)
            return 0 if verification.ok else 1
        if args.command == "detect":
            return _detect(args)
        if args.command == "report":
            from .case import Case
            from .views.report import run_report

            Case.open(args.case)  # a damaged case is one clear error, before any notebook runs
            for page in run_report(
                args.case,
                out=args.out,
                show_code=args.show_code,
                include_secrets=args.include_secrets,
                progress=_progress_line,
            ):
                print(f"report: {page}")
            return 0
        if args.command == "export":
            from .case import Case
            from .views.export import export_case

            case = Case.open(args.case)
            for path in export_case(
                case,
                args.out or case.path / "export",
                format=args.format,
                all_events=args.all_events,
                validate=not args.no_validate,
                include_secrets=args.include_secrets,
            ):
                print(f"export: {path}")
            return 0
        if args.command == "notebooks":
            from .views.report import copy_notebooks

            for nb in copy_notebooks(args.out, overwrite=args.force):
                print(f"notebook: {nb}")
            return 0
        if args.command == "remediate":
            from .case import Case

            if args.verify:
                return _verify_remediation(Case.open(args.case), args.verify, out=args.out, preserved=args.preserved)
            print(_remediation_text(Case.open(args.case), out=args.out))
            return 0
        if args.command == "formats":
            return _formats()
        if args.command == "demo":
            return _demo(args)
    except K8sForensicsError as e:
        print(f"k8sforensics: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("k8sforensics: interrupted; the case is unchanged", file=sys.stderr)
        return 130
    return 1


def _version_text() -> str:
    from .schema import SCHEMA_VERSION
    from .version import __version__

    return f"k8sforensics {__version__} (case schema {SCHEMA_VERSION})"


def _progress_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _show_case_notices() -> None:
    """Case notices (waiting for the lock, a lock taken over, leftovers removed) as one line
    each on stderr, not as Python warnings with a source line."""
    from .case import CaseNotice

    default = warnings.showwarning

    def show(
        message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        if issubclass(category, CaseNotice):
            print(f"k8sforensics: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.simplefilter("always", CaseNotice)


def _ingest(args: argparse.Namespace) -> int:
    from .case import Case
    from .ingest import ingest

    case = Case.create(args.case, cluster=args.cluster, exist_ok=True)
    with _dask_client(args.dask) as client:
        report = ingest(
            case,
            args.paths,
            cluster=args.cluster,
            on_bad_lines=args.on_bad_lines,
            progress=False if args.no_progress else None,
            client=client,
            keep_secrets=args.keep_secrets,
            time_range=tuple(args.time_range) if args.time_range else None,
            vpc_fields=args.vpc_fields,
        )
    print(report)
    return 0


def _vpc_fields(text: str) -> list[str]:
    names = text.split()
    if not names:
        raise argparse.ArgumentTypeError("name the fields, space-separated")
    return names


@contextlib.contextmanager
def _dask_client(address: str | None) -> Iterator[Any]:
    """None, a client of a LocalCluster (one single-threaded worker per core), or of the
    scheduler at ``address``."""
    if not address:
        yield None
        return
    from distributed import Client, LocalCluster

    if address == "local":
        with (
            LocalCluster(n_workers=os.cpu_count() or 2, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            yield client
    else:
        with Client(address, timeout=30) as client:
            yield client


def _detect(args: argparse.Namespace) -> int:
    from .case import Case
    from .detect import detect, load_sigma_rules

    case = Case.open(args.case)
    sigma = load_sigma_rules(args.sigma) if args.sigma else None
    if sigma is not None:
        for row in sigma.skipped.itertuples():
            print(f"sigma: skipped {row.file} ({row.title or '?'}): {row.reason}", file=sys.stderr)
    print(_findings_text(case, detect(case, sigma=sigma)))
    return 0


def _findings_text(case: Case, findings: Any) -> str:
    from .analysis import kill_chain, narrative

    where = case.refresh().manifest.get("findings", {}).get("path", "findings/")
    head = f"findings written to {case.path / where}"  # the narrative below counts them
    return head + "\n\n" + narrative(kill_chain(case, findings=findings, max_context=0))


def _formats() -> int:
    from .sources import FORMATS

    width = max(len(f.NAME) for f in FORMATS)
    for f in FORMATS:
        title = (f.__doc__ or "").strip().splitlines()[0]
        print(f"{f.FAMILY:<8} {f.NAME:<{width}}  {title}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """The main job on the bundled sample breach. Each later stage (detection, the report)
    appends a step here; every step takes the case and returns text to print."""
    import shutil

    from .case import Case
    from .ingest import ingest
    from .samples import write_sample_evidence

    out = Path(args.out)
    if (out / "manifest.json").exists():
        shutil.rmtree(out)
    sample = Path(__file__).resolve().parent.parent / "sample_data"
    if not (sample / "truth.json").is_file():  # an installed package without the repository: generate it
        sample = out.parent / (out.name + "-evidence")
        write_sample_evidence(sample, seed=0)
    case = Case.create(out, cluster="prod-eu")
    print(f"sample breach: {sample}  (ground truth: {sample / 'truth.json'})")
    print(ingest(case, [sample], progress=False))
    for step in DEMO_STEPS:
        print()
        print(step(case))
    return 0


def _case_summary(case: Case) -> str:
    return case.summary()


def _detections(case: Case) -> str:
    from .detect import detect

    return _findings_text(case, detect(case))


def _remediation_text(case: Case, *, out: str | None = None) -> str:
    from .remediation import Remediation
    from .remediation.actions import PHASE

    plan = Remediation(case)
    written = plan.write(out)
    actions = plan.actions()
    lines = [
        f"{len(actions)} remediation actions; the objects that carry them out are in {written['checklist.csv'].parent}:"
    ]
    lines += [f"  {name}" for name in written]
    if "checklist.md" in written:
        lines.append(f"the checklist as Markdown, for a ticket: {written['checklist.md']}")
    for priority, phase in PHASE.items():
        g = actions[actions["priority"] == priority]
        lines.append(f"\n{priority}. {phase} ({len(g)}):")
        lines += [f"  [ ] {a}" + (f"\n        $ {c}" if c else "") for a, c in zip(g["action"], g["command"])]
    return "\n".join(lines)


def _verify_remediation(case: Case, snapshot: str, *, out: str | None, preserved: str) -> int:
    """``remediate CASE --verify SNAPSHOT``: each action done, not done or not checkable, in
    verification.csv and verification.md; exit 1 when an action is not done."""
    import json

    from .remediation import Remediation
    from .remediation.verify import NOT_DONE, VERDICTS, read_snapshot, verify_actions

    snap = read_snapshot(snapshot)
    result = verify_actions(Remediation(case).actions(), snap, case_dir=case.path, preserved_root=preserved)
    folder = Path(out) if out is not None else case.path / "remediation"
    folder.mkdir(parents=True, exist_ok=True)
    table = result.copy()
    for col in ("finding_ids", "event_ids"):
        if col in table:
            table[col] = table[col].map(
                lambda v: " ".join(map(str, v)) if hasattr(v, "__iter__") and not isinstance(v, str) else v
            )
    if "check" in table:
        table["check"] = table["check"].map(lambda c: json.dumps(c, sort_keys=True) if isinstance(c, dict) else c)
    table.to_csv(folder / "verification.csv", index=False)
    (folder / "verification.md").write_text(_verification_markdown(result, snapshot=snapshot))
    counts = result["verdict"].value_counts()
    lines = [
        f"verified against {snapshot}"
        + (f" (collected {result['checked_at'].iloc[0]})" if len(result) and result["checked_at"].iloc[0] else "")
        + ": "
        + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)
    ]
    lines += [f"  warning: {w}" for w in result.attrs.get("warnings", [])]
    for step, r in zip(_steps(result), result.itertuples(index=False)):
        if r.verdict == NOT_DONE:
            action = r.action if len(r.action) <= 110 else r.action[:109] + "…"  # the whole text is in verification.md
            lines.append(f"  not done: {step}. {action} — {r.evidence}")
    lines.append(f"written: {folder / 'verification.csv'}, {folder / 'verification.md'}")
    print("\n".join(_terminal_safe(line) for line in lines))
    return 1 if (result["verdict"] == NOT_DONE).any() else 0


def _steps(result: Any) -> list[Any]:
    return list(result["step"]) if "step" in result else list(range(1, len(result) + 1))


def _verification_markdown(result: Any, *, snapshot: str) -> str:
    """The verification as a Markdown table a responder pastes into a ticket (no HTML; every
    cell escaped, so a forged name cannot break the table or inject markup)."""
    from .remediation.verify import VERDICTS

    counts = result["verdict"].value_counts()
    when = result["checked_at"].iloc[0] if len(result) and result["checked_at"].iloc[0] else "an unknown time"
    lines = [
        "# Remediation verification",
        "",
        f"Snapshot {_md(snapshot)}, collected {_md(when)}: "
        + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)
        + ".",
        "",
    ]
    warnings_ = result.attrs.get("warnings", [])
    if warnings_:
        lines += ["Files of the snapshot not read:", ""] + [f"- {_md(w)}" for w in warnings_] + [""]
    phases = result["phase"] if "phase" in result else [""] * len(result)
    lines += ["| step | phase | action | verdict | evidence |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {_md(s)} | {_md(p)} | {_md(a)} | {_md(v)} | {_md(e)} |"
        for s, p, a, v, e in zip(_steps(result), phases, result["action"], result["verdict"], result["evidence"])
    ]
    return "\n".join(lines) + "\n"


def _md(value: Any) -> str:
    """One Markdown table cell: one line, control characters spelled out, every character that
    ends a cell or starts markup escaped (``remediation.markdown.escape``, as checklist.md)."""
    from .remediation.markdown import escape

    if value is None or (isinstance(value, float) and value != value):  # None, NaN: an empty cell
        return ""
    return escape(_terminal_safe(" ".join(str(value).splitlines())))


def _terminal_safe(text: str) -> str:
    """Control characters (a forged name's escape sequences) spelled out before printing."""
    return "".join(c if c.isprintable() or c == "\n" else c.encode("unicode_escape").decode("ascii") for c in text)


def _remediate(case: Case) -> str:
    return _remediation_text(case)


def _report(case: Case) -> str:
    from .views.report import run_report

    pages = run_report(case.path, progress=_progress_line)
    return "\n".join(f"report: {p}  (open it in a browser)" for p in pages)


DEMO_STEPS: list[Callable[[Case], str]] = [_case_summary, _detections, _remediate, _report]


if __name__ == "__main__":
    sys.exit(main())
