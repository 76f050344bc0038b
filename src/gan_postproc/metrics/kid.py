"""Kernel (Inception) distance between real and generated features (KID; Binkowski et al. 2018, Eq. 2 & Sec. 3).

The unbiased estimate of the squared MMD with the cubic polynomial kernel
``k(x, y) = (x.y / F + 1)^3``, averaged over ``subsets`` random subsets of
``subset_size`` samples of each set, computed by torchmetrics'
``KernelInceptionDistance``. Unlike FID it is unbiased, so it can be slightly
negative when the sets match. Lower is better.

Memory: KID needs every feature vector (``N x F`` floats per set), never the
images. Subsets are drawn from a fixed seed, so the value does not depend on
the global RNG or on how samples were batched. The feature network must be
independent of the networks that guide the measured method (see
:mod:`gan_postproc.metrics.features`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..defaults import DEFAULTS
from ..errors import InputError
from ..validation import check_count
from ._checks import check_at_least
from ._torchmetrics import FeaturePassthrough, quiet_construction, seeded
from ._two_sets import FeatureBank, TwoSetMetric, features_of_pair

__all__ = ["KID", "kid"]


def _kid_compute(
    real: torch.Tensor, fake: torch.Tensor, *, subsets: int, subset_size: int | None, seed: int
) -> tuple[float, float]:
    """(mean, std) of KID over subsets. ``subset_size=None``: ``min(DEFAULTS.kid_subset_size, n_real, n_fake)``."""
    why = "KID's unbiased estimate needs at least 2 samples per set"
    check_at_least(real.shape[0], 2, "the real set", why)
    check_at_least(fake.shape[0], 2, "the generated set", why)
    smallest = min(real.shape[0], fake.shape[0])
    if subset_size is None:
        subset_size = min(DEFAULTS.kid_subset_size, smallest)
    elif subset_size > smallest:
        raise InputError(
            f"subset_size={subset_size} is larger than the smaller set ({smallest} samples); "
            "pass a smaller subset_size, or subset_size=None to use min(1000, set sizes)"
        )
    from torchmetrics.image.kid import KernelInceptionDistance  # here: slow to import

    with quiet_construction():
        metric = KernelInceptionDistance(
            feature=FeaturePassthrough(real.shape[1]), subsets=subsets, subset_size=subset_size, normalize=False
        )
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with seeded(seed):
        mean, std = metric.compute()
    return float(mean), float(std)


class KID(TwoSetMetric):
    """Accumulating kernel (Inception) distance.

    Args:
        features: feature extractor, or ``None`` when updates are ``[N, F]`` features.
        subsets: number of random subsets averaged.
        subset_size: samples per subset; ``None`` uses
            ``min(DEFAULTS.kid_subset_size, n_real, n_fake)``.
        seed: seed of the subset draws.
        batch_size: samples per forward pass of ``features``.
    """

    def __init__(
        self,
        features: nn.Module | None = None,
        *,
        subsets: int = DEFAULTS.kid_subsets,
        subset_size: int | None = None,
        seed: int = DEFAULTS.seed,
        batch_size: int = DEFAULTS.metrics_batch_size,
    ) -> None:
        super().__init__(features, batch_size=batch_size)
        self.subsets = check_count(subsets, "subsets")
        self.subset_size = None if subset_size is None else check_count(subset_size, "subset_size", minimum=2)
        self.seed = seed
        self._real = FeatureBank()
        self._fake = FeatureBank()

    def _add(self, features: torch.Tensor, *, real: bool) -> None:
        (self._real if real else self._fake).append(features)

    def compute(self) -> tuple[float, float]:
        """``(mean, std)`` of KID over the subsets."""
        if self._real.count == 0 or self._fake.count == 0:
            raise InputError("KID.compute() needs real=... and fake=... samples; add both with update first")
        return _kid_compute(
            self._real.all(), self._fake.all(), subsets=self.subsets, subset_size=self.subset_size, seed=self.seed
        )

    def reset(self, *, keep_real: bool = False) -> None:
        """Forget the generated samples, and the real ones too unless ``keep_real``."""
        self._fake = FeatureBank()
        if not keep_real:
            self._real = FeatureBank()
            self.num_features = None


def kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    features: nn.Module | None = None,
    subsets: int = DEFAULTS.kid_subsets,
    subset_size: int | None = None,
    seed: int = DEFAULTS.seed,
    batch_size: int = DEFAULTS.metrics_batch_size,
) -> tuple[float, float]:
    """``(mean, std)`` of KID between two sets; the functional twin of :class:`KID` (same arguments)."""
    subsets = check_count(subsets, "subsets")
    if subset_size is not None:
        check_count(subset_size, "subset_size", minimum=2)
    real_f, fake_f = features_of_pair(real, fake, features, batch_size=batch_size)
    return _kid_compute(real_f, fake_f, subsets=subsets, subset_size=subset_size, seed=seed)
