"""Damage mapping of a new city: :func:`map_damage`.

The trained model is run on every building footprint of the city that the SAR
image covers, through the same data layer as training
(:class:`~torchgeo_quake.datasets.CSKSAR` ``&``
:class:`~torchgeo_quake.datasets.CartoSatDSM` ``&``
:class:`~torchgeo_quake.datasets.OSMBuildings`, one window per building from
:func:`~torchgeo_quake.datasets.build_area`), and the result is written as a
map. Every input feature appears in the map exactly once, scored
(``status = "predicted"``) or not (``status = "skipped"`` with the reason).

The model sees what it was trained on: the SAR radiometry, pixel size and
patch size recorded in its checkpoint (the image is resampled to that pixel
size when its own differs).

Two passes keep memory low for large cities:

1. *Prediction*, with Lightning's prediction loop (CPU, one GPU or several
   devices with DDP, unchanged): building patches are cut on the fly, batch by
   batch, in spatial tiles, from one compact array of windows; only one
   probability per building is kept.
2. *Writing*, after the rasters and the data layer's footprints are released:
   the footprints go out tile by tile (a few thousand at a time) to the
   GeoPackage and the GeoJSON, which are appended to, and to the interactive
   map, whose outlines are streamed to temporary files.

The footprints themselves (id and geometry) and a few numbers per building are
held throughout, so memory grows slowly with the number of buildings.

All files are written into a temporary folder beside the output folder, which
becomes the output folder only when everything succeeded (swapped in whole,
the previous folder kept as a backup until the swap succeeded): an error or an
interruption leaves nothing half-written behind, and results that are replaced
(``overwrite=True``) are all replaced or, if anything fails, all kept. One run
at a time writes to an output folder (a lock file beside it); what killed runs
leave behind is cleaned up by the next one.

This module is the entry point and the pipeline (:func:`run_map`); each stage
has its own private module: reading and checking the inputs (``_inputs``, with
``_rasters``, ``_footprint_checks`` and ``_crs``), the mapped area and the
buildings to score (``_area``), the prediction (``_prediction``), what the map
says about its model and inputs (``_about``), the writing (``_writing``) and
the staging of the outputs (``_staging``). The options are the fields of
:class:`~torchgeo_quake.mapping.settings.MapSettings`, written out there once;
:func:`map_damage`'s signature repeats them, for backwards compatibility.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..utils import is_global_zero
from ._about import about, plan
from ._area import (
    SUB_PIXEL,
    Area,
    Units,
    read_inputs,
    read_units,
    select_buildings,
)
from ._exposure import missing_figures, read_exposure
from ._inputs import (
    InputFiles,
    check_files,
    check_id_field,
    check_not_outputs,
    model_inputs,
)
from ._prediction import check_batch_memory, predict_windows, torch_threads
from ._staging import (
    check_output,
    check_writable,
    clean_stale,
    commit,
    discard,
    output_lock,
    staging_folder,
)
from ._trust import (
    calibration_section,
    check_shift,
    read_labels,
    recalibrated_results,
)
from ._writing import OUTPUT_COLUMNS, Results, write_map, write_summary
from .audit import AUDIT_FILES, read_reference
from .damage_map import OUTPUT_FILES as OUTPUT_FILES
from .damage_map import DamageMap as DamageMap
from .damage_map import spatial_order as spatial_order
from .model import LoadedModel, select_model
from .settings import MapSettings

__all__ = ["map_damage", "run_map"]


def map_damage(
    sar: str | os.PathLike[str],
    footprints: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    dsm: str | os.PathLike[str] | None = None,
    exposure: str | os.PathLike[str] | None = None,
    fallback_checkpoint: str | os.PathLike[str] | None = None,
    units: str | os.PathLike[str] | None = None,
    unit_field: str = "name",
    cell_size: float = 500.0,
    radiometry: str | None = None,
    name: str | None = None,
    id_field: str = "osm_id",
    max_nodata: float = 0.0,
    reference: str | os.PathLike[str] | None = None,
    reference_schema: str = "auto",
    reference_distance: float = 10.0,
    batch_size: int = 256,
    num_workers: int = 0,
    num_threads: int | None = None,
    accelerator: str = "auto",
    devices: int | str = 1,
    tile_size: int = 4096,
    basemap: str | None = None,
    basemap_attribution: str | None = None,
    adapt_radiometry: bool = False,
    calibration_labels: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    verbose: bool = False,
) -> DamageMap:
    """Map the damage of every building of a city with a trained model.

    Writes into *out*:

    * ``damage.gpkg`` — one feature per input footprint, in the footprints'
      CRS and with its geometry as given (Polygon and MultiPolygon features
      are not converted into each other), with ``feature`` (position in the
      input file), the id (*id_field*), ``status`` (``"predicted"`` or
      ``"skipped"``), ``reason`` (why a building was skipped),
      ``damage_probability``, ``damaged`` (1 at or above the checkpoint's
      threshold, else 0; empty when skipped), ``unit`` (admin unit or grid
      cell) and, with *exposure*, ``occupants_day``, ``occupants_night`` and
      ``replacement_cost_usd`` of the nearest GEM location (empty where the
      exposure file lacks the column: ``summary.json`` says which figures are
      missing and why) and, with *reference*, ``reference_grade``,
      ``reference_damaged`` and ``audit``;
    * ``damage.geojson`` — the same in WGS84;
    * ``summary.json`` — counts, damaged share, per-unit totals, exposure in
      buildings predicted damaged, the expected number of damaged buildings
      and exposure with 90 % intervals
      (:mod:`~torchgeo_quake.mapping.intervals`), the input shift against the
      training data (``shift``, :mod:`~torchgeo_quake.mapping.shift`), what
      the probabilities are (``calibration``), model and inputs;
    * ``overview.png`` — the city with buildings coloured by probability;
    * ``map.html`` — an interactive map that works offline;
    * with *reference*, ``audit.csv`` and ``audit.gpkg`` — the likely
      omissions and commissions of the reference, ranked by probability
      (:mod:`~torchgeo_quake.mapping.audit`).

    The model sees what it was trained on: its checkpoint records the SAR
    radiometry, pixel size and patch size of its training data, and the SAR
    image is resampled (or reprojected to a local UTM zone, when its CRS is
    geographic) to that pixel size when its own differs by more than 1 %.
    Checkpoints written before this was recorded are run on the image's own
    pixels in *radiometry* (default dB) with 32 × 32 windows, with a warning.

    Buildings are skipped, with the reason, when their footprint is unusable
    (missing or duplicate id, missing or unrepairable geometry, not a polygon),
    their window leaves the SAR image (or the DSM), it covers SAR nodata, or
    the footprint is smaller than a SAR pixel (its mask holds no pixel).

    One run at a time writes to *out* (a lock file ``.<out>.lock`` beside it);
    the new output folder is staged beside *out* and swapped in whole.

    The arguments are the fields of
    :class:`~torchgeo_quake.mapping.settings.MapSettings` (documented there in
    full), which checks them; :func:`run_map` takes them as one object.

    Args:
        sar: post-event SAR image
        footprints: one vector file of building footprints with *id_field*
            (any CRS)
        checkpoint: trained :class:`~torchgeo_quake.trainers.DamageDetectionTask`
        out: output folder (created; must not hold results unless *overwrite*)
        dsm: pre-event DSM, required by models trained with it
        exposure: GEM point-asset CSV, required by models trained with it
        fallback_checkpoint: model used only when *checkpoint* needs an input
            that is not given
        units: admin-unit polygons for the per-unit totals (else a grid)
        unit_field: attribute naming the units in *units*
        cell_size: grid cell side in metres
        radiometry: SAR values the model was trained on (default: the
            checkpoint's)
        name: name of the city in titles (default: the footprint file's folder)
        id_field: building id column of *footprints*
        max_nodata: largest share of SAR nodata pixels tolerated in a window
        reference: reference damage map to audit (HOTOSM destroyed buildings
            or a Copernicus EMS grading product; see
            :mod:`~torchgeo_quake.mapping.audit`)
        reference_schema: its schema, ``"auto"``, ``"hotosm"`` or ``"ems"``
        reference_distance: metres of the nearest-footprint join of EMS points
        batch_size: buildings per batch
        num_workers: data-loader worker processes
        num_threads: CPU threads of PyTorch during the prediction
        accelerator: Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``)
        devices: Lightning devices (several run with DDP; only the first
            process writes)
        tile_size: buildings per output tile
        basemap: optional XYZ tile URL template for ``map.html``
        basemap_attribution: attribution text of the basemap
        adapt_radiometry: match the SAR values to the training data's median
            and interquartile range (needs a checkpoint with training
            statistics)
        calibration_labels: CSV or vector file of graded buildings of the city
            on which the probabilities and the threshold are refitted
        overwrite: replace the results already in *out* (all of them or, if
            anything fails, none)
        progress: show progress bars (Lightning's, and the writing's)
        verbose: print what is done

    Returns:
        The summary and the files written.

    Raises:
        FileNotFoundError: If an input does not exist.
        FileExistsError: If *out* holds results and *overwrite* is False.
        PermissionError: If the folder that holds *out* is not writable.
        OSError: If another run is writing to *out*
            (:class:`~torchgeo_quake.mapping._staging.OutputBusyError`).
        ValueError: If an input is unusable (a folder instead of a file, a
            checkpoint that is not a damage model, footprints that do not
            overlap the SAR image or whose coordinates do not fit their CRS, a
            footprint file without a usable footprint or that is not a vector
            file, a SAR image in dB, a DSM without a valid height, admin units
            that hold no footprint, an exposure file of another schema (or
            without the columns of the GEM vector for a model that uses it), a
            reference damage map of an unknown schema, a radiometry that
            contradicts the checkpoint, an id column named like an output
            column, an input that *overwrite* would replace, calibration
            labels of an unknown schema, of one class or that match no
            footprint, *adapt_radiometry* with a checkpoint without training
            statistics, ...) or a model needs an input that is not given.

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
       *reference*, *reference_schema* and *reference_distance* (the
       reference audit); an exposure file needs only the columns the model
       uses; expected counts with intervals, the input-shift check,
       *adapt_radiometry* and *calibration_labels*
       (:mod:`~torchgeo_quake.mapping.recalibration`).
    """
    settings = MapSettings(
        sar=sar,
        footprints=footprints,
        checkpoint=checkpoint,
        out=out,
        dsm=dsm,
        exposure=exposure,
        fallback_checkpoint=fallback_checkpoint,
        units=units,
        unit_field=unit_field,
        cell_size=cell_size,
        radiometry=radiometry,
        name=name,
        id_field=id_field,
        max_nodata=max_nodata,
        reference=reference,
        reference_schema=reference_schema,
        reference_distance=reference_distance,
        batch_size=batch_size,
        num_workers=num_workers,
        num_threads=num_threads,
        accelerator=accelerator,
        devices=devices,
        tile_size=tile_size,
        basemap=basemap,
        basemap_attribution=basemap_attribution,
        adapt_radiometry=adapt_radiometry,
        calibration_labels=calibration_labels,
        overwrite=overwrite,
        progress=progress,
        verbose=verbose,
    )
    return _run_map(settings)


def run_map(settings: MapSettings) -> DamageMap:
    """Map the damage of every building of a city: :func:`map_damage` with settings.

    Args:
        settings: inputs, model and options of the map

    Returns:
        The summary and the files written.

    Raises:
        FileNotFoundError: If an input does not exist.
        FileExistsError: If the output folder holds results and
            :attr:`~torchgeo_quake.mapping.settings.MapSettings.overwrite` is
            False.
        OSError: If the output folder cannot be written or another run writes
            to it (see :func:`map_damage`).
        ValueError: If an input is unusable (see :func:`map_damage`).

    .. versionadded:: 0.2
    """
    return _run_map(settings)


def _run_map(settings: MapSettings) -> DamageMap:
    """Check the output folder and the inputs, load the model, make the map.

    Called by :func:`map_damage` and :func:`run_map` (the warnings of the model
    stage point at their callers).

    Args:
        settings: the map's settings

    Returns:
        The summary and the files written (none on a non-zero rank of a DDP
        run).
    """
    start = time.perf_counter()
    out = Path(settings.out).resolve()
    rank_zero = is_global_zero()

    def say(message: str) -> None:
        if settings.verbose and rank_zero:
            print(message, flush=True)

    # One run at a time per output folder (DDP: the first process holds it).
    if rank_zero:
        check_writable(out)
    lock = output_lock(out, say) if rank_zero else contextlib.nullcontext()
    with lock:
        if rank_zero:
            clean_stale(out, OUTPUT_FILES, say)
        check_output(out, settings.overwrite, OUTPUT_FILES + AUDIT_FILES)
        files = check_files(settings)
        check_not_outputs(settings, out, OUTPUT_FILES + AUDIT_FILES)
        check_id_field(settings.id_field, OUTPUT_COLUMNS)
        model, used_fallback = select_model(
            settings.checkpoint, files.available, settings.fallback_checkpoint
        )
        if used_fallback:
            say(f"using the fallback model {model.path}")
        if "dsm" in files.available and "dsm" not in model.modalities:
            say("the model does not use the DSM: it is ignored")
        spec = model_inputs(model, settings.radiometry)
        with staging_folder(out) as staging, torch_threads(settings.num_threads):
            summary = _make_map(
                settings, files, model, used_fallback, spec, staging, start, say
            )
            if summary is None:  # a non-zero rank of a DDP run: rank 0 writes
                discard(staging)
                return DamageMap(out=Path(settings.out))
            commit(staging, out, OUTPUT_FILES + AUDIT_FILES, settings.overwrite)
    written = OUTPUT_FILES + (AUDIT_FILES if settings.reference is not None else ())
    files_out = {file: Path(settings.out) / file for file in written}
    return DamageMap(out=Path(settings.out), summary=summary, files=files_out)


def _make_map(
    settings: MapSettings,
    files: InputFiles,
    model: LoadedModel,
    used_fallback: bool,
    spec: dict[str, Any],
    staging: Path,
    start: float,
    say: Callable[[str], None],
) -> dict[str, Any] | None:
    """Read the inputs, predict and write every output into *staging*.

    Memory: the footprints are held once, as read (id and geometry only); the
    data layer holds its own copy in the SAR CRS during the prediction, which
    is released, with the rasters, before the outputs are written tile by
    tile. Per building only compact arrays are kept (centroid, window,
    probability, reason, unit).

    Args:
        settings: the map's settings
        files: the input files
        model: the model to run
        used_fallback: whether it is the fallback model
        spec: SAR radiometry, pixel size and patch size (``model_inputs``)
        staging: folder receiving the outputs
        start: start time (``time.perf_counter``)
        say: function printing progress messages

    Returns:
        The summary, or None on a non-zero rank of a DDP run.
    """
    s = settings
    name = s.name or files.footprints.resolve().parent.name
    footprints, image, sar_info = read_inputs(files, spec, s.id_field, s.tile_size, say)
    units = read_units(footprints, files.units, s.unit_field, s.cell_size)
    gem = read_exposure(files.exposure, "gem" in model.modalities)
    exposure_missing = missing_figures(gem)
    for figure, why in exposure_missing.items():
        say(f"exposure figure {figure} {why}")
    reference = None
    if files.reference is not None:
        reference = read_reference(
            files.reference,
            footprints.frame,
            s.id_field,
            schema=s.reference_schema,
            max_distance=s.reference_distance,
        )
        say(reference.describe())
    labels = read_labels(s, footprints)
    patch_size = int(spec["patch_size"])
    area = select_buildings(
        footprints,
        image,
        files,
        gem,
        model,
        name=name,
        id_field=s.id_field,
        patch_size=patch_size,
        max_nodata=s.max_nodata,
        say=say,
    )
    # Predict in spatial order.
    cx, cy = footprints.cx, footprints.cy
    area.order_by(spatial_order(cx[area.rows], cy[area.rows], s.tile_size))
    n, scored = len(footprints), len(area.rows)
    for line in plan(model, spec, sar_info):
        say(line)
    say(f"{scored} buildings to score, {n - scored} skipped")

    check_batch_memory(model.modalities, patch_size, s.batch_size, scored, say)
    shift, sar_affine = check_shift(model, area, adapt=s.adapt_radiometry, say=say)
    read_end = time.perf_counter()
    prediction = predict_windows(
        model,
        area.dataset,
        area.windows,
        area.res,
        accelerator=s.accelerator,
        devices=s.devices,
        batch_size=s.batch_size,
        num_workers=s.num_workers,
        progress=s.progress,
        root=staging,
        sar_affine=sar_affine,
    )
    if prediction is None:
        return None
    results = _results(area, prediction[0], n, model.threshold, units, say)
    results, recal = recalibrated_results(results, labels, say)
    results = replace(results, exposure_missing=exposure_missing, reference=reference)
    predict_end = time.perf_counter()
    predicted = int(np.isfinite(results.probs).sum())
    say(f"predicted {predicted} buildings in {predict_end - read_end:.1f} s")
    # The rasters and the data layer's footprints are not needed any more.
    del area, image, gem
    gc.collect()

    sections = about(model, used_fallback, spec, files, footprints, sar_info, s)
    sections["calibration"] = calibration_section(model, labels, recal)
    sections["shift"] = shift
    summary = write_map(
        staging,
        footprints,
        results,
        name=name,
        id_field=s.id_field,
        order=spatial_order(cx, cy, s.tile_size),
        tile_size=s.tile_size,
        basemap=s.basemap,
        basemap_attribution=s.basemap_attribution,
        about=sections,
        prediction=prediction[1],
        files=OUTPUT_FILES + (AUDIT_FILES if reference is not None else ()),
        sar=files.sar,
        progress=s.progress,
        say=say,
    )
    times = (start, read_end, predict_end, time.perf_counter())
    write_summary(staging, summary, n=n, times=times)
    return summary


def _results(
    area: Area,
    scores: npt.NDArray[np.float32],
    n: int,
    threshold: float,
    units: Units,
    say: Callable[[str], None],
) -> Results:
    """What the map says of every input feature, from the predicted scores.

    Buildings whose footprint mask holds no pixel got no probability (NaN):
    they are skipped as :data:`~torchgeo_quake.mapping._area.SUB_PIXEL`.

    Args:
        area: the buildings scored and the reasons of the others (updated)
        scores: probability of every building of *area*, in its order
        n: number of input features
        threshold: the model's decision threshold
        units: unit of every feature
        say: function printing progress messages

    Returns:
        The reasons, probabilities and classes of every input feature.
    """
    probs = np.full(n, np.nan, dtype=np.float64)
    probs[area.rows] = scores
    # Footprint masks without a pixel: nothing of the building in its window.
    empty = area.rows[np.isnan(scores)]
    area.reasons[empty] = SUB_PIXEL
    if len(empty):
        say(f"{len(empty)} footprints smaller than a SAR pixel were not scored")
    predicted = np.isfinite(probs)
    damaged = predicted & (probs.astype(np.float32) >= np.float32(threshold))
    return Results(area.reasons, probs, damaged, threshold, units, area.exposure)
