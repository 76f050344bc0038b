"""L2 projected gradient ascent in a ball around images (the PGD attack of Madry et al.).

Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models
Resistant to Adversarial Attacks" (ICLR 2018), Section 2: the inner
maximisation ``max_{||delta||_2 <= eps} L(theta, x + delta, y)`` is solved by
projected gradient steps. For the L2 ball each step moves along the
normalised gradient,

    x <- Proj_{B_2(x0, eps) ∩ range}( x + a * g / ||g||_2 ),   g = grad_x L(x),

projecting the total perturbation ``x - x0`` onto the L2 ball of radius
``eps`` around the ORIGINAL image ``x0`` and clamping to the valid value range.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..ranges import CHAIN_RANGE, clamp_to
from ..validation import ValueRange, check_count, check_positive

__all__ = ["project_l2_ball", "random_l2_start", "pgd_l2"]

#: Added to gradient norms so a zero gradient gives a zero step, not NaN.
_NORM_EPS = 1e-10


def _per_sample_norm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of each sample, shaped ``[N, 1, ..., 1]`` to broadcast against ``x``."""
    return x.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))


def project_l2_ball(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Scale each sample of ``delta`` ``[N, ...]`` down to L2 norm at most ``eps``."""
    norm = _per_sample_norm(delta)
    return delta * torch.clamp(eps / (norm + _NORM_EPS), max=1.0)


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
    """Maximise a per-sample objective by projected gradient ascent in the L2 ball around ``images``.

    Args:
        objective: ``x [N, ...] -> [N]`` values to maximise (e.g. the
            per-sample cross-entropy for an untargeted attack).
        images: ``[N, ...]`` float, the ball centres ``x0`` (in ``value_range``).
        eps: radius of the ball, in the units of ``value_range``.
        steps: number of gradient steps.
        step_size: length ``a`` of each normalised step.
        value_range: valid range to clamp to; ``None`` for unbounded data.
        start: initial perturbation (e.g. :func:`random_l2_start`); zero if ``None``.

    Returns:
        ``[N, ...]`` detached images with ``||x - x0||_2 <= eps`` per sample,
        inside ``value_range``.
    """
    eps = check_positive(eps, "eps")
    steps = check_count(steps, "steps")
    step_size = check_positive(step_size, "step_size")
    x0 = images.detach()
    x = x0 if start is None else clamp_to(x0 + project_l2_ball(start.to(x0), eps), value_range)
    with torch.enable_grad():
        for _ in range(steps):
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(x).sum(), x)
            x = x.detach() + step_size * grad / (_per_sample_norm(grad) + _NORM_EPS)
            x = clamp_to(x0 + project_l2_ball(x - x0, eps), value_range)
    return x.detach()
