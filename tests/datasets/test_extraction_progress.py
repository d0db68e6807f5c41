"""The sample extraction shows a progress bar per area when asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from torchgeo_quake.datasets import CSKSAR, OSMBuildings, build_area
from torchgeo_quake.datasets._sample_arrays import _area_arrays

SCENE = Path(__file__).resolve().parents[1] / "data" / "scene"


@pytest.mark.parametrize("progress", [True, None])
def test_area_arrays_progress(
    progress: bool | None, capsys: pytest.CaptureFixture[str]
) -> None:
    area = build_area(
        CSKSAR(SCENE / "sar.tif"),
        OSMBuildings(SCENE / "buildings.gpkg", damage=SCENE / "destroyed.geojson"),
        size=8,
    )
    capsys.readouterr()
    arrays = _area_arrays(area, "town", ["sar", "footprint"], 8, progress=progress)
    n = len(area.windows.buildings)
    assert arrays["sar"].shape == (n, 1, 8, 8) and np.all(arrays["city"] == "town")
    err = capsys.readouterr().err
    if progress:
        assert "extract town:" in err and f"/{n} " in err
    else:  # None: only on a terminal, and pytest's stderr is not one
        assert err == ""
