"""Precision / recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020) on any features.

Each set's manifold is the union of balls around its points, the radius of a
point being the distance to its k-th nearest neighbour in its own set
(``NND_k``). With real points ``X_i``, generated points ``Y_j``, ``N`` real
and ``M`` generated:

- precision = ``(1/M) sum_j 1[Y_j inside some real ball]`` (Kynkaanniemi Eq. 1-2),
- recall = ``(1/N) sum_i 1[X_i inside some generated ball]``,
- density = ``(1/(kM)) sum_j sum_i 1[Y_j inside the ball of X_i]`` (Naeem Eq. 3),
- coverage = ``(1/N) sum_i 1[the nearest Y_j is inside the ball of X_i]`` (Naeem Eq. 4).

"Inside" is the strict ``distance < radius``, as in the authors' ``prdc``
package, whose values this module reproduces. Precision, recall and coverage
lie in [0, 1]; density can exceed 1. Higher is better for all four.

Distances are computed in blocks of at most ``block`` entries
(``DEFAULTS.metrics_distance_block``), so 50k x 50k comparisons run in
bounded memory; only the features (``(N + M) x F``) are held. The feature
network must be independent of the networks that guide the measured method
(see :mod:`gan_postproc.metrics.features`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..defaults import DEFAULTS
from ..errors import InputError
from ..validation import check_count
from ._checks import check_at_least, check_features
from ._two_sets import FeatureBank, TwoSetMetric, features_of_pair

__all__ = ["PRDC", "prdc", "knn_radii"]


def _rows_per_block(columns: int, block: int) -> int:
    return max(1, block // max(columns, 1))


def knn_radii(points: torch.Tensor, k: int, *, block: int = DEFAULTS.metrics_distance_block) -> torch.Tensor:
    """Distance of each point to its k-th nearest neighbour in the same set, ``[N]``.

    The point itself (distance 0) counts as the first of the ``k + 1``
    nearest, as in ``prdc``. Needs ``N >= k + 1``.
    """
    points = check_features(points, "points")
    k = check_count(k, "k")
    check_at_least(points.shape[0], k + 1, "points", f"the k-NN radius with k={k} needs k other samples")
    rows = _rows_per_block(points.shape[0], block)
    radii = [torch.cdist(chunk, points).topk(k + 1, dim=1, largest=False).values[:, k] for chunk in points.split(rows)]
    return torch.cat(radii)


def _checked_radii(points: torch.Tensor, k: int, *, block: int, name: str) -> torch.Tensor:
    check_at_least(points.shape[0], k + 1, name, f"the k-NN radius with k={k} needs k other samples")
    return knn_radii(points, k, block=block)


def _prdc_compute(real: torch.Tensor, fake: torch.Tensor, *, k: int, block: int, real_radii: torch.Tensor) -> dict[str, float]:
    fake_radii = _checked_radii(fake, k, block=block, name="the generated set")
    n_real, n_fake = real.shape[0], fake.shape[0]
    fake_in_real_balls = torch.zeros((), dtype=torch.long, device=real.device)
    real_balls_hit = torch.zeros((), dtype=torch.long, device=real.device)
    real_in_fake_balls = torch.zeros(n_real, dtype=torch.bool, device=real.device)
    nearest_fake = torch.full((n_real,), float("inf"), dtype=real.dtype, device=real.device)
    columns = _rows_per_block(n_real, block)
    for fake_chunk, fake_chunk_radii in zip(fake.split(columns), fake_radii.split(columns), strict=True):
        distances = torch.cdist(real, fake_chunk)  # [n_real, chunk]
        inside_real = distances < real_radii[:, None]
        fake_in_real_balls += inside_real.any(dim=0).sum()
        real_balls_hit += inside_real.sum()
        real_in_fake_balls |= (distances < fake_chunk_radii[None, :]).any(dim=1)
        nearest_fake = torch.minimum(nearest_fake, distances.min(dim=1).values)
    return {
        "precision": float(fake_in_real_balls) / n_fake,
        "recall": float(real_in_fake_balls.sum()) / n_real,
        "density": float(real_balls_hit) / (k * n_fake),
        "coverage": float((nearest_fake < real_radii).sum()) / n_real,
    }


class PRDC(TwoSetMetric):
    """Accumulating precision, recall, density and coverage.

    Args:
        features: feature extractor, or ``None`` when updates are ``[N, F]``
            features (or points measured directly).
        k: nearest neighbour defining each ball (``DEFAULTS.metrics_nearest_k``).
        block: most entries of one block of distances.
        batch_size: samples per forward pass of ``features``.
    """

    def __init__(
        self,
        features: nn.Module | None = None,
        *,
        k: int = DEFAULTS.metrics_nearest_k,
        block: int = DEFAULTS.metrics_distance_block,
        batch_size: int = DEFAULTS.metrics_batch_size,
    ) -> None:
        super().__init__(features, batch_size=batch_size)
        self.k = check_count(k, "k")
        self.block = check_count(block, "block")
        self._real = FeatureBank()
        self._fake = FeatureBank()
        self._real_radii: torch.Tensor | None = None

    def _add(self, features: torch.Tensor, *, real: bool) -> None:
        if real:
            self._real.append(features)
            self._real_radii = None
        else:
            self._fake.append(features)

    def compute(self) -> dict[str, float]:
        """``{"precision", "recall", "density", "coverage"}`` of everything added so far."""
        if self._real.count == 0 or self._fake.count == 0:
            raise InputError("PRDC.compute() needs real=... and fake=... samples; add both with update first")
        real = self._real.all()
        if self._real_radii is None:  # the real radii are computed once, however often compute runs
            self._real_radii = _checked_radii(real, self.k, block=self.block, name="the real set")
        return _prdc_compute(real, self._fake.all(), k=self.k, block=self.block, real_radii=self._real_radii)

    def reset(self, *, keep_real: bool = False) -> None:
        """Forget the generated samples, and the real ones too unless ``keep_real``."""
        self._fake = FeatureBank()
        if not keep_real:
            self._real = FeatureBank()
            self._real_radii = None
            self.num_features = None


def prdc(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    features: nn.Module | None = None,
    k: int = DEFAULTS.metrics_nearest_k,
    block: int = DEFAULTS.metrics_distance_block,
    batch_size: int = DEFAULTS.metrics_batch_size,
) -> dict[str, float]:
    """Precision, recall, density and coverage of two sets; the functional twin of :class:`PRDC`."""
    k = check_count(k, "k")
    block = check_count(block, "block")
    real_f, fake_f = features_of_pair(real, fake, features, batch_size=batch_size)
    real_radii = _checked_radii(real_f, k, block=block, name="the real set")
    return _prdc_compute(real_f, fake_f, k=k, block=block, real_radii=real_radii)
