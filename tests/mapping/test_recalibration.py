"""Few-label recalibration: the label file and the refit."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS

from torchgeo_quake.mapping.recalibration import read_calibration_labels, recalibrate

CRS_UTM = CRS.from_epsg(32637)
N = 40


@pytest.fixture
def footprints() -> gpd.GeoDataFrame:
    """40 square footprints in a row, ids 100..139."""
    boxes = shapely.box(np.arange(N) * 20.0, 0.0, np.arange(N) * 20.0 + 10, 10.0)
    return gpd.GeoDataFrame(
        {"osm_id": np.arange(100, 100 + N)}, geometry=boxes, crs=CRS_UTM
    )


def _read(path: Path, footprints: gpd.GeoDataFrame):  # type: ignore[no-untyped-def]
    geoms = np.asarray(footprints.geometry.values, dtype=object)
    return read_calibration_labels(path, footprints["osm_id"], geoms, CRS_UTM)


def test_csv_labels_are_joined_by_id(
    tmp_path: Path, footprints: gpd.GeoDataFrame
) -> None:
    path = tmp_path / "labels.csv"
    pd.DataFrame(
        {"osm_id": [101, 105, 999, 101], "damaged": ["yes", "Intact", "1", "yes"]}
    ).to_csv(path, index=False)
    labels = _read(path, footprints)
    assert labels.rows.tolist() == [1, 5] and labels.labels.tolist() == [1, 0]
    assert labels.read == 4


def test_vector_labels_are_joined_by_location(
    tmp_path: Path, footprints: gpd.GeoDataFrame
) -> None:
    path = tmp_path / "labels.geojson"
    points = gpd.GeoDataFrame(
        {"label": [1, 0, 1]},
        geometry=shapely.points([[45.0, 5.0], [85.0, 5.0], [15.0, 50.0]]),
        crs=CRS_UTM,
    ).to_crs(4326)
    points.to_file(path)
    labels = _read(path, footprints)
    assert labels.rows.tolist() == [2, 4] and labels.labels.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"osm_id": [101], "grade": [1]}, "unknown schema .*columns: osm_id, grade"),
        ({"id": [101], "damaged": [1]}, "unknown schema"),
        ({"osm_id": [1, 2], "damaged": [1, 0]}, "none of its 2 labels matches"),
        ({"osm_id": [101, 102], "damaged": [1, 1]}, "all 2 labels are damaged"),
        ({"osm_id": [101, 102], "damaged": ["1", "maybe"]}, "'maybe'"),
        ({"osm_id": [101, 101], "damaged": [1, 0]}, "both damaged and intact"),
    ],
)
def test_bad_label_files_name_the_file(
    tmp_path: Path,
    footprints: gpd.GeoDataFrame,
    table: dict[str, list[object]],
    message: str,
) -> None:
    path = tmp_path / "labels.csv"
    pd.DataFrame(table).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message) as info:
        _read(path, footprints)
    assert "--calibration-labels" in str(info.value) and str(path) in str(info.value)


def test_a_missing_label_file(tmp_path: Path, footprints: gpd.GeoDataFrame) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _read(tmp_path / "nothing.csv", footprints)


def test_recalibration_recovers_the_count(
    tmp_path: Path, footprints: gpd.GeoDataFrame
) -> None:
    """A model that ranks well but is 4 logits too confident of damage."""
    rng = np.random.default_rng(0)
    logit = rng.normal(-2.0, 2.0, N)
    truth = (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(int)
    probs = 1 / (1 + np.exp(-(logit + 4.0)))
    probs[0] = np.nan  # not scored
    labelled = np.arange(0, N, 2)  # half the buildings, one of them not scored
    path = tmp_path / "labels.csv"
    pd.DataFrame({"osm_id": 100 + labelled, "damaged": truth[labelled]}).to_csv(
        path, index=False
    )
    recal = recalibrate(probs, _read(path, footprints))
    assert recal.used == len(labelled) - 1 and recal.not_scored == 1
    assert recal.auroc > 0.7
    new = recal.apply(probs)
    assert np.isnan(new[0])
    scored = np.isfinite(probs)
    before = abs(np.nansum(probs) - truth[scored].sum())
    after = abs(np.nansum(new) - truth[scored].sum())
    assert after < before / 3
    assert 0 < recal.threshold < 1
    # The fit's uncertainty: bootstrap refits of the 19 labels.
    replicates = recal.replicate_probs(probs)
    assert replicates is not None and replicates.shape == (len(recal.replicates), N)
    assert len(recal.replicates) > 90 and np.isnan(replicates[:, 0]).all()
    totals = np.nansum(replicates, axis=1)
    assert totals.std() > 0.5 and abs(np.median(totals) - np.nansum(new)) < 3


def test_recalibration_needs_scored_labels_of_both_classes(
    tmp_path: Path, footprints: gpd.GeoDataFrame
) -> None:
    path = tmp_path / "labels.csv"
    pd.DataFrame({"osm_id": [100, 101, 102], "damaged": [1, 0, 0]}).to_csv(
        path, index=False
    )
    labels = _read(path, footprints)
    probs = np.full(N, 0.3)
    probs[0] = np.nan
    with pytest.raises(ValueError, match="all 2 labels of scored buildings are intact"):
        recalibrate(probs, labels)
    probs[:3] = np.nan
    with pytest.raises(ValueError, match="none of the 3 labelled buildings was scored"):
        recalibrate(probs, labels)
