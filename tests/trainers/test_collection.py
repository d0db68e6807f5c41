"""Collection of epoch predictions, their gathering and the logged values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from torchgeo_quake.trainers import best_f1_threshold, threshold_metrics
from torchgeo_quake.trainers.collection import (
    EpochOutputs,
    choose_threshold,
    epoch_predictions,
    logged_test_values,
    logged_validation_values,
    upgrade_test_metrics,
)
from torchgeo_quake.trainers.seeding import seed_epoch


class TwoRanks:
    """Fake ``all_gather`` of two processes; this one is rank 0.

    Each :func:`all_gather_cat` gathers a size, then the padded tensor; the
    other rank's tensors are given in the order they are gathered.
    """

    def __init__(self, *others: Tensor) -> None:
        self.others = list(others)
        self.current: Tensor | None = None

    def __call__(self, t: Tensor) -> Tensor:
        if self.current is None:
            self.current = self.others.pop(0)
            return torch.stack([t, torch.tensor([len(self.current)])])
        other, self.current = self.current, None
        assert other.dtype == t.dtype
        pad = other.new_zeros((t.shape[0] - len(other),))
        return torch.stack([t, torch.cat([other, pad])])


def test_outputs_single_process() -> None:
    outputs = EpochOutputs()
    outputs.append(
        torch.tensor([0.5, -1.0]), torch.tensor([1, 0]), torch.tensor([7, 8])
    )
    outputs.append(torch.tensor([2.0]), torch.tensor([1]), torch.tensor([9]))
    logits, labels, ids = outputs.gather(torch.device("cpu"))
    assert torch.equal(logits, torch.tensor([0.5, -1.0, 2.0]))
    assert labels.dtype == torch.long
    assert ids is not None
    assert torch.equal(ids, torch.tensor([7, 8, 9]))
    # Gathering forgets the batches.
    logits, labels, ids = outputs.gather(torch.device("cpu"))
    assert logits.numel() == labels.numel() == 0
    assert ids is None


def test_outputs_without_ids_in_a_batch() -> None:
    outputs = EpochOutputs()
    outputs.append(torch.tensor([0.5]), torch.tensor([1]), torch.tensor([7]))
    outputs.append(torch.tensor([2.0]), torch.tensor([1]), None)
    assert outputs.gather(torch.device("cpu"))[2] is None
    outputs.append(torch.tensor([0.5]), torch.tensor([1]), None)
    outputs.reset()
    assert outputs.gather(torch.device("cpu"))[0].numel() == 0


def test_outputs_gathered_in_rank_order() -> None:
    outputs = EpochOutputs()
    outputs.append(torch.tensor([0.1, 0.2]), torch.tensor([0, 1]), torch.tensor([1, 2]))
    fake = TwoRanks(
        torch.tensor([0.3, 0.4, 0.5]), torch.tensor([1, 1, 0]), torch.tensor([3, 4, 1])
    )
    logits, labels, ids = outputs.gather(torch.device("cpu"), fake)
    assert torch.equal(logits, torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert torch.equal(labels, torch.tensor([0, 1, 1, 1, 0]))
    assert ids is not None
    assert torch.equal(ids, torch.tensor([1, 2, 3, 4, 1]))
    # The repeated building 1 is counted once (its first occurrence).
    result = epoch_predictions(logits, labels, ids, nn.BCEWithLogitsLoss(), True)
    assert result is not None
    preds, _ = result
    assert preds.building_ids is not None
    assert preds.building_ids.tolist() == [1, 2, 3, 4]
    assert preds.labels.tolist() == [0, 1, 1, 1]


def test_empty_process_sends_typed_tensors() -> None:
    # A process without batches still takes part, with empty tensors of the
    # right dtypes.
    fake = TwoRanks(torch.tensor([0.3]), torch.tensor([1]))
    logits, labels, ids = EpochOutputs().gather(torch.device("cpu"), fake)
    assert torch.equal(logits, torch.tensor([0.3]))
    assert torch.equal(labels, torch.tensor([1]))
    assert ids is None


def test_epoch_predictions() -> None:
    assert (
        epoch_predictions(
            torch.zeros(0),
            torch.zeros(0, dtype=torch.long),
            None,
            nn.BCEWithLogitsLoss(),
        )
        is None
    )
    logits = torch.tensor([2.0, -1.0, 0.5])
    labels = torch.tensor([1, 0, 0])
    result = epoch_predictions(logits, labels, None, nn.BCEWithLogitsLoss())
    assert result is not None
    preds, loss = result
    assert preds.building_ids is None
    assert preds.probs.dtype == np.float64
    np.testing.assert_allclose(preds.probs, torch.sigmoid(logits.double()).numpy())
    assert loss == pytest.approx(
        float(nn.BCEWithLogitsLoss()(logits, labels.float())), abs=1e-7
    )


def test_logged_values() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, 1.0, -2.0])
    labels = torch.tensor([1, 0, 0, 1, 0])
    result = epoch_predictions(logits, labels, None, nn.BCEWithLogitsLoss())
    assert result is not None
    preds, loss = result
    threshold = choose_threshold(preds)
    assert threshold is not None
    val = logged_validation_values(preds, loss, threshold)
    assert list(val) == [
        "val_loss",
        "val_precision",
        "val_recall",
        "val_f1",
        "val_kappa",
        "val_auroc",
        "val_ap",
        "val_threshold",
    ]
    assert val["val_f1"] == 1.0
    test = logged_test_values(preds, loss, 0.5)
    best = best_f1_threshold(preds.probs, preds.labels)
    assert test["test_threshold_oracle"] == best
    assert "test_f1" not in test  # renamed: an oracle, not the deployable F1
    at_val = threshold_metrics(preds.probs, preds.labels, 0.5)
    assert test["test_f1_valthr"] == at_val["f1"]
    assert test["test_threshold_valthr"] == 0.5
    # Without damaged buildings: no threshold to choose, NaN at the best one.
    result = epoch_predictions(
        logits, torch.zeros(5, dtype=torch.long), None, nn.BCEWithLogitsLoss()
    )
    assert result is not None
    assert choose_threshold(result[0]) is None
    test = logged_test_values(result[0], result[1], 0.5)
    assert math.isnan(test["test_f1_oracle"])
    assert math.isnan(test["test_threshold_oracle"])


def test_seed_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    seed_epoch(2, 0)
    a = torch.rand(3)
    seed_epoch(2, 0)
    assert torch.equal(torch.rand(3), a)
    seed_epoch(2, 1)
    assert not torch.equal(torch.rand(3), a)


def test_upgrade_test_metrics_renames_the_oracle_metrics() -> None:
    old = {
        "test_f1": 0.4,
        "test_threshold": 0.3,
        "test_precision": 0.5,
        "test_recall": 0.35,
        "test_kappa": 0.2,
        "test_f1_valthr": 0.25,
        "test_auroc": 0.8,
    }
    new = upgrade_test_metrics(old)
    assert new == {
        "test_f1_oracle": 0.4,
        "test_threshold_oracle": 0.3,
        "test_precision_oracle": 0.5,
        "test_recall_oracle": 0.35,
        "test_kappa_oracle": 0.2,
        "test_f1_valthr": 0.25,
        "test_auroc": 0.8,
    }
    assert "test_f1" in old  # the input is left alone
    # Current names pass unchanged; where both exist the current one wins.
    assert upgrade_test_metrics(new) == new
    assert upgrade_test_metrics({"test_f1": 0.1, "test_f1_oracle": 0.2}) == {
        "test_f1_oracle": 0.2
    }
