"""BuildingDamage: any event laid out as a folder of areas."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from torchgeo_quake.datasets import BuildingDamage, KahramanmarasDamage
from torchgeo_quake.datasets.utils import utm_crs_of

SOURCE = "nurdagi"  # the city of the session's scene copied as the user's area
AREA = "north_district"


def copy_area(sim_root: Path, root: Path, area: str, city: str = SOURCE) -> Path:
    """Copy one city folder of the simulated scene as an area of another event."""
    folder = root / area
    shutil.copytree(sim_root / city, folder)
    (folder / "truth.csv").unlink(missing_ok=True)  # simulator-only file
    return folder


def build(root: Path, **kwargs: object) -> BuildingDamage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # windows outside the image
        return BuildingDamage(root, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def event(sim_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An event of one area: a copy of Nurdağı under another name."""
    root = tmp_path_factory.mktemp("event") / "my_event"
    copy_area(sim_root, root, AREA)
    return root


# ------------------------------------------------------------- discovery
def test_find_areas_ignores_hidden_empty_and_partial_folders(
    sim_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "event"
    copy_area(sim_root, root, "b_area", city="osmaniye")
    copy_area(sim_root, root, "a_area", city="osmaniye")
    copy_area(sim_root, root, ".hidden", city="osmaniye")
    (root / "empty").mkdir()
    partial = root / "only_sar"
    partial.mkdir()
    shutil.copy(sim_root / "osmaniye" / "sar.tif", partial / "sar.tif")
    (root / "notes.txt").write_text("not an area")
    assert BuildingDamage.find_areas(root) == ("a_area", "b_area")
    # Footprints in another accepted format still make an area.
    frame = gpd.read_file(partial.parent / "a_area" / "buildings.gpkg")
    frame.to_file(partial / "buildings.geojson", driver="GeoJSON")
    assert BuildingDamage.find_areas(root) == ("a_area", "b_area", "only_sar")


def test_find_areas_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        BuildingDamage.find_areas(missing)
    (tmp_path / "empty" / "area").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no area folder"):
        BuildingDamage.find_areas(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no area folder"):
        BuildingDamage(tmp_path / "empty")


# ---------------------------------------------------------------- counts
def test_counts_equal_the_kahramanmaras_dataset(event: Path, sim_root: Path) -> None:
    generic = build(event)
    assert generic.areas == (AREA,) and generic.cities == (AREA,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        paper = KahramanmarasDamage(sim_root, cities=[SOURCE], scale=0.05)
    assert len(generic) == len(paper) > 0
    np.testing.assert_array_equal(generic.labels, paper.labels)
    np.testing.assert_array_equal(generic.building_ids, paper.building_ids)
    assert set(generic.city_of) == {AREA}
    assert generic.counts().to_numpy().tolist() == paper.counts().to_numpy().tolist()
    report, expected = generic.report(), paper.report()
    assert report.index.tolist() == [AREA, "all"]
    assert report.to_numpy().tolist() == expected.to_numpy().tolist()
    assert report.loc[AREA, "reference_excluded"] == 0
    sample = generic[0]
    assert sample["city"] == AREA
    assert int(sample["label"]) in (0, 1)
    assert tuple(sample["sar"].shape) == (1, 32, 32)
    # The cache lies in the hidden root/.cache, which is not an area.
    assert BuildingDamage.find_areas(event) == (AREA,)


def test_areas_are_free_names_but_must_exist(event: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(event / "south"))):
        build(event, areas=[AREA, "south"])


# --------------------------------------------------------- missing files
@pytest.mark.parametrize(
    ("remove", "missing", "fix"),
    [
        (("sar.tif",), "sar.tif", "Lay out each area as"),
        (("buildings.gpkg",), "buildings.gpkg", "Lay out each area as"),
        (("destroyed.geojson",), "destroyed.geojson", "label_field"),
    ],
)
def test_missing_inputs_name_the_file_and_the_fix(
    sim_root: Path, tmp_path: Path, remove: tuple[str, ...], missing: str, fix: str
) -> None:
    root = tmp_path / "event"
    folder = copy_area(sim_root, root, "town", city="osmaniye")
    for name in remove:
        (folder / name).unlink()
    with pytest.raises(FileNotFoundError) as info:
        build(root, areas=["town"], modalities=["sar", "footprint"])
    message = str(info.value)
    assert str(folder / missing) in message
    assert fix in message
    assert "areas=" in message


def test_missing_optional_modality_names_the_fix(
    sim_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "event"
    folder = copy_area(sim_root, root, "town", city="osmaniye")
    (folder / "dsm.tif").unlink()
    with pytest.raises(FileNotFoundError, match=r"(?s)dsm\.tif.*drop the missing"):
        build(root, modalities=["sar", "footprint", "dsm"])


# ----------------------------------------------------------- references
def test_label_field_replaces_the_reference(
    event: Path, sim_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "event"
    folder = copy_area(sim_root, root, AREA)
    damaged = set(gpd.read_file(folder / "destroyed.geojson")["osm_id"])
    (folder / "destroyed.geojson").unlink()
    footprints = gpd.read_file(folder / "buildings.gpkg")
    footprints["damaged"] = footprints["osm_id"].isin(damaged).astype(int)
    (folder / "buildings.gpkg").unlink()
    footprints.to_file(folder / "buildings.gpkg")
    labelled = build(root, label_field="damaged")
    reference = build(event)
    np.testing.assert_array_equal(labelled.labels, reference.labels)
    np.testing.assert_array_equal(labelled.building_ids, reference.building_ids)
    assert labelled.report().to_numpy().tolist() == (
        reference.report().to_numpy().tolist()
    )
    assert labelled._area_files(AREA)["damage"] is None


def test_ems_grading_excludes_possibly_damaged(
    event: Path, sim_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "event"
    folder = copy_area(sim_root, root, AREA)
    destroyed = gpd.read_file(folder / "destroyed.geojson")
    (folder / "destroyed.geojson").unlink()
    utm = utm_crs_of(destroyed)
    # Copernicus EMS-style points (no building id) inside the damaged
    # footprints: the first five graded "Possibly damaged", the rest "Destroyed".
    points = destroyed.to_crs(utm).representative_point()
    grades = ["Possibly damaged"] * 5 + ["Destroyed"] * (len(points) - 5)
    ems = gpd.GeoDataFrame(
        {"obj_type": "11-Residential Buildings", "damage_gra": grades},
        geometry=points.to_numpy(),
        crs=utm,
    ).to_crs(4326)
    ems.to_file(folder / "damage.gpkg")
    graded = build(root)
    report = graded.report()
    assert report.loc[AREA, "reference_excluded"] == 5
    assert report.loc[AREA, "reference_damaged"] == len(points) - 5
    assert report.loc[AREA, "unmatched_damage"] == 0
    assert set(graded.labels) <= {0, 1}
    possibly = set(destroyed["osm_id"].iloc[:5])
    excluded = graded.skipped[graded.skipped["reason"].str.contains("excluded")]
    assert set(excluded["building_id"]) == possibly
    assert set(excluded["city"]) == {AREA}
    assert not possibly & set(graded.building_ids.tolist())
    # The same buildings as the HOTOSM layer, less the excluded ones.
    hotosm = build(event)
    assert set(graded.building_ids.tolist()) <= set(hotosm.building_ids.tolist())
    assert int(graded.labels.sum()) == int(hotosm.labels.sum()) - 5
    # With "Possibly damaged" mapped to damaged, nothing is excluded.
    grade_map = {
        "No visible damage": 0,
        "Possibly damaged": 1,
        "Damaged": 1,
        "Destroyed": 1,
    }
    permissive = build(root, grade_map=grade_map, damage_schema="ems")
    assert permissive.report().loc[AREA, "reference_excluded"] == 0
    assert int(permissive.labels.sum()) == int(hotosm.labels.sum())
