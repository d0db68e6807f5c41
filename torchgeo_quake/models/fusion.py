"""Late-fusion network of Russo et al. (2025) for building-damage detection.

Each raster modality (post-event SAR, building-footprint mask, DSM patch) is
encoded by its own ResNet-18, the GEM exposure vector by a small MLP; the
embeddings are concatenated and a head of two fully connected layers (ReLU,
dropout) gives one damage logit per building (Section III of the paper).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..paper import MODALITIES, RASTER_MODALITIES
from .resnet import (
    RESNET18_EMBED_DIM,
    GroupedResNet18,
    merge_resnet_state_dicts,
    resnet18_encoder,
    split_resnet_state_dict,
)
from .weights import load_resnet18_state_dict

__all__ = [
    "MODALITIES",
    "RASTER_MODALITIES",
    "LateFusionNet",
    "canonical_modalities",
]


def canonical_modalities(modalities: Iterable[str]) -> tuple[str, ...]:
    """Validate a modality selection and put it in canonical order.

    Args:
        modalities: Names from :data:`MODALITIES`, in any order.

    Returns:
        The selection ordered as in :data:`MODALITIES`.

    Raises:
        ValueError: If the selection is empty, has duplicates or unknown names.

    .. versionadded:: 0.1
    """
    if isinstance(modalities, str):
        raise ValueError(
            f"modalities must be a list of names, got the string {modalities!r}"
        )
    chosen = list(modalities)
    unknown = sorted(set(chosen) - set(MODALITIES))
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; choose from {MODALITIES}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"duplicate modalities in {chosen}")
    if not chosen:
        raise ValueError(f"no modality selected; choose from {MODALITIES}")
    return tuple(m for m in MODALITIES if m in chosen)


class LateFusionNet(nn.Module):
    """Late-fusion damage classifier over SAR, footprint, DSM and GEM inputs.

    Every raster modality in *modalities* gets a stock ResNet-18 encoder
    (torchvision architecture, first convolution for one channel, no
    pretrained download), ``gem`` an MLP (two linear layers with ReLU). The
    embeddings are concatenated in the order of :data:`MODALITIES` and fed to
    a head ``Linear → ReLU → Dropout → Linear`` that outputs one logit.

    With ``fused=True`` (default) the raster encoders are computed as one
    :class:`~torchgeo_quake.models.GroupedResNet18`, which is the same
    function as separate encoders but much faster on CPU;
    :meth:`plain_state_dict` and :meth:`load_plain_state_dict` convert the
    weights to and from the layout of ``fused=False`` (one torchvision
    ResNet-18 per modality under ``encoders.<name>.``). For a fixed seed both
    layouts are initialised with the same weights.

    The state dict records the modalities, GEM width and layout, and loading
    one saved with other settings fails with a message naming both.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        modalities: Sequence[str] = MODALITIES,
        gem_features: int = 20,
        hidden_dim: int = 256,
        gem_hidden_dim: int = 64,
        dropout: float = 0.5,
        sar_weights: str | os.PathLike[str] | None = None,
        fused: bool = True,
        channels_last: bool = True,
    ) -> None:
        """Initialize a new LateFusionNet instance.

        Args:
            modalities: Inputs to use, a non-empty subset of :data:`MODALITIES`,
                e.g. ``["sar", "footprint"]``.
            gem_features: Width of the GEM vector (used when ``gem`` is selected).
            hidden_dim: Width of the hidden layer of the classification head.
            gem_hidden_dim: Width of the GEM MLP's layers (its embedding size).
            dropout: Dropout probability in the head.
            sar_weights: Optional file with ResNet-18 weights for the SAR encoder
                (see :func:`~torchgeo_quake.models.load_resnet18_state_dict`).
            fused: Compute the raster encoders as one grouped network.
            channels_last: Run the convolutions of the fused encoder in
                channels-last memory format (faster on CPU and on GPUs with
                tensor cores; no effect when ``fused=False``).

        Raises:
            ValueError: If an argument is invalid, or *sar_weights* is given
                without ``sar`` or does not fit a ResNet-18.
            FileNotFoundError: If *sar_weights* does not exist.
        """
        super().__init__()
        self.modalities = canonical_modalities(modalities)
        self.rasters = tuple(m for m in self.modalities if m in RASTER_MODALITIES)
        self.use_gem = "gem" in self.modalities
        if gem_features < 1:
            raise ValueError(f"gem_features must be positive, got {gem_features}")
        if hidden_dim < 1 or gem_hidden_dim < 1:
            raise ValueError("hidden_dim and gem_hidden_dim must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if sar_weights is not None and "sar" not in self.modalities:
            raise ValueError(
                f"sar_weights given but 'sar' is not among modalities "
                f"{list(self.modalities)}"
            )
        self.gem_features = gem_features
        self.fused = fused

        self.encoder: GroupedResNet18 | None = None
        self.encoders: nn.ModuleDict | None = None
        if self.rasters and fused:
            self.encoder = GroupedResNet18(
                len(self.rasters), channels_last=channels_last
            )
        elif self.rasters:
            self.encoders = nn.ModuleDict({m: resnet18_encoder() for m in self.rasters})
        embed = RESNET18_EMBED_DIM * len(self.rasters)

        self.gem_mlp: nn.Sequential | None = None
        if self.use_gem:
            self.gem_mlp = nn.Sequential(
                nn.Linear(gem_features, gem_hidden_dim),
                nn.ReLU(inplace=True),
                nn.Linear(gem_hidden_dim, gem_hidden_dim),
                nn.ReLU(inplace=True),
            )
            embed += gem_hidden_dim

        self.head = nn.Sequential(
            nn.Linear(embed, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, 1),
        )

        if sar_weights is not None:
            self.load_encoder_state_dict("sar", load_resnet18_state_dict(sar_weights))

    def _rasters(self, inputs: Mapping[str, Tensor | None]) -> list[Tensor]:
        """Validate the inputs.

        Args:
            inputs: Tensors by modality name.

        Returns:
            The raster patches in the order of :attr:`rasters`.

        Raises:
            ValueError: If a configured input is missing or has a wrong shape.
        """
        missing = [m for m in self.modalities if inputs.get(m) is None]
        if missing:
            raise ValueError(
                f"LateFusionNet with modalities {list(self.modalities)} is missing "
                f"input(s) {missing}"
            )
        rasters: list[Tensor] = []
        batch: int | None = None
        size: tuple[int, int] | None = None
        for name in self.rasters:
            x = inputs[name]
            assert x is not None
            rasters.append(x)
            if x.ndim != 4 or x.shape[1] != 1:
                raise ValueError(
                    f"input {name!r} must have shape (B, 1, H, W), got {tuple(x.shape)}"
                )
            if batch is None:
                batch, size = x.shape[0], (x.shape[2], x.shape[3])
            elif x.shape[0] != batch or (x.shape[2], x.shape[3]) != size:
                raise ValueError(
                    f"raster inputs differ in shape: {name!r} is {tuple(x.shape)}, "
                    f"{self.rasters[0]!r} is {tuple(rasters[0].shape)}"
                )
        gem = inputs.get("gem")
        if self.use_gem:
            assert gem is not None
            if gem.ndim != 2 or gem.shape[1] != self.gem_features:
                raise ValueError(
                    f"input 'gem' must have shape (B, {self.gem_features}), got "
                    f"{tuple(gem.shape)}"
                )
            if batch is not None and gem.shape[0] != batch:
                raise ValueError(
                    f"input 'gem' has batch size {gem.shape[0]}, rasters {batch}"
                )
        return rasters

    def forward(
        self,
        sar: Tensor | None = None,
        footprint: Tensor | None = None,
        dsm: Tensor | None = None,
        gem: Tensor | None = None,
    ) -> Tensor:
        """Compute damage logits.

        Inputs of modalities the model was not configured with are ignored, so
        ``model(**{k: batch[k] for k in model.modalities})`` works.

        Args:
            sar: SAR patches ``(B, 1, H, W)``.
            footprint: Footprint masks ``(B, 1, H, W)``.
            dsm: DSM patches ``(B, 1, H, W)``.
            gem: GEM feature vectors ``(B, gem_features)``.

        Returns:
            Logits of the damaged class, shape ``(B,)``.

        Raises:
            ValueError: If a configured input is missing or has a wrong shape.
        """
        inputs = {"sar": sar, "footprint": footprint, "dsm": dsm, "gem": gem}
        rasters = self._rasters(inputs)
        features: list[Tensor] = []
        if self.encoder is not None:
            features.append(self.encoder(torch.cat(rasters, dim=1)))
        elif self.encoders is not None:
            features.extend(
                self.encoders[m](x) for m, x in zip(self.rasters, rasters, strict=True)
            )
        if self.gem_mlp is not None:
            assert gem is not None
            features.append(self.gem_mlp(gem))
        fused = features[0] if len(features) == 1 else torch.cat(features, dim=1)
        logits: Tensor = self.head(fused).squeeze(1)
        return logits

    # -- state-dict layouts -------------------------------------------------

    def get_extra_state(self) -> dict[str, Any]:
        """Configuration saved with the weights.

        Returns:
            Modalities, GEM width and encoder layout.
        """
        return {
            "modalities": list(self.modalities),
            "gem_features": self.gem_features,
            "fused": self.fused,
        }

    def set_extra_state(self, state: Any) -> None:
        """Check that saved weights were made for this configuration.

        Args:
            state: The output of :meth:`get_extra_state` of the saving model.

        Raises:
            ValueError: If modalities, GEM width or layout differ.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"invalid LateFusionNet extra state: {state!r}")
        saved = tuple(state.get("modalities", ()))
        if saved != self.modalities:
            raise ValueError(
                f"weights were trained with modalities {list(saved)}, but this "
                f"model is configured with modalities {list(self.modalities)}"
            )
        if self.use_gem and state.get("gem_features") != self.gem_features:
            raise ValueError(
                f"weights were trained with {state.get('gem_features')} GEM "
                f"features, but this model expects {self.gem_features}"
            )
        if bool(state.get("fused")) != self.fused:
            have = "fused" if self.fused else "plain"
            other = "plain" if self.fused else "fused"
            raise ValueError(
                f"weights are in the {other} encoder layout, this model uses the "
                f"{have} one; convert with LateFusionNet.load_plain_state_dict / "
                "plain_state_dict"
            )

    def plain_state_dict(self) -> dict[str, Any]:
        """State dict in the layout of ``LateFusionNet(..., fused=False)``.

        Returns:
            Weights with one torchvision ResNet-18 per modality under
            ``encoders.<name>.``; loadable into a plain model with
            :meth:`~torch.nn.Module.load_state_dict`.
        """
        state: dict[str, Any] = dict(self.state_dict())
        state["_extra_state"] = {**self.get_extra_state(), "fused": False}
        if self.encoder is None:
            return state
        grouped = {
            k[len("encoder.") :]: state.pop(k)
            for k in list(state)
            if k.startswith("encoder.")
        }
        for name, plain in zip(
            self.rasters,
            split_resnet_state_dict(grouped, len(self.rasters)),
            strict=True,
        ):
            state.update({f"encoders.{name}.{k}": v for k, v in plain.items()})
        return state

    def load_plain_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> None:
        """Load weights saved in the plain layout (``fused=False``).

        Args:
            state_dict: Output of ``state_dict()`` of a plain model or of
                :meth:`plain_state_dict`.
            strict: Whether keys must match exactly.

        Raises:
            ValueError: If the weights were made for other modalities.
        """
        state = dict(state_dict)
        extra = state.pop("_extra_state", None)
        if extra is not None:
            self.set_extra_state({**extra, "fused": self.fused})
        if self.encoder is not None:
            plain = []
            for name in self.rasters:
                prefix = f"encoders.{name}."
                plain.append(
                    {
                        k[len(prefix) :]: state.pop(k)
                        for k in list(state)
                        if k.startswith(prefix)
                    }
                )
            for key, value in merge_resnet_state_dicts(plain).items():
                state[f"encoder.{key}"] = value
        state["_extra_state"] = self.get_extra_state()
        self.load_state_dict(state, strict=strict)

    def load_encoder_state_dict(
        self, modality: str, state_dict: Mapping[str, Tensor]
    ) -> None:
        """Load the weights of one raster encoder.

        Args:
            modality: Raster modality whose encoder receives the weights.
            state_dict: A :func:`~torchgeo_quake.models.resnet18_encoder` state
                dict (e.g. from
                :func:`~torchgeo_quake.models.load_resnet18_state_dict`).

        Raises:
            ValueError: If *modality* is not a configured raster modality.
        """
        if modality not in self.rasters:
            raise ValueError(
                f"no encoder for {modality!r}; raster modalities are "
                f"{list(self.rasters)}"
            )
        if self.encoders is not None:
            self.encoders[modality].load_state_dict(state_dict)
            return
        assert self.encoder is not None
        plain = self.encoder.plain_state_dicts()
        plain[self.rasters.index(modality)] = {
            k: v for k, v in state_dict.items() if not k.startswith("fc.")
        }
        self.encoder.load_plain_state_dicts(plain)
