"""Shape of the package's code: module sizes, long functions, import cycles.

Prints one JSON object, for the closing notes of refactoring work (before and
after, side by side): lines of code, module sizes (median, largest, count over
600 and 700 lines), functions of 100 lines or more, ``# ----`` chapter dividers
inside classes, and cycles in the import graph between modules (imports under
``if TYPE_CHECKING:`` are left out: they never run).

Usage::

    python benchmarks/code_shape.py [PACKAGE_DIR]
"""

from __future__ import annotations

import ast
import json
import statistics
import sys
from pathlib import Path


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, root: Path, modules: set[str]) -> set[str]:
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # Imports under ``if TYPE_CHECKING:`` never run: they are no import cycle.
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "torchgeo_quake").resolve()
    files = sorted(root.rglob("*.py"))
    modules = {_module_name(p, root) for p in files}
    sizes = {}
    long_functions = []
    dividers = 0
    code_lines = 0
    graph: dict[str, set[str]] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        sizes[str(path.relative_to(root.parent))] = len(lines)
        code_lines += sum(
            1 for line in lines if line.strip() and not line.strip().startswith("#")
        )
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length >= 100:
                    long_functions.append(
                        (length, f"{path.relative_to(root.parent)}:{node.name}")
                    )
            if isinstance(node, ast.ClassDef):
                body = lines[node.lineno - 1 : node.end_lineno]
                dividers += sum(1 for line in body if line.strip().startswith("# --"))
        graph[_module_name(path, root)] = _imports(path, root, modules)
    values = sorted(sizes.values())
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:10]
    print(
        json.dumps(
            {
                "package": str(root.name),
                "modules": len(files),
                "lines": sum(values),
                "code_lines": code_lines,
                "median_module_lines": statistics.median(values),
                "modules_over_600": sum(v > 600 for v in values),
                "modules_over_700": sum(v > 700 for v in values),
                "largest_modules": dict(largest),
                "functions_100_lines_or_more": len(long_functions),
                "longest_functions": [
                    f"{name} ({n})" for n, name in sorted(long_functions)[::-1][:10]
                ],
                "class_dividers": dividers,
                "import_cycles": _cycles(graph),
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
