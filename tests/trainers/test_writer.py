"""DamagePredictionWriter: the CSV table written by ``predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from test_damage_task import TinyDataModule, _task, _trainer

from torchgeo_quake.trainers import (
    PREDICTION_COLUMNS,
    DamageDetectionTask,
    DamagePredictionWriter,
)
from torchgeo_quake.trainers.calibration import apply_platt


def _predict(
    tmp_path: Path, task: DamageDetectionTask, dm: Any, name: str = "p.csv"
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    writer = DamagePredictionWriter(tmp_path / "out" / name)
    outputs = _trainer(tmp_path, callbacks=[writer]).predict(task, datamodule=dm)
    assert outputs is not None
    table = pd.read_csv(tmp_path / "out" / name, keep_default_na=False)
    assert writer.rows == len(table)
    return table, outputs  # type: ignore[return-value]


def test_table_contents_and_stored_threshold(tmp_path: Path) -> None:
    dm = TinyDataModule()
    task = _task(["sar", "footprint"])
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=1)
    trainer.fit(task, datamodule=dm)
    assert bool(task.threshold_set)
    # Move the stored threshold to the median probability, so that it (and not
    # 0.5) visibly decides: about half the buildings are predicted damaged.
    task.eval()
    with torch.no_grad():
        logits = task(sar=dm.test.sar, footprint=dm.test.footprint)
    # Predictions are calibrated (Platt scale and bias fitted on validation).
    probs = apply_platt(logits, *task.calibration)
    task.threshold.fill_(float(probs.median()))
    path = tmp_path / "stored.ckpt"
    trainer.save_checkpoint(path)
    loaded = DamageDetectionTask.load_from_checkpoint(path)
    stored = float(loaded.threshold)
    assert stored == float(probs.median()) != 0.5

    table, outputs = _predict(tmp_path, loaded, dm)
    assert tuple(table.columns) == PREDICTION_COLUMNS
    assert len(table) == len(dm.test) == 12
    np.testing.assert_array_equal(table["building_id"], dm.test.ids.numpy())
    assert set(table["city"]) == {"islahiye"}
    np.testing.assert_array_equal(table["x"], np.arange(12.0))
    np.testing.assert_array_equal(table["y"], 2.0 * np.arange(12))
    np.testing.assert_array_equal(table["label"], dm.test.label.long().numpy())
    # Exactly the probabilities and decisions of predict_step ...
    prob = torch.cat([o["prob"] for o in outputs]).numpy()
    pred = torch.cat([o["pred"] for o in outputs]).numpy()
    np.testing.assert_array_equal(table["prob"].to_numpy(np.float32), prob)
    np.testing.assert_array_equal(table["pred"], pred)
    # ... at the checkpoint's threshold, written in full precision.
    assert (table["threshold"] == stored).all()
    np.testing.assert_array_equal(table["pred"], table["prob"] >= stored)
    assert 0 < table["pred"].sum() < 12
    # The same model as the direct forward pass above, up to float32 rounding:
    # the predict loader's batches differ from the 12-building tensor, which
    # changes the summation order in the convolutions (a CI run measured
    # 1.9e-6 on one building; 1e-5 still catches any real difference).
    torch.testing.assert_close(torch.from_numpy(prob), probs, rtol=0, atol=1e-5)


def test_missing_values_are_empty_and_file_is_rewritten(tmp_path: Path) -> None:
    dm = TinyDataModule()
    dm.test.drop = "label"
    task = _task(["sar", "footprint"])
    with pytest.warns(UserWarning, match="no validation threshold stored"):
        table, _ = _predict(tmp_path, task, dm)
    assert (table["label"] == "").all()
    assert (table["threshold"] == 0.5).all()
    np.testing.assert_array_equal(table["pred"], table["prob"] >= 0.5)
    # A second prediction epoch replaces the file instead of appending to it.
    dm2 = TinyDataModule(n=6)
    with pytest.warns(UserWarning, match="no validation threshold stored"):
        table, _ = _predict(tmp_path, task, dm2)
    assert len(table) == 6


def test_rank_suffix_and_bad_output(tmp_path: Path) -> None:
    writer = DamagePredictionWriter(tmp_path / "predictions.csv")

    class Rank:
        world_size = 2
        global_rank = 1

    assert writer.path(Rank()) == tmp_path / "predictions.rank1.csv"  # type: ignore[arg-type]
    writer.on_predict_epoch_start(Rank(), _task(["sar", "footprint"]))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'prob' and 'pred'"):
        writer.write_on_batch_end(
            Rank(),  # type: ignore[arg-type]
            _task(["sar", "footprint"]),
            torch.zeros(3),
            None,
            {},
            0,
            0,
        )
    writer.on_exception(Rank(), _task(["sar", "footprint"]), RuntimeError())  # type: ignore[arg-type]
    assert (tmp_path / "predictions.rank1.csv").read_text().startswith("building_id,")
