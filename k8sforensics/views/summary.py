"""The executive summary: one screen a responder hands to an incident commander, first in the
report — what happened, when, how the attacker got in, from where, what they hold, what they
left behind, what data they touched and the first five things to do. Every claim carries the
finding and evidence ids behind it and links to the report section that shows them.

Nothing here decides anew what the attack reached: the ways in and the spread are
``analysis.attack_scope``'s (computed once, as remediation computes it), patient zero is
``analysis.findings_patient_zero`` / ``graph_patient_zero``'s, the attacker's addresses and the
objects they made are remediation's, and the actions are the checklist's first five."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import node_ids
from ..analysis import findings_patient_zero, graph_patient_zero, made_by_hand
from ..analysis.reach import REACHED, SOURCE
from ..detect import detect
from ..remediation import Remediation
from ..remediation.actions import attacker_objects
from .timeline import escape

if TYPE_CHECKING:
    import networkx as nx

    from ..case import Case

# the report sections a claim links to (the notebooks carry these anchors)
SECTIONS = ("findings", "patient-zero", "lateral-movement", "checklist")
# the columns of every table of the summary: what, when, and the ids behind it
CLAIM_COLUMNS = ["item", "kind", "time", "detail", "finding_ids", "event_ids"]
ACTION_SUMMARY_COLUMNS = ["step", "action_id", "phase", "action", "target", "finding_ids", "event_ids"]
# objects that outlive the attacker's session: what "persistence left behind" lists (a bare pod
# the attacker made is a tool, listed with the pods; a static pod is persistence)
PERSISTENT_RESOURCES = frozenset(
    {
        "cronjobs",
        "jobs",
        "daemonsets",
        "deployments",
        "statefulsets",
        "replicasets",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "clusterrolebindings",
        "rolebindings",
        "clusterroles",
        "roles",
        "serviceaccounts",
        "secrets",
        "certificatesigningrequests",
    }
)
# findings the objectives are told from, by ATT&CK tactic (what the attacker came for)
OBJECTIVE_TACTICS = ("Impact", "Exfiltration", "Collection", "Credential Access")
DATA_TACTICS = ("Exfiltration", "Collection")
ESCALATION_TACTICS = ("Privilege Escalation", "Lateral Movement")
# a finding this close before the time the scope says a node was taken is still the attack's:
# sources disagree by seconds (clock skew) and a flow's record can trail the exploit it carried
SKEW = pd.Timedelta(minutes=1)
SHOWN = 6  # items named per line of the page; the rest counted


@dataclass(frozen=True, eq=False)
class Summary:
    """The executive summary of one case. Times are UTC ``Timestamp``s (NaT when unknown); each
    table has ``CLAIM_COLUMNS`` (``actions``: ``ACTION_SUMMARY_COLUMNS``) and every row the
    finding and evidence ids behind it; the scalar claims carry theirs in ``*_findings`` /
    ``*_events``."""

    cluster: str
    what_happened: str
    what_happened_findings: tuple[str, ...]
    first_activity: pd.Timestamp
    last_activity: pd.Timestamp
    dwell: pd.Timedelta
    evidence_end: pd.Timestamp
    when_findings: tuple[str, ...]
    patient_zero: str | None  # pod ns/name, service account ns/name or user name
    patient_zero_kind: str | None  # pod, service_account or user
    came_from: str | None  # the outside address it was reached or used from
    entry: str  # how the attacker got in, in words
    entry_how: str  # the entry finding in a few words, with its technique
    entry_finding_id: str | None
    patient_zero_events: tuple[str, ...]
    addresses: pd.DataFrame
    identities: pd.DataFrame
    pods: pd.DataFrame
    nodes: pd.DataFrame
    exposed: int  # nodes of the graph whose credentials were within reach, not shown used
    persistence: pd.DataFrame
    data: pd.DataFrame
    actions: pd.DataFrame
    attack_finding_ids: tuple[str, ...]


def executive_summary(
    case: Case,
    *,
    findings: pd.DataFrame | None = None,
    graph: nx.MultiDiGraph | None = None,
    actions: pd.DataFrame | None = None,
) -> Summary:
    """The summary of ``case``. ``findings`` default to the case's saved findings (detection is
    run, unsaved, when there are none); ``graph`` to ``lateral_movement(case)``; ``actions`` to
    the remediation checklist (``Remediation(case).actions()``), whose first five are shown."""
    if findings is None:
        findings = case.findings()
        if findings.empty:
            findings = detect(case, save=False)
    # the plan computes the scope exactly as the checklist does (the case's networks, the
    # findings, pods made by hand): the summary and the checklist speak of the same attack
    plan = Remediation(case, findings=findings, graph=graph)
    graph, scope = plan.graph, plan.scope
    if actions is None:
        actions = plan.actions()
    f = findings[findings["kind"] == "finding"] if "kind" in findings.columns else findings
    held = scope.held
    addresses = _addresses(plan.attacker_ips(), f, graph, scope_sources=scope.sources, held=held)
    attack = f[_attack_mask(f, held, set(addresses["item"]))].sort_values("time", kind="stable")
    zero = _patient_zero(f, graph, plan, held)
    persistence = _persistence(plan, attack)
    data = _data(scope.paths, attack)
    first, last, when_ids = _when(attack, scope.paths)
    story, story_ids = _what_happened(attack, zero, held, persistence)
    return Summary(
        cluster=str(case.cluster or case.path.name),
        what_happened=story,
        what_happened_findings=story_ids,
        first_activity=first,
        last_activity=last,
        dwell=last - first if pd.notna(first) and pd.notna(last) else pd.NaT,
        evidence_end=_evidence_end(case),
        when_findings=when_ids,
        patient_zero=zero["entity"],
        patient_zero_kind=zero["kind"],
        came_from=zero["came_from"],
        entry=zero["entry"],
        entry_how=zero["how"],
        entry_finding_id=zero["finding_id"],
        patient_zero_events=zero["events"],
        addresses=addresses,
        identities=_held(scope.paths, ("sa", "user"), attack),
        pods=_held(scope.paths, ("pod",), attack),
        nodes=_held(scope.paths, ("node",), attack),
        exposed=len(scope.nodes("exposed")),
        persistence=persistence,
        data=data,
        actions=_top(actions),
        attack_finding_ids=tuple(str(i) for i in attack["finding_id"]),
    )


# ---------------------------------------------------------------------------- the claims


def _ids(values: Iterable[Any]) -> list[str]:
    """Evidence or finding ids, flattened, once each, in order."""
    out: dict[str, None] = {}
    for v in values:
        if v is None or (isinstance(v, float) and pd.isna(v)):
            continue
        if isinstance(v, str):
            out[v] = None
        else:
            out.update((str(x), None) for x in v if x is not None)
    return list(out)


def _attack_mask(f: pd.DataFrame, held: Mapping[str, Any], addresses: set[str]) -> pd.Series:
    """The findings that are the attack's: about a pod, node or identity the attacker held (from
    the time they held it), by an identity they held, or naming one of their addresses. A
    scanner, a backup job or an SRE's exec in the same evidence are not."""
    if f.empty:
        return pd.Series(False, index=f.index)
    since = {n: (pd.Timestamp(t) if pd.notna(t) else None) for n, t in held.items()}
    time = pd.to_datetime(f["time"], utc=True)

    def held_then(nodes: pd.Series) -> pd.Series:
        start = nodes.map(lambda n: since.get(n, pd.NaT) if n in since else None)
        known = nodes.isin(set(since))
        start = pd.to_datetime(start.where(known), utc=True)
        return known & (start.isna() | (time >= start - SKEW))

    pods = node_ids.pods(f["namespace"].astype("string"), f["pod"].astype("string"))
    users = f["user"].astype("string").fillna("")
    acting = pd.Series([node_ids.identity(u) if u else "" for u in users], index=f.index)
    entity = pd.Series(
        [
            node_ids.node(str(e))
            if t == "node"
            else (node_ids.entity(t, str(e)) if t in ("pod", "service_account", "user") else "")
            for t, e in zip(f["entity_type"], f["entity"])
        ],
        index=f.index,
    )
    mask = held_then(pods.fillna("")) | held_then(acting) | held_then(entity)
    for column in ("source_ip", "destination_ip"):
        if column in f.columns:
            mask |= f[column].isin(addresses)
    return mask.fillna(False).astype(bool)


def _addresses(
    ips: Iterable[str],
    f: pd.DataFrame,
    graph: nx.MultiDiGraph,
    *,
    scope_sources: list[str],
    held: Mapping[str, Any],
) -> pd.DataFrame:
    """The attacker's outside addresses (remediation's: the ways in, where held credentials were
    used from, where the attack's pods called out), each with what it did and the ids behind it."""
    rows = []
    for ip in ips:
        node = node_ids.ip(ip)
        named = f[(f["source_ip"] == ip) | (f["destination_ip"] == ip)].sort_values("time", kind="stable")
        into = [
            d
            for _, v, d in (graph.out_edges(node, data=True) if node in graph else [])
            if d.get("observed") and (v in held)
        ]
        out_of = [
            d
            for u, _, d in (graph.in_edges(node, data=True) if node in graph else [])
            if d.get("observed") and u in held
        ]
        # flows from an address to what the attacker held may be replies (a mining pool answering):
        # it reached in when it is a way in, acted as an identity, or a finding says it sent
        came_in = (
            node in scope_sources
            or any(not str(d["type"]).startswith("flow") for d in into)
            or bool((named["source_ip"] == ip).any())
        )
        contacted = bool(out_of) or bool((named["destination_ip"] == ip).any())
        role = " and ".join(w for w, on in (("reached in", came_in), ("contacted", contacted)) if on) or "attack"
        times = [d["first_seen"] for d in into + out_of] + list(named["time"])
        rows.append(
            {
                "item": ip,
                "kind": role,
                "time": min(pd.Timestamp(t) for t in times) if times else pd.NaT,
                "detail": "; ".join(dict.fromkeys(_label(r) for r in named.itertuples(index=False)))
                or ", ".join(dict.fromkeys(str(d["type"]) for d in into + out_of)),
                "finding_ids": _ids(named["finding_id"]),
                "event_ids": _ids(d.get("event_ids", []) for d in into + out_of)[:20],
            }
        )
    return _frame(rows).sort_values("time", kind="stable", na_position="last").reset_index(drop=True)


def _held(paths: pd.DataFrame, kinds: tuple[str, ...], attack: pd.DataFrame) -> pd.DataFrame:
    """The nodes of ``kinds`` the attacker held (a way in, or reached), in the order they fell,
    with how (the edge that reached them) and the ids behind it: that edge's evidence (or, for a
    hop the configuration implies — the token a pod they made mounts, the pods their CronJob
    ran — the evidence of the hop before it), the attack's findings about them or sharing it."""
    p = paths[paths["how"].isin([SOURCE, REACHED]) & paths["node"].map(lambda n: node_ids.is_a(n, *kinds))]
    about = _about(attack)
    rows = []
    for r in p.itertuples(index=False):
        via = (
            f"{r.via} from {node_ids.label(r.parent)}"
            if isinstance(r.parent, str)
            else "a foothold: held from the start"
        )
        events = _evidence(paths, r.node)
        # findings sharing evidence only when it is the hop's own: the pods a CronJob ran share
        # the CronJob's creation, not the findings about it
        own = _sharing(attack, events) if _ids([r.event_ids]) else []
        fids = _ids([about.get(r.node, []), own])
        mine = attack[attack["finding_id"].astype(str).isin(fids)]
        rows.append(
            {
                "item": node_ids.label(r.node),
                "kind": node_ids.kind(r.node),
                # a way in was held from before the scope's first hop: its first finding says when
                "time": r.reached if pd.notna(r.reached) or mine.empty else mine["time"].min(),
                "detail": via,
                "finding_ids": fids,
                "event_ids": events or _ids(mine["event_ids"])[:20],
            }
        )
    return _frame(rows)


def _evidence(paths: pd.DataFrame, node: str) -> list[str]:
    """The evidence of the hop that reached ``node``; for a hop with none of its own, the
    nearest one before it on the path."""
    parents = dict(zip(paths["node"], paths["parent"]))
    events = dict(zip(paths["node"], paths["event_ids"]))
    seen = set()
    while isinstance(node, str) and node not in seen:
        seen.add(node)
        ids = _ids([events.get(node)])
        if ids:
            return ids[:20]
        node = parents.get(node)
    return []


def _sharing(attack: pd.DataFrame, events: list[str]) -> list[str]:
    """The ids of the attack's findings whose evidence holds one of ``events``."""
    wanted = set(events)
    if not wanted or attack.empty:
        return []
    return [
        str(fid)
        for fid, ids in zip(attack["finding_id"], attack["event_ids"])
        if ids is not None and wanted.intersection(str(i) for i in ids)
    ]


def _about(attack: pd.DataFrame) -> dict[str, list[str]]:
    """Node id → the ids of the attack's findings about it (its pod, its identity acting, the
    node it names)."""
    out: dict[str, list[str]] = {}
    for r in attack.itertuples(index=False):
        keys = set()
        if isinstance(r.namespace, str) and isinstance(r.pod, str):
            keys.add(node_ids.pod(r.namespace, r.pod))
        if isinstance(r.user, str) and r.user:
            keys.add(node_ids.identity(r.user))
        if r.entity_type == "node":
            keys.add(node_ids.node(str(r.entity)))
        elif r.entity_type in ("pod", "service_account", "user"):
            keys.add(node_ids.entity(r.entity_type, str(r.entity)))
        for k in keys:
            out.setdefault(k, []).append(str(r.finding_id))
    return out


def _patient_zero(
    f: pd.DataFrame, graph: nx.MultiDiGraph, plan: Remediation, held: Mapping[str, Any]
) -> dict[str, Any]:
    """The way in: the findings' best candidate the attacker is known to have held (a pod, or an
    identity used from outside), else the graph's; its entry finding, its outside address and
    the evidence of how it was reached."""
    none = {"entity": None, "kind": None, "came_from": None, "finding_id": None, "events": (), "how": ""}
    ranked = findings_patient_zero(f, networks=plan.networks, made=made_by_hand(plan.case))
    ranked = ranked[[node_ids.entity(t, str(e)) in held for t, e in zip(ranked["entity_type"], ranked["entity"])]]
    if ranked.empty:
        ranked = graph_patient_zero(graph, networks=plan.networks)
        ranked = ranked[[node_ids.entity(t, str(e)) in held for t, e in zip(ranked["entity_type"], ranked["entity"])]]
    if ranked.empty:
        return {
            **none,
            "entry": "no way in found: no finding or observed edge leads from outside to what the attacker held",
        }
    z = ranked.iloc[0]
    node = node_ids.entity(z["entity_type"], str(z["entity"]))
    came_from = z["came_from"] if isinstance(z["came_from"], str) else None
    path = plan.scope.paths[plan.scope.paths["node"] == node]
    if (
        came_from is None
        and len(path)
        and isinstance(path["parent"].iloc[0], str)
        and node_ids.is_a(path["parent"].iloc[0], "ip")
    ):
        came_from = node_ids.label(path["parent"].iloc[0])
    fid = z["finding_id"] if isinstance(z["finding_id"], str) else None
    first = f[f["finding_id"] == fid].head(1)
    events = _ids(list(first["event_ids"]) + (list(path["event_ids"]) if len(path) else []))
    what = {"pod": "pod", "service_account": "service account", "user": "user"}[z["entity_type"]]
    if z["entity_type"] == "pod":
        how = _label(first.iloc[0]) if len(first) else "control moved on from it first"
        entry = f"{how} in {what} {z['entity']}" + (f", reached from {came_from}" if came_from else "")
    else:
        entry = f"the credential of {what} {z['entity']} used from outside" + (
            f" address {came_from}" if came_from else ""
        )
        if len(first):
            entry += f" ({_label(first.iloc[0])})"
    tech = (
        " / ".join(v for v in (first["technique_id"].iloc[0], first["attack_id"].iloc[0]) if isinstance(v, str) and v)
        if len(first)
        else ""
    )
    return {
        "how": (_label(first.iloc[0]) if len(first) else str(z["reason"])) + (f" [{tech}]" if tech else ""),
        "entity": str(z["entity"]),
        "kind": str(z["entity_type"]),
        "came_from": came_from,
        "finding_id": fid,
        "events": tuple(events[:20]),
        "entry": entry,
    }


def _persistence(plan: Remediation, attack: pd.DataFrame) -> pd.DataFrame:
    """What the attacker left behind: the lasting objects their identities created (workloads,
    webhooks, bindings, roles, service accounts, token Secrets, certificates), static pods a
    node they held registered, workloads they changed after taking an identity, and the attack's
    Persistence findings about things the API server does not hold (a node's crontab, a static
    pod manifest)."""
    held = plan.scope.held
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for o in attacker_objects(plan.graph, plan.scope.paths, created=plan.created()):
        resource = "certificatesigningrequests" if o["resource"] == "csr" else str(o["resource"])
        if resource not in PERSISTENT_RESOURCES and "webhook" not in resource:
            continue
        ns = o["namespace"] if isinstance(o["namespace"], str) else ""
        key = (resource, ns, str(o["name"]))
        if key in rows:
            continue
        rows[key] = {
            "item": f"{ns}/{o['name']}" if ns else str(o["name"]),
            "kind": resource,
            "time": _edge_time(plan.graph, o["by"], o["target"]),
            "detail": f"created by {node_ids.label(o['by'])}",
            "finding_ids": _ids([_matching(attack, ns, str(o["name"])), _sharing(attack, _ids([o["events"]]))]),
            "event_ids": _ids([o["events"]]),
        }
    for u, v, d in plan.graph.edges(data=True):
        if not d.get("observed") or u not in held:
            continue
        since = held[u]
        if pd.notna(since) and d["first_seen"] < since - SKEW:
            continue  # what the identity's owner did before the attacker held it
        if d["type"] == "static_pod":
            kind, detail = "static pod", f"registered by {node_ids.label(u)}"
        elif d["type"] == "patch" and node_ids.is_a(v, "workload"):
            kind, detail = "workload changed", f"patched by {node_ids.label(u)} (image or spec swapped)"
        else:
            continue
        ns, name = _split(node_ids.label(v))
        key = (kind, ns, name)
        if key not in rows:
            rows[key] = {
                "item": node_ids.label(v),
                "kind": kind,
                "time": d["first_seen"],
                "detail": detail,
                "finding_ids": _ids([_matching(attack, ns, name), _sharing(attack, _ids([d.get("event_ids", [])]))]),
                "event_ids": _ids([d.get("event_ids", [])]),
            }
    # persistence the API server does not hold: only a finding shows it
    shown = {i for r in rows.values() for i in r["finding_ids"]}
    # (a finding about an identity — "RBAC change followed by a workload write" — is about the
    # objects listed above, not one more thing left behind)
    loose = attack[
        (attack["tactic"] == "Persistence")
        & ~attack["entity_type"].isin(["service_account", "user"])
        & ~attack["finding_id"].astype(str).isin(shown)
    ]
    for (rule, entity), g in loose.groupby(["rule_id", "entity"], sort=False, dropna=False):
        r = g.iloc[0]
        rows[("finding", str(rule), str(entity))] = {
            "item": str(entity),
            "kind": "finding",
            "time": g["time"].min(),
            "detail": _label(r),
            "finding_ids": _ids(g["finding_id"]),
            "event_ids": _ids(g["event_ids"])[:20],
        }
    return _frame(sorted(rows.values(), key=lambda r: (pd.isna(r["time"]), r["time"] if pd.notna(r["time"]) else 0)))


def _data(paths: pd.DataFrame, attack: pd.DataFrame) -> pd.DataFrame:
    """The data the attacker touched: the secrets they read (or made), per the scope, and the
    attack's exfiltration and collection findings."""
    rows = []
    secrets = paths[paths["how"].isin([SOURCE, REACHED]) & paths["node"].map(lambda n: node_ids.is_a(n, "secret"))]
    for r in secrets.itertuples(index=False):
        label = node_ids.label(r.node)
        ns, name = _split(label)
        events = _evidence(paths, r.node)
        rows.append(
            {
                "item": "every secret it could list"
                if label == "*/*"
                else (f"every secret in {ns}" if name == "*" else label),
                "kind": "secret read" if r.via == "read_secret" else f"secret ({r.via})",
                "time": r.reached,
                "detail": f"by {node_ids.label(r.parent)}" if isinstance(r.parent, str) else "",
                "finding_ids": _ids([_sharing(attack, events), _matching(attack, ns, name) if name != "*" else []]),
                "event_ids": events,
            }
        )
    taken = attack[attack["tactic"].isin(DATA_TACTICS)]
    for _, g in taken.groupby(["rule_id", "entity"], sort=False, dropna=False):
        r = g.iloc[0]
        target = ", ".join(dict.fromkeys(str(x) for x in g["destination_ip"].dropna()))
        rows.append(
            {
                "item": str(r["entity"]),
                "kind": str(r["tactic"]).lower(),
                "time": g["time"].min(),
                "detail": _label(r) + (f" to {target}" if target else ""),
                "finding_ids": _ids(g["finding_id"]),
                "event_ids": _ids(g["event_ids"])[:20],
            }
        )
    return _frame(rows)


def _when(attack: pd.DataFrame, paths: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp, tuple[str, ...]]:
    """First and last attacker activity: the attack's findings (their start and end) and the
    times the scope says each node fell; with the ids of the first and last finding."""
    held = paths[paths["how"].isin([SOURCE, REACHED])]
    starts = list(pd.to_datetime(attack["time"], utc=True)) + list(pd.to_datetime(held["reached"], utc=True).dropna())
    ends = list(pd.to_datetime(attack["time_end"].fillna(attack["time"]), utc=True)) + starts
    if not starts:
        return pd.NaT, pd.NaT, ()
    ids = []
    if len(attack):
        ids = [
            str(attack["finding_id"].iloc[0]),
            str(attack.loc[attack["time_end"].fillna(attack["time"]).idxmax(), "finding_id"]),
        ]
    return min(starts), max(ends), tuple(dict.fromkeys(ids))


def _what_happened(
    attack: pd.DataFrame,
    zero: Mapping[str, Any],
    held: Mapping[str, Any],
    persistence: pd.DataFrame,
) -> tuple[str, tuple[str, ...]]:
    """Two sentences from the kill chain, from the phases found: how they got in (after any
    reconnaissance), then how they climbed, what they took, what they left and what they came
    for; with the ids of the findings quoted."""
    if attack.empty and zero["entity"] is None:
        return "No attack found: no finding is tied to a way in from outside the cluster.", ()
    used: list[str] = []
    recon = attack[attack["kill_chain_phase"] == "Reconnaissance"]
    entry = _lower(zero["entry"]) if zero["entity"] is not None else "a way in the evidence does not show"
    entered = attack.loc[attack["finding_id"].astype(str) == str(zero["finding_id"]), "time"]
    at = f" at {_utc(entered.iloc[0])}" if len(entered) else ""
    if len(recon):
        used.append(str(recon["finding_id"].iloc[0]))
        first = f"The attacker scouted the cluster ({_lower(_label(recon.iloc[0]))}), then got in through {entry}{at}."
    else:
        first = f"The attacker got in through {entry}{at}."
    if zero["finding_id"]:
        used.append(str(zero["finding_id"]))
    after = attack[attack["finding_id"].astype(str) != str(zero["finding_id"])]
    parts = []
    climb = after[(after["kill_chain_phase"] == "Exploitation") | after["tactic"].isin(ESCALATION_TACTICS)]
    steps, ids = _distinct(climb, 3, order=lambda f: [f["severity"].map(SEVERITY_ORDER).fillna(9)])
    used += ids
    if steps:
        parts.append(f"escalated ({'; '.join(steps)})")
    nodes = [node_ids.label(n) for n in held if node_ids.is_a(n, "node")]
    idents = sum(node_ids.is_a(n, "sa", "user") for n in held)
    pods = sum(node_ids.is_a(n, "pod") for n in held)
    took = [_count(idents, "identity", "identities"), _count(pods, "pod", "pods")]
    if nodes:
        took.append(
            ("node " if len(nodes) == 1 else "nodes ") + ", ".join(nodes[:3]) + (" …" if len(nodes) > 3 else "")
        )
    parts.append("took " + _and(took))
    if len(persistence):
        kinds = list(dict.fromkeys(KINDS.get(str(k), str(k)) for k in persistence["kind"] if k != "finding"))
        left = ", ".join(kinds[:4]) if kinds else _count(len(persistence), "finding", "findings")
        parts.append(f"left persistence behind ({left})")
    c2 = after[after["kill_chain_phase"] == "Command & Control"]
    if len(c2):
        used.append(str(c2["finding_id"].iloc[0]))
        parts.append(f"kept a command channel ({_lower(_label(c2.iloc[0]))})")
    goals = after[(after["kill_chain_phase"] == "Actions on Objectives") & after["tactic"].isin(OBJECTIVE_TACTICS)]
    aims, ids = _distinct(
        goals,
        3,
        order=lambda f: [
            f["tactic"].map({t: i for i, t in enumerate(OBJECTIVE_TACTICS)}),
            f["severity"].map(SEVERITY_ORDER),
        ],
    )
    used += ids
    if aims:
        parts.append(f"went for {'; '.join(aims)}")
    return f"{first} They {_and(parts)}.", tuple(dict.fromkeys(used))


SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
# resources as a person names them
KINDS = {
    "cronjobs": "CronJob",
    "jobs": "Job",
    "daemonsets": "DaemonSet",
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "replicasets": "ReplicaSet",
    "mutatingwebhookconfigurations": "mutating webhook",
    "validatingwebhookconfigurations": "validating webhook",
    "clusterrolebindings": "ClusterRoleBinding",
    "rolebindings": "RoleBinding",
    "clusterroles": "ClusterRole",
    "roles": "Role",
    "serviceaccounts": "ServiceAccount",
    "secrets": "Secret",
    "certificatesigningrequests": "certificate (CSR)",
}


def _distinct(f: pd.DataFrame, n: int, *, order: Any) -> tuple[list[str], list[str]]:
    """``n`` distinct labels of ``f`` — the first by ``order`` (keys computed from ``f``; a
    generic sensor alert after a specific finding), shown in time order — and the id of the
    finding behind each."""
    if f.empty:
        return [], []
    keys = [k.fillna(9).to_numpy() for k in order(f)]
    generic = (f["rule_id"] == "rt-falco-alert").to_numpy()
    ranked = f.assign(**{f"_k{i}": k for i, k in enumerate(keys)}, _g=generic).sort_values(
        [*(f"_k{i}" for i in range(len(keys))), "_g", "time"], kind="stable"
    )
    seen: dict[str, tuple[Any, str]] = {}
    for r in ranked.itertuples(index=False):
        label = _lower(_label(r))
        if label not in seen:
            seen[label] = (r.time, str(r.finding_id))
        if len(seen) == n:
            break
    chosen = sorted(seen.items(), key=lambda x: x[1][0])
    return [label for label, _ in chosen], [fid for _, (_, fid) in chosen]


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _top(actions: pd.DataFrame) -> pd.DataFrame:
    """The checklist's first five, in its order, with their ids."""
    top = actions.head(5).reindex(columns=ACTION_SUMMARY_COLUMNS)
    for column in ("finding_ids", "event_ids"):
        top[column] = [_ids([v]) if v is not None else [] for v in top[column]]
    return top.reset_index(drop=True)


def _evidence_end(case: Case) -> pd.Timestamp:
    """The last event of the case: is the attacker's last activity the evidence's last word?"""
    tables = case.manifest.get("tables", {})
    present = [t for t in ("audit", "runtime", "flows") if tables.get(t, {}).get("rows")]
    if not present:
        return pd.NaT
    query = " UNION ALL ".join(f"SELECT max(time) AS t FROM {t}" for t in present)
    ends = pd.to_datetime(case.sql(query)["t"], utc=True).dropna()
    return ends.max() if len(ends) else pd.NaT


# ---------------------------------------------------------------------------- small helpers


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    out["time"] = pd.to_datetime(out["time"], utc=True)
    return out


def _matching(attack: pd.DataFrame, ns: str, name: str) -> list[str]:
    """The attack's findings whose entity names the object ``ns``/``name`` (``cronjobs/ns/name``,
    ``clusterrolebindings/name``, ``secrets/ns/name`` …)."""
    if attack.empty:
        return []
    entity = attack["entity"].astype("string").fillna("")
    last = entity.str.rsplit("/", n=1).str[-1]
    hit = (last == name) & (entity.str.contains(f"{ns}/", regex=False) if ns else True)
    return _ids(attack.loc[hit.fillna(False).astype(bool), "finding_id"])


def _edge_time(graph: nx.MultiDiGraph, u: str, v: str) -> Any:
    times = [d["first_seen"] for d in graph.get_edge_data(u, v, default={}).values() if d.get("observed")]
    return min(times) if times else pd.NaT


def _split(label: str) -> tuple[str, str]:
    """``ns/name`` (or ``ns/resource/name``) → (ns, name); a cluster-scoped name → ('', name)."""
    parts = label.split("/")
    return (parts[0], parts[-1]) if len(parts) > 1 else ("", label)


_FALCO = re.compile(r"Falco: (.+?) in \S+:")


def _label(r: Any) -> str:
    """What a finding says, in a few words: its title, or for a generic sensor alert the rule
    that fired."""
    get = r.get if isinstance(r, (dict, pd.Series)) else lambda k, d=None: getattr(r, k, d)
    title = str(get("title", "") or "")
    summary = get("summary", None)
    if get("rule_id") == "rt-falco-alert" and isinstance(summary, str):
        m = _FALCO.match(summary)
        if m:
            return f"Falco: {m.group(1)}"
    return title


def _lower(text: str) -> str:
    """A label inside a sentence: its first letter lowered, unless it is a name (``Falco: …``,
    ``NodePort …``)."""
    keep = text.startswith("Falco") or text[:2] == text[:2].upper()
    return text if keep else text[:1].lower() + text[1:]


def _upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _utc(value: Any) -> str:
    """A time as compact UTC text, to the second: ``2026-03-10 10:10:00Z`` ('' when unknown)."""
    if value is None or pd.isna(value):
        return ""
    t = pd.Timestamp(value)
    t = t.tz_convert("UTC") if t.tzinfo is not None else t
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


def _span(delta: Any) -> str:
    """A duration in days, hours and minutes ('' when unknown)."""
    if delta is None or pd.isna(delta):
        return ""
    minutes = int(pd.Timedelta(delta).total_seconds() // 60)
    d, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    text = " ".join(f"{v} {u}" for v, u in ((d, "d"), (h, "h"), (m, "min")) if v)
    return text or "under a minute"


# ---------------------------------------------------------------------------- the page

_STYLE = (
    "<style>"
    ".k8sf-summary{max-width:1240px;box-sizing:border-box;font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif}"
    ".k8sf-summary h2{margin:0 0 .3em;font-size:1.3em}"
    ".k8sf-summary .k8sf-what{margin:0 0 .6em;font-size:1.05em}"
    ".k8sf-summary dl{display:grid;grid-template-columns:13em minmax(0,1fr);gap:.35em 1em;margin:0}"
    ".k8sf-summary dt{font-weight:600}"
    ".k8sf-summary dd{margin:0;overflow-wrap:anywhere}"
    ".k8sf-summary ol{margin:0;padding-left:1.6em}"
    ".k8sf-summary .k8sf-ids{color:#666;font-size:.8em}"
    ".k8sf-summary .k8sf-none{color:#555;font-style:italic}"
    ".k8sf-summary code{font-size:.9em}"
    "</style>"
)


def summary_html(summary: Summary, *, links: Mapping[str, str] | None = None) -> str:
    """The summary as one screen of escaped HTML: what happened, then a two-column list of the
    claims, each linked to the report section with its evidence (``#findings``,
    ``#patient-zero``, ``#lateral-movement``, ``#checklist``; ``links`` maps a section to another
    href, e.g. ``{"checklist": "03_remediation_checklist.html#checklist"}``) and carrying its
    finding and evidence ids."""
    href = {name: f"#{name}" for name in SECTIONS} | dict(links or {})
    s = summary

    def link(section: str, text: str = "evidence") -> str:
        return f' <a href="{escape(href[section])}">{escape(text)} ›</a>'

    def ids(findings: Iterable[str] = (), events: Iterable[str] = ()) -> str:
        f, e = list(findings), list(events)
        bits = []
        if f:
            bits.append("findings " + ", ".join(f[:3]) + (f" +{len(f) - 3}" if len(f) > 3 else ""))
        if e:
            bits.append("events " + ", ".join(e[:3]) + (f" +{len(e) - 3}" if len(e) > 3 else ""))
        return f' <span class="k8sf-ids">[{escape("; ".join(bits))}]</span>' if bits else ""

    def items(frame: pd.DataFrame, section: str, none: str, *, show_kind: bool = False) -> str:
        if frame.empty:
            return f'<span class="k8sf-none">{escape(none)}</span>'
        shown = []
        for r in frame.head(SHOWN).itertuples(index=False):
            kind = f"{KINDS.get(str(r.kind), str(r.kind))} " if show_kind else ""
            when = f", {_utc(r.time)}" if pd.notna(r.time) else ""
            tip = f"{r.detail} — findings: {', '.join(r.finding_ids) or '-'}; events: {', '.join(r.event_ids) or '-'}"
            shown.append(
                f'<span title="{escape(tip)}" data-findings="{escape(" ".join(r.finding_ids))}" '
                f'data-events="{escape(" ".join(r.event_ids))}">{escape(kind)}<b>{escape(r.item)}</b> '
                f"<small>({escape(_first_sentence(r.detail, limit=90, cut=False))}{escape(when)})</small></span>"
            )
        more = f" · and {len(frame) - SHOWN} more" if len(frame) > SHOWN else ""
        everything_f = _ids(frame["finding_ids"])
        everything_e = _ids(frame["event_ids"])
        return " · ".join(shown) + escape(more) + link(section) + ids(everything_f, everything_e)

    when = "no attacker activity found"
    if pd.notna(s.first_activity):
        when = f"first {_utc(s.first_activity)}, last {_utc(s.last_activity)} — dwell {_span(s.dwell)}"
        if pd.notna(s.evidence_end):
            gap = s.evidence_end - s.last_activity
            when += (
                f"; the evidence ends {_utc(s.evidence_end)}, {_span(gap)} after the last activity"
                if gap > pd.Timedelta(minutes=1)
                else "; active until the evidence ends: assume the attacker is still in"
            )
    if s.patient_zero is not None:
        what = {"pod": "pod", "service_account": "service account", "user": "user"}.get(str(s.patient_zero_kind), "")
        origin = f" from {s.came_from}" if s.came_from else ""
        zero = (
            f"{escape(what)} <b>{escape(s.patient_zero)}</b>{escape(origin)} — way in: {escape(s.entry_how)}"
            + link("patient-zero")
            + ids([s.entry_finding_id] if s.entry_finding_id else [], s.patient_zero_events)
        )
    else:
        zero = f'<span class="k8sf-none">{escape(s.entry)}</span>'
    actions = "".join(
        f'<li value="{escape(r.step)}" data-action="{escape(r.action_id)}">{escape(_first_sentence(r.action))} '
        f"<small>[{escape(r.phase)} · <code>{escape(r.action_id)}</code>]</small></li>"
        for r in s.actions.itertuples(index=False)
    )
    rows = [
        ("When (UTC)", escape(when) + link("findings") + ids(s.when_findings)),
        ("Patient zero, way in", zero),
        ("Attacker addresses", items(s.addresses, "lateral-movement", "no outside address found")),
        ("Compromised identities", items(s.identities, "lateral-movement", "no identity shown used by the attacker")),
        ("Compromised pods", items(s.pods, "lateral-movement", "no pod shown compromised")),
        (
            "Compromised nodes",
            items(s.nodes, "lateral-movement", "no node shown taken")
            + (
                f' <span class="k8sf-ids">({escape(s.exposed)} more within reach, not shown used)</span>'
                if s.exposed
                else ""
            ),
        ),
        ("Persistence left behind", items(s.persistence, "findings", "No persistence found.", show_kind=True)),
        ("Data touched", items(s.data, "findings", "No secret read or data exfiltration found.", show_kind=False)),
        (
            "First five actions",
            (f"<ol>{actions}</ol>" if actions else '<span class="k8sf-none">no actions</span>')
            + link("checklist", "full checklist"),
        ),
    ]
    body = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return (
        f'<section class="k8sf-summary" id="summary">{_STYLE}'
        f"<h2>Executive summary — {escape(s.cluster)}</h2>"
        f'<p class="k8sf-what">{escape(s.what_happened)}{link("findings")}{ids(s.what_happened_findings)}</p>'
        f"<dl>{body}</dl></section>"
    )


def _first_sentence(text: Any, limit: int = 180, *, cut: bool = True) -> str:
    """An action's first sentence (``cut``) within ``limit`` characters, for the screen (the
    checklist and the tip over each item have the rest)."""
    t = str(text or "")
    end = re.search(r"[.:](\s|$)", t) if cut else None
    t = t[: end.start() + 1] if end else t
    return t if len(t) <= limit else t[: limit - 1] + "…"
