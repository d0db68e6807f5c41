"""The GEM exposure feature vector: its names, meaning and computation.

Russo et al. (2025, Sec. II-B/II-C) enrich every building with attributes of the
GEM exposure model at the *nearest GEM data point* to its centroid: structural
typology, construction period, replacement costs and average occupancy. GEM
data points aggregate several assets (one per taxonomy string), so each location
is summarised by a fixed-length vector, :data:`GEM_FEATURE_NAMES`, in which every
mix is weighted by the number of buildings of each asset:

============================================  ======================================
name                                          meaning
============================================  ======================================
``frac_rc_infill`` ... ``frac_other``         fraction of buildings per
                                              :data:`~.taxonomy.STRUCTURE_CLASSES`
                                              class (8 values, sum 1)
``frac_code_cdn`` ... ``frac_code_cdh``       fraction of buildings per seismic code
                                              level; assets without a code level
                                              count in none (sum <= 1)
``mean_construction_year``                    mean construction year, see below
``mean_storeys``                              mean storeys above ground
``log_replacement_cost_per_building``         ``log1p`` of total replacement cost
                                              (USD) per building
``log_structural_cost_per_building``          ``log1p`` of structural cost per
                                              building (USD)
``log_nonstructural_cost_per_building``       ``log1p`` of non-structural cost per
                                              building (USD)
``occupants_night_per_building``              night-time occupants per building
``occupants_day_per_building``                day-time occupants per building
``frac_res``, ``frac_com``, ``frac_ind``      occupancy mix (sum 1)
============================================  ======================================

Construction year of an asset: the midpoint of its ``period`` (``YYYY-YYYY``)
where that column exists and is filled, else the date attribute of its taxonomy
string, else a proxy from its code level, :data:`CODE_LEVEL_YEAR` (Turkish
seismic code eras: no code before 1975, low code 1975-1997, moderate 1998-2007,
high code from 2008), else unknown. Storeys come from the taxonomy height. A
location without any known year (storeys) takes the building-weighted mean of the
whole file set, or :data:`DEFAULT_YEAR` (:data:`DEFAULT_STOREYS`) if none is
known at all, so vectors are always finite.

Occupancy of an asset: the ``OCCUPANCY`` column (``Res``/``Com``/``Ind``) of GEM's
aggregated files where present, else the taxonomy occupancy (``RES*`` -> res,
``COM*``, ``GOV*``, ``EDU*``, ``ASS*``, ``REL*``, ``HEA*``, ``ENT*`` -> com,
``IND*``, ``AGR*`` -> ind; mixed ``MIX1``/``MIX4`` "mostly residential" -> res,
``MIX2``/``MIX3`` "mostly commercial" -> com, ``MIX5``/``MIX6`` "mostly
industrial" -> ind), else a third to each.

Costs and occupants are totals per asset (OpenQuake's aggregated cost type and
GEM's ``OCCUPANTS_PER_ASSET_*``); the replacement cost is the ``total`` /
``TOTAL_REPL_COST_USD`` column if present, else structural + non-structural +
contents.

:class:`~torchgeo_quake.datasets.gem.GEMExposure` reads the files
(:mod:`~torchgeo_quake.datasets.gem_csv`) and uses this module to weight every
asset and to aggregate the weights of each location into its vector.

.. versionadded:: 0.2
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from .taxonomy import CODE_LEVELS, STRUCTURE_CLASSES, GEMTaxonomy

__all__ = [
    "CODE_LEVEL_YEAR",
    "DEFAULT_STOREYS",
    "DEFAULT_YEAR",
    "FEATURE_COLUMNS",
    "GEM_FEATURE_DESCRIPTIONS",
    "GEM_FEATURE_NAMES",
    "features_without",
]

_OCCUPANCIES = ("res", "com", "ind")

#: Names of the exposure feature vector, in order (see the module docstring).
GEM_FEATURE_NAMES: tuple[str, ...] = (
    *(f"frac_{c}" for c in STRUCTURE_CLASSES),
    *(f"frac_code_{c.lower()}" for c in CODE_LEVELS),
    "mean_construction_year",
    "mean_storeys",
    "log_replacement_cost_per_building",
    "log_structural_cost_per_building",
    "log_nonstructural_cost_per_building",
    "occupants_night_per_building",
    "occupants_day_per_building",
    *(f"frac_{o}" for o in _OCCUPANCIES),
)

_CLASS_TEXT = {
    "rc_infill": "reinforced-concrete infilled frames",
    "rc_wall_dual": "reinforced-concrete wall or dual frame-wall systems",
    "rc_other": "other reinforced concrete (moment frames, precast, unknown LLRS)",
    "urm": "unreinforced masonry",
    "rm_confined": "confined or reinforced masonry",
    "steel": "steel and other metal",
    "wood": "wood",
    "other": "earth, unreinforced concrete, other or unknown material",
}
_CODE_TEXT = {"CDN": "no", "CDL": "low", "CDM": "moderate", "CDH": "high"}

#: One-line description of every name in :data:`GEM_FEATURE_NAMES`.
GEM_FEATURE_DESCRIPTIONS: dict[str, str] = {
    **{f"frac_{c}": f"fraction of buildings: {t}" for c, t in _CLASS_TEXT.items()},
    **{
        f"frac_code_{c.lower()}": f"fraction of buildings with {t} seismic code ({c})"
        for c, t in _CODE_TEXT.items()
    },
    "mean_construction_year": "mean construction year (period, taxonomy date or "
    "code-level proxy)",
    "mean_storeys": "mean number of storeys above ground",
    "log_replacement_cost_per_building": "log1p(total replacement cost USD per "
    "building)",
    "log_structural_cost_per_building": "log1p(structural cost USD per building)",
    "log_nonstructural_cost_per_building": "log1p(non-structural cost USD per "
    "building)",
    "occupants_night_per_building": "night-time occupants per building",
    "occupants_day_per_building": "day-time occupants per building",
    "frac_res": "fraction of buildings with residential occupancy",
    "frac_com": "fraction of buildings with commercial/public occupancy",
    "frac_ind": "fraction of buildings with industrial/agricultural occupancy",
}

#: Canonical CSV columns (:data:`~.gem_csv.COLUMN_ALIASES`) the feature vector
#: is computed from: a model that uses the GEM vector needs all of them.
FEATURE_COLUMNS: tuple[str, ...] = (
    "taxonomy",
    "number",
    "structural",
    "nonstructural",
    "day",
    "night",
)

#: Features computed from each optional value column (the replacement cost also
#: from ``structural`` and ``nonstructural`` when there is no ``total``).
_FEATURES_OF_COLUMN: dict[str, str] = {
    "structural": "log_structural_cost_per_building",
    "nonstructural": "log_nonstructural_cost_per_building",
    "day": "occupants_day_per_building",
    "night": "occupants_night_per_building",
}


def features_without(absent: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Features that cannot be computed without some CSV columns.

    Args:
        absent: canonical columns missing from the files (e.g. ``["day"]``)

    Returns:
        Feature name -> the missing column(s) it needs, in
        :data:`GEM_FEATURE_NAMES` order.

    .. versionadded:: 0.2
    """
    missing: dict[str, str] = {}
    for column in absent:
        feature = _FEATURES_OF_COLUMN.get(column)
        if feature is not None:
            missing[feature] = column
    costs = [c for c in ("structural", "nonstructural") if c in absent]
    if costs and "total" in absent:
        missing["log_replacement_cost_per_building"] = " and ".join(["total", *costs])
    return {name: missing[name] for name in GEM_FEATURE_NAMES if name in missing}


#: Construction-year proxy of each code level (midpoints of the Turkish seismic
#: code eras: before 1975, 1975-1997, 1998-2007, 2008-2018).
CODE_LEVEL_YEAR: dict[str, float] = {
    "CDN": 1965.0,
    "CDL": 1986.0,
    "CDM": 2003.0,
    "CDH": 2013.0,
}

#: Construction year used when no asset of the whole file set has one.
DEFAULT_YEAR = 1986.0

#: Storeys used when no asset of the whole file set has a known height.
DEFAULT_STOREYS = 2.0


def _occupancy_of(taxonomy: GEMTaxonomy) -> str | None:
    """Coarse occupancy (res, com, ind) of a taxonomy string.

    Args:
        taxonomy: the parsed taxonomy

    Returns:
        ``"res"``, ``"com"``, ``"ind"`` or None if unknown.
    """
    code = (taxonomy.occupancy or "").upper()
    mixed = {"MIX1": "res", "MIX4": "res", "MIX2": "com", "MIX3": "com"}
    mixed |= {"MIX5": "ind", "MIX6": "ind"}
    if code[:4] in mixed:
        return mixed[code[:4]]
    if code.startswith("RES"):
        return "res"
    if code.startswith(("COM", "GOV", "EDU", "ASS", "REL", "HEA", "ENT")):
        return "com"
    if code.startswith(("IND", "AGR")):
        return "ind"
    return None


def _row_weights(
    rows: pd.DataFrame, taxonomies: dict[str, GEMTaxonomy]
) -> pd.DataFrame:
    """Per-asset quantities that are summed per location.

    Args:
        rows: canonical rows (see :class:`_CsvRows`)
        taxonomies: parsed taxonomy of every string in *rows*

    Returns:
        One row per asset: ``w`` (buildings), building-weighted class, code-level
        and occupancy indicators, weighted sums and weights of storeys and year,
        and the cost and occupant totals.
    """
    tax = rows["taxonomy"].map(taxonomies)
    number = rows["number"].to_numpy(np.float64)
    out: dict[str, npt.NDArray[np.float64]] = {"w": number}
    cls = tax.map(lambda t: t.structure_class).to_numpy()
    for name in STRUCTURE_CLASSES:
        out[f"frac_{name}"] = number * (cls == name)
    code = tax.map(lambda t: t.code_level).to_numpy()
    for level in CODE_LEVELS:
        out[f"frac_code_{level.lower()}"] = number * (code == level)
    storeys = np.array([t.height_storeys for t in tax], dtype=np.float64)
    tax_year = np.array([t.year_built for t in tax], dtype=np.float64)
    code_year = np.array([CODE_LEVEL_YEAR.get(c, np.nan) for c in code])
    year = rows["period_year"].to_numpy(np.float64)
    year = np.where(np.isnan(year), tax_year, year)
    year = np.where(np.isnan(year), code_year, year)
    for name, values in (("storeys", storeys), ("year", year)):
        known = ~np.isnan(values)
        out[f"{name}_sum"] = np.where(known, number * values, 0.0)
        out[f"{name}_w"] = np.where(known, number, 0.0)
    occupancy = np.array([_occupancy_of(t) or "" for t in tax], dtype=object)
    if "occupancy" in rows:
        column = rows["occupancy"].fillna("").str.lower().str[:3].to_numpy(object)
        given = np.isin(column, _OCCUPANCIES)
        occupancy = np.where(given, column, occupancy)
    unknown = ~np.isin(occupancy, _OCCUPANCIES)
    for name in _OCCUPANCIES:
        out[f"frac_{name}"] = number * ((occupancy == name) + unknown / 3)
    for name in ("total", "structural", "nonstructural", "night", "day"):
        out[name] = rows[name].to_numpy(np.float64)
    return pd.DataFrame(out, index=rows.index)


def _aggregate(
    rows: pd.DataFrame, weights: pd.DataFrame, keys: list[str]
) -> pd.DataFrame:
    """Sum the row weights per location and turn them into features.

    A location without any known construction year (storeys) takes the
    building-weighted mean of all of *weights*, else :data:`DEFAULT_YEAR`
    (:data:`DEFAULT_STOREYS`).

    Args:
        rows: canonical rows with the key columns (a subset of the rows of
            *weights*, same index)
        weights: :func:`_row_weights` of all rows of the file set
        keys: columns identifying a location

    Returns:
        One row per location: the keys, ``id_1``/``name_1`` where available,
        ``buildings``, ``assets`` and the features.
    """
    own = weights.loc[rows.index]
    grouped = pd.concat([rows[keys], own], axis=1).groupby(keys, sort=True)
    sums = grouped.sum()
    w = sums["w"].to_numpy()
    table = sums.index.to_frame(index=False)
    for name in ("id_1", "name_1"):
        if name in rows and name not in keys:
            table[name] = rows.groupby(keys, sort=True)[name].first().to_numpy()
    table["buildings"] = w
    table["assets"] = grouped.size().to_numpy()
    for name in GEM_FEATURE_NAMES:
        if name.startswith("frac_"):
            table[name] = sums[name].to_numpy() / w
    overall = weights.sum()
    for name, column, default in (
        ("year", "mean_construction_year", DEFAULT_YEAR),
        ("storeys", "mean_storeys", DEFAULT_STOREYS),
    ):
        known = sums[f"{name}_w"].to_numpy()
        fallback = default
        if overall[f"{name}_w"] > 0:
            fallback = overall[f"{name}_sum"] / overall[f"{name}_w"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums[f"{name}_sum"].to_numpy() / known
        table[column] = np.where(known > 0, mean, fallback)
    for name, label in (
        ("total", "replacement"),
        ("structural", "structural"),
        ("nonstructural", "nonstructural"),
    ):
        per_building = np.maximum(sums[name].to_numpy() / w, 0.0)
        table[f"log_{label}_cost_per_building"] = np.log1p(per_building)
    table["occupants_night_per_building"] = sums["night"].to_numpy() / w
    table["occupants_day_per_building"] = sums["day"].to_numpy() / w
    return table
