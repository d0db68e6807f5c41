"""SAR image formation of the calibrated scenario, collapse modes, DSM error."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from scipy import ndimage

from torchgeo_quake.simulation import (
    CitySimulation,
    get_city,
    load_exposure,
    simulate_layout,
    simulate_scene,
)
from torchgeo_quake.simulation import sar as sar_module
from torchgeo_quake.simulation.city import city_rng
from torchgeo_quake.simulation.collapse import (
    CollapseMode,
    clearance_probability,
    collapse_signatures,
    days_after_event,
    split_footprint,
)
from torchgeo_quake.simulation.damage import Damage
from torchgeo_quake.simulation.diagnostics import footprint_db_auroc
from torchgeo_quake.simulation.dsm import dsm_error, le90_for_slope
from torchgeo_quake.simulation.landcover import (
    LandCover,
    PixelGrid,
    build_surface,
    make_fields,
    rasterize,
)
from torchgeo_quake.simulation.sar import (
    SarImage,
    blend_db,
    misregistration,
    render_sar,
)
from torchgeo_quake.simulation.sar_radiometry import form_image, impulse_response
from torchgeo_quake.simulation.sar_raycast import coarsen
from torchgeo_quake.simulation.scenario import Scenario

#: sha256 of the raster data (float32 bytes) of the v0.1 scene osmaniye,
#: scale 0.05, seed 0, built-in GEM table, computed with the code before the
#: calibrated image formation existed (GeoTIFF tags changed since, so the
#: file hashes did too).
V01_SAR_SHA256 = "d76b8342087309da8990ec0133f21bff33938e8bd292703ac0887aecc2e81146"
V01_DSM_SHA256 = "c5f1fec0eeb9adf82f66fc3eeb14b5ad5abbfb35a47f220941274ecc4617568a"


def test_irf_mainlobe_and_sidelobes() -> None:
    res = 0.02
    h = impulse_response(res, half_length_m=30.0)
    assert (h**2).sum() == pytest.approx(1.0)
    power = h**2 / (h**2).max()
    x = (np.arange(h.size) - h.size // 2) * res
    width = np.ptp(x[power >= 0.5])
    assert width == pytest.approx(3.0, abs=0.05)
    centre = h.size // 2
    # First null after the main lobe, then the highest sidelobe.
    rising = np.flatnonzero(np.diff(power[centre:]) > 0)[0]
    pslr = 10 * np.log10(power[centre + rising :].max())
    assert -22.0 < pslr < -20.5


def test_irf_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="Hamming"):
        impulse_response(1.25, hamming=0.3)


def _correlation(a: np.ndarray, lag: int) -> float:
    a = a - a.mean()
    return float((a[:, :-lag] * a[:, lag:]).mean() / a.var())


def test_speckle_is_correlated_and_keeps_the_mean() -> None:
    rng = np.random.default_rng(0)
    mean = np.full((256, 256), 0.08, dtype=np.float32)
    image = coarsen(form_image(mean, 3.0, 1.25, rng, block=2), 2).astype(np.float64)
    noise = 10 ** (-2.2)
    assert image.mean() == pytest.approx(0.08 + noise, rel=0.04)
    assert _correlation(image, 1) > 0.1
    assert abs(_correlation(image, 10)) < 0.05
    enl = image.mean() ** 2 / image.var()
    assert enl == pytest.approx(3.0, rel=0.08)


def test_bright_scatterer_bleeds_into_neighbours() -> None:
    mean = np.zeros((65, 65), dtype=np.float32)
    mean[32, 32] = 1000.0
    detected = form_image(mean, 16.0, 1.25, np.random.default_rng(1))
    noise = 10 ** (-2.2)
    # Two render pixels (2.5 m) away: inside the 3 m main lobe's skirt.
    assert detected[32, 34] > 100 * noise
    assert detected[32, 32] > detected[32, 34]


def test_blend_db_endpoints() -> None:
    intact = np.array([0.0, 0.1, 1.0], dtype=np.float32)
    post = np.array([0.05, 0.0, 4.0], dtype=np.float32)
    np.testing.assert_allclose(blend_db(intact, post, 0.0), intact, atol=1e-7)
    np.testing.assert_allclose(blend_db(intact, post, 1.0), post, atol=1e-7)
    assert blend_db(intact, post, 2.0)[2] > 4.0


def test_misregistration_bounded() -> None:
    rng = np.random.default_rng(0)
    lengths = [math.hypot(*misregistration(rng)) for _ in range(500)]
    low, high = sar_module.MISREGISTRATION_RANGE_M
    assert min(lengths) >= low
    assert max(lengths) <= high


@pytest.fixture(scope="module")
def osmaniye() -> CitySimulation:
    return simulate_layout(get_city("osmaniye"), load_exposure(), 0.05, 0)


def _render(sim: CitySimulation) -> SarImage:
    fields = make_fields(sim, city_rng(sim.seed, sim.city, sim.scale, "fields"))
    return render_sar(sim, fields)


def test_image_is_shifted_against_footprints(
    osmaniye: CitySimulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _render(osmaniye)
    dx, dy = image.shift_m
    low, high = sar_module.MISREGISTRATION_RANGE_M
    assert low <= math.hypot(dx, dy) <= high
    monkeypatch.setattr(sar_module, "MISREGISTRATION_RANGE_M", (0.0, 0.0))
    still = _render(osmaniye)
    assert still.shift_m == (0.0, 0.0)
    moved = ndimage.shift(
        still.intensity.astype(float), (-dy / 2.5, dx / 2.5), order=1, mode="nearest"
    )
    inner = np.s_[4:-4, 4:-4]
    a = image.intensity[inner].ravel()
    assert (
        np.corrcoef(a, moved[inner].ravel())[0, 1]
        > np.corrcoef(a, still.intensity[inner].ravel())[0, 1]
    )


def _intact(sim: CitySimulation) -> CitySimulation:
    n = len(sim.buildings)
    damage = dataclasses.replace(
        sim.damage,
        grade=np.zeros(n, dtype=np.int64),
        residual=np.ones(n),
        heap_height=np.zeros(n),
        spread=np.zeros(n),
        apron_side=np.full(n, -1, dtype=np.int64),
        mode=np.full(n, -1, dtype=np.int64),
    )
    return dataclasses.replace(sim, damage=damage)


def test_zero_contrast_renders_the_intact_city(osmaniye: CitySimulation) -> None:
    zero = Scenario(sar_contrast=0.0)
    image = _render(dataclasses.replace(osmaniye, scenario=zero))
    intact = _render(dataclasses.replace(_intact(osmaniye), scenario=zero))
    assert image.contrast == 0.0
    np.testing.assert_allclose(image.intensity, intact.intensity, rtol=1e-5, atol=1e-7)
    full = _render(osmaniye)
    assert not np.allclose(full.intensity, intact.intensity, rtol=1e-3)


def _footprint_db(sim: CitySimulation, image: SarImage) -> np.ndarray:
    ids = np.flatnonzero(sim.counted)
    label = rasterize(sim.buildings.polygons[ids], ids + 1, image.grid) - 1
    db = 20 * np.log10(image.amplitude.astype(float).clip(1e-6))
    on = (label >= 0) & image.valid
    count = np.bincount(label[on], minlength=len(sim.buildings))
    total = np.bincount(label[on], weights=db[on], minlength=len(sim.buildings))
    keep = count > 0
    return np.where(keep, total / np.maximum(count, 1), np.nan)


@pytest.mark.parametrize("contrast", [0.0, 3.0])
def test_zero_contrast_has_no_damage_cue(
    contrast: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Positive control: a strong contrast without misregistration shows damage.
    if contrast > 0:
        monkeypatch.setattr(sar_module, "MISREGISTRATION_RANGE_M", (0.0, 0.0))
    sim = simulate_layout(get_city("nurdagi"), load_exposure(), 0.05, 1)
    sim = dataclasses.replace(sim, scenario=Scenario(sar_contrast=contrast))
    mean_db = _footprint_db(sim, _render(sim))
    damaged = sim.damage.in_reference & ~np.isnan(mean_db)
    intact = ~sim.damage.in_reference & sim.counted & ~np.isnan(mean_db)
    assert damaged.sum() >= 5
    diff = mean_db[damaged].mean() - mean_db[intact].mean()
    se = math.sqrt(
        mean_db[damaged].var() / damaged.sum() + mean_db[intact].var() / intact.sum()
    )
    if contrast == 0:
        assert abs(diff) < 3 * se
    else:
        assert diff > 3 * se


def _collapsed_damage(n: int) -> Damage:
    return Damage(
        grade=np.full(n, 2, dtype=np.int64),
        in_reference=np.ones(n, dtype=bool),
        pga_g=np.full(n, 0.5),
        propensity=np.zeros(n),
        probability=np.full(n, 0.5),
        threshold=0.0,
        residual=np.zeros(n),
        heap_height=np.full(n, 2.0),
        spread=np.full(n, 3.0),
        apron_side=np.full(n, -1, dtype=np.int64),
    )


def test_all_collapse_modes_occur() -> None:
    n = 2000
    heights = np.where(np.arange(n) % 2 == 0, 6.0, 15.0)
    city = dataclasses.replace(get_city("kahramanmaras"), acquisition_date="2023-03-20")
    damage = collapse_signatures(
        _collapsed_damage(n), heights, city, Scenario(), np.random.default_rng(0)
    )
    assert damage.mode is not None
    assert set(np.unique(damage.mode)) == {int(m) for m in CollapseMode}
    pancake = damage.mode == CollapseMode.PANCAKE
    assert (damage.residual[pancake] * heights[pancake] <= 6.0 + 1e-9).all()
    assert (damage.residual[pancake] > 0).all()
    # Pancake collapse is more frequent among multi-storey buildings.
    assert pancake[heights > 10].mean() > 2 * pancake[heights < 10].mean()
    partial = damage.mode == CollapseMode.PARTIAL
    assert ((damage.apron_side[partial] >= 0) & (damage.residual[partial] >= 0.6)).all()
    cleared = damage.mode == CollapseMode.CLEARED
    assert (damage.residual[cleared] == 0).all()
    assert (damage.heap_height[cleared] == 0).all()


def test_v01_collapse_signatures_are_unchanged() -> None:
    damage = _collapsed_damage(10)
    rng = np.random.default_rng(0)
    out = collapse_signatures(
        damage, np.full(10, 9.0), get_city("islahiye"), Scenario("v0.1"), rng
    )
    assert out is damage
    assert rng.random() == np.random.default_rng(0).random()


def test_cleared_share_grows_with_delay() -> None:
    n = 4000
    shares = []
    for date in ("2023-02-15", "2023-02-25", "2023-03-20", "2023-04-25"):
        city = dataclasses.replace(get_city("islahiye"), acquisition_date=date)
        damage = collapse_signatures(
            _collapsed_damage(n),
            np.full(n, 9.0),
            city,
            Scenario(),
            np.random.default_rng(3),
        )
        assert damage.mode is not None
        share = float((damage.mode == CollapseMode.CLEARED).mean())
        expected = clearance_probability(days_after_event(date))
        assert share == pytest.approx(expected, abs=0.03)
        shares.append(share)
    assert shares[0] == 0.0
    assert shares == sorted(shares)
    assert shares[-1] == 1.0


def test_bad_acquisition_date() -> None:
    with pytest.raises(ValueError, match="ISO date"):
        days_after_event("25/02/2023")


def test_collapse_modes_render(osmaniye: CitySimulation) -> None:
    sim = osmaniye
    b = sim.buildings
    counted = np.flatnonzero(sim.counted)
    big = counted[np.argsort(-shapely.area(b.polygons[counted]))]
    i_pan, i_part, i_clear = (int(v) for v in big[:3])
    n = len(b)
    mode = np.full(n, -1, dtype=np.int64)
    mode[[i_pan, i_part, i_clear]] = [
        CollapseMode.PANCAKE,
        CollapseMode.PARTIAL,
        CollapseMode.CLEARED,
    ]
    grade = np.zeros(n, dtype=np.int64)
    grade[[i_pan, i_part, i_clear]] = 2
    residual = np.ones(n)
    residual[i_pan] = 2.0 / sim.height[i_pan]
    residual[i_part] = 1.0
    residual[i_clear] = 0.0
    apron = np.full(n, -1, dtype=np.int64)
    apron[i_part] = 0
    damage = dataclasses.replace(
        sim.damage,
        grade=grade,
        residual=residual,
        heap_height=np.where(grade == 2, 2.0, 0.0),
        spread=np.where(grade == 2, 1.0, 0.0),
        apron_side=apron,
        mode=mode,
    )
    sim = dataclasses.replace(sim, damage=damage)
    fields = make_fields(sim, city_rng(0, sim.city, sim.scale, "fields"))
    grid = PixelGrid.from_bounds(sim.selection.bounds, 1.25)
    surface = build_surface(sim, fields, grid, True, np.random.default_rng(0))

    def inside(geom: object) -> np.ndarray:
        return rasterize([geom], [1], grid) > 0

    pan = inside(b.polygons[i_pan])
    assert (surface.cover[pan] == LandCover.ROOF).mean() > 0.9
    assert np.median(surface.height[pan]) == pytest.approx(2.0, abs=0.01)
    clear = inside(b.polygons[i_clear])
    assert (surface.cover[clear] == LandCover.GROUND).all()
    assert (surface.height[clear] == 0).all()
    standing, fallen = split_footprint(b.polygons[i_part], b.angle_deg[i_part], 0)
    assert standing.area == pytest.approx(fallen.area, rel=0.2)
    assert (surface.cover[inside(standing)] == LandCover.ROOF).mean() > 0.8
    assert (surface.cover[inside(fallen)] == LandCover.DEBRIS).mean() > 0.8


@pytest.mark.parametrize("le90", [5.0, 7.0, 10.0])
def test_dsm_error_rmse(le90: float) -> None:
    rng = np.random.default_rng(0)
    errors = np.stack([dsm_error((120, 120), le90, rng) for _ in range(8)])
    rmse = float(np.sqrt((errors**2).mean()))
    assert rmse == pytest.approx(le90 / 1.6449, rel=0.1)
    # Euro-Maps 3D: absolute LE90 5-10 m, i.e. an RMSE of 3.0-6.1 m.
    assert 3.0 * 0.9 <= rmse <= 6.1 * 1.1
    # Neighbouring pixels share most of the error (correlated field).
    assert np.corrcoef(errors[:, :, :-1].ravel(), errors[:, :, 1:].ravel())[0, 1] > 0.5


def test_dsm_le90_follows_slope() -> None:
    slopes = np.degrees(np.arctan([0.1, 0.3, 0.6]))
    np.testing.assert_array_equal(le90_for_slope(slopes), [5.0, 7.0, 10.0])
    with pytest.raises(ValueError, match="relative LE90"):
        dsm_error((10, 10), 2.0, np.random.default_rng(0))


def _raster_sha(path: Path) -> str:
    with rasterio.open(path) as src:
        return hashlib.sha256(src.read(1).tobytes()).hexdigest()


def test_v01_scene_unchanged(tmp_path: Path) -> None:
    simulate_scene(
        tmp_path,
        cities=["osmaniye"],
        scale=0.05,
        seed=0,
        gem_dir="builtin",
        progress=False,
        scenario="v0.1",
    )
    assert _raster_sha(tmp_path / "osmaniye" / "sar.tif") == V01_SAR_SHA256
    assert _raster_sha(tmp_path / "osmaniye" / "dsm.tif") == V01_DSM_SHA256
    result = footprint_db_auroc(tmp_path / "osmaniye")
    assert result["n_damaged"] >= 1
    assert result["damaged_minus_intact_db"] > 0
    assert 0.5 < result["auroc"] <= 1.0


def test_diagnostics_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"sar\.tif"):
        footprint_db_auroc(tmp_path)
