"""Detection: rules over a case's tables → findings mapped to the Threat Matrix, ATT&CK and the
kill chain. ``facts`` holds the predicates detection and the graph share."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ..bodies import UnreadableBodies
from ..case import Case
from .audit_rules import AUDIT_RULES
from .engine import (
    AUDIT_COLUMNS_READ,
    DEFAULT_SETTINGS,
    PHASES,
    Evidence,
    FlowRows,
    Rule,
    RuleError,
    findings_table,
    run_rules,
)
from .flow_rules import FLOW_RULES
from .reduction import reduced
from .routine import fold_routine
from .runtime_rules import RUNTIME_RULES
from .sigma import SigmaRules, load_sigma_rules

BUILTIN_RULES: list[Rule] = [*AUDIT_RULES, *RUNTIME_RULES, *FLOW_RULES]


def detect(
    case: Case,
    *,
    rules: Iterable[Rule] | None = None,
    sigma: str | SigmaRules | None = None,
    settings: Mapping[str, Any] | None = None,
    save: bool = True,
    chunk_rows: int = 1_000_000,
) -> pd.DataFrame:
    """Run the detection rules over a case and return the findings (one row each, ordered by
    time). ``rules`` defaults to ``BUILTIN_RULES``; ``sigma`` adds the Sigma rules of a folder
    (or already loaded); ``settings`` overrides ``DEFAULT_SETTINGS``. With ``save`` the
    findings replace the case's ``findings.parquet`` and the run is recorded in the manifest.

    Each rule reads what its ``reads`` says. The rules that read the reduced rows (the built-in
    ones) run on the rows they can use, found a chunk at a time (``chunk_rows`` flows, a fifth as
    many audit or runtime events: ``reduction.reduced``), so no table is held whole; a rule that
    reads whole tables loads them (once, when it first asks); a rule that only queries
    ``evidence.sql`` reads the case's Parquet. The findings do not depend on the chunk size, nor
    on which other rules run. Request and response bodies too large, too deep or not JSON are
    left unread (``bodies.parse_body``), logged, and summarised in the run's ``unreadable_bodies``."""
    chosen = list(BUILTIN_RULES if rules is None else rules)
    loaded = load_sigma_rules(sigma) if isinstance(sigma, str) else sigma
    if loaded is not None:
        chosen += loaded.rules
    t0 = time.perf_counter()
    unreadable = UnreadableBodies()  # one record of the bodies left unread, whichever evidence a rule reads
    whole = Evidence.from_case(
        case, settings=settings, chunk_rows=chunk_rows, unreadable=unreadable
    )  # nothing is read until a rule asks
    rows = None
    if any(rule.reads == "reduced" for rule in chosen):
        # the audit columns none of the built-in rules reads are left unread
        rows = reduced(
            Evidence.from_case(
                case, settings=settings, chunk_rows=chunk_rows, audit_columns=AUDIT_COLUMNS_READ, unreadable=unreadable
            )
        )
    read = time.perf_counter() - t0  # reading the tables (and keeping the rows the built-in rules can use)
    findings, runs = run_rules(whole, chosen, reduced=rows)
    # behaviour seen since the learning window and in several hours is the baseline: one low finding
    start = (rows if rows is not None else whole).start()
    findings = fold_routine(
        findings, learning_window=pd.Timedelta(whole.settings["learning_window"]), evidence_start=start
    )
    unreadable.warn("detection")
    if save:
        run: dict[str, Any] = {
            "rules": len(chosen),
            "findings": len(findings),
            "seconds": round(time.perf_counter() - t0, 3),
            "read_seconds": round(read, 3),
            "settings": {k: str(v) for k, v in (settings or {}).items()},
            "per_rule": runs,
        }
        if loaded is not None:
            run["sigma"] = {
                "folder": loaded.folder,
                "rules": len(loaded.rules),
                "skipped": loaded.skipped.to_dict("records"),
            }
        if unreadable.total:  # bodies the rules could not read: what they would have found there is missing
            run["unreadable_bodies"] = unreadable.summary()
        case.save_findings(findings_table(findings), run)
    return findings


__all__ = [
    "AUDIT_RULES",
    "BUILTIN_RULES",
    "DEFAULT_SETTINGS",
    "FLOW_RULES",
    "PHASES",
    "RUNTIME_RULES",
    "Evidence",
    "FlowRows",
    "Rule",
    "RuleError",
    "SigmaRules",
    "detect",
    "load_sigma_rules",
]
