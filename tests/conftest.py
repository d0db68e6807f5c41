"""Shared fixtures: paths of the committed test data and of ../shared/data."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

# Under pytest-xdist (pyproject's addopts) every worker gets its share of the
# cores, for torch and for the processes tests start, instead of all of them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _THREADS = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    os.environ["OMP_NUM_THREADS"] = _THREADS
    os.environ["MKL_NUM_THREADS"] = _THREADS
    import torch

    torch.set_num_threads(int(_THREADS))

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture
def scene_dir() -> Path:
    """Folder of the tiny data-layer scene (tests/data/scene)."""
    return DATA / "scene"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data beside the checkout; skip when absent."""
    if not SHARED.exists():
        pytest.skip(f"real public data not found at {SHARED} (../shared/data)")
    return SHARED


def _load_script(path: Path) -> ModuleType:
    """Import a script that is not in a package (benchmarks/, docs/scripts/).

    Registered in ``sys.modules`` under its file name, so that dataclasses
    and pickling inside it work.
    """
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_script() -> Callable[[Path], ModuleType]:
    """A function that imports a script by its path."""
    return _load_script


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated five-city scene (scale 0.05), written once per session."""
    from torchgeo_quake.simulation import simulate_scene

    root = tmp_path_factory.mktemp("scene") / "kahramanmaras"
    simulate_scene(root, scale=0.05, seed=0)
    return root
