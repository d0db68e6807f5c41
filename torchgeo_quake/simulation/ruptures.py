"""Surface traces of the two 6 February 2023 ruptures and Joyner-Boore distance.

Both events were near-vertical left-lateral strike-slip ruptures, so the
Joyner-Boore distance (to the surface projection of the rupture) is the
distance to the surface trace, computed here in UTM zone 37N.

**Mw 7.8 Pazarcık** (USGS ``us6000jllz``, 2023-02-06 01:17 UTC) - the top edge
(1 km depth) of the USGS ShakeMap finite-fault rupture
(``rupture.json``, "Wald Finite Fault Model (surface trace, FF model, known
faults)", created 2023-02-09), as archived by GEM in
``gem/earthquake-scenarios``,
``Turkey/20230206_M7.8_KahramanmarasGaziantep/Rupture/rupture_USGS.json``:
the East Anatolian Fault from 36.27°E 36.37°N (about 20 km north-east of
Antakya) to 38.44°E 38.06°N (about 30 km south of Malatya), 318 km, plus
the 3-point Narlı-fault splay that holds the epicentre. It is a polyline of
straight 3-42 km segments (the USGS model followed the rapid rupture mapping of
Reitman et al. 2023), so between its vertices it can miss the bends of the
mapped rupture by a few km (not measured here: the mapping is not stored).

**Mw 7.5 Elbistan** (USGS ``us6000jlqa``, 2023-02-06 10:24 UTC) - no USGS
rupture file was available offline, so this is a *simplified three-point
polyline* on the Çardak fault: the USGS epicentre (37.196°E 38.011°N) and the
two ends of the 105 km mapped main rupture, in the Göksun district (west) and
at Bıçakçı, Doğanşehir district (east) (Bayrakdar et al. 2023), placed at
36.55°E 38.02°N and 37.75°E 38.08°N. Its accuracy is about ±5-10 km across
strike; it omits the Sürgü-Doğanşehir branches that bring the total mapped
length to ~175 km (Reitman et al. 2023). The five simulated cities lie 49 km
(Kahramanmaraş) to 110 km (Islahiye) from it, where the Mw 7.8 motion is the
larger one, so this simplification hardly affects them.

Sources of the traces:
* USGS (2023) ShakeMap us6000jllz, rupture.json, version of 2023-02-09.
* Reitman, N. G., Briggs, R. W., Barnhart, W. D., et al. (2023) Rapid surface
  rupture mapping from satellite data: the 2023 Kahramanmaraş, Turkey
  (Türkiye), earthquake sequence. The Seismic Record 3(4), 289-298,
  https://doi.org/10.1785/0320230029.
* Bayrakdar, C., Halis, O., Canpolat, E., Döker, M. F., Keserci, F. (2023)
  Tectonic geomorphology of the Çardak Fault surface rupture associated with
  the February 6, 2023 Kahramanmaraş-Ekinözü earthquake (Mw 7.6). Türk
  Coğrafya Dergisi 83, 7-22, https://doi.org/10.17211/tcd.1281680.

.. versionadded:: 0.3
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer

__all__ = ["RUPTURES", "Rupture", "joyner_boore_km"]

FloatArray = npt.NDArray[np.float64]

Trace = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Rupture:
    """One earthquake rupture as surface traces (lon/lat, WGS 84).

    Attributes:
        event_id: USGS ComCat event id
        name: short name
        magnitude: moment magnitude (USGS)
        rake: rake angle in degrees (0 = left-lateral strike-slip)
        traces: one or more polylines of (lon, lat) vertices

    .. versionadded:: 0.3
    """

    event_id: str
    name: str
    magnitude: float
    rake: float
    traces: tuple[Trace, ...]


#: The two ruptures of 6 February 2023 (see the module docstring for sources).
RUPTURES: tuple[Rupture, ...] = (
    Rupture(
        event_id="us6000jllz",
        name="Mw 7.8 Pazarcık",
        magnitude=7.8,
        rake=0.0,
        traces=(
            (
                (36.273, 36.369),
                (36.389, 36.547),
                (36.394, 36.612),
                (36.422, 36.671),
                (36.453, 36.679),
                (36.561, 36.874),
                (36.646, 37.086),
                (36.912, 37.400),
                (37.108, 37.501),
                (37.242, 37.537),
                (37.438, 37.630),
                (37.590, 37.738),
                (37.761, 37.870),
                (38.076, 37.950),
                (38.273, 38.036),
                (38.435, 38.056),
            ),
            ((37.030, 37.170), (37.141, 37.333), (37.178, 37.431)),
        ),
    ),
    Rupture(
        event_id="us6000jlqa",
        name="Mw 7.5 Elbistan",
        magnitude=7.5,
        rake=0.0,
        traces=(((36.55, 38.02), (37.196, 38.011), (37.75, 38.08)),),
    ),
)

_TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32637", always_xy=True)


def _trace_lines(rupture: Rupture) -> shapely.MultiLineString:
    """The rupture's traces in UTM 37N metres.

    Args:
        rupture: the rupture

    Returns:
        The traces as one multi-line.
    """
    lines = []
    for trace in rupture.traces:
        lon, lat = np.asarray(trace, dtype=np.float64).T
        e, n = _TO_UTM.transform(lon, lat)
        lines.append(np.column_stack([e, n]))
    return shapely.MultiLineString(lines)


def joyner_boore_km(
    rupture: Rupture,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    origin: tuple[float, float],
) -> FloatArray:
    """Joyner-Boore distance from points to a (vertical) rupture.

    Args:
        rupture: the rupture
        x: local x (metres east of *origin*), any shape
        y: local y (metres north of *origin*), same shape as *x*
        origin: UTM 37N (easting, northing) of the local origin

    Returns:
        Distance to the nearest surface trace in km, shape of *x*.

    Raises:
        ValueError: If *x* and *y* differ in shape.

    .. versionadded:: 0.3
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape:
        raise ValueError(f"x and y differ in shape: {xa.shape} and {ya.shape}")
    points = shapely.points(xa.ravel() + origin[0], ya.ravel() + origin[1])
    dist = shapely.distance(points, _trace_lines(rupture)) / 1000.0
    return np.asarray(dist, dtype=np.float64).reshape(xa.shape)
