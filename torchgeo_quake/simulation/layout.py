"""Street grids, blocks and building footprints of a simulated city.

Layout model (local metres, x east, y north, origin at the city centre):

* **Street grid** - a grid rotated by the city's block orientation (plus a few
  degrees per block) with irregular block lengths and depths and streets of
  varying width (one street in ten is a wider avenue); block edges are jittered
  inwards so streets are not perfectly uniform. The grid covers a disc (the
  *working area*) larger than the city.
* **Blocks** - 5 % become parks, 4 % hold one large building (school, mosque,
  industrial or commercial hall), the rest are lined with buildings.
* **Buildings** - walking along each long side of a block, each plot draws its
  hidden GEM taxonomy from the neighbourhood mix at that spot
  (:class:`~torchgeo_quake.simulation.gem.NeighbourhoodGrid`); the
  taxonomy fixes the number of storeys and, through GEM's floor area per
  building, the footprint area. Footprints are street-aligned rectangles or
  L-shapes (a rear corner cut out), 8-40 m on a side, set back from the street,
  separated by side gaps that depend on the building type (terraced shops,
  detached apartment blocks, houses with gardens). Rows on the two long sides are
  capped in depth so they never meet; deep blocks also get buildings in the
  middle of their short sides. Footprints never overlap.
* **Selection** - the city is the set of candidates with the highest
  "urbanisation" score ``-r / R + 0.2 * G`` (``r`` an anisotropic distance from
  the centre, ``R`` the radius that holds the target count at the layout's
  density, ``G`` a Gaussian random field with 300 m correlation; candidates
  beyond ``1.3 R`` are never chosen), so its edge is ragged. Exactly the
  target number of buildings is kept; the SAR image is their bounding box
  grown by 60-100 m on each side, and its near-range swath edge (parallel to
  the satellite track) is placed 70 m from the closest building, usually
  cutting a nodata wedge from one corner. Every kept building's 32 x 32-pixel
  (80 m) window therefore lies inside valid SAR data, with at least 60 m
  between its centroid and any image edge or nodata. A further ~2 % of
  candidates whose centroid lies outside the valid SAR area (beyond the image
  edge or in the nodata wedge) are kept as the buildings the SAR image misses;
  all other candidates are dropped.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from .cities import CitySpec
from .fields import gaussian_random_field
from .gem import NeighbourhoodGrid

__all__ = [
    "BUILDING_KINDS",
    "EXTRA_SHARE",
    "IMAGE_MARGIN_M",
    "NODATA_MARGIN_M",
    "Candidates",
    "Selection",
    "StreetGrid",
    "generate_candidates",
    "select_buildings",
]

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

#: Smallest distance between a kept building's centroid and an image edge.
IMAGE_MARGIN_M = 60.0
#: Distance between the closest kept building's centroid and the swath edge.
NODATA_MARGIN_M = 70.0
#: Share of extra buildings outside the valid SAR area (relative to the count).
EXTRA_SHARE = 0.02

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
class StreetGrid:
    """Blocks and main roads of a city.

    Attributes:
        blocks: block polygons (local metres)
        kind: ``"regular"``, ``"park"`` or ``"large"`` per block
        angle_deg: orientation of each block (degrees counter-clockwise from east)
        arterials: centre lines of the two avenues crossing the city
        arterial_width: widths of the avenues (metres)
        road_width: typical street width of the city (metres)

    .. versionadded:: 0.1
    """

    blocks: ObjectArray
    kind: ObjectArray
    angle_deg: FloatArray
    arterials: ObjectArray
    arterial_width: FloatArray
    road_width: float


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


def _breaks(
    rng: np.random.Generator,
    extent: float,
    block: tuple[float, float],
    road: tuple[float, float],
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Alternating block and street intervals along one grid axis.

    Args:
        rng: random generator
        extent: the axis is covered from -extent to +extent
        block: range of block lengths
        road: range of street widths

    Returns:
        (blocks, streets): lists of (start, end) intervals.
    """
    blocks: list[tuple[float, float]] = []
    streets: list[tuple[float, float]] = []
    t = -extent - rng.uniform(0.0, block[1])
    while t < extent:
        length = rng.uniform(*block)
        blocks.append((t, t + length))
        width = rng.uniform(*road) * (1.8 if rng.random() < 0.1 else 1.0)
        streets.append((t + length, t + length + width))
        t += length + width
    return blocks, streets


class _Placer:
    """Places footprints along block sides (internal helper of the layout)."""

    def __init__(
        self,
        city: CitySpec,
        grid: NeighbourhoodGrid,
        rng: np.random.Generator,
    ) -> None:
        """Initialise the placer.

        Args:
            city: the city
            grid: neighbourhood grid with the taxonomy mixes
            rng: random generator
        """
        self.city = city
        self.grid = grid
        self.rng = rng
        stock = grid.stock
        self.area = stock["area"].to_numpy(np.float64)
        self.smin = stock["storeys_min"].to_numpy(np.int64)
        self.smax = stock["storeys_max"].to_numpy(np.int64)
        self.occupancy = stock["occupancy"].to_numpy(object)
        self.material = stock["material_group"].to_numpy(object)
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
        area = float(self.area[tax]) / mid * math.exp(rng.normal(0.0, 0.3))
        area = min(max(area, 70.0), 1400.0)
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
            w = min(max(w, _MIN_SIDE), _MAX_SIDE)
            d = min(max(d, _MIN_SIDE), _MAX_SIDE, depth_cap - setback)
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


def generate_candidates(
    city: CitySpec,
    grid: NeighbourhoodGrid,
    radius: float,
    rng: np.random.Generator,
) -> tuple[StreetGrid, Candidates]:
    """Lay out streets, blocks and candidate buildings over a disc.

    Args:
        city: the city
        grid: neighbourhood grid with the taxonomy mixes
        radius: radius of the working area (metres)
        rng: random generator

    Returns:
        The street grid and the candidate buildings.

    .. versionadded:: 0.1
    """
    theta = math.radians(city.block_orientation_deg)
    e_u = np.array([math.cos(theta), math.sin(theta)])
    e_v = np.array([-math.sin(theta), math.cos(theta)])
    extent = radius * math.sqrt(2.0)
    u_blocks, u_streets = _breaks(rng, extent, city.block_length_m, city.road_width_m)
    v_blocks, v_streets = _breaks(rng, extent, city.block_depth_m, city.road_width_m)
    placer = _Placer(city, grid, rng)
    polygons: list[shapely.Polygon] = []
    kinds: list[str] = []
    angles: list[float] = []
    for u0, u1 in u_blocks:
        for v0, v1 in v_blocks:
            uc, vc = 0.5 * (u0 + u1), 0.5 * (v0 + v1)
            centre = uc * e_u + vc * e_v
            if math.hypot(*centre) > radius:
                continue
            # Jitter the block edges inwards and its orientation a little.
            shrink = rng.uniform(0.0, 2.0, size=4)
            lu = (u1 - u0) - shrink[0] - shrink[1]
            lv = (v1 - v0) - shrink[2] - shrink[3]
            centre = centre + 0.5 * (shrink[0] - shrink[1]) * e_u
            centre = centre + 0.5 * (shrink[2] - shrink[3]) * e_v
            tilt = float(np.clip(rng.normal(0.0, 1.0), -2.0, 2.0))
            angle = city.block_orientation_deg + tilt
            t = math.radians(angle)
            eu = np.array([math.cos(t), math.sin(t)])
            ev = np.array([-math.sin(t), math.cos(t)])
            if lu >= lv:
                ea, eb, length, depth = eu, ev, lu, lv
            else:
                ea, eb, length, depth = ev, -eu, lv, lu
            corners = np.array(
                [
                    centre - 0.5 * length * ea - 0.5 * depth * eb,
                    centre + 0.5 * length * ea - 0.5 * depth * eb,
                    centre + 0.5 * length * ea + 0.5 * depth * eb,
                    centre - 0.5 * length * ea + 0.5 * depth * eb,
                ]
            )
            index = len(polygons)
            polygons.append(shapely.Polygon(corners))
            angles.append(angle)
            draw = rng.random()
            if draw < 0.05:
                kinds.append("park")
                continue
            if draw < 0.09 and length >= 45.0 and depth >= 35.0:
                kinds.append("large")
                placer.fill_large(centre, ea, eb, length, depth, index, angle)
                continue
            kinds.append("regular")
            row_cap = min(0.5 * depth - 0.5, rng.uniform(*city.row_depth_m))
            if depth < 2 * _MIN_SIDE + 3.0:
                placer.fill_side(corners[0], ea, eb, length, depth - 1.0, index, angle)
                continue
            placer.fill_side(corners[0], ea, eb, length, row_cap, index, angle)
            placer.fill_side(corners[2], -ea, -eb, length, row_cap, index, angle)
            middle = depth - 2.0 * (row_cap + 1.5)
            if middle >= _MIN_SIDE + 2.0:
                side_cap = min(row_cap, 0.5 * length - 1.0)
                start = corners[0] + (row_cap + 1.5) * eb
                placer.fill_side(start, eb, ea, middle, side_cap, index, angle)
                start = corners[2] - (row_cap + 1.5) * eb
                placer.fill_side(start, -eb, -ea, middle, side_cap, index, angle)
    candidates = placer.candidates(grid)
    # Avenues: the streets closest to the centre along both grid axes.
    u_mid = min(u_streets, key=lambda s: abs(s[0] + s[1]))
    v_mid = min(v_streets, key=lambda s: abs(s[0] + s[1]))
    uc = 0.5 * (u_mid[0] + u_mid[1])
    vc = 0.5 * (v_mid[0] + v_mid[1])
    arterials = np.empty(2, dtype=object)
    arterials[0] = shapely.LineString(
        [uc * e_u - extent * e_v, uc * e_u + extent * e_v]
    )
    arterials[1] = shapely.LineString(
        [vc * e_v - extent * e_u, vc * e_v + extent * e_u]
    )
    widths = np.array([max(u_mid[1] - u_mid[0], 12.0), max(v_mid[1] - v_mid[0], 12.0)])
    streets = StreetGrid(
        blocks=np.asarray(polygons, dtype=object),
        kind=np.asarray(kinds, dtype=object),
        angle_deg=np.asarray(angles, dtype=np.float64),
        arterials=arterials,
        arterial_width=widths,
        road_width=float(np.mean(city.road_width_m)),
    )
    return streets, candidates


@dataclass
class Selection:
    """The buildings a city keeps and the extent of its SAR image.

    Attributes:
        valid: positions (in the candidates) of the buildings inside the valid
            SAR area, which form the Table II counts
        extra: positions of the extra buildings outside the valid SAR area
        bounds: SAR image bounds (left, bottom, right, top), local metres,
            multiples of 5 m
        valid_area: polygon of valid (non-nodata) SAR data, local metres
        swath_normal: unit normal of the swath edge, pointing into the image
        swath_offset: the swath edge is ``normal . p = offset``

    .. versionadded:: 0.1
    """

    valid: IntArray
    extra: IntArray
    bounds: tuple[float, float, float, float]
    valid_area: shapely.Polygon
    swath_normal: FloatArray
    swath_offset: float


def city_radius(city: CitySpec, count: int) -> float:
    """Radius of a disc holding *count* buildings at the city's density.

    Args:
        city: the city
        count: number of buildings

    Returns:
        The radius in metres.

    .. versionadded:: 0.1
    """
    return math.sqrt(count / (math.pi * city.density_per_km2 / 1e6))


def select_buildings(
    city: CitySpec,
    candidates: Candidates,
    count: int,
    radius: float,
    rng: np.random.Generator,
) -> Selection | None:
    """Choose the city's buildings and the SAR image extent.

    Args:
        city: the city
        candidates: candidate buildings over the working area
        count: number of buildings the valid SAR area must hold
        radius: radius of the working area (metres)
        rng: random generator

    Returns:
        The selection, or None if the working area is too small for *count*
        buildings with the margins around them (the caller then enlarges it).

    .. versionadded:: 0.1
    """
    n_extra = max(1, round(EXTRA_SHARE * count))
    if len(candidates) < count + n_extra:
        return None
    stretch = math.sqrt(city.elongation)
    r = np.hypot(candidates.x * stretch, candidates.y / stretch)
    inner = 0.8 * radius
    density = np.count_nonzero(r < inner) / (math.pi * inner**2)
    r_need = math.sqrt(count / (math.pi * max(density, 1e-9)))
    while np.count_nonzero(r <= 1.3 * r_need) < count:
        r_need *= 1.05
        if 1.3 * r_need > radius:
            return None
    cell = 50.0
    n = math.ceil(2 * radius / cell) + 1
    noise = gaussian_random_field((n, n), cell, 300.0, rng)
    col = np.clip(((candidates.x + radius) / cell).astype(int), 0, n - 1)
    row = np.clip(((radius - candidates.y) / cell).astype(int), 0, n - 1)
    score = -r / r_need + 0.2 * noise[row, col]
    score[r > 1.3 * r_need] = -np.inf
    order = np.argsort(-score, kind="stable")
    valid = np.sort(order[:count])
    vx, vy = candidates.x[valid], candidates.y[valid]
    pads = IMAGE_MARGIN_M + rng.uniform(0.0, 40.0, size=4)
    left = math.floor((vx.min() - pads[0]) / 5.0) * 5.0
    bottom = math.floor((vy.min() - pads[1]) / 5.0) * 5.0
    right = math.ceil((vx.max() + pads[2]) / 5.0) * 5.0
    top = math.ceil((vy.max() + pads[3]) / 5.0) * 5.0
    if max(-left, -bottom, right, top) + 250.0 > radius:
        return None
    heading = math.radians(city.heading_deg)
    normal = np.array([math.cos(heading), -math.sin(heading)])
    if (normal[0] > 0) != (city.sensor_side == "WEST"):
        normal = -normal
    offset = float(np.min(normal[0] * vx + normal[1] * vy)) - NODATA_MARGIN_M
    rect = shapely.box(left, bottom, right, top)
    big = 10.0 * radius
    along = np.array([-normal[1], normal[0]])
    foot = offset * normal
    half_plane = shapely.Polygon(
        [
            foot - big * along,
            foot + big * along,
            foot + big * along + big * normal,
            foot - big * along + big * normal,
        ]
    )
    valid_area = shapely.intersection(rect, half_plane)
    rest = np.setdiff1d(np.arange(len(candidates)), valid)
    points = shapely.points(candidates.x[rest], candidates.y[rest])
    distance = shapely.distance(valid_area, points)
    eligible = rest[(distance >= 3.0) & (distance <= 120.0)]
    if eligible.size == 0:
        return None
    extra = np.sort(
        rng.choice(eligible, size=min(n_extra, eligible.size), replace=False)
    )
    return Selection(
        valid=valid.astype(np.int64),
        extra=extra.astype(np.int64),
        bounds=(left, bottom, right, top),
        valid_area=valid_area,
        swath_normal=normal,
        swath_offset=offset,
    )
