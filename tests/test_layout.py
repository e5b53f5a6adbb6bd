"""The package's layout holds its rules: each layer imports only what it may, and nothing imports in a circle.

The rules are the ones ``src/offbench/__init__.py`` states. Imports are read from the
source (``ast``), function-local and ``TYPE_CHECKING`` ones included, so a rule cannot
be dodged by importing late.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "offbench"

LAYERS = ("model", "plan", "measure", "run", "judge", "render")
SHELVES = ("strategies", "workloads", "semantics", "loops")
LEAVES = ("errors", "stats", "formatting", "processes", "outputs", "cache")

MAY_IMPORT = {
    "leaf": {"leaf", "model"},
    "model": {"model", "leaf"},
    "shelf": {"shelf", "model", "leaf"},
    "measure": {"measure", "model", "shelf", "leaf"},
    "judge": {"judge", "model", "shelf", "leaf"},
    "plan": {"plan", "model", "judge", "shelf", "leaf"},
    "render": {"render", "model", "judge", "shelf", "leaf"},
    "run": {"run", "measure", "plan", "judge", "model", "shelf", "leaf"},
    "top": {"top", "run", "measure", "plan", "judge", "render", "model", "shelf", "leaf"},
}
"""What each kind of module may import: the rules of ``src/offbench/__init__.py``."""


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def kind(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "leaf"  # the package itself: its version and nothing else
    head = parts[1]
    if head in LAYERS:
        return head
    if head in SHELVES:
        return "shelf"
    if head in LEAVES:
        return "leaf"
    return "top"


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Return the offbench modules ``module`` imports, wherever in the file the import stands."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    resolved = set()
    for name in found:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith("offbench") and name != module:
            resolved.add(name)
    return resolved


def graph() -> dict[str, set[str]]:
    known = modules()
    edges = {m: imports(m, p, known) for m, p in known.items()}
    # A package's __init__ importing its own parts to register them is not a dependency of the package.
    for m, path in known.items():
        if path.name == "__init__.py":
            edges[m] = {t for t in edges[m] if not t.startswith(m + ".")}
    return edges


def test_every_layer_imports_only_what_it_may() -> None:
    breaches = [
        f"{source} ({kind(source)}) imports {target} ({kind(target)})"
        for source, targets in graph().items()
        for target in sorted(targets)
        if kind(target) not in MAY_IMPORT[kind(source)]
    ]
    assert not breaches, "\n".join(breaches)


def test_nothing_imports_in_a_circle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


def test_the_rules_catch_a_breach() -> None:
    # The checker itself: a model module importing the runner must be flagged.
    assert kind("offbench.model.results") == "model"
    assert "run" not in MAY_IMPORT["model"]
    assert kind("offbench.run.runner") == "run"
    assert kind("offbench.strategies.stdlib") == "shelf"
    assert kind("offbench.cli") == "top"


@pytest.mark.workers
@pytest.mark.parametrize("module", ["offbench.measure.calls"])
def test_what_pools_unpickle_loads_neither_msgspec_nor_the_results_model(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "loaded = [m for m in sys.modules if m == 'msgspec' or m.startswith('offbench.') and m != "
        f"'{module}' and m != 'offbench.measure']; print(loaded)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


LONG = 450
"""Lines past which a module must be named, with why it is one thing, in docs/design.md."""


def test_every_long_module_is_named_in_the_design_with_its_reason() -> None:
    design = (SRC.parent / "docs" / "design.md").read_text(encoding="utf-8")
    named = design[design.index("**Long modules.**"):design.index("**Registries, not if-chains.**")]
    long = [str(path.relative_to(PACKAGE)) for path in modules().values()
            if len(path.read_text(encoding="utf-8").splitlines()) > LONG]
    assert long, "no module is long: drop the list and this test"
    unnamed = [m for m in long if f"`{m}`" not in named]
    assert not unnamed, f"over {LONG} lines and not named in docs/design.md's Long modules: {unnamed}"
