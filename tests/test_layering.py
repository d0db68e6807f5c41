"""The package's layering: which subpackage may import which.

TorchGeo's direction is datasets <- samplers <- datamodules <- trainers; the
simulator writes files and holds no dataset. These rules are read from the
source (every ``import`` statement, function-local ones too), so a hidden
import cannot slip through.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "torchgeo_quake"

#: Subpackage -> subpackages (or top-level modules) it must never import.
_ALL = {
    "paper",
    "utils",
    "simulation",
    "realism",
    "datasets",
    "samplers",
    "datamodules",
    "models",
    "trainers",
    "mapping",
    "protocols",
    "cli",
}

FORBIDDEN: dict[str, set[str]] = {
    "utils": _ALL - {"utils"},
    "paper": {
        "datasets",
        "samplers",
        "datamodules",
        "models",
        "trainers",
        "mapping",
        "protocols",
        "simulation",
        "realism",
    },
    "simulation": {
        "realism",
        "datasets",
        "samplers",
        "datamodules",
        "models",
        "trainers",
        "mapping",
        "protocols",
    },
    "datasets": {
        "realism",
        "samplers",
        "datamodules",
        "trainers",
        "mapping",
        "protocols",
    },
    # The calibration table reads scenes through the data layer and the
    # simulator; nothing that trains or maps depends on it.
    "realism": {
        "samplers",
        "datamodules",
        "models",
        "trainers",
        "mapping",
        "protocols",
    },
    "samplers": {
        "datamodules",
        "trainers",
        "mapping",
        "protocols",
        "simulation",
        "realism",
    },
    "models": {"datasets", "samplers", "datamodules", "trainers", "mapping", "realism"},
    "trainers": {"mapping", "protocols", "simulation", "realism"},
}


def _imported(path: Path, relative: Path | None = None) -> set[str]:
    """First-level ``torchgeo_quake`` names a module imports.

    Args:
        path: a module of the package
        relative: its path inside the package (default: from *path*)

    Returns:
        Names such as ``"samplers"`` for ``from ..samplers import X`` or
        ``import torchgeo_quake.samplers``.
    """
    if relative is None:
        relative = path.relative_to(PACKAGE)
    depth = len(relative.parts) - 1  # folders between the package and the file
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "torchgeo_quake" and len(parts) > 1:
                    names.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0:
                parts = module.split(".")
                if parts[0] == "torchgeo_quake":
                    if len(parts) > 1:
                        names.add(parts[1])
                    else:
                        names.update(alias.name for alias in node.names)
                continue
            up = node.level - 1  # levels above the file's own folder
            if up < depth:
                # Inside the file's own subpackage: resolve to it.
                names.add(relative.parts[0])
                continue
            if up == depth:
                if module:
                    names.add(module.split(".")[0])
                else:
                    names.update(alias.name for alias in node.names)
    return names


def _modules(subpackage: str) -> list[Path]:
    single = PACKAGE / f"{subpackage}.py"
    if single.exists():
        return [single]
    return sorted((PACKAGE / subpackage).rglob("*.py"))


@pytest.mark.parametrize("subpackage", sorted(FORBIDDEN))
def test_subpackage_imports_respect_layers(subpackage: str) -> None:
    modules = _modules(subpackage)
    assert modules, f"no modules found for {subpackage}"
    offending = {
        str(path.relative_to(PACKAGE)): sorted(_imported(path) & FORBIDDEN[subpackage])
        for path in modules
    }
    offending = {k: v for k, v in offending.items() if v}
    assert not offending, f"forbidden imports: {offending}"


def test_resolver_sees_hidden_imports(tmp_path: Path) -> None:
    # A function-local relative import is found, and resolved to its subpackage.
    module = PACKAGE / "datasets" / "kahramanmaras.py"
    assert "paper" in _imported(module)
    assert "simulation" in _imported(module)
    fake = tmp_path / "probe.py"
    fake.write_text(
        "def f():\n    from ..samplers import BuildingCentroidSampler\n"
        "import torchgeo_quake.mapping.model\n"
        "from . import osm\n",
        encoding="utf-8",
    )
    found = _imported(fake, Path("datasets") / "probe.py")
    assert found == {"samplers", "mapping", "datasets"}


def test_no_import_cycles_between_subpackages() -> None:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        node = relative.parts[0].removesuffix(".py")
        if node == "__init__":
            continue
        graph.setdefault(node, set()).update(_imported(path) - {node})
    # Depth-first search for a cycle among subpackages.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, f"import cycle between subpackages: {cycle}"
