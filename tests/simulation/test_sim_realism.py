"""Realism of the calibrated simulated scene and absence of shortcuts (issue 14).

Instead of pinning the weaknesses of the 0.1 simulator
(``test_sim_informativeness.py``), these tests assert what the calibrated
scene must show, measured with the calibration table's own code
(:mod:`torchgeo_quake.realism.features`,
:mod:`torchgeo_quake.realism.table`):

* no single trivial feature (mean dB in the footprint, footprint area, DSM
  height residual, GEM vector identity) ranks damage within a city better than
  its bound (:data:`SAR_FEATURE_BOUND` = 0.81, :data:`CUE_FEATURE_BOUND` =
  0.75, derived from the paper's published SAR + FTP AUROC; see the module
  docstring of :mod:`torchgeo_quake.realism.features`);
* DSM-derived height and GEM taxonomy carry damage signal that transfers
  across cities (leave-one-city-out AUROC above 0.5 by :data:`TRANSFER_MARGIN`);
* the simulated collapse rates follow GEM's vulnerability functions across
  material x storeys classes. Their level is fixed by Table II's counts and
  is reported, not asserted, beside the band GEM gives at the simulated
  shaking for a collapse loss ratio between GEM's "extensive" and "complete"
  damage states (:data:`~torchgeo_quake.realism.table.
  COLLAPSE_BAND`): GEM expects more collapses than HOTOSM lists.

What the calibrated scene does not show is marked ``xfail(strict=True)`` with
the measured value, so that the mark fails the day the scene changes.

The bounds are also checked on the committed calibration table of the
full-scale default scene (``docs/results/simulator/calibration.json``, too slow
to recompute here; it must be of the current simulator version): with ten
times the buildings per GEM vector, the GEM vector's location shortcut shows
there and not at scale 0.1.

The calibrated scene is simulated once for the module at scale 0.1 (96 damaged
samples in the three large cities). Per-city AUROCs of ~20 damaged samples
have a standard error of ~0.06, so the assertions use the mean over the cities
with at least :data:`~torchgeo_quake.realism.features.
MIN_POSITIVES` damaged samples, weighted by their damaged count (standard error
~0.03). The v0.1 scene, whose SAR cue is a known shortcut (mean dB AUROC
0.84-0.89 at full scale), is the negative control: the same check must flag it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from torchgeo_quake.realism.features import (
    CUE_FEATURE_BOUND,
    MIN_POSITIVES,
    SAR_FEATURE_BOUND,
    SCALAR_FEATURES,
    SampleFeatures,
    gem_vector_scores,
    loco_auroc,
    read_truth,
    sample_features,
    sar_block_means,
    separability,
    within_city_auroc,
)
from torchgeo_quake.realism.markdown import format_markdown
from torchgeo_quake.realism.table import (
    COLLAPSE_BAND,
    collapse_level,
    collapse_rates,
    gem_collapse_probability,
    read_loco_auroc,
)
from torchgeo_quake.simulation.scene_record import SIMULATOR_VERSION

#: Scale of the calibrated test scene.
SCALE = 0.1
#: Margin above chance of the leave-one-city-out AUROC of height and taxonomy:
#: twice the standard error of a pooled AUROC over ~90 damaged samples.
TRANSFER_MARGIN = 0.05
#: Fewest buildings of a material x storeys class in the collapse-rate check.
MIN_CLASS_BUILDINGS = 40

ROOT = Path(__file__).resolve().parents[2]
FULL_LOCO = ROOT / "docs" / "results" / "full-loco"
#: The calibration table of the full-scale default scene (docs/simulator.md).
FULL_TABLE = ROOT / "docs" / "results" / "simulator" / "calibration.json"


def _weighted_mean(
    values: Mapping[str, float],
    features: SampleFeatures | Mapping[str, int],
    separable: bool = False,
) -> float:
    """Mean over cities with enough damaged samples, weighted by their count.

    Args:
        values: city -> AUROC
        features: the features, or city -> damaged count
        separable: average ``max(a, 1 - a)`` instead of ``a``

    Returns:
        The weighted mean.
    """
    positives = (
        features.frame.groupby("city")["label"].sum().to_dict()
        if isinstance(features, SampleFeatures)
        else dict(features)
    )
    cities = [
        c
        for c, v in values.items()
        if positives.get(c, 0) >= MIN_POSITIVES and np.isfinite(v)
    ]
    assert cities, f"no city with {MIN_POSITIVES} damaged samples: {positives}"
    score = [separability(values[c]) if separable else values[c] for c in cities]
    return float(np.average(score, weights=[positives[c] for c in cities]))


@pytest.fixture(scope="module")
def calibrated_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The calibrated scene at scale 0.1, simulated once for the module."""
    from torchgeo_quake.simulation import simulate_scene

    root = tmp_path_factory.mktemp("calibrated") / "scene"
    simulate_scene(root, scale=SCALE, seed=0, scenario="calibrated", progress=False)
    return root


@pytest.fixture(scope="module")
def calibrated(calibrated_root: Path) -> SampleFeatures:
    """Sample features of the calibrated scene."""
    return sample_features(calibrated_root)


@pytest.fixture(scope="module")
def v01(tmp_path_factory: pytest.TempPathFactory) -> SampleFeatures:
    """Sample features of the v0.1 scene at scale 0.05 (negative control)."""
    from torchgeo_quake.simulation import simulate_scene

    root = tmp_path_factory.mktemp("v01") / "scene"
    simulate_scene(root, scale=0.05, seed=0, scenario="v0.1", progress=False)
    return sample_features(root)


# Realism of the calibrated scene.


@pytest.mark.parametrize("feature", list(SCALAR_FEATURES))
def test_no_trivial_feature_ranks_damage(
    calibrated: SampleFeatures, feature: str
) -> None:
    auroc = within_city_auroc(calibrated, boosting=False)[feature]
    mean = _weighted_mean(auroc, calibrated, separable=True)
    assert mean <= SCALAR_FEATURES[feature], (feature, auroc)


def _full_scale_param(feature: str) -> object:
    """A feature of the full-scale check, marked where the table exceeds it."""
    if feature != "gem_vector":
        return feature
    return pytest.param(
        feature,
        marks=pytest.mark.xfail(
            strict=True,
            reason=(
                "measured, not assumed: at full scale the GEM vector ranks damage "
                "within Islahiye, Kahramanmaras and Nurdagi at 0.77-0.84 (weighted "
                "mean 0.79) because GEM cells encode location and damage clusters "
                "by neighbourhood; at scale 0.1 the check above passes (0.62), a "
                "tenth of the samples per vector hides it (docs/simulator.md)"
            ),
        ),
    )


@pytest.mark.parametrize("feature", [_full_scale_param(f) for f in SCALAR_FEATURES])
def test_no_trivial_feature_ranks_damage_at_full_scale(feature: str) -> None:
    # The same check on the calibration table of the full-scale default scene
    # that docs/simulator.md shows (docs/scripts/simulator_calibration.py): too
    # slow to compute here, so read from the committed results, which must be
    # of the current simulator.
    table = json.loads(FULL_TABLE.read_text(encoding="utf-8"))
    scene = table["scene"]
    assert scene["simulator_version"] == SIMULATOR_VERSION, (
        f"{FULL_TABLE} is of simulator version {scene['simulator_version']}: "
        "recompute it (docs/simulator.md, Calibration)"
    )
    assert (scene["scenario"], scene["scale"], scene["seed"]) == ("calibrated", 1.0, 0)
    damaged = {row["city"]: row["simulated"]["count"] for row in table["footprints"]}
    values = table["within_city"][feature]
    mean = _weighted_mean(values, damaged, separable=True)
    assert mean <= SCALAR_FEATURES[feature], (feature, values)


@pytest.mark.parametrize(
    "inputs",
    [
        pytest.param(
            "dsm_height",
            marks=pytest.mark.xfail(
                strict=True,
                reason=(
                    "measured, not assumed: with neighbouring buildings failing "
                    "together (the neighbourhood term of the damage model), the "
                    "DSM height residual does not transfer across cities at "
                    "scale 0.1 (leave-one-city-out AUROC 0.42-0.78, weighted "
                    "mean below 0.55; see docs/simulator.md, Calibration)"
                ),
            ),
        ),
        pytest.param(
            "gem_taxonomy",
            marks=pytest.mark.xfail(
                strict=True,
                reason=(
                    "measured, not assumed: GEM taxonomy alone transfers barely "
                    "above chance across cities on the calibrated scene "
                    "(leave-one-city-out AUROC about 0.52 at scale 0.1; see "
                    "docs/simulator.md, Calibration)"
                ),
            ),
        ),
    ],
)
def test_height_and_taxonomy_transfer_across_cities(
    calibrated: SampleFeatures, inputs: str
) -> None:
    auroc = loco_auroc(calibrated, [inputs])[inputs]
    assert _weighted_mean(auroc, calibrated) > 0.5 + TRANSFER_MARGIN, auroc


def test_collapse_rates_follow_gem(calibrated_root: Path) -> None:
    truth = read_truth(
        calibrated_root,
        sorted(p.parent.name for p in calibrated_root.glob("*/truth.csv")),
    )
    probability, sources = gem_collapse_probability(truth, calibrated_root)
    assert set(sources.values()) == {"pga.tif"}, sources
    table = collapse_rates(truth, probability)
    big = table[table["buildings"] >= MIN_CLASS_BUILDINGS]
    assert len(big) >= 3, table
    rho = spearmanr(big["simulated_rate"], big["gem_rate"]).statistic
    assert rho >= 0.6, table


def test_collapse_level_is_reported_not_matched(calibrated_root: Path) -> None:
    # Table II fixes how many buildings collapse; GEM's functions, at the
    # simulated shaking, expect more buildings to reach the collapse loss
    # ratio than HOTOSM lists as destroyed. The table reports both levels.
    truth = read_truth(
        calibrated_root,
        sorted(p.parent.name for p in calibrated_root.glob("*/truth.csv")),
    )
    level = collapse_level(truth, calibrated_root)["all"]
    assert 0 < level["simulated"] < 0.2
    assert level["gem_low"] <= level["gem"] <= level["gem_high"], (
        COLLAPSE_BAND,
        level,
    )


# The checks have teeth: the v0.1 scene's SAR shortcut is flagged.


def test_v01_mean_db_is_a_shortcut(v01: SampleFeatures) -> None:
    auroc = within_city_auroc(v01, boosting=False)["mean_db"]
    assert _weighted_mean(auroc, v01, separable=True) > SAR_FEATURE_BOUND, auroc


# The measuring code.


def test_bounds_are_ordered() -> None:
    assert 0.5 < CUE_FEATURE_BOUND < SAR_FEATURE_BOUND < 1.0


def test_sar_block_means() -> None:
    patch = np.arange(32 * 32, dtype=float).reshape(1, 1, 32, 32)
    blocks = sar_block_means(patch)
    assert blocks.shape == (1, 64)
    assert blocks[0, 0] == pytest.approx(patch[0, 0, :4, :4].mean())
    assert blocks[0, 63] == pytest.approx(patch[0, 0, 28:, 28:].mean())
    with pytest.raises(ValueError, match="multiple of the grid"):
        sar_block_means(np.zeros((2, 30, 30)))


def test_gem_vector_scores_are_out_of_fold() -> None:
    # Each damaged sample has a vector of its own: in-sample rates would rank
    # them perfectly; out of fold they only get the prior of the other folds.
    labels = np.array([1] * 10 + [0] * 90)
    vector = np.concatenate([np.arange(10), np.full(90, 99)])
    scores = gem_vector_scores(vector, labels)
    assert np.isfinite(scores).all()
    assert scores[:10].max() < 0.2
    assert np.isnan(gem_vector_scores(vector, np.zeros(100, dtype=np.int64))).all()


def test_separability() -> None:
    assert separability(0.3) == pytest.approx(0.7)
    assert separability(0.8) == pytest.approx(0.8)
    assert np.isnan(separability(float("nan")))


def test_collapse_rates_classes() -> None:
    truth = pd.DataFrame(
        {
            "in_sar": [True, True, True, True, False],
            "material": ["RC", "RC", "MUR_CBH", "W", "RC"],
            "storeys": [2, 7, 1, 1, 2],
            "damage_grade": [2, 0, 2, 1, 2],
        }
    )
    table = collapse_rates(truth, np.array([0.1, 0.2, 0.3, 0.4, 0.9]))
    assert list(table.index) == [
        ("RC", "1-2"),
        ("RC", "6+"),
        ("masonry", "1-2"),
        ("other", "1-2"),
    ]
    assert table["collapsed"].tolist() == [1, 0, 1, 0]
    assert table["gem_rate"].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="one value per truth row"):
        collapse_rates(truth, np.zeros(3))


def test_read_loco_auroc(tmp_path: Path) -> None:
    if not FULL_LOCO.is_dir():
        pytest.skip(f"{FULL_LOCO} not in this checkout")
    from_runs = read_loco_auroc(FULL_LOCO)
    assert set(from_runs) == {
        "islahiye",
        "kahramanmaras",
        "nurdagi",
        "osmaniye",
        "turkoglu",
    }
    shutil.copy(FULL_LOCO / "table_IV_loco_bestf1.json", tmp_path)
    from_table = read_loco_auroc(tmp_path)
    assert from_table == pytest.approx(from_runs, abs=1e-5)
    with pytest.raises(FileNotFoundError, match=r"runs\.csv"):
        read_loco_auroc(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown input configuration"):
        read_loco_auroc(tmp_path, config="sar_only")


def test_format_markdown_marks_values_above_the_bound() -> None:
    cities = ["islahiye", "nurdagi"]
    result = {
        "scene": {
            "scenario": {"name": "calibrated"},
            "scale": 1.0,
            "seed": 0,
            "samples": 10,
            "damaged_samples": 2,
        },
        "footprints": [
            {
                "city": c,
                "simulated": {
                    "count": 1,
                    "median_area_destroyed_m2": 1.0,
                    "area_ratio": 1.0,
                    "cluster_share": 0.5,
                    "cell_area_km2": 1.0,
                    "hull_area_km2": 1.0,
                    "density_per_km2": 1.0,
                },
                "real": None,
            }
            for c in cities
        ],
        "collapse": {"rows": [], "intensity_source": {}},
        "within_city": {"mean_db": {"islahiye": 0.9, "nurdagi": 0.15}},
        "bounds": {"mean_db": 0.81},
        "paper_loco": {"islahiye": 0.683},
        "transfer": {"dsm_height": {"islahiye": 0.6, "nurdagi": None}},
    }
    text = format_markdown(json.loads(json.dumps(result)))
    assert "| Mean dB in the footprint | ≤ 0.81 | **0.900** | **0.150** |" in text
    assert "| 0.683 | – |" in text
