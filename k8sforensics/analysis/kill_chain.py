"""The kill-chain timeline: findings and the events that back them, in time order, with
their phase, tactic, technique and entity; the phases' first and last sightings; patient
zero; and a narrative an analyst can paste into a report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..context.networks import Network, cluster_networks, external_mask
from ..detect.engine import PHASES
from ..frames import clock, utc_timestamp

if TYPE_CHECKING:
    import networkx as nx

    from ..case import Case

TIMELINE_COLUMNS = [
    "time", "time_end", "kind", "kill_chain_phase", "phase_order", "tactic", "technique_id", "attack_id", "severity", "title",
    "entity_type", "entity", "namespace", "pod", "user", "source_ip", "destination_ip", "summary", "source_table", "event_id",
    "finding_id", "rule_id", "rule_source", "event_ids",
]
_EVENT_TEXT = {
    "audit": "coalesce(\"user\", '?') || ' ' || coalesce(verb, '') || ' ' || coalesce(resource, '') || coalesce('/' || subresource, '')"
             " || ' ' || coalesce(object_namespace || '/', '') || coalesce(object_name, '') || ' → ' || coalesce(CAST(response_code AS VARCHAR), '?')"
             " || coalesce(' from ' || source_ip, '')",
    "runtime": "coalesce(rule || ': ', '') || coalesce(cmdline, process || ' ' || coalesce(args, ''), output, event_type)",
    "flows": "coalesce(src_ip, '?') || ':' || coalesce(CAST(src_port AS VARCHAR), '') || ' → ' || coalesce(dst_ip, '?') || ':' ||"
             " coalesce(CAST(dst_port AS VARCHAR), '') || '/' || coalesce(protocol, '') || ' ' || coalesce(verdict, '')",
}
_EVENT_POD = {"audit": ("object_namespace", "object_name"), "runtime": ("namespace", "pod"), "flows": ("src_namespace", "src_pod")}
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
    return out.assign(_k=kind_rank).sort_values(["time", "_k", "finding_id"], kind="stable").drop(columns="_k").reset_index(drop=True)


def _filter(f: pd.DataFrame, *, start: Any, end: Any, namespace: str | None, entity: str | None, phases: list[str] | None) -> pd.DataFrame:
    m = pd.Series(True, index=f.index)
    if start is not None:
        m &= f["time_end"] >= utc_timestamp(start)
    if end is not None:
        m &= f["time"] <= utc_timestamp(end)
    if namespace:
        m &= f["namespace"] == namespace
    if entity:
        m &= (f["entity"] == entity) | (f["user"] == entity) | (f["source_ip"] == entity) | (f["destination_ip"] == entity)
    if phases:
        m &= f["kill_chain_phase"].isin(phases)
    return f[m]



def _events(case: Case, f: pd.DataFrame, *, around: dt.timedelta, max_context: int) -> pd.DataFrame:
    """Evidence events by id, and context events of each finding's pod, read with DuckDB so
    a large case is not loaded whole."""
    links = f[["finding_id", "event_ids", "kill_chain_phase", "entity", "entity_type"]].explode("event_ids").dropna(subset=["event_ids"])
    links = links.rename(columns={"event_ids": "event_id"})
    pods = f[f["pod"].notna() & f["namespace"].notna()][["finding_id", "namespace", "pod", "time", "time_end", "kill_chain_phase", "entity", "entity_type"]]
    con = case.connect()
    frames = []
    try:
        con.register("links", links[["finding_id", "event_id"]])
        con.register("pods_of", pods.assign(lo=pods["time"] - pd.Timedelta(around), hi=pods["time_end"] + pd.Timedelta(around)))
        for table, text in _EVENT_TEXT.items():
            ns, pod = _EVENT_POD[table]
            ev = con.sql(f"SELECT l.finding_id, t.event_id, t.time, '{table}' AS source_table, {text} AS summary, 'evidence' AS kind "
                         f"FROM {table} t JOIN links l USING (event_id)").df()
            ctx = con.sql(
                f"SELECT * FROM (SELECT p.finding_id, t.event_id, t.time, '{table}' AS source_table, {text} AS summary, 'context' AS kind, "
                f"row_number() OVER (PARTITION BY p.finding_id ORDER BY abs(epoch(t.time) - epoch(p.time))) AS k "
                f"FROM {table} t JOIN pods_of p ON t.{ns} = p.namespace AND t.{pod} = p.pod AND t.time BETWEEN p.lo AND p.hi "
                f"WHERE t.event_id NOT IN (SELECT event_id FROM links)) WHERE k <= {int(max_context)}").df().drop(columns="k")
            frames += [ev, ctx]
    finally:
        con.close()
    events = pd.concat([x for x in frames if len(x)], ignore_index=True) if any(len(x) for x in frames) else pd.DataFrame()
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
        out.append({
            "kill_chain_phase": phase, "first_seen": g["time"].min(), "last_seen": g["time_end"].max(), "findings": len(g),
            "techniques": ", ".join(sorted({t for t in g["technique_id"].dropna()} | {a for a in g["attack_id"].dropna() if a})),
            "entities": ", ".join(list(dict.fromkeys(g["entity"].dropna()))[:8]),
        })
    return pd.DataFrame(out, columns=["kill_chain_phase", "first_seen", "last_seen", "findings", "techniques", "entities"])


PATIENT_ZERO_COLUMNS = ["rank", "entity", "namespace", "pod", "first_seen", "came_from", "reason", "finding_id", "entity_type"]
FOLLOW_UP = pd.Timedelta(minutes=30)  # how soon a high-severity finding must follow a pod's first one to make it a strong candidate
_FOOTHOLD_PHASES = ("Delivery", "Exploitation", "Installation", "Command & Control")
_SA_USER = "system:serviceaccount:"


def patient_zero(source: Case | pd.DataFrame | nx.MultiDiGraph, *, networks: Iterable[Network] | None = None,
                 made: set[str] | None = None) -> pd.DataFrame:
    """Candidates for the way in, best first, with the reason. Two shapes of entry:

    - a pod (``entity_type`` pod) whose earliest finding is high or critical and in a foothold
      phase (delivery, exploitation, installation, C2); ``came_from`` is the outside address a
      finding about that pod names as its source, if any;
    - an identity (``entity_type`` user or service_account) that findings show acting from an
      outside address — a leaked kubeconfig or token used with no exploited pod (MS-TA9001,
      ATT&CK T1078); ``came_from`` is that address; strong when one of those findings is high
      or critical or in a foothold phase.

    Strong candidates rank first, each group by time. An address inside the cluster or its
    private network (a node, a VPC address; ``network.is_external`` with ``networks``, by
    default the case's own) is never ``came_from``, and a finding about an address is never a
    pod. ``source`` is a case (its saved findings; with none saved yet, the lateral-movement
    graph's ranking), a findings (or timeline) frame, or a lateral-movement graph
    (``reach.graph_patient_zero``). Pods made by hand during the evidence (``made``; for a case,
    ``made_by_hand``) rank after the others."""
    if hasattr(source, "out_edges"):  # a networkx graph
        from .reach import graph_patient_zero

        return graph_patient_zero(source, networks=networks or ())  # type: ignore[arg-type]
    if isinstance(source, pd.DataFrame):
        f, nets = source, list(networks or ())
        return _finding_patient_zero(f, networks=nets, made=made or set())
    else:
        f = source.findings()
        nets = list(networks) if networks is not None else cluster_networks(source.context("nodes"))
        if f.empty and not source.manifest.get("detections"):  # detection has not run: what the graph shows
            from .graph import lateral_movement
            from .reach import graph_patient_zero

            return graph_patient_zero(lateral_movement(source, possible=False), networks=nets)
    return _finding_patient_zero(f, networks=nets, made=made_by_hand(source) if made is None else made)


def made_by_hand(case: Case) -> set[str]:
    """``ns/name`` of the pods created during the evidence by a person, a service account that
    is not a workload controller, or a kubelet (a static pod): an attacker's tools are made this
    way, after the way in, so such a pod is never ranked before one a controller runs."""
    from ..detect.facts import is_system

    creates = case.sql("SELECT DISTINCT user, object_namespace, object_name FROM audit WHERE resource = 'pods' AND verb = 'create' "
                       "AND subresource IS NULL AND (response_code IS NULL OR response_code < 400) AND object_name IS NOT NULL")
    by_hand = ~is_system(creates["user"]) | creates["user"].fillna("").str.startswith("system:node:")
    return set(creates.loc[by_hand, "object_namespace"].astype(str) + "/" + creates.loc[by_hand, "object_name"].astype(str))


def _finding_patient_zero(f: pd.DataFrame, *, networks: list[Network], made: set[str] = frozenset()) -> pd.DataFrame:  # type: ignore[assignment]
    if "kind" in f.columns:
        f = f[f["kind"] == "finding"]
    if f.empty or not {"entity_type", "entity", "time", "severity", "kill_chain_phase"} <= set(f.columns):
        return pd.DataFrame(columns=PATIENT_ZERO_COLUMNS)
    strong = f["severity"].isin(["high", "critical"]) & f["kill_chain_phase"].isin(_FOOTHOLD_PHASES)
    f = f.assign(_strong=strong).sort_values(["_strong", "time"], ascending=[False, True], kind="stable")
    outside = external_mask(f["source_ip"].astype("string"), networks) if "source_ip" in f.columns else pd.Series(False, index=f.index)
    rows = []
    # pods: a finding about a pod names both its namespace and its name (a rule that fell back
    # to an address for an unattributed source is about that address, not a pod)
    pods = f[(f["entity_type"] == "pod") & f["namespace"].notna() & f["pod"].notna()]
    pods = pods[pods["entity"] == pods["namespace"].astype(str) + "/" + pods["pod"].astype(str)]
    for entity, g in pods.groupby("entity", sort=False):
        first = g.iloc[0]
        origin = g.loc[outside[g.index], "source_ip"].dropna()
        kind = "first foothold-phase finding" if first["_strong"] else "first finding"
        if not first["_strong"]:
            # a sensor that rates the exploit itself low (Falco's "Notice") still reports what
            # follows it: a high-severity finding soon after the first makes the pod a strong candidate
            start = g["time"].min()
            soon = g[g["severity"].isin(["high", "critical"]) & (g["time"] <= start + FOLLOW_UP)].sort_values("time", kind="stable")
            if len(soon):
                first = first.copy()
                first["_strong"] = True
                kind = f"first finding at {clock(start)}, then {soon['title'].iloc[0]} ({soon['severity'].iloc[0]}) at {clock(soon['time'].iloc[0])}; first"
        rows.append({
            "entity_type": "pod", "entity": entity, "namespace": first["namespace"], "pod": first["pod"], "first_seen": g["time"].min(),
            "came_from": origin.iloc[0] if len(origin) else None, "finding_id": first["finding_id"], "_strong": bool(first["_strong"]),
            "_t": first["time"], "_made": entity in made,
            "reason": f"{kind}: {first['title']} ({first['kill_chain_phase']}, {first['severity']}) at {clock(first['time'])}"
                      + ("; created by hand during the evidence (an attacker's tool, not the way in)" if entity in made else ""),
        })
    # identities acting from outside (whatever the finding is about: a secret read, a workload created)
    if "user" in f.columns:
        acting = f[outside & f["user"].notna() & (f["user"] != "")]  # system:anonymous too: unauthenticated access is a way in
        for user, g in acting.groupby("user", sort=False):
            g = g.sort_values("time", kind="stable")
            first = g.iloc[0]
            is_sa = str(user).startswith(_SA_USER)
            entity = str(user).removeprefix(_SA_USER).replace(":", "/", 1) if is_sa else str(user)
            strong_any = bool((g["severity"].isin(["high", "critical"]) | g["kill_chain_phase"].isin(_FOOTHOLD_PHASES)).any())
            rows.append({
                "entity_type": "service_account" if is_sa else "user", "entity": entity, "namespace": entity.split("/", 1)[0] if is_sa else None,
                "pod": None, "first_seen": g["time"].min(), "came_from": first["source_ip"], "finding_id": first["finding_id"],
                "_strong": strong_any, "_t": first["time"], "_made": False,
                "reason": f"credential used from outside address {first['source_ip']}: {first['title']} ({first['kill_chain_phase']}, "
                          f"{first['severity']}) at {clock(first['time'])}, {len(g)} finding(s) from outside",
            })
    if not rows:
        return pd.DataFrame(columns=PATIENT_ZERO_COLUMNS)
    out = pd.DataFrame(rows).sort_values(["_made", "_strong", "_t"], ascending=[True, False, True], kind="stable").reset_index(drop=True)
    out["rank"] = range(1, len(out) + 1)
    return out[PATIENT_ZERO_COLUMNS]


def narrative(timeline: pd.DataFrame, *, per_phase: int = 10) -> str:
    """A plain-text account of the attack in kill-chain order: per phase, one line per rule
    (repeats of a rule merged, with how many and about which entities), each with its time,
    technique and evidence ids. Contains evidence strings: escape it before rendering HTML."""
    f = timeline[timeline["kind"] == "finding"] if "kind" in timeline.columns else timeline
    if f.empty:
        return "No findings."
    lines = []
    first, last = f["time"].min(), f["time_end"].max()
    lines.append(f"{len(f)} findings between {clock(first)} and {clock(last)} UTC, "
                 f"in {f['kill_chain_phase'].nunique()} of the {len(PHASES)} kill-chain phases.")
    candidates = patient_zero(f)
    if len(candidates):
        p0 = candidates.iloc[0]
        what = {"pod": "pod", "user": "user", "service_account": "service account"}.get(p0["entity_type"], "")
        lines.append(f"Patient zero: {what} {p0['entity']} ({p0['reason']})" + (f", reached from {p0['came_from']}." if p0["came_from"] else "."))
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
                    f" ({len(entities)} entities: {', '.join(entities[:4])}{', …' if len(entities) > 4 else ''})" if len(entities) > 1 else "")
            lines.append(f"{line} (evidence: {', '.join(ids[:3])}{more})")
        if len(groups) > per_phase:
            lines.append(f"  - … and {sum(len(x) for x in groups[per_phase:])} more finding(s) of {len(groups) - per_phase} other rule(s)")
    return "\n".join(lines)



def entity_events(case: Case, entity: str, *, start: Any = None, end: Any = None, limit: int = 5000) -> pd.DataFrame:
    """Every event of one entity — a pod (``namespace/pod``), an IP address, or an identity
    (user name or ``namespace/service-account``) — across the three tables, in time order:
    the pivot from a finding to everything its entity did."""
    where: dict[str, str] = {}
    if "/" in entity and not entity.startswith("system:"):
        ns, name = entity.split("/", 1)
        where = {
            "audit": "(object_namespace = $ns AND object_name = $name) OR (sa_namespace = $ns AND (token_pod = $name OR sa_name = $name))",
            "runtime": "namespace = $ns AND pod = $name",
            "flows": "(src_namespace = $ns AND src_pod = $name) OR (dst_namespace = $ns AND dst_pod = $name)",
        }
        params: dict[str, Any] = {"ns": ns, "name": name}
    elif entity.replace(".", "").isdigit() or ":" in entity and not entity.startswith("system:"):
        where = {"audit": "source_ip = $ip", "runtime": "src_ip = $ip OR dst_ip = $ip", "flows": "src_ip = $ip OR dst_ip = $ip"}
        params = {"ip": entity}
    else:
        where = {"audit": "\"user\" = $user"}
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
        parts = [f"SELECT time, '{t}' AS source_table, event_id, {_EVENT_TEXT[t]} AS summary FROM {t} WHERE ({w}){time_sql}"
                 for t, w in where.items()]
        sql = " UNION ALL ".join(parts) + f" ORDER BY time LIMIT {int(limit)}"
        out = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).df()
    finally:
        con.close()
    out["time"] = pd.to_datetime(out["time"], utc=True)
    return out
