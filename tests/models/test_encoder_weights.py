"""Loading pretrained ResNet-18 weights into the SAR encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import resnet18

from torchgeo_quake.models import LateFusionNet, load_resnet18_state_dict


@pytest.fixture(scope="module")
def rgb_resnet() -> torch.nn.Module:
    """A stock 3-channel torchvision ResNet-18 with a 10-class head."""
    torch.manual_seed(0)
    model = resnet18(weights=None, num_classes=10)
    # Non-trivial batch-norm statistics, so that loading them is visible.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_plain_torchvision_file_with_rgb_conv1(
    tmp_path: Path, rgb_resnet: torch.nn.Module
) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(rgb_resnet.state_dict(), path)
    state = load_resnet18_state_dict(path)
    assert "fc.weight" not in state
    assert state["conv1.weight"].shape == (64, 1, 7, 7)
    torch.testing.assert_close(
        state["conv1.weight"],
        rgb_resnet.state_dict()["conv1.weight"].sum(1, keepdim=True),
    )
    # The SAR encoder now responds to a band as the RGB net to that band on 3 channels.
    model = LateFusionNet(["sar", "footprint"], sar_weights=str(path)).eval()
    assert model.encoder is not None
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        embed = model.encoder(torch.cat([x, torch.zeros_like(x)], dim=1))[:, :512]
        rgb_resnet.fc = torch.nn.Identity()
        ref = rgb_resnet(x.repeat(1, 3, 1, 1))
    torch.testing.assert_close(embed, ref, atol=1e-4, rtol=1e-4)
    # The footprint encoder is untouched (still the random initialisation).
    plain = model.plain_state_dict()
    assert not torch.equal(
        plain["encoders.footprint.layer1.0.conv1.weight"],
        plain["encoders.sar.layer1.0.conv1.weight"],
    )


@pytest.mark.parametrize(
    "prefix", ["module.", "backbone.", "encoder.", "model.backbone."]
)
@pytest.mark.parametrize("wrapper", [None, "state_dict", "model"])
def test_prefixes_and_wrappers(
    tmp_path: Path, rgb_resnet: torch.nn.Module, prefix: str, wrapper: str | None
) -> None:
    sd = {prefix + k: v for k, v in rgb_resnet.state_dict().items()}
    obj = sd if wrapper is None else {wrapper: sd, "epoch": 3, "arch": "resnet18"}
    path = tmp_path / "weights.ckpt"
    torch.save(obj, path)
    state = load_resnet18_state_dict(path)
    torch.testing.assert_close(
        state["layer4.1.bn2.running_var"], sd[prefix + "layer4.1.bn2.running_var"]
    )


def test_single_channel_file_is_taken_as_is(tmp_path: Path) -> None:
    donor = LateFusionNet(["sar"], fused=False)
    assert donor.encoders is not None
    path = tmp_path / "sar.pt"
    torch.save(donor.encoders["sar"].state_dict(), path)
    model = LateFusionNet(["sar", "footprint", "dsm"], sar_weights=path)
    plain = model.plain_state_dict()
    for key, value in donor.encoders["sar"].state_dict().items():
        assert torch.equal(plain[f"encoders.sar.{key}"], value), key


def test_foreign_keys_name_file_and_keys(
    tmp_path: Path, rgb_resnet: torch.nn.Module
) -> None:
    sd = dict(rgb_resnet.state_dict())
    sd["head.extra.weight"] = torch.zeros(3)
    del sd["layer2.0.downsample.0.weight"]
    path = tmp_path / "foreign.pth"
    torch.save(sd, path)
    with pytest.raises(ValueError) as err:
        load_resnet18_state_dict(path)
    message = str(err.value)
    assert str(path) in message
    assert "head.extra.weight" in message
    assert "layer2.0.downsample.0.weight" in message
    with pytest.raises(ValueError, match=r"foreign\.pth"):
        LateFusionNet(["sar", "footprint"], sar_weights=str(path))


def test_wrong_shapes_name_file_and_keys(
    tmp_path: Path, rgb_resnet: torch.nn.Module
) -> None:
    sd = dict(rgb_resnet.state_dict())
    sd["layer1.0.conv1.weight"] = torch.zeros(64, 64, 5, 5)
    path = tmp_path / "shapes.pth"
    torch.save(sd, path)
    with pytest.raises(
        ValueError, match=r"shapes\.pth.*layer1\.0\.conv1\.weight.*\(64, 64, 3, 3\)"
    ):
        load_resnet18_state_dict(path)


def test_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="no state dict"):
        load_resnet18_state_dict(path)
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.txt"):
        load_resnet18_state_dict(text)
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        load_resnet18_state_dict(tmp_path / "missing.pth")


def test_sar_weights_need_sar(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'sar' is not among modalities"):
        LateFusionNet(["footprint", "dsm"], sar_weights=str(tmp_path / "x.pth"))


def test_legacy_file_without_batch_counters(
    tmp_path: Path, rgb_resnet: torch.nn.Module
) -> None:
    # Old (PyTorch 0.4, pre-zip) DataParallel checkpoints, as shipped by SAR-HUB's
    # predecessors, have no num_batches_tracked buffers.
    sd = {
        "module." + k: v
        for k, v in rgb_resnet.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    path = tmp_path / "legacy.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    state = load_resnet18_state_dict(path)
    assert int(state["bn1.num_batches_tracked"]) == 0
    torch.testing.assert_close(
        state["layer3.0.bn1.weight"], sd["module.layer3.0.bn1.weight"]
    )
