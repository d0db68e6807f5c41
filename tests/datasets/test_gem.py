import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from pyproj import CRS, Geod, Transformer

from torchgeo_quake.datasets.gem import (
    CODE_LEVEL_YEAR,
    GEM_FEATURE_DESCRIPTIONS,
    GEM_FEATURE_NAMES,
    GEMExposure,
)
from torchgeo_quake.datasets.taxonomy import STRUCTURE_CLASSES

DATA = Path(__file__).parents[1] / "data" / "gem"
REAL = Path(__file__).parents[2] / ".." / "shared" / "data" / "gem"
REAL_FILES = [REAL / f"Exposure_{k}_Turkey_Adm1.csv" for k in ("Res", "Com", "Ind")]

# Fixture locations (tests/data/gem/data.py).
A = (36.90, 37.58)
B = (36.95, 37.58)
C = (36.90, 37.60)
FRACTIONS = [f"frac_{c}" for c in STRUCTURE_CLASSES]


def feature(values: np.ndarray, name: str) -> float:
    return float(values[..., GEM_FEATURE_NAMES.index(name)])


@pytest.fixture(scope="module")
def points() -> GEMExposure:
    return GEMExposure(DATA / "points.csv")


@pytest.fixture(scope="module")
def real() -> GEMExposure:
    missing = [str(p) for p in REAL_FILES if not p.exists()]
    if missing:
        pytest.skip(f"GEM Turkey Adm1 exposure files not available: {missing}")
    return GEMExposure(REAL_FILES)


def location(exposure: GEMExposure, lon: float, lat: float) -> np.ndarray:
    row = np.flatnonzero(
        np.isclose(exposure.locations["lon"], lon)
        & np.isclose(exposure.locations["lat"], lat)
    )
    assert len(row) == 1
    return exposure.features[row[0]]


class TestFeatureNames:
    def test_names(self) -> None:
        assert len(GEM_FEATURE_NAMES) == 22
        assert len(set(GEM_FEATURE_NAMES)) == len(GEM_FEATURE_NAMES)
        assert set(GEM_FEATURE_DESCRIPTIONS) == set(GEM_FEATURE_NAMES)


class TestPoints:
    def test_aggregation(self, points: GEMExposure) -> None:
        assert points.kind == "points"
        assert len(points) == 3
        assert points.feature_names == GEM_FEATURE_NAMES
        assert points.features.shape == (3, len(GEM_FEATURE_NAMES))
        assert points.features.dtype == np.float32
        assert points.locations.crs.to_epsg() == 4326
        assert sorted(points.locations["assets"]) == [1, 2, 2]
        assert points.skipped == {}
        assert points.nan_filled == {}
        assert points.metric_crs is not None
        assert points.metric_crs.to_epsg() == 32637  # UTM 37N

    def test_location_a_by_hand(self, points: GEMExposure) -> None:
        # a1: 3 RC-infill buildings (CDL, H:3, 1980-1990), a2: 1 URM (H:2, 1960s).
        a = location(points, *A)
        expected = {
            "frac_rc_infill": 0.75,
            "frac_urm": 0.25,
            "frac_code_cdl": 0.75,
            "frac_code_cdn": 0.0,
            "mean_construction_year": (3 * 1985 + 1965) / 4,
            "mean_storeys": (3 * 3 + 2) / 4,
            "log_replacement_cost_per_building": math.log1p(1_000_000 / 4),
            "log_structural_cost_per_building": math.log1p(350_000 / 4),
            "log_nonstructural_cost_per_building": math.log1p(480_000 / 4),
            "occupants_night_per_building": 15 / 4,
            "occupants_day_per_building": 7 / 4,
            "frac_res": 1.0,
            "frac_com": 0.0,
        }
        for name, value in expected.items():
            assert feature(a, name) == pytest.approx(value, rel=1e-6), name

    def test_location_c_by_hand(self, points: GEMExposure) -> None:
        # c1: 4 wood, no period, no code level; c2: 1 RC wall, IND, 1998-2008.
        c = location(points, *C)
        assert feature(c, "frac_wood") == pytest.approx(0.8)
        assert feature(c, "frac_rc_wall_dual") == pytest.approx(0.2)
        assert feature(c, "mean_construction_year") == pytest.approx(2003)
        assert feature(c, "mean_storeys") == pytest.approx(2.0)
        assert feature(c, "frac_res") == pytest.approx(0.8)
        assert feature(c, "frac_ind") == pytest.approx(0.2)
        b = location(points, *B)
        assert feature(b, "mean_storeys") == pytest.approx(5.5)  # HBET:4-7
        assert feature(b, "frac_com") == pytest.approx(1.0)

    def test_fractions_sum_to_one(self, points: GEMExposure) -> None:
        f = points.locations
        np.testing.assert_allclose(f[FRACTIONS].sum(axis=1), 1.0, rtol=1e-12)
        occ = ["frac_res", "frac_com", "frac_ind"]
        np.testing.assert_allclose(f[occ].sum(axis=1), 1.0, rtol=1e-12)
        codes = [n for n in GEM_FEATURE_NAMES if n.startswith("frac_code_")]
        assert (f[codes].sum(axis=1) <= 1 + 1e-12).all()

    def test_nearest_neighbour(self, points: GEMExposure) -> None:
        lon = np.array([36.901, 36.94, 36.90, B[0]])
        lat = np.array([37.581, 37.58, 37.595, B[1]])
        feats, dist = points.features_at(lon, lat, "EPSG:4326", return_distance=True)
        assert feats.shape == (4, len(GEM_FEATURE_NAMES))
        assert feats.dtype == np.float32
        expected = [A, B, C, B]
        for i, loc in enumerate(expected):
            np.testing.assert_array_equal(feats[i], location(points, *loc))
            _, _, metres = Geod(ellps="WGS84").inv(lon[i], lat[i], *loc)
            assert dist[i] == pytest.approx(metres, rel=5e-3, abs=1e-3)
        assert dist[3] == pytest.approx(0.0, abs=1e-3)
        assert dist[1] == pytest.approx(882, rel=1e-2)  # 0.01 deg of longitude

    def test_query_in_projected_crs(self, points: GEMExposure) -> None:
        to_utm = Transformer.from_crs(4326, 32637, always_xy=True)
        x, y = to_utm.transform([36.94, 36.90], [37.58, 37.595])
        feats = points.features_at(np.asarray(x), np.asarray(y), CRS(32637))
        np.testing.assert_array_equal(feats[0], location(points, *B))
        np.testing.assert_array_equal(feats[1], location(points, *C))
        index, dist = points.nearest(x, y, 32637)
        assert index.dtype == np.intp
        assert dist[0] == pytest.approx(882, rel=1e-2)

    def test_given_metric_crs(self) -> None:
        exposure = GEMExposure(str(DATA / "points.csv"), crs="EPSG:3857")
        assert exposure.metric_crs == CRS(3857)
        geographic = GEMExposure([DATA / "points.csv"], crs="EPSG:4326")
        assert geographic.metric_crs is not None
        assert geographic.metric_crs.to_epsg() == 32637

    def test_bad_queries(self, points: GEMExposure) -> None:
        with pytest.raises(ValueError, match="equal length"):
            points.features_at(np.zeros(2), np.zeros(3), "EPSG:4326")
        with pytest.raises(ValueError, match="not finite"):
            points.features_at(np.array([np.nan]), np.array([37.5]), "EPSG:4326")

    def test_admin_units_of_points(self, points: GEMExposure) -> None:
        feats = points.features_for_admin(["tr-46", "Osmaniye"])
        assert feats.shape == (2, len(GEM_FEATURE_NAMES))
        # TR-46 holds a1, a2 (4 buildings) and b1 (2 steel buildings).
        assert feature(feats[0], "frac_steel") == pytest.approx(2 / 6)
        np.testing.assert_array_equal(feats[1], location(points, *C))

    def test_aliases_and_code_level_years(self) -> None:
        exposure = GEMExposure(DATA / "points_aliases.csv")
        assert len(exposure) == 2
        assert exposure.admin_units is None
        a = location(exposure, *A)
        b = location(exposure, *B)
        # No period column: years from the code level (a2 has none, so A is CDL).
        assert feature(a, "mean_construction_year") == CODE_LEVEL_YEAR["CDL"]
        assert feature(b, "mean_construction_year") == CODE_LEVEL_YEAR["CDM"]
        points = GEMExposure(DATA / "points.csv")
        year = GEM_FEATURE_NAMES.index("mean_construction_year")
        np.testing.assert_allclose(
            np.delete(a, year), np.delete(location(points, *A), year), rtol=1e-6
        )
        with pytest.raises(ValueError, match="no ID_1/NAME_1"):
            exposure.features_for_admin(["TR-46"])

    def test_occupancy_from_taxonomy(self, tmp_path: Path) -> None:
        expected = {
            "RES2A": "res",
            "MIX1": "res",
            "MIX2": "com",
            "MIX3": "com",
            "MIX4": "res",
            "MIX5": "ind",
            "MIX6": "ind",
            "COM3": "com",
            "GOV1": "com",
            "EDU2": "com",
            "IND": "ind",
            "AGR1": "ind",
        }
        lines = ["lon,lat,taxonomy,number,structural,nonstructural,day,night"]
        for i, code in enumerate(expected):
            lines.append(f"{36 + i / 100},37,CR/LFM/H:1/{code},1,1,1,1,1")
        lines.append(f"{36 + len(expected) / 100},37,CR/LFM/H:1,1,1,1,1,1")
        path = tmp_path / "occupancy.csv"
        path.write_text("\n".join(lines) + "\n")
        exposure = GEMExposure(path)
        occ = exposure.locations.sort_values("lon")[
            ["frac_res", "frac_com", "frac_ind"]
        ]
        for row, cls in zip(occ.to_numpy(), [*expected.values(), None], strict=True):
            if cls is None:  # no occupancy: a third each
                np.testing.assert_allclose(row, 1 / 3)
            else:
                assert row[["res", "com", "ind"].index(cls)] == 1.0, cls

    def test_pickle(self, points: GEMExposure) -> None:
        points.features_at(np.array([36.9]), np.array([37.58]), 4326)
        clone = pickle.loads(pickle.dumps(points))
        np.testing.assert_array_equal(
            clone.features_at(np.array([36.95]), np.array([37.58]), 4326),
            points.features_at(np.array([36.95]), np.array([37.58]), 4326),
        )


class TestAdmin:
    def test_fixture(self) -> None:
        exposure = GEMExposure(DATA / "admin.csv")
        assert exposure.kind == "admin"
        assert len(exposure) == 2
        assert exposure.metric_crs is None
        km = exposure.features_for_admin(["KAHRAMANMARAŞ"])[0]
        # 10 RC infill (Res), 10 URM with MIX1 in the Res file, 5 precast (Com).
        assert feature(km, "frac_rc_infill") == pytest.approx(0.4)
        assert feature(km, "frac_urm") == pytest.approx(0.4)
        assert feature(km, "frac_rc_other") == pytest.approx(0.2)
        assert feature(km, "frac_res") == pytest.approx(0.8)
        assert feature(km, "frac_com") == pytest.approx(0.2)
        assert feature(km, "log_replacement_cost_per_building") == pytest.approx(
            math.log1p(300_000)
        )
        assert feature(km, "occupants_night_per_building") == pytest.approx(4.0)
        np.testing.assert_array_equal(
            exposure.features_for_admin("tr-80"),
            exposure.features_for_admin(["osmanıye"]),
        )

    def test_unknown_unit(self) -> None:
        exposure = GEMExposure(DATA / "admin.csv")
        with pytest.raises(KeyError, match=r"unknown admin unit 'TR-01'.*TR-46"):
            exposure.features_for_admin(["TR-01"])

    def test_no_coordinates(self) -> None:
        exposure = GEMExposure(DATA / "admin.csv")
        with pytest.raises(ValueError, match="features_for_admin"):
            exposure.features_at(np.array([36.9]), np.array([37.5]), "EPSG:4326")

    def test_real_study_provinces(self, real: GEMExposure) -> None:
        assert real.kind == "admin"
        assert len(real) == 81
        units = ["TR-46", "TR-27", "TR-80"]
        feats = real.features_for_admin(units)
        assert feats.shape == (3, len(GEM_FEATURE_NAMES))
        assert np.isfinite(feats).all()
        idx = [GEM_FEATURE_NAMES.index(n) for n in FRACTIONS]
        np.testing.assert_allclose(feats[:, idx].sum(axis=1), 1.0, rtol=1e-5)
        by_name = real.features_for_admin(["Kahramanmaraş", "GAZİANTEP", "osmaniye"])
        np.testing.assert_array_equal(feats, by_name)
        # Masonry and RC infill dominate the provinces (paper, Fig. 2).
        for row in feats:
            assert feature(row, "frac_rc_infill") + feature(row, "frac_urm") > 0.8


class TestDirectory:
    def test_directory_skips_summary(self, tmp_path: Path) -> None:
        shutil.copy(DATA / "admin.csv", tmp_path / "Exposure_Res_X_Adm1.csv")
        (tmp_path / "Exposure_Summary_Adm1.csv").write_text(
            "ID_1,NAME_1,BUILDINGS\nTR-46,KAHRAMANMARAŞ,25\n"
        )
        with pytest.warns(UserWarning, match="no taxonomy column"):
            exposure = GEMExposure(tmp_path)
        assert len(exposure.paths) == 1
        assert len(exposure) == 2

    def test_empty_directory(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match=r"no \*\.csv"):
            GEMExposure(tmp_path)


class TestBadInput:
    def test_missing_file(self) -> None:
        with pytest.raises(FileNotFoundError, match=r"does_not_exist\.csv"):
            GEMExposure(DATA / "does_not_exist.csv")

    def test_no_paths(self) -> None:
        with pytest.raises(ValueError, match="at least one path"):
            GEMExposure([])

    def test_empty_file(self) -> None:
        with pytest.raises(ValueError, match=r"empty\.csv' is empty"):
            GEMExposure(DATA / "empty.csv")

    def test_header_only(self) -> None:
        with pytest.raises(ValueError, match="header but no rows"):
            GEMExposure(DATA / "header_only.csv")

    def test_missing_columns(self) -> None:
        with pytest.raises(ValueError, match=r"missing_columns\.csv") as info:
            GEMExposure(DATA / "missing_columns.csv")
        message = str(info.value)
        assert "['structural', 'nonstructural', 'day', 'night']" in message
        assert "cost_structural_usd" in message  # accepted aliases
        assert "occupants_per_asset_night" in message
        # What the feature vector needs them for.
        assert "occupants_day_per_building" in message

    def test_only_some_occupancy_periods(self, tmp_path: Path) -> None:
        path = tmp_path / "night_only.csv"
        lines = (DATA / "points.csv").read_text().splitlines()
        header = lines[0].split(",")
        day = header.index("day")
        path.write_text(
            "\n".join(
                ",".join(v for i, v in enumerate(line.split(",")) if i != day)
                for line in lines
            )
            + "\n"
        )
        # The feature vector (a model, training) needs day-time occupants.
        with pytest.raises(ValueError, match=r"night_only\.csv.*\['day'\]"):
            GEMExposure(path)
        # A reader that needs less gets them as unknown (NaN), not 0.
        gem = GEMExposure(path, required_columns=("taxonomy", "number"))
        full = GEMExposure(DATA / "points.csv")
        assert gem.absent_columns == ("total", "day")  # total: the sum of costs
        assert gem.missing_features == {"occupants_day_per_building": "day"}
        day_feature = GEM_FEATURE_NAMES.index("occupants_day_per_building")
        assert np.isnan(gem.features[:, day_feature]).all()
        others = np.delete(np.arange(len(GEM_FEATURE_NAMES)), day_feature)
        np.testing.assert_allclose(
            gem.features[:, others], full.features[:, others], rtol=1e-6
        )
        with pytest.raises(ValueError, match=r"\['occupants'\] are not GEM"):
            GEMExposure(path, required_columns=("occupants",))

    def test_features_without_columns(self) -> None:
        from torchgeo_quake.datasets.gem_features import features_without

        assert features_without(["night"]) == {"occupants_night_per_building": "night"}
        # The replacement cost needs a total or its components.
        assert "log_replacement_cost_per_building" not in features_without(
            ["structural"]
        )
        assert features_without(["total", "structural"]) == {
            "log_replacement_cost_per_building": "total and structural",
            "log_structural_cost_per_building": "structural",
        }

    def test_missing_coordinates(self, tmp_path: Path) -> None:
        path = tmp_path / "no_xy.csv"
        path.write_text(
            "taxonomy,number,structural,nonstructural,day,night\nUNK,1,1,1,1,1\n"
        )
        with pytest.raises(ValueError, match=r"\['lon', 'lat'\].*longitude.*id_1"):
            GEMExposure(path)

    def test_bad_taxonomy(self) -> None:
        with pytest.raises(ValueError, match=r"bad_taxonomy\.csv', line 3") as info:
            GEMExposure(DATA / "bad_taxonomy.csv")
        assert "CR/LFINF(MUR+CBH/H:3/RES" in str(info.value)

    def test_non_numeric(self) -> None:
        with pytest.raises(ValueError, match=r"non-numeric 'structural'.*'12x'.*3"):
            GEMExposure(DATA / "non_numeric.csv")

    def test_bad_period(self) -> None:
        with pytest.raises(ValueError, match=r"bad_period\.csv', line 2.*sometime"):
            GEMExposure(DATA / "bad_period.csv")

    def test_mixed_kinds(self) -> None:
        with pytest.raises(ValueError, match="mix point assets and admin"):
            GEMExposure([DATA / "points.csv", DATA / "admin.csv"])

    def test_nan_cells(self) -> None:
        with pytest.warns(UserWarning, match="skipped rows"):
            exposure = GEMExposure(DATA / "nan_cells.csv")
        assert exposure.skipped == {
            "nan_coordinates": 2,
            "nan_number": 1,
            "nonpositive_number": 1,
        }
        assert exposure.nan_filled == {"nonstructural": 1, "night": 1, "taxonomy": 1}
        assert np.isfinite(exposure.features).all()
        a = location(exposure, *A)
        # a1's nonstructural cost counts as 0: (0 + 30000) / 4 buildings.
        assert feature(a, "log_nonstructural_cost_per_building") == pytest.approx(
            math.log1p(30_000 / 4)
        )
        b = location(exposure, *B)
        assert feature(b, "occupants_night_per_building") == 0.0
        c = location(exposure, *C)  # the row with an empty taxonomy is UNK
        assert feature(c, "frac_other") == 1.0
        # No year nor storeys known at C: dataset-wide building-weighted means.
        assert feature(c, "mean_storeys") == pytest.approx((9 + 2 + 2 * 5.5) / 6)

    def test_all_rows_skipped(self, tmp_path: Path) -> None:
        path = tmp_path / "all_nan.csv"
        path.write_text(
            "lon,lat,taxonomy,number,structural,nonstructural,day,night\n"
            ",,UNK,1,1,1,1,1\n"
        )
        with pytest.raises(ValueError, match="no usable rows"):
            GEMExposure(path)


class TestBuildingsByAdminUnit:
    """``OSMBuildings(exposure=..., admin_unit=/admin_field=)``."""

    SCENE = Path(__file__).parents[1] / "data" / "scene"

    def test_admin_files_need_a_unit(self) -> None:
        from torchgeo_quake.datasets import OSMBuildings

        exposure = GEMExposure(DATA / "admin.csv")
        with pytest.raises(
            ValueError, match=r"admin\.csv.*without coordinates.*admin_unit="
        ):
            OSMBuildings(self.SCENE / "buildings.gpkg", exposure=exposure)

    def test_one_unit_for_all_buildings(self) -> None:
        from torchgeo_quake.datasets import OSMBuildings

        exposure = GEMExposure(DATA / "admin.csv")
        fp = OSMBuildings(
            self.SCENE / "buildings.gpkg",
            crs="EPSG:32637",
            res=2.5,
            exposure=exposure,
            admin_unit="tr-46",
        )
        expected = exposure.features_for_admin(["KAHRAMANMARAŞ"])[0]
        assert fp.gem is not None and fp.gem.shape == (9, len(GEM_FEATURE_NAMES))
        np.testing.assert_array_equal(fp.gem, np.tile(expected, (9, 1)))
        cx, cy = fp.centroids[0]
        query = (slice(cx - 20, cx + 20, 2.5), slice(cy - 20, cy + 20, 2.5))
        np.testing.assert_array_equal(fp[query]["gem"].numpy(), expected)
        empty = (slice(500_090.0, 500_110.0, 2.5), slice(4_109_880.0, 4_109_900.0, 2.5))
        assert int(fp[empty]["building_id"]) == -1
        np.testing.assert_array_equal(fp[empty]["gem"].numpy(), expected)

    def test_unit_column_of_the_footprints(self, tmp_path: Path) -> None:
        import geopandas as gpd

        from torchgeo_quake.datasets import OSMBuildings

        frame = gpd.read_file(self.SCENE / "buildings.gpkg")
        frame["province"] = ["TR-46", "OSMANİYE"] * 4 + [None]
        frame.to_file(tmp_path / "buildings.gpkg")
        exposure = GEMExposure(DATA / "admin.csv")
        with pytest.warns(UserWarning, match=r"missing admin unit \(province\): 1"):
            fp = OSMBuildings(
                tmp_path / "buildings.gpkg", exposure=exposure, admin_field="province"
            )
        assert list(fp.skipped["building_id"]) == [9]
        units = dict(zip(frame["osm_id"], frame["province"], strict=True))
        assert fp.gem is not None
        for bid, vector in zip(fp.buildings["building_id"], fp.gem, strict=True):
            np.testing.assert_array_equal(
                vector, exposure.features_for_admin([units[bid]])[0]
            )
        with pytest.raises(ValueError, match=r"no admin unit column 'nope'"):
            OSMBuildings(
                tmp_path / "buildings.gpkg", exposure=exposure, admin_field="nope"
            )

    def test_unknown_unit_names_the_file(self) -> None:
        from torchgeo_quake.datasets import OSMBuildings

        with pytest.raises(
            ValueError, match=r"admin\.csv.*unknown admin unit 'TR-01'.*TR-46"
        ):
            OSMBuildings(
                self.SCENE / "buildings.gpkg",
                exposure=GEMExposure(DATA / "admin.csv"),
                admin_unit="TR-01",
            )
        with pytest.raises(ValueError, match="need exposure="):
            OSMBuildings(self.SCENE / "buildings.gpkg", admin_unit="TR-46")

    def test_real_turkey_files(self, real: GEMExposure) -> None:
        from torchgeo_quake.datasets import OSMBuildings

        fp = OSMBuildings(
            self.SCENE / "buildings.gpkg", exposure=real, admin_unit="Kahramanmaraş"
        )
        assert fp.gem is not None
        np.testing.assert_array_equal(fp.gem[0], real.features_for_admin(["TR-46"])[0])
        assert np.isfinite(fp.gem).all()
