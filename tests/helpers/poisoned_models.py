"""Wrappers that make a real model return NaN (value and gradient) for some samples.

:class:`Poisoned` adds ``0 * sqrt(c - x_0)`` to a network's output, where
``x_0`` is the first coordinate of each input sample: zero (and a finite
gradient) while ``x_0 < c``, NaN once ``x_0 > c``. Each sample's output
depends on its own input only, so which samples turn NaN is known from the
inputs, and a refinement step that moves a sample past ``c`` makes exactly
that sample NaN. Used to check that methods restore such samples
(:class:`gan_postproc.pipeline.numerics.FiniteGuard`) or stop with a clear error.
"""

from __future__ import annotations

import torch
from torch import nn


def first_coordinate(x: torch.Tensor) -> torch.Tensor:
    """``[N]`` the first entry of each sample of ``x`` (``[N, ...]``)."""
    return x.reshape(x.shape[0], -1)[:, 0]


class Poisoned(nn.Module):
    """``module(x, *rest)`` plus a term that is NaN exactly for the samples with ``x_0 > threshold``."""

    def __init__(self, module: nn.Module, threshold: float) -> None:
        super().__init__()
        self.module, self.threshold = module, threshold
        for attribute in ("nz", "num_classes"):
            if hasattr(module, attribute):
                setattr(self, attribute, getattr(module, attribute))

    def forward(self, x: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        out = self.module(x, *rest)
        poison = 0.0 * torch.sqrt(self.threshold - first_coordinate(x))
        return out + poison.view(-1, *([1] * (out.dim() - 1)))
