"""The package's shape: floors that import only downwards, no cycle, no module too long to read.

Every import inside the package counts: those inside functions (a lazy import is still an arrow), the parent
packages an import runs, and the modules named by strings (``lazy_names``'s homes, ``import_module``,
the command line's ``Registered``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fishcam_utils"
ROOT = "fishcam_utils"  # the package's own __init__: matched exactly, not as a prefix of every module

# Bottom to top. A module may import its own floor and those below, never one above. A prefix names a
# package or a module; the longest prefix that matches a module decides its floor.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("base", (ROOT, "fishcam_utils.errors", "fishcam_utils.settings", "fishcam_utils.files",
              "fishcam_utils.numerics", "fishcam_utils.network", "fishcam_utils.lazy", "fishcam_utils.registry",
              "fishcam_utils.runtime", "fishcam_utils.repository", "fishcam_utils.standin.recipes",
              "fishcam_utils.standin")),  # the stand-in package's __init__ is a docstring (checked below)
    ("data", ("fishcam_utils.data", "fishcam_utils.viz", "fishcam_utils.standin.weights")),
    ("models", ("fishcam_utils.models",)),
    ("evaluation", ("fishcam_utils.evaluation",)),
    ("training", ("fishcam_utils.training",)),
    ("explain", ("fishcam_utils.explain",)),
    ("widgets", ("fishcam_utils.widgets",)),
    ("course", ("fishcam_utils.course", "fishcam_utils.checks", "fishcam_utils.standin.pretrain")),
    ("commands", ("fishcam_utils.cli", "fishcam_utils.student", "fishcam_utils.cheat_sheet")),
]

# Inside ``explain``, the floors of its docstring: the protocol under the methods under judging.
EXPLAIN_FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("maps", ("fishcam_utils.explain.maps", "fishcam_utils.explain.targets", "fishcam_utils.explain.augment")),
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
    """The package's modules that ``name`` imports, anywhere in its source, with the parent packages each
    import runs (those not already parents of ``name``)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

    def resolve(dots: int, module: str | None) -> str:
        base = package[:len(package) - dots + 1] if dots else []
        return ".".join(base + ([module] if module else []))

    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = resolve(node.level, node.module)
            for alias in node.names:  # ``from package import module`` reaches the module; a name, the package
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and _called(node) in ("import_module", "Registered") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                dots = len(first.value) - len(first.value.lstrip("."))
                found.add(resolve(dots, first.value.lstrip(".")) if dots else first.value)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_HOMES" for t in node.targets):
            for key in getattr(node.value, "keys", []):  # lazy_names: module (relative to the package) -> names
                dots = 1 + len(key.value) - len(key.value.lstrip("."))
                found.add(resolve(dots, key.value.lstrip(".")))
    with_parents = set()
    for target in found:
        parts = target.split(".")
        with_parents.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    own_parents = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))}
    return {t for t in with_parents if t in known and t != name and t not in own_parents}


def _called(node: ast.Call) -> str:
    return getattr(node.func, "id", None) or getattr(node.func, "attr", "")


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def floor_of(name: str, floors: list[tuple[str, tuple[str, ...]]]) -> int | None:
    matches = [(len(prefix), number) for number, (_, prefixes) in enumerate(floors) for prefix in prefixes
               if name == prefix or (prefix != ROOT and name.startswith(prefix + "."))]
    return max(matches)[1] if matches else None


def upward(floors: list[tuple[str, tuple[str, ...]]], edges: dict[str, set[str]],
           within: str | None = None) -> list[str]:
    arrows = []
    for source, targets in edges.items():
        if within and not source.startswith(within + "."):
            continue
        for target in targets:
            if within and not (target == within or target.startswith(within + ".")):
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


def test_the_training_loop_knows_nothing_of_the_course():
    """The generic loop imports neither the course nor its stand-in (a weight source tells it the size)."""
    course = ("fishcam_utils.standin", "fishcam_utils.course", "fishcam_utils.checks")
    arrows = [f"{source} imports {target}" for source, targets in graph().items()
              if source.startswith("fishcam_utils.training") for target in targets if target.startswith(course)]
    assert arrows == []


def test_the_stand_in_package_init_imports_nothing():
    """It sits on the bottom floor because importing ``standin.recipes`` runs it."""
    tree = ast.parse((PACKAGE / "standin" / "__init__.py").read_text(encoding="utf-8"))
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_the_import_graph_has_no_cycle():
    assert cycles(graph()) == []


def test_the_checks_find_an_upward_import_and_a_cycle(tmp_path):
    """The rules above can fail: a data module that imports the explorer is caught, and so is a cycle."""
    found = modules()
    bad = tmp_path / "bad.py"
    bad.write_text("def late():\n    from ..widgets import explorer\n    from .. import explain\n"
                   "    importlib.import_module('..course.audit', __package__)\n")
    found["fishcam_utils.data.bad"] = bad
    edges = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    assert edges["fishcam_utils.data.bad"] == {"fishcam_utils.widgets", "fishcam_utils.widgets.explorer",
                                               "fishcam_utils.explain", "fishcam_utils.course",
                                               "fishcam_utils.course.audit"}
    arrows = upward(FLOORS, edges)
    assert "fishcam_utils.data.bad (data) imports fishcam_utils.widgets.explorer (widgets)" in arrows
    assert "fishcam_utils.data.bad (data) imports fishcam_utils.course.audit (course)" in arrows
    assert floor_of("fishcam_utils.brand_new", FLOORS) is None  # a new module must be given its floor
    edges["fishcam_utils.errors"] = {"fishcam_utils.files"}  # files imports errors: now a cycle
    assert any({"fishcam_utils.errors", "fishcam_utils.files"} <= set(c.split(" -> ")) for c in cycles(edges))


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_too_long_to_read(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= LONGEST_MODULE, f"{path.relative_to(PACKAGE)} has {lines} lines; split it by concern"
