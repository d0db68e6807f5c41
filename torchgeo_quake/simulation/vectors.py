"""Vector outputs of a simulated city: footprints, damage reference, truth table.

``buildings.gpkg``
    Every building (EPSG:4326, OSM precision of 1e-7 degrees) in the schema of
    the HOTOSM Turkey Buildings export: ``osm_id`` (int64), ``building`` (mostly
    ``yes``, otherwise the kind: ``house``, ``apartments``, ``commercial``,
    ``retail``, ``industrial``, ``school``, ``mosque``...), ``building:levels``
    (text, often missing), ``name`` (mostly missing), ``addr:city`` and
    ``source``.

``destroyed.geojson``
    The buildings the damage reference lists as destroyed, in exactly the schema
    of the HOTOSM "Turkey Destroyed Buildings" layer (same ``osm_id`` and
    polygon as the footprint): ``osm_id``, ``addr_housenumber``, ``addr_full``,
    ``damage_event`` (``#TürkiyeEQ060223``), ``source`` (``cscrs``,
    ``CopernicusEMS``... in the real layer's proportions), ``damage_type``
    (``earthquake``), ``damage_date`` (``2023-02-06``), ``building``,
    ``destroyed_building`` (``yes``), ``addr_street``, ``name``, ``addr_city``.

``truth.csv``
    The simulator's true state per ``osm_id``
    (:meth:`~torchgeo_quake.simulation.city.CitySimulation.truth`).

.. versionadded:: 0.1
"""

from __future__ import annotations

import json
import os
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer

from .city import CitySimulation, city_rng

__all__ = [
    "BUILDING_COLUMNS",
    "DESTROYED_PROPERTIES",
    "footprints_frame",
    "to_wgs84",
    "write_buildings",
    "write_destroyed",
    "write_truth",
]

#: Attribute columns of ``buildings.gpkg`` (HOTOSM buildings schema).
BUILDING_COLUMNS: tuple[str, ...] = (
    "osm_id",
    "building",
    "building:levels",
    "name",
    "addr:city",
    "source",
)
#: Properties of ``destroyed.geojson`` (HOTOSM destroyed-buildings schema, in
#: the order of the real export).
DESTROYED_PROPERTIES: tuple[str, ...] = (
    "osm_id",
    "addr_housenumber",
    "addr_full",
    "damage_event",
    "source",
    "damage_type",
    "damage_date",
    "building",
    "destroyed_building",
    "addr_street",
    "name",
    "addr_city",
)

_NAMES = (
    "Yıldız",
    "Güneş",
    "Cumhuriyet",
    "Atatürk",
    "Fatih",
    "Barış",
    "Gül",
    "Hürriyet",
    "Zafer",
    "Menekşe",
    "Lale",
    "Akasya",
    "Çınar",
    "Ulu",
    "Merkez",
    "Yeni",
    "Şehitler",
    "Kardeşler",
    "Mimar Sinan",
    "Mevlana",
    "Yunus Emre",
    "Selimiye",
)
_STREETS = ("Atatürk Cd.", "İnönü Cd.", "Fatih Caddesi", "Okul Sokak", "Çarşı Sokak")
# Specific OSM tags per kind (used for ~40 % of buildings, the rest are "yes").
_TAGS: dict[str, tuple[str, ...]] = {
    "house": ("house", "detached", "residential"),
    "apartments": ("apartments", "residential"),
    "mixed": ("apartments", "retail", "commercial"),
    "commercial": ("commercial", "retail"),
    "industrial": ("industrial", "warehouse"),
    "school": ("school",),
    "mosque": ("mosque",),
}
_FOOTPRINT_SOURCES = ("Bing", "microsoft/BuildingFootprints", "Maxar", "survey", None)
_FOOTPRINT_SOURCE_P = (0.25, 0.25, 0.1, 0.02, 0.38)
# Sources of the real destroyed layer and their shares.
_DAMAGE_SOURCES = (
    "cscrs",
    "CopernicusEMS",
    None,
    "microsoft/BuildingFootprints",
    "cscrc",
    "OpenAerialMap",
)
_DAMAGE_SOURCE_P = (0.48, 0.23, 0.21, 0.035, 0.033, 0.012)


def to_wgs84(
    polygons: npt.NDArray[np.object_], origin: tuple[float, float]
) -> npt.NDArray[np.object_]:
    """Reproject local-metre polygons to EPSG:4326 (rounded to 1e-7 degrees).

    Args:
        polygons: polygons in local metres
        origin: UTM 37N coordinates of the local origin

    Returns:
        The polygons in longitude / latitude.

    .. versionadded:: 0.1
    """
    transformer = Transformer.from_crs("EPSG:32637", "EPSG:4326", always_xy=True)

    def project(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lon, lat = transformer.transform(xy[:, 0] + origin[0], xy[:, 1] + origin[1])
        return np.round(np.column_stack([lon, lat]), 7)

    return np.asarray(shapely.transform(polygons, project), dtype=object)


def _choice(
    rng: np.random.Generator,
    options: tuple[str | None, ...],
    p: tuple[float, ...],
    size: int,
) -> list[str | None]:
    """Draw from a list of options that may hold None.

    Args:
        rng: random generator
        options: the options
        p: probabilities (normalised here)
        size: number of draws

    Returns:
        The draws.
    """
    prob = np.asarray(p, dtype=np.float64)
    index = rng.choice(len(options), size=size, p=prob / prob.sum())
    return [options[i] for i in index]


def footprints_frame(sim: CitySimulation) -> gpd.GeoDataFrame:
    """Footprints of a city in the HOTOSM buildings schema.

    Args:
        sim: the city

    Returns:
        GeoDataFrame in EPSG:4326 with :data:`BUILDING_COLUMNS`.

    .. versionadded:: 0.1
    """
    rng = city_rng(sim.seed, sim.city, sim.scale, "vectors")
    b = sim.buildings
    n = len(b)
    tags: list[str] = []
    for kind, u, v in zip(b.kind, rng.random(n), rng.random(n), strict=True):
        options = _TAGS[str(kind)]
        specific = kind in ("school", "mosque") or u < 0.4
        tags.append(options[int(v * len(options))] if specific else "yes")
    levels_p = np.where(b.kind == "apartments", 0.45, 0.3)
    levels = [
        str(int(s)) if u < p else None
        for s, u, p in zip(b.storeys, rng.random(n), levels_p, strict=True)
    ]
    names: list[str | None] = []
    for kind, u, k in zip(
        b.kind, rng.random(n), rng.integers(0, len(_NAMES), n), strict=True
    ):
        base = _NAMES[int(k)]
        if kind == "mosque" and u < 0.9:
            names.append(f"{base} Camii")
        elif kind == "school" and u < 0.8:
            names.append(f"{base} {'İlkokulu' if u < 0.4 else 'Ortaokulu'}")
        elif kind == "apartments" and u < 0.05:
            names.append(f"{base} Apartmanı")
        else:
            names.append(None)
    city = [sim.city.name if u < 0.15 else None for u in rng.random(n)]
    source = _choice(rng, _FOOTPRINT_SOURCES, _FOOTPRINT_SOURCE_P, n)
    return gpd.GeoDataFrame(
        {
            "osm_id": sim.osm_id.astype(np.int64),
            "building": tags,
            "building:levels": levels,
            "name": names,
            "addr:city": city,
            "source": source,
        },
        geometry=to_wgs84(b.polygons, sim.origin),
        crs="EPSG:4326",
    )


def write_buildings(path: str | os.PathLike[str], frame: gpd.GeoDataFrame) -> None:
    """Write footprints as a GeoPackage (layer ``buildings``).

    Args:
        path: output file
        frame: footprints from :func:`footprints_frame`

    .. versionadded:: 0.1
    """
    frame.to_file(path, driver="GPKG", layer="buildings", engine="pyogrio")


def destroyed_features(
    sim: CitySimulation, frame: gpd.GeoDataFrame
) -> list[dict[str, Any]]:
    """GeoJSON features of the damage reference.

    Args:
        sim: the city
        frame: the city's footprints (for geometries and tags)

    Returns:
        Features with :data:`DESTROYED_PROPERTIES`, in ``osm_id`` order.

    .. versionadded:: 0.1
    """
    rng = city_rng(sim.seed, sim.city, sim.scale, "vectors")
    rng = np.random.default_rng(rng.integers(0, 2**63 - 1))
    listed = np.flatnonzero(sim.damage.in_reference)
    listed = listed[np.argsort(sim.osm_id[listed], kind="stable")]
    n = listed.size
    sources = _choice(rng, _DAMAGE_SOURCES, _DAMAGE_SOURCE_P, n)
    features: list[dict[str, Any]] = []
    for k, i in enumerate(listed):
        u = rng.random(6)
        building = "yes" if u[0] < 0.04 else ("detached" if u[0] < 0.055 else None)
        # Footprints without a name hold NaN, which is not valid JSON: null.
        value = frame["name"].iloc[i]
        name = value if u[1] < 0.5 and isinstance(value, str) else None
        if name is None and u[1] < 0.01:
            name = "YIKILDI"
        properties: dict[str, Any] = {
            "osm_id": int(sim.osm_id[i]),
            "addr_housenumber": str(1 + int(u[2] * 8000)) if u[2] < 0.005 else None,
            "addr_full": None,
            "damage_event": "#TürkiyeEQ060223" if u[3] < 0.997 else "#TurkiyeEQ2023",
            "source": sources[k],
            "damage_type": "earthquake",
            "damage_date": "2023-02-06",
            "building": building,
            "destroyed_building": "yes",
            "addr_street": _STREETS[int(u[4] * len(_STREETS))] if u[4] < 0.01 else None,
            "name": name,
            "addr_city": sim.city.name if u[5] < 0.002 else None,
        }
        geometry = json.loads(shapely.to_geojson(frame.geometry.iloc[i]))
        features.append(
            {"type": "Feature", "geometry": geometry, "properties": properties}
        )
    return features


def write_destroyed(
    path: str | os.PathLike[str], features: list[dict[str, Any]]
) -> None:
    """Write the damage reference as GeoJSON (RFC 7946, EPSG:4326, UTF-8).

    Args:
        path: output file
        features: features from :func:`destroyed_features`

    .. versionadded:: 0.1
    """
    document = {"type": "FeatureCollection", "features": features}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(
            document, f, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )


def write_truth(path: str | os.PathLike[str], sim: CitySimulation) -> None:
    """Write the true damage state as CSV (one row per ``osm_id``).

    Args:
        path: output file
        sim: the city

    .. versionadded:: 0.1
    """
    sim.truth().to_csv(path, index=False)
