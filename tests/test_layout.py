"""How the package is laid out: its modules import one another in layers, without a circle, counting the imports
written inside functions (which Python resolves late, so a circle among them runs but ties every module in it to the
others)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "transferkit"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in it (``from .x import y`` names ``x.y`` where ``y`` is a
    module, else ``x``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("transferkit")}
    return (found & modules) - {name}


def test_the_package_imports_itself_without_a_circle():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    graph = {_module_name(p): _imported(p, modules) for p in paths}
    assert sum(map(len, graph.values())) > 100  # the imports were read
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        raise AssertionError(f"modules in a circle, each imported by the next: {' -> '.join(error.args[1])}") from None
