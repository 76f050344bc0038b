"""DG's score correction, in the parameterisation a denoiser predicts (epsilon, v or x_0).

Kim et al. (ICML 2023), Section 3: the generative process with the model score
s_theta is corrected towards the data score by the term
``c(x_t, t) = grad_x log p_t^data(x_t) / p_t^model(x_t)``. The optimal
discriminator of noised real vs generated samples is
``d*(x_t, t) = p^data / (p^data + p^model)``, so
``c = grad_x log d* / (1 - d*)``, estimated with the trained d_phi; sampling
uses ``s_theta + w * grad_x log d_phi / (1 - d_phi)`` with the guidance weight
``w`` (w = 1 is the theory's exact correction; the reference code exposes it
as ``dg_weight_1st_order`` and applies it only for diffusion times in
``[time_min, time_max]``).

A diffusers denoiser does not output a score. With the variance-preserving
forward process ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` (abar_t:
the scheduler's ``alphas_cumprod[t]``) the three parameterisations relate to
the score ``s = grad log p_t(x_t)`` by Tweedie's formula
``E[x_0 | x_t] = (x_t + (1 - abar_t) s) / sqrt(abar_t)``:

* epsilon:  ``eps = -sqrt(1 - abar_t) s``;
* x_0 ("sample"):  ``x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``;
* v (Salimans & Ho 2022; diffusers' ``v_prediction``):  ``v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0``.

Replacing s by ``s + w g`` with ``g = grad_x log d / (1 - d)`` gives

* ``eps' = eps - w sqrt(1 - abar_t) g``,
* ``x_0' = x_0 + w (1 - abar_t) / sqrt(abar_t) g``,
* ``v'   = v - w sqrt(1 - abar_t) / sqrt(abar_t) g``

(``v' - v = sqrt(abar) (eps' - eps) - sqrt(1 - abar) (x_0' - x_0)
= -w sqrt(1 - abar) g (sqrt(abar) + (1 - abar) / sqrt(abar)) = -w sqrt(1 - abar) g / sqrt(abar)``).
Every scheduler step is a function of the prediction, so correcting the
prediction before the step is the same as correcting the score the step uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch

from gan_postproc.errors import InputError
from gan_postproc.validation import check_number

from .discriminator import TimeDependentDiscriminator

__all__ = ["PredictionType", "PREDICTION_TYPES", "log_ratio_and_gradient", "correct_prediction", "in_time_range", "check_time_range"]

PredictionType = Literal["epsilon", "v_prediction", "sample"]
#: The parameterisations DG can correct (diffusers' names).
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "sample")


@contextmanager
def _gradients_on() -> Iterator[None]:
    """Gradients enabled even inside ``torch.no_grad()`` or ``torch.inference_mode()`` (a pipeline's sampling loop)."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def log_ratio_and_gradient(
    discriminator: TimeDependentDiscriminator, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log d / (1 - d)`` ``[N]`` and its input gradient ``g = grad_x log d / (1 - d)`` (``x``'s shape, float32).

    Works inside ``torch.no_grad()`` / ``inference_mode()``; never writes any
    parameter's ``.grad`` (``torch.autograd.grad``) and never modifies ``x``.
    """
    with _gradients_on():
        z = x.detach().clone().float().requires_grad_(True)
        logit = discriminator(z, t, labels)
        (gradient,) = torch.autograd.grad(logit.sum(), z)
    return logit.detach(), gradient.detach()


def correct_prediction(
    prediction: torch.Tensor, prediction_type: str, gradient: torch.Tensor, alpha_bar: torch.Tensor, weight: float
) -> torch.Tensor:
    """The denoiser's prediction with the DG-corrected score (module docstring), same shape, dtype and device.

    Args:
        prediction: ``[N, C, H, W]`` epsilon, v or x_0 prediction.
        prediction_type: ``"epsilon"``, ``"v_prediction"`` or ``"sample"``.
        gradient: ``g = grad_x log d / (1 - d)`` at x_t, ``[N, C, H, W]``.
        alpha_bar: ``abar_t`` per sample, ``[N]`` in (0, 1].
        weight: w.
    """
    abar = alpha_bar.to(gradient.device, torch.float32).view(-1, *([1] * (gradient.dim() - 1)))
    if prediction_type == "epsilon":
        delta = -(1 - abar).sqrt() * gradient
    elif prediction_type == "v_prediction":
        delta = -((1 - abar) / abar).sqrt() * gradient
    elif prediction_type == "sample":
        delta = (1 - abar) / abar.sqrt() * gradient
    else:
        raise InputError(f"DG corrects epsilon, v_prediction or sample predictions, got prediction_type {prediction_type!r}")
    return (prediction.float() + weight * delta.to(prediction.device)).to(prediction.dtype)


def check_time_range(time_range: tuple[float, float]) -> tuple[float, float]:
    """``(low, high)`` fractions of the training schedule, ``0 <= low <= high <= 1``."""
    if not isinstance(time_range, (tuple, list)) or len(time_range) != 2:
        raise InputError(f"time_range must be (low, high) fractions of the training schedule, e.g. (0.01, 1.0), got {time_range!r}")
    low = check_number(time_range[0], "time_range low", low=0.0, high=1.0)
    high = check_number(time_range[1], "time_range high", low=0.0, high=1.0)
    if low > high:
        raise InputError(f"time_range must have low <= high, got {time_range!r}")
    return low, high


def in_time_range(t: torch.Tensor, num_timesteps: int, time_range: tuple[float, float]) -> torch.Tensor:
    """Which timesteps ``t [N]`` lie where guidance applies: ``low <= t / T <= high`` (``[N]`` bool)."""
    fraction = t.float() / num_timesteps
    return (fraction >= time_range[0]) & (fraction <= time_range[1])
