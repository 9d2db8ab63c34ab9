"""The package's shape stays as docs/architecture.rst draws it.

Every module file is listed on the Architecture page (and nothing else is),
no module imports another in a cycle (imports inside functions count; only
``if TYPE_CHECKING:`` blocks are left out, since they never run), and no
module grows past 700 lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "asyncnet"
PAGE = ROOT / "docs" / "architecture.rst"
MAX_LINES = 700


def _module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package."""
    modules: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere, TYPE_CHECKING blocks aside."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                pending.extend(child.orelse)  # the else branch does run
                continue
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - child.level + 1])
                    source = f"{base}.{child.module}" if child.module else base
                else:
                    source = child.module or ""
                # "from x import y" takes the module x.y if y is one, else the
                # name y from x itself (whose package parents load first anyway).
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in child.names
                ]
            else:
                pending.append(child)
                continue
            found.update(t for t in targets if t in modules and t != name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle found by a depth-first search (each reported once per back edge)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    found: list[list[str]] = []
    for start in sorted(graph):
        if colour[start] != WHITE:
            continue
        colour[start] = GREY
        path = [start]
        stack = [iter(sorted(graph[start]))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                colour[path.pop()] = BLACK
                stack.pop()
            elif colour[step] == GREY:
                found.append([*path[path.index(step) :], step])
            elif colour[step] == WHITE:
                colour[step] = GREY
                path.append(step)
                stack.append(iter(sorted(graph[step])))
    return found


def test_every_module_is_on_the_architecture_page_and_nothing_else() -> None:
    page = PAGE.read_text(encoding="utf-8")
    listed = set(re.findall(r"``(asyncnet/[\w/]+\.py)``", page))
    files = {path.relative_to(ROOT).as_posix() for path in _module_files().values()}
    assert sorted(files - listed) == [], "modules missing from docs/architecture.rst"
    assert sorted(listed - files) == [], "docs/architecture.rst lists files that do not exist"


def test_the_package_has_no_import_cycle() -> None:
    modules = _module_files()
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    # The search must see the edges it is meant to judge.
    assert "asyncnet._http._parser" in graph["asyncnet._http._connection"]
    assert _cycles(graph) == []


def test_the_guard_sees_imports_inside_functions_and_skips_type_checking(
    tmp_path: Path,
) -> None:
    # A cycle closed only by an import inside a function is found; an import
    # under TYPE_CHECKING is no edge.
    files = {
        "pkg": ("__init__.py", ""),
        "pkg._a": ("_a.py", "from ._b import thing\n"),
        "pkg._b": ("_b.py", "def f():\n    from . import _a\n    return _a\n"),
        "pkg._c": (
            "_c.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import _a\n",
        ),
    }
    (tmp_path / "pkg").mkdir()
    modules: dict[str, Path] = {}
    for name, (filename, text) in files.items():
        modules[name] = tmp_path / "pkg" / filename
        modules[name].write_text(text, encoding="utf-8")
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    assert graph == {"pkg": set(), "pkg._a": {"pkg._b"}, "pkg._b": {"pkg._a"}, "pkg._c": set()}
    assert _cycles(graph) == [["pkg._a", "pkg._b", "pkg._a"]]


def test_no_module_is_over_700_lines() -> None:
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in _module_files().items()
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
