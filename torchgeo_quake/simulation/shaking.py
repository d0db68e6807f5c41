"""Ground shaking of a simulated city from the two real 2023 ruptures.

For each rupture of :data:`~.ruptures.RUPTURES` (Mw 7.8 Pazarcık, Mw 7.5
Elbistan) and each intensity measure of :data:`~.gmpe.IMTS` (PGA, SA(0.3),
SA(0.6), SA(1.0) - those of GEM's Turkish vulnerability functions),

    ``ln Y = ln median(Mw, Rjb, Vs30) + tau * eta_B + phi * eps_W(x, y)``

on a 100 m grid over the city's working area (local metres, x east, y north of
``origin`` in UTM 37N), where

* the median, ``tau`` and ``phi`` are those of Akkar, Sandıkkaya & Bommer
  (2014), Rjb model (:mod:`.gmpe`), with the Joyner-Boore distance to the
  rupture's surface trace (:mod:`.ruptures`; both events were near-vertical
  strike-slip, rake 0);
* Vs30 comes from the simulated terrain's slope by Wald & Allen (2007, active
  tectonic). Their slopes are from 30 arc-second (~0.9 km) elevation, so the
  terrain is first averaged over 900 m (9 x 9 cells) before its gradient is
  taken - the 10 m terrain slope itself would classify every garden wall;
* ``eta_B`` is one between-event draw per event, ``eps_W`` a spatially
  correlated within-event field with the Jayaram & Baker (2009) exponential
  correlation ``rho(h) = exp(-3 h / b)``, ``b = 8.5 + 17.2 T`` km (case 1,
  T = 0 for PGA), drawn exactly on the grid by circulant embedding
  (:func:`exponential_random_field`). :func:`~.fields.gaussian_random_field`
  is not used: its covariance is Gaussian, not exponential, and it rescales
  each sample to unit variance, which would inflate the spread of a field
  over a city 2-8 km across, smaller than b (8.5-25.7 km). The exponential
  model still decorrelates fast at short lags (PGA: 0.70 at 1 km, 0.41 at
  2.5 km): the within-event part alone gives a spread (standard deviation of
  ln PGA over the area, root mean square over draws) of 0.34 over a 2 km
  square, 0.45 over 4 km and 0.53 over 8 km - smooth at the neighbourhood
  scale, unlike v0.1's 0.5-0.9 km Gaussian field (correlation 0.02-0.29 at
  1 km), but not constant;
* across IMTs, both terms are correlated with Baker & Jayaram (2008) (PGA as
  T = 0.01 s): with ``L`` the Cholesky factor of that correlation matrix,
  ``eta_B = L z`` and ``eps_W,i = sum_j L_ij G_j`` for independent unit fields
  ``G_j`` of range ``b_j``. PGA's field is exactly exponential with
  b = 8.5 km; the SA fields are mixtures whose ranges lie between 8.5 km and
  their own ``b`` (an approximation of a proper coregionalisation model).

The Mw 7.8 event's residual is conditioned on the AFAD records within
:data:`STATION_REACH_M` of the city (:mod:`.stations`, conditional
simulation by kriging as in ShakeMap): near a station the field follows what
was recorded, so the level of shaking of each city comes from observations,
not from one random draw; the grid is widened to hold those stations. (Without
the records, one draw of the between- and within-event terms set a city's
whole level: median PGA over Islahiye varied between 0.35 and 1.15 g, over
Türkoğlu between 0.12 and 0.55 g, from one seed or scale to the next.)

A building near both ruptures experienced both events; the vulnerability
functions are per event, so each IMT takes the larger of the two events'
motions at each point (damage accumulation between the events is ignored).

Documented check, not tuning: the median PGA (Vs30 400 m/s, the AFAD
stations' typical value) at the five city centres, and AFAD strong-motion PGAs
of the Mw 7.8 event within 9 km of them (as archived by GEM in
``gem/earthquake-scenarios``,
``Turkey/20230206_M7.8_KahramanmarasGaziantep/Recording_Stations/
Stations_AFAD.csv``):

| city          | Rjb (km) | median | AFAD stations: PGA in g (distance)       |
|---------------|---------:|-------:|------------------------------------------|
| Islahiye      |      0.7 |   0.55 | 2718: 0.65 (2 km); 2708: 1.29 (8 km)     |
| Kahramanmaraş |     15.4 |   0.27 | 4617-4625, 6 stations: 0.10-0.47 (2-9 km) |
| Nurdağı       |      1.0 |   0.54 | 2712: 0.59 (1 km); 2709: 0.15 (8 km)     |
| Osmaniye      |     33.2 |   0.15 | 8003: 0.18 (2 km)                        |
| Türkoğlu      |      3.6 |   0.50 | 4616: 0.66 (1.5 km); 4630: 0.18 (6 km)   |

Station 4619 in Kahramanmaraş (2e-5 g) is a faulty record and left out.
The Mw 7.5 medians are 0.04-0.09 g at these cities, so the Mw 7.8 event
governs. The medians sit inside the recorded ranges; the recorded
near-fault scatter (0.15-1.29 g around Islahiye and Nurdağı) is what the
between- and within-event terms (total sigma ~0.71 in ln PGA) represent.

References: Jayaram, N., Baker, J. W. (2009) Correlation model for spatially
distributed ground-motion intensities. Earthquake Engineering & Structural
Dynamics 38(15), 1687-1708, https://doi.org/10.1002/eqe.922; the GMPE, slope
and cross-correlation references are in :mod:`.gmpe`, the rupture references
in :mod:`.ruptures`.

.. versionadded:: 0.3
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from scipy import ndimage

from .cities import CitySpec
from .fields import GridField
from .gmpe import (
    GMPE_NAME,
    IMT_PERIODS,
    IMTS,
    akkar_2014_rjb,
    baker_jayaram_correlation,
    vs30_from_slope,
)
from .ruptures import RUPTURES, Rupture, joyner_boore_km
from .stations import (
    DEFAULT_VS30,
    Station,
    condition_on_stations,
    stations_near,
)
from .terrain import Terrain

__all__ = [
    "GRID_RES",
    "GroundMotion",
    "exponential_random_field",
    "ground_motion",
    "jayaram_baker_range_km",
    "median_ground_motion",
]

FloatArray = npt.NDArray[np.float64]

#: Spacing of the ground-motion grid (metres).
GRID_RES = 100.0
#: Averaging window of the terrain before the Wald & Allen slope (metres).
SLOPE_WINDOW_M = 900.0
#: Period used for PGA in the Baker & Jayaram (2008) correlation (seconds).
PGA_PERIOD = 0.01
#: Stations within this distance of the city's origin condition its field (m).
STATION_REACH_M = 12_000.0
#: The event whose records condition the field (the Mw 7.8 Pazarcık event).
RECORDED_EVENT = "us6000jllz"


def jayaram_baker_range_km(period: float) -> float:
    """Range ``b`` of the Jayaram & Baker (2009) exponential model, case 1.

    Args:
        period: spectral period in seconds (0 for PGA), below 1 s

    Returns:
        ``b = 8.5 + 17.2 * period`` in km (correlation ``exp(-3 h / b)``).

    Raises:
        ValueError: If *period* is outside 0-1 s.

    .. versionadded:: 0.3
    """
    if not 0.0 <= period <= 1.0:
        raise ValueError(f"period must be within 0-1 s, got {period}")
    return 8.5 + 17.2 * period


def exponential_random_field(
    shape: tuple[int, int],
    pixel_size: float,
    range_m: float,
    rng: np.random.Generator,
) -> FloatArray:
    """Zero-mean, unit-variance field with covariance ``exp(-3 h / range_m)``.

    Drawn by circulant embedding: the covariance on a periodic grid at least
    twice the field and six correlation distances (``range_m / 3``) larger is
    diagonalised by the FFT; white noise filtered by the square root of its
    eigenvalues has exactly that covariance on the first ``shape`` cells
    (negative eigenvalues from the embedding, if any, are set to zero). The
    sample is not rescaled, so a field much smaller than its range is nearly
    constant, with the right variance across draws.

    Args:
        shape: (rows, columns)
        pixel_size: grid spacing (metres)
        range_m: practical range ``b`` in metres (correlation 0.05 at ``b``)
        rng: random generator

    Returns:
        The field, float64 of *shape*.

    Raises:
        ValueError: If *shape*, *pixel_size* or *range_m* is not positive.

    .. versionadded:: 0.3
    """
    rows, cols = shape
    if rows <= 0 or cols <= 0:
        raise ValueError(f"shape must be positive, got {shape}")
    if pixel_size <= 0 or range_m <= 0:
        raise ValueError(
            f"pixel_size and range_m must be positive, got {pixel_size} and {range_m}"
        )
    extra = math.ceil(2.0 * range_m / pixel_size)  # six times range_m / 3
    size = max(2 * max(rows, cols), max(rows, cols) + extra)
    size += size % 2
    lag = np.arange(size, dtype=np.float64)
    lag = np.minimum(lag, size - lag) * pixel_size
    dist = np.hypot(lag[:, None], lag[None, :])
    eigen = np.fft.rfft2(np.exp(-3.0 * dist / range_m)).real
    gain = np.sqrt(np.maximum(eigen, 0.0))
    noise = rng.standard_normal((size, size))
    field = np.fft.irfft2(np.fft.rfft2(noise) * gain, s=(size, size))
    return np.asarray(field[:rows, :cols], dtype=np.float64)


def _cholesky_imts() -> FloatArray:
    """Cholesky factor of the Baker & Jayaram (2008) IMT correlation matrix.

    Returns:
        Lower-triangular (n_imt, n_imt) matrix.
    """
    periods = [max(IMT_PERIODS[i], PGA_PERIOD) for i in IMTS]
    corr = np.array(
        [[baker_jayaram_correlation(a, b) for b in periods] for a in periods]
    )
    return np.asarray(np.linalg.cholesky(corr), dtype=np.float64)


@dataclass(frozen=True)
class GroundMotion:
    """Simulated ground motion of one city (the larger of the two events).

    Attributes:
        imts: intensity measures, in band order
        fields: value grids in g, one per IMT (local metres)
        vs30: Vs30 grid used by the site term (m/s)
        events: ``"event_id (name)"`` of the ruptures combined
        gmpe: name of the ground-motion model

    .. versionadded:: 0.3
    """

    imts: tuple[str, ...]
    fields: dict[str, GridField]
    vs30: GridField
    events: tuple[str, ...]
    gmpe: str = GMPE_NAME

    def sample(self, x: npt.ArrayLike, y: npt.ArrayLike) -> dict[str, FloatArray]:
        """Ground motion at points (bilinear).

        Args:
            x: local x (metres east of the origin)
            y: local y (metres north of the origin), same shape as *x*

        Returns:
            Values in g per IMT, each with the shape of *x*.
        """
        return {imt: self.fields[imt].sample(x, y) for imt in self.imts}

    def write_geotiff(
        self,
        path: str | os.PathLike[str],
        origin: tuple[float, float],
        crs: str = "EPSG:32637",
    ) -> None:
        """Write the grids as a ShakeMap-like GeoTIFF (band 1 PGA in g).

        One float32 band per IMT in :attr:`imts` order, tiled and
        deflate-compressed, each with a description (``"PGA (g)"``) and an
        ``IMT`` tag; dataset tags ``SIMULATED=TRUE``, ``UNITS=g``, ``GMPE``,
        ``EVENTS``, ``COMBINATION`` and ``IMTS``.

        Args:
            path: output file (e.g. ``pga.tif``)
            origin: (easting, northing) of the local origin in *crs*
            crs: coordinate reference system of *origin*

        .. versionadded:: 0.3
        """
        first = self.fields[self.imts[0]]
        rows, cols = first.values.shape
        res = first.pixel_size
        transform = Affine.translation(
            origin[0] + first.left, origin[1] + first.top
        ) @ Affine.scale(res, -res)
        profile = {
            "driver": "GTiff",
            "width": cols,
            "height": rows,
            "count": len(self.imts),
            "dtype": "float32",
            "crs": CRS.from_user_input(crs),
            "transform": transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
            "predictor": 3,
        }
        with rasterio.open(path, "w", **profile) as dst:
            for band, imt in enumerate(self.imts, start=1):
                dst.write(self.fields[imt].values.astype(np.float32), band)
                dst.set_band_description(band, f"{imt} (g)")
                dst.update_tags(band, IMT=imt, UNITS="g")
            dst.update_tags(
                SIMULATED="TRUE",
                UNITS="g",
                GMPE=self.gmpe,
                EVENTS="; ".join(self.events),
                COMBINATION="maximum over events per IMT",
                IMTS=",".join(self.imts),
            )


def _vs30_grid(terrain: Terrain, centres: FloatArray) -> FloatArray:
    """Vs30 from the terrain slope averaged over :data:`SLOPE_WINDOW_M`.

    Args:
        terrain: the city's terrain
        centres: pixel-centre coordinates of the (square) grid, west to east

    Returns:
        Vs30 (m/s) on the grid, row 0 north.
    """
    xx, yy = np.meshgrid(centres, centres[::-1])
    z = terrain.height(xx, yy)
    size = max(1, round(SLOPE_WINDOW_M / GRID_RES))
    z = ndimage.uniform_filter(z, size=size, mode="nearest")
    dz_dy, dz_dx = np.gradient(z, GRID_RES)
    return vs30_from_slope(np.hypot(dz_dx, dz_dy))


def _event_ln_motion(
    rupture: Rupture,
    rjb_km: FloatArray,
    vs30: FloatArray,
    chol: FloatArray,
    rng: np.random.Generator,
    records: _Records | None = None,
) -> dict[str, FloatArray]:
    """Natural log of one event's ground motion, residuals included.

    Args:
        rupture: the rupture
        rjb_km: Joyner-Boore distance on the grid (km)
        vs30: Vs30 on the grid (m/s)
        chol: Cholesky factor of the IMT correlation
        rng: random generator
        records: station records of this event to condition on, if any

    Returns:
        ln values in g per IMT.
    """
    between = chol @ rng.standard_normal(len(IMTS))
    unit = np.stack(
        [
            exponential_random_field(
                rjb_km.shape,
                GRID_RES,
                1000.0 * jayaram_baker_range_km(IMT_PERIODS[imt]),
                rng,
            )
            for imt in IMTS
        ]
    )
    within = np.tensordot(chol, unit, axes=1)
    out = {}
    for i, imt in enumerate(IMTS):
        ln_median, tau, phi = akkar_2014_rjb(
            imt, rupture.magnitude, rjb_km, vs30, rupture.rake
        )
        residual = tau * between[i] + phi * within[i]
        if records is not None and len(records.observed[imt]):
            residual = condition_on_stations(
                residual,
                records.sample(residual),
                records.grid_xy,
                records.xy,
                records.observed[imt],
                float(np.mean(tau)),
                float(np.mean(phi)),
                1000.0 * jayaram_baker_range_km(IMT_PERIODS[imt]),
                rng,
            )
        out[imt] = ln_median + residual
    return out


@dataclass(frozen=True)
class _Records:
    """Station records of one event on a city's grid.

    Attributes:
        xy: N x 2 station coordinates (local metres)
        grid_xy: (x, y) of the grid cells
        observed: observed total residual (ln units) per IMT, one per station
        rows: fractional row of each station on the grid
        cols: fractional column of each station on the grid
    """

    xy: FloatArray
    grid_xy: tuple[FloatArray, FloatArray]
    observed: dict[str, FloatArray]
    rows: FloatArray
    cols: FloatArray

    def sample(self, values: FloatArray) -> FloatArray:
        """A grid's values at the stations (bilinear).

        Args:
            values: values on the grid

        Returns:
            One value per station.
        """
        return np.asarray(
            ndimage.map_coordinates(
                values, [self.rows, self.cols], order=1, mode="nearest"
            ),
            dtype=np.float64,
        )


def _records(
    rupture: Rupture,
    origin: tuple[float, float],
    grid_xy: tuple[FloatArray, FloatArray],
    left: float,
    top: float,
    stations: list[Station],
    xy: FloatArray,
) -> _Records | None:
    """The recorded residuals of an event near a city.

    Args:
        rupture: the event (only the Mw 7.8 event has records here)
        origin: UTM 37N of the local origin
        grid_xy: (x, y) of the grid cells
        left: x of the grid's west edge
        top: y of the grid's north edge
        stations: the stations near the city (:func:`~.stations.stations_near`)
        xy: their local coordinates, N x 2

    Returns:
        The records, or None if the event has none near the city.
    """
    if rupture.event_id != RECORDED_EVENT or not stations:
        return None
    rjb = joyner_boore_km(rupture, xy[:, 0], xy[:, 1], origin)
    vs30 = np.asarray(
        [DEFAULT_VS30 if s.vs30 is None else s.vs30 for s in stations], np.float64
    )
    observed = {}
    for imt in IMTS:
        ln_median = akkar_2014_rjb(imt, rupture.magnitude, rjb, vs30, rupture.rake)[0]
        recorded = np.asarray([s.motion[imt] for s in stations], np.float64)
        observed[imt] = np.log(recorded) - ln_median
    rows = (top - xy[:, 1]) / GRID_RES - 0.5
    cols = (xy[:, 0] - left) / GRID_RES - 0.5
    return _Records(xy, grid_xy, observed, rows, cols)


def ground_motion(
    city: CitySpec,
    origin: tuple[float, float],
    radius: float,
    terrain: Terrain,
    rng: np.random.Generator,
) -> GroundMotion:
    """Simulate PGA and SA(0.3, 0.6, 1.0) over a city's working area.

    Args:
        city: the city (for error messages)
        origin: UTM 37N (easting, northing) of the local origin
        radius: half the side of the square to cover (metres)
        terrain: the city's terrain (for Vs30)
        rng: random generator (2 events x (4 + 4 fields) of draws)

    Returns:
        The ground motion on a :data:`GRID_RES` grid.

    Raises:
        ValueError: If *radius* is not positive.

    .. versionadded:: 0.3
    """
    if radius <= 0:
        raise ValueError(f"{city.name}: radius must be positive, got {radius}")
    stations, station_xy = stations_near(origin, STATION_REACH_M)
    reach = float(np.abs(station_xy).max()) + 2 * GRID_RES if len(station_xy) else 0
    n = math.ceil(2 * max(radius, reach) / GRID_RES) + 1
    left = -0.5 * n * GRID_RES
    centres = np.asarray(left + (np.arange(n) + 0.5) * GRID_RES, dtype=np.float64)
    xx, yy = np.meshgrid(centres, centres[::-1])
    vs30 = _vs30_grid(terrain, centres)
    chol = _cholesky_imts()
    ln_max: dict[str, FloatArray] = {}
    top = 0.5 * n * GRID_RES
    for rupture in RUPTURES:
        rjb = joyner_boore_km(rupture, xx, yy, origin)
        records = _records(rupture, origin, (xx, yy), left, top, stations, station_xy)
        ln_event = _event_ln_motion(rupture, rjb, vs30, chol, rng, records)
        for imt in IMTS:
            ln_max[imt] = (
                np.maximum(ln_max[imt], ln_event[imt])
                if imt in ln_max
                else ln_event[imt]
            )
    fields = {imt: GridField(np.exp(ln_max[imt]), left, top, GRID_RES) for imt in IMTS}
    return GroundMotion(
        imts=IMTS,
        fields=fields,
        vs30=GridField(vs30, left, top, GRID_RES),
        events=tuple(f"{r.event_id} ({r.name})" for r in RUPTURES),
    )


def median_ground_motion(
    lon: float, lat: float, vs30: float = 400.0
) -> dict[str, float]:
    """Median motion at a point: the larger of the two events' GMPE medians.

    Args:
        lon: longitude (degrees east)
        lat: latitude (degrees north)
        vs30: Vs30 (m/s)

    Returns:
        Median in g per IMT.

    .. versionadded:: 0.3
    """
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32637", always_xy=True)
    origin = to_utm.transform(lon, lat)
    out = {}
    for imt in IMTS:
        values = [
            float(
                akkar_2014_rjb(
                    imt,
                    r.magnitude,
                    joyner_boore_km(r, 0.0, 0.0, origin),
                    vs30,
                    r.rake,
                )[0]
            )
            for r in RUPTURES
        ]
        out[imt] = math.exp(max(values))
    return out
