"""The package's import graph, read from the source (nothing is imported): cycles and heavy top-level imports.

Every ``import`` / ``from ... import`` of a module of the package is an edge, at module top level *and*
inside functions (a function-level import still ties two modules together), except imports under
``if TYPE_CHECKING:``, which never run. ``from pkg import name`` is an edge to ``pkg.name`` when that is
a module, else to ``pkg``. Importing a submodule runs its parent package's ``__init__`` first; that is
not counted as an edge (the parent's own imports are).

Run as a script to print the graph's layers and any problem::

    python tests/layoutcheck.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "pytest_tinymodels"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
#: Libraries that must never be imported at module top level of the package (a suite that requests no
#: tiny fixture must not pay for them, and a text fixture must not need an image library).
HEAVY = ("torch", "transformers", "tokenizers", "datasets", "huggingface_hub", "safetensors", "PIL", "numpy",
         "sentencepiece", "jinja2")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py")) if "__pycache__" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """(node, top_level) for every import statement outside ``if TYPE_CHECKING:`` blocks."""

    def walk(node: ast.AST, top: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    yield from walk(sub, top)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, top
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from walk(child, inner)

    yield from walk(tree, True)


def _base(name: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def graph() -> tuple[dict[str, set[str]], list[str]]:
    """(module -> package modules it imports, problems with heavy top-level imports)."""
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    heavy: list[str] = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, top in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _base(name, path, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                root = target.split(".")[0]
                if top and root in HEAVY:
                    heavy.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: imports {target} at module top level")
                if root != PACKAGE:
                    continue
                while target not in mods and "." in target:  # `import pkg.mod.attr` style
                    target = target.rpartition(".")[0]
                if target in mods and target != name:
                    edges[name].add(target)
    return edges, heavy


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layers(edges: dict[str, set[str]]) -> list[list[str]]:
    """Modules by depth: layer 0 imports no module of the package, layer n only modules of lower layers."""
    depth: dict[str, int] = {}

    def d(v: str, seen: frozenset[str] = frozenset()) -> int:
        if v not in depth:
            depth[v] = 0 if not edges[v] else 1 + max(d(w, seen | {v}) for w in edges[v] if w not in seen | {v})
        return depth[v]

    for v in edges:
        d(v)
    out: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for v, n in sorted(depth.items()):
        out[n].append(v)
    return out


def main() -> int:
    edges, heavy = graph()
    found = cycles(edges)
    if not found:
        for n, layer in enumerate(layers(edges)):
            print(f"layer {n}: {', '.join(m.removeprefix(PACKAGE + '.') or PACKAGE for m in layer)}")
    for component in found:
        print("import cycle: " + " <-> ".join(component))
    for line in heavy:
        print(line)
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports, {len(found)} cycles, "
          f"{len(heavy)} heavy top-level imports")
    return 1 if found or heavy else 0


if __name__ == "__main__":
    sys.exit(main())
