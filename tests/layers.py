"""The product's import diagram, and a checker that holds a source tree to a diagram.

A diagram is a list of layers, top first; a layer is one or more parts, each a list of
module prefixes (``search.service`` is that package and everything under it). A module
belongs to the part with the longest prefix it starts with. An import may point to its own
part or to any part of a lower layer: never up, and never sideways to another part of its
own layer. Every import counts, wherever it is written (inside a function, under
``TYPE_CHECKING``, in a package's ``__init__``), and so does the ``__init__`` of each package
an import passes through (``from a.b.c import x`` runs ``a/b/__init__.py``), but for the
top-level packages'. Besides, no import may close a cycle, even within one part.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from pathlib import Path

Diagram = Sequence[tuple[str, Sequence[Sequence[str]]]]
"""``[(layer name, [part prefixes, ...]), ...]``, the top layer first."""

PRODUCT: Diagram = (
    ("entry points", [["search.__main__", "search.cli"]]),
    ("programs", [["search.jobs"], ["search.service"]]),
    ("views", [["search.views"]]),
    ("trained models", [["search.trained"]]),
    ("the trial", [["search.method.suggest", "search.method.trial_config",
                    "search.method.prepared_data", "search.method.recipe",
                    "search.method.lrrt.run"]]),
    ("config", [["search.config"]]),
    ("method parts and registries", [["search.method"]]),
    ("record", [["search.record"]]),
    ("models and data", [["models"], ["data"]]),
    ("errors", [["search.errors"]]),
)
"""The product's layers (README "Architecture" draws them). ``search/__init__.py``, the
package's public face, sits above them all."""

ROOTS = ("search", "models", "data")
TOP = "search"
"""The root package's ``__init__``: it may import anything, nothing may import it."""


def find_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``: dotted name -> file (a package is its
    ``__init__.py``)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name belongs to (``pkg.mod.attr`` -> ``pkg.mod``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _with_packages(importer: str, module: str, modules: dict[str, Path],
                   roots: Sequence[str]) -> set[str]:
    """``module`` and the packages whose ``__init__`` importing it runs: not the roots', and
    not those of the importer's own packages (they ran before it)."""
    names, parts = {module}, module.split(".")
    for end in range(2, len(parts)):
        package = ".".join(parts[:end])
        if package in modules and package not in roots and not importer.startswith(package + "."):
            names.add(package)
    return names


def import_graph(modules: dict[str, Path], roots: Sequence[str] = ROOTS
                 ) -> dict[str, set[str]]:
    """Module -> the modules it imports, every import statement counted."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for name in names:
                target = _resolve(name, modules)
                if target is not None:
                    targets |= _with_packages(module, target, modules, roots)
        targets.discard(module)
        graph[module] = targets
    return graph


def place(module: str, diagram: Diagram) -> tuple[int, int] | None:
    """(layer, part) of ``module``: its longest matching prefix; None when none matches."""
    best: tuple[int, int, int] | None = None
    for layer, (_, parts) in enumerate(diagram):
        for part, prefixes in enumerate(parts):
            for prefix in prefixes:
                if module == prefix or module.startswith(prefix + "."):
                    if best is None or len(prefix) > best[2]:
                        best = (layer, part, len(prefix))
    return None if best is None else best[:2]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle found by a depth-first walk, as the modules around it."""
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt):], nxt])
            elif not state.get(nxt):
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])
    return found


def problems(root: Path, diagram: Diagram = PRODUCT, roots: Sequence[str] = ROOTS,
             top: str = TOP) -> list[str]:
    """One line per module outside the diagram, per import that runs up it or sideways,
    and per cycle; empty when the tree keeps to the diagram."""
    modules = find_modules(root, roots)
    graph = import_graph(modules, roots)
    lines = []
    for module in sorted(graph):
        if module != top and place(module, diagram) is None:
            lines.append(f"{module} is in no layer of the diagram")
    for module, targets in sorted(graph.items()):
        where = place(module, diagram)
        for target in sorted(targets):
            if target == top:
                lines.append(f"{module} imports {top}, the top")
                continue
            if module == top or where is None:
                continue
            there = place(target, diagram)
            if there is None:
                continue
            if there[0] < where[0]:
                lines.append(f"{module} ({diagram[where[0]][0]}) imports {target} "
                             f"({diagram[there[0]][0]}): up the diagram")
            elif there[0] == where[0] and there[1] != where[1]:
                lines.append(f"{module} imports {target}: another part of the layer "
                             f"{diagram[where[0]][0]}")
    lines += ["import cycle: " + " -> ".join(cycle) for cycle in cycles(graph)]
    return lines
