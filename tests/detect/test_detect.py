"""``detect``: one path for every rule — the built-in rules on the rows they can use, a rule
that reads whole tables on whole tables, a rule that only queries ``evidence.sql`` on the case's
Parquet — and the same built-in findings whichever other rules run with them."""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.detect import BUILTIN_RULES, Evidence, Rule, detect, reduction
from k8sforensics.detect.engine import AUDIT_COLUMNS_UNREAD, run_rules

COLUMNS = ["finding_id", "rule_id", "time", "time_end", "entity", "summary", "event_count", "event_ids", "severity"]


def _rule(rule_id: str, reads: str, logic: Any) -> Rule:
    return Rule(
        id=rule_id,
        title=rule_id,
        severity="low",
        technique_id=None,
        attack_id="T1613",
        tactic="Discovery",
        kill_chain_phase="Actions on Objectives",
        table="audit",
        logic=logic,
        reads=reads,
        source="custom",
    )


def test_custom_rules_leave_the_builtin_findings_as_they_are(sample_case: kf.Case) -> None:
    seen: dict[str, Any] = {}

    def whole_tables(ev: Evidence) -> pd.DataFrame:
        seen["audit_rows"], seen["audit_columns"] = len(ev.audit), set(ev.audit.columns)
        rows = ev.audit[ev.audit["verb"] == "delete"].head(2)
        return pd.DataFrame({"time": rows["time"], "event_ids": [[e] for e in rows["event_id"]]})

    def sql_only(ev: Evidence) -> pd.DataFrame:
        rows = ev.sql("SELECT time, event_id FROM audit WHERE verb = 'list' ORDER BY time, event_id LIMIT 2")
        seen["sql_loaded_nothing"] = ev.reads_case("audit") and ev.reads_case("runtime") and ev.reads_case("flows")
        return pd.DataFrame({"time": rows["time"], "event_ids": [[e] for e in rows["event_id"]]})

    alone = detect(sample_case, save=False)
    together = detect(
        sample_case,
        rules=[_rule("custom-sql", "sql", sql_only), *BUILTIN_RULES, _rule("custom-tables", "tables", whole_tables)],
        save=False,
    )
    builtin = together[~together["rule_id"].isin(["custom-tables", "custom-sql"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        builtin[COLUMNS], alone[COLUMNS], check_dtype=False
    )  # a custom rule's None entities make the column object
    assert set(together["rule_id"]) - set(alone["rule_id"]) == {"custom-tables", "custom-sql"}
    # the whole-table rule read every row and column of the audit table; the SQL rule loaded no table
    assert seen["audit_rows"] == sample_case.sql("SELECT count(*) AS n FROM audit")["n"].iloc[0]
    assert seen["audit_columns"] >= AUDIT_COLUMNS_UNREAD
    assert seen["sql_loaded_nothing"]


def test_sql_reaches_the_case_from_the_reduced_rows(sample_case: kf.Case) -> None:
    kept = reduction.reduced(Evidence.from_case(sample_case))
    assert kept.case is sample_case
    total = sample_case.sql("SELECT count(*) AS n FROM audit")["n"].iloc[0]
    assert (
        kept.sql("SELECT count(*) AS n FROM audit")["n"].iloc[0] == total > len(kept.audit)
    )  # the case's table, not the kept rows


def test_each_rule_runs_on_the_evidence_its_reads_names() -> None:
    whole, part = Evidence(), Evidence()
    got: dict[str, Evidence] = {}

    def record(name: str) -> Any:
        return lambda ev: got.setdefault(name, ev).audit.iloc[:0].assign(event_ids=[])

    rules = [_rule(f"r-{reads}", reads, record(reads)) for reads in ("tables", "reduced", "sql")]
    run_rules(whole, rules, reduced=part)
    assert got == {"tables": whole, "reduced": part, "sql": whole}
    got.clear()
    run_rules(whole, rules)  # no reduced rows: every rule reads the evidence given
    assert all(ev is whole for ev in got.values())


@pytest.mark.parametrize("reads", ["tables", "sql"])
def test_a_custom_rule_alone_does_not_reduce(sample_case: kf.Case, reads: str, monkeypatch: pytest.MonkeyPatch) -> None:
    package = sys.modules["k8sforensics.detect"]  # ``k8sforensics.detect`` is also the function
    calls = []
    monkeypatch.setattr(package, "reduced", lambda ev: calls.append(ev) or reduction.reduced(ev))
    detect(sample_case, rules=[_rule("custom", reads, lambda ev: pd.DataFrame())], save=False)
    assert calls == []
    detect(sample_case, rules=[BUILTIN_RULES[0]], save=False)
    assert len(calls) == 1
