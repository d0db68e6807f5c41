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


def _write(path: Path, array: np.ndarray, left: float, top: float, res: float) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[-1],
        height=array.shape[-2],
        count=1,
        dtype="float32",
        crs="EPSG:32637",
        transform=from_origin(left, top, res, res),
        nodata=np.nan,
    ) as dst:
        dst.write(array.astype(np.float32), 1)
    return path


def _ramp(size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return (800 + 0.5 * xx + 0.25 * yy).astype(np.float32)


def test_offset_dsm_is_put_on_the_sar_lattice(tmp_path: Path, scene_dir: Path) -> None:
    """A DSM 1.3 m off the SAR grid: after align_to, SAR queries are slices."""
    from rasterio.warp import Resampling, reproject

    dsm_path = _write(
        tmp_path / "dsm.tif", _ramp(34), 500_000.0 - 3.7, 4_110_000.0 + 3.7, 5.0
    )
    sar = SAR(scene_dir / "sar.tif")
    dsm = CartoSatDSM(dsm_path, heights="absolute")
    ds = sar & dsm
    left, top = dsm.grid_origin()
    assert ((left - 500_000.0) / 2.5) % 1 != pytest.approx(0.0, abs=1e-6)
    dsm.align_to(sar)
    left, top = dsm.grid_origin()
    assert ((left - 500_000.0) / 2.5) % 1 == pytest.approx(0.0, abs=1e-6)
    assert ((4_110_000.0 - top) / 2.5) % 1 == pytest.approx(0.0, abs=1e-6)
    # Aligning again (or to itself) changes nothing.
    grid = dsm.grid()
    dsm.align_to(sar)
    assert dsm.grid() is grid
    query = window(500_040.0, 4_109_960.0, size=8)
    patch = ds[query]["dsm"]
    # The patch is the DSM warped once, bilinearly, onto those 8 × 8 SAR pixels.
    expected = np.full((8, 8), np.nan, np.float32)
    with rasterio.open(dsm_path) as src:
        reproject(
            src.read(1),
            expected,
            src_transform=src.transform,
            src_crs=src.crs,
            dst_transform=from_origin(500_040.0, 4_109_960.0, 2.5, 2.5),
            dst_crs=src.crs,
            resampling=Resampling.bilinear,
        )
    np.testing.assert_allclose(patch[0].numpy(), expected, atol=1e-3)
    # A query on the lattice is a slice of the in-memory grid.
    x, y = query
    col = round((x.start - grid.left) / 2.5)
    row = round((grid.top - y.stop) / 2.5)
    np.testing.assert_array_equal(
        patch[0].numpy(), dsm.grid().array[0, row : row + 8, col : col + 8]
    )


def test_align_to_needs_the_same_grid(scene_dir: Path) -> None:
    sar = SAR(scene_dir / "sar.tif")
    dsm = CartoSatDSM(scene_dir / "dsm.tif")
    with pytest.raises(ValueError, match="intersect them first"):
        dsm.align_to(sar)


def test_unaligned_read_computes_the_nodata_mask_once() -> None:
    """Off-grid reads must not scan the whole band on every query."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    array = rng.normal(size=(1, 40, 40)).astype(np.float32)
    array[0, 5:9, 20:30] = np.nan
    grid = RasterGrid(array, 0.0, 40.0, 1.0, 1.0)
    first = grid.read(3.3, 30.6, 8, 8, order=1)
    cached = grid._bands[0]
    second = grid.read(17.25, 36.5, 8, 8, order=1)
    assert grid._bands[0] is cached
    # Same values as interpolating the band directly (nodata -> NaN neighbourhood).
    valid = np.isfinite(array[0])
    for (x0, y1), out in (((3.3, 30.6), first), ((17.25, 36.5), second)):
        rows = (40.0 - y1) + np.arange(8)
        cols = x0 + np.arange(8)
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        ref = ndimage.map_coordinates(
            np.where(valid, array[0], 0), [rr, cc], order=1, cval=np.nan
        )
        hole = ndimage.map_coordinates(
            (~valid).astype(np.float32), [rr, cc], order=1, cval=1.0
        )
        ref[hole > 0] = np.nan
        np.testing.assert_allclose(out[0], ref, rtol=1e-6)
    assert np.isnan(second).any() and np.isfinite(second).any()


@pytest.mark.parametrize("radiometry", ["amplitude", "intensity", "db"])
def test_sar_fast_path_equals_windowed_reads(scene_dir: Path, radiometry: str) -> None:
    from torchgeo_quake.datasets import CSKSAR

    memory = CSKSAR(scene_dir / "sar.tif", radiometry=radiometry)  # type: ignore[arg-type]
    windowed = CSKSAR(
        scene_dir / "sar.tif",
        radiometry=radiometry,  # type: ignore[arg-type]
        cache_bytes=1,
        db_floor=memory.db_floor if radiometry == "db" else None,
    )
    # Inside, over the nodata strip, and running past the image edges.
    for x0, y1 in ((500_020.0, 4_109_980.0), (500_135.0, 4_109_900.0)):
        query = window(x0, y1, size=12)
        a, b = memory[query]["sar"], windowed[query]["sar"]
        torch.testing.assert_close(a, b)
    for x0, y1 in ((499_990.0, 4_110_010.0), (500_150.0, 4_109_850.0)):
        query = window(x0, y1, size=12)
        a, b = memory[query]["sar"], windowed[query]["sar"]
        torch.testing.assert_close(a, b)
    assert memory._sample_grid is not None  # answered from the filled grid
    # Samples never alias the cached grids.
    query = window(500_020.0, 4_109_980.0)
    memory[query]["sar"].fill_(123.0)
    assert float(memory[query]["sar"].max()) != 123.0


@pytest.mark.parametrize("heights", ["relative", "absolute"])
def test_dsm_fast_path_equals_windowed_reads(scene_dir: Path, heights: str) -> None:
    memory = CartoSatDSM(scene_dir / "dsm_4326.tif", heights=heights)  # type: ignore[arg-type]
    windowed = CartoSatDSM(
        scene_dir / "dsm_4326.tif",
        heights=heights,  # type: ignore[arg-type]
        cache_bytes=1,
    )
    sar = SAR(scene_dir / "sar.tif")
    a_ds, b_ds = sar & memory, SAR(scene_dir / "sar.tif") & windowed
    for x0, y1 in ((500_020.0, 4_109_980.0), (499_995.0, 4_110_005.0)):
        query = window(x0, y1, size=12)
        # Warping the whole DSM or one window agree to float32 rounding.
        torch.testing.assert_close(
            a_ds[query]["dsm"], b_ds[query]["dsm"], rtol=1e-6, atol=1e-3
        )
    memory[window(500_020.0, 4_109_980.0)]["dsm"].fill_(-5.0)
    assert float(memory[window(500_020.0, 4_109_980.0)]["dsm"].min()) != -5.0
