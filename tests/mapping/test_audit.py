"""Reference audit of a damage map (``map --reference``) and partial exposure."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import cKDTree

from torchgeo_quake.datasets import DEFAULT_GRADE_MAP, read_vector
from torchgeo_quake.datasets.utils import utm_crs_of
from torchgeo_quake.mapping import map_damage
from torchgeo_quake.mapping.audit import (
    AUDIT_FILES,
    COMMISSION,
    NOT_GRADED,
    OMISSION,
    agreement,
    audit_kinds,
    audit_table,
    read_reference,
)

EMS = "copernicus_ems/EMSR648_AOI04_GRA_MONIT01_builtUpP_r1_v1.shp"
HOTOSM = "hotosm/hotosm_tur_destroyed_buildings_polygons.geojson"


# ------------------------------------------------------------ hand-made case
def test_audit_ranks_omissions_and_commissions() -> None:
    probs = np.array([0.9, 0.6, 0.95, 0.2, 0.05, np.nan, 0.7, 0.3, 0.1])
    damaged = probs >= 0.5
    labels = np.array([0, 0, 1, 1, 1, 1, 0, 0, -1])
    kinds = audit_kinds(probs, damaged, labels)
    # Predicted damaged, intact in the reference: omissions; the reverse:
    # commissions; skipped (NaN) and left-out (-1) buildings are neither.
    assert kinds.tolist() == [
        OMISSION,
        OMISSION,
        None,
        COMMISSION,
        COMMISSION,
        None,
        OMISSION,
        None,
        None,
    ]
    table = audit_table(
        kinds,
        probs,
        ids=pd.array(np.arange(100, 109), dtype="Int64"),
        grades=np.array(["g"] * 9, dtype=object),
        units=np.array(["u"] * 9, dtype=object),
        lon=np.zeros(9),
        lat=np.zeros(9),
    )
    # Most probable omission first; least probable commission first.
    assert table["audit"].tolist() == [OMISSION] * 3 + [COMMISSION] * 2
    assert table["feature"].tolist() == [0, 6, 1, 4, 3]
    assert table["osm_id"].tolist() == [100, 106, 101, 104, 103]
    assert table["rank"].tolist() == [1, 2, 3, 1, 2]

    figures = agreement(_labels(labels), probs, damaged)
    assert figures["compared"] == 7
    assert figures["damaged_in_both"] == 1
    assert figures["likely_omissions"] == 3
    assert figures["likely_commissions"] == 2
    assert figures["intact_in_both"] == 1
    assert figures["precision"] == pytest.approx(1 / 4, abs=1e-4)
    assert figures["recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["f1"] == pytest.approx(2 / 7, abs=1e-4)


def _labels(labels: np.ndarray) -> Any:
    from torchgeo_quake.mapping.audit import ReferenceLabels

    grades = np.array(["g"] * len(labels), dtype=object)
    return ReferenceLabels(Path("ref.gpkg"), "hotosm", labels, grades, {})


# ------------------------------------------------------------ real references
def _squares(points: gpd.GeoDataFrame, size: float, dx: float = 0.0) -> Any:
    """Square footprints around points, with ids 1..n, in their UTM zone."""
    utm = utm_crs_of(points)
    xy = points.to_crs(utm).get_coordinates().to_numpy()
    x, y, half = xy[:, 0] + dx, xy[:, 1], size / 2
    return gpd.GeoDataFrame(
        {"osm_id": np.arange(1, len(points) + 1)},
        geometry=shapely.box(x - half, y - half, x + half, y + half),
        crs=utm,
    )


def test_real_ems_points_nearest_footprint(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / EMS
    if not path.exists():
        pytest.skip(f"Copernicus EMS grading product not found at {path}")
    points = read_vector(path)
    # Isolated points (no other within 30 m), in the product's own format.
    xy = points.to_crs(utm_crs_of(points)).get_coordinates().to_numpy()
    distance, _ = cKDTree(xy).query(xy, k=2)
    isolated = points[distance[:, 1] > 30]
    points = isolated.iloc[:: max(1, len(isolated) // 200)].reset_index(drop=True)
    subset = tmp_path / "ems_subset.shp"
    points.to_file(subset)
    # 4 m squares 5 m east of each point: the point lies 3 m outside its
    # square and is joined to it as the nearest footprint (within 10 m).
    frame = _squares(points, size=4.0, dx=5.0)
    extra = _squares(points.iloc[:3], size=4.0, dx=50_000.0)  # no point near
    extra["osm_id"] += 10_000
    frame = pd.concat([frame, extra], ignore_index=True)
    reference = read_reference(subset, frame, "osm_id")
    assert reference.schema == "ems"
    n = len(points)
    expected = points["damage_gra"].map(DEFAULT_GRADE_MAP).to_numpy()
    assert set(expected) == {-1, 0, 1}
    assert reference.labels[:n].tolist() == expected.tolist()
    assert reference.grades[:n].tolist() == points["damage_gra"].tolist()
    # Footprints that no graded point reaches are left out, not intact.
    assert reference.labels[n:].tolist() == [-1, -1, -1]
    assert set(reference.grades[n:]) == {NOT_GRADED}
    assert reference.join == {
        "features": n,
        "unmatched_features": 0,
        "excluded": int((expected == -1).sum()),
        "not_graded": 3,
        "not_joined": 0,
    }
    # Closer than 3 m only: no point reaches its square.
    near = read_reference(subset, frame, "osm_id", max_distance=2.0)
    assert (near.labels == -1).all() and near.join["unmatched_features"] == n


def test_real_hotosm_polygons_by_id(shared_data: Path) -> None:
    path = shared_data / HOTOSM
    if not path.exists():
        pytest.skip(f"HOTOSM layer not found at {path}")
    polygons = read_vector(path).iloc[:50].reset_index(drop=True)
    centres = polygons.to_crs(utm_crs_of(polygons)).centroid
    intact = _squares(gpd.GeoDataFrame(geometry=centres), 4.0, dx=50_000.0)
    intact["osm_id"] = np.arange(1, len(intact) + 1)
    frame = pd.concat(
        [polygons[["osm_id", "geometry"]].to_crs(intact.crs), intact],
        ignore_index=True,
    )
    reference = read_reference(path, frame, "osm_id")
    assert reference.schema == "hotosm"
    # Listed buildings are damaged, the others intact (HOTOSM lists only
    # damaged buildings).
    assert reference.labels.tolist() == [1] * 50 + [0] * 50
    assert reference.join["features"] == 3259
    assert reference.join["unmatched_features"] == 3259 - 50
    probs = np.r_[np.full(50, 0.2), np.full(50, 0.9)]
    kinds = audit_kinds(probs, probs >= 0.5, reference.labels)
    assert (kinds[:50] == COMMISSION).all() and (kinds[50:] == OMISSION).all()


def test_reference_of_an_unknown_schema(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"osm_id": [1]}, geometry=[shapely.box(0, 0, 10, 10)], crs=32637
    )
    other = tmp_path / "flood_extent.geojson"
    gpd.GeoDataFrame(
        {"depth_m": [1.5]}, geometry=[shapely.box(0, 0, 9, 9)], crs=32637
    ).to_file(other)
    with pytest.raises(ValueError, match=r"flood_extent\.geojson.*unknown schema"):
        read_reference(other, frame, "osm_id")
    with pytest.raises(ValueError, match=r"damage_gra.*destroyed_building"):
        read_reference(other, frame, "osm_id")
    # Forced, every feature is a damaged building.
    forced = read_reference(other, frame, "osm_id", schema="hotosm")
    assert forced.labels.tolist() == [1]


# ------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def night_only(city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The city's exposure with occupants at night only (no ``day``)."""
    table = pd.read_csv(city / "gem.csv")
    path = tmp_path_factory.mktemp("exposure") / "night_only.csv"
    table.drop(columns=["day"]).to_csv(path, index=False)
    return path


def test_map_with_reference_and_night_only_exposure(
    city: Path,
    checkpoints: dict[str, Path],
    night_only: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "map"
    result = map_damage(
        city / "sar.tif",
        city / "buildings.gpkg",
        checkpoints["sar_ftp"],
        out,
        exposure=night_only,
        reference=city / "destroyed.geojson",
        batch_size=64,
        verbose=True,
    )
    printed = capsys.readouterr().out
    assert set(AUDIT_FILES) <= {p.name for p in out.iterdir()}
    assert set(result.files) >= set(AUDIT_FILES)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"][-2:] == list(AUDIT_FILES)

    # The exposure file maps; the figure it cannot give is said missing.
    exposure = summary["exposure"]
    assert exposure["occupants_day_in_damaged"] is None
    assert "no day column" in exposure["missing"]["occupants_day"]
    assert exposure["occupants_night_in_predicted"] > 0
    assert all(
        u.get("occupants_day_in_damaged") is None for u in summary["units"]["table"]
    )
    assert "exposure figure occupants_day not computed" in printed
    assert "occupants by day unknown" in result.report()

    # Every building carries the reference's label; the audit matches it.
    damage = gpd.read_file(out / "damage.gpkg", layer="damage")
    truth = gpd.read_file(city / "destroyed.geojson")
    listed = damage["osm_id"].isin(truth["osm_id"])
    assert (damage.loc[listed, "reference_damaged"] == 1).all()
    assert (damage.loc[~listed, "reference_damaged"] == 0).all()
    scored = damage["status"] == "predicted"
    omission = scored & (damage["damaged"] == 1) & ~listed
    commission = scored & (damage["damaged"] == 0) & listed
    assert (damage["audit"] == OMISSION).sum() == omission.sum()
    assert (damage["audit"] == COMMISSION).sum() == commission.sum()

    audit = pd.read_csv(out / "audit.csv")
    assert len(audit) == int(omission.sum() + commission.sum()) > 0
    layer = gpd.read_file(out / "audit.gpkg", layer="audit")
    assert layer["osm_id"].tolist() == audit["osm_id"].tolist()
    for kind, ascending in ((OMISSION, False), (COMMISSION, True)):
        probs = audit.loc[audit["audit"] == kind, "damage_probability"]
        assert (
            probs.is_monotonic_increasing
            if ascending
            else probs.is_monotonic_decreasing
        )

    reference = summary["reference"]
    assert reference["schema"] == "hotosm"
    assert reference["likely_omissions"] == int(omission.sum())
    assert reference["likely_commissions"] == int(commission.sum())
    both = int((scored & (damage["damaged"] == 1) & listed).sum())
    assert reference["damaged_in_both"] == both
    assert reference["join"]["features"] == len(truth)
    page = (out / "map.html").read_text()
    assert '"au":[' in page and 'id="auditonly"' in page
    assert f"{int(omission.sum())} likely omissions" in page


def test_gem_model_needs_the_feature_columns(
    city: Path,
    checkpoints: dict[str, Path],
    night_only: Path,
    tmp_path: Path,
    nothing_written: Callable[[Path], None],
) -> None:
    out = tmp_path / "map"
    with pytest.raises(
        ValueError, match=r"night_only\.csv.*\['day'\].*occupants_day_per_building"
    ):
        map_damage(
            city / "sar.tif",
            city / "buildings.gpkg",
            checkpoints["all"],
            out,
            dsm=city / "dsm.tif",
            exposure=night_only,
        )
    nothing_written(out)


@pytest.mark.parametrize("inside", [False, True])
def test_a_map_without_reference_drops_a_stale_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inside: bool
) -> None:
    """Replacing an audited map by one without reference removes the audit."""
    from torchgeo_quake.mapping import OUTPUT_FILES
    from torchgeo_quake.mapping._staging import install

    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").mkdir()
    for name in OUTPUT_FILES + AUDIT_FILES:
        (out / name).write_text("old")
    new = tmp_path / ".out.partial-1-a"
    new.mkdir()
    for name in OUTPUT_FILES:
        (new / name).write_text("new")
    if inside:  # results moved one by one, the folder stays
        monkeypatch.chdir(out / "sub")
    install(new, out, OUTPUT_FILES + AUDIT_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUT_FILES, "sub"])
    assert all((out / n).read_text() == "new" for n in OUTPUT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_cli_reference_of_an_unknown_schema(
    city: Path,
    checkpoints: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    nothing_written: Callable[[Path], None],
) -> None:
    from torchgeo_quake.cli import main

    other = tmp_path / "grades.geojson"
    gpd.GeoDataFrame(
        {"grade": ["destroyed"]}, geometry=[shapely.Point(36.7, 37.1)], crs=4326
    ).to_file(other)
    out = tmp_path / "map"
    argv = ["map", "--sar", str(city / "sar.tif"), "--footprints"]
    argv += [str(city / "buildings.gpkg"), "--checkpoint", str(checkpoints["sar_ftp"])]
    argv += ["--out", str(out), "--reference", str(other), "--quiet"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "grades.geojson" in error and "unknown schema" in error
    assert "columns: grade" in error
    nothing_written(out)
    with pytest.raises(FileNotFoundError, match="reference file"):
        map_damage(
            city / "sar.tif",
            city / "buildings.gpkg",
            checkpoints["sar_ftp"],
            out,
            reference=tmp_path / "missing.geojson",
        )
