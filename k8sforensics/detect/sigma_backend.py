"""A pySigma backend that turns Sigma rules into DuckDB SQL over the case's tables.

Built on pySigma's ``TextQueryBackend``: pySigma parses the rule, applies the pipeline
(``sigma_pipeline.case_pipeline``) and walks the condition; this backend writes each
field/value test. Sigma's matching rules (https://sigmahq.io/docs/basics/modifiers.html) are
kept: strings compare case-insensitively (``ILIKE``) unless ``|cased``, a list-valued field
matches when any element does, a body field (``request_object.spec...``) is looked up in the
stored JSON with every array along the path flattened, and a field that is absent matches
nothing but ``null`` — a ``not`` of a test on an absent field is true (each test is
``coalesce(..., false)``, never SQL's NULL).

Rule values are untrusted text: each becomes a SQL string literal with its quotes doubled and
its LIKE metacharacters escaped, never raw SQL; a NUL character is refused. Regular
expressions run in DuckDB's RE2 and are checked when the rule loads (RE2 has no look-around or
back-references). ``|cidr`` has no DuckDB type without the ``inet`` extension, so an IPv4
network is an integer range test over the dotted quad; IPv6 networks are refused.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionValueExpression
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.state import ConversionState
from sigma.correlations import SigmaCorrelationConditionOperator, SigmaCorrelationRule, SigmaCorrelationType
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from ..schema import TABLES
from .sigma_pipeline import KEYWORD_COLUMNS

# the columns a hit needs: its time and evidence, the entity, and what the summary names
HIT_COLUMNS = {
    "audit": [
        "time",
        "event_id",
        "user",
        "verb",
        "resource",
        "object_namespace",
        "object_name",
        "sa_namespace",
        "sa_name",
        "source_ip",
    ],
    "runtime": [
        "time",
        "event_id",
        "namespace",
        "pod",
        "container_id",
        "workload_kind",
        "workload",
        "node",
        "process",
        "cmdline",
    ],
}
JSON_COLUMNS = ("request_object", "response_object")
Predicate = Callable[[str], str]


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal (quotes doubled; DuckDB reads backslashes literally)."""
    if "\x00" in text:
        raise SigmaFeatureNotSupportedByBackendError("a value holds a NUL character")
    return "'" + text.replace("'", "''") + "'"


def like_pattern(value: SigmaString) -> str:
    """A Sigma string as a LIKE pattern with ``\\`` as escape: its wildcards become ``%`` and
    ``_``, literal ``%``, ``_`` and ``\\`` are escaped."""
    out = []
    for part in value.s:
        if part == SpecialChars.WILDCARD_MULTI:
            out.append("%")
        elif part == SpecialChars.WILDCARD_SINGLE:
            out.append("_")
        elif isinstance(part, str):
            out.append(part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
        else:  # a placeholder the pipeline did not replace
            raise SigmaFeatureNotSupportedByBackendError(f"unresolved placeholder in {value}")
    return "".join(out)


def _number(n: Any) -> str:
    if isinstance(n, bool) or not isinstance(n, (int, float)) or (isinstance(n, float) and not math.isfinite(n)):
        raise SigmaFeatureNotSupportedByBackendError(f"not a finite number: {n!r}")
    return str(int(n)) if isinstance(n, int) else repr(float(n))


def _ipv4_in(x: str, network: ipaddress.IPv4Network) -> str:
    """``x`` (a VARCHAR expression) is a dotted IPv4 address inside ``network``."""
    octets = [f"TRY_CAST(split_part({x}, '.', {i}) AS BIGINT)" for i in range(1, 5)]
    number = f"({octets[0]} * 16777216 + {octets[1]} * 65536 + {octets[2]} * 256 + {octets[3]})"
    lo, hi = int(network.network_address), int(network.broadcast_address)
    return (
        f"(regexp_full_match({x}, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}') AND "
        + " AND ".join(f"{o} <= 255" for o in octets)
        + f" AND {number} BETWEEN {lo} AND {hi})"
    )


@dataclass
class SigmaQuery:
    """A converted rule: DuckDB SQL over ``table``. ``where`` is the rule's condition (for a
    correlation, None: ``sql`` is the whole statement); ``bodies`` the JSON columns it reads;
    ``group_by`` a correlation's grouping columns."""

    table: str
    where: str | None
    bodies: set[str] = field(default_factory=set)
    correlation: str | None = None
    group_by: list[str] = field(default_factory=list)
    timespan: int | None = None

    def select(self, unread: Mapping[str, list[str]] | None = None, *, columns: list[str] | None = None) -> str:
        """The statement returning ``columns`` (default: ``HIT_COLUMNS``) of the matching rows, in
        time order; the bodies of the events in ``unread`` (JSON column → event ids: too large,
        too deep) hold no value."""
        if self.correlation is not None:
            sql = self.correlation
        else:
            cols = ", ".join(columns or HIT_COLUMNS[self.table])
            sql = f"SELECT {cols} FROM {self.table} WHERE {self.where} ORDER BY time, event_id"
        for column in JSON_COLUMNS:
            ids = sorted(str(i) for i in (unread or {}).get(column, []))
            sql = sql.replace(unread_token(column), "[" + ", ".join(map(sql_string, ids)) + "]::VARCHAR[]")
        return sql


class DuckDBBackend(TextQueryBackend):
    """Sigma → DuckDB SQL over the ``audit`` and ``runtime`` tables (the table is set by the
    pipeline's ``table`` state). ``convert_rule`` returns ``SigmaQuery`` objects."""

    name: ClassVar[str] = "k8sforensics DuckDB"
    identifier: ClassVar[str] = "k8sforensics_duckdb"
    formats: ClassVar[dict[str, str]] = {"default": "SigmaQuery objects (DuckDB SQL)"}
    requires_pipeline: ClassVar[bool] = True
    correlation_methods: ClassVar[dict[str, str]] = {"default": "sliding windows over the base rules' rows"}
    # a correlation's base rules are converted to SigmaQuery too: the correlation reads their conditions
    finalize_correlation_subqueries: ClassVar[bool] = True

    group_expression: ClassVar[str] = "({expr})"
    parenthesize: bool = True
    token_separator: str = " "
    or_token: ClassVar[str] = "OR"
    and_token: ClassVar[str] = "AND"
    not_token: ClassVar[str] = "NOT"
    eq_token: ClassVar[str] = " = "

    def __init__(self, processing_pipeline: Any = None, collect_errors: bool = False, **options: Any) -> None:
        super().__init__(processing_pipeline, collect_errors, **options)
        self._plans: dict[int, SigmaQuery] = {}

    # ------------------------------------------------------------------ fields

    def _table(self, state: ConversionState) -> str:
        table = state.processing_state.get("table")
        if table not in HIT_COLUMNS:
            raise SigmaFeatureNotSupportedByBackendError("the rule's log source maps to no table")
        return table

    def _test(self, name: str, state: ConversionState, predicate: Predicate, *, absent: bool = False) -> str:
        """``predicate`` over the values of field ``name`` (a column, or a body path): true when
        any value passes; ``absent`` tests instead that the field has no value."""
        table = self._table(state)
        schema = TABLES[table].arrow_schema
        head, _, path = name.partition(".")
        if path and head in JSON_COLUMNS and table == "audit":
            state.processing_state.setdefault("bodies", set()).add(head)
            values = _json_values(head, path.split("."))
            return (
                f"(len({values}) = 0)"
                if absent
                else f"(len(list_filter({values}, lambda x: coalesce({predicate('x')}, false))) > 0)"
            )
        if name not in schema.names:
            raise SigmaFeatureNotSupportedByBackendError(f"the {table} table has no column {name!r}")
        col = '"' + name.replace('"', '""') + '"'
        if pa.types.is_list(schema.field(name).type):
            values = f"CAST({col} AS VARCHAR[])"
            return (
                f"(coalesce(len({values}), 0) = 0)"
                if absent
                else f"coalesce(len(list_filter({values}, lambda x: coalesce({predicate('x')}, false))) > 0, false)"
            )
        if absent:
            return f"({col} IS NULL)"
        return f"coalesce({predicate(f'CAST({col} AS VARCHAR)')}, false)"

    # ------------------------------------------------------------------ values

    def _string(self, value: SigmaString) -> Predicate:
        pattern = sql_string(like_pattern(value))
        op = "LIKE" if isinstance(value, SigmaCasedString) else "ILIKE"
        return lambda x: f"{x} {op} {pattern} ESCAPE '\\'"

    def _regex(self, value: SigmaRegularExpression) -> Predicate:
        flags = {
            SigmaRegularExpressionFlag.IGNORECASE: "i",
            SigmaRegularExpressionFlag.MULTILINE: "m",
            SigmaRegularExpressionFlag.DOTALL: "s",
        }
        inline = "".join(sorted(flags[f] for f in value.flags if f in flags))
        regex = (f"(?{inline})" if inline else "") + value.to_plain()
        _check_re2(regex)
        literal = sql_string(regex)
        return lambda x: f"regexp_matches({x}, {literal})"

    def _predicate(self, value: Any) -> Predicate:
        if isinstance(value, SigmaString):
            return self._string(value)
        if isinstance(value, SigmaRegularExpression):
            return self._regex(value)
        if isinstance(value, SigmaNumber):
            n = _number(value.number)
            return lambda x: f"TRY_CAST({x} AS DOUBLE) = {n}"
        if isinstance(value, SigmaBool):
            word = sql_string("true" if value.boolean else "false")
            return lambda x: f"lower({x}) = {word}"
        if isinstance(value, SigmaCIDRExpression):
            if not isinstance(value.network, ipaddress.IPv4Network):
                raise SigmaFeatureNotSupportedByBackendError(f"|cidr over IPv6 ({value.network}) is not supported")
            return lambda x: _ipv4_in(x, value.network)
        if isinstance(value, SigmaCompareExpression):
            ops = {
                SigmaCompareExpression.CompareOperators.LT: "<",
                SigmaCompareExpression.CompareOperators.LTE: "<=",
                SigmaCompareExpression.CompareOperators.GT: ">",
                SigmaCompareExpression.CompareOperators.GTE: ">=",
            }
            n = _number(value.number.number)
            return lambda x: f"TRY_CAST({x} AS DOUBLE) {ops[value.op]} {n}"
        raise SigmaFeatureNotSupportedByBackendError(f"unsupported value type {type(value).__name__} ({value})")

    def _field_test(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        return self._test(cond.field, state, self._predicate(cond.value))

    convert_condition_field_eq_val_str = _field_test
    convert_condition_field_eq_val_str_case_sensitive = _field_test
    convert_condition_field_eq_val_num = _field_test
    convert_condition_field_eq_val_bool = _field_test
    convert_condition_field_eq_val_re = _field_test
    convert_condition_field_eq_val_cidr = _field_test
    convert_condition_field_compare_op_val = _field_test

    def convert_condition_field_eq_val_null(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        return self._test(cond.field, state, str, absent=True)

    def convert_condition_field_eq_val_exists(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str:
        value = cond.value
        assert isinstance(value, SigmaExists)
        absent = self._test(cond.field, state, str, absent=True)
        return f"(NOT {absent})" if value.exists else absent

    def _unsupported(self, cond: Any, state: ConversionState) -> str:
        raise SigmaFeatureNotSupportedByBackendError(
            f"unsupported condition element {type(cond.value).__name__} ({cond.value})"
        )

    convert_condition_field_eq_field = _unsupported
    convert_condition_field_eq_val_timestamp_part = _unsupported
    convert_condition_field_eq_query_expr = _unsupported
    convert_condition_query_expr = _unsupported

    # keywords: a value without a field matches one of the table's free-text columns whole
    def _keyword(self, cond: ConditionValueExpression, state: ConversionState) -> str:
        predicate = self._predicate(cond.value)
        tests = [self._test(col, state, predicate) for col in KEYWORD_COLUMNS[self._table(state)]]
        return "(" + " OR ".join(tests) + ")"

    convert_condition_val_str = _keyword
    convert_condition_val_num = _keyword
    convert_condition_val_re = _keyword

    # ------------------------------------------------------------------ queries

    def finalize_query_default(
        self, rule: SigmaRule | SigmaCorrelationRule, query: Any, index: int, state: ConversionState
    ) -> Any:
        if isinstance(rule, SigmaCorrelationRule):
            return self._plans.pop(id(rule))
        return SigmaQuery(
            table=self._table(state), where=query, bodies=set(state.processing_state.get("bodies", set()))
        )

    def finalize_output_default(self, queries: list[Any]) -> Any:
        return queries

    # ------------------------------------------------------------------ correlations

    def _correlation(self, rule: SigmaCorrelationRule, counted: str | None) -> list[SigmaQuery]:
        """Sliding windows: a row of the base rules qualifies when the window of ``timespan``
        ending at it, in its group, holds enough events (``counted``: distinct values of that
        expression instead); every row inside a qualifying window is returned."""
        cond = rule.condition
        ops = {SigmaCorrelationConditionOperator.GTE: ">=", SigmaCorrelationConditionOperator.GT: ">"}
        if getattr(cond, "op", None) not in ops:
            # a window with fewer events always exists (a group's first event): only lower bounds have a meaning here
            raise SigmaFeatureNotSupportedByBackendError(
                f"correlation condition {getattr(cond, 'op', cond)} is not supported (only gt, gte)"
            )
        if rule.aliases and rule.aliases.aliases:
            raise SigmaFeatureNotSupportedByBackendError("correlation field aliases are not supported")
        bases: list[SigmaQuery] = []
        for ref in rule.rules or []:
            base = getattr(ref, "rule", None)
            results = base.get_conversion_result() if isinstance(base, SigmaRule) else None
            if not results or not all(isinstance(q, SigmaQuery) and q.where is not None for q in results):
                raise SigmaFeatureNotSupportedByBackendError(f"correlated rule {ref.reference} was not converted")
            bases.extend(results)
        tables = {q.table for q in bases}
        if len(tables) != 1:
            raise SigmaFeatureNotSupportedByBackendError("correlated rules read different tables")
        table = tables.pop()
        schema = TABLES[table].arrow_schema
        group = list(rule.group_by or [])
        for name in group + ([counted] if counted and counted != "_sigma_rule" else []):
            if name not in schema.names or pa.types.is_list(schema.field(name).type) or name in JSON_COLUMNS:
                raise SigmaFeatureNotSupportedByBackendError(
                    f"correlation field {name!r} is not a plain column of {table}"
                )
        quoted = ['"' + g.replace('"', '""') + '"' for g in group]
        cols = list(
            dict.fromkeys([*HIT_COLUMNS[table], *group] + ([counted] if counted and counted != "_sigma_rule" else []))
        )
        union = " UNION ALL ".join(
            f"SELECT {', '.join(cols)}, {i} AS _sigma_rule FROM {table} WHERE {q.where}" for i, q in enumerate(bases)
        )
        span = int(rule.timespan.seconds)
        part = f"PARTITION BY {', '.join(quoted)} " if quoted else ""
        trailing = f"({part}ORDER BY time RANGE BETWEEN INTERVAL {span} SECOND PRECEDING AND CURRENT ROW)"
        leading = f"({part}ORDER BY time RANGE BETWEEN CURRENT ROW AND INTERVAL {span} SECOND FOLLOWING)"
        measure = "count(*)" if counted is None else 'count(DISTINCT "' + counted.replace('"', '""') + '")'
        threshold = _number(cond.count)
        out = ", ".join(cols)
        sql = (
            f"SELECT {out} FROM (SELECT *, bool_or(_sigma_qualifies) OVER {leading} AS _sigma_inside FROM "
            f"(SELECT *, {measure} OVER {trailing} {ops[cond.op]} {threshold} AS _sigma_qualifies FROM ({union}))) "
            f"WHERE _sigma_inside ORDER BY time, event_id"
        )
        # the query text goes through pySigma's finishing steps; finalize_query_default returns the plan
        self._plans[id(rule)] = SigmaQuery(
            table=table,
            where=None,
            bodies=set().union(*(q.bodies for q in bases)),
            correlation=sql,
            group_by=group,
            timespan=span,
        )
        return [sql]

    def convert_correlation_event_count_rule(
        self, rule: SigmaCorrelationRule, output_format: str | None = None, method: str = "default"
    ) -> list[Any]:
        return self._correlation(rule, None)

    def convert_correlation_value_count_rule(
        self, rule: SigmaCorrelationRule, output_format: str | None = None, method: str = "default"
    ) -> list[Any]:
        ref = rule.condition.fieldref
        if not isinstance(ref, str):
            raise SigmaFeatureNotSupportedByBackendError("value_count needs one field")
        return self._correlation(rule, ref)

    def convert_correlation_temporal_rule(
        self, rule: SigmaCorrelationRule, output_format: str | None = None, method: str = "default"
    ) -> list[Any]:
        if rule.type != SigmaCorrelationType.TEMPORAL or not rule.rules:
            raise SigmaFeatureNotSupportedByBackendError(
                "only temporal correlations over a list of rules are supported"
            )
        # every correlated rule matched inside the window: as many distinct rules as the list holds
        rule.condition.op = SigmaCorrelationConditionOperator.GTE
        rule.condition.count = len(rule.rules)
        return self._correlation(rule, "_sigma_rule")

    def _no_correlation(
        self, rule: SigmaCorrelationRule, output_format: str | None = None, method: str = "default"
    ) -> list[Any]:
        raise SigmaFeatureNotSupportedByBackendError(f"{rule.type.name.lower()} correlations are not supported")

    convert_correlation_temporal_ordered_rule = _no_correlation
    convert_correlation_extended_temporal_rule = _no_correlation
    convert_correlation_extended_temporal_ordered_rule = _no_correlation
    convert_correlation_value_sum_rule = _no_correlation
    convert_correlation_value_avg_rule = _no_correlation
    convert_correlation_value_percentile_rule = _no_correlation
    convert_correlation_value_median_rule = _no_correlation


def _json_values(column: str, path: list[str]) -> str:
    """The values at ``path`` in the JSON text of ``column``, as a VARCHAR list: every array met
    along the path is flattened, as Sigma reads list-valued fields; a body that is absent, not JSON
    or left unread (``SigmaQuery.select``'s ``unread``) holds none."""
    col = f"CAST({column} AS VARCHAR)"
    nodes = (
        f"(CASE WHEN json_valid({col}) AND NOT list_contains({unread_token(column)}, CAST(event_id AS VARCHAR)) "
        f"THEN [json({col})] ELSE []::JSON[] END)"
    )
    for depth, key in enumerate(path):
        pointer = sql_string("/" + key.replace("~", "~0").replace("/", "~1"))
        n, i = f"n{depth}", f"i{depth}"
        items = f"(CASE WHEN json_type({n}) = 'ARRAY' THEN json_extract({n}, '$[*]') ELSE [{n}] END)"
        nodes = (
            f"list_filter(flatten(list_transform({nodes}, lambda {n}: list_transform({items}, lambda {i}: json_extract({i}, {pointer})))), "
            f"lambda v{depth}: v{depth} IS NOT NULL)"
        )
    leaf = (
        "(CASE WHEN json_type(n) = 'ARRAY' THEN json_extract_string(n, '$[*]') ELSE [json_extract_string(n, '$')] END)"
    )
    return f"list_filter(flatten(list_transform({nodes}, lambda n: {leaf})), lambda v: v IS NOT NULL)"


def unread_token(column: str) -> str:
    """Where ``SigmaQuery.select`` puts the ids of the bodies of ``column`` left unread; NUL is
    refused in rule values, so no rule text can hold it."""
    return f"\x00unread:{column}\x00"


def _check_re2(regex: str) -> None:
    """Refuse a regular expression DuckDB's RE2 cannot compile (look-around, back-references)."""
    con = duckdb.connect()
    try:
        con.execute("SELECT regexp_matches('', ?)", [regex])
    except duckdb.Error as e:
        raise SigmaFeatureNotSupportedByBackendError(
            f"regular expression {regex!r} is not supported by DuckDB: {e}"
        ) from None
    finally:
        con.close()


__all__ = ["HIT_COLUMNS", "DuckDBBackend", "SigmaQuery", "like_pattern", "sql_string", "unread_token"]
