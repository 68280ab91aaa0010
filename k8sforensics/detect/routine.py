"""Routine behaviour folded into one low finding: a behavioural detection (something unusual,
not something known-bad) that the same actor already showed in the learning window at the start
of the evidence and that recurs in several distinct hours is the cluster's baseline — a backup
reading every secret hourly, a scanner listing every kind, a service calling its provider — not
an attack that began during the evidence. This is the "new terms" idea of SIEM detections
(Elastic's new_terms rule type, Splunk's first-time-seen searches) applied after the rules.

Known-bad content (a miner, a reverse shell, a token read, an escape) is never folded: a miner
running since before the evidence began is still a miner. The trade-off is explicit: if the
attacker was already active when the evidence starts, their recurring behaviour is shown as
routine — low, folded, still listed — never dropped."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from ..context.networks import is_external

# rules that flag behaviour, not known-bad content (their findings can be routine)
BEHAVIOURAL_RULES = frozenset(
    {
        "k8s-secrets-read",
        "k8s-api-enumeration",
        "k8s-forbidden-burst",
        "k8s-self-review",
        "k8s-exec-into-pod",
        "k8s-port-forward",
        "k8s-new-pod-creator",
        "k8s-token-request",
        "k8s-impersonation",
        "net-beaconing",
        "net-port-scan",
        "net-new-internal-edge",
        "net-kubelet-from-pod",
        "net-nodeport-from-internet",
        "rt-api-from-container",
        "rt-package-install",
    }
)
MIN_HOURS = 3  # distinct clock hours the behaviour shows up in
SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}
MAX_EVENT_IDS = 1000


def fold_routine(findings: pd.DataFrame, *, learning_window: dt.timedelta, evidence_start: Any = None) -> pd.DataFrame:
    """``findings`` with each routine behaviour — same rule, actor, entity and destination; first
    seen within ``learning_window`` of ``evidence_start`` (default: the first finding); seen in
    ``MIN_HOURS`` distinct hours — folded into its first finding, made low, its summary saying
    so. Other findings are returned unchanged."""
    if findings.empty:
        return findings
    start = pd.Timestamp(evidence_start) if evidence_start is not None else findings["time"].min()
    behavioural = findings["rule_id"].isin(BEHAVIOURAL_RULES)
    if not behavioural.any():
        return findings
    f = findings[behavioural]
    # an outside destination is part of the behaviour (a provider, not a C2); inside ones vary
    # from run to run of the same job (a scanner's first target, a scrape's first node)
    dest = [d if is_external(d) else "" for d in _text(f["destination_ip"])]
    key = pd.Series(list(zip(f["rule_id"], _text(f["user"]), _text(f["entity"]), dest)), index=f.index)
    drop: list[Any] = []
    out = findings.copy()
    for _, idx in key.groupby(key, sort=False).groups.items():
        rows = f.loc[idx].sort_values("time", kind="stable")
        hours = _hours(rows)
        if rows["time"].iloc[0] > start + learning_window or hours < MIN_HOURS:
            continue
        first = rows.index[0]
        ids = [e for ids in rows["event_ids"] if ids is not None for e in ids]
        out.at[first, "severity"] = "low"
        out.at[first, "time_end"] = rows["time_end"].max()
        out.at[first, "event_ids"] = ids[:MAX_EVENT_IDS]
        out.at[first, "event_count"] = int(rows["event_count"].sum())
        out.at[first, "summary"] = (
            f"{rows['summary'].iloc[0]} — routine: the same behaviour in {hours} hours, first seen "
            f"in the learning window at the start of the evidence ({len(rows)} findings folded into this one)"
        )
        drop += list(rows.index[1:])
    return out.drop(index=drop).reset_index(drop=True)


def _hours(rows: pd.DataFrame) -> int:
    """Distinct clock hours the findings cover, from each one's first to its last event."""
    covered: set[pd.Timestamp] = set()
    for a, b in zip(rows["time"].dt.floor("h"), rows["time_end"].fillna(rows["time"]).dt.floor("h")):
        covered.update(pd.date_range(a, max(a, b), freq="h"))
    return len(covered)


def _text(s: pd.Series) -> list[str]:
    return ["" if not isinstance(v, str) else v for v in s]
