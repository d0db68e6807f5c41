"""Why the features of a footprint file are not usable footprints (private helpers).

A footprint file may hold features the map cannot score: ids that are not
integers, missing or unrepairable geometries, points or lines, repeated ids.
:func:`maybe_usable` counts, quickly, the features that may be usable;
:func:`footprint_reasons` gives the reason of every feature; and
:func:`no_footprint_error` explains a file without a single usable footprint,
reason by reason, with how to fix it.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def footprint_reasons(frame: gpd.GeoDataFrame, id_field: str) -> pd.Series:
    """Why each feature is not a usable building footprint.

    The same rules as :class:`~torchgeo_quake.datasets.OSMBuildings`: an
    integer id, a geometry, polygonal after :func:`shapely.make_valid`, and an
    id not used by an earlier feature.

    Args:
        frame: the footprints
        id_field: building id column

    Returns:
        The reason of every feature (None for usable ones), in file order.
    """
    from ..datasets.footprints import _polygonal

    ids = pd.to_numeric(frame[id_field], errors="coerce")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    reasons = np.full(len(frame), None, dtype=object)
    for i, (bid, geom) in enumerate(zip(ids.tolist(), geoms, strict=True)):
        if pd.isna(bid):
            reasons[i] = f"missing or non-numeric {id_field}"
        elif geom is None or geom.is_empty:
            reasons[i] = "missing geometry"
        elif not geom.is_valid:
            if _polygonal(shapely.make_valid(geom)) is None:
                reasons[i] = "invalid geometry that could not be repaired"
        elif _polygonal(geom) is None:
            reasons[i] = f"not a polygon ({geom.geom_type})"
    usable = pd.isna(pd.Series(reasons, dtype=object)).to_numpy()
    duplicate = ids.where(usable).duplicated(keep="first").to_numpy() & usable
    reasons[duplicate] = f"duplicate {id_field}"
    return pd.Series(reasons, index=frame.index, dtype=object)


def maybe_usable(frame: gpd.GeoDataFrame, id_field: str) -> int:
    """Count the features that may be usable footprints (a quick upper bound).

    Args:
        frame: the footprints
        id_field: building id column

    Returns:
        Features with a numeric id and a polygonal or collection geometry.
    """
    ids = pd.to_numeric(frame[id_field], errors="coerce").notna().to_numpy()
    geoms = np.asarray(frame.geometry.values, dtype=object)
    kinds = shapely.get_type_id(geoms)
    polygonal = np.isin(kinds, (3, 6, 7)) & ~shapely.is_empty(geoms)
    return int((ids & polygonal).sum())


def no_footprint_error(
    frame: gpd.GeoDataFrame, path: Path, id_field: str
) -> ValueError | None:
    """The error for a footprint file without a single usable footprint.

    Args:
        frame: the footprints
        path: their file (for the message)
        id_field: building id column

    Returns:
        A ValueError with the count of each reason and how to fix it, or None
        when some footprint is usable.
    """
    reasons = footprint_reasons(frame, id_field)
    if reasons.isna().any():
        return None
    counts = reasons.value_counts()
    lines = [
        f"none of the {len(frame)} features of the footprint file {str(path)!r} "
        "is a usable building footprint:"
    ]
    lines += [f"  {count} {reason}" for reason, count in counts.items()]
    hints = []
    bad_id = f"missing or non-numeric {id_field}"
    if bad_id in counts.index:
        values = frame[id_field][reasons == bad_id].dropna().astype(str)
        examples = ", ".join(repr(v) for v in values.unique()[:3])
        hints.append(
            "ids must be integers (OSM ids such as 123456789)"
            + (f"; {id_field!r} holds values like {examples}" if examples else "")
            + ". Pass a column of integer ids with --id-field (id_field=), or "
            "convert the ids to integers (e.g. 'way/123' -> 123)."
        )
    if any(str(r).startswith("not a polygon") for r in counts.index):
        hints.append(
            "building footprints must be polygons (outlines): points and lines "
            "have no footprint to rasterise. Export the buildings as polygons "
            "(e.g. the HOTOSM 'buildings' polygons, not points)."
        )
    if "missing geometry" in counts.index:
        hints.append("features without a geometry cannot be mapped.")
    if "invalid geometry that could not be repaired" in counts.index:
        hints.append(
            "invalid geometries that shapely.make_valid cannot turn into "
            "polygons (zero area) cannot be mapped."
        )
    if f"duplicate {id_field}" in counts.index:
        hints.append(f"each building needs its own {id_field}.")
    lines += [f"Hint: {hint}" for hint in hints]
    return ValueError("\n".join(lines))
