"""Damage mapping of a new city: :func:`map_damage`.

The trained model is run on every building footprint of the city that the SAR
image covers, through the same data layer as training
(:class:`~torchgeo_quake.datasets.CSKSAR` ``&``
:class:`~torchgeo_quake.datasets.CartoSatDSM` ``&``
:class:`~torchgeo_quake.datasets.OSMBuildings`, one window per building from
:class:`~torchgeo_quake.samplers.BuildingCentroidSampler`), and the result is
written as a map. Every input feature appears in the map exactly once, scored
(``status = "predicted"``) or not (``status = "skipped"`` with the reason).

Two passes keep memory bounded for large cities:

1. *Prediction*, with Lightning's prediction loop (CPU, one GPU or several GPUs
   with DDP, unchanged): building patches are cut on the fly, batch by batch, in
   spatial tiles; only one probability per building is kept.
2. *Writing*: the footprints go out tile by tile (a few thousand at a time) to
   the GeoPackage and the GeoJSON, which are appended to, never held whole.

All files are written into a temporary folder beside the output folder and
moved into place only when everything succeeded: an error or an interruption
leaves nothing half-written behind.

.. versionadded:: 0.1
"""

from __future__ import annotations

import contextlib
import datetime
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
from .model import LoadedModel, fold_batch_norms, select_model
from .rings import RingCollector
from .summary import EXPOSURE_COLUMNS, admin_units, grid_cells, summarise
from .writers import GeoJSONWriter, GeoPackageWriter

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


class _Patches(Dataset[dict[str, Tensor]]):
    """Building patches of the model's modalities, by position in a query list."""

    def __init__(
        self, dataset: Any, queries: Sequence[Any], keys: Sequence[str]
    ) -> None:
        """Initialize a new _Patches instance.

        Args:
            dataset: ``sar [& dsm] & footprints``
            queries: one window per building, in prediction order
            keys: sample keys the model needs
        """
        self.dataset = dataset
        self.queries = list(queries)
        self.keys = tuple(keys)

    def __len__(self) -> int:
        """Number of buildings.

        Returns:
            The length.
        """
        return len(self.queries)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Cut the patches of one building.

        Args:
            index: position in the query list

        Returns:
            The model's inputs and ``index``.
        """
        sample = self.dataset[self.queries[index]]
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


def _require_file(path: str | os.PathLike[str] | None, what: str) -> Path | None:
    """Check that an input file exists.

    Args:
        path: the path, or None
        what: which input (for the message)

    Returns:
        The path, or None.

    Raises:
        FileNotFoundError: If the path does not exist.
    """
    if path is None:
        return None
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"{what} {str(file)!r} does not exist")
    return file


def _read_footprints(path: Path, id_field: str) -> gpd.GeoDataFrame:
    """Read the input footprints and check their CRS is plausible.

    Args:
        path: footprint file
        id_field: building id column

    Returns:
        The features, in file order, in their own CRS.

    Raises:
        ValueError: If the file is unreadable, empty, lacks *id_field*, or its
            coordinates do not fit its CRS.
    """
    from ..datasets.osm import read_vector

    if path.is_dir():
        raise ValueError(
            f"--footprints {str(path)!r} is a folder; pass one vector file "
            "(GeoPackage, GeoJSON, Shapefile, FlatGeobuf or GeoParquet)."
        )
    frame = read_vector(path)
    if frame.empty:
        raise ValueError(f"footprint file {str(path)!r} holds no features")
    if id_field not in frame.columns:
        raise ValueError(
            f"footprint file {str(path)!r} has no {id_field!r} column (columns: "
            f"{', '.join(map(str, frame.columns))}); pass its id column with "
            "--id-field."
        )
    crs = CRS.from_user_input(frame.crs)
    present = frame.geometry.notna() & ~frame.geometry.is_empty
    if crs.is_geographic and present.any():
        xmin, ymin, xmax, ymax = frame.geometry[present].total_bounds
        if xmin < -180.5 or xmax > 360.5 or ymin < -90.5 or ymax > 90.5:
            raise ValueError(
                f"footprint file {str(path)!r} declares the geographic CRS "
                f"{crs.to_string()} but its coordinates ({xmin:.1f}, {ymin:.1f}, "
                f"{xmax:.1f}, {ymax:.1f}) are not longitudes and latitudes: the "
                "file's CRS is wrong. Assign the right one (e.g. `ogr2ogr -a_srs "
                f"EPSG:32637 fixed.gpkg {path}`) and try again."
            )
    return frame


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
    radiometry: str = "db",
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
      CRS, with ``feature`` (position in the input file), the id
      (*id_field*), ``status`` (``"predicted"`` or ``"skipped"``), ``reason``
      (why a building was skipped), ``damage_probability``, ``damaged`` (1 at
      or above the checkpoint's threshold, else 0; empty when skipped),
      ``unit`` (admin unit or grid cell) and, with *exposure*,
      ``occupants_day``, ``occupants_night`` and ``replacement_cost_usd`` of
      the nearest GEM location;
    * ``damage.geojson`` — the same in WGS84;
    * ``summary.json`` — counts, damaged share, per-unit totals, exposure in
      buildings predicted damaged, model and inputs;
    * ``overview.png`` — the city with buildings coloured by probability;
    * ``map.html`` — an interactive map that works offline.

    Buildings are skipped, with the reason, when their footprint is unusable
    (missing or duplicate id, missing or unrepairable geometry, not a polygon),
    their 32 × 32 window leaves the SAR image (or the DSM), or it covers SAR
    nodata.

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
        cell_size: grid cell side, in units of the SAR CRS (metres)
        radiometry: SAR values the model was trained on (``"db"``, the data
            module's default, ``"amplitude"`` or ``"intensity"``)
        name: name of the city in titles (default: the footprint file's folder)
        id_field: building id column of *footprints*
        max_nodata: largest share of SAR nodata pixels tolerated in a window
        batch_size: buildings per batch
        num_workers: data-loader worker processes
        num_threads: CPU threads of PyTorch during the prediction (default:
            PyTorch's, one per core); 1 is faster on a CPU shared with other
            busy processes
        accelerator: Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``)
        devices: Lightning devices (several GPUs run with DDP; Lightning then
            relaunches the command line once per GPU)
        tile_size: buildings per output tile
        basemap: optional XYZ tile URL template for ``map.html``
        basemap_attribution: attribution text of the basemap
        overwrite: replace the results already in *out*
        progress: show Lightning's progress bar
        verbose: print what is done

    Returns:
        The summary and the files written.

    Raises:
        FileNotFoundError: If an input does not exist.
        FileExistsError: If *out* holds results and *overwrite* is False.
        ValueError: If an input is unusable (a checkpoint that is not a damage
            model, footprints that do not overlap the SAR image or whose
            coordinates do not fit their CRS, an exposure file of another
            schema, ...) or a model needs an input that is not given.

    .. versionadded:: 0.1
    """
    start = time.perf_counter()
    out_path = Path(out)
    _check_output(out_path, overwrite)
    sar_path = _require_file(sar, "SAR image")
    fp_path = _require_file(footprints, "footprint file")
    dsm_path = _require_file(dsm, "DSM")
    gem_path = _require_file(exposure, "exposure file")
    units_path = _require_file(units, "admin units file")
    assert sar_path is not None
    assert fp_path is not None
    if radiometry not in ("db", "amplitude", "intensity"):
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
            sar_path=sar_path,
            fp_path=fp_path,
            dsm_path=dsm_path,
            gem_path=gem_path,
            units_path=units_path,
            unit_field=unit_field,
            cell_size=cell_size,
            radiometry=radiometry,
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
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if not out_path.exists():
            staging.rename(out_path)
        else:
            for file in OUTPUT_FILES:
                os.replace(staging / file, out_path / file)
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(threads)
    files = {file: out_path / file for file in OUTPUT_FILES}
    return DamageMap(out=out_path, summary=summary, files=files)


def _global_zero() -> bool:
    """Whether this process is rank 0 of a (possibly distributed) run.

    Returns:
        True unless Lightning's DDP launcher set a non-zero rank.
    """
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK"):
        if os.environ.get(key, "0") not in ("", "0"):
            return False
    return True


def _run(
    *,
    model: LoadedModel,
    used_fallback: bool,
    sar_path: Path,
    fp_path: Path,
    dsm_path: Path | None,
    gem_path: Path | None,
    units_path: Path | None,
    unit_field: str,
    cell_size: float,
    radiometry: str,
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

    Args:
        model: the model to run
        used_fallback: whether it is the fallback model
        sar_path: SAR image
        fp_path: footprints
        dsm_path: DSM or None
        gem_path: GEM exposure or None
        units_path: admin units or None
        unit_field: name field of the admin units
        cell_size: grid cell side
        radiometry: SAR radiometry of the model
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

    from ..datasets import CSKSAR, CartoSatDSM, GEMExposure, OSMBuildings
    from ..samplers import BuildingCentroidSampler

    # -- inputs -----------------------------------------------------------------
    raw = _read_footprints(fp_path, id_field)
    n = len(raw)
    fp_crs = CRS.from_user_input(raw.crs).to_string()
    say(f"read {n} footprints from {fp_path} ({fp_crs})")
    image = CSKSAR(sar_path, radiometry=radiometry)  # type: ignore[arg-type]
    work_crs = CRS.from_user_input(image.crs)
    raw_geoms = np.asarray(raw.geometry.values, dtype=object)
    present = ~shapely.is_missing(raw_geoms) & ~shapely.is_empty(raw_geoms)
    work = gpd.GeoSeries(raw_geoms, crs=raw.crs).to_crs(work_crs)
    centroids = np.full((n, 2), np.nan)
    if present.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            c = shapely.centroid(np.asarray(work.values, dtype=object)[present])
        centroids[present] = shapely.get_coordinates(c) if len(c) else np.zeros((0, 2))
    sar_bounds = tuple(float(v) for v in image.index.total_bounds)
    cx, cy = centroids[:, 0], centroids[:, 1]
    inside = (
        (cx >= sar_bounds[0])
        & (cx <= sar_bounds[2])
        & (cy >= sar_bounds[1])
        & (cy <= sar_bounds[3])
    )
    if not inside.any():
        finite = np.isfinite(cx) & np.isfinite(cy)
        fp_bounds = (
            (cx[finite].min(), cy[finite].min(), cx[finite].max(), cy[finite].max())
            if finite.any()
            else (math.nan,) * 4
        )
        raise ValueError(
            f"the footprints do not overlap the SAR image: footprints "
            f"{_bounds_text(fp_bounds)}, SAR image {_bounds_text(sar_bounds)}, both "
            f"in {work_crs.to_string()}. Check that both cover the same city and "
            f"that the footprint file's CRS ({fp_crs}) is right."
        )

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
        unit_labels, unit_table = grid_cells(cx, cy, cell_size)
        unit_info = {
            "kind": "grid",
            "cell_size": cell_size,
            "crs": work_crs.to_string(),
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
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Converting.*res.*")
        buildings = OSMBuildings(fp_path, city=name, exposure=gem, id_field=id_field)
        dataset: GeoDataset = image
        if "dsm" in model.modalities:
            assert dsm_path is not None
            surface = CartoSatDSM(dsm_path)
            try:
                dataset = dataset & surface
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
    sampler = BuildingCentroidSampler(
        dataset, size=32, negatives_per_positive=None, max_nodata=max_nodata
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
    queries = list(sampler.queries)
    keep = np.ones(len(queries), dtype=bool)
    if "dsm" in model.modalities:
        dsm_data = next(d for d in _leaves(dataset) if isinstance(d, CartoSatDSM))
        coverage = shapely.union_all(dsm_data.index.geometry.values)
        boxes = shapely.box(
            chosen["xmin"], chosen["ymin"], chosen["xmax"], chosen["ymax"]
        )
        keep = shapely.contains(coverage.buffer(1e-6 * sampler.res[0]), boxes)
        reasons[query_rows[~keep]] = OUTSIDE_DSM
    query_rows = query_rows[keep]
    queries = [q for q, k in zip(queries, keep, strict=True) if k]
    # Predict in spatial order.
    order = spatial_order(cx[query_rows], cy[query_rows], tile_size)
    query_rows = query_rows[order]
    queries = [queries[i] for i in order]
    unaccounted = np.ones(n, dtype=bool)
    unaccounted[query_rows] = False
    unaccounted[[i for i, r in enumerate(reasons) if r is not None]] = False
    if unaccounted.any():  # pragma: no cover - a bug, never silently dropped
        raise RuntimeError(
            f"{int(unaccounted.sum())} footprints were neither scored nor skipped"
        )
    say(
        f"model {model.path.name}: inputs {', '.join(model.modalities)}; "
        f"threshold {model.threshold:.3f}"
    )
    say(f"{len(queries)} buildings to score, {n - len(queries)} skipped")

    # -- prediction ---------------------------------------------------------------
    read_end = time.perf_counter()
    probs = np.full(n, np.nan, dtype=np.float64)
    if queries:
        fold_batch_norms(model.task)  # same probabilities (to ~1e-7), faster
        keys = list(model.modalities)
        patches = _Patches(dataset, queries, keys)
        collector = _Collector(len(queries))
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
        probs[query_rows] = collector.probs
        if np.isnan(collector.probs).any():  # pragma: no cover - a bug
            raise RuntimeError("some buildings received no prediction")
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

    # -- writing, tile by tile -------------------------------------------------------
    ids = pd.to_numeric(raw[id_field], errors="coerce")
    id_values = pd.array(
        np.where(ids.notna(), ids.fillna(0), 0).astype(np.int64), dtype="Int64"
    )
    id_values[ids.isna().to_numpy()] = pd.NA
    gpkg = GeoPackageWriter(staging / "damage.gpkg", CRS.from_user_input(raw.crs))
    overview_rings = RingCollector()
    html_rings = RingCollector()
    write_order = spatial_order(cx, cy, tile_size)
    with GeoJSONWriter(staging / "damage.geojson") as geojson:
        for first in range(0, n, tile_size):
            rows = write_order[first : first + tile_size]
            tile = _tile_frame(
                rows=rows,
                raw=raw,
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
            overview_rings.add(np.asarray(work.values, dtype=object)[rows], rows)
            html_rings.add(
                np.asarray(tile.geometry.to_crs(3857).values, dtype=object), rows
            )
    gpkg.close()

    # -- summary, overview, interactive map -----------------------------------------
    totals = summarise(
        predicted, damaged, reasons, unit_labels, exposure_values, unit_table
    )
    counts = totals["counts"]
    summary: dict[str, Any] = {
        "generator": f"torchgeo_quake {__version__}",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "city": name,
        "counts": counts,
        "exposure": totals["exposure"],
        "model": {
            "checkpoint": str(model.path),
            "modalities": list(model.modalities),
            "fallback": used_fallback,
            "threshold": model.threshold,
            "threshold_from_validation": model.threshold_from_validation,
            "radiometry": radiometry,
        },
        "inputs": {
            "sar": str(sar_path),
            "footprints": str(fp_path),
            "dsm": None if dsm_path is None else str(dsm_path),
            "exposure": None if gem_path is None else str(gem_path),
            "footprints_crs": CRS.from_user_input(raw.crs).to_string(),
            "sar_crs": work_crs.to_string(),
            "max_nodata": max_nodata,
        },
        "output_crs": {
            "damage.gpkg": CRS.from_user_input(raw.crs).to_string(),
            "damage.geojson": "EPSG:4326",
        },
        "units": {**unit_info, "table": totals["units"]},
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
        units="m" if work_crs.axis_info[0].unit_name in ("metre", "meter") else "units",
    )
    save_overview(fig, staging / "overview.png")
    from .html import write_html_map

    write_html_map(
        staging / "map.html",
        html_rings.rings(),
        probs,
        [None if v is pd.NA else int(v) for v in id_values],
        [r if isinstance(r, str) else None for r in reasons],
        model.threshold,
        title=title,
        subtitle=subtitle,
        id_field=id_field,
        basemap=basemap,
        attribution=basemap_attribution,
    )
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
    raw: gpd.GeoDataFrame,
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
        raw: input footprints
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
    return gpd.GeoDataFrame(columns, geometry=raw.geometry.values[rows], crs=raw.crs)
