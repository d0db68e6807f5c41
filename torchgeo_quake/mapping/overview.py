"""Static overview map of a damage map (``overview.png``).

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from ._underlay import Underlay
from .rings import Rings

__all__ = [
    "COLORMAP",
    "DAMAGED_EDGE",
    "OSM_CREDIT",
    "SKIPPED_COLOR",
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


def plot_overview(
    rings: Rings,
    probability: npt.NDArray[np.floating[Any]],
    threshold: float,
    title: str | None = None,
    units: str = "m",
    figsize: tuple[float, float] = (9.0, 8.0),
    credit: str | None = None,
    underlay: Underlay | None = None,
) -> Figure:
    """Draw the buildings coloured by damage probability.

    Buildings predicted damaged (probability at or above *threshold*) keep
    their probability's colour and get a :data:`DAMAGED_EDGE` outline, as the
    legend shows; buildings that were not scored (NaN probability) are grey.

    Args:
        rings: outer rings of the footprints in a projected CRS
        probability: damage probability of every building (NaN: not scored),
            indexed by :attr:`Rings.owner`
        threshold: decision threshold (marked on the colour bar)
        title: figure title
        units: name of the CRS unit (for the scale bar)
        figsize: figure size in inches
        credit: credit of the data, printed under the map (e.g.
            :data:`OSM_CREDIT` for OpenStreetMap footprints)
        underlay: the SAR image in the CRS of *rings*, drawn in grey under
            the buildings, or None

    Returns:
        The figure.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       *credit*, *underlay*; the legend's "predicted damaged" entry is an
       outline, as drawn.
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    cmap = matplotlib.colormaps[COLORMAP]
    norm = Normalize(vmin=0.0, vmax=1.0)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.set_axis_off()
    polygons = rings.polygons()
    probs = (
        np.asarray(probability, dtype=np.float64)[rings.owner]
        if len(rings)
        else np.zeros(0)
    )
    scored = np.isfinite(probs)
    faces = np.empty((len(polygons), 4))
    faces[scored] = cmap(norm(probs[scored]))
    faces[~scored] = matplotlib.colors.to_rgba(SKIPPED_COLOR)
    damaged = scored & (probs >= threshold)
    edges = np.zeros((len(polygons), 4))
    edges[damaged] = matplotlib.colors.to_rgba(DAMAGED_EDGE)
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
    if polygons:
        ax.add_collection(
            PolyCollection(
                polygons,
                facecolors=faces,
                edgecolors=edges,
                linewidths=np.where(damaged, 0.4, 0.0),
            )
        )
        xmin, ymin = rings.coords.min(axis=0)
        xmax, ymax = rings.coords.max(axis=0)
        pad = 0.02 * max(xmax - xmin, ymax - ymin, 1.0)
        ax.set_xlim(xmin - pad, xmax + pad)
        ax.set_ylim(ymin - pad, ymax + pad)
        length = _scale_length(xmax - xmin)
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
    if title:
        ax.set_title(title, fontsize=10)
    if credit:
        fig.supxlabel(credit, x=0.99, ha="right", fontsize=7, color="#333333")
    return fig


def save_overview(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> None:
    """Save an overview figure as PNG.

    Args:
        fig: the figure
        path: output file
        dpi: resolution

    .. versionadded:: 0.1
    """
    fig.savefig(path, dpi=dpi, facecolor="white")
