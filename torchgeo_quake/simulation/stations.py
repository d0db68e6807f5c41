"""Strong-motion records of the Mw 7.8 event near the five cities.

The calibrated scenario conditions its ground-motion field on what was
recorded, as a ShakeMap does: the simulated field is random where there is no
record, but passes near the records (:func:`condition_on_stations`).

:data:`STATIONS` holds the AFAD strong-motion stations within 12 km of a city
centre, with their recorded PGA and 5 %-damped SA(0.3), SA(0.6) and SA(1.0) of
the 2023-02-06 Mw 7.8 Pazarcık event, in g, and their Vs30 where AFAD gives
one, as archived by the GEM Foundation in ``gem/earthquake-scenarios``,
``Turkey/20230206_M7.8_KahramanmarasGaziantep/Recording_Stations/
Stations_AFAD.csv`` (AFAD, Disaster and Emergency Management Authority of
Türkiye, https://tadas.afad.gov.tr). Station 4619 in Kahramanmaraş is left
out: its record (2e-5 g, 3 km from stations that recorded 0.1-0.3 g) is
faulty.

Conditioning (conditional simulation by kriging, e.g. Chilès & Delfiner 2012,
section 7.3.1; the approach of ShakeMap 4, Worden et al. 2018): for each
intensity measure the total residual of the event, ``T(x) = tau * eta_B +
phi * eps_W(x)``, is a Gaussian field with covariance ``C(h) = tau^2 +
phi^2 * rho(h)``, ``rho(h) = exp(-3 h / b)`` (Jayaram & Baker 2009). With the
station residuals ``t_s = ln(recorded) - ln(median at the station)`` and an
unconditional draw ``T``, the conditional draw is

    ``T_c(x) = T(x) + c(x, S) (C_SS + s_n^2 I)^-1 (t_s - T(S) - e_S)``,

``e_S ~ N(0, s_n^2)``, with a nugget ``s_n`` = :data:`NUGGET_LN` for the
station's own site response and measurement error. Near a station the field
follows the record; kilometres away it returns to the unconditioned spread.
Stations without a Vs30 use :data:`DEFAULT_VS30` in their median.

Worden, C. B., Thompson, E. M., Baker, J. W., Bradley, B. A., Luco, N.,
Wald, D. J. (2018) Spatial and spectral interpolation of ground-motion
intensity measure observations. Bulletin of the Seismological Society of
America 108(2), 866-875, https://doi.org/10.1785/0120170201.

.. versionadded:: 0.3
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

__all__ = [
    "DEFAULT_VS30",
    "NUGGET_LN",
    "STATIONS",
    "Station",
    "condition_on_stations",
    "stations_near",
]

FloatArray = npt.NDArray[np.float64]

#: Vs30 (m/s) of stations for which AFAD gives none.
DEFAULT_VS30 = 400.0
#: Standard deviation (ln units) of a station's own site response and
#: measurement error, the nugget of the kriging.
NUGGET_LN = 0.2


@dataclass(frozen=True)
class Station:
    """An AFAD strong-motion station and its record of the Mw 7.8 event.

    Attributes:
        station_id: AFAD station code
        lat: latitude (degrees north)
        lon: longitude (degrees east)
        motion: recorded PGA and SA(0.3, 0.6, 1.0) (g) by IMT name
        vs30: Vs30 (m/s) given by AFAD, or None

    .. versionadded:: 0.3
    """

    station_id: str
    lat: float
    lon: float
    motion: dict[str, float]
    vs30: float | None


def _station(
    sid: str, lat: float, lon: float, values: tuple[float, ...], vs30: float | None
) -> Station:
    """A :class:`Station` from a row of the AFAD table.

    Args:
        sid: station code
        lat: latitude
        lon: longitude
        values: PGA, SA(0.3), SA(0.6), SA(1.0) in g
        vs30: Vs30 or None

    Returns:
        The station.
    """
    imts = ("PGA", "SA(0.3)", "SA(0.6)", "SA(1.0)")
    return Station(sid, lat, lon, dict(zip(imts, values, strict=True)), vs30)


#: AFAD stations within 12 km of a city centre (see the module docstring).
STATIONS: tuple[Station, ...] = (
    _station("2707", 36.930889, 36.573771, (0.0983, 0.1720, 0.1094, 0.0747), 558),
    _station("2708", 37.09933, 36.648373, (1.2948, 1.5257, 1.4942, 1.2219), 523),
    _station("2709", 37.128525, 36.670482, (0.1543, 0.3750, 0.1880, 0.1413), 555),
    _station("2712", 37.184, 36.73283, (0.5885, 1.5363, 1.7480, 1.4371), None),
    _station("2718", 37.00777, 36.6266, (0.6506, 1.7586, 1.3396, 0.8750), None),
    _station("4616", 37.37547, 36.83836, (0.6643, 2.4664, 1.4165, 0.5794), 390),
    _station("4617", 37.58551, 36.8303, (0.1440, 0.4653, 0.2203, 0.1446), 574),
    _station("4618", 37.60011, 36.87231, (0.0985, 0.1860, 0.1456, 0.1095), 715),
    _station("4620", 37.58568, 36.89845, (0.3102, 0.6747, 0.4340, 0.1745), 484),
    _station("4621", 37.59347, 36.92909, (0.1788, 0.2733, 0.3233, 0.1296), 714),
    _station("4624", 37.5361, 36.91765, (0.3574, 0.7542, 1.0542, 0.8028), 280),
    _station("4625", 37.53872, 36.98187, (0.4695, 0.9668, 0.8241, 0.6450), 346),
    _station("4630", 37.344912, 36.806037, (0.1751, 0.2998, 0.2055, 0.0844), 347),
    _station("4632", 37.256028, 36.773694, (0.3568, 0.7591, 0.5501, 0.8149), 428),
    _station("8003", 37.08417, 36.26936, (0.1828, 0.5997, 0.4028, 0.3334), 350),
)


def stations_near(
    origin: tuple[float, float], distance_m: float
) -> tuple[list[Station], FloatArray]:
    """The stations within a distance of a point, in local metres.

    Args:
        origin: UTM 37N (easting, northing) of the point
        distance_m: search radius (metres)

    Returns:
        (stations, N x 2 local coordinates: x east, y north of *origin*).

    .. versionadded:: 0.3
    """
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32637", always_xy=True)
    chosen: list[Station] = []
    coords: list[tuple[float, float]] = []
    for station in STATIONS:
        east, north = to_utm.transform(station.lon, station.lat)
        dx, dy = east - origin[0], north - origin[1]
        if np.hypot(dx, dy) <= distance_m:
            chosen.append(station)
            coords.append((dx, dy))
    return chosen, np.asarray(coords, dtype=np.float64).reshape(-1, 2)


def condition_on_stations(
    field: FloatArray,
    field_at_stations: FloatArray,
    grid_xy: tuple[FloatArray, FloatArray],
    station_xy: FloatArray,
    observed: FloatArray,
    tau: float,
    phi: float,
    range_m: float,
    rng: np.random.Generator,
    nugget: float = NUGGET_LN,
) -> FloatArray:
    """Condition a drawn residual field on residuals observed at stations.

    Args:
        field: the unconditional total residual on the grid (ln units)
        field_at_stations: the same draw at the stations
        grid_xy: (x, y) of the grid cells, each of the shape of *field*
        station_xy: N x 2 station coordinates
        observed: the N observed residuals (ln units)
        tau: between-event standard deviation
        phi: within-event standard deviation
        range_m: practical range ``b`` of the within-event correlation (m)
        rng: random generator (N draws of the observation noise)
        nugget: standard deviation of the observation noise (ln units)

    Returns:
        The conditional field, shape of *field*.

    Raises:
        ValueError: If the station arrays disagree in length.

    .. versionadded:: 0.3
    """
    n = len(observed)
    if station_xy.shape != (n, 2) or field_at_stations.shape != (n,):
        raise ValueError(
            f"{n} observations but station coordinates {station_xy.shape} and "
            f"field values {field_at_stations.shape}"
        )
    if n == 0:
        return field

    def cov(h: FloatArray) -> FloatArray:
        return np.asarray(
            tau**2 + phi**2 * np.exp(-3.0 * h / range_m), dtype=np.float64
        )

    lag = np.hypot(*(station_xy[:, None, :] - station_xy[None, :, :]).T).T
    c_ss = cov(lag) + nugget**2 * np.eye(n)
    noise = nugget * rng.standard_normal(n)
    weights = np.linalg.solve(c_ss, observed - field_at_stations - noise)
    gx, gy = grid_xy
    h = np.hypot(gx[..., None] - station_xy[:, 0], gy[..., None] - station_xy[:, 1])
    return np.asarray(field + cov(h) @ weights, dtype=np.float64)
