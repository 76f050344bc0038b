"""Frechet distance between real and generated features (FID; Heusel et al. 2017, Eq. 6).

``FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` between the
Gaussians fitted to the two feature sets, computed by torchmetrics'
``FrechetInceptionDistance`` from running sums in float64 (constant memory:
``F + F^2`` numbers per set, however many samples). It is "FID" only with
the Inception network (:class:`~gan_postproc.metrics.inception.InceptionFeatures`);
with other features it is the Frechet distance in those features, and values
are comparable only between runs that use the same feature network. The
feature network must be independent of the networks that guide the measured
method (see :mod:`gan_postproc.metrics.features`). Lower is better.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..defaults import DEFAULTS
from ..errors import InputError
from ._checks import check_at_least
from ._torchmetrics import FeaturePassthrough
from ._two_sets import TwoSetMetric, features_of_pair

__all__ = ["FID", "fid"]

if TYPE_CHECKING:
    from torchmetrics.image.fid import FrechetInceptionDistance


def _fid_state(num_features: int, device: torch.device) -> FrechetInceptionDistance:
    from torchmetrics.image.fid import FrechetInceptionDistance  # here, not at the top: slow to import

    metric = FrechetInceptionDistance(feature=FeaturePassthrough(num_features), reset_real_features=False, normalize=False)
    return metric.to(device)


def _fid_update(state: FrechetInceptionDistance, features: torch.Tensor, *, real: bool) -> None:
    state.update(features, real=real)


def _fid_compute(state: FrechetInceptionDistance) -> float:
    why = "FID needs at least 2 samples per set to estimate a covariance"
    check_at_least(int(state.real_features_num_samples), 2, "the real set", why)
    check_at_least(int(state.fake_features_num_samples), 2, "the generated set", why)
    return float(state.compute())


class FID(TwoSetMetric):
    """Accumulating Frechet (Inception) distance.

    Args:
        features: feature extractor (e.g. ``InceptionFeatures()`` or
            ``ModuleFeatures(net)``), or ``None`` when updates are ``[N, F]``
            features already.
        batch_size: samples per forward pass of ``features``.

    Example::

        metric = FID(ModuleFeatures(independent_net))
        metric.update(real=real_images)
        for images in batches:
            metric.update(fake=images)
        value = metric.compute()
    """

    def __init__(self, features: nn.Module | None = None, *, batch_size: int = DEFAULTS.metrics_batch_size) -> None:
        super().__init__(features, batch_size=batch_size)
        self._state: FrechetInceptionDistance | None = None

    def _add(self, features: torch.Tensor, *, real: bool) -> None:
        if self._state is None:
            self._state = _fid_state(features.shape[1], features.device)
        _fid_update(self._state, features, real=real)

    def compute(self) -> float:
        """The distance (float, >= 0 up to rounding) between everything added so far."""
        if self._state is None:
            raise InputError("FID.compute() was called before any update; add real=... and fake=... samples first")
        return _fid_compute(self._state)

    def reset(self, *, keep_real: bool = False) -> None:
        """Forget the generated samples, and the real ones too unless ``keep_real``."""
        if keep_real and self._state is not None:
            self._state.reset()  # built with reset_real_features=False: keeps the real sums
        else:
            self._state = None
            self.num_features = None


def fid(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    features: nn.Module | None = None,
    batch_size: int = DEFAULTS.metrics_batch_size,
) -> float:
    """Frechet distance between two sets; the functional twin of :class:`FID`.

    Args:
        real, fake: chain-convention samples (``[N, C, H, W]`` in ``[-1, 1]``
            or ``[N, D]``) when ``features`` is given, else ``[N, F]``
            features; at least 2 of each.
        features: feature extractor, or ``None``.
        batch_size: samples per forward pass of ``features``.
    """
    real_f, fake_f = features_of_pair(real, fake, features, batch_size=batch_size)
    state = _fid_state(real_f.shape[1], real_f.device)
    _fid_update(state, real_f, real=True)
    _fid_update(state, fake_f, real=False)
    return _fid_compute(state)
