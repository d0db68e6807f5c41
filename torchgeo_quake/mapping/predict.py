"""Damage mapping of a new city: :func:`map_damage`.

The trained model is run on every building footprint of the city that the SAR
image covers, through the same data layer as training
(:class:`~torchgeo_quake.datasets.CSKSAR` ``&``
:class:`~torchgeo_quake.datasets.CartoSatDSM` ``&``
:class:`~torchgeo_quake.datasets.OSMBuildings`, one window per building from
:class:`~torchgeo_quake.samplers.BuildingCentroidSampler`), and the result is
written as a map. Every input feature appears in the map exactly once, scored
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

All files are written into a temporary folder beside the output folder and
moved into place only when everything succeeded: an error or an interruption
leaves nothing half-written behind, and results that are replaced
(``overwrite=True``) are all replaced or, if anything fails, all kept.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import io
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.accelerators import CUDAAccelerator
from pyproj import CRS
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .. import __version__
from ._inputs import (
    maybe_usable,
    metric_crs,
    no_footprint_error,
    open_sar,
    read_footprints,
    require_file,
    to_crs_xy,
)
from .html import HTMLMapWriter
from .model import RADIOMETRIES, LoadedModel, fold_batch_norms, select_model
from .rings import RingCollector
from .summary import EXPOSURE_COLUMNS, admin_units, grid_cells, summarise
from .writers import GeoJSONWriter, GeoPackageWriter, layer_geometry_type

__all__ = ["OUTPUT_FILES", "DamageMap", "map_damage", "spatial_order"]

#: Files written into the output folder.
OUTPUT_FILES: tuple[str, ...] = (
    "damage.gpkg",
    "damage.geojson",
    "summary.json",
    "overview.png",
    "map.html",
)

#: Reason of buildings whose window leaves the DSM.
OUTSIDE_DSM = "outside the DSM"

#: Window side (pixels) for checkpoints that record no input specification.
DEFAULT_PATCH_SIZE = 32

#: CRS of the interactive map's outlines.
WEB_MERCATOR = CRS.from_epsg(3857)


@dataclass
class DamageMap:
    """What :func:`map_damage` produced.

    .. versionadded:: 0.1
    """

    #: The output folder.
    out: Path
    #: The content of ``summary.json``.
    summary: dict[str, Any] = field(default_factory=dict)
    #: Output files by name (empty on the non-zero ranks of a DDP run).
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, Any]:
        """Building counts (``footprints``, ``predicted``, ``skipped``, ...).

        Returns:
            The ``counts`` section of the summary.
        """
        counts: dict[str, Any] = self.summary.get("counts", {})
        return counts

    def report(self) -> str:
        """Human-readable counts, as printed by ``torchgeo-quake map``.

        Returns:
            A few lines of text.
        """
        c = self.counts
        if not c:
            return ""
        share = c["damaged_share"]
        lines = [
            f"{c['footprints']} footprints: {c['predicted']} predicted "
            f"({c['damaged']} damaged"
            + (f", {share:.1%}" if share is not None else "")
            + f"), {c['skipped']} skipped",
        ]
        for reason, count in c["skipped_by_reason"].items():
            lines.append(f"  skipped, {reason}: {count}")
        exposure = self.summary.get("exposure")
        if exposure:
            lines.append(
                "in buildings predicted damaged: "
                f"{exposure['occupants_night_in_damaged']:,.0f} occupants at night, "
                f"{exposure['occupants_day_in_damaged']:,.0f} by day,\n  "
                f"{exposure['replacement_cost_usd_in_damaged']:,.0f} USD of "
                "replacement cost (GEM)"
            )
        model = self.summary.get("model", {})
        if model.get("fallback"):
            lines.append(f"used the fallback model {model['checkpoint']}")
        timing = self.summary.get("timing", {})
        if timing:
            lines.append(
                f"{timing['seconds']:.1f} s ({timing['buildings_per_second']:.0f} "
                "buildings/s)"
            )
        lines.append(f"wrote to {self.out}:\n  {', '.join(self.files)}")
        return "\n".join(lines)


# ---------------------------------------------------------------- helpers
def spatial_order(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], tile_size: int
) -> npt.NDArray[np.int64]:
    """An order of points in compact spatial tiles of about *tile_size* points.

    Points are cut into vertical strips of equal counts, each strip is walked
    alternately up and down, so consecutive runs of *tile_size* points form
    compact tiles. Points with NaN coordinates come last.

    Args:
        x: x coordinates
        y: y coordinates
        tile_size: points per tile

    Returns:
        A permutation of the point indices.

    .. versionadded:: 0.1
    """
    n = len(x)
    finite = np.isfinite(x) & np.isfinite(y)
    good = np.flatnonzero(finite)
    tiles = max(1, math.ceil(len(good) / max(tile_size, 1)))
    strips = max(1, math.ceil(math.sqrt(tiles)))
    by_x = good[np.argsort(x[good], kind="stable")]
    parts = []
    for k, strip in enumerate(np.array_split(by_x, strips)):
        key = y[strip] if k % 2 == 0 else -y[strip]
        parts.append(strip[np.argsort(key, kind="stable")])
    parts.append(np.flatnonzero(~finite))
    order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    assert len(order) == n
    return order.astype(np.int64)


#: Time slice of every query (the datasets are not time series).
_ALL_TIME = slice(pd.Timestamp.min, pd.Timestamp.max)


class _Patches(Dataset[dict[str, Tensor]]):
    """Building patches of the model's modalities, by position in a window array.

    The windows are kept as one compact array (not one query object per
    building); the query of a building is made when its patches are cut.
    """

    def __init__(
        self,
        dataset: Any,
        windows: npt.NDArray[np.float64],
        res: tuple[float, float],
        keys: Sequence[str],
    ) -> None:
        """Initialize a new _Patches instance.

        Args:
            dataset: ``sar [& dsm] & footprints``
            windows: ``(xmin, xmax, ymin, ymax)`` of each building's window, in
                prediction order, shape (N, 4)
            res: (xres, yres) of the queries
            keys: sample keys the model needs
        """
        self.dataset = dataset
        self.windows = np.ascontiguousarray(windows, dtype=np.float64)
        self.res = (float(res[0]), float(res[1]))
        self.keys = tuple(keys)

    def __len__(self) -> int:
        """Number of buildings.

        Returns:
            The length.
        """
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Cut the patches of one building.

        Args:
            index: position in the window array

        Returns:
            The model's inputs and ``index``.
        """
        xmin, xmax, ymin, ymax = self.windows[index].tolist()
        query = (
            slice(xmin, xmax, self.res[0]),
            slice(ymin, ymax, self.res[1]),
            _ALL_TIME,
        )
        sample = self.dataset[query]
        out = {key: sample[key] for key in self.keys}
        out["index"] = torch.tensor(index, dtype=torch.long)
        return out


def _collate(samples: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack samples into a batch.

    Args:
        samples: outputs of :class:`_Patches`

    Returns:
        The batch.
    """
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


class _Collector(Callback):
    """Keep the damage probability of every building, gathered over all ranks."""

    def __init__(self, n: int) -> None:
        """Initialize a new _Collector instance.

        Args:
            n: number of buildings predicted
        """
        self.probs = np.full(n, np.nan, dtype=np.float32)

    def on_predict_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Store the probabilities of a batch.

        Args:
            trainer: the trainer
            pl_module: the model
            outputs: ``predict_step`` output (``prob``)
            batch: the batch (``index``)
            batch_idx: batch index
            dataloader_idx: data loader index
        """
        index = batch["index"].cpu().numpy()
        self.probs[index] = outputs["prob"].detach().float().cpu().numpy()

    def on_predict_epoch_end(
        self, trainer: Trainer, pl_module: LightningModule
    ) -> None:
        """Combine the probabilities of all processes.

        Args:
            trainer: the trainer
            pl_module: the model
        """
        if trainer.world_size <= 1:
            return
        local = torch.from_numpy(self.probs).to(pl_module.device)
        gathered = trainer.strategy.all_gather(local)
        assert isinstance(gathered, Tensor)
        combined = gathered.reshape(-1, len(self.probs))
        merged = combined[0].clone()
        for row in combined[1:]:
            merged = torch.where(torch.isnan(merged), row, merged)
        self.probs = merged.cpu().numpy().astype(np.float32)


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's informational messages and hints."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*predict_dataloader.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            yield
    finally:
        logger.setLevel(level)


def _check_output(out: Path, overwrite: bool) -> None:
    """Refuse to replace results unless asked to.

    Args:
        out: the output folder
        overwrite: whether existing results may be replaced

    Raises:
        FileExistsError: If *out* is a file, or holds results and *overwrite*
            is False.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {str(out)!r} exists and is not a folder")
    existing = [name for name in OUTPUT_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"output folder {str(out)!r} already holds results "
            f"({', '.join(existing)}); pass --overwrite (overwrite=True) to "
            "replace them, or choose another folder."
        )


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder above *path* that exists.

    Args:
        path: a path

    Returns:
        The folder.
    """
    parent = path.resolve().parent
    while not parent.exists():
        parent = parent.parent
    return parent


def _bounds_text(bounds: Sequence[float]) -> str:
    """Format bounds for messages.

    Args:
        bounds: (xmin, ymin, xmax, ymax)

    Returns:
        The text.
    """
    return "(" + ", ".join(f"{v:.1f}" for v in bounds) + ")"


def _exposure_values(
    gem: npt.NDArray[np.float32],
) -> dict[str, npt.NDArray[np.float64]]:
    """Occupants and replacement cost per building from GEM feature vectors.

    Args:
        gem: vectors of :data:`~torchgeo_quake.datasets.GEM_FEATURE_NAMES`

    Returns:
        :data:`~torchgeo_quake.mapping.summary.EXPOSURE_COLUMNS` arrays.
    """
    from ..datasets import GEM_FEATURE_NAMES

    names = list(GEM_FEATURE_NAMES)
    g = gem.astype(np.float64)
    return {
        "occupants_day": g[:, names.index("occupants_day_per_building")],
        "occupants_night": g[:, names.index("occupants_night_per_building")],
        "replacement_cost_usd": np.expm1(
            g[:, names.index("log_replacement_cost_per_building")]
        ),
    }


# ------------------------------------------------------------------ main
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
    batch_size: int = 256,
    num_workers: int = 0,
    num_threads: int | None = None,
    accelerator: str = "auto",
    devices: int | str = 1,
    tile_size: int = 4096,
    basemap: str | None = None,
    basemap_attribution: str | None = None,
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
      ``replacement_cost_usd`` of the nearest GEM location;
    * ``damage.geojson`` — the same in WGS84;
    * ``summary.json`` — counts, damaged share, per-unit totals, exposure in
      buildings predicted damaged, model and inputs;
    * ``overview.png`` — the city with buildings coloured by probability;
    * ``map.html`` — an interactive map that works offline.

    The model sees what it was trained on: its checkpoint records the SAR
    radiometry, pixel size and patch size of its training data, and the SAR
    image is resampled (or reprojected to a local UTM zone, when its CRS is
    geographic) to that pixel size when its own differs by more than 1 %.
    Checkpoints written before this was recorded are run on the image's own
    pixels in *radiometry* (default dB) with 32 × 32 windows, with a warning.

    Buildings are skipped, with the reason, when their footprint is unusable
    (missing or duplicate id, missing or unrepairable geometry, not a polygon),
    their window leaves the SAR image (or the DSM), or it covers SAR nodata.

    Args:
        sar: post-event SAR image (any format :class:`~torchgeo_quake.datasets.CSKSAR`
            reads)
        footprints: one vector file of building footprints with *id_field*
            (any CRS; reprojected to the SAR's)
        checkpoint: trained :class:`~torchgeo_quake.trainers.DamageDetectionTask`
        out: output folder (created; must not hold results unless *overwrite*)
        dsm: pre-event DSM, required by models trained with it
        exposure: GEM point-asset CSV, required by models trained with it; also
            gives the exposure totals of the summary
        fallback_checkpoint: model trained without DSM/GEM, used instead of
            *checkpoint* only when that one needs an input that is not given
        units: optional polygons of admin units for the per-unit totals (else a
            square grid of *cell_size*)
        unit_field: attribute naming the units in *units*
        cell_size: grid cell side in metres (in the SAR CRS when it is in
            metres, else in the local UTM zone)
        radiometry: SAR values the model was trained on (``"db"``,
            ``"amplitude"`` or ``"intensity"``); by default the checkpoint's
            (``"db"`` for checkpoints that do not record it). A value that
            contradicts the checkpoint is an error.
        name: name of the city in titles (default: the footprint file's folder)
        id_field: building id column of *footprints*
        max_nodata: largest share of SAR nodata pixels tolerated in a window
        batch_size: buildings per batch
        num_workers: data-loader worker processes
        num_threads: CPU threads of PyTorch during the prediction (default:
            PyTorch's, one per core); 1 is faster on a CPU shared with other
            busy processes
        accelerator: Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``)
        devices: Lightning devices (several devices run with DDP; Lightning
            then relaunches the command line once per device, and only the
            first process writes)
        tile_size: buildings per output tile
        basemap: optional XYZ tile URL template for ``map.html``
        basemap_attribution: attribution text of the basemap
        overwrite: replace the results already in *out* (all of them or, if
            anything fails, none)
        progress: show Lightning's progress bar
        verbose: print what is done

    Returns:
        The summary and the files written.

    Raises:
        FileNotFoundError: If an input does not exist.
        FileExistsError: If *out* holds results and *overwrite* is False.
        ValueError: If an input is unusable (a checkpoint that is not a damage
            model, footprints that do not overlap the SAR image or whose
            coordinates do not fit their CRS, a footprint file without a
            usable footprint, an exposure file of another schema, a
            radiometry that contradicts the checkpoint, ...) or a model needs an
            input that is not given.

    .. versionadded:: 0.1
    """
    start = time.perf_counter()
    out_path = Path(out)
    _check_output(out_path, overwrite)
    sar_path = require_file(sar, "SAR image")
    fp_path = require_file(footprints, "footprint file")
    dsm_path = require_file(dsm, "DSM")
    gem_path = require_file(exposure, "exposure file")
    units_path = require_file(units, "admin units file")
    assert sar_path is not None
    assert fp_path is not None
    if radiometry is not None and radiometry not in RADIOMETRIES:
        raise ValueError(
            f"radiometry must be 'db', 'amplitude' or 'intensity', got {radiometry!r}"
        )
    if batch_size < 1 or tile_size < 1:
        raise ValueError("batch_size and tile_size must be positive")
    if num_threads is not None and num_threads < 1:
        raise ValueError(f"num_threads must be positive, got {num_threads}")
    if not cell_size > 0:
        raise ValueError(f"cell_size must be positive, got {cell_size}")
    if basemap is not None and not all(k in basemap for k in ("{z}", "{x}", "{y}")):
        raise ValueError(
            "basemap must be an XYZ tile URL template with {z}, {x} and {y}, got "
            f"{basemap!r}"
        )

    def say(message: str) -> None:
        if verbose and _global_zero():
            print(message, flush=True)

    available = {"sar", "footprint"}
    if dsm_path is not None:
        available.add("dsm")
    if gem_path is not None:
        available.add("gem")
    model, used_fallback = select_model(checkpoint, available, fallback_checkpoint)
    if used_fallback:
        say(f"using the fallback model {model.path}")
    unused = sorted({"dsm"} & available - set(model.modalities))
    if unused:
        say("the model does not use the DSM: it is ignored")
    spec = _model_inputs(model, radiometry)

    staging = Path(
        tempfile.mkdtemp(
            prefix=f".{out_path.name}.partial-", dir=_existing_ancestor(out_path)
        )
    )
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; out is not
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        result = _run(
            model=model,
            used_fallback=used_fallback,
            spec=spec,
            sar_path=sar_path,
            fp_path=fp_path,
            dsm_path=dsm_path,
            gem_path=gem_path,
            units_path=units_path,
            unit_field=unit_field,
            cell_size=cell_size,
            name=name or fp_path.resolve().parent.name,
            id_field=id_field,
            max_nodata=max_nodata,
            batch_size=batch_size,
            num_workers=num_workers,
            accelerator=accelerator,
            devices=devices,
            tile_size=tile_size,
            basemap=basemap,
            basemap_attribution=basemap_attribution,
            progress=progress,
            staging=staging,
            start=start,
            say=say,
        )
        if result is None:  # a non-zero rank of a DDP run: rank 0 writes
            shutil.rmtree(staging, ignore_errors=True)
            return DamageMap(out=out_path)
        summary = result
        _check_output(out_path, overwrite)  # nothing appeared meanwhile
        _install(staging, out_path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(threads)
    files = {file: out_path / file for file in OUTPUT_FILES}
    return DamageMap(out=out_path, summary=summary, files=files)


def _model_inputs(model: LoadedModel, radiometry: str | None) -> dict[str, Any]:
    """What the SAR input must look like for a model.

    Args:
        model: the model
        radiometry: radiometry asked for by the user, or None

    Returns:
        ``radiometry``, ``sar_res`` (metres or None: the image's own) and
        ``patch_size``, and ``recorded`` (whether the checkpoint records them).

    Raises:
        ValueError: If *radiometry* contradicts the checkpoint.
    """
    spec = model.input_spec
    if spec is None:
        used = radiometry or "db"
        warnings.warn(
            f"checkpoint {str(model.path)!r} records no input specification (it "
            "was written before torchgeo_quake stored one): the SAR image is used "
            f"at its own pixel size, in {used} radiometry, with "
            f"{DEFAULT_PATCH_SIZE} x {DEFAULT_PATCH_SIZE}-pixel windows. If the "
            "model was trained on another pixel size or radiometry, the map is "
            "wrong: resample the image to the training pixel size and pass "
            "--radiometry, or retrain the model to record them.",
            UserWarning,
            stacklevel=3,
        )
        return {
            "radiometry": used,
            "sar_res": None,
            "patch_size": DEFAULT_PATCH_SIZE,
            "recorded": False,
        }
    if radiometry is not None and radiometry != spec["radiometry"]:
        raise ValueError(
            f"--radiometry {radiometry} (radiometry=) contradicts the model "
            f"{str(model.path)!r}, which was trained on SAR values in "
            f"{spec['radiometry']}: drop --radiometry (the checkpoint's radiometry "
            "is used by default) or pass a model trained on that radiometry."
        )
    return {**spec, "recorded": True}


def _replace(source: Path, target: Path) -> None:
    """Move a file or folder into place (:func:`os.replace`).

    Args:
        source: what to move
        target: where
    """
    os.replace(source, target)


def _install(staging: Path, out: Path) -> None:
    """Move finished results into the output folder, all of them or none.

    A new folder is renamed into place. Into an existing folder (which may
    hold other files, kept), the previous results are first moved aside, then
    the new ones in; if any move fails, the new files are taken out again and
    the previous ones put back, so the folder never holds a mix of both.

    Args:
        staging: folder holding every file of :data:`OUTPUT_FILES`
        out: output folder

    Raises:
        OSError: If a move fails (after the rollback).
    """
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        _replace(staging, out)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-old-", dir=out.parent))
    old: list[str] = []
    new: list[str] = []
    try:
        for file in OUTPUT_FILES:
            if (out / file).exists():
                _replace(out / file, backup / file)
                old.append(file)
        for file in OUTPUT_FILES:
            _replace(staging / file, out / file)
            new.append(file)
    except BaseException:
        for file in new:
            with contextlib.suppress(OSError):
                os.replace(out / file, staging / file)
        for file in old:
            with contextlib.suppress(OSError):
                os.replace(backup / file, out / file)
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _global_zero() -> bool:
    """Whether this process is rank 0 of a (possibly distributed) run.

    Returns:
        True unless Lightning's DDP launcher set a non-zero rank.
    """
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK"):
        if os.environ.get(key, "0") not in ("", "0"):
            return False
    return True


def _centroids(
    geoms: npt.NDArray[np.object_], source: CRS, target: CRS, chunk: int
) -> npt.NDArray[np.float64]:
    """Centroids of footprints in another CRS, reprojected a chunk at a time.

    Args:
        geoms: footprints in *source* (None and empty ones give NaN)
        source: their CRS
        target: CRS of the centroids
        chunk: footprints reprojected at once

    Returns:
        (N, 2) coordinates in *target*.
    """
    n = len(geoms)
    centroids = np.full((n, 2), np.nan)
    for first in range(0, n, chunk):
        part = geoms[first : first + chunk]
        present = ~shapely.is_missing(part) & ~shapely.is_empty(part)
        if not present.any():
            continue
        moved = gpd.GeoSeries(part[present], crs=source).to_crs(target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            points = shapely.centroid(np.asarray(moved.values, dtype=object))
        rows = first + np.flatnonzero(present)
        centroids[rows] = shapely.get_coordinates(points)
    return centroids


def _reproject(
    geoms: npt.NDArray[np.object_], source: CRS, target: CRS
) -> npt.NDArray[np.object_]:
    """Reproject geometries (None stays None).

    Args:
        geoms: geometries in *source*
        source: their CRS
        target: CRS wanted

    Returns:
        The geometries in *target*.
    """
    if source == target:
        return geoms
    return np.asarray(
        gpd.GeoSeries(geoms, crs=source).to_crs(target).values, dtype=object
    )


def _run(
    *,
    model: LoadedModel,
    used_fallback: bool,
    spec: dict[str, Any],
    sar_path: Path,
    fp_path: Path,
    dsm_path: Path | None,
    gem_path: Path | None,
    units_path: Path | None,
    unit_field: str,
    cell_size: float,
    name: str,
    id_field: str,
    max_nodata: float,
    batch_size: int,
    num_workers: int,
    accelerator: str,
    devices: int | str,
    tile_size: int,
    basemap: str | None,
    basemap_attribution: str | None,
    progress: bool,
    staging: Path,
    start: float,
    say: Any,
) -> dict[str, Any] | None:
    """Read the inputs, predict and write every output into *staging*.

    Memory: the footprints are held once, as read (id and geometry only); the
    data layer holds its own copy in the SAR CRS during the prediction, which
    is released, with the rasters, before the outputs are written tile by
    tile. Per building only compact arrays are kept (centroid, window,
    probability, reason, unit).

    Args:
        model: the model to run
        used_fallback: whether it is the fallback model
        spec: SAR radiometry, pixel size and patch size (:func:`_model_inputs`)
        sar_path: SAR image
        fp_path: footprints
        dsm_path: DSM or None
        gem_path: GEM exposure or None
        units_path: admin units or None
        unit_field: name field of the admin units
        cell_size: grid cell side in metres
        name: city name
        id_field: building id column
        max_nodata: tolerated nodata share
        batch_size: batch size
        num_workers: data-loader workers
        accelerator: Lightning accelerator
        devices: Lightning devices
        tile_size: buildings per output tile
        basemap: basemap URL template or None
        basemap_attribution: basemap attribution
        progress: show a progress bar
        staging: folder receiving the outputs
        start: start time (``time.perf_counter``)
        say: function printing progress messages

    Returns:
        The summary, or None on a non-zero rank of a DDP run.

    Raises:
        ValueError: If an input is unusable.
    """
    from torchgeo.datasets import GeoDataset

    from ..datasets import CartoSatDSM, GEMExposure, OSMBuildings
    from ..samplers import BuildingCentroidSampler

    # -- inputs -----------------------------------------------------------------
    raw = read_footprints(fp_path, id_field)
    n = len(raw)
    fp_crs = CRS.from_user_input(raw.crs)
    say(f"read {n} footprints from {fp_path} ({fp_crs.to_string()})")
    if maybe_usable(raw, id_field) == 0:
        error = no_footprint_error(raw, fp_path, id_field)
        assert error is not None
        raise error
    image, sar_info = open_sar(sar_path, spec["radiometry"], spec["sar_res"], say)
    work_crs = CRS.from_user_input(image.crs)
    raw_geoms = np.asarray(raw.geometry.values, dtype=object)
    centroids = _centroids(raw_geoms, fp_crs, work_crs, tile_size)
    sar_bounds = tuple(float(v) for v in image.index.total_bounds)
    cx, cy = centroids[:, 0], centroids[:, 1]
    inside = (
        (cx >= sar_bounds[0])
        & (cx <= sar_bounds[2])
        & (cy >= sar_bounds[1])
        & (cy <= sar_bounds[3])
    )
    finite = np.isfinite(cx) & np.isfinite(cy)
    if not inside.any():
        fp_bounds = (
            (cx[finite].min(), cy[finite].min(), cx[finite].max(), cy[finite].max())
            if finite.any()
            else (math.nan,) * 4
        )
        raise ValueError(
            f"the footprints do not overlap the SAR image: footprints "
            f"{_bounds_text(fp_bounds)}, SAR image {_bounds_text(sar_bounds)}, both "
            f"in {work_crs.to_string()}. Check that both cover the same city and "
            f"that the footprint file's CRS ({fp_crs.to_string()}) is right."
        )
    # Outlines and grid cells in metres, whatever the SAR CRS.
    area = (
        float(cx[finite].min()),
        float(cy[finite].min()),
        float(cx[finite].max()),
        float(cy[finite].max()),
    )
    metric = metric_crs(work_crs, area)

    # Units first: a wrong admin-units file stops the run before prediction.
    unit_table: pd.DataFrame | None
    if units_path is not None:
        unit_labels = admin_units(cx, cy, work_crs, units_path, unit_field)
        unit_table = None
        unit_info: dict[str, Any] = {
            "kind": "admin",
            "file": str(units_path),
            "field": unit_field,
        }
    else:
        mx, my = to_crs_xy(cx, cy, work_crs, metric)
        unit_labels, unit_table = grid_cells(mx, my, cell_size)
        unit_info = {
            "kind": "grid",
            "cell_size": cell_size,
            "cell_size_unit": "metre",
            "crs": metric.to_string(),
            "label": "lower-left corner of the cell, '<x>_<y>'",
        }

    gem = None
    if gem_path is not None:
        try:
            gem = GEMExposure(gem_path)
        except ValueError as err:
            raise ValueError(f"exposure file {str(gem_path)!r}: {err}") from err
        if gem.kind != "points":
            raise ValueError(
                f"exposure file {str(gem_path)!r} holds admin-level aggregates "
                "without coordinates; mapping needs GEM point assets (OpenQuake "
                "exposure CSV with lon and lat)."
            )
    # TorchGeo prints what it converts ("Converting CartoSatDSM res from ...");
    # it is passed on as a progress message (not on other ranks, not --quiet).
    converted = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(converted):
        warnings.filterwarnings("ignore", message=".*Converting.*res.*")
        try:
            buildings = OSMBuildings(
                fp_path, city=name, exposure=gem, id_field=id_field
            )
        except ValueError as err:
            error = no_footprint_error(raw, fp_path, id_field)
            if error is not None:
                raise error from err
            raise
        dataset: GeoDataset = image
        if "dsm" in model.modalities:
            assert dsm_path is not None
            try:
                dataset = dataset & CartoSatDSM(dsm_path)
            except RuntimeError as err:
                raise ValueError(
                    f"the DSM {str(dsm_path)!r} does not overlap the SAR image "
                    f"{str(sar_path)!r} ({err})"
                ) from err
        try:
            dataset = dataset & buildings
        except RuntimeError as err:  # pragma: no cover - caught by the bounds check
            raise ValueError(
                f"the footprints do not overlap the SAR image ({err})"
            ) from err
    for line in converted.getvalue().splitlines():
        say(line)
    patch_size = int(spec["patch_size"])
    sampler = BuildingCentroidSampler(
        dataset, size=patch_size, negatives_per_positive=None, max_nodata=max_nodata
    )

    # -- status of every input feature ---------------------------------------
    reasons = np.full(n, None, dtype=object)
    skipped_fp = buildings.skipped
    reasons[skipped_fp["row"].to_numpy(dtype=np.int64)] = skipped_fp["reason"].to_numpy(
        dtype=object
    )
    row_of_id = pd.Series(
        buildings.buildings["row"].to_numpy(dtype=np.int64),
        index=buildings.buildings["building_id"].to_numpy(dtype=np.int64),
    )
    if not sampler.skipped.empty:
        rows = row_of_id.loc[sampler.skipped["building_id"].to_numpy(np.int64)]
        reasons[rows.to_numpy()] = sampler.skipped["reason"].to_numpy(dtype=object)
    chosen = sampler.buildings
    query_rows = row_of_id.loc[chosen["building_id"].to_numpy(np.int64)].to_numpy()
    windows = chosen[["xmin", "xmax", "ymin", "ymax"]].to_numpy(dtype=np.float64)
    res = (float(sampler.res[0]), float(sampler.res[1]))
    del sampler, chosen
    if "dsm" in model.modalities:
        dsm_data = next(d for d in _leaves(dataset) if isinstance(d, CartoSatDSM))
        coverage = shapely.union_all(dsm_data.index.geometry.values)
        boxes = shapely.box(windows[:, 0], windows[:, 2], windows[:, 1], windows[:, 3])
        keep = shapely.contains(coverage.buffer(1e-6 * res[0]), boxes)
        reasons[query_rows[~keep]] = OUTSIDE_DSM
        query_rows, windows = query_rows[keep], windows[keep]
        del dsm_data, coverage, boxes, keep
    # Predict in spatial order.
    order = spatial_order(cx[query_rows], cy[query_rows], tile_size)
    query_rows, windows = query_rows[order], windows[order]
    unaccounted = np.ones(n, dtype=bool)
    unaccounted[query_rows] = False
    unaccounted[~pd.isna(pd.Series(reasons, dtype=object)).to_numpy()] = False
    if unaccounted.any():  # pragma: no cover - a bug, never silently dropped
        raise RuntimeError(
            f"{int(unaccounted.sum())} footprints were neither scored nor skipped"
        )
    say(
        f"model {model.path.name}: inputs {', '.join(model.modalities)}; "
        f"threshold {model.threshold:.3f}"
    )
    pixels = sar_info["pixel_size_m"]
    say(
        f"SAR in {spec['radiometry']}"
        + (f", {pixels:g} m pixels" if pixels is not None else "")
        + f", {patch_size} x {patch_size}-pixel windows"
        + ("" if spec["recorded"] else " (not recorded in the checkpoint)")
    )
    say(f"{len(windows)} buildings to score, {n - len(windows)} skipped")

    # -- prediction ---------------------------------------------------------------
    read_end = time.perf_counter()
    probs = np.full(n, np.nan, dtype=np.float64)
    run_info: dict[str, Any] = {"accelerator": None, "processes": 1}
    if len(windows):
        fold_batch_norms(model.task)  # same probabilities (to ~1e-7), faster
        patches = _Patches(dataset, windows, res, list(model.modalities))
        collector = _Collector(len(windows))
        with _quiet_lightning():
            trainer = Trainer(
                accelerator=accelerator,
                devices=devices,
                logger=False,
                enable_checkpointing=False,
                enable_model_summary=False,
                enable_progress_bar=progress,
                callbacks=[collector],
                default_root_dir=staging,
            )
            loader = DataLoader(
                patches,
                batch_size=batch_size,
                shuffle=False,
                num_workers=num_workers,
                collate_fn=_collate,
                pin_memory=isinstance(trainer.accelerator, CUDAAccelerator),
            )
            trainer.predict(model.task, dataloaders=loader, return_predictions=False)
        if not trainer.is_global_zero:
            return None
        run_info = {
            "accelerator": type(trainer.accelerator).__name__,
            "processes": int(trainer.world_size),
        }
        probs[query_rows] = collector.probs
        if np.isnan(collector.probs).any():  # pragma: no cover - a bug
            raise RuntimeError("some buildings received no prediction")
        del trainer, loader, patches, collector
    elif not _global_zero():
        return None
    predicted = np.isfinite(probs)
    threshold = np.float32(model.threshold)
    damaged = predicted & (probs.astype(np.float32) >= threshold)
    predict_end = time.perf_counter()
    say(f"predicted {int(predicted.sum())} buildings in {predict_end - read_end:.1f} s")

    # -- exposure ---------------------------------------------------------------
    exposure_values: dict[str, npt.NDArray[np.float64]] | None = None
    if gem is not None and buildings.gem is not None:
        per_building = _exposure_values(buildings.gem)
        rows = buildings.buildings["row"].to_numpy(dtype=np.int64)
        exposure_values = {}
        for column in EXPOSURE_COLUMNS:
            values = np.full(n, np.nan)
            values[rows] = per_building[column]
            exposure_values[column] = values
    # The rasters and the data layer's footprints are not needed any more.
    del dataset, image, buildings, skipped_fp, row_of_id, windows, query_rows
    gc.collect()

    # -- writing, tile by tile -------------------------------------------------------
    ids = pd.to_numeric(raw[id_field], errors="coerce")
    id_values = pd.array(
        np.where(ids.notna(), ids.fillna(0), 0).astype(np.int64), dtype="Int64"
    )
    id_values[ids.isna().to_numpy()] = pd.NA
    del ids
    gpkg = GeoPackageWriter(
        staging / "damage.gpkg", fp_crs, geometry_type=layer_geometry_type(raw_geoms)
    )
    overview_rings = RingCollector()
    html_map = HTMLMapWriter(staging / "map.html")
    write_order = spatial_order(cx, cy, tile_size)
    try:
        with GeoJSONWriter(staging / "damage.geojson") as geojson:
            for first in range(0, n, tile_size):
                rows = write_order[first : first + tile_size]
                tile = _tile_frame(
                    rows=rows,
                    geoms=raw_geoms[rows],
                    crs=fp_crs,
                    id_field=id_field,
                    id_values=id_values,
                    reasons=reasons,
                    probs=probs,
                    damaged=damaged,
                    units=unit_labels,
                    exposure=exposure_values,
                )
                gpkg.write(tile)
                geojson.write(tile)
                overview_rings.add(_reproject(raw_geoms[rows], fp_crs, metric), rows)
                html_map.add(_reproject(raw_geoms[rows], fp_crs, WEB_MERCATOR), rows)
        gpkg.close()
        del raw, raw_geoms, tile
        gc.collect()

        # -- summary, overview, interactive map -------------------------------------
        totals = summarise(
            predicted, damaged, reasons, unit_labels, exposure_values, unit_table
        )
        counts = totals["counts"]
        summary: dict[str, Any] = {
            "generator": f"torchgeo_quake {__version__}",
            "created": datetime.datetime.now(datetime.UTC).isoformat(
                timespec="seconds"
            ),
            "city": name,
            "counts": counts,
            "exposure": totals["exposure"],
            "model": {
                "checkpoint": str(model.path),
                "modalities": list(model.modalities),
                "fallback": used_fallback,
                "threshold": model.threshold,
                "threshold_from_validation": model.threshold_from_validation,
                "radiometry": spec["radiometry"],
                "sar_pixel_size_m": spec["sar_res"],
                "patch_size": patch_size,
                "input_spec_recorded": spec["recorded"],
            },
            "inputs": {
                "sar": str(sar_path),
                "footprints": str(fp_path),
                "dsm": None if dsm_path is None else str(dsm_path),
                "exposure": None if gem_path is None else str(gem_path),
                "footprints_crs": fp_crs.to_string(),
                "sar_crs": sar_info["native_crs"],
                "sar_pixel_size_m": sar_info["native_pixel_size_m"],
                "max_nodata": max_nodata,
            },
            "sar_grid": {
                "crs": work_crs.to_string(),
                "pixel_size_m": sar_info["pixel_size_m"],
                "resampled": sar_info["resampled"],
            },
            "output_crs": {
                "damage.gpkg": fp_crs.to_string(),
                "damage.geojson": "EPSG:4326",
            },
            "units": {**unit_info, "table": totals["units"]},
            "prediction": run_info,
            "files": list(OUTPUT_FILES),
        }
        share = counts["damaged_share"]
        subtitle = (
            f"{counts['predicted']} buildings scored, {counts['damaged']} predicted "
            f"damaged"
            + (f" ({share:.1%})" if share is not None else "")
            + f"; {counts['skipped']} not scored"
        )
        title = f"{name}: predicted building damage"
        from .overview import plot_overview, save_overview

        fig = plot_overview(
            overview_rings.rings(),
            probs,
            model.threshold,
            title=f"{title}\n{subtitle}",
            units="m",
        )
        del overview_rings
        save_overview(fig, staging / "overview.png")
        del fig
        html_map.close(
            probs,
            id_values,
            reasons,
            model.threshold,
            title=title,
            subtitle=subtitle,
            id_field=id_field,
            basemap=basemap,
            attribution=basemap_attribution,
        )
    finally:
        html_map.abort()
    end = time.perf_counter()
    seconds = end - start
    summary["timing"] = {
        "seconds": round(seconds, 2),
        "buildings_per_second": round(n / seconds, 1) if seconds > 0 else None,
        "read_seconds": round(read_end - start, 2),
        "predict_seconds": round(predict_end - read_end, 2),
        "write_seconds": round(end - predict_end, 2),
    }
    with open(staging / "summary.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, ensure_ascii=False, indent=2)
        f.write("\n")
    return summary


def _leaves(dataset: Any) -> list[Any]:
    """The datasets inside nested intersections, left to right.

    Args:
        dataset: a dataset

    Returns:
        The leaf datasets.
    """
    inner = getattr(dataset, "datasets", None)
    if not inner:
        return [dataset]
    found: list[Any] = []
    for d in inner:
        found.extend(_leaves(d))
    return found


def _tile_frame(
    *,
    rows: npt.NDArray[np.int64],
    geoms: npt.NDArray[np.object_],
    crs: CRS,
    id_field: str,
    id_values: Any,
    reasons: npt.NDArray[np.object_],
    probs: npt.NDArray[np.float64],
    damaged: npt.NDArray[np.bool_],
    units: npt.NDArray[np.object_],
    exposure: dict[str, npt.NDArray[np.float64]] | None,
) -> gpd.GeoDataFrame:
    """The output features of one tile.

    Args:
        rows: input rows of the tile
        geoms: their footprints, as read
        crs: CRS of the footprints
        id_field: building id column
        id_values: nullable ids of all rows
        reasons: skip reasons (None for scored rows)
        probs: damage probabilities (NaN where skipped)
        damaged: predicted class
        units: unit labels
        exposure: per-building exposure or None

    Returns:
        The tile, in the footprints' CRS.
    """
    scored = np.isfinite(probs[rows])
    columns: dict[str, Any] = {
        "feature": rows.astype(np.int64),
        id_field: id_values[rows],
        "status": np.where(scored, "predicted", "skipped").astype(object),
        "reason": pd.array(reasons[rows], dtype="string"),
        "damage_probability": np.where(scored, np.round(probs[rows], 6), np.nan),
        "damaged": pd.array(
            np.where(scored, damaged[rows].astype(np.int64), 0), dtype="Int64"
        ),
        "unit": pd.array(units[rows], dtype="string"),
    }
    columns["damaged"][~scored] = pd.NA
    if exposure is not None:
        for column in EXPOSURE_COLUMNS:
            columns[column] = np.round(exposure[column][rows], 3)
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=crs)
