"""The layering of docs/architecture.md, read from the code's own imports (module-level and local alike).

- every import of the project's folders goes through the ``byom`` package
  (``byom.core``, never ``core``): two names for one module would load it twice;
- imports flow down: no cycle; core/ imports neither front end (cli/, console/);
- the console reaches a backend only through core's factory: nothing under
  core/local/ or core/azure/;
- core/azure/ imports nothing of the local backend;
- scoring/ imports nothing of byom: it is a deployment's code folder, locally and on Azure.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("core", "cli", "console", "scoring")
LOCAL = ("core.local", "core.store", "core.memory")


def modules() -> dict[str, Path]:
    found = {}
    for folder in FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def imported(module: str, path: Path) -> list[str]:
    """The names ``module`` imports, made absolute, ``byom.`` taken off."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names += [f"{prefix}.{alias.name}" for alias in node.names] or [prefix]
    return [name.removeprefix("byom.") for name in names]


def resolve(name: str) -> str | None:
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


GRAPH = {m: {t for n in imported(m, p) if (t := resolve(n)) and t != m} for m, p in MODULES.items()}


def files_importing_bare_names() -> list[str]:
    bad = []
    for path in sorted(REPO.glob("**/*.py")):
        parts = path.relative_to(REPO).parts
        if parts[0] == "scoring" or any(part.startswith(".") for part in parts):  # venvs, caches
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else [])
            bad += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in ("core", "cli", "console")]
    return bad


def test_the_folders_are_imported_through_the_byom_package() -> None:
    assert files_importing_bare_names() == []


def test_no_import_cycle() -> None:
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(m: str) -> None:  # Tarjan's strongly connected components
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for t in GRAPH[m]:
            if t not in index:
                visit(t)
                low[m] = min(low[m], low[t])
            elif t in on_stack:
                low[m] = min(low[m], index[t])
        if low[m] == index[m]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == m:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for m in GRAPH:
        if m not in index:
            visit(m)
    assert cycles == []


@pytest.mark.parametrize(("importer", "forbidden"), [
    ("core", ("cli", "console")),
    ("console", ("core.local", "core.azure", "core.store", "core.memory")),
    ("core.azure", LOCAL),
    ("scoring", ("core", "cli", "console")),
])
def test_imports_flow_down(importer: str, forbidden: tuple[str, ...]) -> None:
    def within(name: str, prefixes: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    broken = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if within(m, (importer,))
                    for t in targets if within(t, forbidden))
    assert broken == []
