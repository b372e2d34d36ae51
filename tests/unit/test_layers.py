"""Layers only look down, and no module imports itself in a circle.

operators  →  pipeline (the core)  →  sinks  →  pipeline.cli (the application)
                  backend beside the core, below the application

The graph is read from the source with `ast` (nothing is imported), so a rule broken in a
module no test loads is still caught. An import inside a function or under
`if TYPE_CHECKING:` breaks a layer as much as any other, but runs at no import time, so
only module-level imports count for cycles — with the edge Python adds itself: importing
`pipeline.audio` from outside `pipeline` first runs `pipeline/__init__.py`.
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("operators", "pipeline", "sinks", "backend")
APPLICATION = "pipeline.cli"
# What the operators may import besides each other and the standard library.
OPERATOR_LIBRARIES = {"reactivex", "numpy"}
# What the backend shares with the client: the wire vocabulary and a few helpers.
SHARED_WITH_BACKEND = {
    "pipeline.protocol",
    "pipeline.audio",
    "pipeline.redaction",
    "pipeline.config",
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (one of ours, or the top-level name of another)
    line: int
    at_import_time: bool  # module level, not only for the type checker

    def __str__(self) -> str:
        return f"{self.source} (line {self.line}) imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(name: str) -> str:
    """An imported name: the module itself if it is one of ours, else its top-level package."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return parts[0]


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [_resolve(alias.name) for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    # `from package import module` imports the module; `from module import name`, the module
    return [_resolve(f"{base}.{alias.name}") for alias in node.names] or [base]


def imports_of(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[Import] = []

    def visit(nodes: list[ast.stmt], at_import_time: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.extend(
                    Import(module, target, node.lineno, at_import_time)
                    for target in _targets(module, node)
                    if target not in ("__future__", module)
                )
            elif isinstance(node, ast.If):
                visit(node.body, at_import_time and not _is_type_checking(node))
                visit(node.orelse, at_import_time)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody):
                    visit(block, at_import_time)
                for handler in node.handlers:
                    visit(handler.body, at_import_time)
            elif isinstance(node, ast.With):
                visit(node.body, at_import_time)
            else:  # functions, classes, loops: imports that run later, if ever
                for child in ast.walk(node):
                    if isinstance(child, ast.Import | ast.ImportFrom):
                        visit([child], False)

    visit(tree.body, True)
    return found


IMPORTS = list(dict.fromkeys(edge for module in sorted(MODULES) for edge in imports_of(module)))


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layer(module: str) -> str:
    if _within(module, APPLICATION):
        return "application"
    return module.split(".")[0]


# For each layer, the layers it must never import.
FORBIDDEN = {
    "operators": {"pipeline", "sinks", "backend", "application"},
    "pipeline": {"sinks", "backend", "application"},
    "sinks": {"backend", "application"},
    "backend": {"sinks", "application"},
    "application": set[str](),
}


def test_the_graph_sees_every_package_and_the_known_edges() -> None:
    """The parser finds what is plainly there, so the rules below check something."""
    assert {"pipeline", "pipeline.session", "operators.level", "sinks.console"} <= set(MODULES)
    assert any(e.source == "pipeline.session" and e.target == "operators.level" for e in IMPORTS)
    assert any(e.source == "pipeline.cli" and e.target == "backend.asr" for e in IMPORTS)
    assert any(e.source == "sinks.console" and not e.at_import_time for e in IMPORTS)


def test_layers_only_look_down() -> None:
    broken = [
        f"{edge} ({layer(edge.source)} must not import {layer(edge.target)})"
        for edge in IMPORTS
        if edge.target in MODULES and layer(edge.target) in FORBIDDEN[layer(edge.source)]
    ]
    assert not broken, "\n".join(broken)


def test_operators_depend_on_reactivex_and_the_audio_frame_only() -> None:
    outside = [
        str(edge)
        for edge in IMPORTS
        if layer(edge.source) == "operators"
        and edge.target not in MODULES
        and edge.target not in OPERATOR_LIBRARIES
        and edge.target not in sys.stdlib_module_names
    ]
    assert not outside, "\n".join(outside)


def test_the_backend_shares_only_the_vocabulary_with_the_core() -> None:
    reached = [
        str(edge)
        for edge in IMPORTS
        if layer(edge.source) == "backend"
        and layer(edge.target) == "pipeline"
        and edge.target not in SHARED_WITH_BACKEND
    ]
    assert not reached, "\n".join(reached)


def import_time_graph() -> dict[str, set[str]]:
    """Module → the modules Python runs first when it is imported, `__init__`s included."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for edge in IMPORTS:
        if not edge.at_import_time or edge.target not in MODULES:
            continue
        graph[edge.source].add(edge.target)
        parts = edge.target.split(".")
        for end in range(1, len(parts)):
            package = ".".join(parts[:end])
            if not _within(edge.source, package):  # a package being loaded runs no second time
                graph[edge.source].add(package)
    return graph


def test_no_module_imports_itself_in_a_circle() -> None:
    try:
        tuple(graphlib.TopologicalSorter(import_time_graph()).static_order())
    except graphlib.CycleError as cycle:
        pytest.fail("import cycle (each imports the next): " + " -> ".join(reversed(cycle.args[1])))


def test_the_cycle_check_finds_a_cycle_through_a_package_init() -> None:
    """`pipeline/__init__` imports the session, which imports `operators.level`: had that
    operator imported `pipeline.audio`, importing `operators` first would fail."""
    graph = import_time_graph()
    graph["operators.level"].add("pipeline")
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(graph).static_order())


@pytest.mark.parametrize("package", [*PACKAGES, APPLICATION])
def test_each_package_imports_first_in_a_fresh_interpreter(package: str) -> None:
    """The order a user happens to import in must not matter."""
    probe = (
        f"import sys, {package}\n"
        "print(' '.join(sorted(n for n in sys.modules if n.split('.')[0] in "
        f"{PACKAGES!r})))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert ran.returncode == 0, ran.stderr
    loaded = set(ran.stdout.split())
    if package == "pipeline":
        assert not {APPLICATION, "sinks", "backend"} & loaded
    if package == "operators":
        assert not {"pipeline", "sinks", "backend"} & loaded
