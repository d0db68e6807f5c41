"""Building footprints of a simulated city, placed along its blocks.

Walking along each long side of a block, each plot draws its hidden GEM
taxonomy from the neighbourhood mix at that spot
(:class:`~torchgeo_quake.simulation.gem_neighbourhoods.NeighbourhoodGrid`); the
taxonomy fixes the number of storeys and, through GEM's floor area per
building, the footprint area. Footprints are street-aligned rectangles or
L-shapes (a rear corner cut out), 8-40 m on a side, set back from the street,
separated by side gaps that depend on the building type (terraced shops,
detached apartment blocks, houses with gardens). Rows on the two long sides are
capped in depth so they never meet; deep blocks also get buildings in the
middle of their short sides. 5 % of the blocks become parks and 4 % hold one
large building (school, mosque, industrial or commercial hall). Footprints
never overlap. The result is the city's :class:`Candidates`, from which
:mod:`~torchgeo_quake.simulation.selection` keeps the city's buildings.

In the ``calibrated`` scenario a
:class:`~torchgeo_quake.simulation.stock.StockModel` scales GEM's floor area
per storey and widens its spread (sides up to 60 m) and leaves a share of the
blocks open, as derived from the real HOTOSM layer in
:mod:`~torchgeo_quake.simulation.stock`; without one (v0.1) footprints and
random draws are unchanged.

:data:`BUILDING_KINDS` and :class:`Candidates` were defined in
:mod:`~torchgeo_quake.simulation.layout` before, which still re-exports them.

.. versionadded:: 0.2

.. versionchanged:: 0.3
   The calibrated stock model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from .cities import CitySpec
from .gem_neighbourhoods import NeighbourhoodGrid
from .stock import StockModel

__all__ = ["BUILDING_KINDS", "Candidates"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjectArray = npt.NDArray[np.object_]

#: Building kinds of the simulator (they set sizes, gaps and OSM tags).
BUILDING_KINDS: tuple[str, ...] = (
    "house",
    "apartments",
    "mixed",
    "commercial",
    "industrial",
    "school",
    "mosque",
)


# (gap range, setback range) per kind, metres.
_GAPS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "house": ((2.0, 7.0), (0.5, 4.0)),
    "apartments": ((3.0, 6.0), (2.0, 5.0)),
    "mixed": ((1.0, 3.5), (0.5, 2.5)),
    "commercial": ((0.6, 1.5), (0.3, 1.5)),
    "industrial": ((4.0, 10.0), (3.0, 8.0)),
}
_MIN_SIDE = 8.0
_MAX_SIDE = 40.0


@dataclass
class Candidates:
    """Candidate buildings of a city (local metres).

    Attributes:
        polygons: footprint polygons
        x: centroid x
        y: centroid y
        frontage: footprint side along the street (metres)
        depth: footprint side perpendicular to the street (metres)
        angle_deg: orientation of the footprint axes (degrees counter-clockwise
            from east)
        lshape: whether the footprint is L-shaped
        taxonomy: row of the hidden GEM taxonomy in the province stock
        storeys: number of storeys
        kind: building kind (see :data:`BUILDING_KINDS`)
        block: index of the block the building stands in
        cell: GEM neighbourhood cell of the building

    .. versionadded:: 0.1
    """

    polygons: ObjectArray
    x: FloatArray
    y: FloatArray
    frontage: FloatArray
    depth: FloatArray
    angle_deg: FloatArray
    lshape: BoolArray
    taxonomy: IntArray
    storeys: IntArray
    kind: ObjectArray
    block: IntArray
    cell: IntArray

    def __len__(self) -> int:
        """Number of candidates.

        Returns:
            The count.
        """
        return int(self.x.size)

    def subset(self, index: npt.ArrayLike) -> Candidates:
        """Candidates at the given positions.

        Args:
            index: integer positions or boolean mask

        Returns:
            A new :class:`Candidates` with copies of the selected rows.
        """
        idx = np.asarray(index)
        return Candidates(
            polygons=self.polygons[idx],
            x=self.x[idx],
            y=self.y[idx],
            frontage=self.frontage[idx],
            depth=self.depth[idx],
            angle_deg=self.angle_deg[idx],
            lshape=self.lshape[idx],
            taxonomy=self.taxonomy[idx],
            storeys=self.storeys[idx],
            kind=self.kind[idx],
            block=self.block[idx],
            cell=self.cell[idx],
        )


def _kind_of(occupancy: str, material: str, storeys: int) -> str:
    """Building kind implied by a taxonomy.

    Args:
        occupancy: GEM occupancy class (RES, COM, IND, MIX)
        material: material group
        storeys: number of storeys

    Returns:
        The kind.
    """
    if occupancy == "IND":
        return "industrial"
    if occupancy == "COM":
        return "commercial"
    if occupancy == "MIX":
        return "mixed"
    if storeys <= 2 or (material != "RC" and storeys <= 3):
        return "house"
    return "apartments"


class _Placer:
    """Places footprints in the blocks of a city (used by the street layout)."""

    def __init__(
        self,
        city: CitySpec,
        grid: NeighbourhoodGrid,
        rng: np.random.Generator,
        stock: StockModel | None = None,
    ) -> None:
        """Initialise the placer.

        Args:
            city: the city
            grid: neighbourhood grid with the taxonomy mixes
            rng: random generator
            stock: footprint size and vacancy model of the ``calibrated``
                scenario (:mod:`~torchgeo_quake.simulation.stock`); None keeps
                the v0.1 model, random draws included
        """
        self.city = city
        self.grid = grid
        self.rng = rng
        self.stock = stock
        self.max_side = _MAX_SIDE if stock is None else stock.max_side_m
        table = grid.stock
        self.area = table["area"].to_numpy(np.float64)
        self.smin = table["storeys_min"].to_numpy(np.int64)
        self.smax = table["storeys_max"].to_numpy(np.int64)
        self.occupancy = table["occupancy"].to_numpy(object)
        self.material = table["material_group"].to_numpy(object)
        self.vertices: list[FloatArray] = []
        self.rows: list[tuple[float, float, bool, int, int, str, int, float]] = []

    def _draw(self, x: float, y: float, large: bool) -> tuple[int, int, str]:
        """Draw a taxonomy, storey count and kind at a location.

        Args:
            x: local x of the plot
            y: local y of the plot
            large: draw a non-residential building for a large block

        Returns:
            (taxonomy row, storeys, kind)
        """
        grid = self.grid
        ix = min(max(int((x - grid.x0) // grid.cell_size), 0), grid.nx - 1)
        iy = min(max(int((y - grid.y0) // grid.cell_size), 0), grid.ny - 1)
        cell = iy * grid.nx + ix
        tax = grid.draw_taxonomy(cell, self.rng.random())
        if large:
            for _ in range(20):
                if self.occupancy[tax] in ("COM", "IND"):
                    break
                tax = grid.draw_taxonomy(cell, self.rng.random())
        storeys = int(self.rng.integers(self.smin[tax], self.smax[tax] + 1))
        kind = _kind_of(str(self.occupancy[tax]), str(self.material[tax]), storeys)
        return tax, storeys, kind

    def _size(self, tax: int) -> tuple[float, float]:
        """Footprint frontage and depth from GEM's floor area per building.

        Args:
            tax: taxonomy row

        Returns:
            (frontage, depth) in metres, before fitting to the plot.
        """
        rng = self.rng
        mid = 0.5 * (self.smin[tax] + self.smax[tax])
        if self.stock is None:
            area = float(self.area[tax]) / mid * math.exp(rng.normal(0.0, 0.3))
            area = min(max(area, 70.0), 1400.0)
        else:
            spread = rng.normal(0.0, self.stock.footprint_sigma)
            area = float(self.area[tax]) / mid * self.stock.footprint_scale
            area = min(max(area * math.exp(spread), 70.0), self.max_side**2)
        aspect = rng.uniform(1.0, 1.8)
        frontage = math.sqrt(area * aspect)
        depth = area / frontage
        if rng.random() < 0.35:
            frontage, depth = depth, frontage
        return frontage, depth

    def _outline(self, w: float, d: float, lshape: bool) -> FloatArray:
        """Vertices (counter-clockwise, along-street a, depth b) of a footprint.

        Args:
            w: frontage
            d: depth
            lshape: cut a rear corner out

        Returns:
            (n, 2) array of vertices, front edge on b = 0.
        """
        if not lshape:
            return np.array([[0.0, 0.0], [w, 0.0], [w, d], [0.0, d]])
        nw = w * self.rng.uniform(0.3, 0.5)
        nd = d * self.rng.uniform(0.3, 0.5)
        if self.rng.random() < 0.5:
            pts = [[0, 0], [w, 0], [w, d - nd], [w - nw, d - nd], [w - nw, d], [0, d]]
        else:
            pts = [[0, 0], [w, 0], [w, d], [nw, d], [nw, d - nd], [0, d - nd]]
        return np.asarray(pts, dtype=np.float64)

    def _add(
        self,
        outline: FloatArray,
        origin: FloatArray,
        ea: FloatArray,
        eb: FloatArray,
        frontage: float,
        depth: float,
        lshape: bool,
        tax: int,
        storeys: int,
        kind: str,
        block: int,
        angle: float,
    ) -> None:
        """Store one footprint given in a side frame.

        Args:
            outline: vertices in the side frame (a along the street, b inwards)
            origin: world position of the frame origin
            ea: world unit vector of the a axis
            eb: world unit vector of the b axis
            frontage: footprint frontage
            depth: footprint depth
            lshape: L-shaped or not
            tax: taxonomy row
            storeys: storeys
            kind: building kind
            block: block index
            angle: orientation of the block (degrees)
        """
        world = origin[None, :] + outline[:, :1] * ea[None, :] + outline[:, 1:] * eb
        self.vertices.append(world)
        self.rows.append((frontage, depth, lshape, tax, storeys, kind, block, angle))

    def fill_side(
        self,
        origin: FloatArray,
        ea: FloatArray,
        eb: FloatArray,
        length: float,
        depth_cap: float,
        block: int,
        angle: float,
    ) -> None:
        """Line one block side with buildings.

        Args:
            origin: world position where the side starts (street edge)
            ea: unit vector along the side
            eb: unit vector pointing into the block
            length: side length
            depth_cap: largest distance a building may reach into the block
            block: block index
            angle: block orientation (degrees)
        """
        rng = self.rng
        ox, oy = float(origin[0]), float(origin[1])
        ax, ay = float(ea[0]), float(ea[1])
        bx, by = float(eb[0]), float(eb[1])
        pos = rng.uniform(0.3, 3.0)
        while pos < length - _MIN_SIDE:
            at_x = ox + (pos + 6.0) * ax + 6.0 * bx
            at_y = oy + (pos + 6.0) * ay + 6.0 * by
            tax, storeys, kind = self._draw(at_x, at_y, False)
            gaps, setbacks = _GAPS[kind]
            w, d = self._size(tax)
            setback = rng.uniform(*setbacks)
            setback = min(setback, max(0.3, depth_cap - _MIN_SIDE))
            w = min(max(w, _MIN_SIDE), self.max_side)
            d = min(max(d, _MIN_SIDE), self.max_side, depth_cap - setback)
            if pos + w > length - 0.3:
                w = length - 0.3 - pos
                if w < _MIN_SIDE:
                    break
            lshape = min(w, d) >= 9.0 and rng.random() < self.city.lshape_share
            outline = self._outline(w, d, lshape)
            outline[:, 0] += pos
            outline[:, 1] += setback
            self._add(
                outline, origin, ea, eb, w, d, lshape, tax, storeys, kind, block, angle
            )
            pos += w + rng.uniform(*gaps) * self.city.gap_factor

    def fill_large(
        self,
        centre: FloatArray,
        ea: FloatArray,
        eb: FloatArray,
        length: float,
        depth: float,
        block: int,
        angle: float,
    ) -> None:
        """Put one large building in the middle of a block.

        Args:
            centre: world centre of the block
            ea: unit vector along the block's long side
            eb: unit vector along its short side
            length: long side
            depth: short side
            block: block index
            angle: block orientation (degrees)
        """
        rng = self.rng
        tax, storeys, kind = self._draw(float(centre[0]), float(centre[1]), True)
        special = rng.random()
        if special < 0.3:
            kind = "school"
            storeys = int(rng.integers(2, 5))
        elif special < 0.45:
            kind = "mosque"
            storeys = int(rng.integers(1, 3))
        w = float(min(_MAX_SIDE, length - 10.0, rng.uniform(24.0, 40.0)))
        d = float(min(_MAX_SIDE, depth - 10.0, rng.uniform(18.0, 34.0)))
        if w < _MIN_SIDE or d < _MIN_SIDE:
            return
        lshape = kind == "school" and rng.random() < 0.5
        outline = self._outline(w, d, lshape)
        outline -= np.array([w / 2, d / 2])
        self._add(
            outline, centre, ea, eb, w, d, lshape, tax, storeys, kind, block, angle
        )

    def fill_block(
        self,
        corners: FloatArray,
        centre: FloatArray,
        ea: FloatArray,
        eb: FloatArray,
        length: float,
        depth: float,
        block: int,
        angle: float,
    ) -> str:
        """Draw what a block holds and place its buildings.

        5 % of the blocks become parks, 4 % (those at least 45 x 35 m) hold one
        large building, the others are lined with buildings along both long
        sides (and, if deep enough, in the middle of their short sides). With a
        :class:`~torchgeo_quake.simulation.stock.StockModel`, a share
        ``block_vacancy`` of the blocks is first left without buildings (kind
        ``"open"``: open land inside the town).

        Args:
            corners: (4, 2) world corners of the block, counter-clockwise from
                the start of the long side that *eb* points away from
            centre: world centre of the block
            ea: unit vector along the block's long side
            eb: unit vector along its short side
            length: long side
            depth: short side
            block: block index
            angle: block orientation (degrees)

        Returns:
            The kind of the block: ``"park"``, ``"large"``, ``"regular"`` or
            (with a stock model) ``"open"``.

        .. versionchanged:: 0.3
           Open blocks of the calibrated stock model.
        """
        rng = self.rng
        if self.stock is not None and rng.random() < self.stock.block_vacancy:
            return "open"
        draw = rng.random()
        if draw < 0.05:
            return "park"
        if draw < 0.09 and length >= 45.0 and depth >= 35.0:
            self.fill_large(centre, ea, eb, length, depth, block, angle)
            return "large"
        row_cap = min(0.5 * depth - 0.5, rng.uniform(*self.city.row_depth_m))
        if depth < 2 * _MIN_SIDE + 3.0:
            self.fill_side(corners[0], ea, eb, length, depth - 1.0, block, angle)
            return "regular"
        self.fill_side(corners[0], ea, eb, length, row_cap, block, angle)
        self.fill_side(corners[2], -ea, -eb, length, row_cap, block, angle)
        middle = depth - 2.0 * (row_cap + 1.5)
        if middle >= _MIN_SIDE + 2.0:
            side_cap = min(row_cap, 0.5 * length - 1.0)
            start = corners[0] + (row_cap + 1.5) * eb
            self.fill_side(start, eb, ea, middle, side_cap, block, angle)
            start = corners[2] - (row_cap + 1.5) * eb
            self.fill_side(start, -eb, -ea, middle, side_cap, block, angle)
        return "regular"

    def candidates(self, grid: NeighbourhoodGrid) -> Candidates:
        """Collect the placed footprints.

        Args:
            grid: neighbourhood grid (for the cells)

        Returns:
            The candidates.
        """
        polygons = np.empty(len(self.vertices), dtype=object)
        for n in (4, 6):
            idx = [i for i, v in enumerate(self.vertices) if len(v) == n]
            if idx:
                coords = np.stack([self.vertices[i] for i in idx])
                polygons[idx] = shapely.polygons(coords)
        frame = pd.DataFrame(
            self.rows,
            columns=[
                "frontage",
                "depth",
                "lshape",
                "tax",
                "storeys",
                "kind",
                "block",
                "angle",
            ],
        )
        # Drop the later footprint of any touching or overlapping pair (rare:
        # neighbouring blocks tilted towards each other across a narrow street).
        tree = shapely.STRtree(polygons)
        left, right = tree.query(polygons, predicate="intersects")
        clash = left < right
        keep = np.ones(len(polygons), dtype=bool)
        keep[np.unique(right[clash])] = False
        polygons = polygons[keep]
        frame = frame[keep].reset_index(drop=True)
        centroids = shapely.centroid(polygons)
        x = shapely.get_x(centroids)
        y = shapely.get_y(centroids)
        return Candidates(
            polygons=polygons,
            x=np.asarray(x, np.float64),
            y=np.asarray(y, np.float64),
            frontage=frame["frontage"].to_numpy(np.float64),
            depth=frame["depth"].to_numpy(np.float64),
            angle_deg=frame["angle"].to_numpy(np.float64),
            lshape=frame["lshape"].to_numpy(bool),
            taxonomy=frame["tax"].to_numpy(np.int64),
            storeys=frame["storeys"].to_numpy(np.int64),
            kind=frame["kind"].to_numpy(object),
            block=frame["block"].to_numpy(np.int64),
            cell=grid.cell_of(x, y),
        )
