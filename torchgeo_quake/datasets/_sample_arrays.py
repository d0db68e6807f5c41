"""The samples of built areas as arrays, with their skip lists and report rows.

:class:`~torchgeo_quake.datasets.BuildingDamage` builds each area through the
data layer (:func:`~torchgeo_quake.datasets.build_area`); these functions turn
one built :class:`~torchgeo_quake.datasets.Area` into sample arrays, skipped
buildings and a row of :meth:`BuildingDamage.report`, join the areas into the
arrays that the dataset holds and caches, and word the warnings about what the
report shows was dropped.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .builder import Area
from .gem import GEM_FEATURE_NAMES

#: Sample keys of the raster modalities (1×size×size patches).
_RASTER_KEYS = ("sar", "footprint", "dsm")
#: Columns of the skipped-building tables.
_SKIPPED_COLUMNS = ["building_id", "city", "reason"]


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Swallow TorchGeo's progress prints (``Converting ... res``) when enabled.

    Args:
        enabled: whether to silence standard output

    Yields:
        Nothing.
    """
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _area_skipped(area: Area, city: str) -> list[pd.DataFrame]:
    """The buildings of an area that yield no sample.

    Args:
        area: the built area
        city: its name

    Returns:
        Tables (``building_id``, ``city``, ``reason``) of the unusable
        footprints (when there are any) and of the skipped windows.
    """
    footprints, windows = area.footprints, area.windows
    tables = []
    if not footprints.skipped.empty:
        tables.append(footprints.skipped.assign(city=city)[_SKIPPED_COLUMNS])
    tables.append(windows.skipped[_SKIPPED_COLUMNS])
    return tables


def _area_report(area: Area, counts: pd.DataFrame) -> dict[str, int]:
    """The row of :meth:`BuildingDamage.report` of an area.

    Args:
        area: the built area
        counts: intact and damaged buildings selected
            (:meth:`BuildingWindows.counts`)

    Returns:
        Count per column of
        :data:`~torchgeo_quake.datasets.building_damage.REPORT_COLUMNS`.
    """
    footprints, windows = area.footprints, area.windows
    labels_all = footprints.buildings["label"].to_numpy()
    labels_skipped = windows.skipped["label"].to_numpy()
    return {
        "footprints": len(footprints.buildings) + len(footprints.skipped),
        "skipped_footprints": len(footprints.skipped),
        "reference_damaged": int((labels_all == 1).sum()),
        "reference_excluded": int((labels_all == -1).sum()),
        "unmatched_damage": int(footprints.unmatched_damage),
        "skipped_windows": int((labels_skipped != -1).sum()),
        "available_intact": int((labels_all == 0).sum())
        - int((labels_skipped == 0).sum()),
        "available_damaged": int((labels_all == 1).sum())
        - int((labels_skipped == 1).sum()),
        "intact": int(counts["intact"].sum()),
        "damaged": int(counts["damaged"].sum()),
    }


def _area_arrays(
    area: Area,
    city: str,
    modalities: Sequence[str],
    size: int,
    progress: bool | None = None,
) -> dict[str, np.ndarray]:
    """Read every sample of an area into arrays.

    Args:
        area: the built area
        city: its name
        modalities: the inputs to keep
        size: patch size in pixels
        progress: show a progress bar (None: when stderr is a terminal); it
            disappears once the area is read

    Returns:
        Arrays with the sample axis first: the requested modalities,
        ``label``, ``building_id``, ``centroid`` and ``city``.
    """
    n = len(area.windows.buildings)
    arrays: dict[str, np.ndarray] = {
        key: np.empty((n, 1, size, size), np.float32)
        for key in _RASTER_KEYS
        if key in modalities
    }
    if "gem" in modalities:
        arrays["gem"] = np.empty((n, len(GEM_FEATURE_NAMES)), np.float32)
    labels = np.empty(n, np.int64)
    ids = np.empty(n, np.int64)
    centroids = np.empty((n, 2), np.float64)
    samples = tqdm(
        area.samples(),
        total=n,
        desc=f"extract {city}",
        unit="building",
        disable=None if progress is None else not progress,
        leave=False,
        dynamic_ncols=True,
    )
    for i, sample in enumerate(samples):
        for key, array in arrays.items():
            array[i] = sample[key].numpy()
        labels[i] = int(sample["label"])
        ids[i] = int(sample["building_id"])
        centroids[i] = sample["centroid"].numpy()
    arrays["label"] = labels
    arrays["building_id"] = ids
    arrays["centroid"] = centroids
    arrays["city"] = np.array([city] * n)
    return arrays


def _join_areas(
    parts: dict[str, list[np.ndarray]],
    skipped: list[pd.DataFrame],
    report: dict[str, dict[str, int]],
) -> dict[str, np.ndarray]:
    """Join the arrays, skipped buildings and report rows of all areas.

    Args:
        parts: arrays of every area, per key (:func:`_area_arrays`)
        skipped: skipped-building tables (:func:`_area_skipped`)
        report: report row per area (:func:`_area_report`)

    Returns:
        The samples, the skipped buildings (``skipped_id``, ``skipped_city``,
        ``skipped_reason``) and the report as JSON (``meta_report``).
    """
    arrays = {key: np.concatenate(value) for key, value in parts.items()}
    arrays["city"] = arrays["city"].astype("U32")
    table = (
        pd.concat(skipped, ignore_index=True)
        if skipped
        else pd.DataFrame(columns=_SKIPPED_COLUMNS)
    )
    arrays["skipped_id"] = (
        pd.to_numeric(table["building_id"], errors="coerce")
        .fillna(-1)
        .to_numpy(np.int64)
    )
    arrays["skipped_city"] = table["city"].to_numpy().astype("U32")
    arrays["skipped_reason"] = table["reason"].to_numpy().astype("U64")
    arrays["meta_report"] = np.array(json.dumps(report))
    return arrays


def _drop_messages(
    report: pd.DataFrame,
    owner: str,
    damage_of: Callable[[str], Path | None],
    negatives_per_positive: float | None,
) -> list[str]:
    """Warnings about areas and damage features that yield no samples.

    Args:
        report: the per-area report (:meth:`BuildingDamage.report` without
            its ``all`` row)
        owner: name of the dataset class
        damage_of: the damage reference of an area
        negatives_per_positive: intact buildings drawn per damaged one

    Returns:
        The messages, area by area: damage features that match no footprint,
        then why the area yields no sample (if it yields none).
    """
    messages = []
    for city, row in report.iterrows():
        if row["unmatched_damage"] > 0:
            path = damage_of(str(city))
            messages.append(
                f"{owner}: {row['unmatched_damage']} damage "
                f"feature(s) of {str(path)!r} match no footprint of {city} (by "
                "id or overlap) and label no building; check that the damage "
                "layer and the footprints cover the same buildings (see "
                "report())."
            )
        if row["intact"] + row["damaged"] > 0:
            continue
        if row["available_damaged"] == 0 and row["available_intact"] > 0:
            reason = (
                f"it has no damaged building to sample, so "
                f"negatives_per_positive={negatives_per_positive} keeps "
                f"none of its {row['available_intact']} intact buildings; pass "
                "negatives_per_positive=None to keep them, or leave the city out"
            )
        else:
            reason = (
                f"none of its {row['footprints']} footprints could be sampled "
                f"({row['skipped_footprints']} unusable, "
                f"{row['skipped_windows']} outside the SAR image or on nodata; "
                "see `skipped`)"
            )
        messages.append(f"{owner}: {city} yields no samples: {reason}.")
    return messages
