"""Imports point one way: sources → store → context/ingest → detect → analysis → remediation →
views → cli. Every import of the package's own modules counts — at the top of a module, inside a
function, or under ``TYPE_CHECKING`` — so a cycle cannot hide in a function body."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "k8sforensics"

# Lowest first. A module may import its own layer and the layers before it, never one after it.
LAYERS: list[tuple[str, ...]] = [
    ("version", "errors", "schema", "frames", "bodies", "node_ids", "tactics"),  # what every layer shares
    ("sources",),
    ("case",),  # the store
    ("context",),
    ("ingest",),
    ("detect",),
    ("analysis",),
    ("remediation",),
    ("views",),
    # the entry points: the package's public names, the CLI, and the sample evidence, which only
    # the demo may read (no analysis may import a scenario's truth)
    ("__init__", "__main__", "cli", "samples"),
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported(path: Path, root: Path = PACKAGE) -> Iterator[tuple[int, str]]:
    """(line, module) of every import of a k8sforensics module in ``path``, wherever it is."""
    module = module_name(path, root)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "k8sforensics":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "k8sforensics":
                continue
            # `from . import x` and `from .pkg import module` name modules: count the module
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                yield node.lineno, candidate if _is_module(candidate, root) else target


def _is_module(name: str, root: Path) -> bool:
    rel = Path(*name.split(".")[1:])
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in LAYER:
        raise AssertionError(f"{module}: no layer declared for k8sforensics.{top} in tests/test_layering.py")
    return LAYER[top]


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    for path in modules():
        layer_of(module_name(path))


def against_the_direction(path: Path, root: Path = PACKAGE) -> list[str]:
    here = module_name(path, root)
    return [
        f"line {line}: {target} (layer {LAYERS[layer_of(target)][0]})"
        for line, target in imported(path, root)
        if layer_of(target) > layer_of(here)
    ]


@pytest.mark.parametrize("path", modules(), ids=lambda p: module_name(p))
def test_imports_point_downstream(path: Path) -> None:
    here = module_name(path)
    against = against_the_direction(path)
    assert not against, f"{here} (layer {LAYERS[layer_of(here)][0]}) imports against the direction:\n  " + "\n  ".join(
        against
    )


def test_no_import_cycles() -> None:
    """Not even through a function-local import: within a layer too, modules form no cycle."""
    import networkx as nx

    graph = nx.DiGraph()
    for path in modules():
        here = module_name(path)
        graph.add_node(here)
        for _, target in imported(path):
            if target != here and not here.startswith(target + "."):  # a package's own __init__ is not a cycle
                graph.add_edge(here, target)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, "import cycles:\n  " + "\n  ".join(" → ".join([*c, c[0]]) for c in cycles[:10])


def test_the_layering_test_sees_an_import_against_the_direction(tmp_path: Path) -> None:
    root = tmp_path / "k8sforensics"
    for rel, text in {
        "__init__.py": "",
        "sources/__init__.py": "",
        "analysis/__init__.py": "",
        "analysis/graph.py": "",
        "sources/bad.py": "def f():\n    from ..analysis import graph\n",
        "sources/good.py": "from ..schema import TABLES\nfrom . import bad\n",
        "schema.py": "",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    assert against_the_direction(root / "sources" / "bad.py", root) == [
        "line 2: k8sforensics.analysis.graph (layer analysis)"
    ]
    assert against_the_direction(root / "sources" / "good.py", root) == []
