"""The package's layers point down (DESIGN.md, "Layers point down").

The module graph is read with ``ast`` from the sources (nothing is imported): every import counts,
function-local ones and ``if TYPE_CHECKING:`` ones too, since a lazy import that hides an upward
dependency is still a circle. Package ``__init__`` files are modules of their own, and
``from pkg import name`` is an import of ``pkg.name`` when that is a module, else of ``pkg``
(both, for a submodule: the package's ``__init__`` runs first).

The rules: no circle; at most :data:`MAX_UPWARD` imports that point up the table below, each with a
comment saying why (on its line or the line above); every module placed in the table.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "compressbench"
PACKAGE = "compressbench"
MAX_UPWARD = 2

# Bottom first. An entry is a module or a package (it covers every module under it, so a new file
# is placed by its folder); a module takes the most specific entry that names it. "__init__" is the
# package's own ``compressbench/__init__.py``. Imports within one layer are free (no circle, still).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # errors and the small shared helpers: atomic writes and JSON text (files), registries, bars, warnings
    ("base", ("errors", "files", "registry", "progress", "warnings", "weights")),
    # plain values: typed records, the fidelity metrics, keypoints drawn on frames (evaluate draws them)
    ("values", ("records", "metrics", "report.overlays")),
    # measurement: timing statistics, counting, in-place attribution, the machine, health, peaks
    ("measurement", ("profiling",)),
    ("models", ("models",)),
    ("data", ("data",)),
    # where a model runs; profile() runs one on a runtime with the measurement below
    ("runtimes", ("runtimes",)),
    ("evaluation", ("evaluation",)),
    # the generic trainer, teacher training, and the one fine-tuning loop behind distill and recover
    ("training", ("training", "distillation")),
    ("compression", ("compression",)),
    # where a module came from; saving and reloading replay compression's registered methods
    ("provenance", ("provenance",)),
    # a variant against the teacher; students built through chains (distill); exports of variants
    ("comparison", ("comparison", "distillation.train", "artifacts")),
    ("search and suites", ("suite", "search_schedule", "search_precision", "variant_search", "search_workers", "bench", "regress")),
    ("report", ("report",)),
    ("api", ("api", "__init__", "fomm")),
    ("cli", ("cli", "__main__")),
]


def _modules() -> dict[str, Path]:
    """Dotted name relative to the package ("cli.app", "models" for models/__init__.py, "__init__")."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _relative(dotted: str) -> str | None:
    """``compressbench.x.y`` -> ``x.y``; ``compressbench`` -> ``__init__``; None outside the package."""
    if dotted == PACKAGE:
        return "__init__"
    return dotted[len(PACKAGE) + 1 :] if dotted.startswith(PACKAGE + ".") else None


def _resolve(name: str, modules: dict) -> str:
    while name not in modules and "." in name:
        name = name.rpartition(".")[0]
    return name if name in modules else "__init__"


@functools.cache
def import_graph() -> tuple[dict[str, Path], dict[str, dict[str, int]]]:
    """``(modules, edges)``: edges[a][b] is the first line of ``a`` that imports ``b``."""
    modules = _modules()
    edges: dict[str, dict[str, int]] = defaultdict(dict)
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = PACKAGE if name == "__init__" else f"{PACKAGE}.{name}"
        package = here if is_package else here.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                module = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                relative = _relative(target)
                if relative is None:
                    continue
                resolved = _resolve(relative, modules)
                if resolved != name:
                    edges[name].setdefault(resolved, node.lineno)
    return modules, edges


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of the most specific entry naming ``module``, None when none does."""
    best, best_length = None, -1
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            matches = module == entry or (entry != "__init__" and module.startswith(entry + "."))
            if matches and len(entry) > best_length:
                best, best_length = index, len(entry)
    return best


def find_cycle(edges: dict[str, dict[str, int]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, {})):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def upward_imports(edges: dict[str, dict[str, int]]) -> list[tuple[str, int, str]]:
    """``(importer, line, imported)`` for every import of a module in a higher layer."""
    out = []
    for importer, targets in edges.items():
        for target, line in targets.items():
            low, high = layer_of(importer), layer_of(target)
            if low is not None and high is not None and high > low:
                out.append((importer, line, target))
    return sorted(out)


def _commented(path: Path, line: int) -> bool:
    """The import statement at ``line`` has a comment on one of its lines, or a comment line above it."""
    lines = path.read_text().splitlines()
    statement = next(
        n
        for n in ast.walk(ast.parse("\n".join(lines)))
        if isinstance(n, (ast.Import, ast.ImportFrom)) and n.lineno == line
    )
    own = lines[line - 1 : statement.end_lineno]
    above = lines[line - 2].strip() if line >= 2 else ""
    return any("#" in text for text in own) or above.startswith("#")


def test_every_module_is_placed_in_a_layer():
    modules, _ = import_graph()
    unplaced = sorted(m for m in modules if layer_of(m) is None)
    assert not unplaced, f"place these modules in tests/test_layering.py LAYERS: {', '.join(unplaced)}"


def test_the_import_graph_has_no_circle():
    _, edges = import_graph()
    cycle = find_cycle(edges)
    assert cycle is None, (
        "import circle: "
        + " -> ".join(f"{a} (line {edges[a][b]})" for a, b in zip(cycle, cycle[1:]))
        + f" -> {cycle[-1]}"
    )


def test_at_most_two_imports_point_up_and_each_says_why():
    modules, edges = import_graph()
    upward = upward_imports(edges)
    hint = " (the package itself: write `import compressbench.metrics as metrics`, not `from compressbench import metrics`)"
    shown = [
        f"{a}:{line} -> {b} ({LAYERS[layer_of(a)][0]} -> {LAYERS[layer_of(b)][0]})" + (hint if b == "__init__" else "")
        for a, line, b in upward
    ]
    assert len(upward) <= MAX_UPWARD, "imports pointing up the layers:\n  " + "\n  ".join(shown)
    silent = [text for text, (a, line, _) in zip(shown, upward) if not _commented(modules[a], line)]
    assert not silent, "an upward import needs a comment saying why:\n  " + "\n  ".join(silent)


def test_the_checker_sees_circles_and_upward_imports():
    """The rules themselves: a made-up graph with a circle and an upward edge is caught."""
    edges = {"cli.app": {"models": 1}, "models": {"models.zoo": 2}, "models.zoo": {"models": 3, "api": 4}}
    assert find_cycle(edges) == ["models", "models.zoo", "models"]
    assert upward_imports(edges) == [("models.zoo", 4, "api")]
    assert layer_of("distillation.train") > layer_of("compression") > layer_of("distillation.finetune")
    assert layer_of("__init__") == layer_of("api") and layer_of("errors") == 0
    assert layer_of("profiling.counting") < layer_of("runtimes.profile") < layer_of("compression")
