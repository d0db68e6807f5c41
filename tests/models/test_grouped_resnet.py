"""GroupedConv2d / GroupedResNet18 compute the same function as plain layers."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchgeo_quake.models import (
    GroupedConv2d,
    GroupedResNet18,
    merge_resnet_state_dicts,
    resnet18_encoder,
    split_resnet_state_dict,
)


@pytest.mark.parametrize(
    ("cin", "cout", "k", "s", "p", "h", "w"),
    [
        (3, 5, 3, 1, 1, 1, 1),  # single pixel, centre tap (dense path)
        (3, 5, 3, 2, 1, 2, 2),  # 2x2 -> 1x1, stride 2 (dense path)
        (4, 6, 3, 1, 1, 2, 2),  # 2x2 -> 2x2 (dense path)
        (2, 3, 3, 1, 1, 2, 3),  # non-square tiny map (dense path)
        (3, 5, 1, 2, 0, 2, 2),  # 1x1 downsample (pointwise path)
        (3, 5, 1, 2, 0, 8, 8),  # pointwise, larger map
        (4, 6, 3, 2, 1, 8, 8),  # grouped convolution path
        (1, 4, 7, 2, 3, 16, 16),  # stem
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_grouped_conv_matches_conv2d(
    cin: int, cout: int, k: int, s: int, p: int, h: int, w: int, channels_last: bool
) -> None:
    torch.manual_seed(0)
    groups = 3
    conv = GroupedConv2d(groups, cin, cout, k, s, p)
    x = torch.randn(5, groups * cin, h, w)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    w2 = conv.weight.detach().clone().requires_grad_()
    out = conv(x1)
    ref = F.conv2d(x2, w2, None, s, p, 1, groups)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(ref)
    out.backward(grad)
    ref.backward(grad)
    assert conv.weight.grad is not None and x1.grad is not None
    torch.testing.assert_close(conv.weight.grad, w2.grad, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-4, rtol=1e-5)


def test_grouped_conv_separate_groups() -> None:
    # Each group only sees its own input channels and own weights.
    torch.manual_seed(0)
    conv = GroupedConv2d(2, 3, 4, 3, 1, 1)
    x = torch.randn(2, 6, 2, 2)
    out = conv(x)
    for g in range(2):
        ref = F.conv2d(
            x[:, 3 * g : 3 * (g + 1)], conv.weight[4 * g : 4 * (g + 1)], None, 1, 1
        )
        torch.testing.assert_close(out[:, 4 * g : 4 * (g + 1)], ref)


def _plain_outputs(plains: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    return torch.cat([m(x[:, i : i + 1]) for i, m in enumerate(plains)], dim=1)


@pytest.fixture(scope="module")
def encoders() -> tuple[GroupedResNet18, list[nn.Module]]:
    torch.manual_seed(0)
    plains = [resnet18_encoder() for _ in range(3)]
    grouped = GroupedResNet18(3)
    grouped.load_plain_state_dicts([m.state_dict() for m in plains])
    return grouped, plains


@pytest.mark.parametrize(
    ("size", "train", "channels_last"),
    [
        (32, True, True),
        (32, False, True),
        (32, True, False),
        (32, False, False),
        (20, True, True),
        (48, False, True),
    ],
)
def test_grouped_resnet_matches_plain(
    encoders: tuple[GroupedResNet18, list[nn.Module]],
    size: int,
    train: bool,
    channels_last: bool,
) -> None:
    grouped, plains = copy.deepcopy(encoders)
    grouped.channels_last = channels_last
    grouped.train(train)
    for m in plains:
        m.train(train)
    x = torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(size))
    out = grouped(x)
    ref = _plain_outputs(plains, x)
    assert out.shape == (8, 3 * 512)
    # Embeddings reach ~7. In train mode batch norm over a few 1x1 maps amplifies
    # rounding: the stock network itself differs by ~1e-4 between NCHW and
    # channels-last; in eval mode the results agree to ~1e-6.
    atol = 5e-4 if train else 1e-5
    torch.testing.assert_close(out, ref, atol=atol, rtol=1e-5)
    if train:
        # Running statistics were updated identically.
        for sd_g, sd_p in zip(grouped.plain_state_dicts(), plains, strict=True):
            for key, value in sd_p.state_dict().items():
                if "running" in key:
                    torch.testing.assert_close(sd_g[key], value, atol=1e-6, rtol=1e-5)


def test_grouped_resnet_gradients_match_plain() -> None:
    # float64, see test_late_fusion.test_gradients_equal_plain.
    torch.manual_seed(0)
    grouped = GroupedResNet18(2).double()
    plains = [resnet18_encoder().double() for _ in range(2)]
    grouped.load_plain_state_dicts([m.state_dict() for m in plains])
    x = torch.randn(8, 2, 32, 32, dtype=torch.float64)
    target = torch.randn(8, 2 * 512, dtype=torch.float64)
    F.mse_loss(grouped(x), target).backward()
    F.mse_loss(_plain_outputs(plains, x), target).backward()
    grads = {n: p.grad for n, p in grouped.named_parameters()}
    merged = merge_resnet_state_dicts(
        [{n: p.grad for n, p in m.named_parameters()} for m in plains]
    )
    assert set(merged) == set(grads)
    for name, grad in grads.items():
        assert grad is not None
        scale = float(merged[name].abs().max()) + 1e-30
        torch.testing.assert_close(
            grad / scale, merged[name] / scale, atol=1e-9, rtol=0
        )


def test_grouped_init_equals_plain_init_for_same_seed() -> None:
    torch.manual_seed(123)
    grouped = GroupedResNet18(3)
    after_grouped = torch.rand(1)
    torch.manual_seed(123)
    plains = [resnet18_encoder() for _ in range(3)]
    after_plain = torch.rand(1)
    for sd_g, m in zip(grouped.plain_state_dicts(), plains, strict=True):
        for key, value in m.state_dict().items():
            assert torch.equal(sd_g[key], value), key
    # The random stream continues identically.
    assert torch.equal(after_grouped, after_plain)


def test_state_dict_round_trip() -> None:
    plains = [resnet18_encoder().state_dict() for _ in range(3)]
    merged = merge_resnet_state_dicts(plains)
    back = split_resnet_state_dict(merged, 3)
    for a, b in zip(plains, back, strict=True):
        assert set(a) == set(b)
        for key in a:
            assert torch.equal(a[key], b[key])
    grouped = GroupedResNet18(3)
    assert set(grouped.state_dict()) == set(merged)


def test_merge_drops_fc_and_rejects_mismatch() -> None:
    sd = resnet18_encoder().state_dict()
    with_fc = {**sd, "fc.weight": torch.zeros(2, 512)}
    assert "fc.weight" not in merge_resnet_state_dicts([sd, with_fc])
    broken = dict(sd)
    broken.pop("bn1.weight")
    with pytest.raises(ValueError, match=r"bn1\.weight"):
        merge_resnet_state_dicts([sd, broken])
    with pytest.raises(ValueError, match="no state dict"):
        merge_resnet_state_dicts([])
    with pytest.raises(ValueError, match="divisible"):
        split_resnet_state_dict(sd, 5)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="groups"):
        GroupedResNet18(0)
    with pytest.raises(ValueError, match="in_channels"):
        GroupedResNet18(2, in_channels=0)
    with pytest.raises(ValueError, match="in_channels"):
        resnet18_encoder(0)
    with pytest.raises(ValueError, match="expected 2 state dicts"):
        GroupedResNet18(2).load_plain_state_dicts([resnet18_encoder().state_dict()])


def test_inference_mode_then_training() -> None:
    # Matrices cached under inference mode must be usable by autograd later
    # (e.g. trainer.validate() before trainer.fit()).
    conv = GroupedConv2d(2, 3, 4, 3, 1, 1)
    x = torch.randn(2, 6, 2, 2)
    with torch.inference_mode():
        conv(x)
    conv(x.clone().requires_grad_()).sum().backward()
    assert conv.weight.grad is not None
    copy.deepcopy(conv)  # and deep copies work


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_cached_matrix_follows_weight_updates(context: type) -> None:
    torch.manual_seed(0)
    conv = GroupedConv2d(3, 4, 5, 3, 2, 1)  # 2x2 -> 1x1 (dense path)
    x = torch.randn(4, 12, 2, 2)
    with context():
        first = conv(x)
        again = conv(x)
    torch.testing.assert_close(first, again)
    with torch.no_grad():
        conv.weight.mul_(-2)  # in place, as an optimizer step
    with context():
        after = conv(x)
    ref = F.conv2d(x, conv.weight.detach(), None, 2, 1, 1, 3)
    torch.testing.assert_close(after, ref, atol=1e-5, rtol=1e-5)
    conv.load_state_dict({"weight": torch.randn_like(conv.weight)})
    with context():
        after = conv(x)
    ref = F.conv2d(x, conv.weight.detach(), None, 2, 1, 1, 3)
    torch.testing.assert_close(after, ref, atol=1e-5, rtol=1e-5)
