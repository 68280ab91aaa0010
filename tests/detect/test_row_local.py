"""``Rule.row_local``: a rule that judges each row on its own runs, after the reduction, on the
rows it matched in the chunk pass alone (``Evidence.for_rule``) and finds there what it finds on
every row the reduction kept."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import k8sforensics as kf
from k8sforensics.detect import BUILTIN_RULES, Evidence, reduction
from k8sforensics.detect.audit_rules import AUDIT_RULES
from k8sforensics.detect.engine import AUDIT_COLUMNS_READ, run_rules
from k8sforensics.detect.reduction import reduced
from tests.event_frames import audit, frame

HIT_COLUMNS = ["time", "entity", "user", "summary", "event_ids", "severity"]


def _hits(hits: pd.DataFrame) -> pd.DataFrame:
    if hits.empty:
        return pd.DataFrame(columns=HIT_COLUMNS)
    out = hits.reindex(columns=HIT_COLUMNS).astype(object)
    out["event_ids"] = out["event_ids"].map(lambda ids: tuple(sorted(map(str, ids))))
    return out.sort_values(["time", "summary"], kind="stable").reset_index(drop=True)


def test_row_local_is_about_the_reduced_rows() -> None:
    with pytest.raises(ValueError, match="row_local"):
        dataclasses.replace(AUDIT_RULES[0], reads="tables")


@pytest.mark.parametrize("chunk_rows", [1_000_000, 50])
def test_each_row_local_rule_finds_on_its_own_rows_what_it_finds_on_every_row_kept(
    sample_case: kf.Case, chunk_rows: int
) -> None:
    rows = reduced(Evidence.from_case(sample_case, chunk_rows=chunk_rows, audit_columns=AUDIT_COLUMNS_READ))
    every = rows.with_rows(audit=rows.audit, runtime=rows.runtime)  # no rule's rows recorded: all kept rows
    local = [rule for rule in BUILTIN_RULES if rule.row_local]
    assert len(local) >= 20
    found = 0
    for rule in local:
        own = rows.for_rule(rule)
        assert own is not rows  # the reduction recorded what it matched, even nothing
        assert len(own.audit) + len(own.runtime) <= len(rows.audit) + len(rows.runtime)
        expected = _hits(rule.logic(every))
        pd.testing.assert_frame_equal(_hits(rule.logic(own)), expected, obj=rule.id)
        found += len(expected) > 0
    assert found >= 5  # the sample breach gives several of them something to find


def test_a_rule_that_joins_rows_loses_its_findings_if_declared_row_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first use of a new cluster-admin binding needs the binding's creation, which is not
    one of its matches: on its matches alone it finds nothing. Such a rule stays row_local=False."""
    crb = {
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "mallory"}],
    }
    table = frame(
        "audit",
        audit("2026-01-01T10:00:00Z", "alice", "create", "clusterrolebindings", object_name="bd", request_object=crb),
        audit("2026-01-01T10:31:00Z", "mallory", "get", "nodes", object_name="n1"),
    )
    (first_use,) = [rule for rule in AUDIT_RULES if rule.id == "k8s-cluster-admin-binding-first-use"]
    assert not first_use.row_local
    as_declared, _ = run_rules(reduced(Evidence(audit=table, chunk_rows=5)), [first_use])
    wrong = dataclasses.replace(first_use, row_local=True)
    monkeypatch.setattr(reduction, "AUDIT_RULES", [wrong if r.id == wrong.id else r for r in AUDIT_RULES])
    wrongly, _ = run_rules(reduced(Evidence(audit=table, chunk_rows=5)), [wrong])
    assert len(as_declared) == 1 and wrongly.empty


def test_the_findings_are_those_of_every_rule_on_every_row_kept(sample_case: kf.Case) -> None:
    """Row-local rules on their own rows change no finding of any rule — the flow rules that read
    the kept rows (the execs an egress is anchored to) keep reading all of them, whichever rule
    asks for the flows first."""
    rows = reduced(Evidence.from_case(sample_case, chunk_rows=50, audit_columns=AUDIT_COLUMNS_READ))
    every = rows.with_rows(audit=rows.audit, runtime=rows.runtime)
    shell_first = sorted(BUILTIN_RULES, key=lambda rule: not rule.flow_rows or not rule.row_local)
    assert shell_first[0].row_local and shell_first[0].flow_rows  # a row-local rule asks for the flows first
    got, _ = run_rules(rows, shell_first)
    expected, _ = run_rules(every, shell_first)
    assert "net-exec-then-egress" in set(expected["rule_id"])
    columns = ["finding_id", "rule_id", "time", "severity", "summary", "event_ids"]
    pd.testing.assert_frame_equal(got[columns], expected[columns])
