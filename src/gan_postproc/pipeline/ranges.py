"""Value ranges and the chain's image convention.

Inside a chain every sample is a float32 tensor with the batch dimension
first: images are ``[N, C, H, W]`` with values in ``[-1, 1]``
(:data:`CHAIN_RANGE`); vector data (such as 2-D points) is ``[N, D]`` and
unbounded (value range ``None``). Adapters convert their model's native
range to this convention at the edges, and classifiers or discriminators
convert from it to what their network expects.
"""

from __future__ import annotations

import torch

from ..validation import ValueRange

__all__ = ["CHAIN_RANGE", "rescale", "clamp_to"]

#: The value range of images inside a chain.
CHAIN_RANGE: ValueRange = (-1.0, 1.0)


def rescale(x: torch.Tensor, source: ValueRange | None, target: ValueRange | None) -> torch.Tensor:
    """Map ``x`` linearly from ``source`` to ``target``; identity if either is ``None`` or they match."""
    if source is None or target is None or tuple(source) == tuple(target):
        return x
    (s_lo, s_hi), (t_lo, t_hi) = source, target
    return (x - s_lo) * ((t_hi - t_lo) / (s_hi - s_lo)) + t_lo


def clamp_to(x: torch.Tensor, value_range: ValueRange | None) -> torch.Tensor:
    """Clamp ``x`` into ``value_range``; identity for unbounded data."""
    if value_range is None:
        return x
    return x.clamp(value_range[0], value_range[1])
