#!/usr/bin/env python3
"""The module import graph of src/orchestra: its cycles and its largest files (stdlib `ast` only).

Every `import` / `from ... import` inside orchestra becomes an edge, tagged by where it sits:
  * "top"    executed when the module is imported (module level, also under try/if at module level);
  * "typing" under `if TYPE_CHECKING:` (never executed; a circle here is still a design circle);
  * "lazy"   inside a function or method (executed on the first call: how a circle is usually hidden).
`from a.b import c` is an edge to a.b.c when that is a module, else to a.b. The implicit import of the
parent packages (a, a.b) is not an edge: a package `__init__` that re-exports its own submodules would
otherwise count as a circle with each of them.

Usage: scripts/import_graph.py [--root src/orchestra] [--top N] [--limit 600]
Prints the cycles among "top" imports, those that appear once "typing" and then "lazy" imports count,
the N largest files, and every file over the line limit. Exit status 1 when a "top" cycle exists or a
file is over the limit (tests/test_import_graph.py runs the same checks).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

KINDS = ("top", "typing", "lazy")
ROOT = Path(__file__).resolve().parent.parent / "src" / "orchestra"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # one of KINDS
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    """Every module under `root` (a package directory) by dotted name."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(tree: ast.AST, kind: str = "top") -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement under `tree` with its kind (see the module docstring)."""
    for node in ast.iter_child_nodes(tree):
        yield from _visit(node, kind)


def _visit(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, kind
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        yield from _imports(node, "lazy")
    elif isinstance(node, ast.If) and kind == "top" and _is_type_checking(node.test):
        for child in node.body:
            yield from _visit(child, "typing")
        for child in node.orelse:
            yield from _visit(child, kind)
    else:
        yield from _imports(node, kind)


def _resolve_from(node: ast.ImportFrom, source: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(node: ast.Import | ast.ImportFrom, source: str, is_package: bool,
             known: set[str]) -> Iterable[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = _resolve_from(node, source, is_package)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def edges(root: Path = ROOT) -> list[Edge]:
    """The import edges between modules of the package at `root`."""
    mods = modules(root)
    known = set(mods)
    found: set[Edge] = set()
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, kind in _imports(tree):
            for target in _targets(node, name, is_package, known):
                if target in known and target != name:
                    found.add(Edge(name, target, kind, node.lineno))
    return sorted(found, key=lambda e: (e.source, e.target, KINDS.index(e.kind), e.line))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the module count (a few hundred)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found, key=lambda c: (-len(c), c))


def graph_of(all_edges: Iterable[Edge], kinds: Iterable[str]) -> dict[str, set[str]]:
    wanted = set(kinds)
    graph: dict[str, set[str]] = {}
    for e in all_edges:
        if e.kind in wanted:
            graph.setdefault(e.source, set()).add(e.target)
    return graph


def line_counts(root: Path = ROOT) -> dict[Path, int]:
    return {p: len(p.read_text(encoding="utf-8").splitlines()) for p in sorted(root.rglob("*.py"))}


def _print_cycles(title: str, found: list[list[str]], all_edges: list[Edge], shown: set[str]) -> None:
    print(f"{title}: {len(found) or 'none'}")
    for component in found:
        members = set(component)
        print("  " + " <-> ".join(component))
        for e in all_edges:
            if e.source in members and e.target in members and e.kind in shown:
                print(f"      {e.source}:{e.line} -> {e.target} ({e.kind})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--top", type=int, default=10, help="how many of the largest files to list")
    parser.add_argument("--limit", type=int, default=600, help="line limit per file")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    all_edges = edges(root)
    counts = {k: sum(e.kind == k for e in all_edges) for k in KINDS}
    print(f"{len(modules(root))} modules, {len(all_edges)} import edges "
          f"({', '.join(f'{n} {k}' for k, n in counts.items())})")
    top = cycles(graph_of(all_edges, ["top"]))
    _print_cycles("cycles among top-level imports", top, all_edges, {"top"})
    seen = {frozenset(c) for c in top}
    for kinds in (("top", "typing"), KINDS):
        found = [c for c in cycles(graph_of(all_edges, kinds)) if frozenset(c) not in seen]
        _print_cycles(f"further cycles once {' + '.join(kinds)} imports count", found, all_edges, set(kinds))
        seen |= {frozenset(c) for c in found}
    sizes = line_counts(root)
    base = root.parents[1]
    print(f"largest files (limit {args.limit} lines):")
    for path, n in sorted(sizes.items(), key=lambda item: -item[1])[: args.top]:
        print(f"  {n:5d}  {path.relative_to(base)}")
    over = sorted((p for p, n in sizes.items() if n > args.limit), key=lambda p: -sizes[p])
    print(f"files over {args.limit} lines: {', '.join(str(p.relative_to(base)) for p in over) or 'none'}")
    return 1 if top or over else 0


if __name__ == "__main__":
    sys.exit(main())
