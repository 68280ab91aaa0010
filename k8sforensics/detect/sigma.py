"""Sigma rules (pySigma) run over the case tables as DuckDB SQL.

Each rule goes through pySigma's own model: the processing pipeline
(``sigma_pipeline.case_pipeline``: ``product: kubernetes, service: audit`` → the audit table,
``product: linux, category: process_creation`` → the runtime table's exec events, Sigma field
names → our columns, ``requestObject.*``/``responseObject.*`` → paths in the stored JSON bodies)
and a backend that writes DuckDB SQL (``sigma_backend.DuckDBBackend``). The query runs through
``evidence.sql``, so over a case it is pushed down to the Parquet files and no table is loaded
whole. Correlation rules (Sigma v2 ``event_count``, ``value_count``, ``temporal``) are sliding
windows over their base rules' rows.

A rule that uses a field with no mapping, another log source, or a construct the backend cannot
express is *skipped and reported* in ``SigmaRules.skipped`` — never run with a field that
silently matches nothing, and never an exception that stops the other rules from loading.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError

from ..bodies import NOT_JSON, TOO_DEEP, TOO_LARGE, json_depth
from ..context.enrich import enrich
from ..errors import EvidenceError
from .engine import (
    TACTIC_PHASES,
    Evidence,
    Rule,
    hits_from_rows,
    pod_entity,
    tactic_name,
)
from .sigma_backend import DuckDBBackend
from .sigma_pipeline import UnmappedFieldsError, case_pipeline

SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
# ATT&CK → Threat Matrix technique, where the Threat Matrix names the ATT&CK technique unambiguously
ATTACK_TO_MS = {
    "T1609": "MS-TA9006",
    "T1053.007": "MS-TA9014",
    "T1552.007": "MS-TA9025",
    "T1070": "MS-TA9022",
    "T1611": "MS-TA9018",
    "T1078.003": "MS-TA9019",
    "T1496": "MS-TA9039",
    "T1485": "MS-TA9038",
    "T1613": "MS-TA9029",
    "T1046": "MS-TA9031",
    "T1552.005": "MS-TA9033",
    "T1528": "MS-TA9016",
    "T1546": "MS-TA9015",
    "T1036.005": "MS-TA9023",
    "T1525": "MS-TA9002",
    "T1133": "MS-TA9005",
    "T1190": "MS-TA9004",
    "T1059": "MS-TA9007",
    "T1610": "MS-TA9008",
}
SKIPPED_COLUMNS = ["file", "rule_id", "title", "reason", "fields"]


@dataclass
class SigmaRules:
    """Rules loaded from a folder, and the ones that could not be used, with why."""

    folder: str
    rules: list[Rule] = field(default_factory=list)
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIPPED_COLUMNS))


def load_sigma_rules(
    folder: str | Path,
    *,
    audit_fields: Mapping[str, str] | None = None,
    process_fields: Mapping[str, str] | None = None,
) -> SigmaRules:
    """Load every ``*.yml``/``*.yaml`` Sigma rule under ``folder`` (or the one file). Field
    mappings extend (and may override) ``sigma_pipeline.AUDIT_FIELDS`` and ``PROCESS_FIELDS``.
    A correlation rule may name rules of any file under ``folder``."""
    root = Path(folder)
    if not root.exists():
        raise EvidenceError(str(root), "no such Sigma rule file or folder", "give the folder that holds the .yml rules")
    files = (
        [root]
        if root.is_file()
        else sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    )
    out = SigmaRules(folder=str(root))
    skipped: list[dict[str, Any]] = []
    origin: dict[int, Path] = {}
    parsed: list[Any] = []
    for path in files:
        try:
            collection = SigmaCollection.from_yaml(
                path.read_text(encoding="utf-8"), collect_errors=True, resolve_references=False
            )
        except (SigmaError, yaml.YAMLError, UnicodeDecodeError, OSError) as e:  # reported; the other files still load
            skipped.append(
                {"file": str(path), "rule_id": None, "title": None, "reason": f"unreadable: {e}", "fields": []}
            )
            continue
        for e in collection.errors:  # a document pySigma could not read at all
            skipped.append(
                {"file": str(path), "rule_id": None, "title": None, "reason": f"unreadable: {e}", "fields": []}
            )
        for rule in collection.rules:
            origin[id(rule)] = path
            parsed.append(rule)

    def record(rule: Any, reason: str, fields: list[str] | None = None) -> None:
        skipped.append(
            {
                "file": str(origin[id(rule)]),
                "rule_id": str(rule.id) if rule.id else None,
                "title": rule.title,
                "reason": reason,
                "fields": fields or [],
            }
        )

    # a correlation naming a rule that is not here is skipped; the others are resolved (base rules first)
    everything = SigmaCollection(parsed, resolve_references=False)
    usable = []
    for rule in parsed:
        if getattr(rule, "errors", None):
            record(rule, "invalid rule: " + "; ".join(str(e) for e in rule.errors))
            continue
        if isinstance(rule, SigmaCorrelationRule):
            missing = [str(ref.reference) for ref in rule.rules or [] if not _names(everything, ref.reference)]
            if missing or rule.rules is None:
                record(rule, "correlated rules not found: " + ", ".join(missing or ["(extended condition)"]))
                continue
        usable.append(rule)
    collection = SigmaCollection(usable, resolve_references=True)
    backend = DuckDBBackend(case_pipeline(audit_fields=audit_fields, process_fields=process_fields))
    backend.init_processing_pipeline()
    for rule in collection.rules:
        try:
            if isinstance(rule, SigmaCorrelationRule):
                queries = backend.convert_correlation_rule(rule)
            else:
                queries = backend.convert_rule(rule)
        except UnmappedFieldsError as e:
            record(rule, str(e.args[0]) if e.args else str(e), e.fields)
            continue
        except SigmaError as e:
            record(rule, _reason(e))
            continue
        except Exception as e:  # a rule is untrusted input: one pySigma cannot handle must not stop the others
            record(rule, f"could not be converted: {type(e).__name__}: {e}")
            continue
        if not getattr(rule, "_output", True):  # a correlation's base rule with generate: false
            continue
        if len(queries) != 1:
            record(rule, f"{len(queries)} conditions; one per rule is supported")
            continue
        out.rules.append(_to_rule(rule, queries[0], origin[id(rule)]))
    out.skipped = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
    return out


def _names(collection: Any, reference: str) -> bool:
    try:
        collection[reference]
    except Exception:  # SigmaRuleNotFoundError, KeyError: no rule by that id or name
        return False
    return True


def _reason(error: Exception) -> str:
    """A pySigma error's message without the rule location pySigma appends."""
    text = str(error.args[0]) if error.args else str(error)
    return text


def _to_rule(rule: Any, query: Any, path: Path) -> Rule:
    tags = [f"{t.namespace}.{t.name}" for t in rule.tags]
    attack = next((t.split(".", 1)[1].upper() for t in tags if re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", t)), "")
    tactic = next((n for n in map(tactic_name, tags) if n), "Execution")
    technique = ATTACK_TO_MS.get(attack) or ATTACK_TO_MS.get(attack.split(".")[0])
    level = str(rule.level.name).lower() if rule.level else "medium"
    rid = str(rule.id or path.stem)
    title = str(rule.title)
    # a correlation's rows within its timespan are one hit; a plain rule keeps one hit per event
    gap = dt.timedelta(seconds=query.timespan) if query.timespan else None

    def logic(ev: Evidence) -> pd.DataFrame:
        rows = ev.sql(query.select({column: _unread(ev, column) for column in sorted(query.bodies)}))
        if rows.empty:
            return pd.DataFrame()
        if query.table == "audit":
            sa = rows["sa_name"].notna()
            entity = (rows["sa_namespace"].astype(str) + "/" + rows["sa_name"].astype(str)).where(sa, rows["user"])
            return hits_from_rows(
                rows,
                entity_type="user",
                entity=entity,
                namespace=rows["object_namespace"],
                user=rows["user"],
                source_ip=rows["source_ip"],
                table="audit",
                gap=gap,
                summary=lambda r: (
                    f"Sigma: {title}: {r.user} {r.verb} {r.resource} {r.object_namespace}/{r.object_name}"
                ),
            )
        rows = enrich(rows, ev, table="runtime")  # the pod of events that name only a container
        return hits_from_rows(
            rows,
            entity_type="pod",
            entity=pod_entity(rows["namespace"], rows["pod"]),
            namespace=rows["namespace"],
            pod=rows["pod"],
            table="runtime",
            gap=gap,
            summary=lambda r: f"Sigma: {title}: {r.cmdline or r.process} in {r.entity}",
        )

    return Rule(
        id=f"sigma-{rid}",
        title=title,
        severity=SEVERITY.get(level, "medium"),
        technique_id=technique,
        attack_id=attack,
        tactic=tactic,
        kill_chain_phase=TACTIC_PHASES[tactic],
        table=query.table,
        logic=logic,
        description=str(rule.description or ""),
        source=f"sigma:{rid}",
        reads="sql",
    )


def _unread(ev: Evidence, column: str) -> list[str]:
    """The events whose ``column`` body is left unread — too large, too deep (``bodies``' bounds)
    or not JSON — recorded in ``ev.unreadable`` once per evidence: what a rule would have found
    there is missing. Only the bodies with more brackets than the depth bound are fetched, to
    measure their depth."""

    def find() -> list[str]:
        bodies = ev.unreadable
        text = f"CAST({column} AS VARCHAR)"
        large = f"strlen({text}) > {int(bodies.max_bytes)}"
        brackets = f"strlen({text}) - strlen(replace(replace({text}, '{{', ''), '[', ''))"
        bad = ev.sql(
            f"SELECT event_id, {large} AS large FROM audit WHERE {text} <> '' AND ({large} OR NOT json_valid({text}))"
        )
        nested = ev.sql(
            f"SELECT event_id, {text} AS body FROM audit WHERE {text} <> '' AND NOT {large} AND json_valid({text}) "
            f"AND {brackets} > {int(bodies.max_depth)}"
        )
        where = f"sigma:{column}"
        unread = []
        for event_id, too_large in zip(bad["event_id"], bad["large"]):
            bodies.add(TOO_LARGE if too_large else NOT_JSON, where=where, event_id=event_id)
            unread.append(str(event_id))
        for event_id, body in zip(nested["event_id"], nested["body"]):
            if json_depth(body) > bodies.max_depth:
                bodies.add(TOO_DEEP, where=where, event_id=event_id)
                unread.append(str(event_id))
        return unread

    return ev.memo(f"sigma.unread.{column}", find)


__all__ = ["ATTACK_TO_MS", "SEVERITY", "SigmaRules", "load_sigma_rules"]
