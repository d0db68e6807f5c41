"""GEM exposure for the simulator: building-stock mixes and point-asset CSVs.

The paper enriches every building with the attributes of the nearest point of
GEM's licensed high-resolution exposure model of Turkey (point assets on a
neighbourhood grid). The public GEM Global Exposure Model has the same taxonomy
strings, costs and occupants, aggregated per province (Adm1) without
coordinates. The simulator

1. reads each study province's rows (TR-46 Kahramanmaraş for Kahramanmaraş and
   Türkoğlu, TR-27 Gaziantep for Islahiye and Nurdağı, TR-80 Osmaniye) from
   ``Exposure_{Res,Com,Ind}_Turkey_Adm1.csv`` at simulation time, keeping the
   taxonomies whose material and height are known, with per-building floor
   area, replacement costs and occupants;
2. re-weights the province mix with the city's character (:class:`CitySpec`
   material / storey / occupancy multipliers: Nurdağı masonry, Kahramanmaraş
   mid-rise RC, Türkoğlu unreinforced brick, ...);
3. lays a neighbourhood grid (250-500 m cells) over the city and tilts each
   cell's mix with a spatially correlated "modernity" value (newer code levels,
   RC and taller buildings where it is high; Osmaniye's old and new districts
   are sharply separated), which also shifts the cell's construction periods;
4. draws each building's hidden taxonomy and period from its cell's mix, and
5. writes the cells as OpenQuake point assets (``gem.csv``; schema in
   ``docs/dev/contracts.md``): one row per taxonomy with its expected number of
   buildings, area, costs, occupants and modal construction period.

The GEM files come from ``../shared/data/gem`` beside the repository by default.
Without them :func:`load_exposure` falls back (with a warning) to the built-in
table :data:`~torchgeo_quake.simulation.gem_fallback.FALLBACK_ROWS`: the
most common taxonomies of the three provinces covering 90 % of their buildings,
summarised from the same GEM files by :func:`summarise_exposure`. GEM data:
CC BY-NC-SA 4.0, © GEM Foundation.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from pyproj import Transformer

from .cities import CitySpec
from .fields import gaussian_random_field
from .gem_fallback import FALLBACK_COLUMNS, FALLBACK_ROWS

__all__ = [
    "DEFAULT_GEM_DIR",
    "GEM_COLUMNS",
    "GEM_FILES",
    "MIN_ASSET_SHARE",
    "MIN_CELL_SHARE",
    "PERIODS",
    "PROVINCES",
    "ExposureTable",
    "NeighbourhoodGrid",
    "build_neighbourhoods",
    "city_mix",
    "gem_assets",
    "load_exposure",
    "parse_taxonomies",
    "summarise_exposure",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Default folder of the GEM Adm1 CSVs: ``../shared/data/gem`` next to the
#: repository root.
DEFAULT_GEM_DIR: Path = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gem"
)

#: GEM Global Exposure Model files read by :func:`load_exposure`.
GEM_FILES: tuple[str, ...] = (
    "Exposure_Res_Turkey_Adm1.csv",
    "Exposure_Com_Turkey_Adm1.csv",
    "Exposure_Ind_Turkey_Adm1.csv",
)

#: Provinces of the study area (GEM ``ID_1``).
PROVINCES: tuple[str, ...] = ("TR-27", "TR-46", "TR-80")

#: Columns of the point-asset CSV (OpenQuake exposure form).
GEM_COLUMNS: tuple[str, ...] = (
    "id",
    "lon",
    "lat",
    "taxonomy",
    "number",
    "area",
    "structural",
    "nonstructural",
    "contents",
    "day",
    "night",
    "transit",
    "period",
    "ID_1",
    "NAME_1",
)

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
#: Smallest share a taxonomy needs to be written as a GEM asset row.
MIN_ASSET_SHARE = 0.01


def _material_group(material: str) -> str | None:
    """Simulator material group of a GEM material attribute.

    Args:
        material: first attribute group of a taxonomy string (e.g. ``MUR+CBH``)

    Returns:
        One of :data:`MATERIAL_GROUPS`, or None for unknown / other materials.
    """
    head = material.split("+")[0]
    if head in ("CR", "MCF", "SRC"):
        return "RC"
    if head == "S":
        return "S"
    if head == "W":
        return "W"
    if head == "MUR":
        if "ADO" in material:
            return "MUR_ADOBE"
        if "CLB" in material:
            return "MUR_BRICK"
        if "ST" in material:
            return "MUR_STONE"
        return "MUR_CBH"
    return None


def parse_taxonomies(taxonomies: pd.Series) -> pd.DataFrame:
    """Parse the attributes the simulator needs from GEM taxonomy strings.

    Args:
        taxonomies: GEM taxonomy strings, e.g. ``CR/LFINF(MUR+CBH)+CDL+DUL/H:3/RES``

    Returns:
        Frame with the index of *taxonomies* and columns ``material_group`` (see
        :data:`MATERIAL_GROUPS`, None when unknown), ``code`` (CDN/CDL/CDM/CDH;
        CDN when no code is given, e.g. ``LWAL+DNO`` masonry), ``ductile`` (True
        for moderate or high ductility), ``storeys_min``, ``storeys_max`` (0 when
        unknown; ``HBET:10+`` is taken as 10-12) and ``occupancy`` (RES, COM, IND
        or MIX).

    .. versionadded:: 0.1
    """
    tax = taxonomies.astype(str)
    material = tax.str.split("/").str[0]
    groups = [_material_group(m) for m in material]
    code = tax.str.extract(r"\b(CD[NLMH])\b", expand=False).fillna("CDN")
    ductile = tax.str.contains(r"\bDU[MH]\b", regex=True)
    single = tax.str.extract(r"/H:(\d+)(?:/|$)", expand=False)
    between = tax.str.extract(r"/HBET:(\d+)-(\d+)(?:/|$)")
    open_ended = tax.str.extract(r"/HBET:(\d+)\+(?:/|$)", expand=False)
    lo = pd.to_numeric(single, errors="coerce")
    hi = lo.copy()
    lo = lo.fillna(pd.to_numeric(between[0], errors="coerce"))
    hi = hi.fillna(pd.to_numeric(between[1], errors="coerce"))
    top = pd.to_numeric(open_ended, errors="coerce")
    lo = lo.fillna(top)
    hi = hi.fillna(top + 2)
    occupancy = tax.str.split("/").str[-1].str.replace(r"\d+$", "", regex=True)
    occupancy = occupancy.where(occupancy.isin(["RES", "COM", "IND", "MIX"]), "RES")
    return pd.DataFrame(
        {
            "material_group": pd.Series(groups, index=tax.index, dtype=object),
            "code": code,
            "ductile": ductile.astype(bool),
            "storeys_min": lo.fillna(0).astype(np.int64),
            "storeys_max": hi.fillna(0).astype(np.int64),
            "occupancy": occupancy,
        },
        index=tax.index,
    )


@dataclass(frozen=True)
class ExposureTable:
    """Per-building GEM exposure of the study provinces.

    Attributes:
        frame: one row per province and taxonomy with columns ``province_id``,
            ``province_name``, ``taxonomy``, ``buildings`` and per-building
            ``area``, ``structural``, ``nonstructural``, ``contents``, ``day``,
            ``night``, ``transit``, plus the parsed attributes of
            :func:`parse_taxonomies`. Only taxonomies with a known material group
            and height are kept.
        source: folder the GEM files were read from, or ``"builtin"``

    .. versionadded:: 0.1
    """

    frame: pd.DataFrame
    source: str

    def province(self, province_id: str) -> pd.DataFrame:
        """Rows of one province.

        Args:
            province_id: GEM ``ID_1`` (e.g. ``"TR-46"``)

        Returns:
            The province's rows with a fresh 0..n-1 index.

        Raises:
            ValueError: If the province has no rows.
        """
        rows = self.frame[self.frame["province_id"] == province_id]
        if rows.empty:
            raise ValueError(
                f"GEM exposure ({self.source}) has no usable rows for province "
                f"{province_id!r}"
            )
        return rows.reset_index(drop=True)


def _per_building(raw: pd.DataFrame) -> pd.DataFrame:
    """Aggregate raw GEM Adm1 rows to per-building values per taxonomy.

    Args:
        raw: rows of the GEM Adm1 CSVs (any subset of provinces)

    Returns:
        Frame with the columns of :attr:`ExposureTable.frame` (parsed too).
    """
    sums = (
        raw.groupby(["ID_1", "NAME_1", "TAXONOMY"], sort=True)[
            [
                "BUILDINGS",
                "TOTAL_AREA_SQM",
                "COST_STRUCTURAL_USD",
                "COST_NONSTRUCTURAL_USD",
                "COST_CONTENTS_USD",
                "OCCUPANTS_PER_ASSET_DAY",
                "OCCUPANTS_PER_ASSET_NIGHT",
                "OCCUPANTS_PER_ASSET_TRANSIT",
            ]
        ]
        .sum()
        .reset_index()
    )
    sums = sums[sums["BUILDINGS"] > 0]
    n = sums["BUILDINGS"]
    frame = pd.DataFrame(
        {
            "province_id": sums["ID_1"].astype(str),
            "province_name": sums["NAME_1"].astype(str),
            "taxonomy": sums["TAXONOMY"].astype(str),
            "buildings": n.astype(float),
            "area": sums["TOTAL_AREA_SQM"] / n,
            "structural": sums["COST_STRUCTURAL_USD"] / n,
            "nonstructural": sums["COST_NONSTRUCTURAL_USD"] / n,
            "contents": sums["COST_CONTENTS_USD"] / n,
            "day": sums["OCCUPANTS_PER_ASSET_DAY"] / n,
            "night": sums["OCCUPANTS_PER_ASSET_NIGHT"] / n,
            "transit": sums["OCCUPANTS_PER_ASSET_TRANSIT"] / n,
        }
    ).reset_index(drop=True)
    return _with_attributes(frame)


def _with_attributes(frame: pd.DataFrame) -> pd.DataFrame:
    """Add parsed taxonomy attributes and drop rows the simulator cannot use.

    Args:
        frame: per-building exposure rows with a ``taxonomy`` column

    Returns:
        The usable rows (known material group and height) with attributes.
    """
    parsed = parse_taxonomies(frame["taxonomy"])
    frame = pd.concat([frame, parsed], axis=1)
    usable = frame["material_group"].notna() & (frame["storeys_min"] > 0)
    return frame[usable].reset_index(drop=True)


def _read_gem_dir(gem_dir: Path) -> pd.DataFrame:
    """Read the study provinces' rows of the GEM Adm1 CSVs in *gem_dir*.

    Args:
        gem_dir: folder holding :data:`GEM_FILES`

    Returns:
        The raw rows of the study provinces.

    Raises:
        FileNotFoundError: If the folder or one of the files is missing.
        ValueError: If a file lacks the GEM columns or holds no study province.
    """
    if not gem_dir.is_dir():
        raise FileNotFoundError(
            f"GEM exposure folder {str(gem_dir)!r} does not exist. Pass the folder "
            f"holding {', '.join(GEM_FILES)} (GEM Global Exposure Model, Turkey "
            "Adm1), or gem_dir='builtin' (--gem-dir builtin) to use the built-in "
            "summary table."
        )
    missing = [name for name in GEM_FILES if not (gem_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"GEM exposure file(s) {', '.join(missing)} missing in {str(gem_dir)!r}; "
            f"the folder must hold {', '.join(GEM_FILES)}. Use gem_dir='builtin' "
            "for the built-in summary table."
        )
    frames = []
    for name in GEM_FILES:
        path = gem_dir / name
        raw = pd.read_csv(path)
        needed = {"ID_1", "NAME_1", "TAXONOMY", "BUILDINGS", "TOTAL_AREA_SQM"}
        if not needed <= set(raw.columns):
            raise ValueError(
                f"{str(path)!r} is not a GEM Adm1 exposure CSV: it lacks "
                f"{sorted(needed - set(raw.columns))}"
            )
        frames.append(raw[raw["ID_1"].isin(PROVINCES)])
    raw = pd.concat(frames, ignore_index=True)
    missing = sorted(set(PROVINCES) - set(raw["ID_1"]))
    if missing:
        raise ValueError(f"GEM files in {str(gem_dir)!r} lack provinces {missing}")
    return raw


def _builtin_frame() -> pd.DataFrame:
    """The built-in fallback exposure table as a frame.

    Returns:
        Frame with the columns of :attr:`ExposureTable.frame`.
    """
    frame = pd.DataFrame(list(FALLBACK_ROWS), columns=list(FALLBACK_COLUMNS))
    return _with_attributes(frame)


def load_exposure(gem_dir: str | os.PathLike[str] | None = None) -> ExposureTable:
    """Load the per-building GEM exposure of the three study provinces.

    Args:
        gem_dir: folder with the GEM Adm1 CSVs (:data:`GEM_FILES`); None uses
            :data:`DEFAULT_GEM_DIR` when it exists and otherwise the built-in
            table (with a warning); ``"builtin"`` always uses the built-in table

    Returns:
        The exposure table and where it came from.

    Raises:
        FileNotFoundError: If an explicitly given folder or file is missing.
        ValueError: If the files are not GEM Adm1 exposure CSVs.

    .. versionadded:: 0.1
    """
    if gem_dir is not None and str(gem_dir) == "builtin":
        return ExposureTable(_builtin_frame(), "builtin")
    if gem_dir is None:
        if not DEFAULT_GEM_DIR.is_dir():
            warnings.warn(
                f"GEM exposure folder {str(DEFAULT_GEM_DIR)!r} not found; using the "
                "built-in summary of GEM's Turkey exposure (pass gem_dir= to use "
                "the full tables).",
                UserWarning,
                stacklevel=2,
            )
            return ExposureTable(_builtin_frame(), "builtin")
        gem_dir = DEFAULT_GEM_DIR
    folder = Path(gem_dir).expanduser().resolve()
    return ExposureTable(_per_building(_read_gem_dir(folder)), str(folder))


def summarise_exposure(
    gem_dir: str | os.PathLike[str], coverage: float = 0.9
) -> list[tuple[str, str, str, float, float, float, float, float, float, float, float]]:
    """Summarise the GEM files into the rows of the built-in fallback table.

    Keeps, per study province, the most common usable taxonomies until they
    cover *coverage* of its buildings. This is how
    :data:`~torchgeo_quake.simulation.gem_fallback.FALLBACK_ROWS` was
    made (values rounded).

    Args:
        gem_dir: folder with the GEM Adm1 CSVs
        coverage: share of each province's (usable) buildings to cover

    Returns:
        Rows in the order of
        :data:`~torchgeo_quake.simulation.gem_fallback.FALLBACK_COLUMNS`.

    .. versionadded:: 0.1
    """
    frame = _per_building(_read_gem_dir(Path(gem_dir)))
    Row = tuple[str, str, str, float, float, float, float, float, float, float, float]
    rows: list[Row] = []
    numeric = ["area", "structural", "nonstructural", "contents", "day", "night"]
    numeric.append("transit")
    digits = (1, 0, 0, 0, 3, 3, 3)
    for _, part in frame.groupby("province_id", sort=True):
        part = part.sort_values(["buildings", "taxonomy"], ascending=[False, True])
        share = part["buildings"].cumsum() / part["buildings"].sum()
        keep = part[(share.shift(fill_value=0.0) < coverage).to_numpy()]
        values = keep[numeric].to_numpy(np.float64)
        for k in range(len(keep)):
            v = [round(float(x), d) for x, d in zip(values[k], digits, strict=True)]
            rows.append(
                (
                    str(keep["province_id"].iloc[k]),
                    str(keep["province_name"].iloc[k]),
                    str(keep["taxonomy"].iloc[k]),
                    float(keep["buildings"].iloc[k]),
                    v[0],
                    v[1],
                    v[2],
                    v[3],
                    v[4],
                    v[5],
                    v[6],
                )
            )
    return rows


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


def gem_assets(
    grid: NeighbourhoodGrid,
    city: CitySpec,
    building_x: FloatArray,
    building_y: FloatArray,
    origin: tuple[float, float],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """GEM point assets of the cells that hold buildings.

    Every cell with at least one building gets one row per taxonomy whose share
    of the cell mix is at least :data:`MIN_ASSET_SHARE`, with ``number`` = share x
    number of buildings in the cell (GEM's expected counts, not the realised
    ones), area, costs and occupants from the province's per-building values
    times a cell-level cost factor (log-normal, 15 %), and the modal
    construction period of the taxonomy's code level in that cell.

    Args:
        grid: the neighbourhood grid
        city: the city
        building_x: local x of all building centroids (metres)
        building_y: local y of all building centroids (metres)
        origin: UTM 37N coordinates of the local origin (city centre)
        rng: random generator

    Returns:
        Frame with the columns :data:`GEM_COLUMNS`.

    .. versionadded:: 0.1
    """
    cells = grid.cell_of(building_x, building_y)
    occupied, counts = np.unique(cells, return_counts=True)
    cx, cy = grid.cell_centre(occupied)
    to_wgs84 = Transformer.from_crs("EPSG:32637", "EPSG:4326", always_xy=True)
    lon, lat = to_wgs84.transform(cx + origin[0], cy + origin[1])
    cost_factor = rng.lognormal(0.0, 0.15, size=occupied.size)
    stock = grid.stock
    records: list[dict[str, object]] = []
    for k, (c, count) in enumerate(zip(occupied, counts, strict=True)):
        shares = grid.mix[c]
        keep = np.flatnonzero(shares >= MIN_ASSET_SHARE)
        kept = shares[keep] / shares[keep].sum()
        for j, (t, share) in enumerate(zip(keep, kept, strict=True)):
            row = stock.iloc[int(t)]
            number = float(share * count)
            period = PERIODS[int(np.argmax(grid.period_probabilities(row["code"], c)))]
            records.append(
                {
                    "id": f"{city.slug}_{int(c):05d}_{j:03d}",
                    "lon": round(float(lon[k]), 6),
                    "lat": round(float(lat[k]), 6),
                    "taxonomy": row["taxonomy"],
                    "number": round(number, 4),
                    "area": round(number * float(row["area"]), 1),
                    "structural": round(
                        number * float(row["structural"]) * cost_factor[k]
                    ),
                    "nonstructural": round(
                        number * float(row["nonstructural"]) * cost_factor[k]
                    ),
                    "contents": round(number * float(row["contents"]) * cost_factor[k]),
                    "day": round(number * float(row["day"]), 3),
                    "night": round(number * float(row["night"]), 3),
                    "transit": round(number * float(row["transit"]), 3),
                    "period": period,
                    "ID_1": city.province_id,
                    "NAME_1": city.province_name,
                }
            )
    return pd.DataFrame.from_records(records, columns=list(GEM_COLUMNS))
