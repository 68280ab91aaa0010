"""Detection over an audit log larger than memory.

The built-in audit rules run on the audit table one chunk at a time (whole five-minute windows,
the longest they count over) to find the rows they can use: the rows of their hits, the first
workload each identity created (hit or not: a later one is not a first), and the execs the flow
rules join to. RBAC writes are carried from chunk to chunk, so a rule that joins a later event to
one (a new binding's first use, an RBAC change followed by a workload write) sees both. Detection
then runs on those rows only — the same findings, holding one chunk and the rows kept.
"""

from __future__ import annotations

import pandas as pd

from .audit_rules import AUDIT_RULES, WRITE_VERBS, allowed, first_workload_creates
from .flow_rules import egress_anchors
from .rules import Evidence, RuleError

RBAC_RESOURCES = ("clusterrolebindings", "rolebindings", "clusterroles", "roles")


def reduced_audit(ev: Evidence) -> Evidence:
    """``ev`` with only the audit rows a built-in rule can use (see the module's docstring);
    its other tables, context and settings are ``ev``'s."""
    start = ev.start()
    kept: list[pd.DataFrame] = []
    carried: pd.DataFrame | None = None
    for chunk in ev.audit_chunks():
        frame = chunk if carried is None else pd.concat([carried, chunk], ignore_index=True)
        part = Evidence(audit=frame, context=ev.context, settings=ev.settings, known_start=start)
        ids: set[str] = set()
        for rule in AUDIT_RULES:
            try:
                hits = rule.logic(part)
            except Exception as e:  # a rule bug names the rule, as in run_rules
                raise RuleError(f"rule {rule.id} ({rule.title}) failed: {type(e).__name__}: {e}") from e
            for evidence in hits.get("event_ids", ()):
                ids.update(str(i) for i in evidence)
        ids.update(first_workload_creates(part)["event_id"].astype(str))
        ids.update(egress_anchors(part)["anchor_event"].astype(str))
        kept.append(frame[frame["event_id"].astype(str).isin(ids)])
        rbac = chunk[chunk["resource"].isin(RBAC_RESOURCES) & chunk["verb"].isin(WRITE_VERBS) & allowed(chunk)]
        carried = rbac if carried is None else pd.concat([carried, rbac], ignore_index=True)
    rows = (pd.concat(kept, ignore_index=True).drop_duplicates("event_id").sort_values(["time", "event_id"], kind="stable")
            .reset_index(drop=True) if kept else ev.audit.iloc[:0])
    return Evidence(audit=rows, runtime=ev._sources["runtime"], flows=ev._sources["flows"], context=ev.context, settings=ev.settings,
                    case=ev._case, flow_columns=ev._flow_columns, chunk_rows=ev.chunk_rows, known_start=start)
