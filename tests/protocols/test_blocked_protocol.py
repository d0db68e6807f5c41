"""The spatially blocked protocols and the inner-city selection of ``loco``.

Planning and bad input need no training; one blocked protocol and one
inner-city ``loco`` run end to end on the session's tiny scene (one training
batch per epoch, one epoch), as the cv tests of ``test_runner.py`` do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from torchgeo_quake.cli import build_parser, main
from torchgeo_quake.protocols import (
    ProtocolSettings,
    load_config,
    load_runs,
    plan_runs,
    run_protocol,
)
from torchgeo_quake.protocols.records import check_manifest, write_manifest

ROOT = Path(__file__).resolve().parents[2]
SCALE = "0.05"  # the scale of the session's `sim_root` scene
FAST = ["--max-epochs", "1", "--limit-train-batches", "1", "--no-progress"]


def _config(folder: Path, name: str = "sar_ftp", **data: Any) -> str:
    """A copy of experiments/sar_ftp.yaml with other data settings."""
    raw = yaml.safe_load((ROOT / "experiments" / "sar_ftp.yaml").read_text())
    raw["data"]["init_args"].update(data)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _argv(protocol: str, config: str, out: Path, sim_root: Path) -> list[str]:
    """A protocol command on the tiny scene, one batch per epoch."""
    argv = ["protocol", protocol, "--configs", config, "--out", str(out)]
    return [*argv, "--quick", "--scale", SCALE, "--root", str(sim_root), *FAST]


# ------------------------------------------------------------------ planning
def test_plan_blocked_protocols() -> None:
    configs = [load_config(ROOT / "experiments" / "sar_ftp.yaml")]
    blocked = plan_runs("blocked", configs, [0, 1])
    assert [r.name for r in blocked[:2]] == [
        "sar_ftp/fold0/seed0",
        "sar_ftp/fold1/seed0",
    ]
    assert len(blocked) == 10
    assert {(r.protocol, r.strategy, r.city) for r in blocked} == {
        ("blocked", "blocked", None)
    }
    one_city = plan_runs("blocked-islahiye", configs, [0])
    assert len(one_city) == 5
    assert {(r.strategy, r.city) for r in one_city} == {("blocked", "islahiye")}


def test_settings_of_the_new_options() -> None:
    settings = ProtocolSettings("blocked", ["a.yaml"], "o").resolved()
    assert settings.block_size == 1000.0 and settings.buffer == 0.0
    assert settings.fingerprint()["block_size"] == 1000.0
    assert settings.fingerprint()["buffer"] == 0.0
    # The default blocks shrink with a simulated scene (its cities do).
    quick = ProtocolSettings("blocked", ["a.yaml"], "o", quick=True).resolved()
    assert quick.block_size == 316.0  # 1000 m × √0.1
    one_city = ProtocolSettings("blocked-islahiye", ["a.yaml"], "o").resolved()
    assert one_city.block_size == 500.0
    given = ProtocolSettings("blocked", ["a"], "o", quick=True, block_size=200.0)
    assert given.resolved().block_size == 200.0
    cv = ProtocolSettings("cv", ["a.yaml"], "o").resolved()
    assert "block_size" not in cv.fingerprint() and cv.block_size is None
    loco = ProtocolSettings("loco", ["a.yaml"], "o", selection="inner-city")
    assert loco.resolved().fingerprint()["selection"] == "inner-city"
    args = build_parser().parse_args(
        ["protocol", "blocked", "--out", "o", "--block-size", "500", "--buffer", "80"]
    )
    assert (args.block_size, args.buffer, args.selection) == (500.0, 80.0, "random")


@pytest.mark.parametrize(
    ("protocol", "options", "message"),
    [
        ("blocked", {"block_size": -5.0}, "--block-size must be a positive"),
        ("blocked", {"block_size": 0.0}, "--block-size must be a positive"),
        ("blocked", {"buffer": -1.0}, "--buffer must be a distance >= 0"),
        ("cv", {"block_size": 500.0}, "--block-size is for the blocked protocols"),
        ("cv", {"buffer": 40.0}, "--buffer is for the blocked protocols"),
        ("cv", {"selection": "inner-city"}, "for the 'loco' protocol only"),
        ("blocked", {"selection": "inner-city"}, "for the 'loco' protocol only"),
        ("loco", {"selection": "best"}, "--selection must be one of"),
        ("cv", {"seeds": [0, 0]}, r"seeds must be distinct.*\[0\] repeated"),
    ],
)
def test_bad_settings(protocol: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProtocolSettings(protocol, ["a.yaml"], "o", **options).resolved()


def test_bad_input_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["protocol", "--out", str(tmp_path / "o")]
    cases = [
        (["cv", "--seeds", "0", "0"], "seeds must be distinct"),
        (["blocked", "--block-size", "-100"], "--block-size must be a positive"),
        (["blocked", "--buffer", "-1"], "--buffer must be a distance"),
        (["cv", "--selection", "inner-city"], "'loco' protocol only"),
    ]
    for words, message in cases:
        assert main([base[0], *words, *base[1:]]) == 1
        assert message in capsys.readouterr().err
        assert not (tmp_path / "o").exists()  # nothing written


def test_other_block_size_buffer_or_selection_is_refused(tmp_path: Path) -> None:
    configs = [load_config(ROOT / "experiments" / "sar_ftp.yaml")]
    settings = ProtocolSettings("blocked", ["x"], str(tmp_path)).resolved()
    write_manifest(tmp_path, settings, configs, [])
    check_manifest(tmp_path, settings, configs)  # the same: accepted
    others = {
        "block_size": ProtocolSettings("blocked", ["x"], "o", block_size=500.0),
        "buffer": ProtocolSettings("blocked", ["x"], "o", buffer=40.0),
    }
    for key, other in others.items():
        with pytest.raises(FileExistsError, match=key):
            check_manifest(tmp_path, other.resolved(), configs)
    # loco: the two selections go to two folders; old folders read as random.
    loco = ProtocolSettings("loco", ["x"], str(tmp_path)).resolved()
    write_manifest(tmp_path, loco, configs, [])
    inner = ProtocolSettings("loco", ["x"], str(tmp_path), selection="inner-city")
    with pytest.raises(FileExistsError, match="selection"):
        check_manifest(tmp_path, inner.resolved(), configs)
    manifest = json.loads((tmp_path / "protocol.json").read_text())
    del manifest["settings"]["selection"]
    (tmp_path / "protocol.json").write_text(json.dumps(manifest))
    check_manifest(tmp_path, loco, configs)


# ------------------------------------------------- bad splits, before training
def test_unusable_block_size_or_buffer_stops_before_training(
    tmp_path: Path, sim_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    cases = [
        # Blocks as large as the cities: too few blocks for the folds.
        (["--block-size", "20000"], "spatial blocks for"),
        # A buffer larger than a city drops every training and validation
        # building of the cities a fold tests in.
        (["--block-size", "250", "--buffer", "100000"], "use a smaller --buffer"),
    ]
    for options, message in cases:
        out = tmp_path / "out"
        assert main([*_argv("blocked", config, out, sim_root), *options]) == 1
        err = capsys.readouterr().err
        assert message in err and "run sar_ftp/fold" in err
        assert not list(out.glob("runs/*/*/*/metrics.csv"))  # nothing trained


# ------------------------------------------------------------------ end to end
def test_blocked_protocol_end_to_end(
    tmp_path: Path, sim_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, num_folds=2)
    out = tmp_path / "out"
    argv = _argv("blocked", config, out, sim_root)
    assert main([*argv, "--block-size", "250", "--buffer", "80"]) == 0
    printed = capsys.readouterr().out
    assert "buffer 80 m" in printed and "sar_ftp/fold1/seed0" in printed
    records = load_runs(out)
    assert [(r["protocol"], r["config"], r["split"], r["seed"]) for r in records] == [
        ("blocked", "sar_ftp", "fold0", 0),
        ("blocked", "sar_ftp", "fold1", 0),
    ]
    for record in records:
        assert record["strategy"] == "blocked" and record["block_size"] == 250.0
        assert record["buffer"] == 80.0 and record["dropped"]["train"] > 0
        splits = json.loads((Path(record["directory"]) / "splits.json").read_text())
        assert splits["block_size"] == 250.0 and splits["dropped"] == record["dropped"]
    markdown = (out / "table_III_blocked_bestf1.md").read_text()
    assert "spatially blocked" in markdown and "2 folds × 1 seed(s)" in markdown
    manifest = json.loads((out / "protocol.json").read_text())
    assert manifest["settings"]["block_size"] == 250.0
    assert manifest["settings"]["buffer"] == 80.0


@pytest.mark.slow
def test_loco_inner_city_selection_end_to_end(tmp_path: Path, sim_root: Path) -> None:
    cities = ["islahiye", "nurdagi", "osmaniye"]
    config = _config(tmp_path, cities=cities)
    settings = ProtocolSettings(
        "loco",
        [config],
        str(tmp_path / "out"),
        scale=float(SCALE),
        root=str(sim_root),
        max_epochs=1,
        limit_train_batches=1,
        progress=False,
        selection="inner-city",
    )
    result = run_protocol(settings)
    assert len(result.trained) == 3
    for record in load_runs(tmp_path / "out"):
        assert record["selection"] == "inner-city"
        val_city = record["val_city"]
        assert val_city in cities and val_city != record["test_city"]
        splits = json.loads((Path(record["directory"]) / "splits.json").read_text())
        assert set(splits["val"]["city"]) == {val_city}
        assert val_city not in set(splits["train"]["city"])
        assert set(splits["test"]["city"]) == {record["test_city"]}
    assert (tmp_path / "out" / "table_IV_loco_bestf1.md").is_file()
