import json
import os
import pickle
import shutil
import warnings
from pathlib import Path

import h5py
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import rasterio
import torch
from matplotlib.figure import Figure
from pyproj import CRS, Transformer
from torch.utils.data import DataLoader
from torchgeo.datasets import stack_samples
from torchgeo.samplers import GridGeoSampler

from torchgeo_quake.datasets.csk import CSKSAR
from torchgeo_quake.datasets.sar_products import capella_info, read_csk

matplotlib.use("Agg")

DATA = Path(__file__).parent.parent / "data" / "csk"
GTC = DATA / "csk_gtc.h5"
GEC = DATA / "csk_gec.h5"
AMPLITUDE = DATA / "sar_amplitude.tif"
INTENSITY = DATA / "sar_intensity.tif"
CAPELLA = DATA / "CAPELLA_C05_SP_GEO_HH_20230210073142_20230210073156.tif"
UMBRA = DATA / "2023-02-09-07-47-21_UMBRA-04_GEC.tif"
UTM37N = CRS.from_epsg(32637)


def write_gtc(
    path: Path,
    image: np.ndarray,
    origin: tuple[float, float] = (400000.0, 4100000.0),
    line_spacing: float = 2.5,
    column_spacing: float = 2.5,
    rescaling: float = 2.0,
    dataset: str = "S01/MBI",
    drop: tuple[str, ...] = (),
) -> None:
    """Write the attributes GDAL's HDF5 driver needs for a CSK L1D (GTC) product."""
    root = {
        "Mission ID": np.bytes_("CSK"),
        "Product Type": np.bytes_("GTC_B"),
        "Projection ID": np.bytes_("UTM"),
        "Map Projection Zone": np.int32(37),
        "Ellipsoid Designator": np.bytes_("WGS84"),
        "Map Projection Centre": np.array([0.0, 39.0]),
        "Map Projection Scale Factor": np.float64(0.9996),
        "Map Projection False East-North": np.array([500000.0, 0.0]),
        "Rescaling Factor": np.float64(rescaling),
    }
    with h5py.File(path, "w") as handle:
        for name, value in root.items():
            if name not in drop:
                handle.attrs[name] = value
        data = handle.create_dataset(dataset, data=image)
        data.attrs["Top Left East-North"] = np.array(origin)
        data.attrs["Line Spacing"] = np.float64(line_spacing)
        data.attrs["Column Spacing"] = np.float64(column_spacing)
        handle.create_dataset("S01/QLK", data=np.zeros((2, 2), dtype=np.uint8))


def read_h5(path: Path, dataset: str = "S01/SBI") -> tuple[np.ndarray, float]:
    with h5py.File(path, "r") as handle:
        return handle[dataset][()], float(handle.attrs["Rescaling Factor"])


def masked(values: np.ndarray) -> np.ndarray:
    out = values.astype(np.float64)
    out[~(out > 0)] = np.nan
    return out


class TestCSKHDF5:
    def test_gtc_georeferenced_by_gdal(self, tmp_path: Path) -> None:
        dn = (np.arange(6 * 8).reshape(6, 8) * 3 + 10).astype(np.uint16)
        path = tmp_path / "CSKS4_GTC_B_HI_0A_HH_RD_SF_20230225.h5"
        write_gtc(path, dn)
        ds = CSKSAR(path)
        assert ds.files == [f'HDF5:"{path}"://S01/MBI']
        assert ds.crs == UTM37N
        assert ds.crs.to_epsg() == 32637
        assert ds.crs.name == "WGS 84 / UTM zone 37N"  # labelled, not GDAL's TM
        assert ds.res == (2.5, 2.5)
        np.testing.assert_allclose(
            ds.index.total_bounds, (400000.0, 4100000.0 - 15.0, 400020.0, 4100000.0)
        )
        np.testing.assert_allclose(ds.grid().array[0], dn / 2.0, rtol=1e-6)
        # rows 2-3, columns 2-5
        sample = ds[400005.0:400015.0:2.5, 4099990.0:4099995.0:2.5]
        assert sample["sar"].dtype == torch.float32
        assert sample["sar"].shape == (1, 2, 4)
        np.testing.assert_allclose(sample["sar"][0].numpy(), dn[2:4, 2:6] / 2.0)
        assert sample["crs"] == UTM37N

    def test_gtc_fixture(self) -> None:
        ds = CSKSAR(GTC)
        dn, rescaling = read_h5(GTC)
        assert rescaling == 4.0
        np.testing.assert_allclose(
            ds.index.total_bounds, (317000.0, 4160940.0, 317080.0, 4161000.0)
        )
        grid = ds.grid().array[0]
        np.testing.assert_allclose(grid, masked(dn) / rescaling, rtol=1e-6)
        assert np.isnan(grid[:, :3]).all()  # zero border is nodata
        x0, y1 = 317000.0, 4161000.0
        sample = ds[x0 : x0 + 10 * 2.5 : 2.5, y1 - 4 * 2.5 : y1 : 2.5]["sar"][0]
        expected = np.nan_to_num(masked(dn[:4, :10]) / rescaling)
        np.testing.assert_allclose(sample.numpy(), expected, rtol=1e-6)
        window = (slice(x0, x0 + 10 * 2.5, 2.5), slice(y1 - 10.0, y1, 2.5))
        assert ds.nodata_fraction(window) == pytest.approx(0.3)

    def test_torchgeo_sampler(self) -> None:
        ds = CSKSAR(GTC)
        dn, rescaling = read_h5(GTC)
        expected = np.nan_to_num(masked(dn) / rescaling)
        sampler = GridGeoSampler(ds, size=8, stride=8)
        loader = DataLoader(ds, sampler=sampler, batch_size=4, collate_fn=stack_samples)
        count = 0
        for batch in loader:
            assert batch["sar"].shape[1:] == (1, 8, 8)
            for patch, bounds in zip(batch["sar"], batch["bounds"], strict=True):
                col = round((bounds[0].start - 317000.0) / 2.5)
                row = round((4161000.0 - bounds[1].stop) / 2.5)
                np.testing.assert_allclose(
                    patch[0].numpy(), expected[row : row + 8, col : col + 8], rtol=1e-6
                )
                count += 1
        assert count == 12  # 3 x 4 windows of 8 px over 24 x 32 pixels

    def test_gec_uint16_and_metadata(self) -> None:
        ds = CSKSAR(GEC)
        dn, rescaling = read_h5(GEC)
        assert dn.dtype == np.uint16
        np.testing.assert_allclose(
            ds.index.total_bounds, (317020.0, 4160950.0, 317070.0, 4160990.0)
        )
        np.testing.assert_allclose(ds.grid().array[0], dn / rescaling, rtol=1e-6)
        meta = ds.metadata(GEC)
        assert meta == ds.metadata(ds.files[0])
        assert meta["product"] == "csk"
        assert meta["level"] == "L1C"
        assert meta["product_type"] == "GEC_B"
        assert meta["mission"] == "CSK (CSKS4)"
        assert meta["mode"] == "HIMAGE"
        assert meta["polarisation"] == "HH"
        assert meta["incidence_angle"] == pytest.approx(30.5)
        assert meta["look_side"] == "RIGHT"
        assert meta["orbit_direction"] == "DESCENDING"
        assert meta["date"] == "2023-02-25T15:31:10"
        assert meta["radiometry"] == "amplitude"

    def test_calibrate_sigma0(self) -> None:
        ds = CSKSAR(GTC, radiometry="intensity", calibrate=True)
        dn, rescaling = read_h5(GTC)
        # Range spreading loss compensated (Rref^(2*1)), incidence angle not,
        # calibration constant not compensated (K = 2.5e11).
        factor = 650000.0**2 / 2.5e11
        expected = masked(dn) ** 2 / rescaling**2 * factor
        np.testing.assert_allclose(ds.grid().array[0], expected, rtol=1e-5)
        assert ds.metadata(GTC)["quantity"] == "sigma0"

    def test_calibrate_needs_constant(self, tmp_path: Path) -> None:
        path = tmp_path / "gtc.h5"
        write_gtc(path, np.ones((4, 4), dtype=np.float32))
        with pytest.raises(ValueError, match="Calibration Constant"):
            CSKSAR(path, calibrate=True)

    def test_non_square_pixels(self, tmp_path: Path) -> None:
        dn = (np.arange(6 * 8).reshape(6, 8) + 1).astype(np.float32)
        path = tmp_path / "gtc.h5"
        write_gtc(path, dn, line_spacing=2.0, column_spacing=3.0, rescaling=1.0)
        with warnings.catch_warnings():
            # GDAL 3.10 swaps the spacings: CSKSAR warns and uses the attributes.
            warnings.simplefilter("ignore", UserWarning)
            ds = CSKSAR(path)
        assert ds.res == (3.0, 2.0)
        np.testing.assert_allclose(
            ds.index.total_bounds, (400000.0, 4099988.0, 400024.0, 4100000.0)
        )
        np.testing.assert_allclose(ds.grid().array[0], dn)
        sample = ds[400003.0:400009.0:3.0, 4099996.0:4100000.0:2.0]["sar"][0]
        np.testing.assert_allclose(sample.numpy(), dn[:2, 1:3])

    def test_user_crs_and_res_with_corrected_georeferencing(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "gtc.h5"
        write_gtc(path, np.ones((6, 8)), line_spacing=2.0, column_spacing=3.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ds = CSKSAR(path, crs=UTM37N, res=1.0)
        assert ds.res == (1.0, 1.0)
        np.testing.assert_allclose(
            ds.index.total_bounds, (400000.0, 4099988.0, 400024.0, 4100000.0)
        )
        assert ds.grid().array.shape == (1, 12, 24)

    def test_projection_centre_at_scene_centre(self, tmp_path: Path) -> None:
        # If 'Map Projection Centre' held the scene centre, GDAL would build a
        # Transverse Mercator centred on the scene; 'Map Projection Zone' wins.
        path = tmp_path / "gtc.h5"
        write_gtc(path, np.ones((4, 4)), origin=(317000.0, 4161000.0))
        with h5py.File(path, "r+") as handle:
            handle.attrs["Map Projection Centre"] = np.array([37.58, 36.9])
        with rasterio.open(f'HDF5:"{path}"://S01/MBI') as src:
            assert src.crs != UTM37N
        with pytest.warns(UserWarning, match="using the attributes"):
            ds = CSKSAR(path)
        assert ds.crs == UTM37N
        np.testing.assert_allclose(
            ds.index.total_bounds, (317000.0, 4160990.0, 317010.0, 4161000.0)
        )

    @pytest.mark.parametrize(
        ("name", "level"), [("csk_scs.h5", "L1A"), ("csk_dgm.h5", "L1B")]
    )
    def test_not_geocoded_rejected(self, name: str, level: str) -> None:
        with pytest.raises(ValueError, match=f"level {level}") as info:
            CSKSAR(DATA / name)
        assert "Geocode it to GEC (L1C) or GTC (L1D) first" in str(info.value)
        assert name in str(info.value)

    def test_not_csk(self) -> None:
        with pytest.raises(ValueError, match="not a COSMO-SkyMed product"):
            CSKSAR(DATA / "not_csk.h5")

    def test_corrupt_h5(self) -> None:
        with pytest.raises(ValueError, match=r"corrupt\.h5.*corrupt"):
            CSKSAR(DATA / "corrupt.h5")

    def test_missing_georeferencing(self, tmp_path: Path) -> None:
        path = tmp_path / "gtc.h5"
        write_gtc(path, np.ones((4, 4)), drop=("Map Projection Scale Factor",))
        with pytest.raises(ValueError, match="Map Projection Scale Factor"):
            CSKSAR(path)

    def test_three_dimensional_image_rejected(self, tmp_path: Path) -> None:
        path = tmp_path / "gtc.h5"
        write_gtc(path, np.ones((4, 5, 1), dtype=np.float32))
        with pytest.raises(ValueError, match=r"shape \(4, 5, 1\)"):
            CSKSAR(path)

    def test_read_csk_prefers_sbi(self) -> None:
        product = read_csk(str(GTC))
        assert product.dataset == "S01/SBI"
        assert product.level == "L1D"
        assert product.scale == pytest.approx(0.25)
        assert product.crs == UTM37N


class TestGeoTIFF:
    def test_amplitude(self) -> None:
        ds = CSKSAR(AMPLITUDE)
        with rasterio.open(AMPLITUDE) as src:
            amp = src.read(1)
        np.testing.assert_allclose(ds.grid().array[0], masked(amp), rtol=1e-6)
        assert np.isnan(ds.grid().array[0, -2:]).all()

    @pytest.mark.parametrize("radiometry", ["amplitude", "intensity", "db"])
    def test_conversions(self, radiometry: str) -> None:
        with rasterio.open(AMPLITUDE) as src:
            amp = masked(src.read(1))
        expected = {
            "amplitude": amp,
            "intensity": amp**2,
            "db": 20 * np.log10(amp),
        }[radiometry]
        from_amplitude = CSKSAR(AMPLITUDE, radiometry=radiometry)  # type: ignore[arg-type]
        from_intensity = CSKSAR(
            INTENSITY,
            radiometry=radiometry,  # type: ignore[arg-type]
            input_radiometry="intensity",
        )
        for ds in (from_amplitude, from_intensity):
            np.testing.assert_allclose(
                ds.grid().array[0], expected, rtol=1e-5, atol=1e-5
            )

    def test_db_floor_automatic(self) -> None:
        ds = CSKSAR(AMPLITUDE, radiometry="db")
        with rasterio.open(AMPLITUDE) as src:
            db = 20 * np.log10(masked(src.read(1)))
        floor = np.percentile(db[np.isfinite(db)], 0.1)
        assert ds.db_floor == pytest.approx(floor, abs=1e-4)
        x0, y1 = 317000.0, 4161000.0 - 28 * 2.5
        patch = ds[x0 : x0 + 80.0 : 2.5, y1 - 10.0 : y1 : 2.5]["sar"][0].numpy()
        assert np.isfinite(patch).all()
        np.testing.assert_allclose(patch[2:], floor, atol=1e-4)  # nodata rows
        np.testing.assert_allclose(
            patch[:2], np.maximum(db[28:30], floor), rtol=1e-5, atol=1e-4
        )

    def test_db_floor_given(self) -> None:
        ds = CSKSAR(AMPLITUDE, radiometry="db", db_floor=-5.0)
        assert ds.db_floor == -5.0
        patch = ds[317000.0:317080.0:2.5, 4160920.0:4161000.0:2.5]["sar"]
        assert patch.min().item() == pytest.approx(-5.0)
        assert (patch == -5.0).sum() > 64  # two nodata rows and clipped pixels

    @pytest.mark.parametrize("tile", [256, 8, 5])
    def test_db_floor_windowed(self, tile: int) -> None:
        grid = CSKSAR(AMPLITUDE, radiometry="db")
        windowed = CSKSAR(AMPLITUDE, radiometry="db", cache_bytes=1024)
        windowed.floor_tile_size = tile
        assert not windowed.uses_memory_grid()
        if tile == 5:  # 7 x 7 overlapping 5 px tiles sample the image unevenly
            assert windowed.db_floor == pytest.approx(grid.db_floor, abs=1.5)
        else:  # tiles cover the image: same values, same percentile
            assert windowed.db_floor == pytest.approx(grid.db_floor, abs=1e-4)

    def test_windowed_reads_match_grid(self) -> None:
        grid = CSKSAR(GTC)
        windowed = CSKSAR(GTC, cache_bytes=0)
        assert grid.uses_memory_grid() and not windowed.uses_memory_grid()
        query = (slice(317010.0, 317040.0, 2.5), slice(4160970.0, 4160990.0, 2.5))
        np.testing.assert_allclose(
            windowed[query]["sar"].numpy(), grid[query]["sar"].numpy(), rtol=1e-6
        )

    def test_nan_pixels_masked(self) -> None:
        ds = CSKSAR(DATA / "nan.tif")
        grid = ds.grid().array[0]
        assert np.isnan(grid[5, 5:9]).all()
        assert np.isfinite(grid[5, :5]).all()
        query = (slice(317000.0, 317025.0, 2.5), slice(4160975.0, 4161000.0, 2.5))
        assert ds.nodata_fraction(query) == pytest.approx(4 / 100)
        patch = ds[query]["sar"][0].numpy()
        np.testing.assert_array_equal(patch[5, 5:9], 0.0)
        assert (patch[:5] > 0).all()

    def test_metadata_from_tags(self) -> None:
        ds = CSKSAR(AMPLITUDE)
        meta = ds.metadata(AMPLITUDE)
        assert meta["product"] == "geotiff"
        assert meta["mission"] == "CSK (simulated)"
        assert meta["mode"] == "HIMAGE"
        assert meta["polarisation"] == "HH"
        assert meta["incidence_angle"] == pytest.approx(33.5)
        assert meta["look_side"] == "RIGHT"
        assert meta["orbit_direction"] == "ASCENDING"
        assert meta["date"] == "2023-02-25"
        with pytest.raises(KeyError, match="not a file of this dataset"):
            ds.metadata(GTC)

    def test_mixed_radiometry_rejected(self) -> None:
        with pytest.raises(ValueError, match="mix amplitude and intensity"):
            CSKSAR([GTC, INTENSITY], input_radiometry="intensity")

    def test_directory_discovery(self, tmp_path: Path) -> None:
        (tmp_path / "a").mkdir()
        shutil.copy(GTC, tmp_path / "a" / "scene.H5")
        shutil.copy(AMPLITUDE, tmp_path / "sar.tif")
        (tmp_path / "notes.json").write_text("{}")
        ds = CSKSAR(tmp_path)
        assert ds.files == [
            f'HDF5:"{tmp_path / "a" / "scene.H5"}"://S01/SBI',
            str(tmp_path / "sar.tif"),
        ]
        assert len(ds.index) == 2

    def test_pickle(self) -> None:
        ds = CSKSAR(GTC)
        query = (slice(317010.0, 317030.0, 2.5), slice(4160980.0, 4160990.0, 2.5))
        before = ds[query]["sar"]
        clone = pickle.loads(pickle.dumps(ds))
        torch.testing.assert_close(clone[query]["sar"], before)


class TestBadInput:
    def test_missing_path(self, tmp_path: Path) -> None:
        missing = tmp_path / "no_such_scene" / "sar.tif"
        with pytest.raises(FileNotFoundError, match="no_such_scene"):
            CSKSAR(missing)

    def test_corrupt_tif(self) -> None:
        with pytest.raises(ValueError, match=r"corrupt\.tif.*corrupt"):
            CSKSAR(DATA / "corrupt.tif")

    def test_no_crs(self) -> None:
        with pytest.raises(ValueError, match="no coordinate reference system"):
            CSKSAR(DATA / "nocrs.tif")

    def test_all_zero(self) -> None:
        with pytest.raises(ValueError, match="holds no valid pixel"):
            CSKSAR(DATA / "zeros.tif")

    def test_single_valid_pixel_found(self, tmp_path: Path) -> None:
        # The decimated first look (every 3rd row) misses row 1: the block scan
        # must find it.
        image = np.zeros((1100, 10), dtype=np.float32)
        image[1, 4] = 2.0
        path = tmp_path / "sparse.tif"
        profile = {
            "driver": "GTiff",
            "width": 10,
            "height": 1100,
            "count": 1,
            "dtype": "float32",
            "crs": UTM37N,
            "transform": rasterio.transform.from_origin(317000.0, 4161000.0, 1, 1),
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(image, 1)
        ds = CSKSAR(path)
        assert np.nansum(ds.grid().array) == pytest.approx(2.0)

    def test_two_bands(self) -> None:
        with pytest.raises(ValueError, match="has 2 bands"):
            CSKSAR(DATA / "twoband.tif")

    def test_complex(self) -> None:
        with pytest.raises(ValueError, match="complex"):
            CSKSAR(DATA / "slc.tif")

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"radiometry": "power"},
            {"input_radiometry": "db"},
            {"db_floor": float("nan")},
        ],
    )
    def test_invalid_options(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            CSKSAR(AMPLITUDE, **kwargs)  # type: ignore[arg-type]


class TestCommercial:
    def test_capella(self) -> None:
        ds = CSKSAR(CAPELLA)
        with rasterio.open(CAPELLA) as src:
            dn = src.read(1)
        assert dn.dtype == np.uint16
        assert ds.res == (0.5, 0.5)
        np.testing.assert_allclose(ds.grid().array[0], masked(dn) * 0.0125, rtol=1e-6)
        meta = ds.metadata(CAPELLA)
        assert meta["product"] == "capella"
        assert meta["level"] == "GEO"
        assert meta["mission"] == "capella-5"
        assert meta["mode"] == "spotlight"
        assert meta["polarisation"] == "HH"
        assert meta["incidence_angle"] == pytest.approx(35.25)
        assert meta["look_side"] == "left"
        assert meta["orbit_direction"] == "descending"
        assert meta["date"] == "2023-02-10T07:31:42"
        assert meta["quantity"] == "beta_nought"

    def test_capella_from_file_name_only(self) -> None:
        name = "CAPELLA_C11_SM_GEC_VV_20240101000000_20240101000010.tif"
        info = capella_info(name, {"TIFFTAG_IMAGEDESCRIPTION": "not json"})
        assert info is not None
        scale, meta = info
        assert scale == 1.0
        assert (meta["level"], meta["mode"], meta["polarisation"]) == (
            "GEC",
            "SM",
            "VV",
        )
        assert capella_info("sar.tif", {}) is None

    def test_umbra_stac_sidecar(self, tmp_path: Path) -> None:
        path = tmp_path / "task_GEC.tif"
        shutil.copy(UMBRA, path)
        stac = {
            "type": "Feature",
            "properties": {
                "platform": "Umbra-08",
                "datetime": "2024-03-01T10:11:12Z",
                "sar:instrument_mode": "SPOTLIGHT",
                "sar:polarizations": ["HH"],
                "sar:observation_direction": "right",
                "sat:orbit_state": "ascending",
                "view:incidence_angle": 38.5,
            },
        }
        (tmp_path / "task.stac.v2.json").write_text(json.dumps(stac))
        meta = CSKSAR(path).metadata(path)
        assert meta["product"] == "umbra"
        assert meta["mission"] == "Umbra-08"
        assert meta["polarisation"] == "HH"
        assert meta["incidence_angle"] == pytest.approx(38.5)
        assert meta["look_side"] == "right"
        assert meta["orbit_direction"] == "ascending"
        assert meta["date"] == "2024-03-01T10:11:12"

    def test_capella_slc_rejected(self) -> None:
        with pytest.raises(ValueError, match="not geocoded"):
            capella_info("CAPELLA_C05_SP_SLC_HH_20230210073142_20230210073156.tif", {})

    def test_umbra(self) -> None:
        ds = CSKSAR(UMBRA)
        assert ds.crs == CRS.from_epsg(4326)
        ramp = 5.0 + 0.1 * np.arange(50)
        np.testing.assert_allclose(ds.grid().array[0], ramp[None].repeat(40, 0))
        meta = ds.metadata(UMBRA)
        assert meta["product"] == "umbra"
        assert meta["level"] == "GEC"
        assert meta["mission"] == "UMBRA_04"
        assert meta["mode"] == "SPOTLIGHT"
        assert meta["polarisation"] == "VV"
        assert meta["incidence_angle"] == pytest.approx(41.2)
        assert meta["look_side"] == "LEFT"
        assert meta["orbit_direction"] == "DESCENDING"
        assert meta["date"] == "2023-02-09T07:47:21"

    def test_gec_name_without_umbra_is_generic(self, tmp_path: Path) -> None:
        path = tmp_path / "CSKS4_export_GEC.tif"
        shutil.copy(INTENSITY, path)
        ds = CSKSAR(path, input_radiometry="intensity")
        assert ds.metadata(path)["product"] == "geotiff"
        assert ds.metadata(path)["radiometry"] == "intensity"

    def test_intersection_reprojects(self) -> None:
        csk = CSKSAR(GTC)
        umbra = CSKSAR(UMBRA)
        dataset = csk & umbra
        assert umbra.crs == UTM37N
        assert umbra.res == (2.5, 2.5)
        x0, y1 = 317000.0, 4161000.0
        sample = dataset[x0 : x0 + 80.0 : 2.5, y1 - 60.0 : y1 : 2.5]
        assert sample["sar"].shape == (2, 24, 32)
        dn, rescaling = read_h5(GTC)
        expected_csk = np.nan_to_num(masked(dn) / rescaling)
        np.testing.assert_allclose(sample["sar"][0].numpy(), expected_csk, rtol=1e-6)
        # The Umbra ramp (5 + 0.1 * column, linear in longitude) evaluated at the
        # centres of the UTM pixels: bilinear reprojection reproduces it.
        with rasterio.open(UMBRA) as src:
            lon0, dlon = src.transform.c, src.transform.a
        east = x0 + 2.5 * (np.arange(32) + 0.5)
        north = y1 - 2.5 * (np.arange(24) + 0.5)
        lon, _ = Transformer.from_crs(32637, 4326, always_xy=True).transform(
            *np.meshgrid(east, north)
        )
        expected_umbra = 5.0 + 0.1 * ((lon - lon0) / dlon - 0.5)
        np.testing.assert_allclose(sample["sar"][1].numpy(), expected_umbra, atol=0.015)


class TestPlot:
    @pytest.mark.parametrize("radiometry", ["amplitude", "intensity", "db"])
    def test_plot(self, radiometry: str) -> None:
        ds = CSKSAR(GTC, radiometry=radiometry)  # type: ignore[arg-type]
        sample = ds[317000.0:317080.0:2.5, 4160940.0:4161000.0:2.5]
        fig = ds.plot(sample, suptitle="Kahramanmaras")
        assert isinstance(fig, Figure)
        image = fig.axes[0].images[0]
        low, high = image.get_clim()
        assert low < high
        plt.close(fig)

    def test_plot_no_titles(self) -> None:
        ds = CSKSAR(AMPLITUDE)
        sample = ds[317000.0:317080.0:2.5, 4160920.0:4161000.0:2.5]
        fig = ds.plot(sample, show_titles=False)
        assert fig.axes[0].get_title() == ""
        plt.close(fig)


def test_fixtures_small() -> None:
    for name in os.listdir(DATA):
        assert (DATA / name).stat().st_size < 100_000, name
