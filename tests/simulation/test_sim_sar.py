"""SAR physics of the simulator: layover, shadow, double bounce, speckle, terrain."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.features

from torchgeo_quake.simulation import (
    CitySimulation,
    get_city,
    load_exposure,
    render_single_building,
    simulate_layout,
    simulate_scene,
)
from torchgeo_quake.simulation.city import city_rng
from torchgeo_quake.simulation.landcover import LandCover, make_fields
from torchgeo_quake.simulation.sar import (
    SarImage,
    SingleBuilding,
    aspect_factor,
    render_sar,
    speckle,
)


def _profile(render: SingleBuilding) -> tuple[np.ndarray, np.ndarray]:
    """Central range line and its signed distance from the sensor-facing wall.

    Returns:
        (intensity, distance): distance > 0 away from the sensor (metres, at
        pixel centres).
    """
    row = render.intensity[render.intensity.shape[0] // 2].astype(float)
    x = render.left + (np.arange(row.size) + 0.5) * render.res
    away = 1.0 if render.sensor_side == "WEST" else -1.0
    return row, away * (x - render.near_edge)


@pytest.mark.parametrize(
    ("height", "incidence", "orbit"),
    [
        (6.0, 26.4, "ASCENDING"),
        (15.0, 30.0, "ASCENDING"),
        (24.0, 40.2, "DESCENDING"),
        (30.0, 44.0, "DESCENDING"),
    ],
)
def test_layover_and_shadow_lengths(
    height: float, incidence: float, orbit: str
) -> None:
    width = 20.0
    render = render_single_building(height, incidence, orbit, width_m=width)  # type: ignore[arg-type]
    row, distance = _profile(render)
    ground = render.ground
    tan = math.tan(math.radians(incidence))
    # Bright layover band in front of the sensor-facing wall: h / tan(theta).
    layover = np.sum((distance < 0) & (row > 1.5 * ground)) * render.res
    assert layover == pytest.approx(height / tan, abs=2 * render.res)
    assert np.all(row[(distance < -height / tan - render.res)] == pytest.approx(ground))
    # Dark shadow behind the far wall: h * tan(theta).
    behind = distance - width
    shadow = np.sum((behind > 0) & (row < 0.5 * ground)) * render.res
    assert shadow == pytest.approx(height * tan, abs=2 * render.res)
    assert np.all(row[behind > height * tan + render.res] == pytest.approx(ground))


def _step(profile: np.ndarray, brighter: bool) -> int:
    """Length of the leading run of a two-level step profile (least squares).

    Args:
        profile: log-intensity with the distance from the wall, in pixels
        brighter: whether the leading run is brighter (layover) or darker
            (shadow) than what follows

    Returns:
        Number of leading pixels in the first level (0 when there is none).
    """
    best, length = math.inf, 0
    for m in range(len(profile) - 2):
        head, tail = profile[:m], profile[m:]
        if m and (head.mean() > tail.mean()) != brighter:
            continue
        cost = ((head - head.mean()) ** 2).sum() if m else 0.0
        cost += ((tail - tail.mean()) ** 2).sum()
        if cost < best:
            best, length = cost, m
    return length


def _clear(reach: np.ndarray, intensity: np.ndarray) -> bool:
    """Whether a stretch of a range line sees one building only, all valid."""
    return bool((reach <= 1).all() and (intensity > 0).all())


def _measure_city(folder: Path) -> pd.DataFrame:
    """Layover and shadow lengths of the isolated intact buildings of a city.

    For every range line (image row) of an intact building whose footprint is
    one run of pixels, the intensity in front of the sensor-facing edge and
    behind the far edge is collected, as long as no other building's footprint,
    layover or shadow (from ``truth.csv`` heights) reaches into it; averaged over
    the building's clear lines, a least-squares step fit gives the lengths.
    """
    with rasterio.open(folder / "sar.tif") as src:
        intensity = src.read(1).astype(float) ** 2
        transform, tags = src.transform, src.tags()
    buildings = gpd.read_file(folder / "buildings.gpkg").to_crs(32637)
    truth = pd.read_csv(folder / "truth.csv").set_index("osm_id")
    truth = truth.loc[buildings["osm_id"]]
    ids = rasterio.features.rasterize(
        zip(buildings.geometry, np.arange(len(buildings)) + 1, strict=True),
        out_shape=intensity.shape,
        transform=transform,
        dtype="int32",
    )
    if tags["SENSOR_SIDE"] == "EAST":  # put the sensor on the left
        intensity, ids = intensity[:, ::-1], ids[:, ::-1]
    tan = math.tan(math.radians(float(tags["INCIDENCE_ANGLE"])))
    res = abs(transform.a)
    height = truth["height_m"].to_numpy()
    layover, shadow = height / tan / res, height * tan / res  # in pixels
    runs: dict[int, dict[int, tuple[int, int]]] = {}
    rows, cols = np.nonzero(ids)
    for row, col in zip(rows, cols, strict=True):
        first, last = runs.setdefault(ids[row, col] - 1, {}).get(row, (col, col))
        runs[ids[row, col] - 1][row] = (min(first, col), max(last, col))
    reach = np.zeros(ids.shape, dtype=int)  # buildings whose signature is here
    for b, lines in runs.items():
        for row, (first, last) in lines.items():
            lo = max(0, first - math.ceil(layover[b]) - 1)
            reach[row, lo : last + math.ceil(shadow[b]) + 2] += 1
    margin = 6
    out = []
    for b, lines in runs.items():
        if truth["damage_grade"].iloc[b] != 0:
            continue
        front_n, back_n = math.ceil(layover[b]) + margin, math.ceil(shadow[b]) + margin
        front, back = [], []
        for row, (first, last) in lines.items():
            if (ids[row, first : last + 1] != b + 1).any():
                continue  # not one run of pixels (an L-shape on this line)
            # Clear: inside the image, valid, and reached by no other building.
            span = slice(first - front_n, first)
            if first >= front_n and _clear(reach[row, span], intensity[row, span]):
                front.append(intensity[row, span][::-1])
            span = slice(last + 1, last + 1 + back_n)
            inside = last + 1 + back_n <= ids.shape[1]
            if inside and _clear(reach[row, span], intensity[row, span]):
                back.append(intensity[row, span])
        out.append(
            {
                "layover": layover[b],
                "shadow": shadow[b],
                "layover_measured": (
                    _step(np.log(np.mean(front, axis=0)), brighter=True)
                    if len(front) >= 3
                    else np.nan
                ),
                "shadow_measured": (
                    _step(np.log(np.mean(back, axis=0)), brighter=False)
                    if len(back) >= 3
                    else np.nan
                ),
            }
        )
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def v01_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Kahramanmaraş of the v0.1 scenario at scale 0.05.

    The ray casting is shared by both scenarios; the v0.1 image has no
    misregistration or impulse response, so the geometry is measured exactly.
    """
    root = tmp_path_factory.mktemp("v01")
    simulate_scene(root, cities=["kahramanmaras"], scale=0.05, seed=0, scenario="v0.1")
    return root


def test_layover_and_shadow_lengths_in_a_rendered_city(v01_root: Path) -> None:
    """h / tan(theta) and h tan(theta) on the isolated buildings of sar.tif.

    Kahramanmaraş (mid-rise blocks, 29.7° incidence) of the v0.1 scene:
    layover bands are up to ~20 pixels long, shadows up to ~6.
    """
    lengths = _measure_city(v01_root / "kahramanmaras")
    for name in ("layover", "shadow"):
        measured = lengths.dropna(subset=[f"{name}_measured"])
        assert len(measured) >= 30, f"too few isolated buildings for the {name}"
        error = measured[f"{name}_measured"] - measured[name]
        assert error.abs().median() <= 1.0, name
        assert (error.abs() <= 2.0).mean() >= 0.75, name
        assert abs(error.mean()) <= 1.0, name  # no bias
    # The lengths follow h and theta: long layover bands are measured long.
    measured = lengths.dropna(subset=["layover_measured"])
    assert np.corrcoef(measured["layover_measured"], measured["layover"])[0, 1] > 0.8
    # Swapping the two formulas would be far off.
    swapped = (measured["layover_measured"] - measured["shadow"]).abs().median()
    assert swapped > 4.0


def test_double_bounce_and_shadow_vanish_with_collapse() -> None:
    intact = render_single_building(15.0, 35.0)
    collapsed = render_single_building(15.0, 35.0, collapsed=True)
    row_i, distance = _profile(intact)
    row_c, _ = _profile(collapsed)
    wall = np.abs(distance) <= intact.res
    # A very bright double-bounce line at the wall foot of the intact building.
    assert row_i[wall].max() > 10 * intact.ground
    assert row_i[wall].max() > 3 * row_c[wall].max()
    # Its shadow is dark; the debris heap casts (almost) none.
    shadow = (distance - 20.0 > intact.res) & (distance - 20.0 < 15.0 * 0.7)
    assert row_i[shadow].max() < 0.1 * intact.ground
    assert row_c[shadow].mean() > 0.5 * collapsed.ground


def test_double_bounce_depends_on_wall_orientation() -> None:
    factor = aspect_factor([0.0, 90.0, -180.0, 10.0, 30.0, 45.0])
    assert factor[:3] == pytest.approx(1.0)
    assert factor[3] > 0.5
    assert factor[4] < 0.2
    assert factor[5] == pytest.approx(0.05, abs=0.01)


@pytest.mark.parametrize("looks", [3.0, 4.0])
def test_speckle_statistics(looks: float) -> None:
    rng = np.random.default_rng(1)
    mean = np.full((400, 400), 0.08, dtype=np.float32)
    intensity = speckle(mean, looks, rng).astype(float) ** 2
    cv = intensity.std() / intensity.mean()
    assert cv == pytest.approx(1 / math.sqrt(looks), rel=0.03)
    assert intensity.mean() == pytest.approx(0.08 + 10 ** (-2.2), rel=0.02)
    assert (intensity > 0).all()


@pytest.fixture(scope="module")
def islahiye() -> tuple[CitySimulation, SarImage]:
    # The v0.1 radiometry (no impulse response, no contrast blending).
    sim = simulate_layout(
        get_city("islahiye"), load_exposure(), 0.1, 0, scenario="v0.1"
    )
    fields = make_fields(sim, city_rng(0, sim.city, 0.1, "fields"))
    return sim, render_sar(sim, fields)


def test_open_ground_speckle_in_a_city(
    islahiye: tuple[CitySimulation, SarImage],
) -> None:
    sim, image = islahiye
    k = 8
    rows, cols = (s // k * k for s in image.amplitude.shape)
    intensity = image.amplitude[:rows, :cols].astype(float) ** 2
    ground = (image.cover == LandCover.GROUND) & image.valid

    def windows(a: np.ndarray) -> np.ndarray:
        return a.reshape(rows // k, k, cols // k, k).swapaxes(1, 2).reshape(-1, k * k)

    pure = windows(ground[:rows, :cols]).all(axis=1)
    samples = windows(intensity)[pure]
    assert len(samples) > 30
    cv = samples.std(axis=1, ddof=1) / samples.mean(axis=1)
    assert np.median(cv) == pytest.approx(1 / math.sqrt(sim.city.looks), rel=0.1)


def test_slopes_facing_the_sensor_are_brighter(
    islahiye: tuple[CitySimulation, SarImage],
) -> None:
    sim, image = islahiye
    grid = image.grid
    gx = sim.terrain.gradient_x.sample_grid(grid.left, grid.top, grid.res, grid.shape)
    # Descending pass: the sensor is in the east, so ground rising to the west
    # (gx < 0) faces it.
    assert sim.city.sensor_side == "EAST"
    ground = (image.cover == LandCover.GROUND) & image.valid
    steep, gentle = np.quantile(gx[ground], [0.2, 0.8])
    assert gentle - steep > 0.05
    facing = ground & (gx <= steep)
    less = ground & (gx >= gentle)
    ratio = image.intensity[facing].mean() / image.intensity[less].mean()
    assert ratio > 1.15


def test_landcover_radiometry(islahiye: tuple[CitySimulation, SarImage]) -> None:
    _, image = islahiye
    mean = {
        cls: float(image.intensity[(image.cover == cls) & image.valid].mean())
        for cls in (LandCover.ROAD, LandCover.GROUND, LandCover.VEGETATION)
    }
    assert mean[LandCover.ROAD] < 0.5 * mean[LandCover.GROUND]
    assert mean[LandCover.VEGETATION] > mean[LandCover.ROAD]
    assert (image.amplitude[~image.valid] == 0).all()
    assert (image.amplitude[image.valid] > 0).all()
    assert 0.0 < 1.0 - image.valid.mean() < 0.3
