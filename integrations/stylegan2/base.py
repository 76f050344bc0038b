"""What both StyleGAN2 codebases share: truncation in w, the split points, clamping, NVlabs-style labels.

:class:`StyleGAN2Base` truncates in w space (``w_avg + psi (w - w_avg)``), splits the generator at
``"mapping"`` and after every synthesis block but the last, and clamps images to [-1, 1]; the
codebases' call conventions live in the subclasses (:mod:`.nvlabs`, :mod:`.rosinality`).
"""

from __future__ import annotations

import abc
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.pipeline.ranges import CHAIN_RANGE
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind, as_classifier
from gan_postproc.pipeline.splitting import module_device
from gan_postproc.validation import check_probability

__all__ = ["StyleGAN2Base", "MAPPING_LAYER", "NoiseMode", "one_hot"]

NoiseMode = Literal["const", "random", "none"]
MAPPING_LAYER = "mapping"


def one_hot(labels: torch.Tensor | None, c_dim: int, n: int, device: torch.device) -> torch.Tensor:
    """NVlabs' label input: one-hot ``[N, c_dim]``, or ``[N, 0]`` for an unconditional network."""
    if c_dim == 0 or labels is None:
        return torch.zeros(n, c_dim, device=device)
    return F.one_hot(labels.to(device), c_dim).float()


class StyleGAN2Base(Adapter):
    """Truncation in w, the split at ``mapping`` and at synthesis blocks, clamping; conventions in subclasses."""

    mapping_layer = MAPPING_LAYER
    native_truncation = True

    #: Attributes a generator of this convention has, and the hint when one is missing.
    required_attributes: tuple[str, ...] = ()
    other_convention: str = ""

    def __init__(
        self,
        generator: nn.Module,
        *,
        truncation_psi: float,
        noise_mode: NoiseMode,
        discriminator: nn.Module | Discriminator | None,
        discriminator_output: ScoreKind | str,
        classifier: nn.Module | Classifier | None,
    ) -> None:
        if not isinstance(generator, nn.Module):
            raise InputTypeError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
        for attribute in self.required_attributes:
            if not hasattr(generator, attribute):
                raise InputError(
                    f"{type(self).__name__} needs a generator with .{attribute}; {type(generator).__name__} has none. "
                    f"{self.other_convention} (or stylegan2_adapter, which picks)"
                )
        if noise_mode not in ("const", "random", "none"):
            raise InputError(f"noise_mode must be 'const' (deterministic, NVlabs' default for generation), 'random' or 'none', got {noise_mode!r}")
        self.generator = generator.eval()
        self.truncation_psi = check_probability(truncation_psi, "truncation_psi")
        self.noise_mode = noise_mode
        self.discriminator = None if discriminator is None else self._wrap_discriminator(discriminator, discriminator_output)
        self.classifier = as_classifier(classifier, None)
        for model in (self.discriminator, self.classifier):
            if model is not None:
                model.eval()

    @abc.abstractmethod
    def _wrap_discriminator(self, discriminator: nn.Module | Discriminator, output: ScoreKind | str) -> Discriminator:
        """The discriminator wrapped with this convention's call."""

    @property
    def device(self) -> torch.device:
        return module_device(self.generator)

    def to(self, device: torch.device | str) -> StyleGAN2Base:
        return self._move_models(device, self.generator, self.discriminator, self.classifier)  # type: ignore[return-value]

    # A synthesis network is a list of blocks; each subclass says how to run one.

    def _generate(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self._generate_at(latents, labels, self.truncation_psi)

    def _generate_truncated(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        """The generator's own w-space truncation with ``psi`` in (0, 1] instead of the constructor's."""
        return self._generate_at(latents, labels, check_probability(psi, "psi (w-space truncation)", open_low=True))

    @abc.abstractmethod
    def _generate_at(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        """Images in [-1, 1] from the generator's own forward call with w-space truncation ``psi``."""

    @abc.abstractmethod
    def mapping(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Truncated ``ws`` ``[N, num_ws, w_dim]`` for checked latents (and labels), with the constructor's psi."""

    @abc.abstractmethod
    def block_resolutions(self) -> list[int]:
        """Resolutions of the synthesis blocks, from 4 to the output resolution."""

    @abc.abstractmethod
    def _run_block(self, position: int, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Block ``position`` of the synthesis network: ``(x, img) -> (x, img)``."""

    @abc.abstractmethod
    def _block_has_image(self, position: int) -> bool:
        """Whether block ``position`` outputs an RGB image next to its features."""

    @property
    @abc.abstractmethod
    def img_channels(self) -> int:
        """Channels of the generated images."""

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "truncation_psi": self.truncation_psi, "noise_mode": self.noise_mode}

    def _inner_layer_names(self) -> list[str]:
        return [MAPPING_LAYER] + [f"b{res}" for res in self.block_resolutions()[:-1]]

    def _synthesize(self, ws: torch.Tensor, state: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None), start: int = 0, stop: int | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, img = state
        for position in range(start, len(self.block_resolutions()) if stop is None else stop):
            x, img = self._run_block(position, x, img, ws)
        return x, img

    def _activation_at(self, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        ws = self.mapping(latents, labels)
        if layer == MAPPING_LAYER:
            return ws
        position = self._block_position(layer)
        x, img = self._synthesize(ws, stop=position + 1)
        return x if img is None else torch.cat([x, img], dim=1)

    def _decode_from(self, activation: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        if layer == MAPPING_LAYER:
            _, img = self._synthesize(activation)
            return img.clamp(*CHAIN_RANGE)
        position = self._block_position(layer)
        ws = self.mapping(latents, labels)
        if self._block_has_image(position):
            x, img = activation[:, : -self.img_channels], activation[:, -self.img_channels :]
        else:
            x, img = activation, None
        _, img = self._synthesize(ws, (x, img), start=position + 1)
        return img.clamp(*CHAIN_RANGE)

    def _block_position(self, layer: str) -> int:
        return [f"b{res}" for res in self.block_resolutions()].index(layer)
