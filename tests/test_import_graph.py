"""The module graph of src/orchestra (scripts/import_graph.py): no import circles, no file over 600 lines.

The checks run the script's own functions, so `scripts/import_graph.py` prints what failed here. The
script is first checked against a small package made for the purpose, so a graph that finds nothing
is known to be able to find something.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_graph.py"
LINE_LIMIT = 600
# The simulated runtime's container state and stdio name each other for type checking only
# (runtime/simstdio.py takes a SimContainer); breaking that circle belongs to the rework of
# runtime/sim*, which is under way elsewhere. Anything else found here is new.
KNOWN_TYPE_CIRCLES = {frozenset({"orchestra.runtime.simstate", "orchestra.runtime.simstdio"})}


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


graph = _load_script()


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


SAMPLES = {
    "top": ({"a.py": "import pkg.b\n", "b.py": "from pkg import a\n"}, "top"),
    "relative": ({"a.py": "from . import b\n", "b.py": "from .a import x\n"}, "top"),
    "subpackage": ({"sub/__init__.py": "from ..a import x\n", "a.py": "from pkg.sub import y\n"}, "top"),
    "type-checking": ({"a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.b\n",
                       "b.py": "import pkg.a\n"}, "typing"),
    "in-a-function": ({"a.py": "def f():\n    import pkg.b\n", "b.py": "import pkg.a\n"}, "lazy"),
    "in-a-method": ({"a.py": "class C:\n    async def f(self):\n        from pkg import b\n",
                     "b.py": "import pkg.a\n"}, "lazy"),
}


@pytest.mark.parametrize(("files", "kind"), SAMPLES.values(), ids=SAMPLES.keys())
def test_the_script_finds_a_circle_of_each_kind(tmp_path: Path, files: dict[str, str], kind: str) -> None:
    edges = graph.edges(_package(tmp_path, files))
    kinds = graph.KINDS[: graph.KINDS.index(kind) + 1]
    assert len(graph.cycles(graph.graph_of(edges, kinds))) == 1
    if kind != "top":
        assert graph.cycles(graph.graph_of(edges, ["top"])) == []


def test_a_package_importing_its_own_submodules_is_no_circle(tmp_path: Path) -> None:
    root = _package(tmp_path, {"__init__.py": "from pkg.a import x\n", "a.py": "x = 1\n"})
    assert graph.cycles(graph.graph_of(graph.edges(root), graph.KINDS)) == []


def test_no_circles_among_top_level_imports() -> None:
    assert graph.cycles(graph.graph_of(graph.edges(), ["top"])) == []


def test_no_circles_once_type_checking_and_lazy_imports_count() -> None:
    found = {frozenset(c) for c in graph.cycles(graph.graph_of(graph.edges(), graph.KINDS))}
    assert found - KNOWN_TYPE_CIRCLES == set()


def test_no_file_over_the_line_limit() -> None:
    over = {str(path): n for path, n in graph.line_counts().items() if n > LINE_LIMIT}
    assert over == {}
