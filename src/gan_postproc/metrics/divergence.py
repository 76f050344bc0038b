"""KL divergence between two histograms, with the additive smoothing the reference codes use."""

from __future__ import annotations

import torch

from ..errors import InputError
from ..validation import check_positive

__all__ = ["kl_divergence"]


def kl_divergence(p: torch.Tensor, q: torch.Tensor, *, epsilon: float) -> float:
    """``sum_k (p_k + eps) log((p_k + eps) / (q_k + eps))``, natural log.

    This is the CBGAN code's ``KL(P, Q)`` (``weight_regularizer.py``): the
    epsilon is added to both histograms and they are *not* renormalised
    afterwards, so KL(p, p) is exactly 0 and a class missing from ``q``
    costs a large but finite amount.

    Args:
        p, q: ``[K]`` non-negative histograms (probabilities), same length.
        epsilon: the smoothing added to every entry (>= 0).
    """
    epsilon = check_positive(epsilon, "epsilon", allow_zero=True)
    if p.dim() != 1 or p.shape != q.shape:
        raise InputError(f"p and q must be histograms of the same length, got shapes {tuple(p.shape)} and {tuple(q.shape)}")
    if bool((p < 0).any()) or bool((q < 0).any()):
        raise InputError("p and q must be non-negative histograms")
    p = p.double() + epsilon
    q = q.double() + epsilon
    # xlogy: terms with p_k = 0 are 0 (also when q_k = 0, for epsilon = 0); p_k > 0 = q_k gives +inf.
    return float((torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum())
