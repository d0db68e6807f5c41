"""The simulator's calibration table: each statistic simulated vs its reference.

Issue 14 ("Measured, not assumed") asks for a table, computed by a script
(``docs/scripts/simulator_calibration.py``), that sets every calibrated
property of a simulated scene beside its public reference; docs/simulator.md
includes the Markdown that
:func:`~torchgeo_quake.realism.markdown.format_markdown`
writes. The rows:

Footprints (:func:`footprint_rows`)
    Per city: number and median footprint area of the destroyed buildings,
    destroyed/all median area ratio, clustering share (destroyed buildings with
    another destroyed centroid inside their 80 m patch), area spanned (union of
    250 m cells; convex hull) and building density, beside the same statistics
    of the real HOTOSM destroyed layer in the city's box
    (:mod:`~torchgeo_quake.simulation.reference_stats`). The real layer lists
    destroyed buildings only: its destroyed/all ratio cannot be measured (left
    empty) and its density is an estimate
    (:func:`~torchgeo_quake.simulation.reference_stats.real_density_estimate`).
    Counts, spans and clustering depend on the scene's scale: compare them at
    scale 1.

Collapse rates (:func:`collapse_rates`)
    Share of collapsed buildings (``damage_grade == 2`` in ``truth.csv``,
    buildings inside the SAR image) per material (RC, masonry, other) x
    storeys class (1-2, 3-5, 6+), beside the mean collapse probability that
    GEM's vulnerability functions give the same buildings at their simulated
    shaking (:func:`gem_collapse_probability`: the taxonomy's functions
    averaged with the mapping weights,
    :func:`~torchgeo_quake.simulation.damage_gem.taxonomy_collapse_probability`,
    collapse loss ratio
    :data:`~torchgeo_quake.simulation.damage_gem.COLLAPSE_LOSS_RATIO`). The
    intensities come from the city's ``pga.tif`` (one band per IMT) where the
    scene has one, else from ``truth.csv``'s ``pga_g`` with the Eurocode 8
    spectrum shape
    (:func:`~torchgeo_quake.simulation.damage_gem.design_spectrum_imts`). The
    simulated rates follow Table II's exact damaged counts, GEM's are
    unconditional: :func:`collapse_level` sets the overall collapsed share
    beside GEM's at collapse loss ratios from 0.6 to 0.99
    (:data:`COLLAPSE_BAND`); across classes, compare the pattern.

SAR-only difficulty and transfer
    Within-city AUROC of single features and of gradient boosting on the SAR
    patch, leave-one-city-out AUROC of single inputs
    (:mod:`~torchgeo_quake.realism.features`), and the CNN's
    SAR + FTP leave-one-city-out AUROC from a protocol result folder
    (:func:`read_loco_auroc`) beside the paper's Table IV.

.. versionadded:: 0.3
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..paper import CITY_NAMES, CITY_SLUGS, INPUT_CONFIGURATIONS
from ..simulation.reference_stats import (
    FootprintStats,
    real_density_estimate,
    real_stats,
    simulated_stats,
)
from ..simulation.scene_record import scene_scenario
from .features import (
    CUE_FEATURE_BOUND,
    MATERIAL_CLASSES,
    PAPER_LOCO_AUROC,
    SAR_FEATURE_BOUND,
    SCALAR_FEATURES,
    STOREY_CLASSES,
    loco_auroc,
    material_class,
    pooled_boosting_auroc,
    read_truth,
    sample_features,
    storey_class,
    within_city_auroc,
)

__all__ = [
    "COLLAPSE_BAND",
    "calibration_table",
    "collapse_level",
    "collapse_rates",
    "footprint_rows",
    "gem_collapse_probability",
    "read_loco_auroc",
]

FloatArray = npt.NDArray[np.float64]

#: Collapse loss ratios spanning GEM's consequence model from "extensive"
#: (damage-to-loss ratio 0.60) to "complete" (1.00; a beta loss ratio never
#: reaches 1, hence 0.99): the band of GEM collapse rates that
#: :func:`collapse_level` sets beside the simulated one.
COLLAPSE_BAND: tuple[float, float] = (0.6, 0.99)


def gem_collapse_probability(
    truth: pd.DataFrame,
    root: str | os.PathLike[str],
    vulnerability_dir: str | os.PathLike[str] | None = None,
    loss_ratio: float | None = None,
) -> tuple[FloatArray, dict[str, str]]:
    """GEM's collapse probability of each building at its simulated shaking.

    Args:
        truth: ``truth.csv`` rows with ``city``, ``taxonomy``, ``pga_g``,
            ``x_utm`` and ``y_utm``
        root: the scene folder (for the cities' ``pga.tif``)
        vulnerability_dir: GEM vulnerability folder (None: the default of
            :func:`~torchgeo_quake.simulation.vulnerability.load_vulnerability`)
        loss_ratio: collapse loss ratio (None:
            :data:`~torchgeo_quake.simulation.damage_gem.COLLAPSE_LOSS_RATIO`)

    Returns:
        The probabilities (aligned with *truth*) and, per city, where the
        intensities came from.

    Raises:
        KeyError: If a taxonomy is not in GEM's mapping.

    .. versionadded:: 0.3
    """
    from ..simulation.damage_gem import (
        COLLAPSE_LOSS_RATIO,
        design_spectrum_imts,
        taxonomy_collapse_probability,
    )
    from ..simulation.vulnerability import IMTS, load_vulnerability

    model = load_vulnerability(vulnerability_dir)
    out = np.zeros(len(truth))
    sources: dict[str, str] = {}
    for city, rows in truth.groupby("city", sort=False):
        where = truth.index.get_indexer(rows.index)
        imts = _shakemap_intensities(Path(root) / str(city) / "pga.tif", rows)
        if imts is None or not set(IMTS) <= set(imts):
            pga = rows["pga_g"].to_numpy(np.float64)
            shape = design_spectrum_imts(1.0)
            imts = {imt: pga * shape[imt] for imt in IMTS}
            sources[str(city)] = "truth.csv pga_g x Eurocode 8 spectrum shape"
        else:
            sources[str(city)] = "pga.tif"
        taxonomy = rows["taxonomy"].to_numpy(object)
        out[where] = taxonomy_collapse_probability(
            model,
            taxonomy,
            imts,
            COLLAPSE_LOSS_RATIO if loss_ratio is None else loss_ratio,
        )
    return out, sources


def _shakemap_intensities(
    path: Path, rows: pd.DataFrame
) -> dict[str, FloatArray] | None:
    """Intensities of a city's ``pga.tif`` at the building centroids.

    Args:
        path: the ShakeMap-like GeoTIFF (one band per IMT, tag ``IMT``)
        rows: buildings with ``x_utm`` and ``y_utm``

    Returns:
        IMT -> intensities (g), or None without the file.
    """
    if not path.is_file():
        return None
    import rasterio

    xy = list(zip(rows["x_utm"], rows["y_utm"], strict=True))
    with rasterio.open(path) as src:
        names = [
            src.tags(band).get("IMT") or str(src.descriptions[band - 1]).split()[0]
            for band in range(1, src.count + 1)
        ]
        values = np.array(list(src.sample(xy)), dtype=np.float64)
    return {name: values[:, i] for i, name in enumerate(names)}


def collapse_rates(
    truth: pd.DataFrame, gem_probability: npt.ArrayLike | None = None
) -> pd.DataFrame:
    """Collapse rate by material x storeys class, simulated vs GEM's functions.

    Only buildings inside the SAR image (``in_sar``) count; a building is
    collapsed when its ``damage_grade`` is 2.

    Args:
        truth: ``truth.csv`` rows (:func:`.features.read_truth`)
        gem_probability: GEM collapse probability per row of *truth*
            (:func:`gem_collapse_probability`); None leaves ``gem_rate`` NaN

    Returns:
        One row per (material, storeys) class present, in the order of
        :data:`MATERIAL_CLASSES` x :data:`STOREY_CLASSES`: ``buildings``,
        ``collapsed``, ``simulated_rate`` and ``gem_rate`` (mean GEM
        probability).

    Raises:
        ValueError: If *gem_probability* does not match *truth*.

    .. versionadded:: 0.3
    """
    rows = truth.copy()
    if gem_probability is None:
        rows["gem"] = np.nan
    else:
        probability = np.asarray(gem_probability, np.float64)
        if probability.shape != (len(truth),):
            raise ValueError(
                f"gem_probability has shape {probability.shape}; expected one "
                f"value per truth row ({len(truth)})"
            )
        rows["gem"] = probability
    rows = rows.loc[rows["in_sar"].astype(bool)]
    rows = rows.assign(
        material_class=material_class(rows["material"]),
        storeys_class=storey_class(rows["storeys"]),
        collapsed=(rows["damage_grade"] == 2).astype(np.int64),
    )
    table = rows.groupby(["material_class", "storeys_class"]).agg(
        buildings=("collapsed", "size"),
        collapsed=("collapsed", "sum"),
        gem_rate=("gem", "mean"),
    )
    table["simulated_rate"] = table["collapsed"] / table["buildings"]
    order = [
        (m, s[0])
        for m in MATERIAL_CLASSES
        for s in STOREY_CLASSES
        if (m, s[0]) in table.index
    ]
    table = table.reindex(pd.MultiIndex.from_tuples(order, names=table.index.names))
    return table[["buildings", "collapsed", "simulated_rate", "gem_rate"]]


def collapse_level(
    truth: pd.DataFrame, root: str | os.PathLike[str]
) -> dict[str, dict[str, float]]:
    """Share of collapsed buildings, simulated vs GEM's, per city and overall.

    Args:
        truth: ``truth.csv`` rows of the scene
        root: the scene folder

    Returns:
        ``"all"`` and each city -> ``simulated`` (collapsed share of the
        buildings in the SAR image), ``gem`` (GEM's mean collapse probability
        at the default collapse loss ratio) and ``gem_low`` / ``gem_high``
        (at the loss ratios :data:`COLLAPSE_BAND`, high and low).

    .. versionadded:: 0.3
    """
    counted = truth["in_sar"].astype(bool).to_numpy()
    collapsed = (truth["damage_grade"] == 2).to_numpy()
    gem = {
        "gem": gem_collapse_probability(truth, root)[0],
        "gem_low": gem_collapse_probability(truth, root, loss_ratio=COLLAPSE_BAND[1])[
            0
        ],
        "gem_high": gem_collapse_probability(truth, root, loss_ratio=COLLAPSE_BAND[0])[
            0
        ],
    }
    city = truth["city"].astype(str).to_numpy()
    out: dict[str, dict[str, float]] = {}
    for name in ["all", *dict.fromkeys(city)]:
        keep = counted & ((city == name) if name != "all" else True)
        out[name] = {"simulated": float(collapsed[keep].mean())}
        out[name].update({k: float(v[keep].mean()) for k, v in gem.items()})
    return out


def footprint_rows(
    root: str | os.PathLike[str],
    cities: Sequence[str],
    real: Mapping[str, FootprintStats] | None = None,
) -> list[dict[str, Any]]:
    """Footprint statistics of each simulated city beside the real layer's.

    Args:
        root: simulated scene folder
        cities: city slugs
        real: real statistics per city (default:
            :func:`~torchgeo_quake.simulation.reference_stats.real_stats` of
            the HOTOSM layer beside the repository)

    Returns:
        One dict per city: ``city``, ``simulated`` and ``real`` (None when the
        layer has no building in the box), each with ``count``,
        ``median_area_destroyed_m2``, ``median_area_all_m2`` and
        ``area_ratio`` (real: None), ``cluster_share``, ``cell_area_km2``,
        ``hull_area_km2`` and ``density_per_km2``.

    .. versionadded:: 0.3
    """
    if real is None:
        real = real_stats()
    out = []
    for city in cities:
        destroyed, stock = simulated_stats(Path(root) / city)
        ref = real.get(city)
        out.append(
            {
                "city": city,
                "simulated": {
                    "count": destroyed.count,
                    "median_area_destroyed_m2": destroyed.median_area_m2,
                    "median_area_all_m2": stock.median_area_m2,
                    "area_ratio": stock.median_area_destroyed_m2 / stock.median_area_m2,
                    "cluster_share": destroyed.cluster_share,
                    "cell_area_km2": destroyed.cell_area_km2,
                    "hull_area_km2": destroyed.hull_area_km2,
                    "density_per_km2": stock.density_per_km2,
                },
                "real": None
                if ref is None
                else {
                    "count": ref.count,
                    "median_area_destroyed_m2": ref.median_area_m2,
                    "median_area_all_m2": None,
                    "area_ratio": None,
                    "cluster_share": ref.cluster_share,
                    "cell_area_km2": ref.cell_area_km2,
                    "hull_area_km2": ref.hull_area_km2,
                    "density_per_km2": real_density_estimate(city, ref),
                },
            }
        )
    return out


def read_loco_auroc(
    folder: str | os.PathLike[str], config: str = "sar_ftp"
) -> dict[str, float]:
    """The CNN's leave-one-city-out AUROC per city from a protocol result folder.

    Reads ``runs.csv`` (mean ``test_auroc`` over seeds; ``split`` is the
    held-out city) or, without it, ``table_IV_loco_bestf1.json`` (cells of the
    configuration, column ``AUROC``), as
    :func:`~torchgeo_quake.protocols.tables.write_tables` writes them.

    Args:
        folder: output folder of ``torchgeo-quake protocol loco``
        config: input configuration (``sar_ftp``: SAR + FTP)

    Returns:
        City slug -> AUROC.

    Raises:
        FileNotFoundError: If the folder holds neither file.
        ValueError: If the configuration is unknown or has no AUROC there.

    .. versionadded:: 0.3
    """
    if config not in INPUT_CONFIGURATIONS:
        raise ValueError(
            f"unknown input configuration {config!r}; choose among "
            f"{list(INPUT_CONFIGURATIONS)}"
        )
    root = Path(folder)
    runs, table = root / "runs.csv", root / "table_IV_loco_bestf1.json"
    values: dict[str, list[float]] = {}
    if runs.is_file():
        source = runs
        with runs.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row.get("config") == config and row.get("test_auroc"):
                    values.setdefault(row["split"], []).append(float(row["test_auroc"]))
    elif table.is_file():
        source = table
        label = " + ".join(
            "FTP" if m == "footprint" else m.upper()
            for m in INPUT_CONFIGURATIONS[config]
        )
        slug_of = {name: slug for slug, name in CITY_NAMES.items()}
        for cell in json.loads(table.read_text(encoding="utf-8"))["cells"]:
            if (
                cell.get("Inputs") == label
                and cell.get("column") == "AUROC"
                and cell.get("mean") is not None
            ):
                city = slug_of.get(cell["City"], cell["City"])
                values.setdefault(city, []).append(float(cell["mean"]))
    else:
        raise FileNotFoundError(
            f"{root} holds neither runs.csv nor table_IV_loco_bestf1.json; pass "
            "the output folder of `torchgeo-quake protocol loco --out DIR`"
        )
    if not values:
        raise ValueError(f"{source} holds no leave-one-city-out AUROC of {config!r}")
    return {city: float(np.mean(v)) for city, v in values.items()}


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN -> None, numpy scalars -> Python, floats rounded.

    Args:
        value: nested dicts, lists and numbers

    Returns:
        The cleaned value.
    """
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else round(float(value), 4)
    return value


def _scenario_label(record: dict[str, Any]) -> str:
    """The scenario of a scene, as a label.

    Args:
        record: the content of ``scene.json``

    Returns:
        E.g. ``"calibrated"``, ``"v0.1"``, or a note when it cannot be read.
    """
    scenario = scene_scenario(record)
    return "not recorded in scene.json" if scenario is None else scenario.label()


def calibration_table(
    root: str | os.PathLike[str],
    loco_results: str | os.PathLike[str] | None = None,
    boosting: bool = True,
    real: Mapping[str, FootprintStats] | None = None,
) -> dict[str, Any]:
    """Every row of the calibration table of a simulated scene.

    Args:
        root: simulated scene folder (with ``scene.json``)
        loco_results: output folder of ``torchgeo-quake protocol loco`` on
            this scene, for the CNN's SAR + FTP row (optional)
        boosting: fit the gradient-boosting models (the slowest part)
        real: real footprint statistics per city (default: the HOTOSM layer
            beside the repository)

    Returns:
        JSON-serialisable dict: ``scene``, ``footprints``, ``collapse``,
        ``within_city``, ``pooled_gb_auroc``, ``bounds``, ``cnn_loco``,
        ``paper_loco`` and ``transfer``.

    Raises:
        FileNotFoundError: If *root* is not a simulated scene.

    .. versionadded:: 0.3
    """
    folder = Path(root)
    record_path = folder / "scene.json"
    if not record_path.is_file():
        raise FileNotFoundError(
            f"{record_path} not found: pass the folder of a simulated scene "
            "(`torchgeo-quake simulate ROOT`)"
        )
    record = json.loads(record_path.read_text(encoding="utf-8"))
    cities = [c for c in CITY_SLUGS if (folder / c).is_dir()]
    truth = read_truth(folder, cities)
    probability, sources = gem_collapse_probability(truth, folder)
    collapse = collapse_rates(truth, probability).reset_index()
    level = collapse_level(truth, folder)
    features = sample_features(folder, cities)
    result = {
        "scene": {
            "root": str(folder),
            "scenario": _scenario_label(record),
            "scale": record.get("scale"),
            "seed": record.get("seed"),
            "simulator_version": record.get("simulator_version"),
            "samples": len(features.frame),
            "damaged_samples": int(features.frame["label"].sum()),
        },
        "footprints": footprint_rows(folder, cities, real),
        "collapse": {
            "rows": collapse.to_dict(orient="records"),
            "intensity_source": sources,
            "level": level,
        },
        "within_city": within_city_auroc(features, boosting=boosting),
        "pooled_gb_auroc": pooled_boosting_auroc(features) if boosting else None,
        "bounds": {
            **{name: bound for name, bound in SCALAR_FEATURES.items()},
            "sar": SAR_FEATURE_BOUND,
            "cue": CUE_FEATURE_BOUND,
        },
        "cnn_loco": None if loco_results is None else read_loco_auroc(loco_results),
        "paper_loco": dict(PAPER_LOCO_AUROC),
        "transfer": loco_auroc(features),
    }
    return dict(_clean(result))
