"""Shared fixtures: paths of the committed test data and of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture
def scene_dir() -> Path:
    """Folder of the tiny data-layer scene (tests/data/scene)."""
    return DATA / "scene"


@pytest.fixture
def shared_data() -> Path:
    """The real public data beside the checkout; skip when absent."""
    if not SHARED.exists():
        pytest.skip(f"real public data not found at {SHARED} (../shared/data)")
    return SHARED
