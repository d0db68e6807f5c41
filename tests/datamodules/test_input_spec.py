"""The data module's input specification (radiometry, SAR pixel size, patch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchgeo_quake.datamodules import KahramanmarasDamageDataModule, sar_pixel_size

CSK = Path(__file__).resolve().parents[1] / "data" / "csk"
UTM_2_5M = CSK / "sar_amplitude.tif"  # EPSG:32637, 2.5 m
UTM_0_5M = CSK / "CAPELLA_C05_SP_GEO_HH_20230210073142_20230210073156.tif"
GEOGRAPHIC = CSK / "2023-02-09-07-47-21_UMBRA-04_GEC.tif"  # EPSG:4326


def test_pixel_size_in_metres() -> None:
    assert sar_pixel_size({"a": UTM_2_5M}) == 2.5
    assert sar_pixel_size({"a": UTM_2_5M, "b": UTM_2_5M}) == 2.5
    assert sar_pixel_size({"c": UTM_0_5M}) == 0.5
    assert sar_pixel_size({}) is None


def test_pixel_size_unknown_for_mixed_or_geographic() -> None:
    with pytest.warns(
        UserWarning, match=r"different pixel sizes.*'a': 2\.5.*'b': 0\.5"
    ):
        assert sar_pixel_size({"a": UTM_2_5M, "b": UTM_0_5M}) is None
    with pytest.warns(UserWarning, match=r"UMBRA.*geographic CRS.*reproject"):
        assert sar_pixel_size({"a": GEOGRAPHIC}) is None


@pytest.mark.parametrize("radiometry", ["db", "amplitude"])
def test_input_spec_of_the_simulated_scene(sim_root: Path, radiometry: str) -> None:
    dm = KahramanmarasDamageDataModule(
        root=sim_root, scale=0.05, cities=["nurdagi"], radiometry=radiometry
    )
    spec = dm.input_spec()
    assert spec == {"radiometry": radiometry, "sar_res": 2.5, "patch_size": 32}
    assert isinstance(spec["sar_res"], float)
    # A copy: changing it does not change the data module's.
    spec["radiometry"] = "x"
    assert dm.input_spec()["radiometry"] == radiometry


def test_blocked_strategy_in_the_data_module(sim_root: Path, tmp_path: Path) -> None:
    import json

    from torchgeo_quake.datamodules import spatial_blocks

    dm = KahramanmarasDamageDataModule(
        root=sim_root,
        scale=0.05,
        modalities=["sar", "footprint"],
        strategy="blocked",
        block_size=250.0,
        splits_file=str(tmp_path / "splits.json"),
    )
    dm.setup("fit")
    dataset = dm.dataset
    assert dataset is not None
    blocks = spatial_blocks(dataset.centroids, dataset.city_of, 250.0)  # type: ignore[attr-defined]
    seen = {k: set(blocks[v]) for k, v in dm.indices.items()}
    assert seen["train"] and seen["val"] and seen["test"]
    assert not seen["train"] & seen["test"] and not seen["val"] & seen["test"]
    assert not seen["train"] & seen["val"]
    saved = json.loads((tmp_path / "splits.json").read_text())
    assert saved["strategy"] == "blocked" and saved["block_size"] == 250.0
