"""The accuracy harness's remediation checks on hand-made checklists: the verb from the ``kind``
column, preserve before destroy, and steps that name an empty file (issue 18)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def acc() -> Any:
    spec = importlib.util.spec_from_file_location("accuracy_checks", ROOT / "benchmarks" / "accuracy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checklist(*rows: tuple[Any, ...], steps: list[int] | None = None) -> pd.DataFrame:
    """Rows of (kind, target, command[, artifact]); ``step`` from ``steps`` when given."""
    out = pd.DataFrame(
        [
            {
                "kind": r[0],
                "action": f"{r[0]} {r[1]}",
                "target": r[1],
                "command": r[2] if len(r) > 2 else "",
                "artifact": r[3] if len(r) > 3 else "",
            }
            for r in rows
        ]
    )
    if steps is not None:
        out.insert(0, "step", steps)
    return out


@pytest.fixture
def pods() -> pd.DataFrame:
    """Node n1 runs the reached web pod, a co-tenant coredns pod, a DaemonSet pod and a static pod."""
    return pd.DataFrame(
        [
            {
                "namespace": "shop",
                "name": "web-1",
                "node": "n1",
                "workload": "web",
                "workload_kind": "Deployment",
                "owner_kind": "ReplicaSet",
                "service_account": "web",
                "labels": {"app": "web"},
                "deleted": None,
            },
            {
                "namespace": "kube-system",
                "name": "coredns-1",
                "node": "n1",
                "workload": "coredns",
                "workload_kind": "Deployment",
                "owner_kind": "ReplicaSet",
                "service_account": "coredns",
                "labels": {"k8s-app": "kube-dns"},
                "deleted": None,
            },
            {
                "namespace": "kube-system",
                "name": "kube-proxy-a",
                "node": "n1",
                "workload": "kube-proxy",
                "workload_kind": "DaemonSet",
                "owner_kind": "DaemonSet",
                "service_account": "kube-proxy",
                "labels": {"k8s-app": "kube-proxy"},
                "deleted": None,
            },
            {
                "namespace": "kube-system",
                "name": "evil-n1",
                "node": "n1",
                "workload": None,
                "workload_kind": None,
                "owner_kind": "Node",
                "service_account": "default",
                "labels": {},
                "deleted": None,
            },
            {
                "namespace": "shop",
                "name": "web-0",
                "node": "n2",
                "workload": "web",
                "workload_kind": "Deployment",
                "owner_kind": "ReplicaSet",
                "service_account": "web",
                "labels": {"app": "web"},
                "deleted": pd.Timestamp("2026-05-12T08:00:00Z"),
            },
        ]
    )


def test_preserve_after_delete_is_an_order_violation(acc: Any) -> None:
    bad = checklist(("isolate", "pod:shop/web-1"), ("delete", "pod:shop/web-1"), ("preserve", "pod:shop/web-1"))
    assert acc.order_violations(bad) == [
        "destroyed before preserved: pod:shop/web-1 (by delete pod:shop/web-1 at step 2; preserved at step 3)"
    ]
    good = checklist(("preserve", "pod:shop/web-1"), ("isolate", "pod:shop/web-1"), ("delete", "pod:shop/web-1"))
    assert acc.order_violations(good) == []


def test_the_step_column_orders_not_the_row_order(acc: Any) -> None:
    rows = (("delete", "pod:shop/web-1"), ("preserve", "pod:shop/web-1"))
    assert acc.order_violations(checklist(*rows, steps=[2, 1])) == []
    assert len(acc.order_violations(checklist(*rows, steps=[1, 2]))) == 1


def test_every_preserve_row_of_a_target_comes_first(acc: Any) -> None:
    """Logs and a checkpoint of one pod: a checkpoint after the delete is too late even when the logs came first."""
    rows = checklist(("preserve", "pod:shop/web-1"), ("delete", "pod:shop/web-1"), ("preserve", "pod:shop/web-1"))
    assert len(acc.order_violations(rows)) == 1


def test_an_isolated_pod_destroyed_with_no_preserve_at_all(acc: Any) -> None:
    rows = checklist(("isolate", "pod:shop/web-1"), ("delete", "pod:shop/web-1"))
    assert acc.order_violations(rows) == [
        "destroyed before preserved: pod:shop/web-1 (isolated, then destroyed by delete pod:shop/web-1 at step 2; "
        "never preserved)"
    ]
    # an attacker's object never isolated and never preserved: deleting it is no order question
    assert acc.order_violations(checklist(("delete", "pod:default/debug-tools-x"))) == []


def test_a_rotation_that_deletes_the_accounts_pods_destroys_them(acc: Any, pods: pd.DataFrame) -> None:
    rot = "kubectl -n shop delete pod --field-selector spec.serviceAccountName=web && kubectl -n shop delete serviceaccount web"
    rows = checklist(("rotate", "sa:shop/web", rot), ("preserve", "pod:shop/web-1"))
    assert acc.order_violations(rows, pods=pods) == [
        "destroyed before preserved: pod:shop/web-1 (by rotate sa:shop/web at step 1; preserved at step 2)"
    ]
    # a pod already gone is not destroyed again; another namespace's pods are not touched
    assert acc.command_destroys(rot, pods) == {"pod:shop/web-1"}


def test_a_drain_evicts_the_nodes_pods_but_not_daemonset_or_static_pods(acc: Any, pods: pd.DataFrame) -> None:
    drain = "kubectl cordon n1 && kubectl drain n1 --ignore-daemonsets --delete-emptydir-data"
    assert acc.command_destroys(drain, pods) == {"pod:shop/web-1", "pod:kube-system/coredns-1"}
    rows = checklist(
        ("cordon", "node:n1", drain), ("preserve", "pod:shop/web-1"), ("preserve", "node:n1"), ("rebuild", "node:n1")
    )
    assert acc.order_violations(rows, pods=pods) == [
        "destroyed before preserved: pod:shop/web-1 (by cordon node:n1 at step 1; preserved at step 2)"
    ]


def test_rebuilding_a_node_destroys_it_and_everything_on_it(acc: Any, pods: pd.DataFrame) -> None:
    rows = checklist(("rebuild", "node:n1"), ("preserve", "node:n1"), ("preserve", "pod:kube-system/evil-n1"))
    got = acc.order_violations(rows, pods=pods)
    assert [v.split(" (")[0] for v in got] == [
        "destroyed before preserved: node:n1",
        "destroyed before preserved: pod:kube-system/evil-n1",
    ]


def test_redeploying_a_workload_replaces_its_pods(acc: Any, pods: pd.DataFrame) -> None:
    undo = "kubectl rollout undo deployment/web -n shop"
    assert acc.command_destroys(undo, pods) == {"pod:shop/web-1"}
    rows = checklist(("redeploy", "workload:shop/Deployment/web", undo), ("preserve", "pod:shop/web-1"))
    assert len(acc.order_violations(rows, pods=pods)) == 1


def test_dry_runs_and_reads_destroy_nothing(acc: Any, pods: pd.DataFrame) -> None:
    assert acc.command_destroys("kubectl -n shop delete pod web-1 --dry-run=server", pods) == set()
    assert (
        acc.command_destroys("kubectl -n shop get pod web-1 -o json > 'preserved/delete pod web-1.json'", pods) == set()
    )
    assert (
        acc.command_destroys("kubectl -n shop label pod web-1 k8sforensics.io/quarantine=true --overwrite", pods)
        == set()
    )
    assert acc.command_destroys("kubectl delete pod/web-1 -n shop", pods) == {"pod:shop/web-1"}
    assert acc.command_destroys("kubectl -n kube-system delete pod -l k8s-app=kube-dns", pods) == {
        "pod:kube-system/coredns-1"
    }


def test_the_verb_comes_from_the_kind_column(acc: Any) -> None:
    rows = checklist(("revoke", "user:jane"), ("cordon", "node:n1"), ("preserve", "node:n1"))
    rows["action"] = [
        "delete jane's access",
        "drain n1",
        "snapshot the disk",
    ]  # text that would mislead the old heuristic
    assert acc.row_kinds(rows) == ["rotate", "cordon", "preserve"]
    truth = {
        "remediation": {
            "must": [
                {"do": "rotate", "target": "user:jane", "why": "x"},
                {"do": "rebuild", "target": "node:n1", "why": "y"},
            ],
            "must_not": [],
        }
    }
    got = acc.score_remediation(rows, truth)
    assert (got["must"], got["must_hit"]) == (2, 1)  # a cordon is not a rebuild
    # a checklist without the column: the text heuristic as before
    assert acc.row_kinds(rows.drop(columns="kind")) == ["delete", "rebuild", "preserve"]


def test_a_step_naming_an_empty_or_missing_file_is_a_violation(acc: Any, tmp_path: Path) -> None:
    (tmp_path / "remediation").mkdir()
    (tmp_path / "remediation" / "10-networkpolicies.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\n"
    )
    (tmp_path / "remediation" / "30-rbac.yaml").write_text("# nothing to apply\n")
    rows = checklist(
        (
            "apply",
            "cluster",
            "kubectl apply --dry-run=server -f remediation/10-networkpolicies.yaml",
            "remediation/10-networkpolicies.yaml",
        ),
        ("apply", "cluster", "", "remediation/30-rbac.yaml"),
        ("apply", "cluster", "kubectl apply -f remediation/40-missing.yaml"),
        ("preserve", "pod:shop/web-1", "", "preserved/shop/web-1/logs.txt"),
    )  # written by the responder, not checked
    assert acc.empty_artifacts(rows, case_dir=tmp_path) == [
        "step 2 (apply cluster) refers to an empty or missing file: remediation/30-rbac.yaml",
        "step 3 (apply cluster) refers to an empty or missing file: remediation/40-missing.yaml",
    ]


def test_order_and_file_violations_count_as_must_not(acc: Any, tmp_path: Path) -> None:
    rows = checklist(
        ("delete", "pod:shop/web-1"),
        ("preserve", "pod:shop/web-1"),
        ("apply", "cluster", "", "remediation/none.yaml"),
        ("block", "ip:10.0.0.5"),
    )
    got = acc.score_remediation(rows, {"remediation": {"must": [], "must_not": []}}, case_dir=tmp_path)
    assert (got["must_not"], got["order_violations"]) == (3, 1)
    assert (
        sum(m.startswith("remediation must-not: destroyed before preserved: pod:shop/web-1") for m in got["misses"])
        == 1
    )


def test_a_file_named_by_its_absolute_path_in_the_case_is_checked_too(acc: Any, tmp_path: Path) -> None:
    (tmp_path / "remediation").mkdir()
    empty = tmp_path / "remediation" / "00-quarantine-networkpolicies.yaml"
    empty.write_text("---\n# nothing to apply\n")
    rows = checklist(
        ("apply", f"file:{empty}", f"kubectl apply --dry-run=server -f {empty} && kubectl apply -f {empty}"),
        ("apply", "cluster", "kubectl apply -f /etc/kubernetes/elsewhere.yaml"),
    )  # outside the case: not a generated file
    assert acc.empty_artifacts(rows, case_dir=tmp_path) == [
        f"step 1 (apply file:{empty}) refers to an empty or missing file: {empty}"
    ]
