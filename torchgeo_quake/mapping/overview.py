"""Static overview map of a damage map (``overview.png``).

A small area is drawn building by building. At city scale single footprints
would be dots of a pixel or two, so the overview aggregates them instead
(:func:`overview_mode`): a grid of square cells (:func:`density_cell_size`)
coloured by the expected number of damaged buildings in each, the sum of the
buildings' calibrated probabilities (:func:`density_grid`).

.. versionadded:: 0.1
.. versionchanged:: 0.3
   The density view at city scale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from ._underlay import Underlay
from .rings import Rings

__all__ = [
    "CELL_SIZES",
    "COLORMAP",
    "DAMAGED_EDGE",
    "MAX_CELLS_ACROSS",
    "MIN_FOOTPRINT_PIXELS",
    "OSM_CREDIT",
    "OVERVIEW_DPI",
    "SKIPPED_COLOR",
    "DensityGrid",
    "OverviewMode",
    "density_cell_size",
    "density_grid",
    "map_extent",
    "overview_mode",
    "plot_overview",
    "save_overview",
]

#: Colour map of the damage probability (overview and interactive map).
COLORMAP = "YlOrRd"
#: Colour of buildings that were not scored.
SKIPPED_COLOR = "#9e9e9e"
#: Outline colour of buildings predicted damaged (overview, interactive map
#: and the QGIS style of ``damage.gpkg``); their fill is their probability's.
#:
#: .. versionadded:: 0.2
DAMAGED_EDGE = "#400000"
#: Credit of OpenStreetMap footprints, required by their licence (ODbL).
#:
#: .. versionadded:: 0.2
OSM_CREDIT = "Building footprints \u00a9 OpenStreetMap contributors (ODbL)"


#: Resolution of ``overview.png``, in dots per inch.
#:
#: .. versionadded:: 0.3
OVERVIEW_DPI = 150
#: Median footprint side, in pixels of the figure, below which the overview
#: draws cells instead of footprints (:func:`overview_mode`).
#:
#: .. versionadded:: 0.3
MIN_FOOTPRINT_PIXELS = 2.0
#: Cell sizes of the density view, in metres: the smallest that gives at most
#: :data:`MAX_CELLS_ACROSS` cells across the map is used
#: (:func:`density_cell_size`); 100 to 250 m for a town or a city, the larger
#: ones for a region.
#:
#: .. versionadded:: 0.3
CELL_SIZES: tuple[float, ...] = (
    100.0,
    125.0,
    150.0,
    200.0,
    250.0,
    500.0,
    1000.0,
    2000.0,
    5000.0,
)
#: Most cells across the longer side of the density view (the largest of
#: :data:`CELL_SIZES` is used beyond).
#:
#: .. versionadded:: 0.3
MAX_CELLS_ACROSS = 60
#: Share of the figure's width and height taken by the map (the rest holds the
#: title, the colour bar and the credit): the pixel size of
#: :func:`overview_mode` is computed on it.
_MAP_SHARE = 0.8

#: What the overview draws: ``"footprints"`` or ``"cells"``.
#:
#: .. versionadded:: 0.3
OverviewMode = Literal["footprints", "cells"]


def map_extent(rings: Rings) -> tuple[float, float, float, float]:
    """The extent of an overview: the rings' bounds, padded by 2%.

    Args:
        rings: outer rings of the footprints (at least one)

    Returns:
        ``(xmin, ymin, xmax, ymax)``.

    .. versionadded:: 0.3
    """
    xmin, ymin = rings.coords.min(axis=0)
    xmax, ymax = rings.coords.max(axis=0)
    pad = 0.02 * max(xmax - xmin, ymax - ymin, 1.0)
    return (
        float(xmin - pad),
        float(ymin - pad),
        float(xmax + pad),
        float(ymax + pad),
    )


def _ring_moments(
    rings: Rings,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Area and centroid of every ring (shoelace formula).

    Args:
        rings: closed rings (at least one)

    Returns:
        (area, x, y) of every ring; the centroid of a ring of no area is the
        mean of its vertices.
    """
    origin = rings.coords.min(axis=0)
    x, y = (rings.coords - origin).T
    cross = np.zeros(len(x))
    cross[:-1] = x[:-1] * y[1:] - x[1:] * y[:-1]
    # The pair that joins one ring to the next is no edge.
    cross[rings.offsets[1:] - 1] = 0.0
    starts = rings.offsets[:-1]
    twice = np.add.reduceat(cross, starts)
    sx = np.add.reduceat(np.append(x[:-1] + x[1:], 0.0) * cross, starts)
    sy = np.add.reduceat(np.append(y[:-1] + y[1:], 0.0) * cross, starts)
    counts = np.diff(rings.offsets)
    mean_x = np.add.reduceat(x, starts) / counts
    mean_y = np.add.reduceat(y, starts) / counts
    flat = np.abs(twice) < 1e-9
    safe = np.where(flat, 1.0, 3.0 * twice)
    cx = np.where(flat, mean_x, sx / safe) + origin[0]
    cy = np.where(flat, mean_y, sy / safe) + origin[1]
    return np.abs(twice) / 2.0, cx, cy


def _buildings(
    rings: Rings, n: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Footprint area and centroid of every building.

    Args:
        rings: outer rings of the footprints (at least one)
        n: number of buildings (:attr:`Rings.owner` is below)

    Returns:
        (area, x, y) of every building: the sum of its rings' areas and their
        area-weighted centroid (NaN for a building without a ring).
    """
    area, x, y = _ring_moments(rings)
    weight = np.where(area > 0, area, 1e-12)

    def total(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.bincount(rings.owner, weights=values, minlength=n).astype(np.float64)

    norm = total(weight)
    present = norm > 0
    safe = np.where(present, norm, 1.0)
    bx = np.where(present, total(weight * x) / safe, np.nan)
    by = np.where(present, total(weight * y) / safe, np.nan)
    return total(area), bx, by


def overview_mode(
    rings: Rings,
    figsize: tuple[float, float] = (9.0, 8.0),
    dpi: float = OVERVIEW_DPI,
) -> OverviewMode:
    """Whether the overview draws footprints or cells.

    The rule: cells when the median footprint, as a square of the same area,
    is narrower than :data:`MIN_FOOTPRINT_PIXELS` pixels of the figure (a
    footprint that small is a dot, and thousands of them a cloud); else
    footprints. The pixel size is that of the map's extent
    (:func:`map_extent`) fitted, at equal scales, into the share of the
    figure the map takes. A 9 km wide city of 10 m buildings is about 8 m a
    pixel at the default size: cells; a 1 km district, 1 m a pixel:
    footprints.

    Args:
        rings: outer rings of the footprints in a projected CRS
        figsize: figure size in inches
        dpi: figure resolution

    Returns:
        ``"cells"`` or ``"footprints"`` (always for no footprint).

    .. versionadded:: 0.3
    """
    if len(rings) == 0:
        return "footprints"
    area, _, _ = _buildings(rings, int(rings.owner.max()) + 1)
    sides = np.sqrt(area[np.unique(rings.owner)])
    xmin, ymin, xmax, ymax = map_extent(rings)
    width, height = (side * dpi * _MAP_SHARE for side in figsize)
    pixel = max((xmax - xmin) / width, (ymax - ymin) / height)
    too_small = float(np.median(sides)) < MIN_FOOTPRINT_PIXELS * pixel
    return "cells" if too_small else "footprints"


def density_cell_size(extent: tuple[float, float, float, float]) -> float:
    """The cell size of the density view of an extent.

    Args:
        extent: ``(xmin, ymin, xmax, ymax)`` in metres

    Returns:
        The smallest of :data:`CELL_SIZES` that gives at most
        :data:`MAX_CELLS_ACROSS` cells across the longer side (the largest
        beyond).

    .. versionadded:: 0.3
    """
    span = max(extent[2] - extent[0], extent[3] - extent[1])
    for size in CELL_SIZES:
        if span / size <= MAX_CELLS_ACROSS:
            return size
    return CELL_SIZES[-1]


@dataclass(frozen=True)
class DensityGrid:
    """Buildings and expected damage per square cell of a map.

    Cell ``(i, j)`` spans ``x[j]..x[j + 1]`` and ``y[i]..y[i + 1]``; a
    building counts in the cell of its footprint's centroid.

    .. versionadded:: 0.3
    """

    #: Cell edges along x, shape (nx + 1,), multiples of :attr:`cell`.
    x: npt.NDArray[np.float64]
    #: Cell edges along y, shape (ny + 1,), multiples of :attr:`cell`.
    y: npt.NDArray[np.float64]
    #: Cell side, in the CRS unit.
    cell: float
    #: Expected number of damaged buildings (sum of the probabilities of the
    #: scored buildings), shape (ny, nx).
    expected: npt.NDArray[np.float64]
    #: Buildings, scored or not, shape (ny, nx).
    buildings: npt.NDArray[np.int64]
    #: Scored buildings, shape (ny, nx).
    scored: npt.NDArray[np.int64]


def density_grid(
    rings: Rings,
    probability: npt.NDArray[np.floating[Any]],
    cell: float | None = None,
) -> DensityGrid:
    """Sum the damage probabilities of the buildings per square cell.

    Args:
        rings: outer rings of the footprints in a projected CRS (at least one)
        probability: calibrated damage probability of every building (NaN:
            not scored), indexed by :attr:`Rings.owner`
        cell: cell side (default: :func:`density_cell_size` of the extent)

    Returns:
        The grid, covering the map's extent (:func:`map_extent`).

    Raises:
        ValueError: If there is no footprint or *cell* is not positive.

    .. versionadded:: 0.3
    """
    if len(rings) == 0:
        raise ValueError("density_grid: no footprint to aggregate")
    extent = map_extent(rings)
    if cell is None:
        cell = density_cell_size(extent)
    if not cell > 0:
        raise ValueError(f"density_grid: cell size {cell} must be positive")
    probs = np.asarray(probability, dtype=np.float64)
    _, bx, by = _buildings(rings, len(probs))
    present = np.isfinite(bx) & np.isfinite(by)
    scored = present & np.isfinite(probs)
    xmin, ymin, xmax, ymax = extent
    x = np.arange(np.floor(xmin / cell), np.ceil(xmax / cell) + 1) * cell
    y = np.arange(np.floor(ymin / cell), np.ceil(ymax / cell) + 1) * cell
    px, py = bx[present], by[present]

    def count(weights: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
        hist, _, _ = np.histogram2d(py, px, bins=(y, x), weights=weights)
        return hist

    expected = count(np.where(scored, probs, 0.0)[present])
    return DensityGrid(
        x=x,
        y=y,
        cell=float(cell),
        expected=expected,
        buildings=count(None).astype(np.int64),
        scored=count(scored[present].astype(np.float64)).astype(np.int64),
    )


def _scale_length(span: float) -> float:
    """A round scale-bar length of about a fifth of the map width.

    Args:
        span: map width in metres

    Returns:
        1, 2 or 5 times a power of ten, in metres.
    """
    target = max(span / 5.0, 1e-9)
    power = 10.0 ** np.floor(np.log10(target))
    for step in (5.0, 2.0, 1.0):
        if step * power <= target:
            return float(step * power)
    return float(power)


def _draw_footprints(
    fig: Figure,
    ax: Any,
    rings: Rings,
    probs: npt.NDArray[np.float64],
    threshold: float,
) -> None:
    """Draw every footprint in its probability's colour, with its legend.

    Args:
        fig: the figure
        ax: its map axes
        rings: outer rings of the footprints (at least one)
        probs: damage probability of every building (NaN: not scored)
        threshold: decision threshold
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    cmap = matplotlib.colormaps[COLORMAP]
    norm = Normalize(vmin=0.0, vmax=1.0)
    polygons = rings.polygons()
    ring_probs = probs[rings.owner]
    scored = np.isfinite(ring_probs)
    faces = np.empty((len(polygons), 4))
    faces[scored] = cmap(norm(ring_probs[scored]))
    faces[~scored] = matplotlib.colors.to_rgba(SKIPPED_COLOR)
    damaged = scored & (ring_probs >= threshold)
    edges = np.zeros((len(polygons), 4))
    edges[damaged] = matplotlib.colors.to_rgba(DAMAGED_EDGE)
    if polygons:
        ax.add_collection(
            PolyCollection(
                polygons,
                facecolors=faces,
                edgecolors=edges,
                linewidths=np.where(damaged, 0.4, 0.0),
            )
        )
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(mappable, ax=ax, shrink=0.6, pad=0.01)
    bar.set_label(f"damage probability (black line: threshold {threshold:.3f})")
    bar.ax.axhline(threshold, color="black", linewidth=2.0)
    handles = [
        Patch(facecolor=SKIPPED_COLOR, label="not scored"),
        Patch(
            facecolor="none",
            edgecolor=DAMAGED_EDGE,
            linewidth=1.2,
            label=f"outlined: predicted damaged (\u2265 {threshold:.3f})",
        ),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)


def _draw_cells(
    fig: Figure, ax: Any, rings: Rings, probs: npt.NDArray[np.float64]
) -> DensityGrid:
    """Draw the cells coloured by expected damaged buildings, with the legend.

    Args:
        fig: the figure
        ax: its map axes
        rings: outer rings of the footprints (at least one)
        probs: damage probability of every building (NaN: not scored)

    Returns:
        The grid drawn.
    """
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.patches import Patch

    grid = density_grid(rings, probs)
    cmap = matplotlib.colormaps[COLORMAP]
    top = float(grid.expected.max())
    norm = Normalize(vmin=0.0, vmax=top if top > 0 else 1.0)
    ax.pcolormesh(
        grid.x,
        grid.y,
        np.ma.masked_where(grid.scored == 0, grid.expected),
        cmap=cmap,
        norm=norm,
        alpha=0.8,
        edgecolors="none",
        zorder=1,
    )
    unscored = (grid.buildings > 0) & (grid.scored == 0)
    if unscored.any():
        ax.pcolormesh(
            grid.x,
            grid.y,
            np.ma.masked_where(~unscored, np.ones(unscored.shape)),
            cmap=ListedColormap([SKIPPED_COLOR]),
            alpha=0.8,
            edgecolors="none",
            zorder=1,
        )
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(mappable, ax=ax, shrink=0.6, pad=0.01)
    bar.set_label(
        f"expected damaged buildings per {grid.cell:g} m cell "
        "(sum of damage probabilities)"
    )
    handles = [
        Patch(facecolor=SKIPPED_COLOR, label="cell with no building scored"),
        Patch(facecolor="none", edgecolor="#666666", label="no fill: no building"),
    ]
    ax.legend(
        handles=handles,
        loc="upper right",
        fontsize=8,
        framealpha=0.9,
        title=f"{grid.cell:g} m cells: buildings too small to draw one by one",
        title_fontsize=8,
    )
    return grid


def plot_overview(
    rings: Rings,
    probability: npt.NDArray[np.floating[Any]],
    threshold: float,
    title: str | None = None,
    units: str = "m",
    figsize: tuple[float, float] = (9.0, 8.0),
    credit: str | None = None,
    underlay: Underlay | None = None,
    mode: OverviewMode | Literal["auto"] = "auto",
    dpi: float = OVERVIEW_DPI,
) -> Figure:
    """Draw the buildings, or cells of them, coloured by damage.

    Footprints (a small area): every building in its damage probability's
    colour; buildings predicted damaged (probability at or above *threshold*)
    keep it and get a :data:`DAMAGED_EDGE` outline, as the legend shows;
    buildings that were not scored (NaN probability) are grey.

    Cells (city scale, see :func:`overview_mode`): square cells
    (:func:`density_grid`) coloured by the expected number of damaged
    buildings in each, the sum of their probabilities; cells whose buildings
    were not scored are grey, cells without buildings are not filled.

    Args:
        rings: outer rings of the footprints in a projected CRS
        probability: damage probability of every building (NaN: not scored),
            indexed by :attr:`Rings.owner`
        threshold: decision threshold (marked on the colour bar of the
            footprints)
        title: figure title
        units: name of the CRS unit (for the scale bar)
        figsize: figure size in inches
        credit: credit of the data, printed under the map (e.g.
            :data:`OSM_CREDIT` for OpenStreetMap footprints)
        underlay: the SAR image in the CRS of *rings*, drawn in grey under
            the buildings, or None
        mode: ``"footprints"``, ``"cells"`` (the CRS unit must be the metre)
            or ``"auto"``: :func:`overview_mode`
        dpi: figure resolution (that of the saved image: the pixel size of
            the ``"auto"`` rule)

    Returns:
        The figure.

    Raises:
        ValueError: If *mode* is not one of the above.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       *credit*, *underlay*; the legend's "predicted damaged" entry is an
       outline, as drawn.
    .. versionchanged:: 0.3
       *mode* and *dpi*: cells at city scale.
    """
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    if mode not in ("auto", "footprints", "cells"):
        raise ValueError(f"overview mode {mode!r}: use 'auto', 'footprints' or 'cells'")
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.set_axis_off()
    probs = np.asarray(probability, dtype=np.float64)
    if underlay is not None:
        left, bottom, right, top = underlay.bounds
        ax.imshow(
            underlay.image,
            cmap="gray",
            vmin=0.0,
            vmax=1.0,
            extent=(left, right, bottom, top),
            origin="upper",
            interpolation="bilinear",
            zorder=0,
        )
    if mode == "auto":
        mode = overview_mode(rings, figsize, dpi)
    if len(rings) and mode == "cells":
        _draw_cells(fig, ax, rings, probs)
    else:
        _draw_footprints(fig, ax, rings, probs, threshold)
    if len(rings):
        xmin, ymin, xmax, ymax = map_extent(rings)
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(ymin, ymax)
        length = _scale_length(float(np.ptp(rings.coords[:, 0])))
        label = (
            f"{length / 1000:g} km"
            if units == "m" and length >= 1000
            else (f"{length:g} {units}")
        )
        ax.add_artist(
            AnchoredSizeBar(
                ax.transData,
                length,
                label,
                "lower left",
                frameon=True,
                pad=0.4,
                size_vertical=length / 60,
            )
        )
    if title:
        ax.set_title(title, fontsize=10)
    if credit:
        fig.supxlabel(credit, x=0.99, ha="right", fontsize=7, color="#333333")
    return fig


def save_overview(
    fig: Figure, path: str | os.PathLike[str], dpi: float = OVERVIEW_DPI
) -> None:
    """Save an overview figure as PNG.

    Args:
        fig: the figure
        path: output file
        dpi: resolution

    .. versionadded:: 0.1
    """
    fig.savefig(path, dpi=dpi, facecolor="white")
