from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from torchgeo.datasets import RasterDataset

from torchgeo_quake.datasets import CartoSatDSM
from torchgeo_quake.datasets.raster import CachedRasterDataset, RasterGrid


class SAR(CachedRasterDataset):
    sample_key = "sar"
    filename_glob = "sar.tif"


class StockSAR(RasterDataset):
    filename_glob = "sar.tif"


def window(x0: float, y1: float, size: int = 8, res: float = 2.5) -> tuple[slice, ...]:
    return (slice(x0, x0 + size * res, res), slice(y1 - size * res, y1, res))


def test_aligned_query_equals_stock(scene_dir: Path) -> None:
    ours = SAR(scene_dir / "sar.tif")
    stock = StockSAR(scene_dir / "sar.tif")
    query = window(500_010.0, 4_109_990.0)
    a = ours[query]["sar"]
    b = stock[query]["image"]
    assert a.shape == (1, 8, 8)
    torch.testing.assert_close(a, b)


def test_unaligned_query_is_interpolated(scene_dir: Path) -> None:
    ours = SAR(scene_dir / "sar.tif")
    aligned = ours.read_patch(window(500_010.0, 4_109_990.0))
    shifted = ours.read_patch(window(500_010.0 + 1.25, 4_109_990.0))
    # Half a pixel to the right: the mean of two neighbours.
    expected = (aligned[0, :, :-1] + aligned[0, :, 1:]) / 2
    np.testing.assert_allclose(shifted[0, :, :-1], expected, rtol=1e-5)


def test_nodata_is_masked_and_filled(scene_dir: Path) -> None:
    ours = SAR(scene_dir / "sar.tif")
    query = window(500_000.0 + 56 * 2.5, 4_109_990.0)
    assert ours.nodata_fraction(query) == pytest.approx(1.0)
    assert torch.all(ours[query]["sar"] == 0)
    fractions = ours.nodata_fractions(
        np.array([500_000.0, 500_000.0 + 52 * 2.5, 499_990.0]),
        np.array([4_110_000.0] * 3),
        8,
        8,
    )
    np.testing.assert_allclose(fractions, [0.0, 0.5, 0.5])


def test_query_outside_raises(scene_dir: Path) -> None:
    ours = SAR(scene_dir / "sar.tif")
    with pytest.raises(IndexError, match="not found"):
        ours[window(600_000.0, 4_109_990.0)]


def test_windowed_fallback_matches_memory(scene_dir: Path) -> None:
    memory = SAR(scene_dir / "sar.tif")
    windowed = SAR(scene_dir / "sar.tif", cache_bytes=1)
    assert memory.uses_memory_grid() and not windowed.uses_memory_grid()
    query = window(500_020.0, 4_109_980.0)
    torch.testing.assert_close(memory[query]["sar"], windowed[query]["sar"])
    fractions = windowed.nodata_fractions(
        np.array([500_000.0, 500_000.0 + 52 * 2.5]), np.array([4_110_000.0] * 2), 8, 8
    )
    np.testing.assert_allclose(fractions, [0.0, 0.5])


def test_grid_rebuilt_when_res_changes(scene_dir: Path) -> None:
    ours = SAR(scene_dir / "sar.tif")
    assert ours.grid().shape == (64, 64)
    ours.res = (5.0, 5.0)
    assert ours.grid().shape == (32, 32)


def test_raster_grid_padding() -> None:
    grid = RasterGrid(np.ones((1, 4, 4), np.float32), 0.0, 4.0, 1.0, 1.0)
    patch = grid.read(-1.0, 5.0, 3, 3, order=1)
    assert np.isnan(patch[0, 0]).all() and np.isnan(patch[0, :, 0]).all()
    assert (patch[0, 1:, 1:] == 1).all()


def test_missing_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no raster file"):
        SAR(tmp_path)


def test_corrupt_file_is_clear(tmp_path: Path) -> None:
    bad = tmp_path / "sar.tif"
    bad.write_bytes(b"II*\x00 definitely not a tiff")
    with pytest.raises(ValueError, match=r"cannot read raster .*sar\.tif.*corrupt"):
        SAR(bad)


def test_raster_without_crs_is_clear(tmp_path: Path) -> None:
    path = tmp_path / "sar.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="float32",
        transform=from_origin(0, 4, 1, 1),
    ) as dst:
        dst.write(np.ones((1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="has no coordinate reference system"):
        SAR(path)


def test_dsm_relative_and_absolute(scene_dir: Path) -> None:
    # 40 m window centred on the 20 m building (bilinear blurs its edges).
    query = window(500_000.0 + 16 * 2.5, 4_110_000.0 - 16 * 2.5, size=16)
    relative = CartoSatDSM(scene_dir / "dsm.tif", res=2.5)[query]["dsm"]
    absolute = CartoSatDSM(scene_dir / "dsm.tif", res=2.5, heights="absolute")[query][
        "dsm"
    ]
    assert relative.shape == (1, 16, 16)
    assert float(relative.min()) == 0.0
    assert float(absolute.min()) > 800
    torch.testing.assert_close(absolute - absolute.min(), relative)
    assert float(relative.max()) > 10  # the 12 m building


def test_dsm_in_another_crs_is_reprojected(scene_dir: Path) -> None:
    sar = SAR(scene_dir / "sar.tif")
    dsm_utm = CartoSatDSM(scene_dir / "dsm.tif", heights="absolute")
    dsm_geo = CartoSatDSM(scene_dir / "dsm_4326.tif", heights="absolute")
    a = (sar & dsm_utm)[window(500_040.0, 4_109_960.0)]["dsm"]
    b = (sar & dsm_geo)[window(500_040.0, 4_109_960.0)]["dsm"]
    assert a.shape == b.shape == (1, 8, 8)
    # Two resamplings apart: equal to a small fraction of a metre on a smooth ramp.
    assert float((a - b).abs().median()) < 0.5


def test_dsm_rejects_multiband(tmp_path: Path) -> None:
    path = tmp_path / "dsm.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=2,
        dtype="float32",
        crs="EPSG:32637",
        transform=from_origin(0, 4, 1, 1),
    ) as dst:
        dst.write(np.ones((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="single-band"):
        CartoSatDSM(path)
    with pytest.raises(ValueError, match="heights"):
        CartoSatDSM(path, heights="tall")  # type: ignore[arg-type]


def test_dsm_plot(scene_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    dsm = CartoSatDSM(scene_dir / "dsm.tif", res=2.5)
    fig = dsm.plot(dsm[window(500_040.0, 4_109_960.0)], suptitle="dsm")
    assert fig.axes


def test_copy_of_fixture_independent(tmp_path: Path, scene_dir: Path) -> None:
    shutil.copy(scene_dir / "sar.tif", tmp_path / "sar.tif")
    ours = SAR(tmp_path)
    assert len(ours) == 1 and ours.res == (2.5, 2.5)
