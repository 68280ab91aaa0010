"""Detection over an audit log (and runtime events) larger than memory.

The built-in rules run on the audit table one chunk at a time (whole five-minute windows, the
longest they count over) to find the rows they can use: the rows of their hits, the first
workload each identity created (hit or not: a later one is not a first), the first request of
each person from each address and with each client (what "a new address for this identity" is
judged against), the writes of workload templates (what a workload's containers were), pods deleted
by people and pod identities (judged against what was found on the pod, perhaps at run time), and
the execs the flow rules join to. RBAC writes are carried from chunk to chunk, so a rule that joins a
later event to one (a new binding's first use, an RBAC change followed by a workload write) sees
both; so are reads and creations of Secrets, for ``token_secret_use_window`` (a token read from
a Secret and used later); and the deletions, denied requests and lists of the last five minutes,
so a burst counted over a sliding window that straddles two chunks is seen whole. The runtime
table is gone through the same way (its rules judge each event on its own). Detection then runs on the rows kept — the same findings, holding one chunk
and those rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pandas as pd

from .audit_rules import (
    AUDIT_RULES,
    BURST_WINDOW,
    WRITE_VERBS,
    first_workload_creates,
    identity_firsts,
    pod_deletions,
    token_secret_rows,
    workload_template_writes,
)
from .engine import Evidence, Rule, RuleError, selecting
from .facts import allowed
from .flow_rules import egress_anchors
from .runtime_rules import RUNTIME_RULES

RBAC_RESOURCES = ("clusterrolebindings", "rolebindings", "clusterroles", "roles")


def burst_rows(a: pd.DataFrame) -> pd.Series:
    """Rows the burst rules count over a sliding window (deletions, denied requests, lists):
    carried into the next chunk for one window."""
    code = a["response_code"].astype("Int64")
    return (a["verb"].isin(["delete", "deletecollection", "list"]) | code.isin([401, 403]).fillna(False)).astype(bool)


def reduced(ev: Evidence) -> Evidence:
    """``ev`` with only the audit and runtime rows a built-in rule can use (see the module's
    docstring; ``Evidence.with_rows``): its flows, case, context and settings are ``ev``'s."""
    window = pd.Timedelta(ev.settings["token_secret_use_window"])

    def carry(carried: pd.DataFrame | None, chunk: pd.DataFrame) -> pd.DataFrame:
        rbac = chunk[chunk["resource"].isin(RBAC_RESOURCES) & chunk["verb"].isin(WRITE_VERBS) & allowed(chunk)]
        secrets = token_secret_rows(chunk)
        # the rows a burst rule counts, for one sliding window: a burst can straddle two chunks
        last = chunk[burst_rows(chunk) & (chunk["time"] > chunk["time"].max() - BURST_WINDOW)] if len(chunk) else chunk
        if carried is not None and len(carried) and len(chunk):
            # Secret rows only as long as a use can still be linked to them, burst rows for one
            # window; RBAC writes for good
            end = chunk["time"].max()
            secret = carried["event_id"].isin(set(token_secret_rows(carried)["event_id"]))
            fresh = (
                carried["resource"].isin(RBAC_RESOURCES)
                | (secret & (carried["time"] >= end - window))
                | (burst_rows(carried) & (carried["time"] > end - BURST_WINDOW))
            )
            carried = carried[fresh]
        parts = [p for p in (carried, rbac, secrets, last) if p is not None and len(p)]
        return pd.concat(parts, ignore_index=True).drop_duplicates("event_id") if parts else chunk.iloc[:0]

    rule_rows: dict[str, set[str]] = {}
    audit = _kept(
        ev.audit_chunks(),
        lambda chunk: ev.part(audit=chunk),
        AUDIT_RULES,
        also=lambda part: pd.concat(
            [
                first_workload_creates(part)["event_id"],
                part.audit.loc[workload_template_writes(part.audit), "event_id"],
                part.audit.loc[pod_deletions(part.audit), "event_id"],
            ]
        ),
        firsts=lambda part: identity_firsts(part.audit)[["event_id", "first_key"]],
        carry=carry,
        rule_rows=rule_rows,
    )
    runtime = _kept(ev.runtime_chunks(), lambda chunk: ev.part(runtime=chunk), RUNTIME_RULES, rule_rows=rule_rows)
    return ev.with_rows(
        audit=audit if audit is not None else ev.audit.iloc[:0],
        runtime=runtime if runtime is not None else ev.runtime.iloc[:0],
        rule_rows=rule_rows,
    )


def _kept(
    chunks: Iterator[pd.DataFrame],
    evidence: Callable[[pd.DataFrame], Evidence],
    rules: Iterable[Rule],
    *,
    also: Callable[[Evidence], pd.Series] | None = None,
    firsts: Callable[[Evidence], pd.DataFrame] | None = None,
    carry: Callable[[pd.DataFrame | None, pd.DataFrame], pd.DataFrame] | None = None,
    rule_rows: dict[str, set[str]] | None = None,
) -> pd.DataFrame | None:
    """The rows of ``chunks`` that ``rules`` hit (or ``also`` names, or the flow rules join to),
    run on each chunk plus what ``carry(carried, chunk)`` kept of the chunks before; of the rows
    ``firsts`` names (``event_id``, ``first_key``) only the first of each key over all chunks;
    None when there is no chunk. The event ids each row-local rule (``Rule.row_local``) hit go
    into ``rule_rows`` under its id (``Evidence.for_rule``)."""
    kept: list[pd.DataFrame] = []
    carried: pd.DataFrame | None = None
    seen: set[str] = set()
    for chunk in chunks:
        frame = chunk if carried is None else pd.concat([carried, chunk], ignore_index=True)
        part = evidence(frame)
        ids: set[str] = set()
        for rule in rules:
            try:
                with selecting():  # the rows only: the hits are built once, on the rows kept
                    hits = rule.logic(part)
            except Exception as e:  # a rule bug names the rule, as in run_rules
                raise RuleError(f"rule {rule.id} ({rule.title}) failed: {type(e).__name__}: {e}") from e
            hit = {str(i) for evidence_ids in hits.get("event_ids", ()) for i in evidence_ids}
            ids |= hit
            if rule.row_local and rule_rows is not None:  # recorded even when empty: then it runs on no row
                rule_rows.setdefault(rule.id, set()).update(hit)
        if also is not None:
            ids.update(also(part).astype(str))
        if firsts is not None:  # chunks come in time order: a key's first row is in the first chunk that has it
            for event_id, key in zip(*(firsts(part)[c] for c in ("event_id", "first_key"))):
                if key not in seen:
                    seen.add(key)
                    ids.add(str(event_id))
        ids.update(egress_anchors(part)["anchor_event"].astype(str))
        kept.append(frame[frame["event_id"].astype(str).isin(ids)])
        if carry is not None:
            carried = carry(carried, chunk)
    if not kept:
        return None
    return (
        pd.concat(kept, ignore_index=True)
        .drop_duplicates("event_id")
        .sort_values(["time", "event_id"], kind="stable")
        .reset_index(drop=True)
    )
