"""What a damage map says about its model and inputs (private helpers).

The progress messages on the model and what it sees (:func:`plan`), and the
sections of ``summary.json`` on the model, the input files, the SAR grid and
the output CRSs (:func:`about`), from what the stages of
:func:`~torchgeo_quake.mapping.predict.map_damage` found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._area import Footprints
    from ._inputs import InputFiles
    from .model import LoadedModel
    from .settings import MapSettings


def plan(
    model: LoadedModel, spec: dict[str, Any], sar_info: dict[str, Any]
) -> list[str]:
    """Progress messages on the model and what it sees.

    Args:
        model: the model run
        spec: SAR radiometry, pixel size and patch size
        sar_info: what was done to the SAR image

    Returns:
        The messages.
    """
    pixels, patch_size = sar_info["pixel_size_m"], int(spec["patch_size"])
    return [
        f"model {model.path.name}: inputs {', '.join(model.modalities)}; "
        f"threshold {model.threshold:.3f}",
        f"SAR in {spec['radiometry']}"
        + (f", {pixels:g} m pixels" if pixels is not None else "")
        + f", {patch_size} x {patch_size}-pixel windows"
        + ("" if spec["recorded"] else " (not recorded in the checkpoint)"),
    ]


def about(
    model: LoadedModel,
    used_fallback: bool,
    spec: dict[str, Any],
    files: InputFiles,
    footprints: Footprints,
    sar_info: dict[str, Any],
    settings: MapSettings,
) -> dict[str, Any]:
    """The sections of the summary on the model, the inputs and the grids.

    Args:
        model: the model run
        used_fallback: whether it is the fallback model
        spec: SAR radiometry, pixel size and patch size
        files: the input files
        footprints: the footprints
        sar_info: what was done to the SAR image
        settings: the map's settings

    Returns:
        ``model``, ``inputs``, ``sar_grid`` and ``output_crs``.
    """
    fp_crs = footprints.crs.to_string()
    return {
        "model": {
            "checkpoint": str(model.path),
            "modalities": list(model.modalities),
            "fallback": used_fallback,
            "threshold": model.threshold,
            "threshold_from_validation": model.threshold_from_validation,
            "calibrated": model.calibrated,
            "radiometry": spec["radiometry"],
            "sar_pixel_size_m": spec["sar_res"],
            "patch_size": int(spec["patch_size"]),
            "input_spec_recorded": spec["recorded"],
        },
        "inputs": {
            "sar": str(files.sar),
            "footprints": str(files.footprints),
            "dsm": None if files.dsm is None else str(files.dsm),
            "exposure": None if files.exposure is None else str(files.exposure),
            "footprints_crs": fp_crs,
            "sar_crs": sar_info["native_crs"],
            "sar_pixel_size_m": sar_info["native_pixel_size_m"],
            "max_nodata": settings.max_nodata,
        },
        "sar_grid": {
            "crs": footprints.work_crs.to_string(),
            "pixel_size_m": sar_info["pixel_size_m"],
            "resampled": sar_info["resampled"],
        },
        "output_crs": {"damage.gpkg": fp_crs, "damage.geojson": "EPSG:4326"},
    }
