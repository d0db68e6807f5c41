"""The run store: what a protocol writes per run, and reads back.

Each run (:class:`RunSpec`: configuration × split × seed) has a folder
``OUT/runs/<config>/<split>/seed<k>/`` holding:

* ``splits.json`` — building ids and cities of the train, val and test splits;
* ``metrics.csv`` — Lightning's CSV log (training curves), with
  ``metrics.part<k>.csv`` holding the epochs of interrupted attempts
  (:func:`read_run_log` joins them);
* ``predictions.npz`` — test probabilities (calibrated), logits, labels,
  building ids and cities;
* ``checkpoints/`` — ``best-epoch=<e>.ckpt`` (weights of the best validation F1)
  and ``last.ckpt`` (the full state after the last finished epoch, to resume);
  deleted once the run is done, unless the checkpoints are kept;
* ``metrics.json`` — test metrics and run details, written **last** by an atomic
  rename: it marks the run as finished (:func:`load_runs` reads them all).

``OUT/protocol.json`` records the settings and the configurations of the
protocol, and what its last call did.

**Interrupted or damaged runs.** A run without ``metrics.json`` is unfinished:
the next call trains it again, from its ``checkpoints/last.ckpt`` when an
interrupted attempt left one. If that file cannot be read (e.g. the process was
killed while writing it), the call stops before training anything with a
:class:`DamagedRunError` naming the file; delete it (or the whole run folder)
and run the same command again to retrain that run from its first epoch.
Finished runs are never touched.

The tables (:mod:`.tables`) and figures (:mod:`.figures`) are drawn from these
files alone.

.. versionadded:: 0.2
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..trainers.collection import upgrade_test_metrics
from ..utils import atomic_write_text
from .config import RUNNER_OWNED, ExperimentConfig
from .settings import ProtocolSettings

__all__ = [
    "DamagedRunError",
    "RunSpec",
    "load_runs",
    "read_predictions",
    "read_run_log",
]

#: File whose presence marks a run as finished.
DONE_FILE = "metrics.json"

#: The protocol's record of its settings, configurations and last call.
MANIFEST = "protocol.json"

#: Settings that ``protocol.json`` files written before they existed lack,
#: with the value those runs had.
_FINGERPRINT_DEFAULTS: dict[str, Any] = {"selection": "random"}


class DamagedRunError(ValueError):
    """A file of the run store cannot be read; the message names it and the fix.

    .. versionadded:: 0.2
    """


@dataclass(frozen=True)
class RunSpec:
    """One training run of a protocol: configuration × split × seed.

    .. versionadded:: 0.1
    """

    #: Protocol name.
    protocol: str
    #: Configuration name (file stem).
    config: str
    #: Split name: ``fold<k>`` (``cv``, ``islahiye``, ``blocked``,
    #: ``blocked-islahiye``) or the held-out city (``loco``).
    split: str
    #: Seed of the split, the negative sampling and the training.
    seed: int
    #: Data-module strategy: ``"cv"``, ``"loco"``, ``"city"`` or ``"blocked"``.
    strategy: str
    #: Test fold (``cv``, ``islahiye``, ``blocked``, ``blocked-islahiye``).
    fold: int | None = None
    #: Held-out city (``loco``).
    test_city: str | None = None
    #: The only city used (``islahiye``, ``blocked-islahiye``).
    city: str | None = None

    def directory(self, out: str | os.PathLike[str]) -> Path:
        """Output folder of the run.

        Args:
            out: the protocol's output folder

        Returns:
            ``out/runs/<config>/<split>/seed<k>``.
        """
        return Path(out) / "runs" / self.config / self.split / f"seed{self.seed}"

    @property
    def name(self) -> str:
        """Short human-readable name, ``config/split/seed<k>``."""
        return f"{self.config}/{self.split}/seed{self.seed}"


def jsonable(value: Any) -> Any:
    """Convert tensors, arrays and NaN to JSON-friendly values.

    Args:
        value: a number, tensor, array or container of them

    Returns:
        Plain Python values (NaN becomes None).
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist()) if value.ndim else jsonable(value.item())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------ one run
def log_parts(directory: Path) -> list[str]:
    """CSV logs of earlier, interrupted attempts of a run, in order.

    Args:
        directory: the run's folder

    Returns:
        File names ``metrics.part<k>.csv``, by *k*.
    """
    parts = [p.name for p in directory.glob("metrics.part*.csv")]
    return sorted(parts, key=lambda n: int(re.sub(r"\D", "", n) or 0))


def start_attempt(directory: Path, resuming: bool, rank0: bool) -> None:
    """Prepare a run's log files for a new training attempt.

    Args:
        directory: the run's folder
        resuming: whether the attempt resumes from ``last.ckpt``
        rank0: whether this process writes files (rank 0)
    """
    if not resuming:
        # A fresh start: forget the logs of an attempt that left no checkpoint.
        for stale in ("metrics.csv", "hparams.yaml", *log_parts(directory)):
            (directory / stale).unlink(missing_ok=True)
    elif (directory / "metrics.csv").exists() and rank0:
        # Lightning's CSV logger deletes an existing metrics.csv: keep the
        # epochs of the interrupted attempt as a numbered part of the log.
        part = directory / f"metrics.part{len(log_parts(directory))}.csv"
        os.replace(directory / "metrics.csv", part)


def resume_checkpoint(run: RunSpec, out: str | os.PathLike[str]) -> Path | None:
    """The checkpoint an unfinished run resumes from, checked to be readable.

    Args:
        run: the run
        out: the protocol's output folder

    Returns:
        Its ``checkpoints/last.ckpt``, or None when there is none.

    Raises:
        DamagedRunError: If the file exists but cannot be read (e.g. the
            process was killed while writing it).
    """
    last = run.directory(out) / "checkpoints" / "last.ckpt"
    if not last.exists():
        return None
    import torch

    try:
        torch.load(last, map_location="cpu", weights_only=False, mmap=True)
    except Exception as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DamagedRunError(
            f"cannot resume run {run.name}: its checkpoint {last} is damaged "
            f"({reason}; was the run killed while saving it?). Delete that file, "
            f"or the run's folder {last.parent.parent}, and run the same command "
            "again: that run restarts from its first epoch, finished runs are kept"
        ) from err
    return last


def read_predictions(
    directory: str | os.PathLike[str],
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """A finished run's test building ids, probabilities and labels, sorted by id.

    Args:
        directory: the run's folder (``OUT/runs/<config>/<split>/seed<k>``)

    Returns:
        Building ids, calibrated probabilities and 0/1 labels, in the order
        of the ids (so that two runs on the same test set line up).

    Raises:
        FileNotFoundError: If the run has no ``predictions.npz``.

    .. versionadded:: 0.3
    """
    path = Path(directory) / "predictions.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; a finished protocol run writes its test "
            "predictions there (run the protocol again to finish the run)"
        )
    with np.load(path) as data:
        ids = np.asarray(data["building_ids"])
        probs = np.asarray(data["probs"], dtype=np.float64).reshape(-1)
        labels = np.asarray(data["labels"], dtype=np.int64).reshape(-1)
    order = np.argsort(ids, kind="stable")
    return ids[order], probs[order], labels[order]


def write_run(
    directory: Path, predictions: Mapping[str, Any], record: dict[str, Any]
) -> None:
    """Write a finished run's predictions, then its record (which marks it done).

    Args:
        directory: the run's folder
        predictions: arrays of ``predictions.npz`` (``probs``, ``logits``,
            ``labels``, ``building_ids``, ``cities``)
        record: contents of ``metrics.json``
    """
    np.savez_compressed(directory / "predictions.npz", **predictions)
    atomic_write_text(directory / DONE_FILE, json.dumps(jsonable(record), indent=1))


def read_run_log(directory: str | os.PathLike[str]) -> pd.DataFrame | None:
    """The whole CSV training log of a run, over resumed attempts.

    Args:
        directory: the run's folder (``runs/<config>/<split>/seed<k>``)

    Returns:
        The rows of ``metrics.part*.csv`` (interrupted attempts) and
        ``metrics.csv``, in order; None when there is no log.

    .. versionadded:: 0.1
    """
    folder = Path(directory)
    files = [folder / n for n in log_parts(folder)] + [folder / "metrics.csv"]
    frames = [pd.read_csv(f) for f in files if f.exists() and f.stat().st_size]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


def with_current_names(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Run records with their test metrics under today's names.

    Records of versions before 0.3 name the oracle-threshold metrics
    ``test_f1`` etc.; the tables, comparisons, figures and ``runs.csv`` read
    every record through this function, so old protocol folders still work.

    Args:
        records: run records (each with a ``"metrics"`` mapping)

    Returns:
        Shallow copies with upgraded metrics
        (:func:`~torchgeo_quake.trainers.collection.upgrade_test_metrics`).

    .. versionadded:: 0.3
    """
    return [{**r, "metrics": upgrade_test_metrics(r["metrics"])} for r in records]


def load_runs(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records (``metrics.json``) of all finished runs under a protocol folder.

    Args:
        out: the protocol's output folder

    Returns:
        One dict per finished run, sorted by configuration, split and seed;
        the metrics under their current names (:func:`with_current_names`).

    Raises:
        DamagedRunError: If a record cannot be read.

    .. versionadded:: 0.1
    """
    records = []
    for path in sorted(Path(out).glob(f"runs/*/*/seed*/{DONE_FILE}")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DamagedRunError(
                f"cannot read the run record {path} ({err}); delete the run's "
                f"folder {path.parent} and run the protocol again to retrain it"
            ) from err
        record["directory"] = str(path.parent)
        record.setdefault("metrics", {})
        records.append(record)
    return with_current_names(records)


# ------------------------------------------------------------- protocol.json
def _effective(section: str, values: Any) -> Any:
    """The part of a configuration section that can change a protocol's results.

    Args:
        section: ``"model"``, ``"data"`` or ``"trainer"``
        values: the section

    Returns:
        JSON-normalised values; for the trainer, without the settings the
        runner replaces (loggers, callbacks, output folders, ``max_time``);
        for the data, without ``splits_file`` (the runner writes its own).
    """
    if section == "trainer" and isinstance(values, dict):
        values = {k: v for k, v in values.items() if k not in RUNNER_OWNED}
    if section == "data" and isinstance(values, dict):
        args = {
            k: v
            for k, v in (values.get("init_args") or {}).items()
            if k != "splits_file"
        }
        values = {**values, "init_args": args}
    return json.loads(json.dumps(jsonable(values)))


def check_manifest(
    out: Path, settings: ProtocolSettings, configs: Sequence[ExperimentConfig]
) -> None:
    """Refuse to mix runs of different settings in one output folder.

    Args:
        out: output folder
        settings: resolved settings
        configs: the configurations of this call

    Raises:
        FileExistsError: If ``out/protocol.json`` records other settings, or
            other contents of a configuration file of the same name.
    """
    marker = out / MANIFEST
    if not marker.exists():
        return
    current = settings.fingerprint()
    payload = json.loads(marker.read_text(encoding="utf-8"))
    saved = payload.get("settings", {})
    differ = {
        k: (saved.get(k, _FINGERPRINT_DEFAULTS.get(k)), v)
        for k, v in current.items()
        if saved.get(k, _FINGERPRINT_DEFAULTS.get(k)) != v
    }
    before = {c.get("name"): c for c in payload.get("configs", [])}
    for config in configs:
        old = before.get(config.name)
        if old is None:
            continue
        changed = [
            key
            for key in ("model", "data", "trainer")
            if _effective(key, old.get(key)) != _effective(key, getattr(config, key))
        ]
        if changed:
            differ[f"{config.name} ({config.path}) sections {changed}"] = (
                "as recorded",
                "edited",
            )
    if differ:
        details = ", ".join(
            f"{k}: {a!r} there, {b!r} now" for k, (a, b) in differ.items()
        )
        raise FileExistsError(
            f"{out} holds a protocol run with other settings ({details}); "
            "choose another --out or delete that folder"
        )


def write_manifest(
    out: Path,
    settings: ProtocolSettings,
    configs: Sequence[ExperimentConfig],
    runs: Sequence[RunSpec],
) -> None:
    """Write ``out/protocol.json``: settings, configurations, seeds and runs.

    Args:
        out: output folder (created when missing)
        settings: resolved settings
        configs: the configurations
        runs: the planned runs
    """
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "settings": settings.fingerprint(),
        "configs": [asdict(c) for c in configs],
        "seeds": list(settings.seeds),
        "runs": [r.name for r in runs],
    }
    atomic_write_text(out / MANIFEST, json.dumps(payload, indent=1))


def note_last_call(out: Path, last_call: Mapping[str, Any]) -> None:
    """Record what the latest call did in ``out/protocol.json``.

    Args:
        out: output folder
        last_call: runs trained and skipped, wall time, end time
    """
    summary = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    summary["last_call"] = dict(last_call)
    atomic_write_text(out / MANIFEST, json.dumps(summary, indent=1))
