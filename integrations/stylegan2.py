"""Plugin ``stylegan2``: StyleGAN2 generators and discriminators of the NVlabs and rosinality codebases.

* :class:`StyleGAN2Adapter` (``"stylegan2"``) follows NVlabs'
  stylegan2-ada-pytorch / stylegan3 convention: ``G(z, c, truncation_psi,
  truncation_cutoff, noise_mode=...)``, ``G.mapping(z, c, ...) -> ws [N,
  num_ws, w_dim]``, ``G.mapping.w_avg``, ``G.synthesis`` with blocks ``b4 ..
  bR`` called as ``x, img = block(x, img, ws_slice)`` (StyleGAN2) or with
  ``input`` and layers ``layer_names`` called as ``x = layer(x, w)``
  (StyleGAN3), one-hot labels ``c``, ``D(img, c) -> [N, 1]``.
* :class:`RosinalityStyleGAN2Adapter` (``"stylegan2_rosinality"``) follows
  rosinality's stylegan2-pytorch: ``G([z], truncation=, truncation_latent=,
  input_is_latent=, randomize_noise=) -> (img, latent)``, ``G.style`` (the
  mapping network), ``conv1 / to_rgb1`` then pairs of ``convs`` and
  ``to_rgbs``; ``D(img) -> [N, 1]``.

Both truncate in w space (``w_avg + psi (w - w_avg)``; ``truncation_cutoff``
limits it to the first layers, NVlabs only): by default with the constructor's
``truncation_psi``, and with any other psi through the ``truncation`` sampler,
which calls the generator's own truncation (:attr:`Adapter.native_truncation`;
``Chain(adapter, TruncationSampler(0.7))`` gives exactly ``G(z, c,
truncation_psi=0.7)``). Both split the generator at
``"mapping"`` (the activation is the truncated ``ws``, so latent samplers can
work on w: :attr:`Adapter.mapping_layer`) and after every synthesis block but
the last (``"b4"``, ``"b8"``, ...; the activation is the block's feature map
and, in the skip architecture, its RGB image, stacked along channels), for
collaborative refinement. A StyleGAN3 synthesis network (``networks_stylegan3``,
configs stylegan3-t and stylegan3-r) has layers instead of blocks: it splits after
its ``"input"`` and after every layer but the ToRGB one, named as
``G.synthesis.layer_names`` names them (``"L0_36_512"``, ...). Images are clamped
to [-1, 1], as NVlabs' ``generate.py`` does when saving.

Their discriminators judge groups of samples together (minibatch standard
deviation). The wrapper declares the group size as the smallest batch it
scores and pads other batches to a multiple of it by repeating samples, so a
sample's score depends on the other members of its group, as in training.
StyleGAN2 discriminators are trained with the logistic loss, so their output
is declared a logit by default.

Loading NVlabs pickles executes code stored in them (``torch_utils.persistence``);
:func:`load_nvlabs_pickle` refuses unless called with
``allow_code_execution=True``. rosinality checkpoints are plain state dicts:
:func:`load_rosinality_checkpoint` loads them with ``weights_only=True``.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import inspect
import os
import pickle
import sys
from collections.abc import Iterator
from typing import IO, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gan_postproc import hookimpl
from gan_postproc.adapter import Adapter
from gan_postproc.defaults import DEFAULTS
from gan_postproc.errors import CheckpointError, InputError, InputTypeError
from gan_postproc.loading import CodeExecutionWarning, load_code_pickle, torch_load_weights
from gan_postproc.priors import LatentPrior
from gan_postproc.ranges import CHAIN_RANGE
from gan_postproc.rng import normal
from gan_postproc.scoring import Classifier, Discriminator, ScoreKind, as_classifier, score_in_groups
from gan_postproc.splitting import module_device
from gan_postproc.validation import check_count, check_probability

__all__ = [
    "StyleGAN2Adapter",
    "RosinalityStyleGAN2Adapter",
    "stylegan2_adapter",
    "stylegan2_discriminator",
    "load_nvlabs_pickle",
    "load_rosinality_checkpoint",
    "CodeExecutionWarning",
]

NoiseMode = Literal["const", "random", "none"]
MAPPING_LAYER = "mapping"


# --- discriminators ----------------------------------------------------------------------------


def _group_size(discriminator: nn.Module) -> int:
    """The minibatch-std group size the discriminator was built with (1 without such a layer).

    NVlabs: ``D.b4.mbstd.group_size`` (``None`` means the whole batch, which
    cannot be padded to; then 1). rosinality: ``D.stddev_group``.
    """
    epilogue = getattr(discriminator, "b4", None)
    if epilogue is not None and hasattr(epilogue, "mbstd"):
        mbstd = epilogue.mbstd
        return 1 if mbstd is None or mbstd.group_size is None else int(mbstd.group_size)
    group = getattr(discriminator, "stddev_group", None)
    return 1 if group is None else int(group)


def stylegan2_discriminator(
    discriminator: nn.Module,
    *,
    output: ScoreKind | str = ScoreKind.LOGIT,
    c_dim: int | None = None,
    group_size: int | None = None,
) -> Discriminator:
    """Wrap a StyleGAN2 discriminator (NVlabs ``D(img, c)`` or rosinality ``D(img)``).

    Args:
        discriminator: the network; images in [-1, 1].
        output: its output convention; StyleGAN2's logistic loss makes it a logit.
        c_dim: label dimension of an NVlabs ``D`` (default ``D.c_dim``; 0 or
            ``None``: unconditional). Labels are passed one-hot.
        group_size: minibatch-std group size (default: read from the network).
            Batches smaller than it are refused; others are padded to a
            multiple of it by repeating samples.
    """
    if isinstance(discriminator, Discriminator):
        return discriminator
    if not isinstance(discriminator, nn.Module):
        raise InputTypeError(f"discriminator must be a torch.nn.Module, got {type(discriminator).__name__}")
    nvlabs = "c" in _forward_parameters(discriminator)
    c_dim = int(getattr(discriminator, "c_dim", 0) or 0) if c_dim is None else c_dim
    group = check_count(group_size if group_size is not None else _group_size(discriminator), "group_size")

    def forward(module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if not nvlabs:
            return score_in_groups(x, group, lambda images, rows: module(images))
        c = _one_hot(labels, c_dim, x.shape[0], x.device)
        return score_in_groups(x, group, lambda images, rows: module(images, c[rows]))

    return Discriminator(discriminator, output, conditional=nvlabs and c_dim > 0, min_batch_size=group, forward_fn=forward)


def _forward_parameters(module: nn.Module) -> list[str]:
    return list(inspect.signature(module.forward).parameters)


def _one_hot(labels: torch.Tensor | None, c_dim: int, n: int, device: torch.device) -> torch.Tensor:
    """NVlabs' label input: one-hot ``[N, c_dim]``, or ``[N, 0]`` for an unconditional network."""
    if c_dim == 0 or labels is None:
        return torch.zeros(n, c_dim, device=device)
    return F.one_hot(labels.to(device), c_dim).float()


# --- the shared adapter machinery ----------------------------------------------------------------


class _StyleGAN2Base(Adapter):
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

    def to(self, device: torch.device | str) -> _StyleGAN2Base:
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
    def synthesis_stages(self) -> _Synthesis:
        """The synthesis network as a sequence of stages (see :class:`_Synthesis`)."""

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


# --- synthesis networks as stages ----------------------------------------------------------------

#: What flows from one synthesis stage to the next (``(x, img)`` for StyleGAN2 blocks, ``x`` for StyleGAN3 layers).
State = Any


class _Synthesis(abc.ABC):
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


class _SkipBlocks(_Synthesis):
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


class _NVlabsBlocks(_SkipBlocks):
    """NVlabs StyleGAN2's ``G.synthesis`` (``block_resolutions``, blocks ``b4 .. bR``)."""

    def __init__(self, synthesis: nn.Module, synthesis_kwargs: dict[str, Any]) -> None:
        super().__init__(list(synthesis.block_resolutions), int(synthesis.img_channels))
        self.synthesis, self.synthesis_kwargs = synthesis, synthesis_kwargs

    def _block(self, position: int) -> nn.Module:
        return getattr(self.synthesis, self.names[position])

    def has_image(self, position: int) -> bool:
        block = self._block(position)
        return bool(block.is_last or block.architecture == "skip")

    def run(self, position: int, state: State, ws: torch.Tensor) -> State:
        x, img = (None, None) if state is None else state
        # The ws of block k start after the convolutions of blocks 0..k-1 (NVlabs' SynthesisNetwork.forward).
        start = sum(self._block(p).num_conv for p in range(position))
        block = self._block(position)
        return block(x, img, ws.narrow(1, start, block.num_conv + block.num_torgb), **self.synthesis_kwargs)


class _NVlabsLayers(_Synthesis):
    """StyleGAN3's ``G.synthesis`` (``networks_stylegan3``): ``input`` (Fourier features) from ``ws[:, 0]``,
    then the layers ``layer_names`` (``L0_36_512`` ...; the last one is ToRGB), layer ``k`` on ``ws[:, k + 1]``,
    and the output scaled by ``output_scale``."""

    def __init__(self, synthesis: nn.Module, synthesis_kwargs: dict[str, Any]) -> None:
        self.synthesis, self.synthesis_kwargs = synthesis, synthesis_kwargs
        self.names = ["input", *synthesis.layer_names]

    def run(self, position: int, state: State, ws: torch.Tensor) -> State:
        w = ws[:, position].to(torch.float32)
        if position == 0:
            return self.synthesis.input(w)
        return getattr(self.synthesis, self.names[position])(state, w, **self.synthesis_kwargs)

    def activation(self, position: int, state: State) -> torch.Tensor:
        return state

    def state(self, position: int, activation: torch.Tensor) -> State:
        return activation

    def image(self, state: State) -> torch.Tensor:
        scale = float(self.synthesis.output_scale)
        return (state * scale if scale != 1 else state).to(torch.float32)


# --- NVlabs ----------------------------------------------------------------------------------------


class StyleGAN2Adapter(_StyleGAN2Base):
    """Adapter for NVlabs StyleGAN2-ADA and StyleGAN3 generators (``G.mapping``, ``G.synthesis``).

    Split points after ``"mapping"``: a StyleGAN2 synthesis network (``block_resolutions``;
    stylegan2-ada-pytorch, StyleGAN3's ``networks_stylegan2``) splits after its blocks ``"b4"``,
    ``"b8"``, ...; a StyleGAN3 one (``layer_names``; ``networks_stylegan3``, configs stylegan3-t and
    stylegan3-r) after its ``"input"`` (Fourier features) and every layer but the ToRGB one
    (``"L0_36_512"``, ...: the names ``G.synthesis.layer_names`` lists).

    Args:
        generator: ``G`` (or ``G_ema``), with ``z_dim``, ``c_dim``, ``mapping``
            and ``synthesis``. Put in eval mode (so ``w_avg`` is not updated).
        truncation_psi: w-space truncation ``w_avg + psi (w - w_avg)``, in [0, 1]:
            the default of every call; the ``truncation`` sampler overrides it
            per chain (see the module docs)
        truncation_cutoff: truncate only the first ``cutoff`` of the ``ws``
            (``None``: all).
        noise_mode: ``"const"`` (deterministic, default), ``"random"``
            (fresh noise each call, not keyed by sample index) or ``"none"``.
        synthesis_kwargs: more keyword arguments for the synthesis blocks or layers
            (e.g. ``force_fp32=True`` for fp16 networks).
        discriminator: ``D(img, c)`` or a ready :class:`Discriminator`.
        discriminator_output: its convention (default ``"logit"``: the logistic loss).
        classifier: a :class:`Classifier` (or module with ``num_classes``).

    Labels are class indices; the adapter passes them one-hot as ``c``.
    """

    name = "stylegan2"
    required_attributes = ("z_dim", "c_dim", "mapping", "synthesis")
    other_convention = "For rosinality's stylegan2-pytorch use RosinalityStyleGAN2Adapter"

    def __init__(
        self,
        generator: nn.Module,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: NoiseMode = "const",
        synthesis_kwargs: dict[str, Any] | None = None,
        discriminator: nn.Module | Discriminator | None = None,
        discriminator_output: ScoreKind | str = ScoreKind.LOGIT,
        classifier: nn.Module | Classifier | None = None,
    ) -> None:
        super().__init__(
            generator, truncation_psi=truncation_psi, noise_mode=noise_mode, discriminator=discriminator,
            discriminator_output=discriminator_output, classifier=classifier,
        )
        self.truncation_cutoff = None if truncation_cutoff is None else check_count(truncation_cutoff, "truncation_cutoff")
        self.synthesis_kwargs = {"noise_mode": noise_mode, **(synthesis_kwargs or {})}
        synthesis = generator.synthesis
        if hasattr(synthesis, "block_resolutions"):
            self._stages: _Synthesis = _NVlabsBlocks(synthesis, self.synthesis_kwargs)
        elif hasattr(synthesis, "layer_names") and hasattr(synthesis, "input"):
            self._stages = _NVlabsLayers(synthesis, self.synthesis_kwargs)
        else:
            raise InputError(
                f"{type(synthesis).__name__} (G.synthesis) has neither block_resolutions (StyleGAN2) nor input and layer_names "
                "(StyleGAN3); wrap other generators with TorchAdapter and a call= function instead"
            )
        self.prior = LatentPrior.of(int(generator.z_dim))
        self.c_dim = int(generator.c_dim)
        self.num_classes = self.c_dim if self.c_dim > 0 else None

    def _wrap_discriminator(self, discriminator: nn.Module | Discriminator, output: ScoreKind | str) -> Discriminator:
        return stylegan2_discriminator(discriminator, output=output)

    @property
    def w_avg(self) -> torch.Tensor:
        """The tracked average ``w`` (``G.mapping.w_avg``), ``[w_dim]``."""
        return self.generator.mapping.w_avg

    @property
    def synthesis_stages(self) -> _Synthesis:
        return self._stages

    def labels_from_native(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.argmax(dim=1) if labels.dim() == 2 else labels

    def _c(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return _one_hot(labels, self.c_dim, latents.shape[0], latents.device)

    def _generate_at(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        img = self.generator(
            latents, self._c(latents, labels), truncation_psi=psi, truncation_cutoff=self.truncation_cutoff, **self.synthesis_kwargs
        )
        return img.clamp(*CHAIN_RANGE)

    def mapping(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator.mapping(
            latents, self._c(latents, labels), truncation_psi=self.truncation_psi, truncation_cutoff=self.truncation_cutoff
        )


# --- rosinality ----------------------------------------------------------------------------------


class RosinalityStyleGAN2Adapter(_StyleGAN2Base):
    """Adapter for rosinality's stylegan2-pytorch ``Generator`` (unconditional).

    Args:
        generator: ``Generator(size, style_dim, n_mlp, ...)``.
        truncation_psi: w-space truncation, in [0, 1]: the default of every
            call; the ``truncation`` sampler overrides it per chain
        truncation_latent: ``w_avg`` ``[1, style_dim]``; default: the mean of
            ``G.style(z)`` over ``DEFAULTS.stylegan_mean_latent_samples``
            latents keyed by ``seed`` (rosinality's ``mean_latent`` with a
            reproducible draw).
        noise_mode: ``"const"`` (the registered noise buffers,
            ``randomize_noise=False``; default), ``"random"`` or ``"none"`` (zeros).
        discriminator: rosinality's ``Discriminator`` or a ready :class:`Discriminator`.
        discriminator_output: default ``"logit"`` (logistic loss).
        classifier: a :class:`Classifier`.
        seed: keys the draw of ``truncation_latent``.
    """

    name = "stylegan2_rosinality"
    required_attributes = ("style", "style_dim", "n_latent", "num_layers", "convs", "to_rgbs")
    other_convention = "For NVlabs networks use StyleGAN2Adapter"

    def __init__(
        self,
        generator: nn.Module,
        *,
        truncation_psi: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
        noise_mode: NoiseMode = "const",
        discriminator: nn.Module | Discriminator | None = None,
        discriminator_output: ScoreKind | str = ScoreKind.LOGIT,
        classifier: nn.Module | Classifier | None = None,
        seed: int = DEFAULTS.seed,
    ) -> None:
        super().__init__(
            generator, truncation_psi=truncation_psi, noise_mode=noise_mode, discriminator=discriminator,
            discriminator_output=discriminator_output, classifier=classifier,
        )
        self.prior = LatentPrior.of(int(generator.style_dim))
        if truncation_latent is None:
            indices = torch.arange(DEFAULTS.stylegan_mean_latent_samples)
            with torch.no_grad():
                truncation_latent = generator.style(normal(seed, indices, (generator.style_dim,), "stylegan_mean_latent").to(self.device)).mean(0, keepdim=True)
        self.truncation_latent = truncation_latent.detach().reshape(1, -1)
        self._stages = _RosinalityBlocks(self)

    def _wrap_discriminator(self, discriminator: nn.Module | Discriminator, output: ScoreKind | str) -> Discriminator:
        return stylegan2_discriminator(discriminator, output=output)

    @property
    def w_avg(self) -> torch.Tensor:
        """The truncation centre, ``[style_dim]``."""
        return self.truncation_latent[0]

    @property
    def synthesis_stages(self) -> _Synthesis:
        return self._stages

    def _noise(self) -> list[torch.Tensor | None]:
        G = self.generator
        if self.noise_mode == "random":
            return [None] * G.num_layers
        buffers = [getattr(G.noises, f"noise_{i}") for i in range(G.num_layers)]
        return buffers if self.noise_mode == "const" else [torch.zeros_like(b) for b in buffers]

    def _generate_at(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        img, _ = self.generator(
            [latents], truncation=psi, truncation_latent=self.truncation_latent.to(latents.device), noise=self._noise()
        )
        return img.clamp(*CHAIN_RANGE)

    def mapping(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        w = self.generator.style(latents)
        if self.truncation_psi < 1:
            centre = self.truncation_latent.to(w.device)
            w = centre + self.truncation_psi * (w - centre)
        return w.unsqueeze(1).repeat(1, self.generator.n_latent, 1)



class _RosinalityBlocks(_SkipBlocks):
    """rosinality's synthesis as blocks: ``input, conv1, to_rgb1``, then pairs of ``convs`` with a ``to_rgbs`` each."""

    def __init__(self, adapter: RosinalityStyleGAN2Adapter) -> None:
        super().__init__([4 * 2**k for k in range(len(adapter.generator.to_rgbs) + 1)], img_channels=3)
        self.adapter = adapter

    def has_image(self, position: int) -> bool:
        return True

    def run(self, position: int, state: State, ws: torch.Tensor) -> State:
        G, noise = self.adapter.generator, self.adapter._noise()
        if position == 0:  # rosinality's forward: input, conv1, to_rgb1
            x = G.conv1(G.input(ws), ws[:, 0], noise=noise[0])
            return x, G.to_rgb1(x, ws[:, 1])
        x, img = state
        i = 2 * position - 1  # the first style index of this block, as rosinality's loop counts
        x = G.convs[i - 1](x, ws[:, i], noise=noise[i])
        x = G.convs[i](x, ws[:, i + 1], noise=noise[i + 1])
        return x, G.to_rgbs[position - 1](x, ws[:, i + 2], img)


def stylegan2_adapter(generator: nn.Module, **options: Any) -> Adapter:
    """The adapter for ``generator``'s convention: NVlabs (``mapping``/``synthesis``) or rosinality (``style``/``convs``)."""
    if hasattr(generator, "mapping") and hasattr(generator, "synthesis"):
        return StyleGAN2Adapter(generator, **options)
    if hasattr(generator, "style") and hasattr(generator, "convs"):
        return RosinalityStyleGAN2Adapter(generator, **options)
    raise InputError(
        f"{type(generator).__name__} follows neither StyleGAN2 convention (NVlabs: .mapping and .synthesis; "
        "rosinality: .style and .convs); wrap it with TorchAdapter and a call= function instead"
    )


# --- checkpoints -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _on_sys_path(root: str | os.PathLike[str] | None) -> Iterator[None]:
    if root is None:
        yield
        return
    sys.path.insert(0, os.fspath(root))
    try:
        yield
    finally:
        sys.path.remove(os.fspath(root))


def load_nvlabs_pickle(
    path: str | os.PathLike[str],
    *,
    allow_code_execution: bool = False,
    nvlabs_root: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Load a network pickle of stylegan2-ada-pytorch / stylegan3 (``{'G', 'D', 'G_ema', ...}``).

    These pickles carry the networks' source code and run it while loading
    (``torch_utils.persistence``): loading one runs whatever its author put in
    it. This function therefore refuses unless ``allow_code_execution=True``,
    and warns (:class:`CodeExecutionWarning`) when it does load. Only load
    pickles from sources you trust.

    Args:
        path: the ``.pkl`` file.
        allow_code_execution: the explicit opt-in; default ``False`` refuses.
        nvlabs_root: a checkout of the NVlabs repository, put on ``sys.path``
            while unpickling (its ``torch_utils`` and ``dnnlib`` must be importable).

    Raises:
        UnsafeCheckpointError: without the opt-in (nothing is read).
        CheckpointError: if the file is missing or is not such a pickle.
    """
    path = os.fspath(path)

    def unpickle(file: IO[bytes]) -> Any:
        with _on_sys_path(nvlabs_root):
            try:
                return pickle.load(file)  # noqa: S301 - the caller opted in (load_code_pickle checks)
            except ModuleNotFoundError as error:
                raise CheckpointError(
                    f"unpickling {path!r} needs the NVlabs code ({error.name!r} is missing); pass nvlabs_root= pointing "
                    "to a stylegan2-ada-pytorch or stylegan3 checkout"
                ) from error

    data = load_code_pickle(
        path, "StyleGAN2 network pickle", allow=allow_code_execution, load=unpickle, stacklevel=3,
        opt_in="call load_nvlabs_pickle(path, allow_code_execution=True) (NVlabs' torch_utils.persistence runs code from it)",
    )
    if not isinstance(data, dict) or not any(key in data for key in ("G", "G_ema", "D")):
        raise CheckpointError(f"{path!r} is not a StyleGAN2 network pickle (expected a dict with 'G_ema', 'G', 'D')")
    return data


def load_rosinality_checkpoint(path: str | os.PathLike[str], key: str | None = "g_ema") -> dict[str, Any]:
    """State dicts from a rosinality checkpoint (``{'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args'}``).

    Loaded with ``torch.load(weights_only=True)`` (no code runs; the stored
    ``argparse.Namespace`` of training arguments is allowed). Returns the state
    dict under ``key`` (``"g_ema"`` by default; load it with
    ``G.load_state_dict(...)``), or the whole dict for ``key=None``.
    """
    path = os.fspath(path)
    checkpoint = torch_load_weights(path, "rosinality checkpoint", allowed=[argparse.Namespace])
    if key is None:
        return checkpoint
    if not isinstance(checkpoint, dict) or key not in checkpoint:
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path!r} has no {key!r} entry (found {found})")
    return checkpoint[key]


@hookimpl
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    return [StyleGAN2Adapter, RosinalityStyleGAN2Adapter]
