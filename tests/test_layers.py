"""The import graph: no module imports itself back through others, and the layers hold.

import-linter (``make check``) enforces the layer table; this test pins the rest of the promise: no
circle anywhere among autoquant's modules, type-checking imports included (a circle hidden behind
``TYPE_CHECKING`` is still two modules that cannot be understood apart).
"""

from __future__ import annotations

import grimp


#: A package's ``__init__`` re-exporting its own modules is not a circle between concepts.
def _is_package_reexport(importer: str, imported: str) -> bool:
    return imported.startswith(importer + ".")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan), package re-exports left out."""
    modules = sorted(graph.modules)
    edges = {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if not _is_package_reexport(m, i))
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_among_autoquant_modules() -> None:
    """No set of autoquant modules imports each other in a circle (TYPE_CHECKING imports count)."""
    graph = grimp.build_graph("autoquant", cache_dir=None)
    assert _cycles(graph) == []


def test_the_domain_imports_nothing_above_it() -> None:
    """autoquant.domain imports only itself (and the stdlib and pydantic, checked by import-linter)."""
    graph = grimp.build_graph("autoquant", cache_dir=None)
    outside = {
        imported
        for module in graph.find_children("autoquant.domain") | {"autoquant.domain"}
        for imported in graph.find_modules_directly_imported_by(module)
        if not imported.startswith("autoquant.domain")
    }
    assert outside == set()
