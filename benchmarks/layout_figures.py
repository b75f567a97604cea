"""The package's layout in figures (issue #26): modules per subpackage, import circles, the longest chain of
module-level imports of our own modules, imports made inside functions, and the largest module, class and
function by lines.

    python benchmarks/layout_figures.py            # this checkout's keras_sac/
    python benchmarks/layout_figures.py --root /path/to/other/checkout

Read from the source with `ast` (nothing is imported): an import statement at a module's top level (or in a
class body, or under `if TYPE_CHECKING:`-free conditionals) counts as module-level; one inside a function
body counts as inside a function.
"""

from __future__ import annotations

import argparse
import ast
import collections
import sys
from pathlib import Path

PACKAGE = "keras_sac"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(node: ast.ImportFrom | ast.Import, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    return [base] + [f"{base}.{a.name}" for a in node.names]


def is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def walk(tree: ast.Module):
    """(import node, inside a function?) for every import, skipping `if TYPE_CHECKING:` blocks."""
    stack = [(n, False) for n in tree.body]
    while stack:
        node, in_function = stack.pop()
        if isinstance(node, ast.If) and is_type_checking(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))


def figures(root: Path) -> dict:
    files = sorted((root / PACKAGE).rglob("*.py"))
    modules = {module_name(f, root): f for f in files}
    top: dict[str, set[str]] = collections.defaultdict(set)
    every: dict[str, set[str]] = collections.defaultdict(set)  # module-level and in-function imports
    inside = 0
    largest_module = largest_class = largest_function = ("", 0)
    for name, path in modules.items():
        source = path.read_text()
        tree = ast.parse(source)
        n_lines = len(source.splitlines())
        largest_module = max(largest_module, (str(path.relative_to(root)), n_lines), key=lambda t: t[1])
        for node in ast.walk(tree):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                label = f"{name}.{node.name}"
                if isinstance(node, ast.ClassDef):
                    largest_class = max(largest_class, (label, size), key=lambda t: t[1])
                else:
                    largest_function = max(largest_function, (label, size), key=lambda t: t[1])
        for node, in_function in walk(tree):
            targets = [t for t in resolve(node, name, path.name == "__init__.py") if t in modules and t != name]
            if not targets:
                continue
            every[name].update(targets)
            if in_function:
                inside += 1
            else:
                top[name].update(targets)
    per_package = collections.Counter(
        n.split(".")[1] if n.count(".") >= 2 or modules[n].name == "__init__.py" and n != PACKAGE else "(top level)"
        for n in modules
        if n != PACKAGE
    )
    return {
        "modules": len(modules),
        "per_subpackage": dict(sorted(per_package.items())),
        "circles": circles(top),
        "circles_with_function_imports": circles(every),
        "longest_chain": longest_chain(top),
        "imports_inside_functions": inside,
        "largest_module": largest_module,
        "largest_class": largest_class,
        "largest_function": largest_function,
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    """The longest path of module-level imports (the graph has no circle; with one, circles are cut)."""
    memo: dict[str, list[str]] = {}

    def longest(v: str, seen: frozenset) -> list[str]:
        if v in memo:
            return memo[v]
        best = [v]
        for w in graph.get(v, ()):
            if w not in seen:
                path = [v] + longest(w, seen | {w})
                best = max(best, path, key=len)
        memo[v] = best
        return best

    return max((longest(v, frozenset({v})) for v in graph), key=len, default=[])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    f = figures(p.parse_args(argv).root)
    print(f"modules: {f['modules']}  ({', '.join(f'{k} {v}' for k, v in f['per_subpackage'].items())})")
    print(f"import circles: {len(f['circles'])}" + "".join(f"\n  {' -> '.join(c)}" for c in f["circles"]))
    dodged = f["circles_with_function_imports"]
    print(
        f"import circles counting imports inside functions: {len(dodged)}"
        + "".join(f"\n  {', '.join(c)}" for c in dodged)
    )
    chain = f["longest_chain"]
    print(f"longest module-level import chain: {len(chain)} modules ({' -> '.join(chain)})")
    print(f"imports of our own modules inside functions: {f['imports_inside_functions']}")
    for what in ("module", "class", "function"):
        name, size = f[f"largest_{what}"]
        print(f"largest {what}: {name} ({size} lines)")


if __name__ == "__main__":
    main()
