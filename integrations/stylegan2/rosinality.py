"""rosinality's stylegan2-pytorch generators (``"stylegan2_rosinality"``) and their checkpoints.

:class:`RosinalityStyleGAN2Adapter` follows rosinality's convention: ``G([z], truncation=,
truncation_latent=, input_is_latent=, randomize_noise=) -> (img, latent)``, ``G.style`` (the mapping
network), ``conv1 / to_rgb1`` then pairs of ``convs`` and ``to_rgbs``; ``D(img) -> [N, 1]``.
rosinality checkpoints are plain state dicts: :func:`load_rosinality_checkpoint` loads them with
``weights_only=True``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import torch
from torch import nn

from gan_postproc.errors import CheckpointError
from gan_postproc.files.loading import torch_load_weights
from gan_postproc.pipeline.priors import LatentPrior
from gan_postproc.pipeline.ranges import CHAIN_RANGE
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind
from gan_postproc.rng import normal

from .base import NoiseMode, SkipBlocks, State, StyleGAN2Base, Synthesis
from .defaults import DEFAULTS
from .discriminator import stylegan2_discriminator

__all__ = ["RosinalityStyleGAN2Adapter", "load_rosinality_checkpoint"]


class RosinalityStyleGAN2Adapter(StyleGAN2Base):
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
    def synthesis_stages(self) -> Synthesis:
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


class _RosinalityBlocks(SkipBlocks):
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
