"""Self-contained interactive damage map (``map.html``).

One HTML file with the buildings, the styles and the JavaScript inlined: it
opens offline in any browser, from a USB stick or an e-mail attachment, and
makes no network request. Buildings are drawn on a canvas in Web Mercator
coordinates, coloured by damage probability; the reader can pan, zoom, filter
and hover or click a building for its id, probability, class and, for buildings
that were not scored, the reason.

A basemap is optional: with a tile URL template (``{z}``, ``{x}``, ``{y}``, e.g.
of an OpenStreetMap tile server or a local tile server), the page loads tiles
from it under the buildings. Without one (the default) nothing is fetched.

This module streams the buildings into the page (:class:`HTMLMapWriter`); the
page itself, its HTML, style sheet and script, is the template of the private
module ``_html_page``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path
from typing import IO, Any

import matplotlib
import numpy as np
import numpy.typing as npt
import pandas as pd

from ._html_page import DATA_SLOT, SAR_TOGGLE, audit_codes, audit_toggle, page
from ._underlay import Underlay, png_data_uri
from .overview import COLORMAP, DAMAGED_EDGE, SKIPPED_COLOR
from .rings import Rings, _exterior_rings

__all__ = ["HTMLMapWriter", "write_html_map"]

#: Quantum of the embedded coordinates (metres of Web Mercator).
_QUANTUM = 0.1


def _colors(count: int = 256) -> list[str]:
    """Hex colours of :data:`~torchgeo_quake.mapping.overview.COLORMAP`.

    Args:
        count: number of colours

    Returns:
        ``#rrggbb`` strings from probability 0 to 1.
    """
    cmap = matplotlib.colormaps[COLORMAP]
    return [matplotlib.colors.to_hex(cmap(i / (count - 1))) for i in range(count)]


#: Values written per text chunk when streaming arrays into the page.
_CHUNK = 65536


def _write_ints(file: IO[str], values: npt.NDArray[np.int64], first: bool) -> None:
    """Append integers to a comma-separated JSON array body.

    Args:
        file: text file receiving the numbers
        values: the integers
        first: whether nothing was written to *file* before
    """
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        if len(chunk) == 0:
            continue
        if not first:
            file.write(",")
        file.write(",".join(map(str, chunk.tolist())))
        first = False


def _copy(source: Path, target: IO[str]) -> None:
    """Copy a text file into an open file, in blocks.

    Args:
        source: file to copy
        target: open text file
    """
    with open(source, encoding="utf-8") as f:
        shutil.copyfileobj(f, target, 1 << 20)


def _codes(labels: Any, n: int) -> tuple[list[str], npt.NDArray[np.int64] | None]:
    """Labels as indices into their sorted distinct values.

    Args:
        labels: a label per building (None or NA: no label), or None
        n: number of buildings

    Returns:
        The distinct labels and the index of every building's (-1 without
        one; None without *labels*).

    Raises:
        ValueError: If there are not *n* labels.
    """
    if labels is None:
        return [], None
    values = pd.Series(np.asarray(labels, dtype=object), dtype=object)
    if len(values) != n:
        raise ValueError(f"HTMLMapWriter: {n} probabilities and {len(values)} units")
    present = values.notna().to_numpy()
    names = sorted({str(v) for v in values[present]})
    codes = np.full(n, -1, dtype=np.int64)
    lookup = {name: i for i, name in enumerate(names)}
    codes[present] = [lookup[str(v)] for v in values[present]]
    return names, codes


class HTMLMapWriter:
    """Write the interactive map incrementally, tile by tile.

    The outlines of the buildings are quantised and streamed to temporary files
    next to *path* as tiles arrive (:meth:`add`); :meth:`close` writes the page,
    splicing those files and the per-building attributes into its inlined data,
    so memory does not grow with the number of outline vertices.

    .. versionadded:: 0.1
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Initialize a new HTMLMapWriter instance.

        Args:
            path: output ``.html`` (its folder receives temporary files)
        """
        self.path = Path(path)
        stem = self.path.name
        self._parts = {
            key: self.path.with_name(f".{stem}.{key}.part")
            for key in ("xy", "ro", "rb")
        }
        self._files: dict[str, IO[str]] | None = {
            key: open(part, "w", encoding="utf-8")  # noqa: SIM115
            for key, part in self._parts.items()
        }
        self._origin: npt.NDArray[np.float64] | None = None
        #: Vertices and rings written so far.
        self.vertices = 0
        self.rings = 0

    def add(
        self, geoms: npt.NDArray[np.object_], owners: npt.NDArray[np.int64]
    ) -> None:
        """Add the outlines of a tile of buildings.

        Args:
            geoms: footprints in Web Mercator (EPSG:3857); None and empty ones,
                and parts that are not polygons, are not drawn
            owners: building index of each geometry (position in the arrays
                given to :meth:`close`)
        """
        self.add_rings(_exterior_rings(np.asarray(geoms, dtype=object), owners))

    def add_rings(self, rings: Rings) -> None:
        """Add outer rings (see :class:`~torchgeo_quake.mapping.rings.Rings`).

        Args:
            rings: rings in Web Mercator, owners indexing the buildings
        """
        if self._files is None:
            raise ValueError("HTMLMapWriter: add() after close()")
        if len(rings) == 0:
            return
        if self._origin is None:
            self._origin = np.floor(rings.coords.min(axis=0))
        quantised = np.round((rings.coords - self._origin) / _QUANTUM).astype(np.int64)
        first = self.rings == 0
        _write_ints(self._files["xy"], quantised.ravel(), first)
        _write_ints(
            self._files["ro"],
            rings.offsets[:-1].astype(np.int64) + self.vertices,
            first,
        )
        _write_ints(self._files["rb"], rings.owner.astype(np.int64), first)
        self.vertices += len(rings.coords)
        self.rings += len(rings)

    def close(
        self,
        probability: npt.NDArray[np.floating[Any]],
        ids: Any,
        reasons: Any,
        threshold: float,
        title: str,
        subtitle: str = "",
        id_field: str = "osm_id",
        basemap: str | None = None,
        attribution: str | None = None,
        max_zoom: int = 19,
        notes: str = "",
        audit: npt.NDArray[np.object_] | None = None,
        credit: str | None = None,
        units: Any = None,
        underlay: Underlay | None = None,
    ) -> None:
        """Write the page and remove the temporary files.

        Args:
            probability: damage probability per building (NaN: not scored)
            ids: building id per building (None or ``pd.NA`` if missing)
            reasons: skip reason per building (None for scored ones)
            threshold: decision threshold
            title: page title
            subtitle: one line under the title (e.g. the counts)
            id_field: name of the id shown in the tooltips
            basemap: optional XYZ tile URL template with ``{z}``, ``{x}`` and
                ``{y}``; None fetches nothing
            attribution: text shown for the basemap (e.g. its copyright)
            max_zoom: highest zoom level requested from the basemap
            notes: HTML block shown under the subtitle (escaped by the caller):
                the expected count, the calibration and the input shift
            audit: reference audit of every building (``"likely omission"``,
                ``"likely commission"`` or None; see
                :mod:`~torchgeo_quake.mapping.audit`): outlined, with a toggle
                showing only them; None for a map without a reference
            credit: credit of the buildings' data, shown in the corner (e.g.
                :data:`~torchgeo_quake.mapping.overview.OSM_CREDIT`)
            units: unit of the totals of every building (admin unit or grid
                reference, as in ``summary.json``; None outside every unit),
                shown in the tooltips; None shows none
            underlay: the SAR image in Web Mercator, embedded as a PNG and
                drawn under the buildings (a check box hides it), or None

        Raises:
            ValueError: If *basemap* lacks a placeholder, or the arrays differ
                in length.

        .. versionchanged:: 0.2
           *notes*, *audit*, *credit*, *units*, *underlay*; a legend of the
           outlines.
        """
        if basemap is not None and not all(k in basemap for k in ("{z}", "{x}", "{y}")):
            self.abort()
            raise ValueError(
                "basemap must be an XYZ tile URL template with {z}, {x} and {y}, "
                f"got {basemap!r}"
            )
        if self._files is None:
            raise ValueError("HTMLMapWriter: close() called twice")
        for file in self._files.values():
            file.close()
        self._files = None
        try:
            self._write_page(
                probability,
                ids,
                reasons,
                threshold=threshold,
                title=title,
                subtitle=subtitle,
                id_field=id_field,
                basemap=basemap,
                attribution=attribution,
                max_zoom=max_zoom,
                notes=notes,
                audit=audit,
                credit=credit,
                units=units,
                underlay=underlay,
            )
        finally:
            self.abort()

    def abort(self) -> None:
        """Close and remove the temporary files (the page is not written)."""
        if self._files is not None:
            for file in self._files.values():
                file.close()
            self._files = None
        for part in self._parts.values():
            part.unlink(missing_ok=True)

    def _write_page(
        self,
        probability: npt.NDArray[np.floating[Any]],
        ids: Any,
        reasons: Any,
        *,
        threshold: float,
        title: str,
        subtitle: str,
        id_field: str,
        basemap: str | None,
        attribution: str | None,
        max_zoom: int,
        notes: str = "",
        audit: npt.NDArray[np.object_] | None = None,
        credit: str | None = None,
        units: Any = None,
        underlay: Underlay | None = None,
    ) -> None:
        """Write the HTML file.

        Args:
            probability: damage probability per building (NaN: not scored)
            ids: building id per building
            reasons: skip reason per building
            threshold: decision threshold
            title: page title
            subtitle: line under the title
            id_field: name of the id
            basemap: XYZ tile URL template or None
            attribution: basemap attribution
            max_zoom: highest basemap zoom level
            notes: HTML block under the subtitle
            audit: reference audit of every building, or None
            credit: credit of the buildings' data, or None
            units: unit of every building, or None
            underlay: the SAR image in Web Mercator, or None

        Raises:
            ValueError: If the arrays differ in length.
        """
        probs = np.asarray(probability, dtype=np.float64)
        n = len(probs)
        id_array = pd.array(ids, dtype="Int64")
        reason_array = np.asarray(reasons, dtype=object)
        if len(id_array) != n or len(reason_array) != n:
            raise ValueError(
                f"HTMLMapWriter: {n} probabilities, {len(id_array)} ids and "
                f"{len(reason_array)} reasons"
            )
        coded = np.where(
            np.isfinite(probs), np.round(np.nan_to_num(probs) * 1000), -1
        ).astype(np.int64)
        named = np.array([isinstance(r, str) and r != "" for r in reason_array])
        reason_names = sorted({str(r) for r in reason_array[named]})
        reason_codes = np.full(n, -1, dtype=np.int64)
        if named.any():
            lookup = {name: i for i, name in enumerate(reason_names)}
            reason_codes[named] = [lookup[str(r)] for r in reason_array[named]]
        unit_names, unit_codes = _codes(units, n)
        origin = self._origin if self._origin is not None else np.zeros(2)
        head = {
            "origin": [float(origin[0]), float(origin[1])],
            "q": _QUANTUM,
            "reasons": reason_names,
            "id_field": id_field,
            "threshold": float(threshold),
            "colors": _colors(),
            "skipped_color": SKIPPED_COLOR,
            "damaged_edge": DAMAGED_EDGE,
            "basemap": basemap,
            "maxzoom": int(max_zoom),
            "units": unit_names,
            "sar": None
            if underlay is None
            else {"png": png_data_uri(underlay), "bounds": list(underlay.bounds)},
        }
        # "</" must not appear inside a <script> element.
        fields = json.dumps(head, separators=(",", ":")).replace("</", "<\\/")
        attr = html.escape(attribution) if attribution else ""
        if basemap and not attr:
            attr = "basemap: " + html.escape(basemap.split("/{z}")[0])
        codes = None if audit is None else audit_codes(audit)
        notes += "" if codes is None else audit_toggle(codes)
        notes += "" if underlay is None else SAR_TOGGLE
        text = page(
            title,
            subtitle,
            threshold,
            attr,
            notes,
            credit=html.escape(credit) if credit else "",
        )
        before, after = text.split(DATA_SLOT)
        missing = np.asarray(id_array.isna())
        values = np.asarray(id_array.fillna(0), dtype=np.int64)
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(before)
            f.write(fields[:-1])
            for key in ("xy", "ro", "rb"):
                f.write(f',"{key}":[')
                _copy(self._parts[key], f)
                if key == "ro":
                    f.write(("," if self.rings else "") + str(self.vertices))
                f.write("]")
            f.write(',"p":[')
            _write_ints(f, coded, True)
            f.write('],"id":[')
            for start in range(0, n, _CHUNK):
                part = [
                    "null" if gone else str(v)
                    for v, gone in zip(
                        values[start : start + _CHUNK].tolist(),
                        missing[start : start + _CHUNK].tolist(),
                        strict=True,
                    )
                ]
                f.write(("," if start else "") + ",".join(part))
            f.write('],"rs":[')
            _write_ints(f, reason_codes, True)
            if codes is not None:
                f.write('],"au":[')
                _write_ints(f, codes, True)
            if unit_codes is not None:
                f.write('],"un":[')
                _write_ints(f, unit_codes, True)
            f.write("]}")
            f.write(after)


def write_html_map(
    path: str | os.PathLike[str],
    rings: Rings,
    probability: npt.NDArray[np.floating[Any]],
    ids: Any,
    reasons: Any,
    threshold: float,
    title: str,
    subtitle: str = "",
    id_field: str = "osm_id",
    basemap: str | None = None,
    attribution: str | None = None,
    max_zoom: int = 19,
    credit: str | None = None,
) -> None:
    """Write the interactive map in one call (see :class:`HTMLMapWriter`).

    Args:
        path: output ``.html``
        rings: outer rings of the footprints in Web Mercator (EPSG:3857)
        probability: damage probability per building (NaN: not scored)
        ids: building id per building (None if missing)
        reasons: skip reason per building (None for scored ones)
        threshold: decision threshold
        title: page title
        subtitle: one line under the title (e.g. the counts)
        id_field: name of the id shown in the tooltips
        basemap: optional XYZ tile URL template with ``{z}``, ``{x}`` and
            ``{y}``; None fetches nothing
        attribution: text shown for the basemap (e.g. its copyright)
        max_zoom: highest zoom level requested from the basemap
        credit: credit of the buildings' data, shown in the corner (e.g.
            :data:`~torchgeo_quake.mapping.overview.OSM_CREDIT`)

    Raises:
        ValueError: If *basemap* lacks a placeholder.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       *credit*.
    """
    writer = HTMLMapWriter(path)
    try:
        writer.add_rings(rings)
    except BaseException:
        writer.abort()
        raise
    writer.close(
        probability,
        ids,
        reasons,
        threshold,
        title=title,
        subtitle=subtitle,
        id_field=id_field,
        basemap=basemap,
        attribution=attribution,
        max_zoom=max_zoom,
        credit=credit,
    )
