"""The rule model and the detection engine.

A rule is data plus a predicate: its id, title, severity, Threat Matrix technique, ATT&CK
technique, tactic, kill-chain phase and the table it reads, what it reads of the evidence
(``reads``: whole tables, the reduced rows, or only ``evidence.sql``), the flows it keeps
(``flow_rows``), and ``logic(evidence)`` that returns one row per *hit* (``time`` and
``event_ids``, optionally the entity, the actor, a summary, or a phase that overrides the
rule's default). The engine adds the rule's metadata, a stable ``finding_id`` and the
``findings`` schema; it never changes what a rule found.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ..bodies import UnreadableBodies
from ..case import Case
from ..context.enrich import enriched, enriched_chunks
from ..context.networks import (
    Network,
    cluster_networks,
    external_mask,
    interface_addresses,
    listening_sockets,
    reply_mask,
)
from ..errors import K8sForensicsError
from ..frames import frame_chunks, to_frame
from ..schema import CONTEXT_TABLES, FINDINGS, TABLES
from ..tactics import PHASES, TACTIC_PHASES

SEVERITIES = ("low", "medium", "high", "critical")


def tactic_name(tag: str) -> str | None:
    """A tactic from a rule tag: ``mitre_privilege_escalation`` (Falco) or
    ``attack.privilege-escalation`` (Sigma) → ``Privilege Escalation``; None if not a tactic."""
    words = tag.lower().removeprefix("mitre_").removeprefix("attack.").replace("-", " ").replace("_", " ")
    for name in TACTIC_PHASES:
        if name.lower() == words:
            return name
    return None


MAX_EVENT_IDS = 1000

# Knobs a rule may read; detect(settings=...) overrides them per run.
DEFAULT_SETTINGS: dict[str, Any] = {
    # the quiet start of the evidence that "never before" rules learn from
    "learning_window": dt.timedelta(hours=1),
    # a new outbound connection this soon after an exec/shell in the same pod is linked to it
    "exec_egress_window": dt.timedelta(minutes=10),
    # image registries considered trusted; None: those of pods running before the evidence starts
    "trusted_registries": None,
    # a source that reaches this many distinct address:port pairs in scan_window is scanning
    "scan_min_targets": 10,
    "scan_window": dt.timedelta(minutes=5),
    # periodic connections to one external endpoint: at least this many, this regular
    "beacon_min_connections": 4,
    "beacon_max_jitter": 0.25,
    # findings of one rule about one entity closer than this in time are one finding
    "session_gap": dt.timedelta(minutes=10),
    # a service-account token read from a Secret and then used within this time is linked to the read
    "token_secret_use_window": dt.timedelta(hours=24),
}


FLOW_COLUMNS_UNREAD = frozenset({"extra", "labels", "src_labels", "dst_labels"})
# no rule reads the raw record or the label maps of a flow: a third of its memory
FLOW_COLUMNS_READ = [c for c in TABLES["flows"].names if c not in FLOW_COLUMNS_UNREAD]
# no built-in rule reads these audit columns (Sigma rules may): without them the audit table
# takes ~40 % less memory (the annotations, user.extra, stages and source IP lists are Python objects)
AUDIT_COLUMNS_UNREAD = frozenset(
    {
        "response_object",
        "annotations",
        "user_extra",
        "stages",
        "stage_time",
        "source_ips",
        "audit_id",
        "evidence_id",
        "evidence_line",
    }
)
AUDIT_COLUMNS_READ = [c for c in TABLES["audit"].names if c not in AUDIT_COLUMNS_UNREAD]


class Evidence:
    """The tables rules read, each loaded (and enriched) once per detection run.

    Build it from a case (``Evidence.from_case(case)``) or from DataFrames for a script or a
    test (``Evidence(audit=df)``); a table not given is empty, or the case's when there is one.

    A case's tables can outgrow memory, so the built-in rules read them a chunk at a time
    (``flow_chunks()``, ``audit_chunks()``, ``runtime_chunks()``) and keep only what they need:
    the flow rules the rows their ``FlowRows`` keep (``flow_rows``), all in one pass over the
    flows; the audit and runtime rules the rows ``reduction.reduced`` keeps. ``evidence.audit``
    and the others load a whole table (a custom rule may read it); ``evidence.sql`` queries
    the case's Parquet and loads nothing.

    ``evidence.unreadable`` collects the bodies the rules could not read (``bodies.UnreadableBodies``);
    the evidences ``part`` and ``with_rows`` make share it."""

    def __init__(
        self,
        *,
        audit: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
        runtime: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
        flows: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
        context: Callable[[str], pd.DataFrame] | Mapping[str, pd.DataFrame] | None = None,
        settings: Mapping[str, Any] | None = None,
        case: Case | None = None,
        flow_columns: list[str] | None = None,
        audit_columns: list[str] | None = None,
        runtime_columns: list[str] | None = None,
        chunk_rows: int = 1_000_000,
        known_start: pd.Timestamp | None = None,
        unreadable: UnreadableBodies | None = None,
    ) -> None:
        self._sources = {"audit": audit, "runtime": runtime, "flows": flows}
        # the bodies (request/response objects) rules left unread: too large, too deep, not JSON
        self.unreadable = UnreadableBodies() if unreadable is None else unreadable
        # the *_chunks() methods read the case's tables (those columns of them) a chunk at a time
        self._case = case
        self._columns = {"audit": audit_columns, "runtime": runtime_columns, "flows": flow_columns}
        self.chunk_rows = chunk_rows
        self._known_start = known_start  # the evidence's start, when this holds only part of it
        self._context = context
        self._context_cache: dict[str, pd.DataFrame] = {}
        self._memo: dict[str, Any] = {}
        # what the flow rules keep of the flows (FlowRows → rows), and what the rules about to run will ask for
        self._flow_rows: dict[FlowRows, pd.DataFrame] = {}
        self._planned: dict[FlowRows, None] = {}
        # the event ids each row-local rule matched in the reduction's chunk pass (``for_rule``)
        self._rule_rows: dict[str, set[str]] = {}
        self._flows_of: Evidence | None = None  # the evidence that keeps this one's flow rows (``for_rule``)
        unknown = set(settings or {}) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValueError(f"unknown detection settings {sorted(unknown)}; known: {', '.join(DEFAULT_SETTINGS)}")
        self.settings: dict[str, Any] = {**DEFAULT_SETTINGS, **(settings or {})}

    @classmethod
    def from_case(
        cls,
        case: Case,
        *,
        settings: Mapping[str, Any] | None = None,
        chunk_rows: int = 1_000_000,
        audit_columns: list[str] | None = None,
        unreadable: UnreadableBodies | None = None,
    ) -> Evidence:
        """The ``audit_columns`` of the audit table (default: all of them), every runtime column,
        and every flow column but ``FLOW_COLUMNS_UNREAD``; nothing is read until a rule asks."""
        columns = FLOW_COLUMNS_READ
        return cls(
            audit=lambda: enriched(
                case, "audit", columns=audit_columns, max_rows=None
            ),  # detection reads every row on purpose
            runtime=lambda: enriched(case, "runtime", max_rows=None),
            flows=lambda: enriched(case, "flows", columns=columns, max_rows=None),
            context=case.context,
            settings=settings,
            case=case,
            flow_columns=columns,
            audit_columns=audit_columns,
            chunk_rows=chunk_rows,
            unreadable=unreadable,
        )

    @property
    def case(self) -> Case | None:
        """The case this evidence reads (``sql`` queries its Parquet), None for one made of frames."""
        return self._case

    def part(self, *, audit: pd.DataFrame | None = None, runtime: pd.DataFrame | None = None) -> Evidence:
        """An evidence of only these rows (a chunk: no case, no flows), with this one's context,
        settings, start and record of unreadable bodies."""
        return Evidence(
            audit=audit,
            runtime=runtime,
            context=self.context,
            settings=self.settings,
            known_start=self.start(),
            unreadable=self.unreadable,
        )

    def with_rows(
        self, *, audit: pd.DataFrame, runtime: pd.DataFrame, rule_rows: Mapping[str, set[str]] | None = None
    ) -> Evidence:
        """This evidence with these audit and runtime rows (the ones a reduction kept): its flows,
        case (``sql`` still queries the case's tables whole), context, settings, chunk size, start
        and record of unreadable bodies are this one's. ``rule_rows``: the event ids each
        row-local rule matched (``for_rule``)."""
        out = Evidence(
            audit=audit,
            runtime=runtime,
            flows=self._sources["flows"],
            context=self.context,
            settings=self.settings,
            case=self._case,
            flow_columns=self._columns["flows"],
            chunk_rows=self.chunk_rows,
            known_start=self.start(),
            unreadable=self.unreadable,
        )
        out._rule_rows = dict(rule_rows or {})
        return out

    def for_rule(self, rule: Rule) -> Evidence:
        """What ``rule`` runs on: for a row-local rule (``Rule.row_local``) whose matches the
        reduction recorded, only the audit and runtime rows it matched (its findings on them are
        its findings on every row kept); else this evidence. The flows kept and the context are
        shared, not read again."""
        ids = self._rule_rows.get(rule.id) if rule.row_local else None
        if ids is None:
            return self
        audit, runtime = self.audit, self.runtime
        out = self.with_rows(
            audit=audit[audit["event_id"].astype(str).isin(ids)],
            runtime=runtime[runtime["event_id"].astype(str).isin(ids)],
        )
        out._context_cache = self._context_cache
        # the flows are kept by this evidence, whose rows (every row kept) some FlowRows read
        # (the execs the egress rule anchors to): never by the rule's own few
        out._flows_of = self
        return out

    def reads_case(self, name: str) -> bool:
        """Table ``name`` is read from the case's Parquet: this evidence comes from a case, was not
        given the table as a frame, and has not loaded it whole."""
        return (
            self._case is not None and not isinstance(self._sources[name], pd.DataFrame) and name not in self.__dict__
        )

    def _load(self, name: str) -> pd.DataFrame:
        src = self._sources[name]
        frame = src() if callable(src) else src
        if frame is None:
            return to_frame(TABLES[name].arrow_schema.empty_table())
        return frame.reset_index(drop=True)

    @cached_property
    def audit(self) -> pd.DataFrame:
        """The whole audit table."""
        return self._load("audit")

    @cached_property
    def runtime(self) -> pd.DataFrame:
        """The whole runtime table."""
        return self._load("runtime")

    @cached_property
    def flows(self) -> pd.DataFrame:
        """The whole flows table."""
        return self._load("flows")

    def context(self, name: str) -> pd.DataFrame:
        """A context table (pods, rbac, workloads, ...), empty when there is none."""
        if name not in self._context_cache:
            ctx = self._context
            frame = ctx(name) if callable(ctx) else (ctx or {}).get(name)
            self._context_cache[name] = (
                frame if frame is not None else to_frame(CONTEXT_TABLES[name].arrow_schema.empty_table())
            )
        return self._context_cache[name]

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per evidence: what several rules derive from the same table
        (the allowed mask, the system identities, the process executions)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def flow_chunks(self) -> Iterator[pd.DataFrame]:
        """The flows, enriched, in time order, at most ``chunk_rows`` at a time (a chunk is
        bigger only when one scan window alone holds more). Chunks hold whole scan windows
        (``settings["scan_window"]``, counted from the epoch), so a port scan is judged
        within one chunk."""
        return self._chunks("flows", pd.Timedelta(self.settings["scan_window"]), self.chunk_rows)

    def audit_chunks(self) -> Iterator[pd.DataFrame]:
        """The audit table, enriched, in time order, a fifth of ``chunk_rows`` at a time (an
        audit event holds five times a flow's memory); chunks hold whole five-minute windows,
        the longest any built-in audit rule counts over."""
        return self._chunks("audit", pd.Timedelta(minutes=5), max(1, self.chunk_rows // 5))

    def runtime_chunks(self) -> Iterator[pd.DataFrame]:
        """The runtime table, enriched, in time order, a fifth of ``chunk_rows`` at a time."""
        return self._chunks("runtime", pd.Timedelta(minutes=5), max(1, self.chunk_rows // 5))

    def _chunks(self, name: str, every: pd.Timedelta, rows: int) -> Iterator[pd.DataFrame]:
        if self.reads_case(name) and self._case is not None:
            yield from enriched_chunks(self._case, name, rows=rows, every=every, columns=self._columns[name])
        else:
            yield from frame_chunks(getattr(self, name), every=every, rows=rows)

    def plan_flow_rows(self, parts: Iterable[FlowRows]) -> None:
        """Announce the ``FlowRows`` the rules about to run will ask for: the first ``flow_rows``
        call keeps them all in one pass over the flows."""
        if self._flows_of is not None:
            self._flows_of.plan_flow_rows(parts)
            return
        for part in parts:
            if part not in self._flow_rows:
                self._planned[part] = None

    def flow_rows(self, part: FlowRows) -> pd.DataFrame:
        """The flows ``part`` keeps, found a chunk at a time (``flow_chunks``) in one pass with
        every part planned and not yet kept; computed once per evidence."""
        if self._flows_of is not None:
            return self._flows_of.flow_rows(part)
        if part not in self._flow_rows:
            wanted = [*self._planned, *([part] if part not in self._planned else [])]
            self._flow_rows.update(_keep_flows(self, wanted))
            self._planned.clear()
        return self._flow_rows[part]

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """``query`` (DuckDB SQL over the tables ``audit``, ``runtime`` and ``flows``): over the
        case's Parquet when this evidence comes from a case — the filters reach the files and no
        table is loaded whole — else over this evidence's frames."""
        if self._case is not None:
            return self._case.sql(query, params)
        con = duckdb.connect()
        try:
            for name in ("audit", "runtime", "flows"):
                con.register(name, getattr(self, name))
            return con.execute(query, params or []).df()
        finally:
            con.close()

    def start(self) -> pd.Timestamp | None:
        """The earliest event time over the three tables."""
        if self._known_start is not None:
            return self._known_start

        def first(name: str) -> Any:
            if self.reads_case(name) and self._case is not None:  # the case's statistics, not the table
                return self._case.sql(f"SELECT min(time) AS t FROM {name}")["t"].iloc[0]
            table = getattr(self, name)
            return table["time"].min() if len(table) else None

        firsts = [self.memo(f"{name}.start", functools.partial(first, name)) for name in ("audit", "runtime", "flows")]
        times = [pd.Timestamp(t) for t in firsts if t is not None and pd.notna(t)]
        return min(times) if times else None


def evidence_networks(ev: Evidence) -> list[Network]:
    """``cluster_networks`` of the evidence, computed once: the nodes and services context, and
    the interfaces of its flow logs (from the case's flows table, or from the flows it holds)."""

    def compute() -> list[Network]:
        flows = ev.case if ev.reads_case("flows") else ev.flows
        return cluster_networks(
            ev.context("nodes"), services=ev.context("services"), interfaces=interface_addresses(flows)
        )

    return ev.memo("network.networks", compute)


def evidence_listening(ev: Evidence) -> frozenset[tuple[str, str, int]]:
    """``listening_sockets`` of the evidence's runtime events, computed once (only the network
    events are read from a case)."""

    def compute() -> frozenset[tuple[str, str, int]]:
        if ev.reads_case("runtime") and ev.case is not None:
            rows = ev.case.sql(
                "SELECT event_type, namespace, pod, src_port, rule, extra, output FROM runtime "
                "WHERE event_type = 'network' AND src_port IS NOT NULL AND pod IS NOT NULL"
            )
        else:
            rows = ev.runtime
        return listening_sockets(rows)

    return ev.memo("network.listening", compute)


class FlowChunk:
    """One chunk of the flows (``rows``) and what every flow rule asks of a flow, computed once
    per chunk: which end is outside the cluster, which flows are replies, which come from a pod."""

    def __init__(self, ev: Evidence, rows: pd.DataFrame) -> None:
        self.ev = ev
        self.rows = rows
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per chunk: what several ``FlowRows`` derive from the same rows."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @cached_property
    def src_out(self) -> pd.Series:
        """The source is outside the cluster (``external_mask``)."""
        return external_mask(self.rows["src_ip"], evidence_networks(self.ev))

    @cached_property
    def dst_out(self) -> pd.Series:
        """The destination is outside the cluster."""
        return external_mask(self.rows["dst_ip"], evidence_networks(self.ev))

    @cached_property
    def reply(self) -> pd.Series:
        """The responder's packets (``reply_mask``): never a scan, a beacon or a new edge of the sender."""
        return reply_mask(self.rows, listening=evidence_listening(self.ev))

    @cached_property
    def from_pod(self) -> pd.Series:
        """Sent by a pod, not by a node's own network."""
        f = self.rows
        return f["src_pod"].notna() & (f["src_kind"].fillna("pod") != "node")

    @cached_property
    def allowed(self) -> pd.Series:
        """The network let the flow through."""
        return self.rows["verdict"] == "allowed"

    @cached_property
    def outbound(self) -> pd.DataFrame:
        """The initiators' flows to outside addresses."""
        return self.rows[self.dst_out & ~self.reply]


@dataclass(frozen=True, eq=False)
class FlowRows:
    """What one rule keeps of the flows table, chunk by chunk, so that no rule holds the table:
    ``keep(chunk)`` on each ``FlowChunk`` (rows, or a count of them), then ``merge`` once over
    the chunks' parts put together (default: as they are). A rule names its ``FlowRows`` in
    ``Rule.flow_rows`` and reads them with ``evidence.flow_rows(part)``."""

    name: str
    keep: Callable[[FlowChunk], pd.DataFrame] = field(repr=False)
    merge: Callable[[pd.DataFrame], pd.DataFrame] | None = field(default=None, repr=False)


def _keep_flows(ev: Evidence, parts: list[FlowRows]) -> dict[FlowRows, pd.DataFrame]:
    """One pass over ``ev.flow_chunks()`` keeping what each of ``parts`` keeps."""
    kept: dict[FlowRows, list[pd.DataFrame]] = {part: [] for part in parts}
    for rows in ev.flow_chunks():
        chunk = FlowChunk(ev, rows)
        for part in parts:
            kept[part].append(part.keep(chunk))
    out = {}
    for part, frames in kept.items():
        if not frames:  # no chunk: no flows at all (the empty table, read whole, gives the rules its columns)
            out[part] = ev.flows.iloc[:0]
            continue
        frame = pd.concat(frames, ignore_index=True)
        out[part] = part.merge(frame) if part.merge is not None else frame
    return out


READS = ("tables", "reduced", "sql")


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A detection: metadata plus ``logic(evidence) -> hits``.

    ``reads`` says what the logic reads: ``"tables"`` (the default) whole tables
    (``evidence.audit``, ...); ``"reduced"`` only the rows the built-in rules can use
    (``reduction.reduced``: the built-in rules, or a rule that needs no other row); ``"sql"``
    only ``evidence.sql`` queries, so nothing is read up front. ``flow_rows`` are the
    ``FlowRows`` the logic reads, kept in the one chunked pass over the flows.

    ``row_local`` (with ``reads="reduced"``) says the logic judges each audit or runtime row on
    its own — with the context tables, the settings and the evidence's start, never another
    row — and groups its matching rows only among themselves: then the rows it matched in the
    reduction's chunk pass are all it needs, and it runs on those alone instead of on every
    row the reduction kept. A rule that compares a row with others (a burst, a first time, a
    later use) must leave it False."""

    id: str
    title: str
    severity: str
    technique_id: str | None
    attack_id: str
    tactic: str
    kill_chain_phase: str
    table: str
    logic: Callable[[Evidence], pd.DataFrame] = field(repr=False)
    description: str = ""
    source: str = "builtin"
    reads: str = "tables"
    flow_rows: tuple[FlowRows, ...] = field(default=(), repr=False)
    row_local: bool = False

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"rule {self.id}: severity {self.severity!r} is not one of {SEVERITIES}")
        if self.kill_chain_phase not in PHASES:
            raise ValueError(f"rule {self.id}: kill-chain phase {self.kill_chain_phase!r} is not one of {PHASES}")
        if self.technique_id is not None and not (
            self.technique_id.startswith("MS-TA90") and len(self.technique_id) == 9
        ):
            raise ValueError(f"rule {self.id}: technique {self.technique_id!r} is not an MS-TA90xx id")
        if self.reads not in READS:
            raise ValueError(f"rule {self.id}: reads {self.reads!r} is not one of {READS}")
        if self.row_local and self.reads != "reduced":
            raise ValueError(f"rule {self.id}: row_local is about the reduced rows (reads='reduced')")


class RuleError(K8sForensicsError):
    """A rule's logic failed or returned rows the engine cannot use."""


# ---------------------------------------------------------------------- building hits


def set_where(hits: pd.DataFrame, mask: Any, **values: Any) -> pd.DataFrame:
    """Set ``hits``' columns to ``values`` on the rows of ``mask`` (aligned with ``hits``) and
    return ``hits``; a column it lacks is added, None elsewhere. Each column is built whole:
    ``hits.loc[mask, [a, b]] = [x, y]`` with a mask of no rows creates void-typed (``|V0``)
    columns in pandas 3 when the frame has as many rows as columns are set, and no engine step
    can read those (``isna`` raises)."""
    m = np.asarray(mask, dtype=bool)
    for col, value in values.items():
        old = hits[col] if col in hits.columns else pd.Series(None, index=hits.index, dtype=object)
        hits[col] = old.astype(object).where(~m, value)
    return hits


def hits_from_rows(
    rows: pd.DataFrame,
    *,
    entity_type: str,
    entity: Any,
    summary: Callable[[Any], str],
    table: str,
    namespace: Any = None,
    pod: Any = None,
    user: Any = None,
    source_ip: Any = None,
    destination_ip: Any = None,
    gap: dt.timedelta | None = None,
    linked: pd.Series | None = None,
    since: pd.Series | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Hits from matching event rows. Rows about the same entity (and actor) closer than
    ``gap`` in time become one hit; ``gap=None`` keeps one hit per row. ``entity`` and the
    other column arguments are Series aligned with ``rows``, constants, or None;
    ``summary(row)`` is called with the first row of each hit (a namedtuple with the rows'
    columns plus ``n``, the number of rows, and the resolved ``entity``/``user``/... values).
    Context rules join a row to an earlier event: ``linked`` (aligned with ``rows``) names that
    event, which joins the hit's evidence, and ``since`` its time, where the hit then starts."""
    if rows.empty:
        return pd.DataFrame()
    if _SELECTING.get():
        return _selected(
            rows,
            entity_type=entity_type,
            table=table,
            values={
                "entity": entity,
                "namespace": namespace,
                "pod": pod,
                "user": user,
                "source_ip": source_ip,
                "destination_ip": destination_ip,
            },
            linked=linked,
            since=since,
            overrides=overrides,
        )
    frame = rows.copy()
    cols = {
        "entity": entity,
        "namespace": namespace,
        "pod": pod,
        "user": user,
        "source_ip": source_ip,
        "destination_ip": destination_ip,
    }
    for name, value in cols.items():
        frame[f"_h_{name}"] = value.to_numpy() if isinstance(value, pd.Series) else value
    frame["_h_linked"] = linked.to_numpy() if linked is not None else None
    frame["_h_since"] = since.to_numpy() if since is not None else frame["time"]
    if gap is None:
        frame = frame.sort_values("time", kind="stable")
        frame["_h_group"] = range(len(frame))
    else:
        frame["_h_key"] = frame["_h_entity"].map(str) + "\x00" + frame["_h_user"].map(str)
        frame = frame.sort_values(["_h_key", "time"], kind="stable")
        new = (frame["_h_key"] != frame["_h_key"].shift()) | (frame["time"].diff() > pd.Timedelta(gap))
        frame["_h_group"] = new.cumsum()
    # groups are contiguous runs of the sorted frame: take their first rows, bounds and evidence
    # in whole columns (a rule can match tens of thousands of hits; a row lookup each is slow)
    group = frame["_h_group"].to_numpy()
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, len(frame)])
    firsts = frame.iloc[starts].to_dict("records")
    by_group = frame.groupby("_h_group", sort=False)
    since_min, time_max = by_group["_h_since"].min().to_list(), by_group["time"].max().to_list()
    ids = np.split(frame["event_id"].astype(str).to_numpy(dtype=object), starts[1:])
    linked_ids = np.split(frame["_h_linked"].to_numpy(dtype=object), starts[1:])
    out = []
    for first, n, lo, hi, evidence, links in zip(firsts, sizes, since_min, time_max, ids, linked_ids):
        row = dict(first, n=int(n), **{c: first[f"_h_{c}"] for c in cols})
        out.append(
            {
                "time": min(first["time"], lo),
                "time_end": hi,
                "entity_type": entity_type,
                **{c: _none(first[f"_h_{c}"]) for c in cols},
                "event_ids": list(evidence) + [str(e) for e in links if _none(e) is not None],
                "summary": summary(_Row(row)),
                "source_table": table,
                **overrides,
            }
        )
    return pd.DataFrame(out).sort_values("time", kind="stable").reset_index(drop=True)


# Row selection without hit building: the reduction runs the built-in rules on each chunk only
# to learn which rows their hits are made of (``reduction.reduced``), then runs them once more
# on the rows kept, where the hits are built. While selecting, ``hits_from_rows`` returns one
# row per matching row (its event and the one it links), no grouping and no summary: the same
# event ids, for a fraction of the work. A context variable, not a parameter, because the rules
# call ``hits_from_rows`` through their own helpers; it is set only around the chunk pass.
_SELECTING: ContextVar[bool] = ContextVar("selecting", default=False)


@contextmanager
def selecting() -> Iterator[None]:
    """Within this block ``hits_from_rows`` only selects: one row per matching row (``time``,
    the entity and actor columns, ``event_ids``: its event and the linked one), no summary."""
    token = _SELECTING.set(True)
    try:
        yield
    finally:
        _SELECTING.reset(token)


def _selected(
    rows: pd.DataFrame,
    *,
    entity_type: str,
    table: str,
    values: dict[str, Any],
    linked: pd.Series | None,
    since: pd.Series | None,
    overrides: dict[str, Any],
) -> pd.DataFrame:
    """``hits_from_rows`` while selecting: one row per row of ``rows``, in their order."""
    n = len(rows)
    out: dict[str, Any] = {}
    time_col = rows["time"].reset_index(drop=True)
    if since is not None:  # a hit starts at the earlier of its row and the event it links
        before = pd.Series(since.to_numpy(), dtype=time_col.dtype)
        time_col = before.where(before.notna() & (before < time_col), time_col)
    out["time"] = time_col
    out["time_end"] = rows["time"].reset_index(drop=True)
    out["entity_type"] = [entity_type] * n
    for name, value in values.items():
        column = pd.Series(value.to_numpy() if isinstance(value, pd.Series) else [value] * n, dtype=object)
        out[name] = column.where(column.notna(), None)
    ids = rows["event_id"].astype(str).tolist()
    if linked is not None:
        ids_of = [[i] if _none(x) is None else [i, str(x)] for i, x in zip(ids, linked.to_numpy(dtype=object))]
    else:
        ids_of = [[i] for i in ids]
    out["event_ids"] = ids_of
    out["summary"] = [""] * n
    out["source_table"] = [table] * n
    for name, value in overrides.items():
        out[name] = [value] * n
    return pd.DataFrame(out)


class _Row(dict[str, Any]):
    """Attribute access to a row for summary templates; missing values read as ''."""

    def __getattr__(self, name: str) -> Any:
        v = self.get(name)
        return "" if _none(v) is None else v


def _none(v: Any) -> Any:
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):  # lists and dicts
        return v
    return v


def pod_entity(namespace: pd.Series, pod: pd.Series) -> pd.Series:
    """``namespace/pod`` where both are known, else None."""
    both = namespace.notna() & pod.notna()
    return (namespace.astype(str) + "/" + pod.astype(str)).where(both, None)


def service_accounts(ev: Evidence, namespace: pd.Series, pod: pd.Series) -> pd.Series:
    """The service account each (namespace, pod) runs as, from the ``pods`` context; None
    where the pod or its account is unknown."""

    def lookup() -> pd.DataFrame:
        pods = ev.context("pods")
        if not {"namespace", "name", "service_account"} <= set(pods.columns):  # a context given without them
            return pd.DataFrame({"namespace": [], "pod": [], "service_account": []}, dtype=object)
        known = pods[np.array([isinstance(s, str) for s in pods["service_account"]], dtype=bool)]
        # one account per (namespace, pod): the last row's, as a dict built row by row would keep
        return (
            known[["namespace", "name", "service_account"]]
            .astype(object)
            .drop_duplicates(["namespace", "name"], keep="last")
            .rename(columns={"name": "pod"})
        )

    owners = ev.memo("pods.service_account", lookup)
    # a left merge on unique keys keeps the rows and their order; a missing namespace or pod never joins
    keys = pd.DataFrame({"namespace": namespace.astype(object).to_numpy(), "pod": pod.astype(object).to_numpy()})
    keys.loc[keys["namespace"].isna() | keys["pod"].isna(), "pod"] = "\0no pod"
    found = keys.merge(owners, on=["namespace", "pod"], how="left")["service_account"]
    return pd.Series(found.where(found.notna(), None).to_numpy(dtype=object), index=namespace.index, dtype=object)


# ---------------------------------------------------------------------- the engine


def run_rules(
    evidence: Evidence, rules: Iterable[Rule], *, reduced: Evidence | None = None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Run ``rules`` over ``evidence`` — those that read the reduced rows (``Rule.reads``) over
    ``reduced`` when it is given: the findings (``findings`` schema, ordered by time) and one
    record per rule (id, findings, seconds)."""
    chosen = list(rules)
    on = [reduced if reduced is not None and rule.reads == "reduced" else evidence for rule in chosen]
    for ev in {id(ev): ev for ev in on}.values():  # each evidence keeps what its rules read of the flows in one pass
        ev.plan_flow_rows(part for rule, e in zip(chosen, on) if e is ev for part in rule.flow_rows)
    frames, runs = [], []
    seen: set[str] = set()
    for rule, ev in zip(chosen, on):
        if rule.id in seen:
            raise RuleError(f"two rules share the id {rule.id!r}")
        seen.add(rule.id)
        t0 = time.perf_counter()
        try:
            hits = rule.logic(ev.for_rule(rule))
        except Exception as e:  # a rule bug names the rule, not a deep traceback
            raise RuleError(f"rule {rule.id} ({rule.title}) failed: {type(e).__name__}: {e}") from e
        runs.append({"rule_id": rule.id, "findings": len(hits), "seconds": round(time.perf_counter() - t0, 4)})
        if len(hits):
            frames.append(_findings(rule, hits))
    if not frames:
        return to_frame(FINDINGS.arrow_schema.empty_table()), runs
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["time", "rule_id", "finding_id"], kind="stable").reset_index(drop=True)
    return out, runs


def _findings(rule: Rule, hits: pd.DataFrame) -> pd.DataFrame:
    missing = {"time", "event_ids"} - set(hits.columns)
    if missing:
        raise RuleError(f"rule {rule.id} returned hits without {sorted(missing)}")
    out = pd.DataFrame(index=hits.index)
    defaults = {
        "rule_id": rule.id,
        "title": rule.title,
        "severity": rule.severity,
        "technique_id": rule.technique_id,
        "attack_id": rule.attack_id,
        "tactic": rule.tactic,
        "kill_chain_phase": rule.kill_chain_phase,
        "source_table": rule.table,
        "rule_source": rule.source,
        "entity_type": None,
        "entity": None,
        "summary": rule.title,
    }
    for col in FINDINGS.names:
        if col in hits.columns:
            out[col] = hits[col]
            if col in defaults:
                out[col] = out[col].where(out[col].notna(), defaults[col])
        elif col in defaults:
            out[col] = defaults[col]
        else:
            out[col] = None
    out["time"] = pd.to_datetime(out["time"], utc=True)
    out["time_end"] = pd.to_datetime(out["time_end"].where(out["time_end"].notna(), out["time"]), utc=True)
    ids = [sorted({str(i) for i in v}) for v in hits["event_ids"]]
    out["event_count"] = [len(v) for v in ids]
    out["event_ids"] = [v[:MAX_EVENT_IDS] for v in ids]
    out["finding_id"] = [hashlib.sha256((rule.id + "\n" + "\n".join(v)).encode()).hexdigest()[:16] for v in ids]
    bad = set(out["kill_chain_phase"]) - set(PHASES)
    if bad:
        raise RuleError(f"rule {rule.id} returned kill-chain phases {sorted(bad)}; phases: {', '.join(PHASES)}")
    return out


def findings_table(findings: pd.DataFrame) -> pa.Table:
    """Findings as an Arrow table with the ``findings`` schema."""
    return pa.Table.from_pandas(findings[FINDINGS.names], schema=FINDINGS.arrow_schema, preserve_index=False)
