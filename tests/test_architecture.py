"""The import rule over the source itself (DESIGN.md, Layout), with no database.

`make imports` (import-linter, pyproject's [tool.importlinter]) checks the direction between the
apps. These check what it cannot see: that no import hides inside a function to dodge a cycle,
and that the project's modules form no cycle at all, function-level imports included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "penguinmails", "tenants", "webhooks", "billing", "infrastructure", "deliverability",
    "warmup", "reputation", "campaigns",
)  # fmt: skip


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _target(name: str) -> str | None:
    """The project module an imported dotted name lives in (`a.b.func` -> `a.b`)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(
    node: ast.AST, *, in_function: str | None = None
) -> Iterator[tuple[str, int, str | None]]:
    """(imported module, line, enclosing function or None) for every runtime import."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            continue  # never runs: cannot make a cycle
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield alias.name, child.lineno, in_function
        elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
            for alias in child.names:
                yield f"{child.module}.{alias.name}", child.lineno, in_function
        function = in_function
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            function = child.name if in_function is None else in_function
        yield from _imports(child, in_function=function)


def _edges() -> list[tuple[str, str, int, str | None]]:
    edges = []
    for module, path in MODULES.items():
        for name, line, function in _imports(ast.parse(path.read_text())):
            target = _target(name)
            if target is not None and target != module:
                edges.append((module, target, line, function))
    return edges


EDGES = _edges()


def _is_app_ready(module: str, function: str | None) -> bool:
    # Django's documented place for start-up registration: models exist only once apps load.
    return module.endswith(".apps") and function == "ready"


def test_it_finds_the_project_modules() -> None:
    assert {"penguinmails.queue.registry", "campaigns.sending.scheduler"} <= set(MODULES)
    assert len(EDGES) > 500


def test_it_places_no_project_import_inside_a_function() -> None:
    """An import inside a function hides a dependency (and often a cycle) from readers and from
    import-linter. The one exception is AppConfig.ready(), where apps register with the core and
    with the apps below them."""
    hidden = [
        f"{module}:{line} imports {target} inside {function}()"
        for module, target, line, function in EDGES
        if function is not None and not _is_app_ready(module, function)
    ]
    assert hidden == []


def test_it_has_no_import_cycle() -> None:
    """No cycle among the project's modules, counting imports inside functions too."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module, target, _line, function in EDGES:
        if not _is_app_ready(module, function):
            graph[module].add(target)
    cycles = _strongly_connected(graph)
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found
