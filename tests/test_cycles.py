"""No import cycle among harness's modules (``harness`` and ``harness_plugins``), checked statically.

The graph has one node per module and an edge for every import of another scanned module, at
module level or inside a function (a function-level import hides a cycle at import time, not
the coupling), but not under ``if TYPE_CHECKING:``. ``from . import name`` where ``name`` is not
a submodule is an edge to the package's ``__init__``; ``from .x import y`` is an edge to ``x``,
or to ``x.y`` when that is a submodule. Importing ``a.b.c`` also runs ``a`` and ``a.b``; those
implicit parent edges are left out (every submodule would otherwise "cycle" with its package).
"""
from __future__ import annotations

from collections import defaultdict, deque

from test_layering import Import, module_index, scan_imports


def build_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], list[Import]]]:
    """``{module: {imported module}}`` over the scanned modules, and where each edge comes from."""
    modules = module_index()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    where: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in scan_imports(modules):
        src, dst = imp.importer.name, imp.target
        if dst in modules and dst != src:
            graph[src].add(dst)
            where[src, dst].append(imp)
    return graph, where


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted, components of 2+ only."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return sorted(out)


def shortest_cycle(graph: dict[str, set[str]], component: list[str], start: str | None = None) -> list[str]:
    """A shortest cycle through ``start`` (default: the component's first module), breadth-first
    inside the component."""
    members = set(component)
    start = component[0] if start is None else start
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start} in {component}")  # pragma: no cover


def covering_cycles(graph: dict[str, set[str]], component: list[str]) -> list[list[str]]:
    """Shortest cycles until every module of the component is on one of them."""
    cycles: list[list[str]] = []
    covered: set[str] = set()
    for node in component:
        if node not in covered:
            cycles.append(shortest_cycle(graph, component, node))
            covered.update(cycles[-1])
    return cycles


def describe(cycle: list[str], where: dict[tuple[str, str], list[Import]]) -> str:
    lines = [" -> ".join(cycle)]
    for src, dst in zip(cycle, cycle[1:]):
        imp = where[src, dst][0]
        lines.append(f"    {imp.importer.rel}:{imp.line} imports {dst}")
    return "\n".join(lines)


def test_no_import_cycles():
    graph, where = build_graph()
    components = strongly_connected(graph)
    report = []
    for comp in components:
        report.append(f"{len(comp)} modules import each other: {', '.join(comp)}")
        report.extend(describe(cycle, where) for cycle in covering_cycles(graph, comp))
    assert not components, f"import cycles in {len(components)} group(s) of modules:\n" + "\n".join(report)


def test_graph_covers_harness_and_its_plugins():
    graph, _ = build_graph()
    n_harness = sum(1 for m in graph if m == "harness" or m.startswith("harness."))
    n_plugins = sum(1 for m in graph if m == "harness_plugins" or m.startswith("harness_plugins."))
    assert n_harness + n_plugins == len(graph)
    assert n_harness > 20, f"only {n_harness} harness modules in the graph"
    assert n_plugins >= 5, f"only {n_plugins} harness_plugins modules in the graph"
    # plug-ins reach harness (its API) through the same graph
    assert any(dst.startswith("harness.api") for src in graph if src.startswith("harness_plugins.")
               for dst in graph[src]), "no edge from harness_plugins into harness.api"


def test_cycle_finder_on_a_made_up_graph():
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    comps = strongly_connected(graph)
    assert comps == [["a", "b", "c"], ["d", "e"]]
    assert shortest_cycle(graph, comps[0]) == ["a", "b", "c", "a"]
    assert shortest_cycle(graph, comps[1]) == ["d", "e", "d"]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []
    star = {"a": {"b", "c"}, "b": {"a"}, "c": {"a"}}
    assert covering_cycles(star, ["a", "b", "c"]) == [["a", "b", "a"], ["c", "a", "c"]]
