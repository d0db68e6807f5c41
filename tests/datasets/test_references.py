"""Damage references: Copernicus EMS grading, HOTOSM layers and label columns."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import cKDTree

from torchgeo_quake.datasets import (
    DEFAULT_GRADE_MAP,
    EMS_GRADES,
    OSMBuildings,
    join_damage,
    labels_from_field,
    read_vector,
)
from torchgeo_quake.datasets.raster import CachedRasterDataset
from torchgeo_quake.datasets.utils import utm_crs_of
from torchgeo_quake.samplers import BuildingCentroidSampler

UTM = "EPSG:32637"
X0, Y0 = 500_000.0, 4_100_000.0


def boxes(n: int, size: float = 10.0, step: float = 30.0) -> list[shapely.Polygon]:
    """*n* squares of *size* m in a row, *step* m apart (UTM 37N)."""
    return [
        shapely.box(X0 + i * step, Y0, X0 + i * step + size, Y0 + size)
        for i in range(n)
    ]


def write_footprints(tmp_path: Path, n: int = 4, **columns: list[object]) -> Path:
    path = tmp_path / "fp" / "buildings.gpkg"
    path.parent.mkdir(exist_ok=True)
    frame = gpd.GeoDataFrame(
        {"osm_id": list(range(1, n + 1)), **columns}, geometry=boxes(n), crs=UTM
    )
    frame.to_file(path)
    return path


def write_ems(
    tmp_path: Path,
    points: list[tuple[float, float]],
    grades: list[str | None],
    name: str = "ems.geojson",
) -> Path:
    """EMS points given in UTM offsets from (X0, Y0), written in EPSG:4326."""
    path = tmp_path / "ref" / name
    path.parent.mkdir(exist_ok=True)
    geoms = [shapely.Point(X0 + x, Y0 + y) for x, y in points]
    frame = gpd.GeoDataFrame(
        {"obj_type": "11-Residential Buildings", "damage_gra": grades},
        geometry=geoms,
        crs=UTM,
    ).to_crs(4326)
    frame.to_file(path, driver="GeoJSON")
    return path


def labels_of(fp: OSMBuildings) -> dict[int, int]:
    return dict(
        zip(
            fp.buildings["building_id"].tolist(),
            fp.buildings["label"].tolist(),
            strict=True,
        )
    )


# ------------------------------------------------------------------ EMS
def test_default_grade_map() -> None:
    assert EMS_GRADES == (
        "No visible damage",
        "Possibly damaged",
        "Damaged",
        "Destroyed",
    )
    assert dict(DEFAULT_GRADE_MAP) == {
        "No visible damage": 0,
        "Possibly damaged": -1,
        "Damaged": 1,
        "Destroyed": 1,
    }


def test_ems_points_inside_footprints(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path)
    ems = write_ems(
        tmp_path,
        [(5, 5), (35, 5), (65, 5), (95, 5)],
        list(EMS_GRADES),
    )
    fp = OSMBuildings(fp_path, damage=ems)
    assert labels_of(fp) == {1: 0, 2: -1, 3: 1, 4: 1}
    assert fp.buildings["damage_grade"].tolist() == list(EMS_GRADES)
    assert fp.counts().to_dict() == {"intact": 1, "damaged": 2, "excluded": 1}
    assert fp.excluded_damage == 1 and fp.unmatched_damage == 0
    # Excluded buildings stay in the dataset, with label -1 in their samples.
    row = int(np.flatnonzero(fp.buildings["building_id"] == 2)[0])
    cx, cy = fp.centroids[row]
    sample = fp[cx - 8 : cx + 8 : 1.0, cy - 8 : cy + 8 : 1.0]
    assert int(sample["label"]) == -1 and int(sample["building_id"]) == 2


def test_grades_are_compared_case_insensitively(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, n=2)
    ems = write_ems(tmp_path, [(5, 5), (35, 5)], ["  destroyed ", "NO VISIBLE DAMAGE"])
    fp = OSMBuildings(fp_path, damage=ems)
    assert labels_of(fp) == {1: 1, 2: 0}
    assert fp.buildings["damage_grade"].tolist() == ["Destroyed", "No visible damage"]


def test_nearest_footprint_within_distance(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, n=2)
    # 5 m east of building 1 (x 0..10), 15 m west of building 2 (x 30..40).
    ems = write_ems(tmp_path, [(15, 5)], ["Damaged"])
    fp = OSMBuildings(fp_path, damage=ems)
    assert labels_of(fp) == {1: 1, 2: 0} and fp.unmatched_damage == 0
    with pytest.warns(UserWarning, match=r"1 of 1 damage features.*within 4 m"):
        near = OSMBuildings(fp_path, damage=ems, damage_max_distance=4)
    assert labels_of(near) == {1: 0, 2: 0} and near.unmatched_damage == 1


def test_distance_is_measured_in_metres_in_geographic_crs(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, n=2)
    ems = write_ems(tmp_path, [(15, 5)], ["Damaged"])
    fp = OSMBuildings(fp_path, crs="EPSG:4326", damage=ems, damage_max_distance=6)
    assert labels_of(fp) == {1: 1, 2: 0}
    with pytest.warns(UserWarning, match="1 of 1 damage features"):
        OSMBuildings(fp_path, crs="EPSG:4326", damage=ems, damage_max_distance=4)


def test_points_beyond_distance_are_counted_and_warned(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, n=2)
    ems = write_ems(tmp_path, [(5, 5), (5, 80)], ["Destroyed", "Destroyed"])
    with pytest.warns(UserWarning, match=r"1 of 2 damage features.*unmatched_damage"):
        fp = OSMBuildings(fp_path, damage=ems)
    assert fp.unmatched_damage == 1
    assert labels_of(fp) == {1: 1, 2: 0}


def test_most_severe_grade_wins(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, n=3)
    points = [(2, 2), (8, 8), (32, 2), (38, 8), (62, 2), (68, 8)]
    grades = [
        "Destroyed",
        "No visible damage",
        "No visible damage",
        "Possibly damaged",
        "Damaged",
        "Possibly damaged",
    ]
    for order in (slice(None), slice(None, None, -1)):
        ems = write_ems(tmp_path, points[order], grades[order])
        fp = OSMBuildings(fp_path, damage=ems)
        assert labels_of(fp) == {1: 1, 2: -1, 3: 1}
        assert fp.buildings["damage_grade"].tolist() == [
            "Destroyed",
            "Possibly damaged",
            "Damaged",
        ]


def test_custom_grade_map(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, n=2)
    ems = write_ems(tmp_path, [(5, 5), (35, 5)], ["Possibly damaged", "Damaged"])
    grade_map = {**DEFAULT_GRADE_MAP, "Possibly damaged": 1, "Damaged": 0}
    fp = OSMBuildings(fp_path, damage=ems, grade_map=grade_map)
    assert labels_of(fp) == {1: 1, 2: 0}
    with pytest.raises(ValueError, match="to different labels"):
        OSMBuildings(fp_path, grade_map={"Damaged": 1, " damaged": 0})
    with pytest.raises(ValueError, match=r"grade_map\['Damaged'\] must be"):
        OSMBuildings(fp_path, damage=ems, grade_map={"Damaged": 2})


def test_unknown_grade_is_an_error(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, n=2)
    ems = write_ems(tmp_path, [(5, 5), (35, 5)], ["Damaged", "Not analysed"])
    with pytest.raises(ValueError, match=r"ems\.geojson.*'Not analysed'.*grade_map="):
        OSMBuildings(fp_path, damage=ems)
    fp = OSMBuildings(
        fp_path, damage=ems, grade_map={**DEFAULT_GRADE_MAP, "not analysed": -1}
    )
    assert labels_of(fp) == {1: 1, 2: -1}


def test_missing_grade_is_an_error_unless_mapped(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, n=2)
    ems = write_ems(tmp_path, [(5, 5), (35, 5)], ["Damaged", None])
    with pytest.raises(ValueError, match="<missing>"):
        OSMBuildings(fp_path, damage=ems)
    fp = OSMBuildings(fp_path, damage=ems, grade_map={**DEFAULT_GRADE_MAP, "": -1})
    assert labels_of(fp) == {1: 1, 2: -1}


def test_ungraded_footprints(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, n=3)
    ems = write_ems(tmp_path, [(5, 5)], ["Destroyed"])
    assert labels_of(OSMBuildings(fp_path, damage=ems)) == {1: 1, 2: 0, 3: 0}
    fp = OSMBuildings(fp_path, damage=ems, ungraded="exclude")
    assert labels_of(fp) == {1: 1, 2: -1, 3: -1}
    assert fp.buildings["damage_grade"].tolist()[1:] == ["not graded"] * 2
    assert fp.counts()["excluded"] == 2
    hotosm = tmp_path / "ref" / "hotosm.geojson"
    gpd.GeoDataFrame(
        {"destroyed_building": ["yes"]}, geometry=boxes(1), crs=UTM
    ).to_file(hotosm)
    with pytest.raises(ValueError, match="ungraded='exclude' needs a graded"):
        OSMBuildings(fp_path, damage=hotosm, ungraded="exclude")


def test_ems_polygons_join_by_overlap(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, n=2)
    path = tmp_path / "ref" / "ems_polygons.gpkg"
    path.parent.mkdir()
    polygons = [
        shapely.box(X0 + 1, Y0, X0 + 10, Y0 + 10),  # 90 % of building 1
        shapely.box(X0 + 36, Y0, X0 + 50, Y0 + 10),  # 40 % of building 2
    ]
    gpd.GeoDataFrame(
        {"damage_gra": ["Damaged", "Destroyed"]}, geometry=polygons, crs=UTM
    ).to_file(path)
    with pytest.warns(UserWarning, match="1 of 2 damage features"):
        fp = OSMBuildings(fp_path, damage=path)
    assert labels_of(fp) == {1: 1, 2: 0}
    fp = OSMBuildings(fp_path, damage=path, damage_overlap=0.3)
    assert labels_of(fp) == {1: 1, 2: 1}


# --------------------------------------------------------------- schemas
def test_schema_detection_and_forced_schema(tmp_path: Path, scene_dir: Path) -> None:
    destroyed = scene_dir / "destroyed.geojson"
    with pytest.raises(
        ValueError, match=r"destroyed\.geojson.*no 'damage_gra' column.*osm_id"
    ):
        OSMBuildings(
            scene_dir / "buildings.gpkg", damage=destroyed, damage_schema="ems"
        )
    with pytest.raises(ValueError, match="damage_schema must be one of"):
        OSMBuildings(scene_dir / "buildings.gpkg", damage_schema="xbd")  # type: ignore[arg-type]
    fp_path = write_footprints(tmp_path, n=2)
    ems = write_ems(tmp_path, [(5, 5), (35, 5)], ["No visible damage", "Damaged"])
    # Forced HOTOSM: every feature is damaged, grades are not read.
    fp = OSMBuildings(fp_path, damage=ems, damage_schema="hotosm")
    assert labels_of(fp) == {1: 1, 2: 1}
    result = join_damage(read_vector(fp_path), ems)
    assert result.schemas == {str(ems): "ems"}
    assert result.labels.tolist() == [0, 1] and result.excluded == 0


def _old_labels(
    footprints: gpd.GeoDataFrame, ref: gpd.GeoDataFrame, overlap: float = 0.5
) -> tuple[np.ndarray, int]:
    """The spatial HOTOSM join of torchgeo-quake 0.1, kept as the reference."""
    damaged = np.zeros(len(footprints), dtype=bool)
    ref = ref[ref.geometry.notna() & ~ref.geometry.is_empty].to_crs(footprints.crs)
    geoms = shapely.make_valid(ref.geometry.values)
    tree = shapely.STRtree(footprints.geometry.values)
    ref_idx, bld_idx = tree.query(geoms, predicate="intersects")
    hit = np.zeros(len(geoms), dtype=bool)
    for r, b in zip(ref_idx, bld_idx, strict=True):
        geom, footprint = geoms[r], footprints.geometry.values[b]
        if geom.geom_type in ("Point", "MultiPoint"):
            ok = True
        else:
            area = footprint.area
            ok = area > 0 and geom.intersection(footprint).area / area >= overlap
        if ok:
            damaged[b] = hit[r] = True
    return damaged.astype(np.int64), int((~hit).sum())


@pytest.mark.parametrize("kind", ["polygons", "points"])
def test_hotosm_join_unchanged(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 400, (300, 2))
    footprints = gpd.GeoDataFrame(
        {"building_id": np.arange(300)},
        geometry=shapely.box(
            X0 + xy[:, 0], Y0 + xy[:, 1], X0 + xy[:, 0] + 8, Y0 + xy[:, 1] + 6
        ),
        crs=UTM,
    )
    shifted = xy[:150] + rng.normal(0, 4, (150, 2))
    x, y = X0 + shifted[:, 0], Y0 + shifted[:, 1]
    geoms = (
        shapely.box(x, y, x + 8, y + 6)
        if kind == "polygons"
        else shapely.points(x + 4, y + 3)
    )
    ref = gpd.GeoDataFrame(
        {"destroyed_building": ["yes"] * 150}, geometry=geoms, crs=UTM
    )
    path = tmp_path / "destroyed.gpkg"
    ref.to_crs(4326).to_file(path)
    expected, unmatched = _old_labels(footprints, read_vector(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = join_damage(footprints, path)
    assert result.schemas == {str(path): "hotosm"}
    np.testing.assert_array_equal(result.labels, expected)
    assert result.unmatched == unmatched and 0 < expected.sum() < 300


def test_hotosm_scene_labels_and_grades(scene_dir: Path) -> None:
    for reference in (
        "destroyed.geojson",
        "destroyed_noid.geojson",
        "destroyed_points.geojson",
    ):
        fp = OSMBuildings(
            scene_dir / "buildings.gpkg", crs=UTM, damage=scene_dir / reference
        )
        damaged = fp.buildings["label"] == 1
        assert set(fp.buildings.loc[damaged, "building_id"]) == {2, 5}
        assert set(fp.buildings.loc[damaged, "damage_grade"]) == {"listed as damaged"}
        assert set(fp.buildings.loc[~damaged, "damage_grade"]) == {""}
        assert fp.counts().to_dict() == {"intact": 7, "damaged": 2}
        assert fp.excluded_damage == 0


# ---------------------------------------------------------- label column
def test_label_column_with_missing_values(tmp_path: Path) -> None:
    fp_path = write_footprints(tmp_path, damaged=[1.0, 0.0, np.nan, 1.0])
    with pytest.warns(UserWarning, match=r"1 of 4 footprints have no value.*'damaged'"):
        fp = OSMBuildings(fp_path, label_field="damaged")
    assert labels_of(fp) == {1: 1, 2: 0, 3: -1, 4: 1}
    assert fp.excluded_damage == 1
    assert fp.counts().to_dict() == {"intact": 1, "damaged": 2, "excluded": 1}
    assert fp.buildings["damage_grade"].iloc[2] == "missing damaged"


def test_label_column_of_grades_and_booleans(tmp_path: Path) -> None:
    fp_path = write_footprints(
        tmp_path, grade=["Destroyed", "no visible damage", "Possibly damaged", None]
    )
    with pytest.warns(UserWarning, match="1 of 4 footprints"):
        fp = OSMBuildings(fp_path, label_field="grade")
    assert labels_of(fp) == {1: 1, 2: 0, 3: -1, 4: -1}
    labels, grades = labels_from_field(
        pd.Series([True, False, "1", "0", "true", 1, 0.0, None], dtype=object)
    )
    assert labels.tolist() == [1, 0, 1, 0, 1, 1, 0, -1]
    assert grades[-1] == "missing label_field"


def test_label_column_errors(tmp_path: Path, scene_dir: Path) -> None:
    fp_path = write_footprints(tmp_path, damaged=["yes", "0", "maybe", "1"])
    with pytest.raises(ValueError, match=r"'damaged' of .*buildings\.gpkg.*'maybe'"):
        OSMBuildings(fp_path, label_field="damaged")
    with pytest.raises(ValueError, match="no label column 'dmg'"):
        OSMBuildings(fp_path, label_field="dmg")
    with pytest.raises(ValueError, match="not both"):
        OSMBuildings(
            fp_path, label_field="damaged", damage=scene_dir / "destroyed.geojson"
        )


# ------------------------------------------------------------- sampler
class SAR(CachedRasterDataset):
    sample_key = "sar"
    filename_glob = "sar.tif"


def test_sampler_skips_excluded_buildings_for_training(
    tmp_path: Path, scene_dir: Path
) -> None:
    buildings = read_vector(scene_dir / "buildings.gpkg")
    points = shapely.make_valid(buildings.geometry.values)
    grades = {2: "Possibly damaged", 5: "Destroyed", 6: "Damaged"}
    ems = gpd.GeoDataFrame(
        {
            "damage_gra": [
                grades.get(int(i), "No visible damage") for i in buildings["osm_id"]
            ]
        },
        geometry=shapely.point_on_surface(points),
        crs=buildings.crs,
    )
    path = tmp_path / "ems.geojson"
    ems.to_file(path, driver="GeoJSON")
    fp = OSMBuildings(scene_dir / "buildings.gpkg", damage=path, city="t")
    assert fp.counts().to_dict() == {"intact": 6, "damaged": 2, "excluded": 1}
    dataset = SAR(scene_dir / "sar.tif") & fp

    with pytest.warns(UserWarning, match="excluded by the damage reference"):
        train = BuildingCentroidSampler(dataset, size=16, negatives_per_positive=20)
    reasons = dict(
        zip(train.skipped["building_id"], train.skipped["reason"], strict=True)
    )
    assert reasons[2] == "excluded by the damage reference (Possibly damaged)"
    assert 2 not in set(train.buildings["building_id"])
    assert set(train.buildings["label"]) == {0, 1}
    assert (
        int(train.skipped.loc[train.skipped["building_id"] == 2, "label"].iloc[0]) == -1
    )

    mapping = BuildingCentroidSampler(dataset, size=16, negatives_per_positive=None)
    assert 2 not in set(mapping.skipped["building_id"])
    kept = mapping.buildings.set_index("building_id")["label"]
    assert kept[2] == -1
    # Every building is either selected or skipped with a reason.
    assert len(mapping) + len(mapping.skipped) == len(fp.buildings)


# ------------------------------------------------------- real EMS grading
@pytest.fixture(scope="module")
def ems_points(shared_data: Path) -> gpd.GeoDataFrame:
    folder = shared_data / "copernicus_ems"
    path = folder / "EMSR648_AOI04_GRA_MONIT01_builtUpP_r1_v1.shp"
    if not path.exists():
        pytest.skip(f"Copernicus EMS grading product not found at {path}")
    return read_vector(path)


def _square_footprints(
    tmp_path: Path, points: gpd.GeoDataFrame, size: float, dx: float = 0.0
) -> Path:
    utm = utm_crs_of(points)
    centres = points.to_crs(utm).geometry
    x, y = centres.x.to_numpy() + dx, centres.y.to_numpy()
    half = size / 2
    frame = gpd.GeoDataFrame(
        {"osm_id": np.arange(1, len(points) + 1)},
        geometry=shapely.box(x - half, y - half, x + half, y + half),
        crs=utm,
    )
    path = tmp_path / "fp" / "squares.gpkg"
    path.parent.mkdir(exist_ok=True)
    frame.to_file(path)
    return path


def test_real_ems_grading_whole_file(
    tmp_path: Path, shared_data: Path, ems_points: gpd.GeoDataFrame
) -> None:
    assert len(ems_points) == 4619 and ems_points.crs.to_epsg() == 4326
    # 5 cm squares: the closest two points are 10 cm apart, so every square
    # holds exactly its own point.
    footprints = _square_footprints(tmp_path, ems_points, size=0.05)
    ems = (
        shared_data / "copernicus_ems" / "EMSR648_AOI04_GRA_MONIT01_builtUpP_r1_v1.shp"
    )
    fp = OSMBuildings(footprints, damage=ems)
    assert fp.unmatched_damage == 0
    assert fp.buildings["damage_grade"].value_counts().to_dict() == {
        "No visible damage": 3692,
        "Possibly damaged": 456,
        "Destroyed": 286,
        "Damaged": 185,
    }
    assert fp.counts().to_dict() == {
        "intact": 3692,
        "damaged": 185 + 286,
        "excluded": 456,
    }
    assert fp.excluded_damage == 456


def test_real_ems_grading_subset_inside_and_nearest(
    tmp_path: Path, shared_data: Path, ems_points: gpd.GeoDataFrame
) -> None:
    # Isolated points: no other point within 30 m, so an 8 m square around each
    # (or shifted 6 m east, the point 2 m outside it) is its only footprint.
    xy = ems_points.to_crs(utm_crs_of(ems_points)).get_coordinates().to_numpy()
    distance, _ = cKDTree(xy).query(xy, k=2)
    subset = ems_points[distance[:, 1] > 30].reset_index(drop=True)
    assert len(subset) > 100
    expected = subset["damage_gra"].map(DEFAULT_GRADE_MAP).to_numpy()
    assert set(expected) == {-1, 0, 1}
    ems = tmp_path / "ems_subset.gpkg"
    subset.to_file(ems)
    for dx in (0.0, 6.0):
        fp = OSMBuildings(_square_footprints(tmp_path, subset, 8.0, dx), damage=ems)
        assert fp.unmatched_damage == 0
        np.testing.assert_array_equal(fp.buildings["label"].to_numpy(), expected)
    with pytest.warns(UserWarning, match=f"{len(subset)} of {len(subset)} damage"):
        fp = OSMBuildings(
            _square_footprints(tmp_path, subset, 8.0, 6.0),
            damage=ems,
            damage_max_distance=1.0,
        )
    assert fp.unmatched_damage == len(subset)
