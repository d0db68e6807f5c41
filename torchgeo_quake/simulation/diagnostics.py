"""Diagnostics of a simulated city: how strongly the SAR image shows damage.

:func:`footprint_db_auroc` reads a city folder (``sar.tif``, ``buildings.gpkg``,
``truth.csv``) as a user would, averages the SAR backscatter in decibels
(``20 log10 amplitude``) over the image pixels whose centres lie in each
building footprint, and reports, for the buildings inside the valid SAR area,
the difference between the mean of the reference-damaged buildings
(``in_reference`` of ``truth.csv``, i.e. listed in ``destroyed.geojson``) and
that of the others, and the AUROC of this single number as a damage score. It
measures how easy the damage cue is without any model; the paper's SAR +
footprint leave-one-city-out AUROC is 0.55-0.81 (Russo et al. 2025).

.. versionadded:: 0.3
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import rasterio
import rasterio.features

__all__ = ["footprint_db_auroc", "footprint_mean_db"]

FloatArray = npt.NDArray[np.float64]


def footprint_mean_db(city_folder: str | os.PathLike[str]) -> pd.DataFrame:
    """Mean SAR backscatter (dB) inside each footprint of a city folder.

    Args:
        city_folder: folder with ``sar.tif``, ``buildings.gpkg`` and
            ``truth.csv``

    Returns:
        One row per building of ``buildings.gpkg`` inside the valid SAR area
        with at least one valid pixel: ``osm_id``, ``mean_db``, ``pixels``,
        ``in_reference`` (bool) and ``damage_grade``.

    Raises:
        FileNotFoundError: If one of the three files is missing.
        ValueError: If ``truth.csv`` lacks a building of ``buildings.gpkg``.

    .. versionadded:: 0.3
    """
    import geopandas as gpd

    folder = Path(city_folder)
    for name in ("sar.tif", "buildings.gpkg", "truth.csv"):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name} is missing; simulate the city first "
                "(torchgeo-quake simulate)"
            )
    truth = pd.read_csv(folder / "truth.csv").set_index("osm_id")
    frame = gpd.read_file(folder / "buildings.gpkg")
    with rasterio.open(folder / "sar.tif") as src:
        amplitude = src.read(1).astype(np.float64)
        transform = src.transform
        frame = frame.to_crs(src.crs)
    missing = ~frame["osm_id"].isin(truth.index)
    if missing.any():
        raise ValueError(
            f"{folder / 'truth.csv'} has no row for {int(missing.sum())} buildings "
            "of buildings.gpkg; re-simulate the city"
        )
    ids = np.arange(1, len(frame) + 1)
    label = rasterio.features.rasterize(
        list(zip(frame.geometry, ids, strict=True)),
        out_shape=amplitude.shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )
    valid = amplitude > 0
    db = np.where(valid, 20.0 * np.log10(np.maximum(amplitude, 1e-12)), 0.0)
    on = (label > 0) & valid
    count = np.bincount(label[on], minlength=len(frame) + 1)[1:]
    total = np.bincount(label[on], weights=db[on], minlength=len(frame) + 1)[1:]
    rows = truth.loc[frame["osm_id"].to_numpy()]
    keep = (count > 0) & rows["in_sar"].to_numpy(bool)
    return pd.DataFrame(
        {
            "osm_id": frame["osm_id"].to_numpy()[keep],
            "mean_db": (total / np.maximum(count, 1))[keep],
            "pixels": count[keep],
            "in_reference": rows["in_reference"].to_numpy(bool)[keep],
            "damage_grade": rows["damage_grade"].to_numpy(np.int64)[keep],
        }
    )


def footprint_db_auroc(city_folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Damaged-minus-intact footprint dB and its within-city AUROC.

    Args:
        city_folder: folder with ``sar.tif``, ``buildings.gpkg`` and
            ``truth.csv``

    Returns:
        ``city`` (folder name), ``n_damaged``, ``n_intact``,
        ``damaged_minus_intact_db`` (difference of the mean footprint dB of the
        reference-damaged and the other buildings), ``auroc`` (AUROC of the
        mean footprint dB as a score of reference damage; NaN if a class is
        empty) and ``auroc_collapsed`` (the same against true collapse,
        damage grade 2).

    Raises:
        FileNotFoundError: If one of the files is missing.

    .. versionadded:: 0.3
    """
    from sklearn.metrics import roc_auc_score

    table = footprint_mean_db(city_folder)
    score = table["mean_db"].to_numpy(np.float64)

    def auroc(labels: npt.NDArray[np.bool_]) -> float:
        if labels.all() or not labels.any():
            return float("nan")
        return float(roc_auc_score(labels, score))

    damaged = table["in_reference"].to_numpy(bool)
    diff = (
        float(score[damaged].mean() - score[~damaged].mean())
        if damaged.any() and not damaged.all()
        else float("nan")
    )
    return {
        "city": Path(city_folder).name,
        "n_damaged": int(damaged.sum()),
        "n_intact": int((~damaged).sum()),
        "damaged_minus_intact_db": diff,
        "auroc": auroc(damaged),
        "auroc_collapsed": auroc(table["damage_grade"].to_numpy() == 2),
    }
