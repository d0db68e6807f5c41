"""GEM neighbourhoods of a simulated city: building-stock mixes on a grid.

The province mix of :class:`~torchgeo_quake.simulation.gem_tables.ExposureTable`
is re-weighted with the city's character (:func:`city_mix`: the
:class:`~torchgeo_quake.simulation.cities.CitySpec` material / storey /
occupancy multipliers: Nurdağı masonry, Kahramanmaraş mid-rise RC, Türkoğlu
unreinforced brick, ...). :func:`build_neighbourhoods` then lays a grid of
250-500 m cells over the city and tilts each cell's mix with a spatially
correlated "modernity" value (newer code levels, RC and taller buildings where
it is high; Osmaniye's old and new districts are sharply separated), which also
shifts the cell's construction periods. Each building's hidden taxonomy and
period are drawn from its cell (:class:`NeighbourhoodGrid`).

Its names were defined in :mod:`~torchgeo_quake.simulation.gem` before,
which still re-exports them.

.. versionadded:: 0.2
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from .cities import CitySpec
from .fields import gaussian_random_field

__all__ = [
    "MIN_CELL_SHARE",
    "PERIODS",
    "NeighbourhoodGrid",
    "build_neighbourhoods",
    "city_mix",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Construction periods (the bins of the paper's Fig. 2).
PERIODS: tuple[str, ...] = ("1960-1969", "1970-1979", "1980-1989", "1990-2000")

# Probability of each period per code level, before the neighbourhood tilt.
_PERIOD_BASE: dict[str, tuple[float, float, float, float]] = {
    "CDN": (0.35, 0.35, 0.20, 0.10),
    "CDL": (0.10, 0.35, 0.35, 0.20),
    "CDM": (0.01, 0.05, 0.24, 0.70),
    "CDH": (0.01, 0.01, 0.08, 0.90),
}
_PERIOD_TILT = np.array([-1.5, -0.5, 0.5, 1.5])

# Modernity score of each material group (newer stock is RC / steel).
_MATERIAL_MODERNITY: dict[str, float] = {
    "RC": 0.4,
    "S": 0.6,
    "W": -0.4,
    "MUR_CBH": -0.8,
    "MUR_BRICK": -1.0,
    "MUR_STONE": -1.2,
    "MUR_ADOBE": -1.4,
}
_CODE_MODERNITY: dict[str, float] = {"CDN": -0.3, "CDL": 0.0, "CDM": 0.7, "CDH": 1.0}

#: Smallest share a taxonomy keeps in a neighbourhood mix.
MIN_CELL_SHARE = 0.002


def _modernity_scores(stock: pd.DataFrame) -> FloatArray:
    """Modernity score of each taxonomy (newer code, RC and taller: higher).

    Args:
        stock: exposure rows with parsed attributes

    Returns:
        Scores, one per row.
    """
    material = stock["material_group"].map(_MATERIAL_MODERNITY).astype(float)
    code = stock["code"].map(_CODE_MODERNITY).astype(float)
    mid = 0.5 * (stock["storeys_min"] + stock["storeys_max"]).astype(float)
    return np.asarray(material + code + 0.12 * (mid - 2.5), dtype=np.float64)


def city_mix(stock: pd.DataFrame, city: CitySpec) -> FloatArray:
    """City-level taxonomy weights: the province mix with the city's character.

    Args:
        stock: the province's exposure rows
        city: the city

    Returns:
        Normalised weights, one per row of *stock*.

    .. versionadded:: 0.1
    """
    material = stock["material_group"].map(dict(city.material_weights)).fillna(1.0)
    occupancy = stock["occupancy"].map(dict(city.occupancy_weights)).fillna(1.0)
    storeys = [
        float(np.mean([city.storey_weight(s) for s in range(lo, hi + 1)]))
        for lo, hi in zip(stock["storeys_min"], stock["storeys_max"], strict=True)
    ]
    weights = (
        stock["buildings"].to_numpy(np.float64)
        * material.to_numpy(np.float64)
        * occupancy.to_numpy(np.float64)
        * np.asarray(storeys, dtype=np.float64)
    )
    total = weights.sum()
    if total <= 0:
        raise ValueError(f"the building-stock weights of {city.name} are all zero")
    return np.asarray(weights / total, dtype=np.float64)


@dataclass
class NeighbourhoodGrid:
    """GEM neighbourhood cells over a city with their building-stock mixes.

    Coordinates are local metres relative to the city centre (x east, y north).

    Attributes:
        stock: the province's exposure rows (one per taxonomy)
        cell_size: cell spacing in metres
        x0: x of the western edge of the grid
        y0: y of the southern edge of the grid
        nx: number of cells from west to east
        ny: number of cells from south to north
        modernity: (ny, nx) neighbourhood modernity, row 0 in the south
        mix: (ny * nx, n_taxonomies) taxonomy shares of each cell
        period_tilt: strength of the modernity shift of construction periods

    .. versionadded:: 0.1
    """

    stock: pd.DataFrame
    cell_size: float
    x0: float
    y0: float
    nx: int
    ny: int
    modernity: FloatArray
    mix: FloatArray
    period_tilt: float

    def __post_init__(self) -> None:
        """Precompute cumulative mixes for sampling."""
        self._cumulative = np.cumsum(self.mix, axis=1)
        self._cumulative /= self._cumulative[:, -1:]

    def cell_of(self, x: npt.ArrayLike, y: npt.ArrayLike) -> IntArray:
        """Index of the cell holding each point (clipped to the grid).

        Args:
            x: local x coordinates (metres)
            y: local y coordinates (metres)

        Returns:
            Flat cell indices (row-major, row 0 in the south).
        """
        ix = np.floor((np.asarray(x, dtype=np.float64) - self.x0) / self.cell_size)
        iy = np.floor((np.asarray(y, dtype=np.float64) - self.y0) / self.cell_size)
        ix = np.clip(ix, 0, self.nx - 1).astype(np.int64)
        iy = np.clip(iy, 0, self.ny - 1).astype(np.int64)
        return np.asarray(iy * self.nx + ix, dtype=np.int64)

    def cell_centre(self, cells: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Local coordinates of cell centres.

        Args:
            cells: flat cell indices

        Returns:
            (x, y) of the centres.
        """
        c = np.asarray(cells, dtype=np.int64)
        x = self.x0 + (c % self.nx + 0.5) * self.cell_size
        y = self.y0 + (c // self.nx + 0.5) * self.cell_size
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def draw_taxonomy(self, cell: int, u: float) -> int:
        """Draw one taxonomy from a cell's mix by inverse transform sampling.

        Args:
            cell: flat cell index
            u: uniform random number in [0, 1)

        Returns:
            Row index into :attr:`stock`.
        """
        row = self._cumulative[cell]
        return int(min(np.searchsorted(row, u, side="right"), row.size - 1))

    def draw_periods(
        self, codes: npt.ArrayLike, cells: npt.ArrayLike, u: npt.ArrayLike
    ) -> IntArray:
        """Draw construction periods for many buildings at once.

        Args:
            codes: GEM code level of each building
            cells: flat cell index of each building
            u: uniform random numbers in [0, 1), one per building

        Returns:
            Indices into :data:`PERIODS`.
        """
        base = np.array(
            [_PERIOD_BASE.get(str(c), _PERIOD_BASE["CDN"]) for c in np.asarray(codes)]
        ).reshape(-1, len(PERIODS))
        m = self.modernity.ravel()[np.asarray(cells, dtype=np.int64)]
        weights = base * np.exp(self.period_tilt * m[:, None] * _PERIOD_TILT[None, :])
        cdf = np.cumsum(weights, axis=1)
        cdf /= cdf[:, -1:]
        draws = (np.asarray(u, dtype=np.float64)[:, None] >= cdf).sum(axis=1)
        return np.asarray(np.minimum(draws, len(PERIODS) - 1), dtype=np.int64)

    def period_probabilities(self, code: str, cell: int) -> FloatArray:
        """Probabilities of the construction periods for a code level and cell.

        Args:
            code: GEM code level (CDN, CDL, CDM or CDH)
            cell: flat cell index

        Returns:
            Probabilities of :data:`PERIODS`.
        """
        base = np.asarray(_PERIOD_BASE.get(code, _PERIOD_BASE["CDN"]))
        m = float(self.modernity.flat[cell])
        weights = base * np.exp(self.period_tilt * m * _PERIOD_TILT)
        return np.asarray(weights / weights.sum(), dtype=np.float64)


def build_neighbourhoods(
    stock: pd.DataFrame,
    city: CitySpec,
    half_size: float,
    city_radius: float,
    rng: np.random.Generator,
) -> NeighbourhoodGrid:
    """Lay the GEM neighbourhood grid over a city and give each cell its mix.

    Each cell's modernity is ``0.8 * G + trend * (r / R - 0.7)`` with ``G`` a
    Gaussian random field (correlation length 1.5 cells) and ``r / R`` the
    distance from the centre relative to the city radius; in bimodal cities
    (Osmaniye) it is ``1.2 tanh(3 (0.5 G + 2 (r / R - 0.5)))``: an old core and
    new outer districts. The cell's mix is the city mix times
    ``exp(tilt * modernity * score)``, where the taxonomy score grows with code
    level, RC/steel material and height; shares below :data:`MIN_CELL_SHARE` are
    dropped.

    Args:
        stock: the province's exposure rows
        city: the city
        half_size: half the side of the square working area (metres)
        city_radius: rough radius of the built-up area (metres)
        rng: random generator

    Returns:
        The neighbourhood grid.

    .. versionadded:: 0.1
    """
    cell = city.gem_cell_m
    n = int(np.ceil(2 * half_size / cell)) + 1
    x0 = -0.5 * n * cell
    y0 = -0.5 * n * cell
    field = gaussian_random_field((n, n), cell, 1.5 * cell, rng)
    centres = x0 + (np.arange(n) + 0.5) * cell
    xx, yy = np.meshgrid(centres, centres)  # row 0 = southernmost (y0 first)
    r = np.hypot(xx, yy) / max(city_radius, 1.0)
    if city.modernity_bimodal:
        modernity = 1.2 * np.tanh(3.0 * (0.5 * field + 2.0 * (r - 0.5)))
    else:
        modernity = 0.8 * field + city.modernity_trend * (r - 0.7)
    base = city_mix(stock, city)
    score = _modernity_scores(stock)
    logits = city.modernity_tilt * modernity.reshape(-1, 1) * score[None, :]
    logits -= logits.max(axis=1, keepdims=True)
    mix = base[None, :] * np.exp(logits)
    mix /= mix.sum(axis=1, keepdims=True)
    mix[mix < MIN_CELL_SHARE] = 0.0
    mix /= mix.sum(axis=1, keepdims=True)
    tilt = 1.2 if city.modernity_bimodal else 0.7
    return NeighbourhoodGrid(
        stock=stock,
        cell_size=cell,
        x0=x0,
        y0=y0,
        nx=n,
        ny=n,
        modernity=np.asarray(modernity, dtype=np.float64),
        mix=np.asarray(mix, dtype=np.float64),
        period_tilt=tilt,
    )
