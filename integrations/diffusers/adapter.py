"""The adapter ``diffusers``: a diffusers pipeline's decoder seen as a generator.

:class:`DiffusersAdapter` (registered as ``"diffusers"``) maps latents ``[N, C, h, w]`` to images
``[N, 3, H, W]`` in [-1, 1] (the VAE / VQ decoder, or the identity for pixel-space pipelines):
:func:`decode_latents`. Inside the callback it decodes the latents of the current step; at the last
step that is exactly what the pipeline outputs, at earlier steps the decode of a still-noisy latent.

diffusers is imported only when this is used; without it, an error names
``pip install 'gan-postproc[diffusers]'``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from gan_postproc import hookimpl
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.optional import require
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.priors import LatentPrior
from gan_postproc.pipeline.ranges import CHAIN_RANGE
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind, as_classifier, as_discriminator
from gan_postproc.validation import check_device

__all__ = ["DiffusersAdapter", "decode_latents", "DecodeFn", "require_diffusers"]

#: ``(pipeline, latents) -> images [N, C, H, W]`` in [-1, 1], differentiable in ``latents``.
DecodeFn = Callable[[Any, torch.Tensor], torch.Tensor]


def require_diffusers(feature: str) -> Any:
    return require("diffusers", feature)


def decode_latents(pipeline: Any, latents: torch.Tensor) -> torch.Tensor:
    """The pipeline's own latents -> images step, in [-1, 1] before clamping, differentiable.

    Follows the pipelines' code: ``vae.decode(latents / scaling_factor
    (+ shift_factor))`` (Stable Diffusion, SD3, DiT), ``vqvae.decode(latents /
    scaling_factor)`` (latent diffusion), ``movq.decode(latents,
    force_not_quantize=True)`` (Kandinsky), the latents themselves for
    pixel-space pipelines (DDPM, DDIM). Pipelines with packed latents (Flux)
    need ``decode=`` instead.
    """
    for attribute in ("vae", "vqvae"):
        decoder = getattr(pipeline, attribute, None)
        if decoder is not None:
            scaling = getattr(decoder.config, "scaling_factor", None)
            if scaling is None:
                raise InputError(
                    f"the pipeline's {attribute} has no config.scaling_factor; pass decode=lambda pipe, z: ... "
                    "to DiffusersAdapter / DiffusersCallback"
                )
            z = latents / scaling
            shift = getattr(decoder.config, "shift_factor", None)
            if shift is not None:
                z = z + shift
            return decoder.decode(z.to(decoder.dtype)).sample.float()
    movq = getattr(pipeline, "movq", None)
    if movq is not None:
        return movq.decode(latents.to(movq.dtype), force_not_quantize=True).sample.float()
    if getattr(pipeline, "unet", None) is not None or getattr(pipeline, "transformer", None) is not None:
        return latents.float()  # pixel space: the latents are the images
    raise InputError(
        f"cannot tell how {type(pipeline).__name__} decodes its latents (no vae, vqvae or movq); "
        "pass decode=lambda pipe, latents: images_in_minus_one_to_one"
    )


def _infer_latent_shape(pipeline: Any) -> tuple[int, ...]:
    denoiser = getattr(pipeline, "unet", None) or getattr(pipeline, "transformer", None)
    config = getattr(denoiser, "config", None)
    channels = getattr(config, "in_channels", None)
    size = getattr(config, "sample_size", None)
    if channels is None or size is None:
        raise InputError(f"cannot infer the latent shape of {type(pipeline).__name__}; pass latent_shape=(C, h, w)")
    size = (size, size) if isinstance(size, int) else tuple(size)
    return (int(channels), *(int(s) for s in size))


class DiffusersAdapter(Adapter):
    """A diffusers pipeline's decoder as a generator: latents -> images in [-1, 1].

    Used by :class:`DiffusersCallback` on the latents of a denoising step, and
    on its own on final latents (``pipe(..., output_type="latent")``).
    Generation is differentiable in the latents. The prior is N(0, I) over the
    latent shape (the distribution the loop starts from; VAE latents are
    scaled to about unit variance by the VAE's scaling factor).

    Args:
        pipeline: a ``diffusers.DiffusionPipeline``.
        latent_shape: ``(C, h, w)`` of one latent; inferred from the
            denoiser's config (``in_channels``, ``sample_size``) when omitted.
        decode: ``(pipeline, latents) -> images`` in [-1, 1] for pipelines
            :func:`decode_latents` does not know.
        discriminator: a module or :class:`Discriminator` judging images in
            [-1, 1]; a module needs ``discriminator_output``.
        discriminator_output: ``"probability"``, ``"logit"`` or ``"critic"``.
        classifier: a :class:`Classifier` (or a module with ``num_classes``).
    """

    name = "diffusers"

    def __init__(
        self,
        pipeline: Any,
        *,
        latent_shape: Sequence[int] | None = None,
        decode: DecodeFn | None = None,
        discriminator: nn.Module | Discriminator | None = None,
        discriminator_output: ScoreKind | str | None = None,
        classifier: nn.Module | Classifier | None = None,
    ) -> None:
        require_diffusers("DiffusersAdapter")
        if not callable(pipeline) or not hasattr(pipeline, "components"):
            raise InputTypeError(f"pipeline must be a diffusers DiffusionPipeline, got {type(pipeline).__name__}")
        self.pipeline = pipeline
        self.decode = decode
        self.prior = LatentPrior.of(tuple(latent_shape) if latent_shape is not None else _infer_latent_shape(pipeline))
        self.discriminator = as_discriminator(discriminator, discriminator_output)
        self.classifier = as_classifier(classifier, None)
        for model in (self.discriminator, self.classifier):
            if model is not None:
                model.eval()

    @property
    def device(self) -> torch.device:
        return torch.device(getattr(self.pipeline, "_execution_device", None) or self.pipeline.device)

    def to(self, device: torch.device | str) -> DiffusersAdapter:
        self.pipeline.to(check_device(device))
        return self._move_models(device, self.discriminator, self.classifier)  # type: ignore[return-value]

    def _generate(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        images = self.decode(self.pipeline, latents) if self.decode is not None else decode_latents(self.pipeline, latents)
        return images.clamp(*CHAIN_RANGE)


@hookimpl
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    return [DiffusersAdapter]
