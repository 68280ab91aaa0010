"""Graph node ids are made and read in one module (``node_ids``): no other module spells
a kind's prefix (``"pod:"``, ``f"sa:{ns}/{name}"``, ``.startswith("ip:")``, ``[len("user:"):]``),
and no module of the graph's consumers (analysis, remediation, views) splits a string on ``:``
with ``partition`` (ids are parsed by ``node_ids.parse``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd

from k8sforensics import node_ids

PACKAGE = Path(__file__).resolve().parents[1] / "k8sforensics"
KINDS = ("pod", "sa", "node", "ip", "user", "secret", "workload", "binding", "role", "group", "webhook", "csr")
PREFIX = re.compile(rf"^(?:{'|'.join(KINDS)}):(?!\s)")  # "pod: runAsUser 0" is prose
# the scenario family writes its ground truth (the path's node ids among it) on its own, not with
# the module whose output the truth checks: a wrong formatter must not agree with itself
INDEPENDENT = {"samples/scenario.py"}
CONSUMERS = ("analysis/", "remediation/", "views/")


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                out.add(id(first.value))
    return out


def id_spellings(source: str, *, partition: bool = True) -> list[str]:
    """Where ``source`` spells a node id's prefix or (with ``partition``) splits a string on
    ``:`` with partition."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and PREFIX.match(node.value)
        ):
            found.append(f"line {node.lineno}: {node.value!r}")
        elif (
            partition
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "partition"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == ":"
        ):
            found.append(f"line {node.lineno}: .partition(':')")
    return sorted(found, key=lambda f: int(f.split()[1].rstrip(":")))


def test_no_module_but_node_ids_spells_an_id() -> None:
    spelled = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "node_ids.py":
            continue
        found = id_spellings(path.read_text(), partition=rel.startswith(CONSUMERS))
        if found and rel not in INDEPENDENT:
            spelled[rel] = found
    assert not spelled, "node ids spelled outside node_ids.py:\n" + "\n".join(f"  {k}: {v}" for k, v in spelled.items())


def test_the_independent_list_names_modules_that_spell_ids() -> None:
    for rel in INDEPENDENT:
        path = PACKAGE / rel
        assert path.is_file() and id_spellings(path.read_text()), f"{rel} spells no id: remove it from INDEPENDENT"


def test_the_check_sees_each_way_of_spelling_an_id() -> None:
    source = '''
"""pod:ns/name in a docstring is documentation."""
a = "pod:" + ns + "/" + name
b = f"sa:{ns}/{name}"
c = n.startswith("ip:")
d = u[len("user:system:node:"):]
kind, _, rest = n.partition(":")
e = "system:node:" + name  # a user name, not an id
'''
    assert [f.split(":")[0] for f in id_spellings(source)] == ["line 3", "line 4", "line 5", "line 6", "line 7"]


def test_vectorised_formatters_give_the_scalar_strings() -> None:
    ns, name = pd.Series(["shop", None, "pay"]), pd.Series(["web-1", "x", float("nan")])
    # what the graph spelled before: a missing part stays missing (or reads as astype(str) makes it)
    pd.testing.assert_series_equal(node_ids.pods(ns, name), "pod:" + ns.astype(str) + "/" + name.astype(str))
    assert node_ids.pods(ns, name).iloc[0] == node_ids.pod("shop", "web-1")
    assert node_ids.workloads(ns, pd.Series(["deployments"] * 3), name).tolist()[0] == node_ids.workload(
        "shop", "deployments", "web-1"
    )
    for vector, scalar in (
        (node_ids.nodes, node_ids.node),
        (node_ids.ips, node_ids.ip),
        (node_ids.users, node_ids.user),
        (node_ids.bindings, node_ids.binding),
        (node_ids.webhooks, node_ids.webhook),
        (node_ids.csrs, node_ids.csr),
    ):
        assert vector(pd.Series(["a", "b:c/d"])).tolist() == [scalar("a"), scalar("b:c/d")]
    actors = node_ids.actors(pd.Series(["ci", None]), pd.Series(["deployer", None]), pd.Series(["x", "alice"]))
    assert actors.tolist() == ["sa:ci/deployer", "user:alice"]


def test_identity_of_a_user_name() -> None:
    names = ["system:serviceaccount:ci:deployer", "alice@corp.example", "system:node:n1"]
    assert [node_ids.identity(n) for n in names] == ["sa:ci/deployer", "user:alice@corp.example", "user:system:node:n1"]
    assert node_ids.identities(pd.Series([*names, None])).tolist()[:3] == [node_ids.identity(n) for n in names]
    assert (
        node_ids.is_kubelet(node_ids.identity("system:node:n1"))
        and node_ids.kubelet("node:n1") == "user:system:node:n1"
    )
    assert node_ids.entity("service_account", "ci/deployer") == "sa:ci/deployer"
    assert node_ids.username(node_ids.entity("service_account", "ci/deployer")) == "system:serviceaccount:ci:deployer"
