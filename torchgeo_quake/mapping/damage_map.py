"""What a damage map is: its output files and :class:`DamageMap`.

:class:`DamageMap` is what :func:`~torchgeo_quake.mapping.predict.map_damage`
returns (the output folder, the summary and the files, with a printable
report); :func:`spatial_order` is the order in which the map visits its
buildings (compact spatial tiles).

.. versionadded:: 0.2
   Moved here from :mod:`torchgeo_quake.mapping.predict`, which still exports
   these names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._exposure import exposure_line
from ._html_notes import report_lines

__all__ = ["OUTPUT_FILES", "DamageMap", "spatial_order"]


#: Files written into the output folder.
OUTPUT_FILES: tuple[str, ...] = (
    "damage.gpkg",
    "damage.geojson",
    "summary.json",
    "overview.png",
    "map.html",
)


@dataclass
class DamageMap:
    """What :func:`map_damage` produced.

    .. versionadded:: 0.1
    """

    #: The output folder.
    out: Path
    #: The content of ``summary.json``.
    summary: dict[str, Any] = field(default_factory=dict)
    #: Output files by name (empty on the non-zero ranks of a DDP run).
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, Any]:
        """Building counts (``footprints``, ``predicted``, ``skipped``, ...).

        Returns:
            The ``counts`` section of the summary.
        """
        counts: dict[str, Any] = self.summary.get("counts", {})
        return counts

    def report(self) -> str:
        """Human-readable counts, as printed by ``torchgeo-quake map``.

        Returns:
            A few lines of text.
        """
        c = self.counts
        if not c:
            return ""
        share = c["damaged_share"]
        lines = [
            f"{c['footprints']} footprints: {c['predicted']} predicted "
            f"({c['damaged']} damaged"
            + (f", {share:.1%}" if share is not None else "")
            + f"), {c['skipped']} skipped",
        ]
        for reason, count in c["skipped_by_reason"].items():
            lines.append(f"  skipped, {reason}: {count}")
        lines.extend(report_lines(self.summary))
        exposure = self.summary.get("exposure")
        if exposure:
            lines.append(exposure_line(exposure))
        reference = self.summary.get("reference")
        if reference:
            lines.append(
                f"against the reference ({reference['compared']} buildings "
                f"compared): precision {reference['precision']}, recall "
                f"{reference['recall']}; {reference['likely_omissions']} likely "
                f"omissions, {reference['likely_commissions']} likely "
                "commissions (audit.csv)"
            )
        model = self.summary.get("model", {})
        if model.get("fallback"):
            lines.append(f"used the fallback model {model['checkpoint']}")
        timing = self.summary.get("timing", {})
        if timing:
            lines.append(
                f"{timing['seconds']:.1f} s ({timing['buildings_per_second']:.0f} "
                "buildings/s)"
            )
        lines.append(f"wrote to {self.out}:\n  {', '.join(self.files)}")
        return "\n".join(lines)


def spatial_order(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], tile_size: int
) -> npt.NDArray[np.int64]:
    """An order of points in compact spatial tiles of about *tile_size* points.

    Points are cut into vertical strips of equal counts, each strip is walked
    alternately up and down, so consecutive runs of *tile_size* points form
    compact tiles. Points with NaN coordinates come last.

    Args:
        x: x coordinates
        y: y coordinates
        tile_size: points per tile

    Returns:
        A permutation of the point indices.

    .. versionadded:: 0.1
    """
    n = len(x)
    finite = np.isfinite(x) & np.isfinite(y)
    good = np.flatnonzero(finite)
    tiles = max(1, math.ceil(len(good) / max(tile_size, 1)))
    strips = max(1, math.ceil(math.sqrt(tiles)))
    by_x = good[np.argsort(x[good], kind="stable")]
    parts = []
    for k, strip in enumerate(np.array_split(by_x, strips)):
        key = y[strip] if k % 2 == 0 else -y[strip]
        parts.append(strip[np.argsort(key, kind="stable")])
    parts.append(np.flatnonzero(~finite))
    order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    assert len(order) == n
    return order.astype(np.int64)
