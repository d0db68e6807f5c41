"""Per-building features of a simulated scene and how well each ranks damage.

The "SAR-only difficulty" and "transfer" rows of the simulator's calibration
table (:mod:`~torchgeo_quake.realism.table`) and the realism
tests (``tests/simulation/test_sim_realism.py``) rest on these numbers.

Features (:func:`sample_features`)
    From the paper's samples
    (:class:`~torchgeo_quake.datasets.KahramanmarasDamage`: 1:20 sampling,
    32 x 32 patches of 2.5 m): mean dB
    inside the footprint (``mean_db``), footprint area (``area_m2``, from
    ``truth.csv``), DSM height residual (``dsm_residual_m``: mean DSM inside the
    footprint minus the ground level of the patch, its 10th percentile, as in
    the informativeness tests of version 0.1), GEM vector identity
    (``gem_vector``: id of the sample's 22-number GEM feature vector), and the
    8 x 8 grid of block means of the SAR patch (4 x 4-pixel blocks, 64
    numbers; :func:`sar_block_means`).

Within-city AUROC (:func:`within_city_auroc`)
    Of each scalar feature as a score; of GEM vector identity through its
    out-of-fold damaged rate (:func:`gem_vector_scores`, 5 folds within the
    city); of a gradient-boosting model
    (:class:`~sklearn.ensemble.HistGradientBoostingClassifier`, default
    settings, seed 0) on the SAR block means, out-of-fold over 5 stratified
    folds within the city (:func:`pooled_boosting_auroc`: the same over all
    cities' samples pooled).

Transfer (:func:`loco_auroc`)
    Leave-one-city-out AUROC of a standardised logistic regression on one
    input: the DSM height residual (``dsm_height``), the building's true height
    (``true_height``), its GEM taxonomy as one-hot material class + one-hot
    storeys class from ``truth.csv`` (``gem_taxonomy``) and the GEM feature
    vector the network sees (``gem_vector``). Trained on four cities, scored on
    the fifth: does the input carry damage signal that transfers?

Bounds of the realism tests (:data:`SAR_FEATURE_BOUND`,
:data:`CUE_FEATURE_BOUND`) come from the paper's published SAR + FTP AUROC,
never from a model result on the simulator. The only public figure of how hard
SAR damage mapping of these cities is, is the paper's network: 0.769 +- 0.038
within Islahiye (Table V, 5-fold) and 0.552-0.809 leave-one-city-out (Table IV,
:data:`PAPER_LOCO_AUROC`). One summary number of the SAR patch (its mean dB
in the footprint) cannot rank damage better than the network that sees the
whole patch, so its within-city AUROC is bounded by Table V's mean + 1 std
(0.807), the same as Table IV's best city: 0.81. The non-SAR cues (footprint
area, DSM height, GEM vector identity) are what the paper adds to SAR for a
gain of -0.03 to +0.07 AUROC (Table IV); if one of them alone ranked damage as
well as the SAR network does within a city (0.769), adding it would be
decisive, which the real data do not show: bound 0.75. An AUROC below 0.5 is as
informative as above it, so bounds apply to ``max(a, 1 - a)``
(:func:`separability`).

.. versionadded:: 0.3
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..paper import CITY_SLUGS

__all__ = [
    "CUE_FEATURE_BOUND",
    "LOCO_INPUTS",
    "MATERIAL_CLASSES",
    "MIN_POSITIVES",
    "PAPER_LOCO_AUROC",
    "PAPER_WITHIN_CITY_AUROC",
    "SAR_FEATURE_BOUND",
    "SCALAR_FEATURES",
    "STOREY_CLASSES",
    "SampleFeatures",
    "gem_vector_scores",
    "loco_auroc",
    "material_class",
    "pooled_boosting_auroc",
    "read_truth",
    "sample_features",
    "sar_block_means",
    "separability",
    "storey_class",
    "within_city_auroc",
]

FloatArray = npt.NDArray[np.float64]

#: Paper's SAR + FTP leave-one-city-out AUROC per city (Russo et al. 2025,
#: Table IV).
PAPER_LOCO_AUROC: Mapping[str, float] = {
    "islahiye": 0.683,
    "kahramanmaras": 0.809,
    "nurdagi": 0.661,
    "osmaniye": 0.552,
    "turkoglu": 0.648,
}
#: Paper's SAR + FTP 5-fold AUROC within Islahiye (mean, std; Table V).
PAPER_WITHIN_CITY_AUROC: tuple[float, float] = (0.769, 0.038)
#: Upper bound of ``max(a, 1 - a)`` of a single SAR feature's within-city
#: AUROC: Table V's mean + 1 std, also Table IV's highest SAR + FTP AUROC.
SAR_FEATURE_BOUND = 0.81
#: Upper bound of ``max(a, 1 - a)`` of a single non-SAR cue's within-city
#: AUROC (footprint area, DSM height, GEM vector identity): below the SAR
#: network's own within-city AUROC (Table V, 0.769).
CUE_FEATURE_BOUND = 0.75
#: Single features whose within-city AUROC is measured, with their bounds.
SCALAR_FEATURES: Mapping[str, float] = {
    "mean_db": SAR_FEATURE_BOUND,
    "area_m2": CUE_FEATURE_BOUND,
    "dsm_residual_m": CUE_FEATURE_BOUND,
    "gem_vector": CUE_FEATURE_BOUND,
}
#: Material classes of the collapse table: ``truth.csv`` material -> class.
MATERIAL_CLASSES: tuple[str, ...] = ("RC", "masonry", "other")
#: Storeys classes of the collapse table: (label, lowest, highest storeys).
STOREY_CLASSES: tuple[tuple[str, int, int], ...] = (
    ("1-2", 1, 2),
    ("3-5", 3, 5),
    ("6+", 6, 10_000),
)
#: Fewest damaged samples for a within-city AUROC (fewer gives NaN).
MIN_POSITIVES = 5
#: Inputs of the leave-one-city-out transfer test (:func:`loco_auroc`).
LOCO_INPUTS: tuple[str, ...] = (
    "dsm_height",
    "true_height",
    "gem_taxonomy",
    "gem_vector",
)
_FOLDS = 5


class SampleFeatures:
    """Per-sample features of a scene's 32 x 32 samples, with the labels.

    Attributes:
        frame: one row per sample: ``city``, ``building_id``, ``label``,
            ``mean_db``, ``area_m2``, ``dsm_residual_m``, ``gem_vector`` (id
            of the sample's GEM feature vector), ``height_m``, ``material``
            and ``storeys`` (classes of :data:`MATERIAL_CLASSES` and
            :data:`STOREY_CLASSES`)
        blocks: SAR block means, ``(n, 64)`` (:func:`sar_block_means`)
        gem: the GEM feature vectors, ``(n, 22)``

    .. versionadded:: 0.3
    """

    def __init__(self, frame: pd.DataFrame, blocks: FloatArray, gem: FloatArray):
        """Hold the features.

        Args:
            frame: per-sample table (see the class docstring)
            blocks: SAR block means
            gem: GEM feature vectors

        Raises:
            ValueError: If the arrays do not have one row per sample.
        """
        if not len(frame) == len(blocks) == len(gem):
            raise ValueError(
                f"features of {len(frame)} samples got {len(blocks)} SAR block "
                f"rows and {len(gem)} GEM rows"
            )
        self.frame = frame
        self.blocks = blocks
        self.gem = gem


def material_class(material: pd.Series) -> pd.Series:
    """Material class of the collapse table from ``truth.csv``'s material.

    Args:
        material: e.g. ``RC``, ``MUR_CBH``, ``MUR_ADOBE``, ``S``, ``W``

    Returns:
        ``RC``, ``masonry`` (any ``MUR*``) or ``other``.

    .. versionadded:: 0.3
    """
    text = material.astype(str)
    return pd.Series(
        np.where(
            text == "RC", "RC", np.where(text.str.startswith("MUR"), "masonry", "other")
        ),
        index=material.index,
    )


def storey_class(storeys: pd.Series) -> pd.Series:
    """Storeys class of the collapse table.

    Args:
        storeys: storeys above ground (>= 1)

    Returns:
        ``1-2``, ``3-5`` or ``6+``.

    .. versionadded:: 0.3
    """
    values = storeys.to_numpy(np.int64)
    out = np.full(values.shape, STOREY_CLASSES[-1][0], dtype=object)
    for label, low, high in STOREY_CLASSES:
        out[(values >= low) & (values <= high)] = label
    return pd.Series(out, index=storeys.index)


def read_truth(root: str | os.PathLike[str], cities: Sequence[str]) -> pd.DataFrame:
    """The ``truth.csv`` of simulated cities, with a ``city`` column.

    Args:
        root: scene folder with one sub-folder per city
        cities: city slugs

    Returns:
        The rows of every city.

    Raises:
        FileNotFoundError: If a city lacks ``truth.csv`` (not a simulated scene).

    .. versionadded:: 0.3
    """
    frames = []
    for city in cities:
        path = Path(root) / city / "truth.csv"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: the calibration table needs a simulated "
                "scene (`torchgeo-quake simulate --root ROOT`)"
            )
        frames.append(pd.read_csv(path).assign(city=city))
    return pd.concat(frames, ignore_index=True)


def sar_block_means(sar: npt.ArrayLike, grid: int = 8) -> FloatArray:
    """Block means of square SAR patches on a ``grid`` x ``grid`` grid.

    Args:
        sar: patches ``(n, size, size)`` or ``(n, 1, size, size)``
        grid: blocks per side (the patch size must be a multiple)

    Returns:
        ``(n, grid * grid)`` block means.

    Raises:
        ValueError: If the patches are not square multiples of *grid*.

    .. versionadded:: 0.3
    """
    array = np.asarray(sar, np.float64)
    if array.ndim == 4:
        array = array[:, 0]
    if array.ndim != 3 or array.shape[1] != array.shape[2]:
        raise ValueError(f"expected square patches (n, size, size), got {array.shape}")
    size = array.shape[1]
    if size % grid:
        raise ValueError(f"patch size {size} is not a multiple of the grid {grid}")
    step = size // grid
    blocks = array.reshape(len(array), grid, step, grid, step).mean(axis=(2, 4))
    return np.asarray(blocks.reshape(len(array), grid * grid), np.float64)


def sample_features(
    root: str | os.PathLike[str], cities: Sequence[str] | None = None
) -> SampleFeatures:
    """Features of the paper's samples (1:20 sampling, 32 x 32 patches).

    The samples come from
    :class:`~torchgeo_quake.datasets.KahramanmarasDamage` (with its sample
    cache), the footprint area, true height and taxonomy from ``truth.csv``.

    Args:
        root: simulated scene folder
        cities: city slugs (default: every city in *root*)

    Returns:
        The features.

    Raises:
        FileNotFoundError: If *root* is not a simulated scene.

    .. versionadded:: 0.3
    """
    from ..datasets import KahramanmarasDamage

    folder = Path(root)
    if cities is None:
        cities = [c for c in CITY_SLUGS if (folder / c).is_dir()]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="BuildingWindows: skipped")
        ds = KahramanmarasDamage(folder, cities=cities, simulate=False)
    arrays = ds.arrays()
    inside = arrays["footprint"][:, 0] > 0.5
    sar = arrays["sar"][:, 0].astype(np.float64)
    dsm = arrays["dsm"][:, 0].astype(np.float64)
    count = inside.sum(axis=(1, 2))
    mean_db = (sar * inside).sum(axis=(1, 2)) / np.maximum(count, 1)
    roof = (dsm * inside).sum(axis=(1, 2)) / np.maximum(count, 1)
    ground = np.percentile(dsm.reshape(len(dsm), -1), 10, axis=1)
    gem = arrays["gem"].astype(np.float64)
    _, vector = np.unique(gem, axis=0, return_inverse=True)
    truth = read_truth(folder, list(cities)).set_index(["city", "osm_id"])
    keys = pd.MultiIndex.from_arrays([ds.city_of, ds.building_ids])
    rows = truth.reindex(keys)
    if rows["storeys"].isna().any():
        raise ValueError(f"{folder}: some samples have no row in truth.csv")
    frame = pd.DataFrame(
        {
            "city": ds.city_of,
            "building_id": ds.building_ids,
            "label": ds.labels.astype(np.int64),
            "mean_db": mean_db,
            "area_m2": rows["footprint_area_m2"].to_numpy(np.float64),
            "dsm_residual_m": roof - ground,
            "gem_vector": vector.reshape(-1),
            "height_m": rows["height_m"].to_numpy(np.float64),
            "material": material_class(rows["material"]).to_numpy(),
            "storeys": storey_class(rows["storeys"]).to_numpy(),
        }
    )
    return SampleFeatures(frame, sar_block_means(sar), gem)


def separability(auroc: float) -> float:
    """How far from chance an AUROC ranks, in either direction.

    Args:
        auroc: an AUROC

    Returns:
        ``max(auroc, 1 - auroc)`` (NaN stays NaN).

    .. versionadded:: 0.3
    """
    return float(max(auroc, 1.0 - auroc)) if np.isfinite(auroc) else float("nan")


def _folds(labels: npt.NDArray[np.int64]) -> StratifiedKFold | None:
    """Stratified folds of a city, or None when it has too few positives.

    Args:
        labels: the city's labels

    Returns:
        Up to 5 shuffled folds (seed 0); None below :data:`MIN_POSITIVES`.
    """
    positives = int(labels.sum())
    if positives < MIN_POSITIVES or positives == len(labels):
        return None
    return StratifiedKFold(min(_FOLDS, positives), shuffle=True, random_state=0)


def gem_vector_scores(
    vector: npt.NDArray[np.int64], labels: npt.NDArray[np.int64]
) -> FloatArray:
    """Out-of-fold damaged rate of each sample's GEM vector (within one city).

    Each fold's samples get the damaged share of their GEM vector among the
    other folds' samples (the other folds' overall share when the vector does
    not occur there).

    Args:
        vector: GEM vector id per sample
        labels: labels (0/1)

    Returns:
        The scores (NaN when the city has too few positives).

    .. versionadded:: 0.3
    """
    folds = _folds(labels)
    scores = np.full(len(labels), np.nan)
    if folds is None:
        return scores
    for train, test in folds.split(vector, labels):
        frame = pd.DataFrame({"v": vector[train], "y": labels[train]})
        rate = frame.groupby("v")["y"].mean()
        prior = float(labels[train].mean())
        scores[test] = (
            pd.Series(vector[test]).map(rate).fillna(prior).to_numpy(np.float64)
        )
    return scores


def _oof_boosting(x: FloatArray, labels: npt.NDArray[np.int64]) -> FloatArray:
    """Out-of-fold probabilities of gradient boosting within one city.

    Args:
        x: features
        labels: labels

    Returns:
        The probabilities (NaN when the city has too few positives).
    """
    folds = _folds(labels)
    scores = np.full(len(labels), np.nan)
    if folds is None:
        return scores
    for train, test in folds.split(x, labels):
        model = HistGradientBoostingClassifier(random_state=0)
        model.fit(x[train], labels[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
    return scores


def _auroc(labels: npt.NDArray[np.int64], score: FloatArray) -> float:
    """AUROC, NaN when undefined.

    Args:
        labels: labels
        score: scores (NaN scores give NaN)

    Returns:
        The AUROC.
    """
    if np.isnan(score).any() or labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, score))


def within_city_auroc(
    features: SampleFeatures, boosting: bool = True
) -> dict[str, dict[str, float]]:
    """Within-city AUROC of each single feature and of SAR gradient boosting.

    Args:
        features: the scene's sample features
        boosting: also fit the gradient-boosting model (``sar_blocks_gb``)

    Returns:
        Feature -> city -> AUROC (raw, not folded around 0.5; NaN for a city
        with fewer than :data:`MIN_POSITIVES` damaged samples).

    .. versionadded:: 0.3
    """
    frame = features.frame
    out: dict[str, dict[str, float]] = {name: {} for name in SCALAR_FEATURES}
    if boosting:
        out["sar_blocks_gb"] = {}
    for city, rows in frame.groupby("city", sort=False):
        index = rows.index.to_numpy()
        labels = rows["label"].to_numpy(np.int64)
        enough = _folds(labels) is not None
        for name in ("mean_db", "area_m2", "dsm_residual_m"):
            score = rows[name].to_numpy(np.float64)
            out[name][str(city)] = _auroc(labels, score) if enough else float("nan")
        vector = rows["gem_vector"].to_numpy(np.int64)
        out["gem_vector"][str(city)] = _auroc(labels, gem_vector_scores(vector, labels))
        if boosting:
            score = _oof_boosting(features.blocks[index], labels)
            out["sar_blocks_gb"][str(city)] = _auroc(labels, score)
    return out


def pooled_boosting_auroc(features: SampleFeatures) -> float:
    """AUROC of SAR gradient boosting, 5-fold over all cities' samples pooled.

    Random folds mix the cities and neighbouring buildings (optimistic); the
    figure compares with the 0.1 audit (0.958) and the paper's Table III.

    Args:
        features: the sample features

    Returns:
        The out-of-fold AUROC.

    .. versionadded:: 0.3
    """
    labels = features.frame["label"].to_numpy(np.int64)
    return _auroc(labels, _oof_boosting(features.blocks, labels))


def _loco_inputs(features: SampleFeatures) -> dict[str, FloatArray]:
    """Design matrices of the leave-one-city-out transfer test.

    Args:
        features: the sample features

    Returns:
        Input name (:data:`LOCO_INPUTS`) -> design matrix.
    """
    frame = features.frame
    taxonomy: FloatArray = OneHotEncoder(
        categories=[list(MATERIAL_CLASSES), [c[0] for c in STOREY_CLASSES]],
        sparse_output=False,
    ).fit_transform(frame[["material", "storeys"]].to_numpy())
    return {
        "dsm_height": frame[["dsm_residual_m"]].to_numpy(np.float64),
        "true_height": frame[["height_m"]].to_numpy(np.float64),
        "gem_taxonomy": taxonomy,
        "gem_vector": features.gem,
    }


def _transfer_score(
    x: FloatArray,
    labels: npt.NDArray[np.int64],
    city: npt.NDArray[np.str_],
    test: npt.NDArray[np.bool_],
    city_intercepts: bool,
) -> FloatArray:
    """Scores of the held-out samples by a model fitted on the others.

    Args:
        x: design matrix of all samples
        labels: labels
        city: city of each sample
        test: held-out samples
        city_intercepts: give each training city its own intercept and score
            with the input's part only (see :func:`loco_auroc`)

    Returns:
        Scores of the held-out samples (higher: more likely damaged).
    """
    train = ~test
    scaler = StandardScaler().fit(x[train])
    z_train, z_test = scaler.transform(x[train]), scaler.transform(x[test])
    if not city_intercepts:
        model = LogisticRegression(max_iter=2000).fit(z_train, labels[train])
        return np.asarray(model.decision_function(z_test), np.float64)
    dummies = pd.get_dummies(city[train]).to_numpy(np.float64)
    model = LogisticRegression(max_iter=2000, fit_intercept=False)
    model.fit(np.hstack([z_train, dummies]), labels[train])
    return np.asarray(z_test @ model.coef_[0, : x.shape[1]], np.float64)


def loco_auroc(
    features: SampleFeatures,
    inputs: Sequence[str] | None = None,
    city_intercepts: bool = True,
) -> dict[str, dict[str, float]]:
    """Leave-one-city-out AUROC of a logistic regression on single inputs.

    Inputs (:data:`LOCO_INPUTS`): ``dsm_height`` (DSM residual),
    ``true_height`` (``truth.csv``), ``gem_taxonomy`` (one-hot material +
    storeys class) and ``gem_vector`` (the 22 GEM features the model sees),
    standardised on the training cities.

    By default every training city has its own intercept and the held-out city
    is ranked by the input's part of the model: the AUROC within a city does
    not depend on its intercept, and the cities' different damage rates
    (Nurdağı 13 %, Kahramanmaraş 5 %) and stocks would otherwise let the
    slope learn which city a building is in (low-rise Nurdağı vs taller
    Kahramanmaraş), not how the input relates to damage within a city.

    Args:
        features: the sample features
        inputs: which inputs (default: all four)
        city_intercepts: fit one intercept per training city (False: a single
            pooled intercept, as the paper's network)

    Returns:
        Input -> held-out city -> AUROC (NaN where the held-out city has only
        one class).

    Raises:
        ValueError: If an input is unknown.

    .. versionadded:: 0.3
    """
    matrices = _loco_inputs(features)
    names = list(LOCO_INPUTS) if inputs is None else list(inputs)
    unknown = sorted(set(names) - set(matrices))
    if unknown:
        raise ValueError(f"unknown inputs {unknown}; choose among {list(matrices)}")
    city = features.frame["city"].to_numpy().astype(str)
    labels = features.frame["label"].to_numpy(np.int64)
    out: dict[str, dict[str, float]] = {}
    for name in names:
        out[name] = {}
        for held in dict.fromkeys(city):
            test = city == held
            if labels[~test].min() == labels[~test].max():
                out[name][str(held)] = float("nan")
                continue
            score = _transfer_score(matrices[name], labels, city, test, city_intercepts)
            out[name][str(held)] = _auroc(labels[test], score)
    return out
