"""The kill-chain timeline: findings and the events that back them, in time order, with
their phase, tactic, technique and entity; the phases' first and last sightings; and a
narrative an analyst can paste into a report (patient zero named from ``entry``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..context.networks import case_networks, external_mask
from ..detect.engine import PHASES
from ..frames import clock, utc_timestamp
from .entry import findings_patient_zero

if TYPE_CHECKING:
    from ..case import Case

TIMELINE_COLUMNS = [
    "time",
    "time_end",
    "kind",
    "kill_chain_phase",
    "phase_order",
    "tactic",
    "technique_id",
    "attack_id",
    "severity",
    "title",
    "entity_type",
    "entity",
    "namespace",
    "pod",
    "user",
    "source_ip",
    "destination_ip",
    "summary",
    "source_table",
    "event_id",
    "finding_id",
    "rule_id",
    "rule_source",
    "event_ids",
]
_EVENT_TEXT = {
    "audit": "coalesce(\"user\", '?') || ' ' || coalesce(verb, '') || ' ' || coalesce(resource, '') || coalesce('/' || subresource, '')"
    " || ' ' || coalesce(object_namespace || '/', '') || coalesce(object_name, '') || ' → ' || coalesce(CAST(response_code AS VARCHAR), '?')"
    " || coalesce(' from ' || source_ip, '')",
    "runtime": "coalesce(rule || ': ', '') || coalesce(cmdline, process || ' ' || coalesce(args, ''), output, event_type)",
    "flows": "coalesce(src_ip, '?') || ':' || coalesce(CAST(src_port AS VARCHAR), '') || ' → ' || coalesce(dst_ip, '?') || ':' ||"
    " coalesce(CAST(dst_port AS VARCHAR), '') || '/' || coalesce(protocol, '') || ' ' || coalesce(verdict, '')",
}
_EVENT_POD = {
    "audit": ("object_namespace", "object_name"),
    "runtime": ("namespace", "pod"),
    "flows": ("src_namespace", "src_pod"),
}
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def kill_chain(
    case: Case,
    *,
    findings: pd.DataFrame | None = None,
    start: Any = None,
    end: Any = None,
    namespace: str | None = None,
    entity: str | None = None,
    phases: list[str] | None = None,
    around: dt.timedelta = dt.timedelta(minutes=1),
    max_context: int = 5,
) -> pd.DataFrame:
    """The timeline: one ``finding`` row per finding, followed in time order by its
    ``evidence`` rows (the events it names) and up to ``max_context`` ``context`` rows (other
    events of the same pod within ``around``). ``findings`` defaults to the case's saved
    findings; ``start``/``end``/``namespace``/``entity``/``phases`` narrow it."""
    f = case.findings() if findings is None else findings
    f = _filter(f, start=start, end=end, namespace=namespace, entity=entity, phases=phases)
    rows = f.assign(kind="finding", event_id=None, phase_order=f["kill_chain_phase"].map(PHASES.index))
    events = _events(case, f, around=around, max_context=max_context) if len(f) else pd.DataFrame()
    out = pd.concat([rows, events], ignore_index=True) if len(events) else rows
    out = out.reindex(columns=TIMELINE_COLUMNS)
    kind_rank = out["kind"].map({"finding": 0, "evidence": 1, "context": 2})
    return (
        out.assign(_k=kind_rank)
        .sort_values(
            ["time", "_k", "finding_id", "event_id"], kind="stable"
        )  # ties in a fixed order: exports are byte-identical
        .drop(columns="_k")
        .reset_index(drop=True)
    )


def _filter(
    f: pd.DataFrame, *, start: Any, end: Any, namespace: str | None, entity: str | None, phases: list[str] | None
) -> pd.DataFrame:
    m = pd.Series(True, index=f.index)
    if start is not None:
        m &= f["time_end"] >= utc_timestamp(start)
    if end is not None:
        m &= f["time"] <= utc_timestamp(end)
    if namespace:
        m &= f["namespace"] == namespace
    if entity:
        m &= (
            (f["entity"] == entity)
            | (f["user"] == entity)
            | (f["source_ip"] == entity)
            | (f["destination_ip"] == entity)
        )
    if phases:
        m &= f["kill_chain_phase"].isin(phases)
    return f[m]


def _events(case: Case, f: pd.DataFrame, *, around: dt.timedelta, max_context: int) -> pd.DataFrame:
    """Evidence events by id, and context events of each finding's pod, read with DuckDB so
    a large case is not loaded whole."""
    links = (
        f[["finding_id", "event_ids", "kill_chain_phase", "entity", "entity_type"]]
        .explode("event_ids")
        .dropna(subset=["event_ids"])
    )
    links = links.rename(columns={"event_ids": "event_id"})
    pods = f[f["pod"].notna() & f["namespace"].notna()][
        ["finding_id", "namespace", "pod", "time", "time_end", "kill_chain_phase", "entity", "entity_type"]
    ]
    con = case.connect()
    frames = []
    try:
        con.register("links", links[["finding_id", "event_id"]])
        con.register(
            "pods_of", pods.assign(lo=pods["time"] - pd.Timedelta(around), hi=pods["time_end"] + pd.Timedelta(around))
        )
        for table, text in _EVENT_TEXT.items():
            ns, pod = _EVENT_POD[table]
            ev = con.sql(
                f"SELECT l.finding_id, t.event_id, t.time, '{table}' AS source_table, {text} AS summary, 'evidence' AS kind "
                f"FROM {table} t JOIN links l USING (event_id)"
            ).df()
            ctx = (
                con.sql(
                    f"SELECT * FROM (SELECT p.finding_id, t.event_id, t.time, '{table}' AS source_table, {text} AS summary, 'context' AS kind, "
                    f"row_number() OVER (PARTITION BY p.finding_id ORDER BY abs(epoch(t.time) - epoch(p.time))) AS k "
                    f"FROM {table} t JOIN pods_of p ON t.{ns} = p.namespace AND t.{pod} = p.pod AND t.time BETWEEN p.lo AND p.hi "
                    f"WHERE t.event_id NOT IN (SELECT event_id FROM links)) WHERE k <= {int(max_context)}"
                )
                .df()
                .drop(columns="k")
            )
            frames += [ev, ctx]
    finally:
        con.close()
    events = (
        pd.concat([x for x in frames if len(x)], ignore_index=True) if any(len(x) for x in frames) else pd.DataFrame()
    )
    if events.empty:
        return events
    meta = f.set_index("finding_id")[["kill_chain_phase", "entity", "entity_type", "namespace", "pod", "rule_id"]]
    events = events.join(meta, on="finding_id")
    events["time"] = pd.to_datetime(events["time"], utc=True)
    events["time_end"] = events["time"]
    events["phase_order"] = events["kill_chain_phase"].map(PHASES.index)
    return events


def phases(timeline: pd.DataFrame) -> pd.DataFrame:
    """One row per kill-chain phase that has findings, in kill-chain order: first and last
    seen, number of findings, techniques and entities."""
    f = timeline[timeline["kind"] == "finding"] if "kind" in timeline.columns else timeline
    out = []
    for phase in PHASES:
        g = f[f["kill_chain_phase"] == phase]
        if g.empty:
            continue
        out.append(
            {
                "kill_chain_phase": phase,
                "first_seen": g["time"].min(),
                "last_seen": g["time_end"].max(),
                "findings": len(g),
                "techniques": ", ".join(
                    sorted(set(g["technique_id"].dropna()) | {a for a in g["attack_id"].dropna() if a})
                ),
                "entities": ", ".join(list(dict.fromkeys(g["entity"].dropna()))[:8]),
            }
        )
    return pd.DataFrame(
        out, columns=["kill_chain_phase", "first_seen", "last_seen", "findings", "techniques", "entities"]
    )


def narrative(timeline: pd.DataFrame, *, per_phase: int = 10) -> str:
    """A plain-text account of the attack in kill-chain order: per phase, one line per rule
    (repeats of a rule merged, with how many and about which entities), each with its time,
    technique and evidence ids. Contains evidence strings: escape it before rendering HTML."""
    f = timeline[timeline["kind"] == "finding"] if "kind" in timeline.columns else timeline
    if f.empty:
        return "No findings."
    lines = []
    first, last = f["time"].min(), f["time_end"].max()
    lines.append(
        f"{len(f)} findings between {clock(first)} and {clock(last)} UTC, "
        f"in {f['kill_chain_phase'].nunique()} of the {len(PHASES)} kill-chain phases."
    )
    candidates = findings_patient_zero(f)
    if len(candidates):
        p0 = candidates.iloc[0]
        what = {"pod": "pod", "user": "user", "service_account": "service account"}.get(p0["entity_type"], "")
        lines.append(
            f"Patient zero: {what} {p0['entity']} ({p0['reason']})"
            + (f", reached from {p0['came_from']}." if p0["came_from"] else ".")
        )
    for phase in PHASES:
        g = f[f["kill_chain_phase"] == phase]
        if g.empty:
            continue
        lines.append("")
        lines.append(f"{phase} ({clock(g['time'].min())} – {clock(g['time_end'].max())}, {len(g)} finding(s)):")
        groups = [x.sort_values("time", kind="stable") for _, x in g.groupby(["rule_id", "rule_source"], sort=False)]
        groups.sort(key=lambda x: (-x["severity"].map(SEVERITY_RANK).max(), x["time"].min()))
        shown = sorted(groups[:per_phase], key=lambda x: x["time"].min())
        for x in shown:
            r = x.iloc[0]
            tech = " / ".join(v for v in (r["technique_id"], r["attack_id"]) if isinstance(v, str) and v)
            ids = [i for ids in x["event_ids"] if ids is not None for i in ids]
            more = f" +{len(ids) - 3}" if len(ids) > 3 else ""
            line = f"  - {clock(r['time'])} [{tech}] {r['summary']}"
            if len(x) > 1:
                entities = list(dict.fromkeys(x["entity"].dropna()))
                line += f" — and {len(x) - 1} more like it until {clock(x['time_end'].max())}" + (
                    f" ({len(entities)} entities: {', '.join(entities[:4])}{', …' if len(entities) > 4 else ''})"
                    if len(entities) > 1
                    else ""
                )
            lines.append(f"{line} (evidence: {', '.join(ids[:3])}{more})")
        if len(groups) > per_phase:
            lines.append(
                f"  - … and {sum(len(x) for x in groups[per_phase:])} more finding(s) of {len(groups) - per_phase} other rule(s)"
            )
    return "\n".join(lines)


def entity_events(case: Case, entity: str, *, start: Any = None, end: Any = None, limit: int = 5000) -> pd.DataFrame:
    """Every event of one entity — a pod (``namespace/pod``), an IP address, or an identity
    (user name or ``namespace/service-account``) — across the three tables, in time order:
    the pivot from a finding to everything its entity did. A flow also names its ``peer`` (the
    other end's address) and ``port`` (the destination port)."""
    where: dict[str, str] = {}
    peer = {"audit": "NULL", "runtime": "NULL"}
    if "/" in entity and not entity.startswith("system:"):
        ns, name = entity.split("/", 1)
        where = {
            "audit": "(object_namespace = $ns AND object_name = $name) OR (sa_namespace = $ns AND (token_pod = $name OR sa_name = $name))",
            "runtime": "namespace = $ns AND pod = $name",
            "flows": "(src_namespace = $ns AND src_pod = $name) OR (dst_namespace = $ns AND dst_pod = $name)",
        }
        peer["flows"] = "CASE WHEN src_namespace = $ns AND src_pod = $name THEN dst_ip ELSE src_ip END"
        params: dict[str, Any] = {"ns": ns, "name": name}
    elif entity.replace(".", "").isdigit() or ":" in entity and not entity.startswith("system:"):
        where = {
            "audit": "source_ip = $ip",
            "runtime": "src_ip = $ip OR dst_ip = $ip",
            "flows": "src_ip = $ip OR dst_ip = $ip",
        }
        peer["flows"] = "CASE WHEN src_ip = $ip THEN dst_ip ELSE src_ip END"
        params = {"ip": entity}
    else:
        where = {"audit": '"user" = $user'}
        params = {"user": entity}
    time_sql = ""
    if start is not None:
        time_sql += " AND time >= $start"
        params["start"] = utc_timestamp(start).to_pydatetime()
    if end is not None:
        time_sql += " AND time <= $end"
        params["end"] = utc_timestamp(end).to_pydatetime()
    con = case.connect()
    try:
        parts = [
            f"SELECT time, '{t}' AS source_table, event_id, {_EVENT_TEXT[t]} AS summary, "
            f"CAST({peer[t]} AS VARCHAR) AS peer, CAST({'dst_port' if t == 'flows' else 'NULL'} AS INTEGER) AS port "
            f"FROM {t} WHERE ({w}){time_sql}"
            for t, w in where.items()
        ]
        sql = " UNION ALL ".join(parts) + f" ORDER BY time LIMIT {int(limit)}"
        out = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).df()
    finally:
        con.close()
    out["time"] = pd.to_datetime(out["time"], utc=True)
    return out


def attack_window(findings: pd.DataFrame, *, margin: dt.timedelta = dt.timedelta(minutes=5)) -> tuple[Any, Any]:
    """First and last attacker activity, widened by ``margin``: the span of the findings that
    are not routine (``routine`` False or missing), or of all findings when every one is.
    ``(None, None)`` without findings."""
    if findings.empty:
        return None, None
    f = findings
    if "routine" in f.columns and (~f["routine"].fillna(False).astype(bool)).any():
        f = f[~f["routine"].fillna(False).astype(bool)]
    return f["time"].min() - pd.Timedelta(margin), f["time_end"].fillna(f["time"]).max() + pd.Timedelta(margin)


def entity_activity(
    case: Case,
    entity: str,
    *,
    findings: pd.DataFrame,
    margin: dt.timedelta = dt.timedelta(minutes=5),
    limit: int = 20000,
) -> pd.DataFrame:
    """What one entity did during the attack (``attack_window``), each event marked ``routine``
    or not. Not routine: an event a finding cites, every API request and runtime event, a flow
    with an address outside the cluster, and the first flow to each internal peer and port.
    Routine: the repeats of an internal peer and port already shown (health checks, DNS, a
    service calling its backend) — summarise them, do not bury the attack under them."""
    start, end = attack_window(findings, margin=margin)
    events = entity_events(case, entity, start=start, end=end, limit=limit)
    cited = set(findings["event_ids"].explode().dropna()) if "event_ids" in findings.columns else set()
    flow = events["source_table"] == "flows"
    outside = external_mask(events["peer"], case_networks(case)).to_numpy(dtype=bool)
    repeat = events[flow].duplicated(subset=["peer", "port"], keep="first").reindex(events.index, fill_value=False)
    events["routine"] = flow & repeat & ~outside & ~events["event_id"].isin(cited)
    return events
