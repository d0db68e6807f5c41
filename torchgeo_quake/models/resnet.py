"""ResNet-18 encoders for small single-band patches, plain and fused.

The late-fusion model runs one ResNet-18 per raster modality on 32×32 patches.
Run one after the other, the encoders issue three times as many kernels as
needed, and their last stages work on 2×2 and 1×1 feature maps, where oneDNN
(PyTorch's CPU convolution) spends most of a training step: a 3×3 convolution
with padding on a 1×1 map is a product with the kernel's centre tap, but its
backward pass costs as much as the whole first stage.

:class:`GroupedResNet18` computes ``M`` independent ResNet-18s at once: the
modalities are stacked as channels, every convolution is grouped (``groups=M``)
and every batch norm covers ``M × C`` channels. Its :class:`GroupedConv2d`
evaluates convolutions on tiny maps (``H·W·H'·W' <= 16``) and 1×1 convolutions
as batched matrix products, which skip the padding and are several times
faster on CPU in both passes; larger maps use the grouped convolution. It is
the same function as ``M`` stock torchvision ResNet-18s (up to float rounding):
its state dict has torchvision's key names, each tensor being the concatenation
along the first dimension of the ``M`` plain tensors (see
:func:`merge_resnet_state_dicts` and :func:`split_resnet_state_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet18

__all__ = [
    "GroupedConv2d",
    "GroupedResNet18",
    "merge_resnet_state_dicts",
    "resnet18_encoder",
    "split_resnet_state_dict",
]

#: Width of the embedding produced by a ResNet-18 encoder.
RESNET18_EMBED_DIM = 512


def resnet18_encoder(in_channels: int = 1) -> nn.Module:
    """Build a stock torchvision ResNet-18 encoder with ``in_channels`` inputs.

    The first convolution is replaced by one with ``in_channels`` input channels
    (initialised like torchvision's: Kaiming normal, fan-out) and the classifier
    by :class:`~torch.nn.Identity`, so the module maps ``(B, in_channels, H, W)``
    to ``(B, 512)``. No weights are downloaded.

    Args:
        in_channels: Number of input channels.

    Returns:
        The encoder.

    Raises:
        ValueError: If *in_channels* is not positive.

    .. versionadded:: 0.1
    """
    if in_channels < 1:
        raise ValueError(f"in_channels must be positive, got {in_channels}")
    model: nn.Module = resnet18(weights=None)
    conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")
    model.conv1 = conv1
    model.fc = nn.Identity()
    return model


class GroupedConv2d(nn.Conv2d):
    """``groups`` independent bias-free convolutions run as one grouped convolution.

    The weight has the layout of :class:`~torch.nn.Conv2d` with
    ``groups=groups``: ``(groups * out_channels, in_channels, k, k)``, group ``g``
    owning rows ``g * out_channels:(g + 1) * out_channels``; the module computes
    the same function as that :class:`~torch.nn.Conv2d`. The computation depends
    on the input size: 1×1 kernels without padding and convolutions of tiny
    maps (``H * W * H' * W' <= dense_max``, e.g. the last two ResNet stages on
    32×32 patches) are batched matrix products that skip the padding; other
    inputs go through :func:`torch.nn.functional.conv2d`.

    .. versionadded:: 0.1
    """

    #: Largest ``H * W * H' * W'`` computed as a dense matrix product.
    dense_max = 16

    def __init__(
        self,
        groups: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        """Initialize a new GroupedConv2d instance.

        Args:
            groups: Number of independent convolutions.
            in_channels: Input channels of each convolution.
            out_channels: Output channels of each convolution.
            kernel_size: Square kernel size.
            stride: Stride.
            padding: Zero padding on each side.
        """
        super().__init__(
            groups * in_channels,
            groups * out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            groups=groups,
            bias=False,
        )
        self._pad = padding
        self._select_cache: dict[tuple[int, int, str, str], Tensor] = {}
        self._matrix_cache: tuple[tuple[Any, ...], Tensor] | None = None

    def _pointwise(self, x: Tensor) -> Tensor:
        """1×1 convolution without padding, as a batched matrix product.

        Args:
            x: Input of shape ``(B, groups * in, H, W)``.

        Returns:
            Output of shape ``(B, groups * out, H', W')``.
        """
        g = self.groups
        s = self.stride[0]
        cin = self.in_channels // g
        cout = self.out_channels // g
        x = x[:, :, ::s, ::s]
        b, _, h, w = x.shape
        xs = x.reshape(b, g, cin, h * w).permute(1, 0, 3, 2).reshape(g, b * h * w, cin)
        out = torch.bmm(xs, self.weight.reshape(g, cout, cin).transpose(1, 2))
        return out.view(g, b, h, w, cout).permute(1, 0, 4, 2, 3).reshape(b, -1, h, w)

    def _dense(self, x: Tensor, ho: int, wo: int) -> Tensor:
        """Convolution of a tiny map as one dense matrix product per group.

        On a tiny map the convolution is best computed as the linear map it
        is, from the ``in × H × W`` input to the ``out × H' × W'`` output: its
        matrix holds only the kernel taps that meet the input, so no work is
        spent on padding. The matrix is built from the weight by a product with
        a constant 0/1 tap-selection matrix, laid out so that neither pass
        copies it (and a matrix product is deterministic on every device).

        Args:
            x: Input of shape ``(B, groups * in, H, W)``.
            ho: Output height.
            wo: Output width.

        Returns:
            Output of shape ``(B, groups * out, ho, wo)``.
        """
        g = self.groups
        b, _, h, w = x.shape
        cin = self.in_channels // g
        cout = self.out_channels // g
        matrix = self._matrix(h, w, ho, wo, x.dtype)
        if ho * wo == 1:
            xs = x.reshape(b, g, cin * h * w).permute(1, 2, 0)
        else:
            xs = x.reshape(b, g, cin, h * w).permute(1, 3, 2, 0)
            xs = xs.reshape(g, h * w * cin, b)
        out = torch.bmm(matrix, xs)  # (g, out * H'W', B)
        return out.permute(2, 0, 1).reshape(b, g * cout, ho, wo)

    def _matrix(self, h: int, w: int, ho: int, wo: int, dtype: torch.dtype) -> Tensor:
        """The dense matrix of the convolution on an ``h × w`` map.

        Without autograd (inference), the matrix is cached until the weight
        changes.

        Args:
            h: Input height.
            w: Input width.
            ho: Output height.
            wo: Output width.
            dtype: Data type of the input.

        Returns:
            Matrix of shape ``(groups, out * H'W', in * HW)`` when ``H'W' > 1``,
            else ``(groups, out, in * HW)`` (input flattened as ``(in, H, W)``).
        """
        weight = self.weight
        key = (h, w, str(dtype), str(weight.device), weight.data_ptr(), weight._version)
        caching = not torch.is_grad_enabled()
        if caching and self._matrix_cache is not None and self._matrix_cache[0] == key:
            return self._matrix_cache[1]
        if not caching:
            self._matrix_cache = None
            return self._build_matrix(h, w, ho, wo, dtype)
        # A normal tensor even under inference mode, so that it can be reused
        # anywhere (inference tensors cannot enter autograd or be deep-copied).
        with torch.inference_mode(False), torch.no_grad():
            matrix = self._build_matrix(h, w, ho, wo, dtype)
        self._matrix_cache = (key, matrix)
        return matrix

    def _build_matrix(
        self, h: int, w: int, ho: int, wo: int, dtype: torch.dtype
    ) -> Tensor:
        """Build the dense matrix of the convolution (see :meth:`_matrix`).

        Args:
            h: Input height.
            w: Input width.
            ho: Output height.
            wo: Output width.
            dtype: Data type of the input.

        Returns:
            The matrix.
        """
        g = self.groups
        k = self.kernel_size[0]
        cin = self.in_channels // g
        cout = self.out_channels // g
        select = self._selection(h, w, ho, wo, self.weight.device, dtype)
        taps = self.weight.reshape(g, cout, cin, k * k)
        if ho * wo == 1:
            # (g, out, in, HW): already the matrix, in the weight's own order.
            return torch.matmul(taps, select.T).view(g, cout, cin * h * w)
        # (g, out, H'W' * HW, in) viewed as (g, out * H'W', HW * in): the
        # transposed taps avoid copying the larger matrix in either pass.
        matrix = torch.matmul(select, taps.transpose(2, 3))
        return matrix.view(g, cout * ho * wo, h * w * cin)

    def _selection(
        self, h: int, w: int, ho: int, wo: int, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """0/1 matrix mapping kernel taps to (output pixel, input pixel) pairs.

        Args:
            h: Input height.
            w: Input width.
            ho: Output height.
            wo: Output width.
            device: Device of the matrix.
            dtype: Data type of the matrix.

        Returns:
            Matrix of shape ``(H' * W' * H * W, k * k)``; entry
            ``((i, j, u, v), (a, c))`` is 1 where tap ``(a, c)`` links input
            pixel ``(u, v)`` to output pixel ``(i, j)``.
        """
        key = (h, w, str(device), str(dtype))
        cached = self._select_cache.get(key)
        if cached is not None:
            return cached
        k = self.kernel_size[0]
        s = self.stride[0]
        p = self._pad
        # A normal tensor, usable by autograd even when built in inference mode.
        with torch.inference_mode(False), torch.no_grad():
            select = self._tap_selection(h, w, ho, wo, k, s, p, dtype).to(device)
        self._select_cache[key] = select
        return select

    @staticmethod
    def _tap_selection(
        h: int, w: int, ho: int, wo: int, k: int, s: int, p: int, dtype: torch.dtype
    ) -> Tensor:
        """Build the tap-selection matrix on the CPU (see :meth:`_selection`).

        Args:
            h: Input height.
            w: Input width.
            ho: Output height.
            wo: Output width.
            k: Kernel size.
            s: Stride.
            p: Padding.
            dtype: Data type of the matrix.

        Returns:
            Matrix of shape ``(H' * W' * H * W, k * k)``.
        """
        select = torch.zeros(ho, wo, h, w, k, k, dtype=dtype)
        for i in range(ho):
            for j in range(wo):
                for a in range(k):
                    for c in range(k):
                        u = i * s - p + a
                        v = j * s - p + c
                        if 0 <= u < h and 0 <= v < w:
                            select[i, j, u, v, a, c] = 1
        return select.reshape(ho * wo * h * w, k * k)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the grouped convolution.

        Args:
            x: Input of shape ``(B, groups * in_channels, H, W)``.

        Returns:
            Output of shape ``(B, groups * out_channels, H', W')``.
        """
        k = self.kernel_size[0]
        s = self.stride[0]
        p = self._pad
        h, w = x.shape[-2:]
        ho = (h + 2 * p - k) // s + 1
        wo = (w + 2 * p - k) // s + 1
        if k == 1 and p == 0:
            return self._pointwise(x)
        if h * w * ho * wo <= self.dense_max:
            return self._dense(x, ho, wo)
        return F.conv2d(x, self.weight, None, self.stride, self.padding, 1, self.groups)


class _GroupedBasicBlock(nn.Module):
    """Grouped counterpart of torchvision's ``BasicBlock``.

    Submodule names equal torchvision's so that state-dict keys match.
    """

    def __init__(self, groups: int, inplanes: int, planes: int, stride: int) -> None:
        """Initialize a new _GroupedBasicBlock instance.

        Args:
            groups: Number of independent networks.
            inplanes: Input channels of each network.
            planes: Output channels of each network.
            stride: Stride of the first convolution.
        """
        super().__init__()
        self.conv1 = GroupedConv2d(groups, inplanes, planes, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(groups * planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = GroupedConv2d(groups, planes, planes, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(groups * planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                GroupedConv2d(groups, inplanes, planes, 1, stride, 0),
                nn.BatchNorm2d(groups * planes),
            )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the residual block.

        Args:
            x: Input of shape ``(B, groups * inplanes, H, W)``.

        Returns:
            Output of shape ``(B, groups * planes, H', W')``.
        """
        identity = x if self.downsample is None else self.downsample(x)
        out: Tensor = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.relu(out + identity)
        return out


class GroupedResNet18(nn.Module):
    """``groups`` independent ResNet-18 encoders computed as one network.

    Input ``(B, groups * in_channels, H, W)`` holds the inputs of the encoders
    stacked as channels (encoder ``g`` reads channels
    ``g * in_channels:(g + 1) * in_channels``); the output ``(B, groups * 512)``
    holds their embeddings side by side. The network has the stock ResNet-18
    architecture (7×7 stride-2 stem, max pooling, four stages of two basic
    blocks, global average pooling) and the same function as ``groups``
    :func:`resnet18_encoder` modules: :meth:`load_plain_state_dicts` and
    :meth:`plain_state_dicts` convert between the layouts.

    .. versionadded:: 0.1
    """

    def __init__(
        self, groups: int, in_channels: int = 1, channels_last: bool = True
    ) -> None:
        """Initialize a new GroupedResNet18 instance.

        The weights are those of ``groups`` freshly initialised
        :func:`resnet18_encoder` modules, built one after the other, so that
        for a fixed seed they equal the weights of plain encoders built in the
        same order.

        Args:
            groups: Number of independent encoders.
            in_channels: Input channels of each encoder.
            channels_last: Run the convolutions in channels-last memory format
                (faster on CPU and on GPUs with tensor cores).

        Raises:
            ValueError: If *groups* or *in_channels* is not positive.
        """
        super().__init__()
        if groups < 1:
            raise ValueError(f"groups must be positive, got {groups}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        self.groups = groups
        self.in_channels = in_channels
        self.channels_last = channels_last
        # Initial weights: those of plain encoders built in group order. The
        # grouped layers are built without storage (meta device) and with the
        # random state restored afterwards, so that the caller's random stream
        # continues as after building the plain encoders.
        plain = [resnet18_encoder(in_channels).state_dict() for _ in range(groups)]
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            self.conv1 = GroupedConv2d(groups, in_channels, 64, 7, 2, 3)
            self.bn1 = nn.BatchNorm2d(groups * 64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(64, 64, 1)
            self.layer2 = self._make_layer(64, 128, 2)
            self.layer3 = self._make_layer(128, 256, 2)
            self.layer4 = self._make_layer(256, 512, 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.load_state_dict(merge_resnet_state_dicts(plain), assign=True)

    def _make_layer(self, inplanes: int, planes: int, stride: int) -> nn.Sequential:
        """Build one stage of two basic blocks.

        Args:
            inplanes: Input channels of each encoder.
            planes: Output channels of each encoder.
            stride: Stride of the first block.

        Returns:
            The stage.
        """
        return nn.Sequential(
            _GroupedBasicBlock(self.groups, inplanes, planes, stride),
            _GroupedBasicBlock(self.groups, planes, planes, 1),
        )

    @property
    def embed_dim(self) -> int:
        """Width of the embedding of one encoder."""
        return RESNET18_EMBED_DIM

    def forward(self, x: Tensor) -> Tensor:
        """Compute the embeddings of all encoders.

        Args:
            x: Input of shape ``(B, groups * in_channels, H, W)``.

        Returns:
            Embeddings of shape ``(B, groups * 512)``, encoder by encoder.
        """
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def load_plain_state_dicts(
        self, state_dicts: Sequence[Mapping[str, Tensor]], strict: bool = True
    ) -> None:
        """Load the state dicts of ``groups`` plain encoders.

        Args:
            state_dicts: One :func:`resnet18_encoder` state dict per encoder,
                in group order (``fc.*`` keys are ignored).
            strict: Whether keys must match exactly.

        Raises:
            ValueError: If the number of state dicts is not ``groups``.
        """
        if len(state_dicts) != self.groups:
            raise ValueError(
                f"expected {self.groups} state dicts, got {len(state_dicts)}"
            )
        self.load_state_dict(merge_resnet_state_dicts(state_dicts), strict=strict)

    def plain_state_dicts(self) -> list[dict[str, Tensor]]:
        """Split the weights into the state dicts of ``groups`` plain encoders.

        Returns:
            One :func:`resnet18_encoder` state dict per encoder, in group order.
        """
        return split_resnet_state_dict(self.state_dict(), self.groups)


def merge_resnet_state_dicts(
    state_dicts: Sequence[Mapping[str, Tensor]],
) -> dict[str, Tensor]:
    """Merge plain encoder state dicts into the :class:`GroupedResNet18` layout.

    Every tensor is concatenated along its first dimension in the given order.
    ``num_batches_tracked`` counters, which are shared by the groups of a batch
    norm in the grouped layout, become their maximum. Keys starting with ``fc.``
    are dropped.

    Args:
        state_dicts: Plain state dicts with identical keys.

    Returns:
        The grouped state dict.

    Raises:
        ValueError: If no state dict is given or their keys differ.

    .. versionadded:: 0.1
    """
    if not state_dicts:
        raise ValueError("no state dict to merge")
    keys = [k for k in state_dicts[0] if not k.startswith("fc.")]
    for i, sd in enumerate(state_dicts[1:], start=1):
        other = [k for k in sd if not k.startswith("fc.")]
        if set(other) != set(keys):
            diff = sorted(set(other) ^ set(keys))
            raise ValueError(
                f"state dict {i} has other keys than state dict 0: {diff[:10]}"
            )
    merged: dict[str, Tensor] = {}
    for key in keys:
        tensors = [sd[key] for sd in state_dicts]
        if key.endswith("num_batches_tracked"):
            merged[key] = torch.stack(tensors).max()
        else:
            merged[key] = torch.cat(tensors, dim=0)
    return merged


def split_resnet_state_dict(
    state_dict: Mapping[str, Tensor], groups: int
) -> list[dict[str, Tensor]]:
    """Split a :class:`GroupedResNet18` state dict into plain encoder state dicts.

    Args:
        state_dict: Grouped state dict.
        groups: Number of encoders.

    Returns:
        ``groups`` plain state dicts (torchvision key names, no ``fc.*``).

    Raises:
        ValueError: If a tensor's first dimension is not divisible by *groups*.

    .. versionadded:: 0.1
    """
    plain: list[dict[str, Tensor]] = [{} for _ in range(groups)]
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            for sd in plain:
                sd[key] = value.clone()
            continue
        if value.shape[0] % groups:
            raise ValueError(
                f"{key}: first dimension {value.shape[0]} is not divisible by "
                f"{groups} groups"
            )
        for sd, chunk in zip(plain, value.chunk(groups, dim=0), strict=True):
            sd[key] = chunk.clone()
    return plain
