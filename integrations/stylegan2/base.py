"""What both StyleGAN2 codebases share: truncation in w, the split points, clamping, NVlabs-style labels.

:class:`StyleGAN2Base` truncates in w space (``w_avg + psi (w - w_avg)``), splits the generator at
``"mapping"`` and after every synthesis stage but the last, and clamps images to [-1, 1]. A synthesis
network is seen as stages (:class:`Synthesis`: StyleGAN2's blocks, :class:`SkipBlocks`, or StyleGAN3's
layers); the codebases' call conventions live in :mod:`.nvlabs` and :mod:`.rosinality`.
"""

from __future__ import annotations

import abc
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.ranges import CHAIN_RANGE
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind, as_classifier
from gan_postproc.pipeline.splitting import module_device
from gan_postproc.validation import check_probability

__all__ = ["StyleGAN2Base", "Synthesis", "SkipBlocks", "State", "MAPPING_LAYER", "NoiseMode", "one_hot"]

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

    @property
    @abc.abstractmethod
    def synthesis_stages(self) -> Synthesis:
        """The synthesis network as a sequence of stages (see :class:`Synthesis`)."""

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "truncation_psi": self.truncation_psi, "noise_mode": self.noise_mode}

    def _inner_layer_names(self) -> list[str]:
        return [MAPPING_LAYER] + self.synthesis_stages.names[:-1]

    def _synthesize(self, ws: torch.Tensor, state: State = None, start: int = 0, stop: int | None = None) -> State:
        stages = self.synthesis_stages
        for position in range(start, len(stages.names) if stop is None else stop):
            state = stages.run(position, state, ws)
        return state

    def _activation_at(self, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        ws = self.mapping(latents, labels)
        if layer == MAPPING_LAYER:
            return ws
        position = self.synthesis_stages.names.index(layer)
        return self.synthesis_stages.activation(position, self._synthesize(ws, stop=position + 1))

    def _decode_from(self, activation: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        stages = self.synthesis_stages
        if layer == MAPPING_LAYER:
            return stages.image(self._synthesize(activation)).clamp(*CHAIN_RANGE)
        position = stages.names.index(layer)
        state = self._synthesize(self.mapping(latents, labels), stages.state(position, activation), start=position + 1)
        return stages.image(state).clamp(*CHAIN_RANGE)


#: What flows from one synthesis stage to the next (``(x, img)`` for StyleGAN2 blocks, ``x`` for StyleGAN3 layers).
State = Any


class Synthesis(abc.ABC):
    """A synthesis network as stages ``names`` run in order from ``ws``; the last one's output is the image.

    The activation after every stage but the last is a split point named after the stage.
    """

    names: list[str]

    @abc.abstractmethod
    def run(self, position: int, state: State, ws: torch.Tensor) -> State:
        """Stage ``position`` on the previous stage's ``state`` (``None`` before the first) and all ``ws`` ``[N, num_ws, w_dim]``."""

    @abc.abstractmethod
    def activation(self, position: int, state: State) -> torch.Tensor:
        """The split-point tensor ``[N, C, H, W]`` for ``state`` after stage ``position``."""

    @abc.abstractmethod
    def state(self, position: int, activation: torch.Tensor) -> State:
        """The inverse of :meth:`activation`: what stage ``position + 1`` takes."""

    @abc.abstractmethod
    def image(self, state: State) -> torch.Tensor:
        """The image ``[N, C, H, W]`` float32 from the last stage's ``state``."""


class SkipBlocks(Synthesis):
    """StyleGAN2's synthesis blocks ``b4 .. bR``, each ``(x, img) -> (x, img)``.

    The activation stacks the block's features ``x`` and, where the block outputs one (skip
    architecture, last block), its RGB image along channels. The pieces handed back to the next
    block are contiguous: rosinality's modulated convolution reshapes its input with ``.view``.
    """

    def __init__(self, resolutions: list[int], img_channels: int) -> None:
        self.resolutions = resolutions
        self.names = [f"b{res}" for res in resolutions]
        self.img_channels = img_channels

    @abc.abstractmethod
    def has_image(self, position: int) -> bool:
        """Whether block ``position`` outputs an RGB image next to its features."""

    def activation(self, position: int, state: State) -> torch.Tensor:
        x, img = state
        return x if img is None else torch.cat([x, img], dim=1)

    def state(self, position: int, activation: torch.Tensor) -> State:
        if not self.has_image(position):
            return activation.contiguous(), None
        split = activation.shape[1] - self.img_channels
        return activation[:, :split].contiguous(), activation[:, split:].contiguous()

    def image(self, state: State) -> torch.Tensor:
        return state[1]
