"""Tests of the ruptures, the Akkar et al. (2014) GMPE and the shaking field."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Geod, Transformer

from torchgeo_quake.simulation.cities import CITIES, get_city
from torchgeo_quake.simulation.gmpe import (
    IMTS,
    akkar_2014_rjb,
    baker_jayaram_correlation,
    vs30_from_slope,
)
from torchgeo_quake.simulation.ruptures import RUPTURES, joyner_boore_km
from torchgeo_quake.simulation.shaking import (
    GRID_RES,
    GroundMotion,
    exponential_random_field,
    ground_motion,
    jayaram_baker_range_km,
    median_ground_motion,
)
from torchgeo_quake.simulation.stations import condition_on_stations
from torchgeo_quake.simulation.terrain import build_terrain

TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32637", always_xy=True)

#: Rows of OpenQuake's verification table AKKAR_2014_RJB_MEAN.csv
#: (gem/oq-engine, openquake/hazardlib/tests/gsim/data/AKKAR14): (Mw, rake,
#: Rjb km, Vs30) -> PGA, SA(0.3), SA(0.6), SA(1.0) in g.
OPENQUAKE_ROWS = {
    (8.0, 90.0, 10.0, 570.0): (
        3.87282410e-01,
        7.33893099e-01,
        5.01865332e-01,
        3.05190426e-01,
    ),
    (8.0, -90.0, 10.0, 800.0): (
        2.87495434e-01,
        5.70370176e-01,
        3.71771372e-01,
        2.26880945e-01,
    ),
    (5.0, -90.0, 10.0, 300.0): (
        7.77695947e-02,
        1.53836668e-01,
        6.63196664e-02,
        2.75186614e-02,
    ),
}


@pytest.mark.parametrize("key", sorted(OPENQUAKE_ROWS))
def test_akkar_matches_openquake(key: tuple[float, float, float, float]) -> None:
    mag, rake, rjb, vs30 = key
    got = [math.exp(float(akkar_2014_rjb(i, mag, rjb, vs30, rake)[0])) for i in IMTS]
    np.testing.assert_allclose(got, OPENQUAKE_ROWS[key], rtol=1e-6)


def test_akkar_by_hand() -> None:
    # Equation (2b) with Table 4a's PGA row, strike-slip, Vs30 800 (linear
    # site term only): Mw 7.8 at Rjb = 20 km.
    ln_y = (
        1.85329
        - 0.5096 * (7.8 - 6.75)
        - 0.02807 * (8.5 - 7.8) ** 2
        + (-1.23452 + 0.2529 * (7.8 - 6.75)) * math.log(math.sqrt(20.0**2 + 7.5**2))
        - 0.41997 * math.log(800.0 / 750.0)
    )
    ln_median, tau, phi = akkar_2014_rjb("PGA", 7.8, 20.0, 800.0)
    assert float(ln_median) == pytest.approx(ln_y, abs=1e-12)
    assert (tau, phi) == (0.3501, 0.6201)


def test_akkar_decay_and_magnitude_scaling() -> None:
    rjb = np.array([0.0, 1.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0])
    for imt in IMTS:
        ln78 = akkar_2014_rjb(imt, 7.8, rjb, 400.0)[0]
        ln75 = akkar_2014_rjb(imt, 7.5, rjb, 400.0)[0]
        ln65 = akkar_2014_rjb(imt, 6.5, rjb, 400.0)[0]
        assert np.all(np.diff(ln78) < 0)
        assert np.all(ln78 > ln75) and np.all(ln75 > ln65)
    # softer sites amplify long periods at moderate shaking
    soft = akkar_2014_rjb("SA(1.0)", 7.8, 30.0, 250.0)[0]
    stiff = akkar_2014_rjb("SA(1.0)", 7.8, 30.0, 760.0)[0]
    assert float(soft) > float(stiff)


def test_akkar_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown IMT"):
        akkar_2014_rjb("SA(2.0)", 7.0, 10.0, 400.0)
    with pytest.raises(ValueError, match="Vs30"):
        akkar_2014_rjb("PGA", 7.0, 10.0, 0.0)


def test_vs30_from_slope() -> None:
    slope = [0.0, 1e-4, 2.2e-3, 6.3e-3, 0.018, 0.05, 0.1, 0.138, 0.5]
    expected = [180, 180, 240, 300, 360, 490, 620, 760, 760]
    np.testing.assert_allclose(vs30_from_slope(slope), expected)
    mid = float(vs30_from_slope(math.sqrt(0.018 * 0.05)))
    assert mid == pytest.approx(425.0)
    with pytest.raises(ValueError, match="non-negative"):
        vs30_from_slope(-0.1)


def test_baker_jayaram_correlation() -> None:
    periods = [0.01, 0.3, 0.6, 1.0]
    corr = np.array(
        [[baker_jayaram_correlation(a, b) for b in periods] for a in periods]
    )
    np.testing.assert_allclose(np.diag(corr), 1.0)
    np.testing.assert_allclose(corr, corr.T)
    assert np.all(np.linalg.eigvalsh(corr) > 0)
    # correlation falls as the periods move apart
    assert corr[0, 1] > corr[0, 2] > corr[0, 3]
    # C1 of BJ 2008 for two periods above 0.109 s
    c1 = 1 - math.cos(math.pi / 2 - 0.366 * math.log(1.0 / 0.6))
    assert corr[2, 3] == pytest.approx(c1)
    with pytest.raises(ValueError, match="periods"):
        baker_jayaram_correlation(0.0, 1.0)


def test_joyner_boore_distance() -> None:
    pazarcik, elbistan = RUPTURES
    vertex = TO_UTM.transform(36.912, 37.400)
    assert float(joyner_boore_km(pazarcik, 0.0, 0.0, vertex)) < 1e-3
    # 10 km due north of the Elbistan epicentre vertex; the trace there runs
    # nearly east-west, so Rjb is close to 10 km.
    lon, lat, _ = Geod(ellps="WGS84").fwd(37.196, 38.011, 0.0, 10_000.0)
    north = TO_UTM.transform(lon, lat)
    assert float(joyner_boore_km(elbistan, 0.0, 0.0, north)) == pytest.approx(
        10.0, rel=0.03
    )
    # the cities near the fault are near it, Osmaniye ~30 km away
    dist = {
        c.slug: float(
            joyner_boore_km(pazarcik, 0.0, 0.0, TO_UTM.transform(c.lon, c.lat))
        )
        for c in CITIES
    }
    assert dist["islahiye"] < 3 and dist["nurdagi"] < 3
    assert 25 < dist["osmaniye"] < 40
    with pytest.raises(ValueError, match="shape"):
        joyner_boore_km(pazarcik, [0.0, 1.0], [0.0], vertex)


def test_median_ground_motion_order() -> None:
    pga = {c.slug: median_ground_motion(c.lon, c.lat)["PGA"] for c in CITIES}
    assert pga["nurdagi"] > pga["kahramanmaras"] > pga["osmaniye"]
    assert all(0.05 < v < 1.0 for v in pga.values())


def _variogram(field: np.ndarray, lag: int) -> float:
    """Semivariance at a lag of *lag* cells along rows and columns."""
    dx = field[:, lag:] - field[:, :-lag]
    dy = field[lag:, :] - field[:-lag, :]
    return 0.25 * float(np.mean(dx**2) + np.mean(dy**2))


def test_exponential_field_variogram() -> None:
    rng = np.random.default_rng(7)
    pixel, range_m = 250.0, 8500.0
    draws = [
        exponential_random_field((120, 120), pixel, range_m, rng) for _ in range(12)
    ]
    stack = np.stack(draws)
    assert float(np.mean(stack**2)) == pytest.approx(1.0, abs=0.2)
    for lag in (1, 4, 12, 24):
        expected = 1.0 - math.exp(-3.0 * lag * pixel / range_m)
        got = float(np.mean([_variogram(d, lag) for d in draws]))
        assert got == pytest.approx(expected, rel=0.25, abs=0.03), lag
    # a field far smaller than its range is nearly constant but not rescaled
    small = exponential_random_field((20, 20), 100.0, 25_700.0, rng)
    assert float(small.std()) < 0.5


def test_exponential_field_rejects_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="shape"):
        exponential_random_field((0, 5), 10.0, 100.0, rng)
    with pytest.raises(ValueError, match="range_m"):
        exponential_random_field((5, 5), 10.0, 0.0, rng)


def test_jayaram_baker_range() -> None:
    assert jayaram_baker_range_km(0.0) == 8.5
    assert jayaram_baker_range_km(1.0) == pytest.approx(25.7)
    with pytest.raises(ValueError, match="period"):
        jayaram_baker_range_km(2.0)


def _city_motion(seed: int) -> tuple[GroundMotion, tuple[float, float]]:
    """Ground motion over a 3 km square around Kahramanmaraş."""
    city, radius = get_city("kahramanmaras"), 1500.0
    origin = TO_UTM.transform(city.lon, city.lat)
    rng = np.random.default_rng(seed)
    terrain = build_terrain(city, radius, rng)
    return ground_motion(city, origin, radius, terrain, rng), origin


def test_ground_motion_deterministic_and_valid() -> None:
    gm1, _ = _city_motion(3)
    gm2, _ = _city_motion(3)
    gm3, _ = _city_motion(4)
    assert gm1.imts == IMTS
    for imt in IMTS:
        np.testing.assert_array_equal(gm1.fields[imt].values, gm2.fields[imt].values)
        assert not np.array_equal(gm1.fields[imt].values, gm3.fields[imt].values)
        values = gm1.fields[imt].values
        # The grid is widened to hold the stations that condition it (9 km).
        assert values.shape[0] == values.shape[1] >= 31 and np.all(values > 0)
        assert values.shape[0] * GRID_RES >= 2 * 8_900
        assert gm1.fields[imt].pixel_size == GRID_RES
    sample = gm1.sample(np.array([0.0, 200.0]), np.array([0.0, -300.0]))
    assert set(sample) == set(IMTS) and sample["PGA"].shape == (2,)
    assert gm1.vs30.values.min() >= 180.0 and gm1.vs30.values.max() <= 760.0
    assert len(gm1.events) == 2 and "us6000jllz" in gm1.events[0]


def test_ground_motion_rejects_bad_radius() -> None:
    city = get_city("osmaniye")
    terrain = build_terrain(city, 500.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="Osmaniye"):
        ground_motion(city, (0.0, 0.0), 0.0, terrain, np.random.default_rng(0))


def test_geotiff_round_trip(tmp_path: Path) -> None:
    gm, origin = _city_motion(5)
    path = tmp_path / "pga.tif"
    gm.write_geotiff(path, origin)
    with rasterio.open(path) as src:
        assert src.count == len(IMTS) and src.dtypes[0] == "float32"
        assert src.crs.to_epsg() == 32637
        assert src.descriptions[0] == "PGA (g)"
        tags = src.tags()
        assert tags["SIMULATED"] == "TRUE" and tags["UNITS"] == "g"
        assert tags["GMPE"] == "AkkarEtAlRjb2014"
        assert "us6000jlqa" in tags["EVENTS"]
        assert src.tags(2)["IMT"] == "SA(0.3)"
        field = gm.fields["PGA"]
        assert src.transform.c == pytest.approx(origin[0] + field.left)
        assert src.transform.f == pytest.approx(origin[1] + field.top)
        np.testing.assert_array_equal(src.read(1), field.values.astype(np.float32))
        np.testing.assert_array_equal(
            src.read(4), gm.fields["SA(1.0)"].values.astype(np.float32)
        )


def test_conditioning_follows_the_records() -> None:
    # Tiny nugget: the conditional field passes through the observations and
    # returns to the unconditional draw far from them.
    rng = np.random.default_rng(0)
    xs = np.arange(0.0, 20_000.0, 100.0)
    gx, gy = np.meshgrid(xs, xs)
    field = rng.standard_normal(gx.shape) * 0.1
    station_xy = np.array([[5_000.0, 5_000.0], [15_000.0, 12_000.0]])
    rows = (station_xy[:, 1] / 100).astype(int)
    cols = (station_xy[:, 0] / 100).astype(int)
    at = field[rows, cols]
    observed = np.array([0.8, -0.6])
    out = condition_on_stations(
        field, at, (gx, gy), station_xy, observed, 0.0, 0.6, 8_500.0, rng, 1e-4
    )
    np.testing.assert_allclose(out[rows, cols], observed, atol=1e-3)
    # 1 km away the record still dominates; 60 km away it is gone.
    assert out[rows[0], cols[0] + 10] > 0.4
    far = condition_on_stations(
        np.zeros((1, 1)),
        at,
        (np.array([[80_000.0]]), np.array([[80_000.0]])),
        station_xy,
        observed,
        0.0,
        0.6,
        8_500.0,
        np.random.default_rng(0),
        1e-4,
    )
    assert abs(far[0, 0]) < 1e-3


def test_city_shaking_follows_its_stations() -> None:
    # Türkoğlu's station 4616 recorded 0.66 g 1.5 km from the centre: with
    # the records, every seed gives a city-centre PGA of that order.
    city = get_city("turkoglu")
    origin = TO_UTM.transform(city.lon, city.lat)
    centre = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        terrain = build_terrain(city, 1500.0, rng)
        gm = ground_motion(city, origin, 1500.0, terrain, rng)
        centre.append(float(gm.sample(np.array([0.0]), np.array([0.0]))["PGA"][0]))
    assert all(0.3 < v < 1.2 for v in centre), centre
