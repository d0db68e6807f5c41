"""LateFusionNet: shapes, equivalence of the fused and plain layouts, errors."""

from __future__ import annotations

import pytest
import torch

from torchgeo_quake.models import LateFusionNet, canonical_modalities

MODALITY_SETS = [
    ["sar", "footprint"],
    ["sar", "footprint", "dsm"],
    ["sar", "footprint", "dsm", "gem"],
]
GEM = 7


def _inputs(batch: int = 16, gem: int = GEM, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "sar": torch.randn(batch, 1, 32, 32, generator=g),
        "footprint": (torch.rand(batch, 1, 32, 32, generator=g) > 0.5).float(),
        "dsm": torch.randn(batch, 1, 32, 32, generator=g),
        "gem": torch.randn(batch, gem, generator=g),
    }


@pytest.mark.parametrize("modalities", MODALITY_SETS)
@pytest.mark.parametrize("fused", [True, False])
def test_output_shape(modalities: list[str], fused: bool) -> None:
    model = LateFusionNet(modalities, gem_features=GEM, fused=fused)
    x = _inputs(4)
    out = model(**{m: x[m] for m in modalities})
    assert out.shape == (4,)
    assert out.dtype == torch.float32
    model.eval()
    with torch.no_grad():
        assert model(**x).shape == (4,)  # extra inputs are ignored


@pytest.mark.parametrize("modalities", [*MODALITY_SETS, ["gem"], ["dsm", "gem"]])
def test_fused_equals_plain(modalities: list[str]) -> None:
    torch.manual_seed(0)
    fused = LateFusionNet(modalities, gem_features=GEM)
    torch.manual_seed(0)
    plain = LateFusionNet(modalities, gem_features=GEM, fused=False)
    # Same seed, same initial weights.
    converted = fused.plain_state_dict()
    for key, value in plain.state_dict().items():
        if key != "_extra_state":
            assert torch.equal(converted[key], value), key
    # Weights of the plain model loaded into a fresh fused one: same function.
    other = LateFusionNet(modalities, gem_features=GEM)
    other.load_plain_state_dict(plain.state_dict())
    x = _inputs()
    for train in (True, False):
        other.train(train)
        plain.train(train)
        torch.manual_seed(1)  # identical dropout masks
        a = other(**x)
        torch.manual_seed(1)
        b = plain(**x)
        # float32, logits of magnitude ~1. In train mode, batch norm over 16
        # 1x1 maps amplifies rounding (the stock model differs by ~1e-5 from
        # itself between memory formats); float64 below is exact to ~1e-14.
        atol = 5e-5 if train else 1e-5
        torch.testing.assert_close(a, b, atol=atol, rtol=1e-5)
    # And back: the plain layout of the fused model loads into a plain model.
    plain.load_state_dict(fused.plain_state_dict())
    fused.eval()
    plain.eval()
    torch.testing.assert_close(fused(**x), plain(**x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_fused_equals_plain_float64(train: bool) -> None:
    modalities = ["sar", "footprint", "dsm", "gem"]
    plain = LateFusionNet(modalities, gem_features=GEM, fused=False).double()
    fused = LateFusionNet(modalities, gem_features=GEM).double()
    fused.load_plain_state_dict(plain.state_dict())
    plain.train(train)
    fused.train(train)
    x = {k: v.double() for k, v in _inputs().items()}
    torch.manual_seed(1)
    a = fused(**x)
    torch.manual_seed(1)
    b = plain(**x)
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_gradients_equal_plain() -> None:
    # In float64: in train mode, batch norm over a few 1x1 maps makes float32
    # gradients ill-conditioned (the stock model's own gradients differ by up to
    # ~5% between NCHW and channels-last), which would hide real differences.
    modalities = ["sar", "footprint", "dsm", "gem"]
    plain = LateFusionNet(modalities, gem_features=GEM, fused=False, dropout=0.0)
    fused = LateFusionNet(modalities, gem_features=GEM, dropout=0.0)
    fused.load_plain_state_dict(plain.state_dict())
    plain.double()
    fused.double()
    x = {k: v.double() for k, v in _inputs().items()}
    y = (torch.arange(16) % 3 == 0).double()
    for model in (plain, fused):
        torch.nn.functional.binary_cross_entropy_with_logits(model(**x), y).backward()
    fused_grads = LateFusionNet(modalities, gem_features=GEM, dropout=0.0).double()
    with torch.no_grad():
        for p, q in zip(fused_grads.parameters(), fused.parameters(), strict=True):
            assert q.grad is not None
            p.copy_(q.grad)
    grads = fused_grads.plain_state_dict()
    for name, p in plain.named_parameters():
        assert p.grad is not None
        scale = float(p.grad.abs().max()) + 1e-30
        torch.testing.assert_close(
            grads[name] / scale, p.grad / scale, atol=1e-9, rtol=0
        )


def test_modality_order_is_canonical() -> None:
    a = LateFusionNet(["footprint", "sar"], gem_features=GEM)
    assert a.modalities == ("sar", "footprint")
    assert canonical_modalities(["gem", "dsm", "sar"]) == ("sar", "dsm", "gem")


@pytest.mark.parametrize(
    ("modalities", "match"),
    [
        ([], "no modality"),
        (["sar", "sar"], "duplicate"),
        (["sar", "optical"], "unknown"),
        ("sar", "list of names"),
    ],
)
def test_invalid_modalities(modalities: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LateFusionNet(modalities)


def test_invalid_hyperparameters() -> None:
    with pytest.raises(ValueError, match="gem_features"):
        LateFusionNet(gem_features=0)
    with pytest.raises(ValueError, match="dropout"):
        LateFusionNet(dropout=1.0)
    with pytest.raises(ValueError, match="hidden_dim"):
        LateFusionNet(hidden_dim=0)


def test_missing_and_malformed_inputs() -> None:
    model = LateFusionNet(["sar", "footprint", "dsm", "gem"], gem_features=GEM)
    x = _inputs(2)
    with pytest.raises(ValueError, match=r"missing input\(s\) \['dsm'\]"):
        model(sar=x["sar"], footprint=x["footprint"], gem=x["gem"])
    with pytest.raises(ValueError, match=r"'sar' must have shape \(B, 1, H, W\)"):
        model(**{**x, "sar": torch.randn(2, 2, 32, 32)})
    with pytest.raises(ValueError, match="differ in shape"):
        model(**{**x, "dsm": torch.randn(2, 1, 16, 16)})
    with pytest.raises(ValueError, match=r"'gem' must have shape \(B, 7\)"):
        model(**{**x, "gem": torch.randn(2, GEM + 1)})
    with pytest.raises(ValueError, match="batch size"):
        model(**{**x, "gem": torch.randn(3, GEM)})


def test_loading_other_modalities_fails_with_both_sets() -> None:
    small = LateFusionNet(["sar", "footprint"], gem_features=GEM)
    large = LateFusionNet(["sar", "footprint", "dsm"], gem_features=GEM)
    with pytest.raises(
        ValueError, match=r"\['sar', 'footprint'\].*\['sar', 'footprint', 'dsm'\]"
    ):
        large.load_state_dict(small.state_dict())
    with pytest.raises(ValueError, match="modalities"):
        large.load_plain_state_dict(small.plain_state_dict())


def test_loading_other_layout_or_gem_width_fails() -> None:
    fused = LateFusionNet(["sar", "gem"], gem_features=GEM)
    plain = LateFusionNet(["sar", "gem"], gem_features=GEM, fused=False)
    with pytest.raises(ValueError, match="load_plain_state_dict"):
        fused.load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match="GEM features"):
        LateFusionNet(["sar", "gem"], gem_features=GEM + 1).load_state_dict(
            fused.state_dict()
        )


def test_load_encoder_state_dict_only_touches_that_encoder() -> None:
    model = LateFusionNet(["sar", "footprint", "dsm"], gem_features=GEM)
    before = model.plain_state_dict()
    donor = LateFusionNet(["dsm"], gem_features=GEM, fused=False)
    assert donor.encoders is not None
    model.load_encoder_state_dict("footprint", donor.encoders["dsm"].state_dict())
    after = model.plain_state_dict()
    for key, value in after.items():
        if key == "_extra_state":
            continue
        if key.startswith("encoders.footprint."):
            sub = key[len("encoders.footprint.") :]
            assert torch.equal(value, donor.encoders["dsm"].state_dict()[sub]), key
        else:
            assert torch.equal(value, before[key]), key
    with pytest.raises(ValueError, match="no encoder for 'gem'"):
        model.load_encoder_state_dict("gem", {})
