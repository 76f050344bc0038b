"""What the real-vs-generated metrics (FID, KID, PRDC) share: updates with feature extraction, feature banks."""

from __future__ import annotations

import abc

import torch
from torch import nn

from ..errors import InputError
from ..validation import check_count
from ._checks import check_module, check_same_width
from .features import as_features

__all__ = ["FeatureBank", "TwoSetMetric", "features_of_pair"]


class FeatureBank:
    """Features appended batch by batch (never images); :meth:`all` concatenates them."""

    def __init__(self) -> None:
        self._chunks: list[torch.Tensor] = []
        self.count = 0

    def append(self, features: torch.Tensor) -> None:
        self._chunks.append(features)
        self.count += features.shape[0]

    def all(self) -> torch.Tensor:
        if len(self._chunks) > 1:  # keep one tensor so repeated computes do not concatenate again
            self._chunks = [torch.cat(self._chunks)]
        return self._chunks[0]


def features_of_pair(
    real: object, fake: object, features: nn.Module | None, *, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets as features of the same width (extracted by ``features``, or given as ``[N, F]``)."""
    check_module(features, "features", optional=True)
    real_f = as_features(real, features, "real", batch_size=batch_size)
    fake_f = as_features(fake, features, "fake", batch_size=batch_size)
    check_same_width("real", real_f.shape[1], "fake", fake_f.shape[1])
    return real_f, fake_f


class TwoSetMetric(abc.ABC):
    """Base of the accumulating real-vs-generated metrics.

    Args:
        features: feature extractor applied to every update (see
            :mod:`gan_postproc.metrics.features`), or ``None`` when updates
            are already ``[N, F]`` features (or ``[N, D]`` points measured
            directly).
        batch_size: samples per forward pass of ``features``.
    """

    def __init__(self, features: nn.Module | None, *, batch_size: int) -> None:
        self.features = check_module(features, "features", optional=True)
        self.batch_size = check_count(batch_size, "batch_size")
        self.num_features: int | None = None

    def update(self, *, real: torch.Tensor | None = None, fake: torch.Tensor | None = None) -> None:
        """Add real and/or generated samples (one batch of either, or both).

        Both are checked and turned into features before anything is added,
        so a bad input leaves the state unchanged.
        """
        if real is None and fake is None:
            raise InputError("update needs real=... and/or fake=... (samples, or features when features=None)")
        parts = []
        width = self.num_features
        for name, x in (("real", real), ("fake", fake)):
            if x is None:
                continue
            feats = as_features(x, self.features, name, batch_size=self.batch_size)
            if width is not None:
                check_same_width("the samples seen so far", width, name, feats.shape[1])
            width = feats.shape[1]
            parts.append((name == "real", feats))
        self.num_features = width
        for is_real, feats in parts:
            self._add(feats, real=is_real)

    @abc.abstractmethod
    def _add(self, features: torch.Tensor, *, real: bool) -> None:
        """Accumulate one batch of ``[n, F]`` features of the real (``real=True``) or generated set."""
