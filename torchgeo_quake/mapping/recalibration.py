r"""Few-label recalibration of a damage map: ``--calibration-labels FILE``.

A handful of buildings of the new city graded by hand (from a field survey, a
first look at optical imagery, a reference map of one district) refit the
model's probability scale and decision threshold on that city
(:func:`recalibrate`): Platt scaling,
:math:`p' = \sigma(a \cdot \operatorname{logit}(p) + b)`, fitted on the
labelled buildings (:func:`~torchgeo_quake.trainers.calibration.fit_platt`),
then the threshold of best F1 on them. The fit is repeated on
:data:`BOOTSTRAP` resamples of the labels, whose spread widens the intervals
of the map's expected counts (few labels fit the probabilities only roughly).

Schema of the file (:func:`read_calibration_labels`):

* a **label** column, ``damaged`` or ``label``, holding ``1``/``0``,
  ``true``/``false``, ``yes``/``no`` or ``damaged``/``intact`` (case does not
  matter);
* the **building** of each label: a column named like the footprints' id
  column (``--id-field``, default ``osm_id``) or ``building_id``; or, for a
  vector file (GeoJSON, GeoPackage, ...) without such a column, a point or
  polygon per label, joined to the footprint that contains it (its
  representative point for polygons).

A CSV needs the id column. Both damaged and intact buildings are needed; a few
dozen, spread over the city, give a usable fit (the logistic fit with an
intercept makes the expected count of the labelled buildings equal their
observed count).

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

from ..trainers.calibration import apply_platt, fit_platt
from ..trainers.metrics import best_f1_threshold, decision_threshold, ranking_metrics

__all__ = [
    "BOOTSTRAP",
    "LABEL_COLUMNS",
    "CalibrationLabels",
    "Recalibration",
    "read_calibration_labels",
    "recalibrate",
]

#: Bootstrap resamples of the labels whose fits widen the map's intervals
#: (:func:`~torchgeo_quake.mapping.intervals.widen`).
BOOTSTRAP = 100

#: Accepted names of the label column, in order of preference.
LABEL_COLUMNS: tuple[str, ...] = ("damaged", "label")

#: Accepted label values (compared as lower-case text).
_VALUES: dict[str, int] = {
    "1": 1,
    "1.0": 1,
    "true": 1,
    "yes": 1,
    "damaged": 1,
    "0": 0,
    "0.0": 0,
    "false": 0,
    "no": 0,
    "intact": 0,
}

#: Probabilities are clipped to [_LOW, 1 - _HIGH] before taking their logit
#: (float32 probabilities hold about 1e-38 near 0, but only 6e-8 near 1).
_LOW = 1e-30
_HIGH = 1e-7


@dataclass(frozen=True)
class CalibrationLabels:
    """Graded buildings of the new city, joined to the footprints.

    .. versionadded:: 0.2
    """

    #: The file they were read from.
    path: Path
    #: Footprint row (position in the footprint file) of each label.
    rows: npt.NDArray[np.int64]
    #: 1 damaged, 0 intact.
    labels: npt.NDArray[np.int64]
    #: Labels in the file.
    read: int


def _schema_error(path: Path, columns: list[str], id_field: str) -> ValueError:
    """The message of a file whose columns are not the schema.

    Args:
        path: the file
        columns: its columns
        id_field: the footprints' id column

    Returns:
        The error.
    """
    return ValueError(
        f"--calibration-labels {str(path)!r}: unknown schema (columns: "
        f"{', '.join(columns) or 'none'}). Expected a label column "
        f"{' or '.join(map(repr, LABEL_COLUMNS))} (1/0, true/false, yes/no or "
        f"damaged/intact) and a building id column {id_field!r} (--id-field) or "
        "'building_id' (a vector file may give points or polygons instead)."
    )


def _read_table(path: Path) -> pd.DataFrame:
    """Read a label file: a CSV, or any vector format.

    Args:
        path: the file

    Returns:
        The table (a GeoDataFrame for vector files).

    Raises:
        ValueError: If the file cannot be read.
    """
    try:
        if path.suffix.lower() in (".csv", ".txt"):
            return pd.read_csv(path)
        from ..datasets.osm import read_vector

        frame: pd.DataFrame = read_vector(path)
        return frame
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise ValueError(
            f"--calibration-labels {str(path)!r} cannot be read as a CSV or "
            f"vector file: {err}"
        ) from err


def _labels(path: Path, values: pd.Series) -> npt.NDArray[np.int64]:
    """The labels as 0/1.

    Args:
        path: the file (for messages)
        values: the label column

    Returns:
        One 0/1 per row.

    Raises:
        ValueError: If a value is missing or not a label.
    """
    text = values.astype(str).str.strip().str.lower()
    coded = text.map(_VALUES)
    bad = sorted(set(text[coded.isna()]))
    if bad:
        raise ValueError(
            f"--calibration-labels {str(path)!r}: label values {bad[:5]} are not "
            "1/0, true/false, yes/no or damaged/intact."
        )
    return np.asarray(coded.to_numpy(), dtype=np.int64)


def _rows_by_id(
    path: Path, ids: pd.Series, footprint_ids: pd.Series
) -> npt.NDArray[np.int64]:
    """Footprint row of each label id (-1 where none).

    Args:
        path: the file (for messages)
        ids: the labels' ids
        footprint_ids: the footprints' ids, in file order

    Returns:
        The rows.
    """
    keys = pd.to_numeric(footprint_ids, errors="coerce")
    lookup = pd.Series(np.arange(len(keys)), index=keys.to_numpy())
    lookup = lookup[~lookup.index.duplicated() & lookup.index.notna()]
    wanted = pd.to_numeric(ids, errors="coerce")
    rows = lookup.reindex(wanted.to_numpy()).to_numpy()
    return np.where(np.isnan(rows), -1, rows).astype(np.int64)


def _rows_by_geometry(
    frame: gpd.GeoDataFrame, geoms: npt.NDArray[np.object_], crs: CRS
) -> npt.NDArray[np.int64]:
    """Footprint containing each label's point (representative point), or -1.

    Args:
        frame: the labels with geometries
        geoms: the footprints, as read
        crs: their CRS

    Returns:
        The rows (the first footprint in file order where several contain it).
    """
    points = frame.geometry.to_crs(crs).representative_point()
    rows = np.full(len(frame), -1, dtype=np.int64)
    present = np.flatnonzero(~points.is_empty.to_numpy() & points.notna().to_numpy())
    tree = shapely.STRtree(np.asarray(geoms, dtype=object))
    label_idx, fp_idx = tree.query(
        np.asarray(points.values, dtype=object)[present], predicate="within"
    )
    order = np.lexsort((fp_idx, label_idx))
    label_idx, fp_idx = label_idx[order], fp_idx[order]
    first = np.ones(len(label_idx), dtype=bool)
    first[1:] = label_idx[1:] != label_idx[:-1]
    rows[present[label_idx[first]]] = fp_idx[first]
    return rows


def read_calibration_labels(
    path: str | Path,
    footprint_ids: pd.Series,
    geoms: npt.NDArray[np.object_],
    crs: CRS,
    id_field: str = "osm_id",
) -> CalibrationLabels:
    """Read graded buildings and join them to the footprints.

    See the module's description for the schema.

    Args:
        path: CSV or vector file of labels
        footprint_ids: the footprints' ids, in file order
        geoms: the footprints' geometries, in file order
        crs: their CRS
        id_field: the footprints' id column

    Returns:
        The footprint row and label of each label that matches a footprint.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file cannot be read, is not of the schema, holds
            values that are not labels, labels that match no footprint,
            contradicting labels of one building, or one class only.

    .. versionadded:: 0.2
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--calibration-labels {str(file)!r} does not exist")
    frame = _read_table(file)
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    columns = [str(c) for c in frame.columns if c != geometry]
    label_column = next((c for c in LABEL_COLUMNS if c in frame.columns), None)
    id_column = next((c for c in (id_field, "building_id") if c in frame.columns), None)
    spatial = isinstance(frame, gpd.GeoDataFrame) and frame.crs is not None
    if label_column is None or (id_column is None and not spatial):
        raise _schema_error(file, columns, id_field)
    if frame.empty:
        raise ValueError(f"--calibration-labels {str(file)!r} holds no labels")
    labels = _labels(file, frame[label_column])
    if id_column is not None:
        rows = _rows_by_id(file, frame[id_column], footprint_ids)
        how = f"their {id_column!r} compared with the footprints' {id_field!r}"
    else:
        assert isinstance(frame, gpd.GeoDataFrame)
        rows = _rows_by_geometry(frame, geoms, crs)
        how = "their geometries joined to the footprints that contain them"
    matched = rows >= 0
    if not matched.any():
        raise ValueError(
            f"--calibration-labels {str(file)!r}: none of its {len(frame)} labels "
            f"matches a footprint ({how}); check that the file describes the "
            "buildings of --footprints."
        )
    table = pd.DataFrame({"row": rows[matched], "label": labels[matched]})
    conflicts = table.groupby("row")["label"].nunique()
    if (conflicts > 1).any():
        row = int(conflicts[conflicts > 1].index[0])
        raise ValueError(
            f"--calibration-labels {str(file)!r}: footprint "
            f"{footprint_ids.iloc[row]!r} is labelled both damaged and intact."
        )
    table = table.drop_duplicates("row")
    result = CalibrationLabels(
        file,
        table["row"].to_numpy(dtype=np.int64),
        table["label"].to_numpy(dtype=np.int64),
        len(frame),
    )
    _check_both_classes(result, "")
    return result


def _check_both_classes(labels: CalibrationLabels, which: str) -> None:
    """Refuse labels of one class only.

    Args:
        labels: the labels
        which: which labels (e.g. ``" of scored buildings"``), for the message

    Raises:
        ValueError: If all labels are damaged, or all intact.
    """
    damaged = int(labels.labels.sum())
    if 0 < damaged < len(labels.labels):
        return
    kind = "damaged" if damaged else "intact"
    raise ValueError(
        f"--calibration-labels {str(labels.path)!r}: all {len(labels.labels)} "
        f"labels{which} are {kind}; recalibration needs damaged and intact "
        "buildings. Add buildings of the other class."
    )


@dataclass(frozen=True)
class Recalibration:
    """A recalibration fitted on graded buildings.

    .. versionadded:: 0.2
    """

    #: Platt scale applied to the logit of the map's probabilities.
    scale: float
    #: Platt bias.
    bias: float
    #: Threshold of best F1 on the labelled buildings, on the new probabilities.
    threshold: float
    #: Labelled buildings used (scored ones).
    used: int
    #: Damaged among them.
    damaged: int
    #: Labels left out because their building was not scored.
    not_scored: int
    #: AUROC of the map's probabilities on the labelled buildings: how well
    #: the model ranks them (0.5: not at all).
    auroc: float
    #: ``(scale, bias)`` refitted on each bootstrap resample of the labels
    #: (:data:`BOOTSTRAP` of them; resamples of one class are left out).
    replicates: tuple[tuple[float, float], ...] = ()

    def apply(self, probs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Recalibrated probabilities.

        Args:
            probs: the map's probabilities (NaN: not scored)

        Returns:
            The new probabilities (NaN where not scored).
        """
        return _recalibrated(probs, self.scale, self.bias)

    def replicate_probs(
        self, probs: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float32] | None:
        """The probabilities under every bootstrap replicate of the fit.

        Args:
            probs: the map's probabilities (NaN: not scored)

        Returns:
            Shape ``(len(replicates), len(probs))`` (NaN where not scored), or
            None without replicates.
        """
        if not self.replicates:
            return None
        out = np.empty((len(self.replicates), len(probs)), dtype=np.float32)
        for k, (scale, bias) in enumerate(self.replicates):
            out[k] = _recalibrated(probs, scale, bias)
        return out

    def as_dict(self) -> dict[str, Any]:
        """The summary record.

        Returns:
            ``scale``, ``bias``, ``threshold``, ``labels_used``,
            ``labels_damaged``, ``labels_not_scored`` and ``labels_auroc``.
        """
        return {
            "labels_auroc": round(self.auroc, 4),
            "scale": round(self.scale, 6),
            "bias": round(self.bias, 6),
            "threshold": round(self.threshold, 6),
            "labels_used": self.used,
            "labels_damaged": self.damaged,
            "labels_not_scored": self.not_scored,
        }


def _logits(probs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Logits of probabilities, clipped to [1e-30, 1 - 1e-7].

    Args:
        probs: probabilities (NaN stays NaN)

    Returns:
        The logits.
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), _LOW, 1 - _HIGH)
    logits: npt.NDArray[np.float64] = np.log(p) - np.log1p(-p)
    return logits


def _recalibrated(
    probs: npt.NDArray[np.float64], scale: float, bias: float
) -> npt.NDArray[np.float64]:
    """Platt scaling of probabilities through their logits.

    Args:
        probs: probabilities (NaN stays NaN)
        scale: Platt scale
        bias: Platt bias

    Returns:
        The new probabilities.
    """
    out = np.asarray(apply_platt(_logits(probs), scale, bias), dtype=np.float64)
    return np.where(np.isfinite(probs), out, np.nan)


def recalibrate(
    probs: npt.NDArray[np.float64], labels: CalibrationLabels
) -> Recalibration:
    """Fit Platt scaling and a threshold on graded buildings of the map.

    Args:
        probs: the map's probability of every footprint (NaN: not scored)
        labels: graded buildings (:func:`read_calibration_labels`)

    Returns:
        The recalibration (apply it with :meth:`Recalibration.apply`).

    Raises:
        ValueError: If no labelled building was scored, or those scored are
            of one class only (the message names the file).

    .. versionadded:: 0.2
    """
    scored = np.isfinite(probs[labels.rows])
    if not scored.any():
        raise ValueError(
            f"--calibration-labels {str(labels.path)!r}: none of the "
            f"{len(labels.rows)} labelled buildings was scored (all skipped); "
            "label buildings that the map scores."
        )
    used = CalibrationLabels(
        labels.path, labels.rows[scored], labels.labels[scored], labels.read
    )
    _check_both_classes(used, " of scored buildings")
    logits = _logits(probs[used.rows])
    auroc = ranking_metrics(probs[used.rows], used.labels)["auroc"]
    try:
        scale, bias = fit_platt(logits, used.labels)
    except ValueError as err:
        raise ValueError(f"--calibration-labels {str(labels.path)!r}: {err}") from err
    new = _recalibrated(probs[used.rows], scale, bias)
    threshold = best_f1_threshold(new, used.labels)
    if math.isnan(threshold):  # pragma: no cover - both classes were checked
        threshold = 0.5
    threshold = decision_threshold(new, threshold)
    replicates = _bootstrap(logits, used.labels)
    return Recalibration(
        scale=float(scale),
        bias=float(bias),
        threshold=float(threshold),
        used=len(used.rows),
        damaged=int(used.labels.sum()),
        not_scored=int((~scored).sum()),
        auroc=float(auroc),
        replicates=replicates,
    )


def _bootstrap(
    logits: npt.NDArray[np.float64], labels: npt.NDArray[np.int64]
) -> tuple[tuple[float, float], ...]:
    """Platt fits on bootstrap resamples of the labels (seeded).

    Args:
        logits: logits of the labelled buildings
        labels: their labels

    Returns:
        ``(scale, bias)`` of each resample holding both classes.
    """
    rng = np.random.default_rng(0)
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # backwards resamples
        for _ in range(BOOTSTRAP):
            pick = rng.integers(0, len(labels), len(labels))
            if 0 < labels[pick].sum() < len(pick):
                scale, bias = fit_platt(logits[pick], labels[pick])
                fits.append((float(scale), float(bias)))
    return tuple(fits)
