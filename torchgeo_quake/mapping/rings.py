"""Outer rings of building footprints as flat coordinate arrays (for drawing).

.. versionadded:: 0.1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

__all__ = ["RingCollector", "Rings"]


@dataclass(frozen=True)
class Rings:
    """Outer rings of many polygons, in one coordinate array.

    Ring ``r`` has the coordinates ``coords[offsets[r]:offsets[r + 1]]`` and
    belongs to building ``owner[r]``; a multipolygon has one ring per part,
    holes are left out (they do not matter at map scale).

    .. versionadded:: 0.1
    """

    #: Coordinates, shape (M, 2).
    coords: npt.NDArray[np.float64]
    #: Start of every ring in :attr:`coords`, plus the end, shape (R + 1,).
    offsets: npt.NDArray[np.int64]
    #: Building index of every ring, shape (R,).
    owner: npt.NDArray[np.int64]

    def __len__(self) -> int:
        """Number of rings.

        Returns:
            R.
        """
        return len(self.owner)

    def polygons(self) -> list[npt.NDArray[np.float64]]:
        """Every ring as an (n, 2) array.

        Returns:
            The rings, in order.
        """
        return [
            self.coords[a:b]
            for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
        ]


def _exterior_rings(
    geoms: npt.NDArray[np.object_], owners: npt.NDArray[np.int64]
) -> Rings:
    """Outer rings of the polygonal parts of geometries.

    Args:
        geoms: shapely geometries (None and empty ones are ignored)
        owners: building index of each geometry

    Returns:
        The rings.
    """
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    geoms, owners = geoms[present], owners[present]
    parts, index = shapely.get_parts(geoms, return_index=True)
    polygonal = shapely.get_type_id(parts) == 3
    parts, index = parts[polygonal], index[polygonal]
    rings = shapely.get_exterior_ring(parts)
    coords = shapely.get_coordinates(rings)
    counts = shapely.get_num_coordinates(rings).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Rings(
        coords=np.asarray(coords, dtype=np.float64),
        offsets=offsets,
        owner=np.asarray(owners[index], dtype=np.int64),
    )


class RingCollector:
    """Gather the outer rings of footprints tile by tile.

    .. versionadded:: 0.1
    """

    def __init__(self) -> None:
        """Initialize a new, empty RingCollector instance."""
        self._parts: list[Rings] = []

    def add(
        self, geoms: npt.NDArray[np.object_], owners: npt.NDArray[np.int64]
    ) -> None:
        """Add the rings of a tile.

        Args:
            geoms: shapely geometries
            owners: building index of each geometry
        """
        self._parts.append(_exterior_rings(np.asarray(geoms, dtype=object), owners))

    def rings(self) -> Rings:
        """All rings added so far.

        Returns:
            The rings, in the order they were added.
        """
        if not self._parts:
            return Rings(
                coords=np.zeros((0, 2)),
                offsets=np.zeros(1, dtype=np.int64),
                owner=np.zeros(0, dtype=np.int64),
            )
        coords = np.concatenate([p.coords for p in self._parts])
        starts = np.cumsum([0] + [len(p.coords) for p in self._parts[:-1]])
        offsets = np.concatenate(
            [p.offsets[:-1] + s for p, s in zip(self._parts, starts, strict=True)]
            + [np.array([len(coords)], dtype=np.int64)]
        )
        owner = np.concatenate([p.owner for p in self._parts])
        return Rings(coords=coords, offsets=offsets.astype(np.int64), owner=owner)
