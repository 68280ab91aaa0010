"""Patient zero: the ways in, ranked — from a case's findings (``patient_zero``), from findings
alone (``findings_patient_zero``) or from the lateral-movement graph (``graph_patient_zero``).
Below both the kill chain (its narrative names patient zero) and the attack's scope (its sources
are the graph's ways in)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

import pandas as pd

from .. import node_ids
from ..context.networks import Network, cluster_networks, external_mask, is_external
from ..detect.facts import is_system
from ..frames import clock
from .graph import CONTROL_EDGES, lateral_movement

if TYPE_CHECKING:
    import networkx as nx

    from ..case import Case

PATIENT_ZERO_COLUMNS = [
    "rank",
    "entity",
    "namespace",
    "pod",
    "first_seen",
    "came_from",
    "reason",
    "finding_id",
    "entity_type",
]
FOLLOW_UP = pd.Timedelta(
    minutes=30
)  # how soon a high-severity finding must follow a pod's first one to make it a strong candidate
# the kill-chain phases of a foothold: what an attacker does on the way in
FOOTHOLD_PHASES = ("Delivery", "Exploitation", "Installation", "Command & Control")


def patient_zero(
    case: Case, *, networks: Iterable[Network] | None = None, made: Collection[str] | None = None
) -> pd.DataFrame:
    """Candidates for the way in, best first, with the reason. Two shapes of entry:

    - a pod (``entity_type`` pod) whose earliest finding is high or critical and in a foothold
      phase (delivery, exploitation, installation, C2); ``came_from`` is the outside address a
      finding about that pod names as its source, if any;
    - an identity (``entity_type`` user or service_account) that findings show acting from an
      outside address — a leaked kubeconfig or token used with no exploited pod (MS-TA9001,
      ATT&CK T1078); ``came_from`` is that address; strong when one of those findings is high
      or critical or in a foothold phase.

    Strong candidates rank first, each group by time. An address inside the cluster or its
    private network (a node, a VPC address; ``networks``, by default the case's own) is never
    ``came_from``, and a finding about an address is never a pod. Ranked from the case's saved
    findings (``findings_patient_zero``); before detection has run, from its lateral-movement
    graph (``graph_patient_zero``). Pods made by hand during the evidence (``made``, by default
    ``made_by_hand``) rank after the others."""
    f = case.findings()
    nets = list(networks) if networks is not None else cluster_networks(case.context("nodes"))
    if f.empty and not case.manifest.get("detections"):  # detection has not run: what the graph shows
        return graph_patient_zero(lateral_movement(case, possible=False), networks=nets)
    return findings_patient_zero(f, networks=nets, made=made_by_hand(case) if made is None else made)


def made_by_hand(case: Case) -> set[str]:
    """``ns/name`` of the pods created during the evidence by a person, a service account that
    is not a workload controller, or a kubelet (a static pod): an attacker's tools are made this
    way, after the way in, so such a pod is never ranked before one a controller runs."""
    creates = case.sql(
        "SELECT DISTINCT user, object_namespace, object_name FROM audit WHERE resource = 'pods' AND verb = 'create' "
        "AND subresource IS NULL AND (response_code IS NULL OR response_code < 400) AND object_name IS NOT NULL"
    )
    by_hand = ~is_system(creates["user"]) | creates["user"].fillna("").str.startswith(node_ids.NODE_USER)
    return set(
        creates.loc[by_hand, "object_namespace"].astype(str) + "/" + creates.loc[by_hand, "object_name"].astype(str)
    )


def findings_patient_zero(
    findings: pd.DataFrame, *, networks: Iterable[Network] = (), made: Collection[str] = frozenset()
) -> pd.DataFrame:
    """Candidates for the way in, best first, ranked from findings (or a timeline): the ranking
    ``patient_zero`` makes of a case's findings, with the cluster's ``networks`` given (none:
    only private addresses are inside) and the pods ``made`` by hand (``ns/name``)."""
    f = findings
    networks = list(networks)
    if "kind" in f.columns:
        f = f[f["kind"] == "finding"]
    if f.empty or not {"entity_type", "entity", "time", "severity", "kill_chain_phase"} <= set(f.columns):
        return pd.DataFrame(columns=PATIENT_ZERO_COLUMNS)
    strong = f["severity"].isin(["high", "critical"]) & f["kill_chain_phase"].isin(FOOTHOLD_PHASES)
    f = f.assign(_strong=strong).sort_values(["_strong", "time"], ascending=[False, True], kind="stable")
    outside = (
        external_mask(f["source_ip"].astype("string"), networks)
        if "source_ip" in f.columns
        else pd.Series(False, index=f.index)
    )
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
            soon = g[g["severity"].isin(["high", "critical"]) & (g["time"] <= start + FOLLOW_UP)].sort_values(
                "time", kind="stable"
            )
            if len(soon):
                first = first.copy()
                first["_strong"] = True
                kind = f"first finding at {clock(start)}, then {soon['title'].iloc[0]} ({soon['severity'].iloc[0]}) at {clock(soon['time'].iloc[0])}; first"
        rows.append(
            {
                "entity_type": "pod",
                "entity": entity,
                "namespace": first["namespace"],
                "pod": first["pod"],
                "first_seen": g["time"].min(),
                "came_from": origin.iloc[0] if len(origin) else None,
                "finding_id": first["finding_id"],
                "_strong": bool(first["_strong"]),
                "_t": first["time"],
                "_made": entity in made,
                "reason": f"{kind}: {first['title']} ({first['kill_chain_phase']}, {first['severity']}) at {clock(first['time'])}"
                + (
                    "; created by hand during the evidence (an attacker's tool, not the way in)"
                    if entity in made
                    else ""
                ),
            }
        )
    # identities acting from outside (whatever the finding is about: a secret read, a workload created)
    if "user" in f.columns:
        acting = f[
            outside & f["user"].notna() & (f["user"] != "")
        ]  # system:anonymous too: unauthenticated access is a way in
        for user, g in acting.groupby("user", sort=False):
            g = g.sort_values("time", kind="stable")
            first = g.iloc[0]
            is_sa = str(user).startswith(node_ids.SA_USER)
            entity = str(user).removeprefix(node_ids.SA_USER).replace(":", "/", 1) if is_sa else str(user)
            strong_any = bool(
                (g["severity"].isin(["high", "critical"]) | g["kill_chain_phase"].isin(FOOTHOLD_PHASES)).any()
            )
            rows.append(
                {
                    "entity_type": "service_account" if is_sa else "user",
                    "entity": entity,
                    "namespace": entity.split("/", 1)[0] if is_sa else None,
                    "pod": None,
                    "first_seen": g["time"].min(),
                    "came_from": first["source_ip"],
                    "finding_id": first["finding_id"],
                    "_strong": strong_any,
                    "_t": first["time"],
                    "_made": False,
                    "reason": f"credential used from outside address {first['source_ip']}: {first['title']} ({first['kill_chain_phase']}, "
                    f"{first['severity']}) at {clock(first['time'])}, {len(g)} finding(s) from outside",
                }
            )
    if not rows:
        return pd.DataFrame(columns=PATIENT_ZERO_COLUMNS)
    out = (
        pd.DataFrame(rows)
        .sort_values(["_made", "_strong", "_t"], ascending=[True, False, True], kind="stable")
        .reset_index(drop=True)
    )
    out["rank"] = range(1, len(out) + 1)
    return out[PATIENT_ZERO_COLUMNS]


def graph_patient_zero(graph: nx.MultiDiGraph, *, networks: Iterable[Network] = ()) -> pd.DataFrame:
    """The ways in, ranked: (1) pods that outside addresses reached over the network and from
    which control then moved on (a token used, a pod exec'd, the host escaped), earliest onward
    move first — ``came_from`` is the outside address whose flows reached the pod last before
    that move (an address that also touched other nodes — a scanner — preferred); (2)
    identities (``entity_type`` user or service_account) whose credential was used from an
    outside address — a leaked kubeconfig or token, no exploited pod (MS-TA9001/T1078 valid
    accounts); (3) pods control moved on from with no outside address known. An address
    inside the cluster or its private network (a node, a load balancer's VPC address) is
    never where the attack came from."""
    nets = tuple(networks)

    def outside(node: str) -> bool:
        return node_ids.is_a(node, "ip") and is_external(node_ids.label(node), nets)

    rows = []
    for pod in (n for n, k in graph.nodes(data="kind") if k == "pod"):
        onward = [
            (d["first_seen"], v, d)
            for _, v, d in graph.out_edges(pod, data=True)
            if d.get("observed") and d["type"] in CONTROL_EDGES
        ]
        if not onward:
            continue
        t, target, d = min(onward, key=lambda e: e[0])
        inbound = [
            (u, e)
            for u, _, e in graph.in_edges(pod, data=True)
            if e.get("observed") and e["type"] == "flow" and outside(str(u)) and e["first_seen"] <= t
        ]
        came_from, via = None, ""
        if inbound:
            u, e = max(
                inbound,
                key=lambda x: (
                    graph.out_degree(x[0]) > 1,
                    x[1]["last_seen"] if x[1]["last_seen"] <= t else x[1]["first_seen"],
                ),
            )
            came_from = node_ids.label(u)
            via = f"reached from {came_from} over the network at {clock(e['first_seen'])}, then "
        ns, name = node_ids.namespaced(pod)
        rows.append(
            {
                "entity_type": "pod",
                "entity": node_ids.label(pod),
                "namespace": ns,
                "pod": name,
                "first_seen": t,
                "came_from": came_from,
                "finding_id": None,
                "_group": 0 if inbound else 2,
                "reason": f"{via}{d['type']} → {target} at {clock(t)} (evidence {', '.join(d['event_ids'][:3])})",
            }
        )
    # an identity acting from an outside address: the credential left the cluster (or never was in it)
    for u, v, d in graph.edges(data=True):
        if not (
            d.get("observed")
            and outside(str(u))
            and node_ids.is_a(v, "sa", "user")
            and not str(d["type"]).startswith("flow")
        ):
            continue
        is_sa = node_ids.is_a(v, "sa")
        rows.append(
            {
                "entity_type": "service_account" if is_sa else "user",
                "entity": node_ids.label(v),
                "namespace": node_ids.parse(v).namespace if is_sa else None,
                "pod": None,
                "first_seen": d["first_seen"],
                "came_from": node_ids.label(u),
                "finding_id": None,
                "_group": 1,
                "reason": f"credential of {v} used from outside address {node_ids.label(u)} at {clock(d['first_seen'])}, {d.get('count', 0)} request(s) "
                f"(evidence {', '.join(d.get('event_ids', [])[:3])})",
            }
        )
    if not rows:
        return pd.DataFrame(columns=PATIENT_ZERO_COLUMNS)
    out = pd.DataFrame(rows).sort_values(["_group", "first_seen"], kind="stable")
    out = out.drop_duplicates(["entity_type", "entity"]).reset_index(
        drop=True
    )  # an identity used from several addresses: the first
    out["rank"] = range(1, len(out) + 1)
    return out[PATIENT_ZERO_COLUMNS]
