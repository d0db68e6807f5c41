"""Strip-wise rendering of the SAR image and the DSM: same output, any strip."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from torchgeo_quake.simulation import (
    CitySimulation,
    get_city,
    load_exposure,
    sar_strips,
    simulate_layout,
    simulate_scene,
)
from torchgeo_quake.simulation import dsm as dsm_module
from torchgeo_quake.simulation import sar as sar_module
from torchgeo_quake.simulation.city import city_rng
from torchgeo_quake.simulation.landcover import (
    CityFields,
    PixelGrid,
    build_surface,
    make_fields,
)
from torchgeo_quake.simulation.sar_strips import GridDraws, RowNoise
from torchgeo_quake.simulation.surface_plan import plan_surface

#: sha256 of the raster data (float32 bytes) of the v0.1 scene nurdagi, scale
#: 0.1, seed 0, built-in GEM table, computed with the code before strips.
V01_SAR_SHA256 = "11d010e47c3354543c4895b995f6f2d990f8191bc4d6084c27e5b4fc79cfe129"
V01_DSM_SHA256 = "1441411461bb1051dba8d576151dd05919ede43693038111b48d5ca8cdbe7396"


@pytest.fixture(scope="module")
def nurdagi() -> tuple[CitySimulation, CityFields]:
    city = get_city("nurdagi")
    sim = simulate_layout(city, load_exposure(), 0.1, 0)
    assert not sim.scenario.is_v01
    fields = make_fields(sim, city_rng(0, city, sim.scale, "fields"))
    return sim, fields


def test_grid_draws_address_rows() -> None:
    grid = PixelGrid(0.0, 100.0, 1.25, 40, 7)
    draws = GridDraws.draw(np.random.default_rng(5), 3, grid)
    rng = np.random.default_rng(5)
    roof = rng.normal(0.0, 1.5, size=3)
    full = [rng.random(grid.shape) for _ in range(3)]
    np.testing.assert_array_equal(draws.roof, roof)
    strip = PixelGrid(0.0, 100.0 - 13 * 1.25, 1.25, 9, 7)
    for k in range(3):
        np.testing.assert_array_equal(draws.uniform(k, strip), full[k][13:22])


def test_grid_draws_need_pcg64() -> None:
    rng = np.random.Generator(np.random.MT19937(0))
    with pytest.raises(TypeError, match="PCG64"):
        GridDraws.draw(rng, 1, PixelGrid(0.0, 0.0, 1.0, 2, 2))


def test_row_noise_same_rows_any_strip() -> None:
    whole = RowNoise(3, 5, 0, 200)(1)
    part = RowNoise(3, 5, 61, 130)(1)
    np.testing.assert_array_equal(part, whole[61:130])
    assert not np.array_equal(RowNoise(3, 5, 0, 200)(2), whole)
    assert abs(whole.mean()) < 0.2 and whole.std() == pytest.approx(1.0, abs=0.1)


def test_shift_rows_matches_ndimage() -> None:
    image = np.random.default_rng(0).random((50, 30)).astype(np.float32)
    shift = (2.7, -1.3)
    expected = ndimage.shift(image, shift, order=1, mode="nearest")
    whole = sar_strips._shift_rows(image, 0, (0, 50), shift)
    np.testing.assert_allclose(whole, expected, rtol=1e-5, atol=1e-6)
    part = sar_strips._shift_rows(image[10:40], 10, (15, 35), shift)
    np.testing.assert_array_equal(part, whole[15:35])


def test_surface_strips_equal_whole_grid(
    nurdagi: tuple[CitySimulation, CityFields],
) -> None:
    sim, fields = nurdagi
    left, bottom, right, top = sim.selection.bounds
    grid = PixelGrid.from_bounds((left, bottom, right, top), 1.25)
    whole = build_surface(sim, fields, grid, True, np.random.default_rng(7))
    assert (whole.debris >= 0).any()
    plan = plan_surface(sim, grid)
    plan.draw_heaps(sim, np.random.default_rng(7))
    unused = np.random.default_rng(0)
    for r0, r1 in ((0, 37), (37, 200), (200, grid.rows)):
        part = build_surface(sim, fields, plan.strip(r0, r1), True, unused, plan)
        for name in ("cover", "height", "building", "debris"):
            np.testing.assert_array_equal(
                getattr(part, name), getattr(whole, name)[r0:r1], err_msg=name
            )


def test_plan_rejects_foreign_grid(
    nurdagi: tuple[CitySimulation, CityFields],
) -> None:
    sim, _ = nurdagi
    plan = plan_surface(sim, PixelGrid(0.0, 0.0, 1.25, 10, 10))
    with pytest.raises(ValueError, match="outside"):
        plan.strip(5, 11)
    with pytest.raises(ValueError, match="not a row strip"):
        plan.row_of(PixelGrid(0.5, 0.0, 1.25, 2, 10))


def test_sar_does_not_depend_on_strip_size(
    nurdagi: tuple[CitySimulation, CityFields],
) -> None:
    sim, fields = nurdagi
    big = sar_strips.render_calibrated(sim, fields, 100_000)
    small = sar_strips.render_calibrated(sim, fields, 58)
    assert big.amplitude.shape[0] * sar_module.OVERSAMPLING > 3 * 58
    for name in ("amplitude", "intensity", "cover", "valid"):
        np.testing.assert_array_equal(
            getattr(small, name), getattr(big, name), err_msg=name
        )
    assert big.amplitude[big.valid].min() > 0


def test_sar_strip_rows_checked(
    nurdagi: tuple[CitySimulation, CityFields],
) -> None:
    sim, fields = nurdagi
    with pytest.raises(ValueError, match="multiple"):
        sar_strips.render_calibrated(sim, fields, 3)


def test_dsm_does_not_depend_on_strip_size(
    nurdagi: tuple[CitySimulation, CityFields],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim, fields = nurdagi
    monkeypatch.setattr(dsm_module, "STRIP_ROWS", 100_000)
    big = dsm_module.render_dsm(sim, fields)
    monkeypatch.setattr(dsm_module, "STRIP_ROWS", 64)
    small = dsm_module.render_dsm(sim, fields)
    assert big.height.shape[0] * 2 > 3 * 64
    np.testing.assert_array_equal(small.height, big.height)


def _raster_sha(path: Path) -> str:
    with rasterio.open(path) as src:
        return hashlib.sha256(src.read(1).tobytes()).hexdigest()


def test_v01_unchanged_with_small_strips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dsm_module, "STRIP_ROWS", 64)
    monkeypatch.setattr(sar_strips, "STRIP_ROWS", 32)
    simulate_scene(tmp_path, cities=["nurdagi"], scale=0.1, seed=0, scenario="v0.1")
    assert _raster_sha(tmp_path / "nurdagi" / "sar.tif") == V01_SAR_SHA256
    assert _raster_sha(tmp_path / "nurdagi" / "dsm.tif") == V01_DSM_SHA256
