"""Building footprints (OSM / HOTOSM exports) with optional damage labels."""

from __future__ import annotations

import math
import os
import pathlib
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
import torch
from affine import Affine
from matplotlib.figure import Figure
from pyproj import CRS
from scipy.spatial import cKDTree
from torchgeo.datasets import VectorDataset
from torchgeo.datasets.utils import GeoSlice

from .intersection import IntersectionMixin
from .raster import DEFAULT_CACHE_BYTES, complete_query, paused_gc
from .utils import utm_crs_of

if TYPE_CHECKING:
    from .gem import GEMExposure

__all__ = ["VECTOR_SUFFIXES", "OSMBuildings", "read_vector"]

#: File suffixes read as vector data.
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".parquet", ".fgb")


def read_vector(path: str | os.PathLike[str], layer: str | int | None = None) -> Any:
    """Read a vector file into a GeoDataFrame with a clear error on failure.

    GeoJSON without a CRS is taken as EPSG:4326 (RFC 7946); other formats without
    a CRS are rejected.

    Args:
        path: GeoPackage, GeoJSON, Shapefile, FlatGeobuf or GeoParquet file
        layer: layer of a multi-layer file (defaults to the first)

    Returns:
        The GeoDataFrame.

    Raises:
        FileNotFoundError: If *path* does not exist.
        ImportError: If *path* is GeoParquet and pyarrow is not installed.
        ValueError: If the file cannot be read or has no CRS.

    .. versionadded:: 0.1
    """
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"vector file {path!r} does not exist. Check the path (footprints and "
            "damage layers are GeoPackage, GeoJSON, Shapefile or GeoParquet files)."
        )
    if pathlib.Path(path).suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as err:
            raise ImportError(
                f"reading the GeoParquet file {path!r} needs the pyarrow package, "
                "which is not installed: `python -m pip install pyarrow` (a "
                "dependency of torchgeo-quake), or convert the file, e.g. "
                f"`ogr2ogr buildings.gpkg {path}`."
            ) from err
    try:
        if pathlib.Path(path).suffix.lower() == ".parquet":
            frame = gpd.read_parquet(path)
        else:
            frame = gpd.read_file(path, layer=layer)
    except Exception as err:  # pyogrio, fiona and arrow raise many types
        raise ValueError(
            f"cannot read vector file {path!r} ({err}). The file is corrupt or not "
            "in a format GDAL can read; re-export it as GeoPackage or GeoJSON."
        ) from err
    if frame.crs is None:
        if pathlib.Path(path).suffix.lower() in (".geojson", ".json"):
            frame = frame.set_crs(4326)
        else:
            raise ValueError(
                f"vector file {path!r} has no CRS. Assign one (e.g. "
                f"`ogr2ogr -a_srs EPSG:4326 fixed.gpkg {path}`) and try again."
            )
    return frame


_GEOJSON_TYPE = re.compile(rb'"type"\s*:\s*"(FeatureCollection|Feature)"')


def _is_geojson(path: pathlib.Path) -> bool:
    """Whether a ``.json`` file looks like GeoJSON (not a metadata sidecar).

    Directories of SAR products hold JSON metadata (Umbra ``*_METADATA.json``,
    STAC items, the simulator's ``scene.json``) that are not footprints.

    Args:
        path: a ``.json`` file

    Returns:
        True if its first 64 KiB declare a GeoJSON Feature or FeatureCollection
        and it is not a STAC item.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    return bool(_GEOJSON_TYPE.search(head)) and b'"stac_version"' not in head


#: Advice for each reason a footprint feature is skipped.
SKIP_HINTS = {
    "id": (
        "ids must be numeric: pass the name of a numeric id column as id_field=, "
        "or extract the number from values such as 'way/123'"
    ),
    "geometry": "export the features with their geometries",
    "invalid": "repair the file, e.g. `ogr2ogr -makevalid fixed.gpkg in.gpkg`",
    "polygon": (
        "footprints must be polygons (points or lines cannot give a mask): export "
        "the building polygons"
    ),
    "duplicate": "make the ids unique (the first feature of an id is kept)",
    "admin": "fill the admin unit column, or pass one unit for all as admin_unit=",
}


def _hint(reason: str) -> str:
    """Advice for a skip reason.

    Args:
        reason: a reason of :attr:`OSMBuildings.skipped`

    Returns:
        The matching entry of :data:`SKIP_HINTS`, or "".
    """
    for key, words in (
        ("id", "non-numeric"),
        ("geometry", "missing geometry"),
        ("invalid", "could not be repaired"),
        ("polygon", "not a polygon"),
        ("duplicate", "duplicate"),
        ("admin", "admin unit"),
    ):
        if words in reason:
            return SKIP_HINTS[key]
    return ""


def _default_res(crs: Any) -> tuple[float, float]:
    """Default mask resolution: 1 m in a projected CRS, 1e-5 degrees otherwise.

    Args:
        crs: a CRS

    Returns:
        (xres, yres) in CRS units.
    """
    if CRS.from_user_input(crs).is_geographic:
        return (1e-5, 1e-5)
    return (1.0, 1.0)


def _polygonal(geom: shapely.Geometry | None) -> shapely.Geometry | None:
    """Keep the polygonal part of a geometry.

    Args:
        geom: any geometry or None

    Returns:
        A Polygon/MultiPolygon, or None if there is no polygonal part.
    """
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        if parts:
            return shapely.union_all(parts)
    return None


def _geojson(geoms: np.ndarray) -> list[Any]:
    """GeoJSON-like mappings of geometries, fast for simple polygons.

    :func:`rasterio.features.rasterize` reads ``__geo_interface__`` of each
    shapely geometry, which costs ~25 µs per polygon; building the mappings of
    hole-free polygons from one vectorised coordinate array is 3× faster.

    Args:
        geoms: array of shapely geometries

    Returns:
        GeoJSON-like geometry mappings (or geometries) in the same order.
    """
    out: list[Any] = list(geoms)
    simple = (shapely.get_type_id(geoms) == 3) & (
        shapely.get_num_interior_rings(geoms) == 0
    )
    idx = np.flatnonzero(simple)
    if len(idx) == 0:
        return out
    rings = shapely.get_exterior_ring(geoms[idx])
    ends = np.cumsum(shapely.get_num_coordinates(rings)).tolist()
    with paused_gc():
        coords = shapely.get_coordinates(rings).tolist()
        start = 0
        for i, end in zip(idx.tolist(), ends, strict=True):
            out[i] = {"type": "Polygon", "coordinates": [coords[start:end]]}
            start = end
    return out


class OSMBuildings(IntersectionMixin, VectorDataset):
    """Building footprints keyed by ``osm_id``, with optional damage labels.

    Reads HOTOSM / OSM building exports (GeoPackage, GeoJSON, Shapefile,
    FlatGeobuf, GeoParquet) once into memory. An optional damage reference (the
    HOTOSM "Turkey Destroyed Buildings" layer, polygons or points) gives each
    footprint a label: 1 = damaged, 0 = intact. The reference is joined by
    ``osm_id`` when both layers carry it, else by spatial overlap (polygons that
    cover at least *damage_overlap* of a footprint's area, or points that fall
    inside it).

    Indexed with a building-centred query (see
    :class:`~torchgeo_quake.samplers.BuildingCentroidSampler`) it returns the
    rasterised footprint of the building of interest (``footprints="building"``,
    the paper's mask) or of all buildings in the patch (``footprints="all"``),
    plus the building's label, id, city, centroid and, with *exposure*, its GEM
    feature vector. The building of interest is the one the window was made for
    by :meth:`building_windows` (which the sampler uses), else the one whose
    centroid is nearest to the window centre (within a pixel). Footprints are
    rasterised once into an in-memory id raster on the query grid, so each query
    is a slice.

    Invalid geometries are repaired with :func:`shapely.make_valid`; features that
    cannot be repaired, are not polygons or repeat an id are not silently dropped:
    they are listed in :attr:`skipped` with the reason and summarised in a
    :class:`UserWarning`. Both :attr:`buildings` and :attr:`skipped` record each
    feature's ``file`` and ``row`` (its position in that file), so results can be
    joined back to the input features. Damage features that match no footprint
    (:attr:`unmatched_damage`) and empty damage layers are warned about too.

    .. versionadded:: 0.1
    """

    sample_key = "footprint"
    filename_glob = "*"

    def __init__(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] = "data",
        crs: CRS | None = None,
        res: float | tuple[float, float] | None = None,
        damage: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        footprints: Literal["building", "all"] = "building",
        id_field: str = "osm_id",
        city: str | None = None,
        exposure: GEMExposure | None = None,
        damage_overlap: float = 0.5,
        layer: str | int | None = None,
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        admin_unit: str | None = None,
        admin_field: str | None = None,
    ) -> None:
        """Initialize a new OSMBuildings instance.

        Args:
            paths: footprint files or directories holding them
            crs: CRS to work in (defaults to the CRS of the first file)
            res: resolution of the rasterised masks in units of CRS; set to the
                SAR resolution when intersected with a SAR dataset
                (``sar & footprints``). Defaults to 1 m in a projected CRS and
                1e-5 degrees (about 1 m) in a geographic one, following CRS
                changes until set; pass the SAR resolution when this dataset
                comes first in an intersection (``footprints & sar``), whose
                resolution the SAR image is then resampled to
            damage: optional damage reference layer(s); without it every label is 0
            footprints: ``"building"`` for the mask of the building of interest,
                ``"all"`` for the masks of all buildings in the patch
            id_field: name of the unique building id column in both layers
            city: name stored in every sample (e.g. ``"islahiye"``)
            exposure: optional GEM exposure; adds a ``gem`` vector to samples,
                of the nearest GEM point (point assets), or of the admin unit
                given by *admin_unit* or *admin_field*
            damage_overlap: minimum share of a footprint's area a damage polygon
                must cover when the join is spatial
            layer: layer of multi-layer footprint files
            transforms: a function/transform that takes an input sample
                and returns a transformed version
            cache_bytes: memory budget of the in-memory id raster
            admin_unit: admin unit (``ID_1`` code such as ``"TR-46"`` or
                ``NAME_1`` name) of all these buildings: their GEM vector is that
                of the unit (:meth:`GEMExposure.features_for_admin`). Needed
                with GEM's public Adm1 files, which have no coordinates
            admin_field: footprint column holding each building's admin unit,
                instead of *admin_unit*; buildings without one are skipped

        Raises:
            FileNotFoundError: If no footprint file is found.
            ImportError: If a GeoParquet file is given and pyarrow is missing.
            ValueError: If a file is unreadable, empty, lacks *id_field* or
                *admin_field*, no valid footprint is left (the message counts
                the reasons and says how to fix them), an admin unit is not in
                the exposure, the exposure has no coordinates and no admin unit
                is given, or an option is invalid.
        """
        if footprints not in ("building", "all"):
            raise ValueError(
                f"footprints must be 'building' or 'all', got {footprints!r}"
            )
        self.paths = paths
        self.transforms = transforms
        self.label_name = None
        self.task = "semantic_segmentation"
        self.layer = layer
        self.footprints = footprints
        self.id_field = id_field
        self.city = city or ""
        self.exposure = exposure
        self.admin_unit = admin_unit
        self.admin_field = admin_field
        if admin_unit is not None and admin_field is not None:
            raise ValueError("pass admin_unit= or admin_field=, not both")
        if (admin_unit is not None or admin_field is not None) and exposure is None:
            raise ValueError("admin_unit= and admin_field= need exposure=")
        self.damage_overlap = damage_overlap
        self.cache_bytes = cache_bytes
        self.damage_paths = (
            []
            if damage is None
            else [str(damage)]
            if isinstance(damage, str | os.PathLike)
            else [str(d) for d in damage]
        )

        files = self.files
        if not files:
            raise FileNotFoundError(
                f"OSMBuildings: no footprint file ({', '.join(VECTOR_SUFFIXES)}) "
                f"found in {paths!r} (directories: .json files count only if they "
                "are GeoJSON; damage layers are excluded). Check the path."
            )
        frames = []
        skipped: list[dict[str, Any]] = []
        self.repaired = 0
        for filepath in files:
            frame = read_vector(filepath, layer=layer)
            if frame.empty:
                raise ValueError(
                    f"OSMBuildings: footprint file {filepath!r} holds no features. "
                    "Export the buildings of the area of interest again."
                )
            if id_field not in frame.columns:
                raise ValueError(
                    f"OSMBuildings: footprint file {filepath!r} has no {id_field!r} "
                    f"column (columns: {', '.join(map(str, frame.columns))}). Pass "
                    "the name of its unique building id column as id_field=."
                )
            if admin_field is not None and admin_field not in frame.columns:
                raise ValueError(
                    f"OSMBuildings: footprint file {filepath!r} has no admin unit "
                    f"column {admin_field!r} (columns: "
                    f"{', '.join(map(str, frame.columns))}). Pass the right "
                    "admin_field=, or one unit for all buildings as admin_unit=."
                )
            crs = crs or frame.crs
            frame = frame.to_crs(crs)
            frame, file_skipped = self._clean(frame, filepath)
            skipped.extend(file_skipped)
            frames.append(frame)

        buildings = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=crs)
        duplicated = buildings["building_id"].duplicated(keep="first")
        for row in buildings[duplicated].itertuples():
            skipped.append(
                {
                    "building_id": int(row.building_id),
                    "file": row.file,
                    "row": int(row.row),
                    "reason": f"duplicate {id_field}",
                }
            )
        buildings = buildings[~duplicated].reset_index(drop=True)
        #: Features that were not used, with the reason (``building_id``, ``file``,
        #: ``row``: position of the feature in its file, ``reason``).
        self.skipped = pd.DataFrame(
            skipped, columns=["building_id", "file", "row", "reason"]
        )
        total = len(buildings) + len(self.skipped)
        if buildings.empty:
            raise ValueError(
                f"OSMBuildings: no valid footprint left in {files}: all {total} "
                f"features were skipped ({self._skip_summary(hints=True)})."
            )
        if not self.skipped.empty:
            warnings.warn(
                f"OSMBuildings: skipped {len(self.skipped)} of {total} footprint "
                f"features of {files} ({self._skip_summary(hints=False)}); their "
                "ids, files, rows and reasons are in .skipped.",
                UserWarning,
                stacklevel=2,
            )
        buildings["label"] = np.zeros(len(buildings), dtype=np.int64)
        buildings["city"] = self.city
        self.buildings = buildings
        #: Damage features that matched no footprint.
        self.unmatched_damage = 0
        if self.damage_paths:
            self._join_damage()

        self._res_auto = res is None
        if res is None:
            res = _default_res(crs)
        if isinstance(res, int | float):
            res = (float(res), float(res))
        self._res = (float(res[0]), float(res[1]))
        self._id_grid: tuple[np.ndarray, float, float, float, float] | None = None
        #: GEM exposure vector of every building (with *exposure*).
        self.gem: np.ndarray | None = None
        self._update_geometry()
        if self.exposure is not None:
            self.gem = self._exposure_features()

        mint, maxt = pd.Timestamp.min, pd.Timestamp.max
        index = pd.IntervalIndex.from_tuples(
            [(mint, maxt)] * len(files), closed="both", name="datetime"
        )
        boxes = []
        for filepath in files:
            part = self.buildings[self.buildings["file"] == filepath]
            source = part if not part.empty else self.buildings
            boxes.append(shapely.box(*source.total_bounds))
        self.index = gpd.GeoDataFrame(
            {"filepath": files}, index=index, geometry=boxes, crs=crs
        )
        self._crs: CRS = self.index.crs

    def _skip_summary(self, hints: bool) -> str:
        """Counts of :attr:`skipped` per reason, for messages.

        Args:
            hints: add what to do about each reason

        Returns:
            E.g. ``"not a polygon (Point): 3, duplicate osm_id: 1"``.
        """
        parts = []
        for reason, n in self.skipped["reason"].value_counts().items():
            hint = _hint(str(reason)) if hints else ""
            parts.append(f"{reason}: {n}" + (f" -> {hint}" if hint else ""))
        return "; ".join(parts)

    def _exposure_features(self) -> np.ndarray:
        """GEM vector of every building: nearest GEM point or admin unit.

        Returns:
            float32 array (buildings, features).

        Raises:
            ValueError: If an admin unit is unknown, or the exposure has no
                coordinates and no admin unit is given.
        """
        assert self.exposure is not None
        sources = ", ".join(repr(str(p)) for p in self.exposure.paths)
        n = len(self.buildings)
        if self.admin_unit is not None or self.admin_field is not None:
            if self.admin_unit is not None:
                units = [self.admin_unit]
            else:
                units = self.buildings["admin_unit"].astype(str).tolist()
            unique = list(dict.fromkeys(units))
            try:
                table = self.exposure.features_for_admin(unique)
            except (KeyError, ValueError) as err:
                message = err.args[0] if err.args else str(err)
                raise ValueError(
                    f"OSMBuildings: cannot join the GEM exposure {sources} by admin "
                    f"unit: {message}. Give units as the exposure's ID_1 codes "
                    "(e.g. 'TR-46') or NAME_1 names."
                ) from err
            row_of = {unit: i for i, unit in enumerate(unique)}
            if self.admin_unit is not None:
                return np.repeat(table[:1], n, axis=0).astype(np.float32)
            rows = np.fromiter((row_of[u] for u in units), np.intp, count=n)
            return np.asarray(table[rows], dtype=np.float32)
        if self.exposure.kind != "points":
            raise ValueError(
                f"OSMBuildings: the GEM exposure {sources} holds admin-level "
                "aggregates without coordinates (such as GEM's public "
                "Exposure_*_Adm1.csv files), so buildings cannot be joined to the "
                "nearest GEM point. Pass the buildings' admin unit as "
                "admin_unit='TR-46' (ID_1 code or NAME_1 name), or its column as "
                "admin_field=, or use point-asset exposure (lon, lat columns)."
            )
        feats = self.exposure.features_at(
            self.centroids[:, 0],
            self.centroids[:, 1],
            CRS.from_user_input(self.buildings.crs),
        )
        return np.asarray(feats, dtype=np.float32)

    # -------------------------------------------------------------- reading
    @property
    def files(self) -> list[str]:
        """Footprint files found in :attr:`paths`.

        Files given explicitly are taken as they are. In directories, every file
        with a suffix of :data:`VECTOR_SUFFIXES` is found, except ``.json`` files
        that are not GeoJSON (SAR metadata sidecars, STAC items) and the damage
        layers given as *damage*.

        Returns:
            Sorted list of vector files.
        """
        paths: Iterable[str | os.PathLike[str]]
        if isinstance(self.paths, str | os.PathLike):
            paths = [self.paths]
        else:
            paths = self.paths
        found: set[str] = set()
        damage = {os.path.realpath(d) for d in getattr(self, "damage_paths", [])}
        for path in paths:
            p = pathlib.Path(path)
            if p.is_dir():
                found |= {
                    str(f)
                    for f in p.rglob("*")
                    if f.suffix.lower() in VECTOR_SUFFIXES
                    and f.is_file()
                    and (f.suffix.lower() != ".json" or _is_geojson(f))
                    and os.path.realpath(f) not in damage
                }
            elif p.suffix.lower() in VECTOR_SUFFIXES and p.exists():
                found.add(str(p))
            elif not p.exists():
                raise FileNotFoundError(
                    f"OSMBuildings: footprint path {str(p)!r} does not exist."
                )
        return sorted(found)

    def _clean(
        self, frame: gpd.GeoDataFrame, filepath: str
    ) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
        """Repair invalid geometries and record features that cannot be used.

        Args:
            frame: footprints of one file, already in the target CRS
            filepath: the file they came from

        Returns:
            Cleaned frame with ``building_id``, ``file``, ``row`` (position of
            the feature in the file), ``admin_unit`` (with *admin_field*) and
            geometry columns, and the list of skipped features.
        """
        skipped: list[dict[str, Any]] = []
        ids = pd.to_numeric(frame[self.id_field], errors="coerce")
        geoms = np.array(frame.geometry.values, dtype=object)
        keep = np.ones(len(frame), dtype=bool)
        units: pd.Series | None = None
        no_unit = np.zeros(len(frame), dtype=bool)
        if self.admin_field is not None:
            units = frame[self.admin_field]
            text = units.astype(str).str.strip()
            no_unit = (
                units.isna() | (text == "") | (text.str.lower() == "nan")
            ).to_numpy()
        for i, (bid, geom) in enumerate(zip(ids, geoms, strict=True)):
            reason = None
            if pd.isna(bid):
                reason = f"missing or non-numeric {self.id_field}"
            elif no_unit[i]:
                reason = f"missing admin unit ({self.admin_field})"
            elif geom is None or geom.is_empty:
                reason = "missing geometry"
            else:
                if not geom.is_valid:
                    geom = _polygonal(shapely.make_valid(geom))
                    if geom is None:
                        reason = "invalid geometry that could not be repaired"
                    else:
                        self.repaired += 1
                        geoms[i] = geom
                elif _polygonal(geom) is None:
                    reason = f"not a polygon ({geom.geom_type})"
            if reason is not None:
                keep[i] = False
                skipped.append(
                    {
                        "building_id": None if pd.isna(bid) else int(bid),
                        "file": filepath,
                        "row": i,
                        "reason": reason,
                    }
                )
        columns: dict[str, Any] = {
            "building_id": ids[keep].astype(np.int64).to_numpy(),
            "file": filepath,
            "row": np.flatnonzero(keep),
        }
        if units is not None:
            columns["admin_unit"] = units[keep].astype(str).str.strip().to_numpy()
        cleaned = gpd.GeoDataFrame(columns, geometry=list(geoms[keep]), crs=frame.crs)
        return cleaned, skipped

    def _join_damage(self) -> None:
        """Label footprints from the damage reference layer(s)."""
        damaged = np.zeros(len(self.buildings), dtype=bool)
        unmatched = 0
        features = 0
        for path in self.damage_paths:
            ref = read_vector(path)
            if ref.empty:
                warnings.warn(
                    f"OSMBuildings: damage layer {path!r} holds no features, so it "
                    "marks no building as damaged. Check the file (an export of "
                    "the wrong area or layer?), or leave it out of damage=.",
                    UserWarning,
                    stacklevel=3,
                )
                continue
            features += len(ref)
            ref = ref[ref.geometry.notna() & ~ref.geometry.is_empty].to_crs(
                self.buildings.crs
            )
            if self.id_field in ref.columns:
                ids = pd.to_numeric(ref[self.id_field], errors="coerce")
                hit = self.buildings["building_id"].isin(ids.dropna().astype(np.int64))
                damaged |= hit.to_numpy()
                unmatched += int((~ids.isin(self.buildings["building_id"])).sum())
                continue
            # Spatial join: points inside footprints, polygons by overlap share.
            geoms = shapely.make_valid(ref.geometry.values)
            tree = shapely.STRtree(self.buildings.geometry.values)
            ref_idx, bld_idx = tree.query(geoms, predicate="intersects")
            hit_ref = np.zeros(len(geoms), dtype=bool)
            for r, b in zip(ref_idx, bld_idx, strict=True):
                geom = geoms[r]
                footprint = self.buildings.geometry.values[b]
                if geom.geom_type in ("Point", "MultiPoint"):
                    ok = True
                else:
                    area = footprint.area
                    ok = area > 0 and (
                        geom.intersection(footprint).area / area >= self.damage_overlap
                    )
                if ok:
                    damaged[b] = True
                    hit_ref[r] = True
            unmatched += int((~hit_ref).sum())
        self.buildings["label"] = damaged.astype(np.int64)
        self.unmatched_damage = unmatched
        if unmatched:
            warnings.warn(
                f"OSMBuildings: {unmatched} of {features} damage features in "
                f"{self.damage_paths} match no footprint of {self.files} (by "
                f"{self.id_field}, or by overlap for layers without it); they are "
                "counted in .unmatched_damage. Check that the damage layer and the "
                "footprints cover the same area and come from the same OSM export.",
                UserWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------- geometry
    def _update_geometry(self) -> None:
        """Recompute centroids, the k-d tree, overlaps and GEM features."""
        geoms = self.buildings.geometry
        crs = CRS.from_user_input(self.buildings.crs)
        if crs.is_geographic:
            utm = utm_crs_of(self.buildings)
            centroids = geoms.to_crs(utm).centroid.to_crs(crs)
        else:
            centroids = geoms.centroid
        self.centroids = np.column_stack(
            [centroids.x.to_numpy(), centroids.y.to_numpy()]
        ).astype(np.float64)
        self._tree = cKDTree(self.centroids)
        self._cells: dict[tuple[int, int], list[int]] = {}
        self._cell_size = 0.0
        self._ids = self.buildings["building_id"].to_numpy(dtype=np.int64).copy()
        self._labels = self.buildings["label"].to_numpy(dtype=np.int64).copy()
        # Windows handed out by building_windows(): exact bounds -> row.
        self._window_rows: dict[tuple[float, float, float, float], int] = {}
        self._window_sets: dict[tuple[Any, ...], pd.DataFrame] = {}
        xmin, ymin, xmax, ymax = (float(v) for v in self.buildings.total_bounds)
        self._bounds = (xmin, ymin, xmax, ymax)
        self._strtree = shapely.STRtree(geoms.values)
        self._overlaps: np.ndarray | None = None
        self._row_of_id = dict(
            zip(
                self.buildings["building_id"].to_numpy().tolist(),
                range(len(geoms)),
                strict=True,
            )
        )
        self._id_grid = None
        self._mask_cache: dict[tuple[Any, ...], np.ndarray] = {}

    def _overlapping(self) -> np.ndarray:
        """Which footprints overlap another one (computed on first use).

        Returns:
            Boolean array in :attr:`buildings` order.
        """
        if self._overlaps is None:
            geoms = self.buildings.geometry.values
            left, right = self._strtree.query(geoms, predicate="overlaps")
            overlaps = np.zeros(len(self.buildings), dtype=bool)
            overlaps[left[left != right]] = True
            self._overlaps = overlaps
        return self._overlaps

    @property
    def crs(self) -> CRS:
        """:term:`coordinate reference system (CRS)` of the dataset.

        Returns:
            The CRS.
        """
        # Cached: reading it from the GeoDataFrame costs ~0.1 ms per query.
        return self._crs

    @crs.setter
    def crs(self, new_crs: CRS) -> None:
        """Reproject the footprints and the index.

        Args:
            new_crs: new CRS
        """
        if new_crs == self.crs:
            return
        self.index = self.index.to_crs(new_crs)
        self._crs = self.index.crs
        self.buildings = self.buildings.to_crs(new_crs)
        if self._res_auto:
            self._res = _default_res(new_crs)
        self._update_geometry()

    @property
    def res(self) -> tuple[float, float]:
        """Resolution of the rasterised masks in units of CRS.

        Returns:
            (xres, yres)
        """
        return self._res

    @res.setter
    def res(self, new_res: float | tuple[float, float]) -> None:
        """Change the resolution of the rasterised masks.

        Args:
            new_res: new resolution
        """
        if isinstance(new_res, int | float):
            new_res = (float(new_res), float(new_res))
        self._res = (float(new_res[0]), float(new_res[1]))
        self._res_auto = False
        self._id_grid = None
        self._mask_cache = {}

    # ------------------------------------------------------------- queries
    def building_windows(
        self,
        size: int,
        res: tuple[float, float] | None = None,
        origin: tuple[float, float] | None = None,
    ) -> pd.DataFrame:
        """The window of every building, registered so queries find their building.

        A window is *size* × *size* pixels of *res* centred on the building's
        centroid; with *origin*, its corner is snapped to the pixel lattice
        through that point (e.g. the SAR grid). Indexing this dataset with one of
        these windows returns the building it was made for, rather than the one
        whose centroid is nearest to the window centre. Two buildings can get the
        same window (centroids in the same pixel); the window then belongs to the
        first of them (in :attr:`buildings` order), which is its ``owner``.

        Args:
            size: window size in pixels
            res: pixel size (defaults to :attr:`res`)
            origin: a corner of the pixel lattice in the dataset CRS, or None to
                centre windows exactly on the centroids

        Returns:
            DataFrame in :attr:`buildings` order with ``xmin``, ``xmax``,
            ``ymin``, ``ymax`` and ``owner`` (row of the building the window
            belongs to).

        .. versionadded:: 0.1
        """
        xres, yres = (float(v) for v in (res or self._res))
        key = (int(size), xres, yres, origin)
        cached = self._window_sets.get(key)
        if cached is not None:
            return cached
        half = size / 2
        cx, cy = self.centroids[:, 0], self.centroids[:, 1]
        if origin is not None:
            left, top = origin
            xmin = left + np.round((cx - left) / xres - half) * xres
            ymax = top - np.round((top - cy) / yres - half) * yres
        else:
            xmin = cx - half * xres
            ymax = cy + half * yres
        xmax = xmin + size * xres
        ymin = ymax - size * yres
        owner = np.empty(len(cx), dtype=np.int64)
        rows = self._window_rows
        with paused_gc():
            windows = zip(
                xmin.tolist(), xmax.tolist(), ymin.tolist(), ymax.tolist(), strict=True
            )
            owner[:] = [rows.setdefault(window, i) for i, window in enumerate(windows)]
        table = pd.DataFrame(
            {"xmin": xmin, "xmax": xmax, "ymin": ymin, "ymax": ymax, "owner": owner}
        )
        self._window_sets[key] = table
        return table

    def building_at(self, x: float, y: float, tolerance: float) -> int | None:
        """Row of the building whose centroid is nearest to (x, y).

        Uses a hash grid of centroids with cells of *tolerance* (rebuilt when the
        tolerance changes), which is an order of magnitude faster per call than a
        k-d tree query for single points.

        Args:
            x: x coordinate in the dataset CRS
            y: y coordinate in the dataset CRS
            tolerance: maximum distance in CRS units

        Returns:
            Row index into :attr:`buildings`, or None if no centroid is that close.
        """
        if tolerance != self._cell_size or not self._cells:
            cells: dict[tuple[int, int], list[int]] = {}
            keys = np.floor(self.centroids / tolerance).astype(np.int64)
            for row, (kx, ky) in enumerate(keys.tolist()):
                cells.setdefault((kx, ky), []).append(row)
            self._cells = cells
            self._cell_size = tolerance
        kx, ky = math.floor(x / tolerance), math.floor(y / tolerance)
        best, best_d2 = None, tolerance * tolerance
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for row in self._cells.get((kx + dx, ky + dy), ()):
                    px, py = self.centroids[row]
                    d2 = (px - x) ** 2 + (py - y) ** 2
                    if d2 <= best_d2:
                        best, best_d2 = row, d2
        return best

    def _rasterize(
        self,
        rows: np.ndarray,
        values: np.ndarray,
        transform: Affine,
        shape: tuple[int, int],
    ) -> np.ndarray:
        """Burn footprints into an int32 raster.

        Args:
            rows: rows of :attr:`buildings` to burn
            values: value burnt for each row
            transform: affine transform of the output
            shape: (height, width) of the output

        Returns:
            int32 raster, 0 where no footprint is.
        """
        if len(rows) == 0:
            return np.zeros(shape, dtype=np.int32)
        geoms = _geojson(np.asarray(self.buildings.geometry.values[rows]))
        raster: np.ndarray = rasterio.features.rasterize(
            zip(geoms, values.tolist(), strict=True),
            out_shape=shape,
            transform=transform,
            fill=0,
            dtype="int32",
        )
        return raster

    def _id_window(
        self, xmin: float, ymax: float, width: int, height: int
    ) -> np.ndarray | None:
        """Window of the in-memory id raster (ids are row + 1), if aligned.

        The id raster is built on the grid of the first query (its pixel phase),
        so all queries of a building-centroid sampler are slices of it.

        Args:
            xmin: left edge of the window
            ymax: top edge of the window
            width: width in pixels
            height: height in pixels

        Returns:
            int32 window, or None if the window is not on the cached grid or the
            grid would exceed the memory budget.
        """
        xres, yres = self._res
        if self._id_grid is None:
            bxmin, bymin, bxmax, bymax = self.buildings.total_bounds
            margin_x, margin_y = width * xres, height * yres
            left = xmin + math.floor((bxmin - margin_x - xmin) / xres) * xres
            top = ymax + math.ceil((bymax + margin_y - ymax) / yres) * yres
            gw = math.ceil((bxmax + margin_x - left) / xres)
            gh = math.ceil((top - (bymin - margin_y)) / yres)
            if gw * gh * 4 > self.cache_bytes:
                return None
            rows = np.arange(len(self.buildings))
            grid = self._rasterize(
                rows, rows + 1, Affine(xres, 0, left, 0, -yres, top), (gh, gw)
            )
            self._id_grid = (grid, left, top, xres, yres)
        grid, left, top, gxres, gyres = self._id_grid
        col = (xmin - left) / gxres
        row = (top - ymax) / gyres
        c0, r0 = round(col), round(row)
        if abs(col - c0) > 1e-6 or abs(row - r0) > 1e-6:
            return None
        gh, gw = grid.shape
        if r0 >= 0 and c0 >= 0 and r0 + height <= gh and c0 + width <= gw:
            return grid[r0 : r0 + height, c0 : c0 + width]
        out = np.zeros((height, width), dtype=np.int32)
        rs, cs = max(r0, 0), max(c0, 0)
        re, ce = min(r0 + height, gh), min(c0 + width, gw)
        if rs < re and cs < ce:
            out[rs - r0 : re - r0, cs - c0 : ce - c0] = grid[rs:re, cs:ce]
        return out

    def __getitem__(self, query: GeoSlice) -> dict[str, Any]:
        """Retrieve the footprint mask and building attributes of a query.

        Args:
            query: [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres] coordinates.

        Returns:
            Sample with ``footprint`` (float32, 1×H×W), ``label`` and
            ``building_id`` (int64; -1 when the window is not one of
            :meth:`building_windows` and no building centroid lies within a pixel
            of its centre), ``city``, ``centroid`` (float64 x, y), ``gem`` (with
            exposure), ``crs`` and ``bounds``.

        Raises:
            IndexError: If *query* does not intersect the dataset.
        """
        x, y, _ = complete_query(query) or self._disambiguate_slice(query)
        width = round((x.stop - x.start) / x.step)
        height = round((y.stop - y.start) / y.step)
        bxmin, bymin, bxmax, bymax = self._bounds
        if x.stop <= bxmin or x.start >= bxmax or y.stop <= bymin or y.start >= bymax:
            raise IndexError(
                f"query: {query} not found in index with bounds: {self.bounds}"
            )
        cx, cy = (x.start + x.stop) / 2, (y.start + y.stop) / 2
        row = self._window_rows.get((x.start, x.stop, y.start, y.stop))
        if row is None:
            row = self.building_at(cx, cy, tolerance=max(x.step, y.step))

        same_res = abs(x.step - self._res[0]) <= 1e-9 * self._res[0] and abs(
            y.step - self._res[1]
        ) <= 1e-9 * abs(self._res[1])
        window = self._id_window(x.start, y.stop, width, height) if same_res else None
        if window is not None and (
            self.footprints == "all" or row is None or not self._overlapping()[row]
        ):
            if self.footprints == "all":
                mask = window > 0
            else:
                mask = window == (-1 if row is None else row + 1)
        else:
            transform = Affine(x.step, 0, x.start, 0, -y.step, y.stop)
            if self.footprints == "all":
                rows = self._strtree.query(
                    shapely.box(x.start, y.start, x.stop, y.stop)
                )
                mask = (
                    self._rasterize(
                        rows,
                        np.ones(len(rows), dtype=np.int64),
                        transform,
                        (height, width),
                    )
                    > 0
                )
            else:
                key = (row, x.start, y.stop, x.step, y.step, width, height)
                cached = self._mask_cache.get(key)
                if cached is None:
                    rows = np.array([] if row is None else [row], dtype=np.int64)
                    cached = (
                        self._rasterize(
                            rows,
                            np.ones(len(rows), dtype=np.int64),
                            transform,
                            (height, width),
                        )
                        > 0
                    )
                    if len(self._mask_cache) < 100_000:
                        self._mask_cache[key] = cached
                mask = cached

        sample: dict[str, Any] = {
            "crs": self.crs,
            "bounds": query,
            self.sample_key: torch.from_numpy(mask[None].astype(np.float32)),
            "city": self.city,
        }
        if row is None:
            sample["label"] = torch.tensor(-1, dtype=torch.long)
            sample["building_id"] = torch.tensor(-1, dtype=torch.long)
            sample["centroid"] = torch.tensor([cx, cy], dtype=torch.float64)
            if self.exposure is not None and self.exposure.kind == "points":
                feats = self.exposure.features_at(
                    np.array([cx]), np.array([cy]), self.crs
                )
                sample["gem"] = torch.from_numpy(np.asarray(feats, np.float32)[0])
            elif self.gem is not None:
                # No building here and no GEM coordinates: the vector of the
                # nearest building (its admin unit).
                _, nearest = self._tree.query([cx, cy])
                sample["gem"] = torch.from_numpy(self.gem[int(nearest)].copy())
        else:
            sample["label"] = torch.from_numpy(np.array(self._labels[row]))
            sample["building_id"] = torch.from_numpy(np.array(self._ids[row]))
            sample["centroid"] = torch.from_numpy(self.centroids[row].copy())
            if self.gem is not None:
                sample["gem"] = torch.from_numpy(self.gem[row].copy())
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    # -------------------------------------------------------------- summary
    def counts(self) -> pd.Series:
        """Number of intact and damaged footprints.

        Returns:
            Series indexed by ``intact`` and ``damaged``.
        """
        labels = self.buildings["label"]
        return pd.Series(
            {"intact": int((labels == 0).sum()), "damaged": int((labels == 1).sum())}
        )

    def plot(
        self,
        sample: dict[str, Any],
        show_titles: bool = True,
        suptitle: str | None = None,
    ) -> Figure:
        """Plot a footprint mask.

        Args:
            sample: a sample returned by :meth:`__getitem__`
            show_titles: flag indicating whether to show titles above each panel
            suptitle: optional string to use as a suptitle

        Returns:
            A matplotlib Figure with the rendered sample.
        """
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 4))
        ax.imshow(sample[self.sample_key][0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
        if show_titles:
            label = int(sample["label"])
            state = {1: "damaged", 0: "intact"}.get(label, "no building")
            ax.set_title(f"footprint {int(sample['building_id'])} ({state})")
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
