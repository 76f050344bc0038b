"""Projected gradient ascent in an L2 or L-inf ball around images (the PGD attack of Madry et al.).

Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models
Resistant to Adversarial Attacks" (ICLR 2018), Section 2: the inner
maximisation ``max_{||delta||_2 <= eps} L(theta, x + delta, y)`` is solved by
projected gradient steps. For the L2 ball each step moves along the
normalised gradient,

    x <- Proj_{B_2(x0, eps) ∩ range}( x + a * g / ||g||_2 ),   g = grad_x L(x),

projecting the total perturbation ``x - x0`` onto the L2 ball of radius
``eps`` around the ORIGINAL image ``x0`` and clamping to the valid value range.
For the L-inf ball each step moves along the gradient's sign and the
projection clips every coordinate of ``x - x0`` to ``[-eps, eps]``.

Used for adversarial training (untargeted: maximise the cross-entropy) and by
BIGRoC (targeted: maximise ``log p(y | x)``, ``gan_postproc.plugins.bigroc``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from gan_postproc.errors import InputError
from gan_postproc.gradients import autograd_ready, gradients_on
from gan_postproc.pipeline.numerics import FiniteGuard
from gan_postproc.pipeline.ranges import CHAIN_RANGE, clamp_to
from gan_postproc.validation import ValueRange, check_count, check_positive

__all__ = ["NORMS", "project_l2_ball", "project_linf_ball", "random_l2_start", "pgd", "pgd_l2"]

Norm = Literal["l2", "linf"]
#: The threat models :func:`pgd` supports.
NORMS: tuple[str, ...] = ("l2", "linf")

#: Added to gradient norms so a zero gradient gives a zero step, not NaN.
_NORM_EPS = 1e-10


def _per_sample_norm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of each sample, shaped ``[N, 1, ..., 1]`` to broadcast against ``x``."""
    return x.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))


def project_l2_ball(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Scale each sample of ``delta`` ``[N, ...]`` down to L2 norm at most ``eps``."""
    norm = _per_sample_norm(delta)
    return delta * torch.clamp(eps / (norm + _NORM_EPS), max=1.0)


def project_linf_ball(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Clip every coordinate of ``delta`` to ``[-eps, eps]`` (the L-inf ball of radius ``eps``)."""
    return delta.clamp(-eps, eps)


def random_l2_start(images: torch.Tensor, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A perturbation drawn uniformly from the L2 ball of radius ``eps``, one per sample (Madry's random start).

    Returns:
        ``delta`` with the shape of ``images``; ``||delta_i||_2 <= eps``.
    """
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype, device="cpu").to(images.device)
    direction = noise / (_per_sample_norm(noise) + _NORM_EPS)
    dim = images[0].numel()
    radius = torch.rand((images.shape[0],), generator=generator, dtype=images.dtype, device="cpu").to(images.device)
    radius = eps * radius.pow(1.0 / dim)
    return direction * radius.view(-1, *([1] * (images.dim() - 1)))


def pgd(
    objective: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    *,
    eps: float,
    steps: int,
    step_size: float,
    norm: Norm = "l2",
    value_range: ValueRange | None = CHAIN_RANGE,
    start: torch.Tensor | None = None,
    guard: FiniteGuard | None = None,
) -> torch.Tensor:
    """Maximise a per-sample objective by projected gradient ascent in the ``norm`` ball around ``images``.

    Args:
        objective: ``x [N, ...] -> [N]`` values to maximise (e.g. the
            per-sample cross-entropy for an untargeted attack). Samples must
            not interact (the gradient of the sum is taken), so each sample's
            result is independent of the batch it is in.
        images: ``[N, ...]`` float, the ball centres ``x0`` (in ``value_range``).
        eps: radius of the ball, in the units of ``value_range``.
        steps: number of gradient steps.
        step_size: length ``a`` of each step: ``a * g / (||g||_2 + 1e-10)``
            for ``"l2"``, ``a * sign(g)`` for ``"linf"``.
        norm: the threat model, ``"l2"`` or ``"linf"``.
        value_range: valid range to clamp to; ``None`` for unbounded data.
        start: initial perturbation (e.g. :func:`random_l2_start`); zero if ``None``.
        guard: a :class:`~gan_postproc.pipeline.numerics.FiniteGuard` over the ``N``
            samples: a step that makes a sample NaN/inf is undone and the sample
            keeps its last finite iterate. ``None``: no guard.

    Returns:
        ``[N, ...]`` detached images with ``||x - x0|| <= eps`` per sample (in
        ``norm``), inside ``value_range``.
    """
    eps = check_positive(eps, "eps")
    steps = check_count(steps, "steps")
    step_size = check_positive(step_size, "step_size")
    if norm not in NORMS:
        raise InputError(f"norm must be one of {list(NORMS)}, got {norm!r}")
    project = project_l2_ball if norm == "l2" else project_linf_ball
    with gradients_on():  # also inside a caller's no_grad / inference_mode
        x0 = autograd_ready(images).detach()
        x = x0 if start is None else clamp_to(x0 + project(autograd_ready(start).to(x0), eps), value_range)
        for _ in range(steps):
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(x).sum(), x)
            direction = grad / (_per_sample_norm(grad) + _NORM_EPS) if norm == "l2" else grad.sign()
            previous = x.detach()
            x = previous + step_size * direction
            x = clamp_to(x0 + project(x - x0, eps), value_range)
            if guard is not None:
                x = guard.keep_finite(previous, x)
    return x.detach()


def pgd_l2(
    objective: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    *,
    eps: float,
    steps: int,
    step_size: float,
    value_range: ValueRange | None = CHAIN_RANGE,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`pgd` in the L2 ball (Madry et al.'s L2 attack)."""
    return pgd(objective, images, eps=eps, steps=steps, step_size=step_size, norm="l2", value_range=value_range, start=start)
