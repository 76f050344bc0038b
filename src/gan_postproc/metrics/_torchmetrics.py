"""How the metrics hand already-extracted features to torchmetrics.

torchmetrics' FID / KID / Inception Score accept a custom ``feature`` module.
Given one without a ``num_features`` attribute, FID feeds it a dummy
``[1, 3, 299, 299]`` image (``input_img_size``) to learn the feature size,
which fails for 8x8 grey images or 2-D points; with ``normalize=True``
Inception Score multiplies inputs by 255 and casts them to ``uint8`` even for a
custom module. So this package extracts features itself (one extraction shared
by every metric) and gives torchmetrics a pass-through module that declares
``num_features`` and leaves its input alone; ``normalize`` stays ``False``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["FeaturePassthrough", "quiet_construction", "seeded"]


class FeaturePassthrough(nn.Module):
    """Identity on ``[N, F]`` features, declaring ``num_features`` so torchmetrics runs no dummy input."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@contextlib.contextmanager
def quiet_construction() -> Iterator[None]:
    """Silence torchmetrics' construction warning that KID / IS keep all features in memory.

    They keep features, never images; the memory this takes is documented on
    each metric.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*will save all extracted features in buffer.*", category=UserWarning)
        yield


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a torchmetrics ``compute`` that draws ``torch.randperm`` on a fixed CPU seed, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
