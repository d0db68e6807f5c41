"""The sample contract of docs/dev/contracts.md, end to end with worker processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchgeo.datasets import stack_samples

from torchgeo_quake.datasets import (
    CSKSAR,
    GEM_FEATURE_NAMES,
    CartoSatDSM,
    GEMExposure,
    OSMBuildings,
)
from torchgeo_quake.samplers import BuildingCentroidSampler

GEM = Path(__file__).parents[1] / "data" / "gem" / "points.csv"
#: Where the GEM fixture's three locations are moved, beside the scene's buildings
#: (the fixture itself lies 190 km away, beyond GEMExposure's max_distance).
NEAR_SCENE = {"36.9,37.58": "39.001,37.1355", "36.95,37.58": "39.003,37.1358"}
NEAR_SCENE["36.9,37.6"] = "39.0,37.136"


def test_every_key_of_the_sample_contract(scene_dir: Path, tmp_path: Path) -> None:
    text = GEM.read_text(encoding="utf-8")
    for old, new in NEAR_SCENE.items():
        text = text.replace(f",{old},", f",{new},")
    (tmp_path / "gem.csv").write_text(text, encoding="utf-8")
    exposure = GEMExposure(tmp_path / "gem.csv")
    assert len(exposure) == 3
    footprints = OSMBuildings(
        scene_dir / "buildings.gpkg",
        damage=scene_dir / "destroyed.geojson",
        city="nurdagi",
        exposure=exposure,
    )
    dataset = (
        CSKSAR(scene_dir / "sar.tif", radiometry="db")
        & CartoSatDSM(scene_dir / "dsm_4326.tif")
        & footprints
    )
    sampler = BuildingCentroidSampler(dataset, size=32, negatives_per_positive=None)
    assert len(sampler) >= 4
    expected = sampler.buildings.set_index("building_id")
    loader = DataLoader(
        dataset,
        sampler=sampler,
        batch_size=3,
        collate_fn=stack_samples,
        num_workers=2,
    )
    seen = []
    n_features = len(GEM_FEATURE_NAMES)
    for batch in loader:
        b = len(batch["label"])
        for key, dtype, shape in (
            ("sar", torch.float32, (b, 1, 32, 32)),
            ("dsm", torch.float32, (b, 1, 32, 32)),
            ("footprint", torch.float32, (b, 1, 32, 32)),
            ("gem", torch.float32, (b, n_features)),
            ("label", torch.int64, (b,)),
            ("building_id", torch.int64, (b,)),
            ("centroid", torch.float64, (b, 2)),
        ):
            assert batch[key].dtype == dtype, key
            assert tuple(batch[key].shape) == shape, key
        assert batch["city"] == ["nurdagi"] * b
        assert len(batch["crs"]) == b and len(batch["bounds"]) == b
        assert set(batch["footprint"].unique().tolist()) <= {0.0, 1.0}
        assert torch.isfinite(batch["sar"]).all() and torch.isfinite(batch["dsm"]).all()
        assert float(batch["dsm"].amin()) == 0.0  # relative heights
        for i, bid in enumerate(batch["building_id"].tolist()):
            row = footprints.buildings.index[footprints.buildings["building_id"] == bid]
            r = int(row[0])
            assert int(batch["label"][i]) == int(footprints.buildings["label"][r])
            np.testing.assert_allclose(
                batch["centroid"][i].numpy(),
                [expected.loc[bid, "cx"], expected.loc[bid, "cy"]],
            )
            assert footprints.gem is not None
            np.testing.assert_array_equal(batch["gem"][i].numpy(), footprints.gem[r])
            # The footprint is the building's own mask, at the window centre.
            assert float(batch["footprint"][i, 0, 14:18, 14:18].sum()) > 0
            # Bounds: the 32-pixel window, centred on the centroid to half a pixel.
            x, y, _ = batch["bounds"][i]
            centre = np.array([(x.start + x.stop) / 2, (y.start + y.stop) / 2])
            assert round((x.stop - x.start) / x.step) == 32
            assert np.abs(centre - batch["centroid"][i].numpy()).max() <= 1.25 + 1e-6
        seen.extend(batch["building_id"].tolist())
    assert sorted(seen) == sorted(sampler.buildings["building_id"])
    labels = dict(
        zip(
            footprints.buildings["building_id"],
            footprints.buildings["label"],
            strict=True,
        )
    )
    assert {labels[b] for b in seen} == {0, 1}
