"""Plugin ``discriminator_guidance``: DG and DiffRS for diffusion models, with their time-dependent discriminator.

* **DG** (Kim et al., *Refining Generative Process with Discriminator Guidance
  in Score-based Diffusion Models*, ICML 2023): a discriminator d(x_t, t) of
  noised real vs generated samples corrects the model's score during sampling,
  ``s + w * grad log d / (1 - d)`` (:mod:`.guidance`).
* **DiffRS** (Na et al., *Diffusion Rejection Sampling*, ICML 2024): the same
  discriminator's density ratio accepts or rejects each denoising step, backing
  off and redoing rejected ones (:mod:`.diffrs`).

This package is framework-agnostic: the discriminator (:mod:`.discriminator`),
its training (:mod:`.training`), the correction and the rejection logic, and
the family's defaults (:data:`DEFAULTS`). Running them inside diffusers
pipelines (the denoiser wrapper for DDPM, DDIM, DiT and Stable Diffusion, DiffRS
on DDPM pipelines, the shipped digits diffusion model) is
``gan_postproc.integrations.diffusers.guidance``; training from the command
line is ``gan-postproc train-dg``.
"""

from __future__ import annotations

from .data import SampleSource, load_samples
from .defaults import DEFAULTS, GuidanceDefaults
from .diffrs import AncestralSchedule, DiffRS, DiffRSStatistics, DiffRSThresholds
from .discriminator import TimeDependentDiscriminator, extractor_fingerprint, timestep_embedding
from .guidance import PREDICTION_TYPES, correct_prediction, in_time_range, log_ratio_and_gradient
from .training import DGTrainingReport, discriminator_accuracy, noise_samples, train_dg_discriminator

__all__ = [
    "DEFAULTS",
    "GuidanceDefaults",
    "TimeDependentDiscriminator",
    "timestep_embedding",
    "extractor_fingerprint",
    "train_dg_discriminator",
    "discriminator_accuracy",
    "noise_samples",
    "DGTrainingReport",
    "load_samples",
    "SampleSource",
    "PREDICTION_TYPES",
    "correct_prediction",
    "log_ratio_and_gradient",
    "in_time_range",
    "AncestralSchedule",
    "DiffRS",
    "DiffRSStatistics",
    "DiffRSThresholds",
]
