"""GEM's published exposure tables of the study provinces, read for the simulator.

The public GEM Global Exposure Model gives, per province (Adm1) of Turkey and
per taxonomy string, the number of buildings, floor area, replacement costs and
occupants, without coordinates. :func:`load_exposure` reads the rows of the
three study provinces (TR-27 Gaziantep, TR-46 Kahramanmaraş, TR-80 Osmaniye)
from ``Exposure_{Res,Com,Ind}_Turkey_Adm1.csv``, keeps the taxonomies whose
material and height are known (:func:`parse_taxonomies`) and divides the totals
by the number of buildings (:class:`ExposureTable`).

The files come from ``../shared/data/gem`` beside the repository by default.
Without them :func:`load_exposure` falls back (with a warning) to the built-in
table :data:`~torchgeo_quake.simulation.gem_fallback.FALLBACK_ROWS`: the
most common taxonomies of the three provinces covering 90 % of their buildings,
summarised from the same GEM files by :func:`summarise_exposure`. GEM data:
CC BY-NC-SA 4.0, © GEM Foundation.

Its names were defined in :mod:`~torchgeo_quake.simulation.gem` before,
which still re-exports them.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .gem_fallback import FALLBACK_COLUMNS, FALLBACK_ROWS

__all__ = [
    "DEFAULT_GEM_DIR",
    "GEM_FILES",
    "PROVINCES",
    "ExposureTable",
    "load_exposure",
    "parse_taxonomies",
    "summarise_exposure",
]

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
