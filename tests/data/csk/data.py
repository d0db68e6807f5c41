#!/usr/bin/env python3

"""Generate the tiny synthetic SAR products used by tests/datasets/test_csk.py.

Run from anywhere: ``python tests/data/csk/data.py``. Files are written next to
this script. All images are synthetic (seeded), a few dozen pixels wide, near
Kahramanmaras (UTM zone 37N), with the metadata layout of the real products:

* ``csk_gtc.h5`` / ``csk_gec.h5``: COSMO-SkyMed L1D (GTC) float32 and L1C (GEC)
  uint16 HDF5 products with the root/``S01``/``S01/SBI`` attributes GDAL's HDF5
  driver needs to georeference them, plus acquisition and calibration attributes.
* ``csk_scs.h5`` / ``csk_dgm.h5``: L1A (complex) and L1B (ground range) products.
* ``not_csk.h5``, ``corrupt.h5``, ``corrupt.tif``: bad inputs.
* ``sar_amplitude.tif`` / ``sar_intensity.tif``: float32 GeoTIFFs as written by a
  SAR processor or this project's simulator (tags ``MISSION``, ``MODE``, ...).
* ``nocrs.tif``, ``nan.tif``, ``zeros.tif``, ``twoband.tif``, ``slc.tif``: bad or
  special GeoTIFFs.
* ``CAPELLA_C05_SP_GEO_HH_20230210073142_20230210073156.tif``: Capella GEO
  (uint16, JSON metadata with ``scale_factor`` in ``TIFFTAG_IMAGEDESCRIPTION``).
* ``2023-02-09-07-47-21_UMBRA-04_GEC.tif`` + ``..._METADATA.json``: Umbra GEC
  (float32 amplitude in EPSG:4326) with its metadata sidecar.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds

ROOT = os.path.dirname(os.path.abspath(__file__))

#: Top-left corner (easting, northing) of the COSMO-SkyMed GTC fixture, UTM 37N.
CSK_ORIGIN = (317000.0, 4161000.0)
#: Pixel spacing of the COSMO-SkyMed fixtures (metres).
CSK_SPACING = 2.5
#: Rescaling factor of the GTC (float32) and GEC (uint16) fixtures.
GTC_RESCALING = 4.0
GEC_RESCALING = 2.0
#: Capella scale factor (DN to beta-nought amplitude).
CAPELLA_SCALE = 0.0125
UTM37N = CRS.from_epsg(32637)


def amplitude(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Speckled amplitude (Rayleigh-like), strictly positive.

    Args:
        shape: (rows, cols)
        seed: random seed

    Returns:
        float64 array.
    """
    rng = np.random.default_rng(seed)
    return 0.05 + rng.gamma(2.0, 0.25, size=shape)


def csk_attributes(product_type: str) -> dict[str, object]:
    """Root attributes of a COSMO-SkyMed product (subset of the real ones).

    Args:
        product_type: e.g. ``"GTC_B"``

    Returns:
        Attribute names and values.
    """
    return {
        "Mission ID": np.bytes_("CSK"),
        "Satellite ID": np.bytes_("CSKS4"),
        "Product Type": np.bytes_(product_type),
        "Acquisition Mode": np.bytes_("HIMAGE"),
        "Look Side": np.bytes_("RIGHT"),
        "Orbit Direction": np.bytes_("DESCENDING"),
        "Scene Sensing Start UTC": np.bytes_("2023-02-25 15:31:10.123456789"),
        "Ellipsoid Designator": np.bytes_("WGS84"),
        "Reference Slant Range": np.float64(650000.0),
        "Reference Slant Range Exponent": np.float64(1.0),
        "Reference Incidence Angle": np.float64(30.0),
        "Range Spreading Loss Compensation Geometry": np.bytes_("GEOMETRY"),
        "Incidence Angle Compensation Geometry": np.bytes_("NONE"),
        "Calibration Constant Compensation Flag": np.uint8(0),
    }


def projection_attributes(zone: int = 37) -> dict[str, object]:
    """Map projection attributes of a geocoded (L1C/L1D) product.

    Args:
        zone: UTM zone (northern hemisphere)

    Returns:
        Attribute names and values.
    """
    return {
        "Projection ID": np.bytes_("UTM"),
        "Map Projection Zone": np.int32(zone),
        "Map Projection Centre": np.array([0.0, zone * 6.0 - 183.0]),
        "Map Projection Scale Factor": np.float64(0.9996),
        "Map Projection False East-North": np.array([500000.0, 0.0]),
    }


def write_csk(
    path: str,
    product_type: str,
    image: np.ndarray,
    rescaling: float | None,
    origin: tuple[float, float] = CSK_ORIGIN,
    line_spacing: float = CSK_SPACING,
    column_spacing: float = CSK_SPACING,
    dataset: str = "S01/SBI",
    geocoded: bool = True,
) -> None:
    """Write a COSMO-SkyMed-like HDF5 product.

    Args:
        path: output path
        product_type: ``Product Type`` attribute (``"GTC_B"``, ``"GEC_B"``, ...)
        image: image dataset (amplitude DN, or I/Q for SCS)
        rescaling: ``Rescaling Factor`` attribute (omitted if None)
        origin: ``Top Left East-North``
        line_spacing: ``Line Spacing`` (metres between rows)
        column_spacing: ``Column Spacing`` (metres between columns)
        dataset: path of the image dataset
        geocoded: write the map projection attributes
    """
    with h5py.File(path, "w") as handle:
        for name, value in csk_attributes(product_type).items():
            handle.attrs[name] = value
        if geocoded:
            for name, value in projection_attributes().items():
                handle.attrs[name] = value
        if rescaling is not None:
            handle.attrs["Rescaling Factor"] = np.float64(rescaling)
        swath = handle.require_group("S01")
        swath.attrs["Polarisation"] = np.bytes_("HH")
        swath.attrs["Calibration Constant"] = np.float64(2.5e11)
        data = handle.create_dataset(dataset, data=image)
        data.attrs["Near Incidence Angle"] = np.float64(29.5)
        data.attrs["Far Incidence Angle"] = np.float64(31.5)
        if geocoded:
            data.attrs["Top Left East-North"] = np.array(origin, dtype=np.float64)
            data.attrs["Line Spacing"] = np.float64(line_spacing)
            data.attrs["Column Spacing"] = np.float64(column_spacing)
        quicklook = swath.create_dataset("QLK", data=np.zeros((4, 4), dtype=np.uint8))
        quicklook.attrs["Line Spacing"] = np.float64(line_spacing * 8)


def write_tif(
    path: str,
    array: np.ndarray,
    crs: CRS | None = UTM37N,
    transform: rasterio.Affine | None = None,
    nodata: float | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Write a GeoTIFF.

    Args:
        path: output path
        array: (bands, rows, cols) or (rows, cols)
        crs: CRS (None for a raster without CRS)
        transform: geotransform (defaults to the GTC grid)
        nodata: nodata value
        tags: GDAL metadata items (default domain)
    """
    if array.ndim == 2:
        array = array[None]
    profile = {
        "driver": "GTiff",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "transform": transform or from_origin(*CSK_ORIGIN, CSK_SPACING, CSK_SPACING),
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        if tags:
            dst.update_tags(**tags)


def main() -> None:
    """Write all fixtures next to this script."""
    join = lambda name: os.path.join(ROOT, name)  # noqa: E731

    # COSMO-SkyMed L1D (GTC): float32 amplitude DN = amplitude * F, 3-column
    # zero (nodata) border on the left as in real geocoded products.
    gtc = (amplitude((24, 32), seed=1) * GTC_RESCALING).astype(np.float32)
    gtc[:, :3] = 0
    write_csk(join("csk_gtc.h5"), "GTC_B", gtc, GTC_RESCALING)

    # COSMO-SkyMed L1C (GEC): uint16 DN, shifted 20 m east / 10 m south.
    gec = np.round(amplitude((16, 20), seed=2) * 1000 * GEC_RESCALING)
    write_csk(
        join("csk_gec.h5"),
        "GEC_B",
        gec.astype(np.uint16),
        GEC_RESCALING,
        origin=(CSK_ORIGIN[0] + 20, CSK_ORIGIN[1] - 10),
    )

    # Non-geocoded levels.
    scs = np.random.default_rng(3).integers(-500, 500, (8, 10, 2)).astype(np.int16)
    write_csk(join("csk_scs.h5"), "SCS_B", scs, None, geocoded=False)
    dgm = np.full((8, 10), 100, dtype=np.uint16)
    write_csk(join("csk_dgm.h5"), "DGM_B", dgm, 1.0, geocoded=False)

    # HDF5 that is not COSMO-SkyMed, corrupt HDF5 and GeoTIFF.
    with h5py.File(join("not_csk.h5"), "w") as handle:
        handle.attrs["Mission ID"] = np.bytes_("TSX")
        handle.create_dataset("S01/SBI", data=np.ones((4, 4), dtype=np.float32))
    with open(join("corrupt.h5"), "wb") as file:
        file.write(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    with open(join("corrupt.tif"), "wb") as file:
        file.write(b"II*\x00" + bytes(range(256)) * 4)

    # Plain GeoTIFFs on the GTC grid.
    amp = amplitude((32, 32), seed=4).astype(np.float32)
    amp[-2:, :] = 0  # nodata rows
    simulator_tags = {
        "MISSION": "CSK (simulated)",
        "MODE": "HIMAGE",
        "POLARISATION": "HH",
        "INCIDENCE_ANGLE": "33.5",
        "LOOK_SIDE": "RIGHT",
        "ORBIT_DIRECTION": "ASCENDING",
        "DATE": "2023-02-25",
    }
    write_tif(join("sar_amplitude.tif"), amp, nodata=0, tags=simulator_tags)
    write_tif(join("sar_intensity.tif"), np.square(amp), nodata=0)
    write_tif(join("nocrs.tif"), amp, crs=None)
    with_nan = amp.copy()
    with_nan[5, 5:9] = np.nan
    write_tif(join("nan.tif"), with_nan)
    write_tif(join("zeros.tif"), np.zeros((16, 16), dtype=np.float32))
    write_tif(join("twoband.tif"), np.stack([amp, amp]))
    write_tif(join("slc.tif"), (amp + 1j * amp).astype(np.complex64))

    # Capella GEO: uint16 DN, metadata JSON in TIFFTAG_IMAGEDESCRIPTION.
    capella_dn = np.round(amplitude((32, 32), seed=5) / CAPELLA_SCALE)
    capella_dn[0, :] = 0  # nodata row
    capella = {
        "software_version": "2.40.0",
        "product_type": "GEO",
        "collect": {
            "platform": "capella-5",
            "mode": "spotlight",
            "start_timestamp": "2023-02-10T07:31:42.123456Z",
            "radar": {
                "pointing": "left",
                "transmit_polarization": "H",
                "receive_polarization": "H",
            },
            "state": {"direction": "descending"},
            "image": {
                "scale_factor": CAPELLA_SCALE,
                "radiometry": "beta_nought",
                "center_pixel": {"incidence_angle": 35.25},
            },
        },
    }
    write_tif(
        join("CAPELLA_C05_SP_GEO_HH_20230210073142_20230210073156.tif"),
        capella_dn.astype(np.uint16),
        transform=from_origin(CSK_ORIGIN[0], CSK_ORIGIN[1], 0.5, 0.5),
        tags={"TIFFTAG_IMAGEDESCRIPTION": json.dumps(capella)},
    )

    # Umbra GEC: float32 amplitude in EPSG:4326 over the GTC footprint, a linear
    # ramp along columns (5.0 + 0.1 * column) so reprojection can be checked.
    left, bottom, right, top = transform_bounds(
        UTM37N,
        CRS.from_epsg(4326),
        CSK_ORIGIN[0],
        CSK_ORIGIN[1] - 24 * CSK_SPACING,
        CSK_ORIGIN[0] + 32 * CSK_SPACING,
        CSK_ORIGIN[1],
    )
    rows, cols = 40, 50
    step_x = (right - left) / (cols - 10)
    step_y = (top - bottom) / (rows - 10)
    umbra = (5.0 + 0.1 * np.arange(cols, dtype=np.float32))[None, :].repeat(rows, 0)
    write_tif(
        join("2023-02-09-07-47-21_UMBRA-04_GEC.tif"),
        umbra.astype(np.float32),
        crs=CRS.from_epsg(4326),
        transform=from_origin(left - 5 * step_x, top + 5 * step_y, step_x, step_y),
    )
    sidecar = {
        "umbraSatelliteName": "UMBRA_04",
        "collects": [
            {
                "imagingMode": "SPOTLIGHT",
                "polarizations": ["VV"],
                "angleIncidenceDegrees": 41.2,
                "observationDirection": "LEFT",
                "satelliteTrack": "DESCENDING",
                "startAtUTC": "2023-02-09T07:47:21.250Z",
            }
        ],
    }
    with open(join("2023-02-09-07-47-21_UMBRA-04_METADATA.json"), "w") as file:
        json.dump(sidecar, file, indent=2)


if __name__ == "__main__":
    main()
