"""Discriminator guidance (DG) and diffusion rejection sampling (DiffRS) inside diffusers pipelines.

* :class:`DGPipeline` wraps a pipeline so that, for the duration of each
  call, its denoiser (``pipe.unet`` or ``pipe.transformer``) is a
  :class:`DGDenoiser`: the model's prediction is corrected with
  ``s + w * grad log d / (1 - d)`` (Kim et al., ICML 2023) *before* the
  scheduler step sees it (a ``callback_on_step_end`` runs after the step,
  too late). DDPM, DDIM, DiT and Stable Diffusion pipelines, with or without
  classifier-free guidance, epsilon / v / x_0 predictions.
* :class:`DiffusersDiffRS` runs DiffRS (Na et al., ICML 2024) with a
  pipeline's UNet and ``DDPMScheduler``.
* :class:`DDIMDiffusionAdapter` (registered as ``"diffusion_ddim"``) is a
  pipeline's UNet seen as a generator ``x_T -> x_0`` through deterministic
  DDIM sampling (eta = 0), with or without DG, so a diffusion model runs in a
  :class:`~gan_postproc.Chain` like any GAN (e.g. DG, then BIGRoC).
* :func:`load_digits_diffusion_pipeline` and :func:`load_digits_dg_discriminator`
  load the shipped digits diffusion model and its discriminator.

**Classifier-free guidance.** A CFG pipeline calls the denoiser on a doubled
batch ``[x_t; x_t]`` (unconditional and conditional halves; DiT: conditional
first) and combines the halves as ``e = e_u + s (e_c - e_u)``. Adding the
same correction ``delta`` to both halves adds exactly ``delta`` to the guided
prediction, because the combination is affine with weights ``(1 - s) + s = 1``:
``(e_u + delta) + s ((e_c + delta) - (e_u + delta)) = e + delta``. So the
wrapper computes the discriminator's gradient once on the real batch (the two
halves hold the same x_t) and adds the correction to both halves: the
*guided* prediction is corrected by exactly w. Correcting only the
conditional half would scale the correction by s (``e + s delta``), making the
DG weight depend on the CFG scale. (Stable Diffusion's optional
``guidance_rescale`` rescales the guided prediction afterwards and so rescales
the correction with it.) A class-conditional discriminator gets the call's
``class_labels`` (DiT); text-conditional discriminators are not supported.

**Weight 0** (or a timestep outside ``time_range``) returns the denoiser's
output object untouched, so the wrapped pipeline reproduces the unwrapped one
exactly.

diffusers is imported only when these are used; without it they raise an
error naming ``pip install 'gan-postproc[diffusers]'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from gan_postproc import hookimpl
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.priors import LatentPrior
from gan_postproc.plugins.discriminator_guidance import (
    DEFAULTS,
    PREDICTION_TYPES,
    AncestralSchedule,
    DiffRS,
    DiffRSStatistics,
    TimeDependentDiscriminator,
    correct_prediction,
    in_time_range,
    log_ratio_and_gradient,
)
from gan_postproc.plugins.discriminator_guidance.guidance import check_time_range
from gan_postproc.rng import stream_key
from gan_postproc.validation import check_count, check_number

from .adapter import decode_latents, require_diffusers
from .callback_pipeline import call_signature

__all__ = [
    "DGDenoiser",
    "DGPipeline",
    "DiffusersDiffRS",
    "DDIMDiffusionAdapter",
    "sample_pipeline",
    "DIGITS_UNET_CONFIG",
    "DIGITS_SCHEDULER_CONFIG",
    "DIGITS_DIFFUSION_FILES",
    "DIGITS_INFERENCE_STEPS",
    "load_digits_diffusion_pipeline",
    "load_digits_dg_discriminator",
    "digits_dg_feature_extractor",
]

#: Architecture of the shipped digits diffusion model (``diffusers.UNet2DModel`` arguments).
DIGITS_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 8, "in_channels": 1, "out_channels": 1, "block_out_channels": (32, 32), "layers_per_block": 1,
    "norm_num_groups": 8, "down_block_types": ("DownBlock2D", "DownBlock2D"), "up_block_types": ("UpBlock2D", "UpBlock2D"),
}
#: Its noise schedule (``diffusers.DDPMScheduler`` arguments; the rest are diffusers' defaults).
DIGITS_SCHEDULER_CONFIG: dict[str, Any] = {"num_train_timesteps": 1000, "beta_schedule": "linear", "clip_sample": True}
#: Shipped files of the ``digits_diffusion`` asset group.
DIGITS_DIFFUSION_FILES: dict[str, str] = {"unet": "unet.safetensors", "discriminator": "dg_discriminator.safetensors"}
#: DDPM steps the shipped discriminator was trained for and the benchmark samples with.
DIGITS_INFERENCE_STEPS = 25

_DENOISERS = ("unet", "transformer")


# --- checks -------------------------------------------------------------------------------


def _denoiser_name(pipeline: Any) -> str:
    found = [name for name in _DENOISERS if isinstance(getattr(pipeline, name, None), nn.Module)]
    if not found:
        raise InputError(
            f"{type(pipeline).__name__} has no denoiser DG can wrap (looked for a torch module at pipe.unet or "
            "pipe.transformer); DG needs a pipeline that calls one of them once per step"
        )
    return found[0]


def _denoiser_sample_shape(denoiser: nn.Module) -> tuple[int, ...] | None:
    config = getattr(denoiser, "config", None)
    channels, size = getattr(config, "in_channels", None), getattr(config, "sample_size", None)
    if channels is None or size is None:
        return None
    size = (size, size) if isinstance(size, int) else tuple(size)
    return (int(channels), *(int(s) for s in size))


def _schedule(pipeline: Any, discriminator: TimeDependentDiscriminator) -> tuple[torch.Tensor, str]:
    """The scheduler's ``alphas_cumprod`` and prediction type, checked against the discriminator."""
    scheduler = getattr(pipeline, "scheduler", None)
    alphas = getattr(scheduler, "alphas_cumprod", None)
    name = type(scheduler).__name__
    if not isinstance(alphas, torch.Tensor):
        raise InputError(
            f"the pipeline's scheduler ({name}) has no alphas_cumprod: DG corrects denoisers of variance-preserving "
            "diffusion (DDPM, DDIM, PNDM, DPM-Solver, Euler, ... schedulers); flow-matching schedulers are not supported"
        )
    prediction_type = getattr(scheduler.config, "prediction_type", "epsilon")
    if prediction_type not in PREDICTION_TYPES:
        raise InputError(f"{name} has prediction_type {prediction_type!r}; DG handles {list(PREDICTION_TYPES)}")
    if len(alphas) != discriminator.num_timesteps:
        raise InputError(
            f"the discriminator embeds {discriminator.num_timesteps} timesteps but the scheduler's training schedule has "
            f"{len(alphas)} (num_train_timesteps): the time embedding would not match; train the discriminator on this schedule"
        )
    return alphas.detach().double().cpu(), prediction_type


def check_discriminator(pipeline: Any, discriminator: object) -> tuple[str, torch.Tensor, str]:
    if not isinstance(discriminator, TimeDependentDiscriminator):
        raise InputTypeError(f"discriminator must be a TimeDependentDiscriminator, got {type(discriminator).__name__}")
    name = _denoiser_name(pipeline)
    shape = _denoiser_sample_shape(getattr(pipeline, name))
    if shape is not None and shape != discriminator.input_shape:
        raise InputError(
            f"the discriminator takes x_t of shape {discriminator.input_shape}, but pipe.{name} denoises {shape} "
            "(in_channels, sample_size); train the discriminator in this model's space (pixels or its VAE's latents)"
        )
    alphas, prediction_type = _schedule(pipeline, discriminator)
    return name, alphas, prediction_type


def _timesteps(timestep: Any, n: int, device: torch.device) -> torch.Tensor:
    """The denoiser's ``timestep`` argument (a number, a 0-d or an [N] tensor) as integer timesteps ``[N]``."""
    t = torch.as_tensor(timestep, device=device).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise InputError(f"the denoiser got {t.numel()} timesteps for a batch of {n}")
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise InputError(
                f"DG needs integer timesteps of the training schedule, got {t[:3].tolist()}...; use a scheduler whose "
                "timesteps are integers (DDPM, DDIM, PNDM, DPM-Solver with default spacing)"
            )
        t = t.round()
    return t.long()


# --- the denoiser wrapper -----------------------------------------------------------------


class DGDenoiser(nn.Module):
    """A pipeline's denoiser whose prediction is DG-corrected before the scheduler step.

    Called exactly like the wrapped ``unet`` / ``transformer`` and returning
    the same type (its output dataclass, or the tuple of ``return_dict=False``).
    Attributes not found here (``config``, ``dtype``, ``device``, ...) are the
    wrapped model's. With a learned variance (DiT: ``out_channels = 2 *
    in_channels``) only the first ``in_channels`` channels (the prediction) are corrected.

    Args:
        denoiser: the pipeline's ``unet`` or ``transformer``.
        discriminator: the time-dependent discriminator, in the denoiser's input space.
        alphas_cumprod: ``[T]`` of the scheduler; prediction_type: its ``prediction_type``.
        weight: w; time_range: fractions ``t / T`` where guidance applies.
    """

    def __init__(
        self,
        denoiser: nn.Module,
        discriminator: TimeDependentDiscriminator,
        *,
        alphas_cumprod: torch.Tensor,
        prediction_type: str,
        weight: float = DEFAULTS.guidance_weight,
        time_range: tuple[float, float] = DEFAULTS.guidance_time_range,
    ) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.discriminator = discriminator
        self.alphas_cumprod = alphas_cumprod
        self.prediction_type = prediction_type
        self.weight = check_number(weight, "weight", low=0.0)
        self.time_range = check_time_range(time_range)
        #: Class labels of the real batch for a class-conditional discriminator (set per pipeline call).
        self.labels: torch.Tensor | None = None
        #: One record per guided denoiser call: timestep and mean log d / (1 - d) of the batch.
        self.trace: list[dict[str, float]] = []

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("denoiser"), name)

    def forward(self, sample: torch.Tensor, timestep: Any, *args: Any, **kwargs: Any) -> Any:
        output = self.denoiser(sample, timestep, *args, **kwargs)
        if self.weight == 0:
            return output
        t = _timesteps(timestep, sample.shape[0], sample.device)
        active = in_time_range(t, self.discriminator.num_timesteps, self.time_range)
        if not bool(active.any()):
            return output
        prediction = output[0] if isinstance(output, tuple) else output.sample
        n, channels = sample.shape[0], self.discriminator.input_shape[0]
        doubled = n % 2 == 0 and torch.equal(sample[: n // 2], sample[n // 2 :])
        if self.labels is not None and len(self.labels) == n:
            doubled = False  # labels for every row: guide each row with its own label
        rows = n // 2 if doubled else n
        labels = self.labels
        if labels is not None and len(labels) != rows:
            raise InputError(f"the class-conditional discriminator got {len(labels)} labels for a batch of {rows} samples")
        logit, gradient = log_ratio_and_gradient(self.discriminator, sample[:rows], t[:rows], labels)
        gradient = gradient * active[:rows].to(gradient.device).view(-1, *([1] * (gradient.dim() - 1)))
        abar = self.alphas_cumprod[t[:rows].cpu()]
        own = prediction[:rows, :channels]
        delta = correct_prediction(own.float(), self.prediction_type, gradient, abar, self.weight) - own.float()
        if doubled:
            delta = torch.cat([delta, delta])
        corrected = prediction.clone()
        corrected[:, :channels] = (prediction[:, :channels].float() + delta.to(prediction.device)).to(prediction.dtype)
        self.trace.append({"timestep": float(t[0]), "mean_log_ratio": float(logit.mean())})
        if isinstance(output, tuple):
            return (corrected, *output[1:])
        return dataclasses.replace(output, sample=corrected)


class DGPipeline:
    """A diffusers pipeline sampled with discriminator guidance (see the module docstring).

    Everything is checked when the wrapper is built, before any sampling: a
    pipeline without a wrappable denoiser, a scheduler without a
    variance-preserving schedule or with an unhandled prediction type, a
    discriminator whose input shape or number of timesteps does not match.
    Each call swaps the denoiser for a :class:`DGDenoiser` and restores it
    afterwards (also on errors); calls are not thread-safe. Attributes of the
    pipeline are readable through the wrapper, and it composes with
    :class:`~gan_postproc.integrations.diffusers.CallbackPipeline` and
    :class:`~gan_postproc.integrations.diffusers.DiffusersPostprocessor`
    (``DiffusersPostprocessor([...]).wrap(DGPipeline(pipe, D))``: DG while
    sampling, BIGRoC after).

    Args:
        pipeline: a diffusers pipeline whose denoiser is ``unet`` or ``transformer``.
        discriminator: a trained :class:`TimeDependentDiscriminator` (moved to the denoiser's device).
        weight: w of ``s + w * grad log d / (1 - d)`` (0: the plain pipeline, exactly).
        time_range: fractions ``t / T`` of the training schedule where guidance applies.

    Attributes:
        report: after a call, ``{"guided_steps", "weight", "time_range", "mean_log_ratio_first", "mean_log_ratio_last"}``.

    Example::

        guided = DGPipeline(DDPMPipeline(unet=unet, scheduler=scheduler), discriminator, weight=2.0)
        images = guided(batch_size=16, num_inference_steps=50, output_type="np").images
    """

    #: Wrappers of gan-postproc report the wrapped pipeline's call signature (see diffusers_pipeline.call_signature).
    wraps_pipeline = True

    def __init__(
        self,
        pipeline: Any,
        discriminator: TimeDependentDiscriminator,
        *,
        weight: float = DEFAULTS.guidance_weight,
        time_range: tuple[float, float] = DEFAULTS.guidance_time_range,
    ) -> None:
        require_diffusers("DGPipeline")
        if not callable(pipeline) or not hasattr(pipeline, "components"):
            raise InputTypeError(f"pipeline must be a diffusers DiffusionPipeline, got {type(pipeline).__name__}")
        self.denoiser_name, alphas, prediction_type = check_discriminator(pipeline, discriminator)
        denoiser = getattr(pipeline, self.denoiser_name)
        device = next((p.device for p in denoiser.parameters()), torch.device("cpu"))
        self.pipeline = pipeline
        self.guide = DGDenoiser(denoiser, discriminator.to(device).eval(), alphas_cumprod=alphas, prediction_type=prediction_type,
                                weight=weight, time_range=time_range)
        self.report: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name in ("pipeline", "guide", "denoiser_name", "report"):
            raise AttributeError(name)
        return getattr(self.pipeline, name)

    @contextlib.contextmanager
    def guiding(self, labels: torch.Tensor | None = None) -> Iterator[DGDenoiser]:
        """The pipeline with its denoiser swapped for the guided one, for a ``with`` block."""
        original = getattr(self.pipeline, self.denoiser_name)
        if original is self.guide:
            raise InputError("this pipeline is already being guided (a DGPipeline call in progress?)")
        self.guide.denoiser = original
        self.guide.labels, self.guide.trace = labels, []
        # object.__setattr__: diffusers' DiffusionPipeline.__setattr__ would rewrite the pipeline's config.
        object.__setattr__(self.pipeline, self.denoiser_name, self.guide)
        try:
            yield self.guide
        finally:
            object.__setattr__(self.pipeline, self.denoiser_name, original)

    def _labels(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
        """The call's class labels for a class-conditional discriminator; refuses a call whose image size gives
        latents the discriminator does not take (``height`` / ``width`` of Stable Diffusion-like pipelines)."""
        discriminator = self.guide.discriminator
        try:
            arguments = call_signature(self.pipeline).bind(*args, **kwargs).arguments
        except TypeError as error:
            raise InputError(f"bad arguments for {type(self.pipeline).__name__}: {error}") from error
        factor = getattr(self.pipeline, "vae_scale_factor", None)
        size = tuple(arguments.get(key) for key in ("height", "width"))
        if isinstance(factor, int) and all(isinstance(s, int) for s in size):
            latent = tuple(s // factor for s in size)
            if latent != discriminator.input_shape[1:]:
                raise InputError(
                    f"height x width {size[0]} x {size[1]} gives latents {latent}, but the discriminator takes "
                    f"{discriminator.input_shape[1:]}; sample at the size the discriminator was trained for"
                )
        if discriminator.num_classes is None:
            return None
        labels = arguments.get("class_labels")
        if labels is None:
            raise InputError(
                f"the discriminator is class-conditional ({discriminator.num_classes} classes): call the pipeline with "
                "class_labels (DiT), or use an unconditional discriminator"
            )
        return torch.as_tensor([labels] if isinstance(labels, int) else labels, dtype=torch.long).reshape(-1)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the pipeline with DG inside; same arguments and result as the pipeline."""
        labels = self._labels(args, kwargs)
        with self.guiding(labels) as guide:
            output = self.pipeline(*args, **kwargs)
        trace = guide.trace
        self.report = {
            "guided_steps": len(trace), "weight": guide.weight, "time_range": list(guide.time_range),
            "mean_log_ratio_first": trace[0]["mean_log_ratio"] if trace else None,
            "mean_log_ratio_last": trace[-1]["mean_log_ratio"] if trace else None,
        }
        return output


# --- DiffRS on DDPM pipelines ------------------------------------------------------------------


class DiffusersDiffRS:
    """DiffRS (Na et al., ICML 2024) with a diffusers pipeline's UNet, ``DDPMScheduler`` and decoder.

    The base sampler is the pipeline's own: DDPM ancestral steps at the
    scheduler's timesteps for ``num_inference_steps`` (``DDPMScheduler.step``
    with ``variance_type="fixed_small"``, x_0 clipped as the scheduler's
    ``clip_sample`` says), rewritten in
    :class:`~gan_postproc.plugins.discriminator_guidance.AncestralSchedule`
    so each sample can sit at its own timestep. Unconditional UNets only
    (``unet(x, t)``); latent pipelines are decoded with the pipeline's VAE /
    VQ model at the end.

    Args:
        pipeline: a pipeline with ``unet`` and a ``DDPMScheduler`` (DDPMPipeline, ...).
        discriminator: the time-dependent discriminator of the UNet's input space.
        num_inference_steps: K, the sampler's steps.
        percentile, backsteps, max_rounds_per_step: see :class:`~gan_postproc.plugins.discriminator_guidance.DiffRS`.

    Raises:
        InputError: before any work, for another scheduler, a thresholding or
            learned-variance scheduler, or a discriminator that does not match.
    """

    def __init__(
        self,
        pipeline: Any,
        discriminator: TimeDependentDiscriminator,
        *,
        num_inference_steps: int,
        percentile: float = DEFAULTS.diffrs_percentile,
        backsteps: int = DEFAULTS.diffrs_backsteps,
        max_rounds_per_step: int = DEFAULTS.diffrs_max_rounds_per_step,
    ) -> None:
        diffusers = require_diffusers("DiffusersDiffRS")
        name, alphas, prediction_type = check_discriminator(pipeline, discriminator)
        scheduler = pipeline.scheduler
        if name != "unet" or not isinstance(scheduler, diffusers.DDPMScheduler):
            raise InputError(
                f"DiffusersDiffRS runs DDPM ancestral steps with pipe.unet and a DDPMScheduler; got pipe.{name} and "
                f"{type(scheduler).__name__}"
            )
        if scheduler.config.thresholding or scheduler.config.variance_type != "fixed_small":
            raise InputError(
                "DiffusersDiffRS reproduces DDPMScheduler.step with variance_type='fixed_small' and no thresholding; "
                f"this scheduler has variance_type={scheduler.config.variance_type!r}, thresholding={scheduler.config.thresholding}"
            )
        self.pipeline, self.unet = pipeline, pipeline.unet
        self.device = next(self.unet.parameters()).device
        self.discriminator = discriminator.to(self.device).eval()
        steps = check_count(num_inference_steps, "num_inference_steps")
        scheduler.set_timesteps(steps)
        clip = float(scheduler.config.clip_sample_range) if scheduler.config.clip_sample else None
        self.schedule = AncestralSchedule(alphas, scheduler.timesteps.clone(), prediction_type, clip)
        self.sampler = DiffRS(self._denoise, self._log_ratio, self.schedule, discriminator.input_shape, percentile=percentile,
                              backsteps=backsteps, max_rounds_per_step=max_rounds_per_step, device=self.device)

    def _denoise(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.unet(x.to(self.unet.dtype), t).sample.float()

    def _log_ratio(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.discriminator(x, t)

    def fit_thresholds(self, n: int = DEFAULTS.diffrs_warmup_samples, *, seed: int = 0, batch_size: int = 500) -> dict[str, Any]:
        """Estimate the thresholds log M from ``n`` warm-up samples of the base sampler; returns them as a dict."""
        return self.sampler.fit_thresholds(n, seed=seed, batch_size=batch_size).as_dict()

    def sample(self, n: int, *, seed: int, first_index: int = 0, batch_size: int = 500) -> tuple[torch.Tensor, DiffRSStatistics]:
        """``n`` images ``[n, C, H, W]`` (decoded, in [-1, 1], on the CPU) for sample indices ``first_index ..``, and the statistics."""
        n, batch_size = check_count(n, "n"), check_count(batch_size, "batch_size")
        if self.sampler.thresholds is None:
            raise InputError("call fit_thresholds(...) before sample(...)")
        images, total = [], DiffRSStatistics()
        for start in range(first_index, first_index + n, batch_size):
            indices = torch.arange(start, min(start + batch_size, first_index + n))
            latents, stats = self.sampler.sample(indices, seed)
            with torch.no_grad():
                images.append(decode_latents(self.pipeline, latents).clamp(-1, 1).cpu())
            total.merge(stats)
        return torch.cat(images), total


# --- a diffusion model as a generator ------------------------------------------------------------


class DDIMDiffusionAdapter(Adapter):
    """A pipeline's UNet as a generator: initial noise ``x_T`` -> sample, by deterministic DDIM (Song et al. 2021, eta = 0).

    The latents are ``x_T ~ N(0, I)`` over the UNet's sample shape (the
    prior); ``generate`` runs ``num_inference_steps`` DDIM steps with a
    ``DDIMScheduler`` built from the pipeline scheduler's config (so the same
    training schedule and prediction type), with the DG correction when a
    discriminator is given, and decodes with the pipeline's VAE / VQ model
    (identity for pixel space). Images ``[N, C, H, W]`` in [-1, 1]. With eta = 0
    the map is deterministic, so samples are keyed by their latents like any
    GAN's. Unconditional UNets (``unet(x, t)``) only. Differentiable in the
    latents only through all steps (slow): methods that refine images (BIGRoC)
    are the natural companions.

    Args:
        pipeline: a diffusers pipeline with ``unet`` and a scheduler with ``alphas_cumprod``.
        num_inference_steps: DDIM steps.
        discriminator, weight, time_range: DG inside the sampler (see :class:`DGPipeline`); none: plain DDIM.
    """

    name = "diffusion_ddim"

    def __init__(
        self,
        pipeline: Any,
        *,
        num_inference_steps: int,
        discriminator: TimeDependentDiscriminator | None = None,
        weight: float = DEFAULTS.guidance_weight,
        time_range: tuple[float, float] = DEFAULTS.guidance_time_range,
    ) -> None:
        diffusers = require_diffusers("DDIMDiffusionAdapter")
        if _denoiser_name(pipeline) != "unet":
            raise InputError(f"DDIMDiffusionAdapter runs pipe.unet(x, t); {type(pipeline).__name__} has a transformer")
        self.pipeline, self.unet = pipeline, pipeline.unet
        shape = _denoiser_sample_shape(self.unet)
        if shape is None:
            raise InputError("cannot read the UNet's sample shape (config.in_channels, config.sample_size)")
        self.prior = LatentPrior.of(shape)
        self.scheduler = diffusers.DDIMScheduler.from_config(pipeline.scheduler.config)
        self.num_inference_steps = check_count(num_inference_steps, "num_inference_steps")
        self.denoiser: nn.Module = self.unet
        if discriminator is not None:
            _, alphas, prediction_type = check_discriminator(pipeline, discriminator)
            self.denoiser = DGDenoiser(self.unet, discriminator.to(self.device).eval(), alphas_cumprod=alphas,
                                       prediction_type=prediction_type, weight=weight, time_range=time_range)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def to(self, device: torch.device | str) -> DDIMDiffusionAdapter:
        self.pipeline.to(device)
        if isinstance(self.denoiser, DGDenoiser):
            self.denoiser.discriminator.to(device)
        return self

    def _generate(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        self.scheduler.set_timesteps(self.num_inference_steps, device=self.device)
        # Keep the graph through every step only when someone differentiates with respect to the latents.
        with torch.set_grad_enabled(torch.is_grad_enabled() and latents.requires_grad):
            x = latents.to(self.unet.dtype) * self.scheduler.init_noise_sigma
            for t in self.scheduler.timesteps:
                prediction = self.denoiser(self.scheduler.scale_model_input(x, t), t).sample
                x = self.scheduler.step(prediction, t, x, eta=0.0).prev_sample
            return decode_latents(self.pipeline, x).clamp(-1, 1)


# --- sampling a pipeline -------------------------------------------------------------------------


def sample_pipeline(pipeline: Any, n: int, *, seed: int, batch_size: int = 500, **call: Any) -> torch.Tensor:
    """``n`` samples of a pixel-space pipeline as images ``[n, C, H, W]`` in [-1, 1] (CPU), e.g. DG training data.

    Batch ``b`` (rows ``b * batch_size ..``) draws its noise from a generator
    seeded by ``(seed, b * batch_size)``, so the same ``seed`` and
    ``batch_size`` give the same samples (diffusers draws a call's noise from
    one generator, so other batch sizes give other samples). ``call`` is passed
    to the pipeline (``num_inference_steps=...``; ``output_type`` is ``"pt"``).
    """
    n, batch_size = check_count(n, "n"), check_count(batch_size, "batch_size")
    if "output_type" in call or "generator" in call or "batch_size" in call:
        raise InputError("sample_pipeline sets batch_size, generator and output_type itself; pass the other call arguments")
    device = next(getattr(pipeline, _denoiser_name(pipeline)).parameters()).device
    chunks = []
    for start in range(0, n, batch_size):
        generator = torch.Generator(device).manual_seed(stream_key(f"sample_pipeline/{seed}/{start}") & (2**63 - 1))
        images = pipeline(batch_size=min(batch_size, n - start), generator=generator, output_type="pt", **call).images
        images = torch.as_tensor(images)
        if images.dim() == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
            images = images.permute(0, 3, 1, 2)  # numpy NHWC from pipelines that ignore "pt"
        chunks.append(images.float().cpu() * 2 - 1)
    return torch.cat(chunks)


# --- the shipped digits diffusion model -----------------------------------------------------------


def digits_dg_feature_extractor() -> nn.Module:
    """The frozen feature extractor of the shipped digits DG discriminator: the body of the shipped *normal*
    digits classifier (``[N, 1, 8, 8]`` -> ``[N, 512]``), never the measuring feature network."""
    from gan_postproc.models.digits import load_digits_classifier

    return load_digits_classifier().body.eval()


def load_digits_diffusion_pipeline() -> Any:
    """The shipped digits diffusion model as a ``DDPMPipeline`` (UNet2DModel + DDPMScheduler, eval mode, no progress bar).

    Trained by ``benchmarks/train_digits_diffusion.py`` on the digits train
    split; ``assets/digits_diffusion/manifest.json`` records how and what it
    measured. Sample it with ``num_inference_steps=DIGITS_INFERENCE_STEPS``
    (what its DG discriminator was trained for). Images ``[N, 1, 8, 8]``.
    """
    diffusers = require_diffusers("load_digits_diffusion_pipeline")
    from gan_postproc.models.assets import load_shipped_state, load_state_dict_strict, read_manifest

    entry = read_manifest("digits_diffusion").get("files", {}).get(DIGITS_DIFFUSION_FILES["unet"], {})
    unet = diffusers.UNet2DModel(**entry.get("config", DIGITS_UNET_CONFIG))
    load_state_dict_strict(unet, load_shipped_state("digits_diffusion", DIGITS_DIFFUSION_FILES["unet"]), "shipped digits UNet")
    scheduler = diffusers.DDPMScheduler(**entry.get("scheduler", DIGITS_SCHEDULER_CONFIG))
    pipeline = diffusers.DDPMPipeline(unet=unet.eval(), scheduler=scheduler)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def load_digits_dg_discriminator() -> TimeDependentDiscriminator:
    """The shipped DG discriminator of the digits diffusion model, on :func:`digits_dg_feature_extractor` (eval mode)."""
    from gan_postproc.models.assets import asset_path, load_shipped_state

    load_shipped_state("digits_diffusion", DIGITS_DIFFUSION_FILES["discriminator"])  # checks the SHA-256 against the manifest
    return TimeDependentDiscriminator.load(asset_path("digits_diffusion", DIGITS_DIFFUSION_FILES["discriminator"]), digits_dg_feature_extractor())


@hookimpl
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    return [DDIMDiffusionAdapter]
