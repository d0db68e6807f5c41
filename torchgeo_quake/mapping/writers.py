"""Incremental writers of the damage map: GeoPackage and GeoJSON.

Both writers take the map tile by tile (a :class:`geopandas.GeoDataFrame` of a
few thousand buildings at a time) and append it to their file, so memory does
not grow with the size of the city. :class:`WriteProgress` shows how far the
writing is.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

__all__ = ["GeoJSONWriter", "GeoPackageWriter", "WriteProgress", "layer_geometry_type"]


def layer_geometry_type(geoms: np.ndarray) -> str:
    """The GeoPackage layer type that holds some geometries as they are.

    Args:
        geoms: shapely geometries (None and empty ones are ignored)

    Returns:
        The one geometry type of all present geometries (e.g. ``"Polygon"``),
        else ``"Unknown"`` (a generic geometry layer: mixed Polygon and
        MultiPolygon features are kept as given, not promoted).

    .. versionadded:: 0.1
    """
    geoms = np.asarray(geoms, dtype=object)
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    kinds = np.unique(shapely.get_type_id(geoms[present]))
    if len(kinds) != 1:
        return "Unknown"
    kind = str(geoms[present][0].geom_type)
    return "LineString" if kind == "LinearRing" else kind


class GeoPackageWriter:
    """Append tiles of a map to one layer of a GeoPackage.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        crs: CRS,
        layer: str = "damage",
        geometry_type: str = "Unknown",
    ) -> None:
        """Initialize a new GeoPackageWriter instance.

        Geometries are written as given: a layer of mixed Polygon and
        MultiPolygon features is not promoted to MultiPolygon. Its declared
        type is *geometry_type* (see :func:`layer_geometry_type`).

        Args:
            path: output ``.gpkg`` (must not exist yet)
            crs: CRS of the geometries written
            layer: layer name
            geometry_type: declared geometry type of the layer (``"Polygon"``,
                ``"MultiPolygon"``, ... or ``"Unknown"`` for mixed types)
        """
        self.path = Path(path)
        self.crs = crs
        self.layer = layer
        self.geometry_type = geometry_type
        #: Number of features written so far.
        self.count = 0

    def write(self, frame: gpd.GeoDataFrame) -> None:
        """Append a tile.

        Args:
            frame: features in :attr:`crs`, always with the same columns
        """
        if frame.empty:
            return
        pyogrio.write_dataframe(
            frame,
            self.path,
            layer=self.layer,
            driver="GPKG",
            append=self.count > 0,
            geometry_type=self.geometry_type,
            promote_to_multi=False,
        )
        self.count += len(frame)

    def close(self, empty_schema: gpd.GeoDataFrame | None = None) -> None:
        """Finish the file; with no feature written, write an empty layer.

        Args:
            empty_schema: an empty frame with the output columns
        """
        if self.count == 0 and empty_schema is not None:
            pyogrio.write_dataframe(
                empty_schema,
                self.path,
                layer=self.layer,
                driver="GPKG",
                geometry_type=self.geometry_type,
            )


def _json_value(value: Any) -> Any:
    """A JSON-safe scalar: numpy types to Python, NaN and NA to None.

    Args:
        value: a cell of a data frame

    Returns:
        The value for :func:`json.dumps`.
    """
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class GeoJSONWriter:
    """Stream a FeatureCollection in WGS84 (RFC 7946) to a file, tile by tile.

    Coordinates are rounded to *precision* decimals (7 decimals of a degree are
    about 1 cm). Use it as a context manager or call :meth:`close`.

    .. versionadded:: 0.1
    """

    def __init__(self, path: str | os.PathLike[str], precision: int = 7) -> None:
        """Initialize a new GeoJSONWriter instance and write the header.

        Args:
            path: output ``.geojson``
            precision: decimals kept in the coordinates
        """
        self.path = Path(path)
        self.precision = precision
        self._file: IO[str] | None = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        self._file.write('{"type": "FeatureCollection", "features": [\n')
        #: Number of features written so far.
        self.count = 0

    def write(self, frame: gpd.GeoDataFrame) -> None:
        """Append a tile.

        Args:
            frame: features in any CRS (reprojected to EPSG:4326)

        Raises:
            ValueError: If the writer is closed.
        """
        if self._file is None:
            raise ValueError(f"GeoJSON writer of {self.path} is closed")
        if frame.empty:
            return
        if frame.crs is not None and not CRS.from_user_input(frame.crs).equals(
            CRS.from_epsg(4326)
        ):
            frame = frame.to_crs(4326)
        geoms = np.asarray(frame.geometry.values, dtype=object)
        present = ~shapely.is_missing(geoms)
        scale = 10.0**self.precision
        rounded = geoms.copy()
        if present.any():
            rounded[present] = shapely.transform(
                geoms[present], lambda xy: np.round(xy * scale) / scale
            )
        texts = np.full(len(geoms), "null", dtype=object)
        if present.any():
            texts[present] = shapely.to_geojson(rounded[present])
        columns = [c for c in frame.columns if c != frame.geometry.name]
        values = [frame[c].tolist() for c in columns]
        lines = []
        for i in range(len(frame)):
            properties = {
                c: _json_value(v[i]) for c, v in zip(columns, values, strict=True)
            }
            lines.append(
                '{"type": "Feature", "properties": '
                + json.dumps(properties, ensure_ascii=False)
                + ', "geometry": '
                + str(texts[i])
                + "}"
            )
        separator = ",\n" if self.count else ""
        self._file.write(separator + ",\n".join(lines))
        self.count += len(frame)

    def close(self) -> None:
        """Write the footer and close the file."""
        if self._file is not None:
            self._file.write("\n]}\n")
            self._file.close()
            self._file = None

    def __enter__(self) -> GeoJSONWriter:
        """Enter the context.

        Returns:
            The writer.
        """
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Finish the file (or, after an error, just close it).

        Args:
            exc_type: exception type, if any
            exc: exception, if any
            tb: traceback, if any
        """
        if exc_type is None:
            self.close()
        elif self._file is not None:
            self._file.close()
            self._file = None


class WriteProgress:
    """Progress of the writing of a map: a bar of steps, and messages.

    The bar (tqdm, on stderr, hidden without *progress*) advances once per
    step: a tile of footprints written, or another output file; the running
    step's name shows on it. The messages (*say*) are printed above it
    without breaking it. Use it as a context manager: the bar goes at the end.

    .. versionadded:: 0.3
    """

    def __init__(self, total: int, progress: bool, say: Callable[[str], None]) -> None:
        """Initialize a new WriteProgress instance.

        Args:
            total: number of steps
            progress: show the bar
            say: function printing progress messages
        """
        from tqdm.auto import tqdm

        self._say = say
        #: Steps done so far (counted with the bar hidden too).
        self.done = 0
        self.bar = tqdm(
            total=total,
            desc="write",
            unit="step",
            disable=not progress,
            leave=False,
            dynamic_ncols=True,
        )

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """One step: its name on the bar while it runs, then one step more.

        Args:
            name: what is written

        Yields:
            Nothing: the step runs in the ``with`` block.
        """
        self.bar.set_postfix_str(name)
        yield
        self.done += 1
        self.bar.update()

    def say(self, message: str) -> None:
        """Print a message above the bar.

        Args:
            message: the message
        """
        with self.bar.external_write_mode():
            self._say(message)

    def __enter__(self) -> WriteProgress:
        """Enter the context.

        Returns:
            The progress.
        """
        return self

    def __exit__(self, *exc: object) -> None:
        """Remove the bar.

        Args:
            exc: exception type, value and traceback, if any
        """
        self.bar.close()
