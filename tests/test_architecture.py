"""The package's shape: floors that import only downwards, no cycle, no module too long to read.

Every import inside the package counts, those inside functions too (a lazy import is still an arrow).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fishcam_utils"

# Bottom to top. A module may import its own floor and those below, never one above. A prefix names a
# package or a module; the longest prefix that matches a module decides its floor.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("fishcam_utils", "fishcam_utils.errors", "fishcam_utils.settings", "fishcam_utils.files",
              "fishcam_utils.numerics", "fishcam_utils.network", "fishcam_utils.lazy", "fishcam_utils.registry",
              "fishcam_utils.runtime", "fishcam_utils.repository", "fishcam_utils.standin.recipes")),
    ("data", ("fishcam_utils.data", "fishcam_utils.viz", "fishcam_utils.standin.weights")),
    ("models", ("fishcam_utils.models",)),
    ("evaluation", ("fishcam_utils.evaluation",)),
    ("training", ("fishcam_utils.training",)),
    ("explain", ("fishcam_utils.explain",)),
    ("widgets", ("fishcam_utils.widgets",)),
    ("course", ("fishcam_utils.course", "fishcam_utils.checks", "fishcam_utils.standin",
                "fishcam_utils.standin.pretrain")),
    ("commands", ("fishcam_utils.cli", "fishcam_utils.student", "fishcam_utils.cheat_sheet")),
]

# Inside ``explain``, the floors of its docstring: the protocol under the methods under judging.
EXPLAIN_FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("maps", ("fishcam_utils.explain.maps", "fishcam_utils.explain.targets")),
    ("protocol", ("fishcam_utils.explain.explainer", "fishcam_utils.explain.registry")),
    ("cam core", ("fishcam_utils.explain.cam.session", "fishcam_utils.explain.cam.core")),
    ("methods", ("fishcam_utils.explain.cam", "fishcam_utils.explain.guided")),
    ("uses", ("fishcam_utils.explain.overlay", "fishcam_utils.explain.export", "fishcam_utils.explain.multiview")),
    ("judging", ("fishcam_utils.explain.judging",)),
    ("package", ("fishcam_utils.explain",)),
]

LONGEST_MODULE = 450


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its source."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for candidate in [target] + [f"{target}.{alias.name}" for alias in node.names]:
                if candidate in known:
                    found.add(candidate)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def floor_of(name: str, floors: list[tuple[str, tuple[str, ...]]]) -> int | None:
    matches = [(len(prefix), number) for number, (_, prefixes) in enumerate(floors) for prefix in prefixes
               if name == prefix or name.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def upward(floors: list[tuple[str, tuple[str, ...]]], edges: dict[str, set[str]],
           within: str | None = None) -> list[str]:
    arrows = []
    for source, targets in edges.items():
        if within and not source.startswith(within + "."):
            continue
        for target in targets:
            if within and not target.startswith(within + "."):
                continue
            low, high = floor_of(source, floors), floor_of(target, floors)
            if high > low:
                arrows.append(f"{source} ({floors[low][0]}) imports {target} ({floors[high][0]})")
    return sorted(arrows)


def test_every_module_has_a_floor():
    assert [name for name in modules() if floor_of(name, FLOORS) is None] == []
    explain = [name for name in modules() if name.startswith("fishcam_utils.explain")]
    assert [name for name in explain if floor_of(name, EXPLAIN_FLOORS) is None] == []


def test_no_import_runs_upward():
    assert upward(FLOORS, graph()) == []


def test_inside_explain_no_import_runs_upward():
    assert upward(EXPLAIN_FLOORS, graph(), within="fishcam_utils.explain") == []


def cycles(edges: dict[str, set[str]]) -> list[str]:
    """Import cycles, other than a package's ``__init__`` importing its own modules."""
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done
    found: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state[nxt] == 1:
                # a package's __init__ importing its own modules is how a package says what it holds
                cycle = path[path.index(nxt):] + [nxt]
                if not all(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(cycle, cycle[1:])):
                    found.append(" -> ".join(cycle))
            elif state[nxt] == 0:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if state[node] == 0:
            visit(node, [node])
    return found


def test_the_import_graph_has_no_cycle():
    assert cycles(graph()) == []


def test_the_checks_find_an_upward_import_and_a_cycle(tmp_path):
    """The rules above can fail: a data module that imports the explorer is caught, and so is a cycle."""
    found = modules()
    bad = tmp_path / "bad.py"
    bad.write_text("def late():\n    from ..widgets import explorer\n")
    found["fishcam_utils.data.bad"] = bad
    edges = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    assert edges["fishcam_utils.data.bad"] == {"fishcam_utils.widgets", "fishcam_utils.widgets.explorer"}
    assert "fishcam_utils.data.bad (data) imports fishcam_utils.widgets.explorer (widgets)" in upward(FLOORS, edges)
    edges["fishcam_utils.errors"] = {"fishcam_utils.files"}  # files imports errors: now a cycle
    assert any({"fishcam_utils.errors", "fishcam_utils.files"} <= set(c.split(" -> ")) for c in cycles(edges))


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_too_long_to_read(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= LONGEST_MODULE, f"{path.relative_to(PACKAGE)} has {lines} lines; split it by concern"
