"""The protocol runner end to end on a tiny simulated scene (CPU, < 2 minutes).

Each protocol runs through the whole pipeline (data module, training, testing,
tables, figures) with one training batch per epoch and two folds, so the tests
check wiring, leakage and resumability, not model quality.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import torch
import yaml

from torchgeo_quake.cli import build_parser, main
from torchgeo_quake.protocols import (
    ProtocolSettings,
    load_config,
    load_runs,
    plan_runs,
    run_protocol,
)
from torchgeo_quake.trainers import best_f1_threshold, threshold_metrics

ROOT = Path(__file__).resolve().parents[2]
SCALE = "0.05"  # the scale of the session's `sim_root` scene
FAST = ["--max-epochs", "1", "--limit-train-batches", "1", "--no-progress"]


def make_config(folder: Path, source: str, name: str, **data: Any) -> str:
    """Copy an experiment configuration with other data settings."""
    raw = yaml.safe_load((ROOT / "experiments" / source).read_text())
    raw["data"]["init_args"].update(data)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def tiny_settings(
    protocol: Literal["cv", "loco", "islahiye"],
    configs: list[str],
    out: Path,
    sim_root: Path,
    **overrides: Any,
) -> ProtocolSettings:
    """Settings for a protocol on the session's tiny scene, one batch per epoch."""
    options: dict[str, Any] = dict(
        scale=float(SCALE),
        root=str(sim_root),
        max_epochs=1,
        limit_train_batches=1,
        progress=False,
    )
    options.update(overrides)
    return ProtocolSettings(protocol, configs, str(out), **options)


def splits_of(record: dict[str, Any]) -> dict[str, set[tuple[str, int]]]:
    """(city, building id) pairs per split of a run."""
    raw = json.loads((Path(record["directory"]) / "splits.json").read_text())
    return {
        split: set(zip(raw[split]["city"], raw[split]["building_id"], strict=True))
        for split in ("train", "val", "test")
    }


# ------------------------------------------------------------------ planning
def test_plan_runs() -> None:
    configs = [
        load_config(ROOT / "experiments" / name)
        for name in ("sar_ftp.yaml", "sar_ftp_dsm.yaml", "all_inputs.yaml")
    ]
    assert [c.label for c in configs] == [
        "SAR + FTP",
        "SAR + FTP + DSM",
        "SAR + FTP + DSM + GEM",
    ]
    cv = plan_runs("cv", configs, [0, 1])
    assert len(cv) == 3 * 5 * 2
    assert len({r.name for r in cv}) == len(cv)
    assert cv[0].name == "sar_ftp/fold0/seed0"
    assert cv[1].name == "sar_ftp_dsm/fold0/seed0"  # configurations side by side
    loco = plan_runs("loco", configs, [0])
    assert sorted({r.test_city for r in loco}) == [
        "islahiye",
        "kahramanmaras",
        "nurdagi",
        "osmaniye",
        "turkoglu",
    ]
    islahiye = plan_runs("islahiye", configs, [0])
    assert {(r.strategy, r.city) for r in islahiye} == {("city", "islahiye")}
    assert len(islahiye) == 15
    with pytest.raises(ValueError, match="names"):
        plan_runs("cv", [configs[0], configs[0]], [0])
    with pytest.raises(ValueError, match="protocol"):
        plan_runs("nope", configs, [0])  # type: ignore[arg-type]


def test_cli_defaults() -> None:
    args = build_parser().parse_args(["protocol", "loco", "--out", "runs/x"])
    assert args.configs == [
        "experiments/sar_ftp.yaml",
        "experiments/sar_ftp_dsm.yaml",
        "experiments/all_inputs.yaml",
    ]
    assert args.seeds == [0] and not args.quick
    args = build_parser().parse_args(
        ["protocol", "cv", "--out", "o", "--devices", "2", "--strategy", "ddp"]
    )
    assert (args.devices, args.strategy) == ("2", "ddp")


def test_quick_settings() -> None:
    settings = ProtocolSettings("cv", ["a.yaml"], "out", quick=True).resolved()
    assert settings.scale == 0.1 and settings.max_epochs == 2
    assert settings.root == "data/kahramanmaras-quick"
    full = ProtocolSettings("cv", ["a.yaml"], "out").resolved()
    assert full.scale == 1.0 and full.max_epochs is None and full.root is None
    with pytest.raises(ValueError, match="seeds"):
        ProtocolSettings("cv", ["a.yaml"], "out", seeds=[1, 1]).resolved()


# ------------------------------------------------------------------------ cv
@pytest.fixture(scope="module")
def cv_run(tmp_path_factory: pytest.TempPathFactory, sim_root: Path) -> Path:
    """Cross-validation, two configurations × two folds, through the CLI."""
    folder = tmp_path_factory.mktemp("cv")
    configs = [
        make_config(folder, "sar_ftp.yaml", "sar_ftp", num_folds=2),
        make_config(folder, "sar_ftp_dsm.yaml", "sar_ftp_dsm", num_folds=2),
    ]
    out = folder / "out"
    argv = ["protocol", "cv", "--configs", *configs, "--out", str(out)]
    argv += ["--quick", "--scale", SCALE, "--root", str(sim_root), *FAST]
    assert main([*argv, "--keep-checkpoints"]) == 0
    return out


def test_cv_writes_tables_and_figures(cv_run: Path) -> None:
    for policy in ("bestf1", "valthr"):
        for ext in ("md", "csv", "json"):
            assert (cv_run / f"table_III_cv_{policy}.{ext}").is_file()
    for name in ("confusion_matrix", "pr_roc_curves", "training_curves"):
        assert (cv_run / f"{name}.png").stat().st_size > 1000
    assert (cv_run / "reliability.png").stat().st_size > 1000
    calibration = (cv_run / "calibration_cv.md").read_text()
    assert "| fold0 | SAR + FTP |" in calibration
    markdown = (cv_run / "table_III_cv_bestf1.md").read_text()
    assert "| Metric | SAR + FTP | SAR + FTP + DSM |" in markdown
    assert "2 folds × 1 seed(s)" in markdown
    records = load_runs(cv_run)
    assert len(records) == 4
    for record in records:
        folder = Path(record["directory"])
        for name in ("splits.json", "metrics.csv", "predictions.npz"):
            assert (folder / name).is_file()
        assert record["scale"] == 0.05


def test_no_building_in_two_splits(cv_run: Path) -> None:
    for record in load_runs(cv_run):
        splits = splits_of(record)
        assert not splits["train"] & splits["val"]
        assert not splits["train"] & splits["test"]
        assert not splits["val"] & splits["test"]
    # Over the folds of a configuration, every building is tested exactly once.
    for config in ("sar_ftp", "sar_ftp_dsm"):
        tests = [
            splits_of(r)["test"] for r in load_runs(cv_run) if r["config"] == config
        ]
        assert not tests[0] & tests[1]
        everything = tests[0] | tests[1]
        first = splits_of(next(r for r in load_runs(cv_run) if r["config"] == config))
        assert everything == first["train"] | first["val"] | first["test"]


def test_splits_are_seeded(cv_run: Path, sim_root: Path) -> None:
    from torchgeo_quake.datamodules import KahramanmarasDamageDataModule

    record = next(r for r in load_runs(cv_run) if r["split"] == "fold1")
    again = KahramanmarasDamageDataModule(
        root=sim_root,
        modalities=record["modalities"],
        strategy="cv",
        fold=1,
        num_folds=2,
        seed=0,
        scale=0.05,
    )
    again.setup("fit")
    dataset = again.dataset
    assert dataset is not None
    test = again.indices["test"]
    rebuilt = set(
        zip(
            dataset.city_of[test].tolist(),  # type: ignore[attr-defined]
            dataset.building_ids[test].tolist(),  # type: ignore[attr-defined]
            strict=True,
        )
    )
    assert rebuilt == splits_of(record)["test"]


def test_metrics_match_saved_predictions(cv_run: Path) -> None:
    for record in load_runs(cv_run):
        metrics = record["metrics"]
        with np.load(Path(record["directory"]) / "predictions.npz") as data:
            probs, labels, ids = data["probs"], data["labels"], data["building_ids"]
            cities, logits = data["cities"], data["logits"]
        # The probabilities are the logits under the run's calibration.
        calibration = record["calibration"]
        assert calibration["calibrated"]
        np.testing.assert_allclose(
            probs,
            1 / (1 + np.exp(-(calibration["scale"] * logits + calibration["bias"]))),
            rtol=1e-6,
        )
        assert metrics["test_count_expected"] == pytest.approx(probs.sum(), rel=1e-5)
        assert metrics["test_count_observed"] == labels.sum()
        tested = set(zip(cities.tolist(), ids.tolist(), strict=True))
        assert tested == splits_of(record)["test"]
        # The paper's columns: best-F1 threshold of the test split (logged values
        # are float32, so the threshold is recomputed from the predictions).
        best = best_f1_threshold(probs, labels)
        assert best == pytest.approx(metrics["test_threshold_oracle"], rel=1e-6)
        at_best = threshold_metrics(probs, labels, best)
        for key in ("precision", "recall", "f1", "kappa"):
            assert at_best[key] == pytest.approx(
                metrics[f"test_{key}_oracle"], rel=1e-6
            )
        # The valthr columns: the stored validation threshold.
        assert metrics["test_threshold_valthr"] == pytest.approx(
            record["val_threshold"]
        )
        at_val = threshold_metrics(probs, labels, record["val_threshold"])
        for key in ("precision", "recall", "f1", "kappa"):
            expected = metrics.get(f"test_{key}_valthr")
            if expected is None:
                assert np.isnan(at_val[key])
            else:
                assert at_val[key] == pytest.approx(expected, rel=1e-6)


def test_valthr_threshold_is_chosen_on_validation(cv_run: Path, sim_root: Path) -> None:
    """The valthr threshold is the best-F1 threshold of the validation split."""
    from torchgeo_quake.datamodules import KahramanmarasDamageDataModule
    from torchgeo_quake.trainers import DamageDetectionTask

    record = next(r for r in load_runs(cv_run) if r["config"] == "sar_ftp_dsm")
    (best,) = (Path(record["directory"]) / "checkpoints").glob("best-*.ckpt")
    task = DamageDetectionTask.load_from_checkpoint(best, map_location="cpu")
    task.eval()
    assert float(task.threshold) == pytest.approx(record["val_threshold"])
    datamodule = KahramanmarasDamageDataModule(
        root=sim_root,
        modalities=record["modalities"],
        strategy="cv",
        fold=int(record["fold"]),
        num_folds=2,
        seed=0,
        scale=0.05,
    )
    datamodule.setup("fit")
    probs, labels = [], []
    with torch.inference_mode():
        for batch in datamodule.val_dataloader():
            # Calibrated, as the task chose its threshold on them.
            probs.append(task.calibrate(task(batch).double()))
            labels.append(batch["label"])
    val_probs = torch.cat(probs).numpy()
    val_labels = torch.cat(labels).numpy()
    best = best_f1_threshold(val_probs, val_labels)
    # The stored threshold makes exactly the decisions of the validation
    # split's best-F1 threshold.
    np.testing.assert_array_equal(
        val_probs >= record["val_threshold"], val_probs >= best
    )


def test_other_settings_are_refused(cv_run: Path, sim_root: Path) -> None:
    settings = tiny_settings(
        "cv",
        [str(p) for p in (cv_run.parent).glob("*.yaml")],
        cv_run,
        sim_root,
        max_epochs=3,
    )
    with pytest.raises(FileExistsError, match="max_epochs"):
        run_protocol(settings)
    argv = ["protocol", "cv", "--out", str(cv_run), "--scale", "0.2"]
    argv += ["--root", str(sim_root)]
    assert main(argv) == 1


# ---------------------------------------------------------------------- loco
@pytest.fixture(scope="module")
def loco_run(tmp_path_factory: pytest.TempPathFactory, sim_root: Path) -> Path:
    """Leave-one-city-out on three cities with all four inputs."""
    folder = tmp_path_factory.mktemp("loco")
    config = make_config(
        folder,
        "all_inputs.yaml",
        "all_inputs",
        cities=["islahiye", "nurdagi", "osmaniye"],
    )
    settings = tiny_settings(
        "loco",
        [config],
        folder / "out",
        sim_root,
    )
    result = run_protocol(settings)
    assert len(result.trained) == 3
    return folder / "out"


def test_loco_table(loco_run: Path) -> None:
    markdown = (loco_run / "table_IV_loco_bestf1.md").read_text()
    header = "| City | Inputs | Precision | Recall | F1 score | AUROC | AP | Kappa |"
    assert header in markdown
    for city in ("Islahiye", "Nurdağı", "Osmaniye"):
        assert f"| {city} | SAR + FTP + DSM + GEM |" in markdown


def test_held_out_city_never_in_training(loco_run: Path) -> None:
    for record in load_runs(loco_run):
        splits = splits_of(record)
        city = record["test_city"]
        assert {c for c, _ in splits["test"]} == {city}
        assert city not in {c for c, _ in splits["train"] | splits["val"]}


def test_normalisation_statistics_from_training_split_only(
    loco_run: Path, sim_root: Path
) -> None:
    from torchgeo_quake.datasets import KahramanmarasDamage

    dataset = KahramanmarasDamage(
        sim_root,
        cities=["islahiye", "nurdagi", "osmaniye"],
        scale=0.05,
        seed=0,
    )
    arrays = dataset.arrays()
    pairs = list(
        zip(dataset.city_of.tolist(), dataset.building_ids.tolist(), strict=True)
    )
    for record in load_runs(loco_run):
        train = splits_of(record)["train"]
        mask = np.array([pair in train for pair in pairs])
        stats = record["normalization"]
        for key in ("sar", "dsm"):
            values = arrays[key][mask].astype(np.float64)
            assert stats[f"{key}_mean"] == pytest.approx(values.mean(), rel=1e-5)
            assert stats[f"{key}_std"] == pytest.approx(values.std(), rel=1e-5)
        gem = arrays["gem"][mask].astype(np.float64)
        assert np.allclose(stats["gem_mean"], gem.mean(axis=0), rtol=1e-5)
        # With the held-out city, the statistics would differ.
        held_out = dataset.city_of == record["test_city"]
        leaky = arrays["sar"][mask | held_out].astype(np.float64).mean()
        assert stats["sar_mean"] != pytest.approx(leaky, rel=1e-6)


# ------------------------------------------------------------------ islahiye
def test_islahiye_resumes_only_unfinished_runs(tmp_path: Path, sim_root: Path) -> None:
    config = make_config(tmp_path, "sar_ftp.yaml", "sar_ftp", num_folds=3)
    settings = tiny_settings(
        "islahiye",
        [config],
        tmp_path / "out",
        sim_root,
        keep_checkpoints=True,
    )
    first = run_protocol(settings)
    assert first.trained == [f"sar_ftp/fold{k}/seed0" for k in range(3)]
    markdown = (tmp_path / "out" / "table_V_islahiye_bestf1.md").read_text()
    assert "Sun et al. 2024 (quoted, not re-run)" in markdown
    assert "0.427 ± 0.104" in markdown
    for record in load_runs(tmp_path / "out"):
        assert {c for s in splits_of(record).values() for c, _ in s} == {"islahiye"}
    runs = tmp_path / "out" / "runs" / "sar_ftp"
    done = {k: (runs / f"fold{k}" / "seed0" / "metrics.json") for k in range(3)}
    stamps = {k: os.stat(p).st_mtime_ns for k, p in done.items()}

    # Nothing to do: no run is trained again.
    assert run_protocol(settings).trained == []
    # fold1 interrupted after its last checkpoint; fold2 never started.
    done[1].unlink()
    shutil.rmtree(runs / "fold2")
    again = run_protocol(settings)
    assert again.trained == ["sar_ftp/fold1/seed0", "sar_ftp/fold2/seed0"]
    assert again.skipped == ["sar_ftp/fold0/seed0"]
    assert os.stat(done[0]).st_mtime_ns == stamps[0]
    records = {r["split"]: r for r in load_runs(tmp_path / "out")}
    assert records["fold1"]["resumed"] is True
    assert records["fold2"]["resumed"] is False
    summary = json.loads((tmp_path / "out" / "protocol.json").read_text())
    assert summary["last_call"]["skipped"] == ["sar_ftp/fold0/seed0"]


def test_interrupted_run_resumes_with_its_whole_log(
    tmp_path: Path, sim_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped after epoch 0 of 2 resumes at epoch 1 and keeps both logs."""
    from torchgeo_quake.protocols import read_run_log, training

    config = make_config(tmp_path, "sar_ftp.yaml", "sar_ftp", num_folds=2)
    settings = tiny_settings(
        "islahiye",
        [config],
        tmp_path / "out",
        sim_root,
        max_epochs=2,
    )
    real = training._EpochProgress

    class Interrupt(RuntimeError):
        pass

    def interrupting(bar: Any, *args: Any) -> Any:
        callback = real(bar, *args)

        def on_train_epoch_start(trainer: Any, module: Any) -> None:
            if trainer.current_epoch == 1:  # after epoch 0 and its checkpoint
                raise Interrupt("power cut")

        callback.on_train_epoch_start = on_train_epoch_start
        return callback

    monkeypatch.setattr(training, "_EpochProgress", interrupting)
    with pytest.raises(Interrupt):
        run_protocol(settings)
    folder = tmp_path / "out" / "runs" / "sar_ftp" / "fold0" / "seed0"
    assert (folder / "checkpoints" / "last.ckpt").is_file()
    assert not (folder / "metrics.json").exists()
    first_log = read_run_log(folder)
    assert first_log is not None
    assert set(first_log.dropna(subset=["val_f1"])["epoch"]) == {0}

    monkeypatch.setattr(training, "_EpochProgress", real)
    result = run_protocol(settings)
    assert result.trained[0] == "sar_ftp/fold0/seed0"
    record = next(r for r in load_runs(tmp_path / "out") if r["split"] == "fold0")
    assert record["resumed"] is True
    assert record["epochs"] == 2 and record["stopped_by_max_time"] is False
    assert (folder / "metrics.part0.csv").is_file()
    log = read_run_log(folder)
    assert log is not None
    assert {"train_loss", "val_f1"} <= set(log.columns)
    assert set(log.dropna(subset=["val_f1"])["epoch"].astype(int)) == {0, 1}
    assert set(log.dropna(subset=["train_loss"])["epoch"].astype(int)) == {0, 1}


def test_trainer_arguments_pass_through() -> None:
    from torchgeo_quake.protocols.settings import trainer_kwargs as _trainer_kwargs

    config = load_config(ROOT / "experiments" / "all_inputs.yaml")
    assert "max_time" in config.trainer  # bounds a single `torchgeo fit`
    plain = _trainer_kwargs(
        ProtocolSettings("cv", [config.path], "out").resolved(), config
    )
    assert "max_time" not in plain  # ... but never a protocol run
    assert plain["max_epochs"] == config.trainer["max_epochs"]
    assert plain["accelerator"] == "auto" and plain["devices"] == 1
    assert plain["precision"] == "bf16-mixed"  # float32 where bf16 is slow
    for key in ("logger", "callbacks", "default_root_dir"):
        assert key not in plain
    settings = ProtocolSettings(
        "cv",
        [config.path],
        "out",
        accelerator="gpu",
        devices="4",
        strategy="ddp",
        num_nodes=2,
        max_time="00:01:00:00",
        max_epochs=3,
        precision="32-true",
    ).resolved()
    kwargs = _trainer_kwargs(settings, config)
    assert kwargs["accelerator"] == "gpu" and kwargs["devices"] == "4"
    assert kwargs["precision"] == "32-true"
    assert settings.fingerprint()["precision"] == "32-true"
    assert kwargs["strategy"] == "ddp" and kwargs["num_nodes"] == 2
    assert kwargs["max_time"] == "00:01:00:00" and kwargs["max_epochs"] == 3
    # The command line reaches the same settings.
    from torchgeo_quake.protocols.command import settings_from_args

    argv = ["protocol", "cv", "--out", "o", "--devices", "4", "--strategy", "ddp"]
    argv += ["--num-nodes", "2", "--accelerator", "gpu", "--max-time", "00:01:00:00"]
    args = build_parser().parse_args([*argv, "--precision", "32-true"])
    from_cli = settings_from_args(args)
    assert (from_cli.devices, from_cli.strategy, from_cli.num_nodes) == (4, "ddp", 2)
    assert (from_cli.accelerator, from_cli.max_time) == ("gpu", "00:01:00:00")
    assert from_cli.precision == "32-true"


def test_unknown_precision_is_refused() -> None:
    settings = ProtocolSettings("cv", ["a.yaml"], "out", precision="bf17")
    with pytest.raises(ValueError, match=r"precision must be one of .*'bf17'"):
        settings.resolved()


def test_time_limit_is_fingerprinted_and_flagged(
    tmp_path: Path, sim_root: Path
) -> None:
    config = make_config(tmp_path, "sar_ftp.yaml", "sar_ftp", num_folds=2)
    settings = tiny_settings(
        "islahiye",
        [config],
        tmp_path / "out",
        sim_root,
        max_epochs=3,
        max_time="00:00:00:00",  # stops after the first step
    )
    run_protocol(settings)
    records = load_runs(tmp_path / "out")
    assert records and all(r["stopped_by_max_time"] for r in records)
    assert all(r["epochs"] < 3 for r in records)
    markdown = (tmp_path / "out" / "table_V_islahiye_bestf1.md").read_text()
    assert "stopped by the time limit" in markdown
    # Another limit, or none, is another experiment.
    with pytest.raises(FileExistsError, match="max_time"):
        run_protocol(
            tiny_settings(
                "islahiye", [config], tmp_path / "out", sim_root, max_epochs=2
            )
        )


def test_edited_configuration_is_refused(tmp_path: Path, sim_root: Path) -> None:
    config = make_config(tmp_path, "sar_ftp.yaml", "sar_ftp", num_folds=2)
    settings = tiny_settings(
        "islahiye",
        [config],
        tmp_path / "out",
        sim_root,
    )
    run_protocol(settings)
    raw = yaml.safe_load(Path(config).read_text())
    # Settings the runner replaces may change: nothing is trained again.
    raw["trainer"]["callbacks"] = []
    raw["trainer"]["max_time"] = "00:01:00:00"
    Path(config).write_text(yaml.safe_dump(raw))
    assert run_protocol(settings).trained == []
    raw["model"]["init_args"]["lr"] = 0.5
    Path(config).write_text(yaml.safe_dump(raw))
    with pytest.raises(FileExistsError, match=r"sar_ftp .*\['model'\]"):
        run_protocol(settings)


def test_progress_bar_counts_every_epoch(
    tmp_path: Path, sim_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tqdm.auto

    bars: list[Any] = []

    class Bar:
        def __init__(self, total: int, initial: int = 0, **kwargs: Any) -> None:
            self.total, self.n, self.initial = total, initial, initial
            self.postfixes: list[str] = []
            self.updates: list[float] = []
            self.closed = False
            bars.append(self)

        def update(self, n: float = 1) -> None:
            self.n += n
            self.updates.append(n)

        def set_postfix_str(self, text: str, refresh: bool = True) -> None:
            self.postfixes.append(text)

        def close(self) -> None:
            self.closed = True

    real = tqdm.auto.tqdm

    def make(*args: Any, **kwargs: Any) -> Any:
        # The protocol's bar; the others (e.g. sample extraction) as they are.
        if str(kwargs.get("desc", "")).startswith("protocol"):
            return Bar(**kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", make)
    config = make_config(tmp_path, "sar_ftp.yaml", "sar_ftp", num_folds=2, batch_size=8)
    settings = tiny_settings(
        "islahiye",
        [config],
        tmp_path / "out",
        sim_root,
        max_epochs=2,
        limit_train_batches=2,
        progress=True,
    )
    run_protocol(settings)
    (bar,) = bars
    assert (bar.total, bar.initial) == (4, 0) and bar.closed
    assert bar.n == pytest.approx(4)
    # It moves per batch (half an epoch each) and names the run's epoch.
    assert bar.updates[:2] == [0.5, 0.5]
    runs = ("sar_ftp/fold0/seed0", "sar_ftp/fold1/seed0")
    assert bar.postfixes == [
        text for run in runs for text in (run, f"{run} epoch 1/2", f"{run} epoch 2/2")
    ]
    # Resumed with one run left: the bar starts at the finished run's epochs.
    (
        tmp_path / "out" / "runs" / "sar_ftp" / "fold1" / "seed0" / "metrics.json"
    ).unlink()
    run_protocol(settings)
    assert (bars[1].total, bars[1].initial) == (4, 2)
    assert bars[1].n == pytest.approx(4)


def test_unknown_or_mismatched_modalities_are_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "experiments" / "sar_ftp.yaml").read_text())
    raw["model"]["init_args"]["modalities"] = ["sar", "lidar"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"unknown modalities \['lidar'\]"):
        load_config(bad)
    raw["model"]["init_args"]["modalities"] = ["sar", "footprint", "dsm"]
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="same `modalities`"):
        load_config(bad)


def test_test_cities_follow_the_loader_order() -> None:
    from torchgeo_quake.protocols.training import _test_cities

    ids = np.array([5, 7, 5])
    cities = np.array(["a", "a", "b"])  # id 5 in two cities
    assert _test_cities(ids, ids, cities).tolist() == ["a", "a", "b"]
    assert _test_cities(None, ids, cities).size == 0
    # Another order (several processes) is mapped by id, if ids are unique.
    assert _test_cities(
        np.array([7, 5]), np.array([5, 7]), np.array(["x", "y"])
    ).tolist() == [
        "y",
        "x",
    ]
    with pytest.raises(ValueError, match="distinct ids"):
        _test_cities(np.array([7, 5, 5]), ids, cities)


def test_damaged_checkpoint_is_named(tmp_path: Path) -> None:
    from torchgeo_quake.protocols import DamagedRunError, RunSpec
    from torchgeo_quake.protocols.records import resume_checkpoint

    run = RunSpec("cv", "sar_ftp", "fold0", 0, "cv", fold=0)
    assert resume_checkpoint(run, tmp_path) is None
    last = run.directory(tmp_path) / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DamagedRunError, match=r"last\.ckpt.*Delete that file"):
        resume_checkpoint(run, tmp_path)


@pytest.mark.slow
def test_quick_cv_protocol_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`torchgeo-quake protocol cv --quick` exactly as the docs give it.

    The whole quick protocol (its own scale-0.1 scene, 5 folds × the three
    configurations of experiments/, 2 epochs each) from the repository root,
    with nothing but the output folder and data root moved to a temporary
    folder. A few minutes on 2 CPU cores.
    """
    monkeypatch.chdir(ROOT)
    out = tmp_path / "quick-cv"
    argv = ["protocol", "cv", "--quick", "--no-progress", "--out", str(out)]
    assert main([*argv, "--root", str(tmp_path / "scene")]) == 0
    records = load_runs(out)
    assert len(records) == 15
    assert {r["config"] for r in records} == {"sar_ftp", "sar_ftp_dsm", "all_inputs"}
    assert all(r["epochs"] == 2 and r["scale"] == 0.1 for r in records)
    assert not any(r["stopped_by_max_time"] for r in records)
    markdown = (out / "table_III_cv_bestf1.md").read_text()
    assert "5 folds × 1 seed(s)" in markdown
    assert "| Metric | SAR + FTP | SAR + FTP + DSM | SAR + FTP + DSM + GEM |" in (
        markdown
    )
    # Every building of the scene is tested exactly once per configuration.
    for config in ("sar_ftp", "all_inputs"):
        tested = [splits_of(r)["test"] for r in records if r["config"] == config]
        assert sum(len(t) for t in tested) == len(set().union(*tested))


def test_output_paths_are_not_an_edit_of_a_configuration() -> None:
    # The runner writes its own splits.json: where the file would put it does
    # not change results, so an output folder made before stays resumable.
    from torchgeo_quake.protocols.records import _effective

    before = {"class_path": "X", "init_args": {"root": "d", "splits_file": "a.json"}}
    after = {"class_path": "X", "init_args": {"root": "d", "splits_file": "b.json"}}
    assert _effective("data", before) == _effective("data", after)
    other = {"class_path": "X", "init_args": {"root": "e"}}
    assert _effective("data", before) != _effective("data", other)
