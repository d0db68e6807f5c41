"""Shared fixtures: paths of the committed test data and of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated five-city scene (scale 0.05), written once per session."""
    from torchgeo_quake.simulation import simulate_scene

    root = tmp_path_factory.mktemp("scene") / "kahramanmaras"
    simulate_scene(root, scale=0.05, seed=0)
    return root
