"""Sigma rules (pySigma) run over the case tables.

``product: kubernetes, service: audit`` rules read the audit table; ``product: linux,
category: process_creation`` rules read the runtime table's process executions. Fields are
mapped onto our columns (``AUDIT_FIELDS``, ``PROCESS_FIELDS``; ``requestObject.*`` and
``responseObject.*`` are looked up inside the stored JSON bodies). A rule that uses a field
with no mapping, another log source, or a construct this evaluator does not support is
*skipped and reported* in ``SigmaRules.skipped`` — never run with a field that silently
matches nothing.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..bodies import UnreadableBodies
from ..errors import EvidenceError
from .engine import (
    TACTIC_PHASES,
    Evidence,
    Rule,
    hits_from_rows,
    pod_entity,
    tactic_name,
)

AUDIT_FIELDS = {
    "verb": "verb", "requestURI": "request_uri", "stage": "stage", "level": "level", "auditID": "audit_id",
    "objectRef.resource": "resource", "objectRef.subresource": "subresource", "objectRef.namespace": "object_namespace",
    "objectRef.name": "object_name", "objectRef.apiGroup": "api_group", "objectRef.apiVersion": "api_version",
    "user.username": "user", "user.groups": "user_groups", "user.uid": "user_uid",
    "impersonatedUser.username": "impersonated_user", "impersonatedUser.groups": "impersonated_groups",
    "sourceIPs": "source_ips", "userAgent": "user_agent", "responseStatus.code": "response_code",
    "responseStatus.reason": "response_reason", "annotations.authorization.k8s.io/decision": "decision",
    "annotations.authorization.k8s.io/reason": "authz_reason",
}
PROCESS_FIELDS = {
    "Image": "process", "CommandLine": "cmdline", "ParentImage": "parent_process", "ParentCommandLine": "parent_cmdline",
    "User": "user_name", "CurrentDirectory": "cwd", "ProcessId": "pid", "ParentProcessId": "ppid",
}
KEYWORD_COLUMNS = {"audit": ["request_uri", "user_agent", "request_object"], "runtime": ["cmdline", "parent_cmdline", "process"]}
JSON_PREFIXES = {"requestObject.": "request_object", "responseObject.": "response_object"}
SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
# ATT&CK → Threat Matrix technique, where the Threat Matrix names the ATT&CK technique unambiguously
ATTACK_TO_MS = {
    "T1609": "MS-TA9006", "T1053.007": "MS-TA9014", "T1552.007": "MS-TA9025", "T1070": "MS-TA9022", "T1611": "MS-TA9018",
    "T1078.003": "MS-TA9019", "T1496": "MS-TA9039", "T1485": "MS-TA9038", "T1613": "MS-TA9029", "T1046": "MS-TA9031",
    "T1552.005": "MS-TA9033", "T1528": "MS-TA9016", "T1546": "MS-TA9015", "T1036.005": "MS-TA9023", "T1525": "MS-TA9002",
    "T1133": "MS-TA9005", "T1190": "MS-TA9004", "T1059": "MS-TA9007", "T1610": "MS-TA9008",
}


class UnsupportedSigma(Exception):
    pass


@dataclass
class SigmaRules:
    """Rules loaded from a folder, and the ones that could not be used, with why."""

    folder: str
    rules: list[Rule] = field(default_factory=list)
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["file", "rule_id", "title", "reason", "fields"]))


def load_sigma_rules(folder: str | Path, *, audit_fields: Mapping[str, str] | None = None,
                     process_fields: Mapping[str, str] | None = None) -> SigmaRules:
    """Load every ``*.yml``/``*.yaml`` Sigma rule under ``folder``. Field mappings extend
    (and may override) ``AUDIT_FIELDS`` and ``PROCESS_FIELDS``."""
    import yaml
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule

    root = Path(folder)
    if not root.exists():
        raise EvidenceError(str(root), "no such Sigma rule file or folder", "give the folder that holds the .yml rules")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    out = SigmaRules(folder=str(root))
    skipped: list[dict[str, Any]] = []
    amap = {**AUDIT_FIELDS, **(audit_fields or {})}
    pmap = {**PROCESS_FIELDS, **(process_fields or {})}
    for path in files:
        try:
            collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"), collect_errors=True)
        except (SigmaError, yaml.YAMLError, UnicodeDecodeError, OSError) as e:  # reported; the other files still load
            skipped.append({"file": str(path), "rule_id": None, "title": None, "reason": f"unreadable: {e}", "fields": []})
            continue
        for rule in collection.rules:
            base = {"file": str(path), "rule_id": str(rule.id) if rule.id else None, "title": rule.title}
            if not isinstance(rule, SigmaRule):
                skipped.append({**base, "reason": "correlation rules are not supported", "fields": []})
                continue
            if getattr(rule, "errors", None):
                skipped.append({**base, "reason": "invalid rule: " + "; ".join(str(e) for e in rule.errors), "fields": []})
                continue
            ls = rule.logsource
            if ls.product == "kubernetes" and ls.service == "audit":
                table, mapping = "audit", amap
            elif ls.product == "linux" and ls.category == "process_creation":
                table, mapping = "runtime", pmap
            else:
                skipped.append({**base, "reason": f"log source {ls.product}/{ls.category or ls.service} is not read", "fields": []})
                continue
            try:
                trees = [c.parsed for c in rule.detection.parsed_condition]
                fields = sorted({f for t in trees for f in _fields(t)})
                unmapped = [f for f in fields if f not in mapping and not f.startswith(tuple(JSON_PREFIXES) if table == "audit" else ())]
                if unmapped:
                    skipped.append({**base, "reason": "fields with no column mapping: " + ", ".join(unmapped), "fields": unmapped})
                    continue
                for t in trees:
                    _check(t)
            except UnsupportedSigma as e:
                skipped.append({**base, "reason": str(e), "fields": []})
                continue
            out.rules.append(_to_rule(rule, table, mapping, trees, path))
    out.skipped = pd.DataFrame(skipped, columns=["file", "rule_id", "title", "reason", "fields"])
    return out


def _fields(node: Any) -> list[str]:
    from sigma.conditions import ConditionFieldEqualsValueExpression

    if isinstance(node, ConditionFieldEqualsValueExpression):
        return [node.field]
    return [f for a in getattr(node, "args", []) or [] for f in _fields(a)]


def _check(node: Any) -> None:
    from sigma.conditions import (
        ConditionAND,
        ConditionFieldEqualsValueExpression,
        ConditionNOT,
        ConditionOR,
        ConditionValueExpression,
    )

    if isinstance(node, (ConditionAND, ConditionOR, ConditionNOT)):
        for a in node.args:
            _check(a)
    elif isinstance(node, (ConditionFieldEqualsValueExpression, ConditionValueExpression)):
        _matcher(node.value)
    else:
        raise UnsupportedSigma(f"unsupported condition element {type(node).__name__}")


def _to_rule(rule: Any, table: str, mapping: Mapping[str, str], trees: list[Any], path: Path) -> Rule:
    tags = [f"{t.namespace}.{t.name}" for t in rule.tags]
    attack = next((t.split(".", 1)[1].upper() for t in tags if re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", t)), "")
    tactic = next((n for n in map(tactic_name, tags) if n), "Execution")
    technique = ATTACK_TO_MS.get(attack) or ATTACK_TO_MS.get(attack.split(".")[0])
    level = str(rule.level.name).lower() if rule.level else "medium"
    rid = str(rule.id or path.stem)

    def logic(ev: Evidence) -> pd.DataFrame:
        frame = ev.audit if table == "audit" else ev.runtime[ev.runtime["event_type"] == "exec"]
        if frame.empty:
            return pd.DataFrame()
        mask = pd.Series(False, index=frame.index)
        for t in trees:
            mask |= _evaluate(t, frame, table, mapping, ev.unreadable)
        rows = frame[mask]
        if table == "audit":
            sa = rows["sa_name"].notna()
            entity = (rows["sa_namespace"].astype(str) + "/" + rows["sa_name"].astype(str)).where(sa, rows["user"])
            return hits_from_rows(rows, entity_type="user", entity=entity, namespace=rows["object_namespace"], user=rows["user"],
                                  source_ip=rows["source_ip"], table="audit",
                                  summary=lambda r: f"Sigma: {rule.title}: {r.user} {r.verb} {r.resource} {r.object_namespace}/{r.object_name}")
        return hits_from_rows(rows, entity_type="pod", entity=pod_entity(rows["namespace"], rows["pod"]), namespace=rows["namespace"],
                              pod=rows["pod"], table="runtime", summary=lambda r: f"Sigma: {rule.title}: {r.cmdline or r.process} in {r.entity}")

    return Rule(id=f"sigma-{rid}", title=str(rule.title), severity=SEVERITY.get(level, "medium"), technique_id=technique, attack_id=attack,
                tactic=tactic, kill_chain_phase=TACTIC_PHASES[tactic], table=table, logic=logic,
                description=str(rule.description or ""), source=f"sigma:{rid}")


# ---------------------------------------------------------------------- evaluation


def _evaluate(node: Any, frame: pd.DataFrame, table: str, mapping: Mapping[str, str], unreadable: UnreadableBodies) -> pd.Series:
    from sigma.conditions import (
        ConditionAND,
        ConditionFieldEqualsValueExpression,
        ConditionNOT,
        ConditionOR,
    )

    if isinstance(node, ConditionAND):
        out = pd.Series(True, index=frame.index)
        for a in node.args:
            out &= _evaluate(a, frame, table, mapping, unreadable)
        return out
    if isinstance(node, ConditionOR):
        out = pd.Series(False, index=frame.index)
        for a in node.args:
            out |= _evaluate(a, frame, table, mapping, unreadable)
        return out
    if isinstance(node, ConditionNOT):
        return ~_evaluate(node.args[0], frame, table, mapping, unreadable)
    match = _matcher(node.value)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        values = _values(frame, node.field, mapping, unreadable)
        return values.map(lambda v: any(match(x) for x in v) if isinstance(v, list) else match(v)).astype(bool)
    # a keyword: any of the table's free-text columns
    out = pd.Series(False, index=frame.index)
    for col in KEYWORD_COLUMNS[table]:
        out |= frame[col].map(lambda v: v is not None and match(v)).astype(bool)
    return out


def _values(frame: pd.DataFrame, name: str, mapping: Mapping[str, str], unreadable: UnreadableBodies | None = None) -> pd.Series:
    if name in mapping:
        col = frame[mapping[name]]
        return col.map(lambda v: list(v) if hasattr(v, "__len__") and not isinstance(v, (str, bytes, dict)) else v)
    prefix = next(p for p in JSON_PREFIXES if name.startswith(p))
    path = name[len(prefix):].split(".")
    column = JSON_PREFIXES[prefix]
    bodies = UnreadableBodies() if unreadable is None else unreadable
    ids = frame["event_id"] if "event_id" in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    return pd.Series([_json_path(text, path, bodies, f"sigma:{column}", event_id) for text, event_id in zip(frame[column], ids)],
                     index=frame.index, dtype=object)


def _json_path(text: Any, path: list[str], bodies: UnreadableBodies, where: str, event_id: Any) -> list[Any]:
    """The values at ``path`` in a body (lists flattened); none when the body is absent or unread
    (too large, too deep, not JSON: recorded in ``bodies``)."""
    body = bodies.parse(text, where=where, event_id=event_id)
    if body is None:
        return []
    nodes: list[Any] = [body]
    for key in path:
        nxt: list[Any] = []
        for n in nodes:
            for item in n if isinstance(n, list) else [n]:
                if isinstance(item, dict) and key in item:
                    nxt.append(item[key])
        nodes = nxt
    flat: list[Any] = []
    for n in nodes:
        flat.extend(n if isinstance(n, list) else [n])
    return flat


def _matcher(value: Any) -> Callable[[Any], bool]:
    from sigma.types import (
        SigmaBool,
        SigmaCasedString,
        SigmaCIDRExpression,
        SigmaCompareExpression,
        SigmaExists,
        SigmaNull,
        SigmaNumber,
        SigmaRegularExpression,
        SigmaRegularExpressionFlag,
        SigmaString,
    )

    if isinstance(value, SigmaString):
        cased = isinstance(value, SigmaCasedString)
        if value.contains_special():
            rx = re.compile("^" + value.to_regex().to_plain() + "$", 0 if cased else re.IGNORECASE | re.DOTALL)
            return lambda v: _present(v) and rx.search(str(v)) is not None
        plain = value.to_plain()
        if cased:
            return lambda v: _present(v) and str(v) == plain
        low = plain.lower()
        return lambda v: _present(v) and str(v).lower() == low
    if isinstance(value, SigmaBool):
        return lambda v: _present(v) and bool(v) is bool(value.boolean)
    if isinstance(value, SigmaNumber):
        return lambda v: _present(v) and _num(v) == value.number
    if isinstance(value, SigmaRegularExpression):
        flags = (re.IGNORECASE if SigmaRegularExpressionFlag.IGNORECASE in value.flags else 0) | (
            re.MULTILINE if SigmaRegularExpressionFlag.MULTILINE in value.flags else 0) | (
            re.DOTALL if SigmaRegularExpressionFlag.DOTALL in value.flags else 0)
        rx = re.compile(value.to_plain(), flags)
        return lambda v: _present(v) and rx.search(str(v)) is not None
    if isinstance(value, SigmaNull):
        return lambda v: not _present(v)
    if isinstance(value, SigmaExists):
        want = bool(value.exists)
        return lambda v: _present(v) is want
    if isinstance(value, SigmaCIDRExpression):
        net = ipaddress.ip_network(str(value.network), strict=False)
        return lambda v: _present(v) and _in_net(v, net)
    if isinstance(value, SigmaCompareExpression):
        ops = {"LT": operator.lt, "LTE": operator.le, "GT": operator.gt, "GTE": operator.ge}
        op = ops[value.op.name]
        num = value.number.number
        def compare(v: Any) -> bool:
            n = _num(v) if _present(v) else None
            return n is not None and bool(op(n, num))

        return compare
    raise UnsupportedSigma(f"unsupported value type {type(value).__name__} ({value})")


def _present(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, list):
        return len(v) > 0
    try:
        return not bool(pd.isna(v))
    except (TypeError, ValueError):
        return True


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _in_net(v: Any, net: Any) -> bool:
    try:
        return ipaddress.ip_address(str(v)) in net
    except ValueError:
        return False
