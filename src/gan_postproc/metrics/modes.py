"""Mode statistics for Gaussian-mixture data (collaborative sampling, Liu et al.; Fig. 4 and Sec. 4.1).

For samples of a mixture whose component means (``modes``, ``[M, D]``) and
common standard deviation ``std`` are known:

- a sample is *good* when its distance to the nearest mode is below
  ``num_std * std`` (strict ``<``). The paper says 3 standard deviations,
  its 2-D code uses 4 in places: ``num_std`` is a parameter, default
  ``DEFAULTS.mode_num_std`` = 3 (the paper).
  ``good_fraction`` = good samples / all samples (higher is better);
- each good sample is assigned to its nearest mode; the histogram of good
  samples over modes is compared with the real one by
  ``KL(p_real || p_model)`` (natural log), the direction of the paper
  ("KL divergence between the real distribution and model distribution")
  and of its code (``scipy.stats.entropy(freq_real, freq_model)``). The code
  clips ``p_model`` at 1e-12; here 1e-12 is added to both histograms
  (:func:`~gan_postproc.metrics.divergence.kl_divergence`), so a dropped mode
  costs a large finite amount. Lower is better. The real histogram comes
  from real samples (same rule), from known mixture ``weights``, or is
  uniform.

Memory: ``M`` counts, so 50k-sample streams are fine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..defaults import DEFAULTS
from ..errors import InputError
from ..validation import check_positive, check_weights
from ._checks import check_features, check_same_width
from .divergence import kl_divergence

__all__ = ["ModeResult", "ModeStatistics", "mode_statistics"]

#: Floor added to both mode histograms before the KL (the reference code clips p_model at 1e-12).
_KL_EPSILON = 1e-12


@dataclass(frozen=True)
class ModeResult:
    """Mode statistics of a set of samples.

    Attributes:
        good_fraction: fraction of samples within ``num_std * std`` of their nearest mode, in [0, 1].
        kl: ``KL(p_real || p_model)`` of the mode histograms; NaN when no sample is good
            (the model histogram is then undefined).
        modes_covered: number of modes with at least one good sample.
        histogram: ``[M]`` float64, fraction of the good samples at each mode (zeros if none).
        n: number of samples.
    """

    good_fraction: float
    kl: float
    modes_covered: int
    histogram: torch.Tensor
    n: int


def _mode_counts(samples: torch.Tensor, modes: torch.Tensor, radius: float) -> torch.Tensor:
    """Good samples per mode, ``[M]`` int64 on the CPU."""
    nearest = torch.cdist(samples.double(), modes.to(samples.device).double()).min(dim=1)
    good = nearest.values < radius
    return torch.bincount(nearest.indices[good].cpu(), minlength=modes.shape[0])


def _mode_compute(counts: torch.Tensor, n: int, reference: torch.Tensor) -> ModeResult:
    if n == 0:
        raise InputError("mode statistics need at least one sample; add samples first")
    good = int(counts.sum())
    histogram = counts.double() / good if good else torch.zeros(counts.shape[0], dtype=torch.float64)
    kl = kl_divergence(reference, histogram, epsilon=_KL_EPSILON) if good else math.nan
    return ModeResult(good_fraction=good / n, kl=kl, modes_covered=int((counts > 0).sum()), histogram=histogram, n=n)


class ModeStatistics:
    """Accumulating mode statistics (see the module docstring).

    Args:
        modes: ``[M, D]`` component means.
        std: standard deviation of every component (same units as the samples).
        num_std: a sample is good within ``num_std * std`` of its nearest mode.
        real: ``[N, D]`` real samples giving the reference histogram, or
        weights: the ``M`` mixture weights; neither: uniform. Not both.
    """

    def __init__(
        self,
        modes: torch.Tensor,
        std: float,
        *,
        num_std: float = DEFAULTS.mode_num_std,
        real: torch.Tensor | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.modes = check_features(modes, "modes")
        self.radius = check_positive(num_std, "num_std") * check_positive(std, "std")
        self.reference = self._reference(real, weights)
        self.counts = torch.zeros(self.modes.shape[0], dtype=torch.long)
        self.n = 0

    def _reference(self, real: torch.Tensor | None, weights: Sequence[float] | None) -> torch.Tensor:
        m = self.modes.shape[0]
        if real is not None and weights is not None:
            raise InputError("give the real histogram as real samples or as mixture weights, not both")
        if weights is not None:
            return torch.tensor(check_weights(weights, "weights", length=m), dtype=torch.float64)
        if real is None:
            return torch.full((m,), 1.0 / m, dtype=torch.float64)
        counts = _mode_counts(self._checked(real, "real"), self.modes, self.radius)
        if int(counts.sum()) == 0:
            raise InputError(
                f"no real sample lies within {self.radius:g} of a mode, so the real histogram is empty; "
                "check modes, std and num_std"
            )
        return counts.double() / counts.sum()

    def _checked(self, samples: torch.Tensor, name: str) -> torch.Tensor:
        samples = check_features(samples, name)
        check_same_width("modes", self.modes.shape[1], name, samples.shape[1])
        return samples

    def update(self, samples: torch.Tensor) -> None:
        """Add generated samples ``[N, D]``."""
        samples = self._checked(samples, "samples")
        self.counts += _mode_counts(samples, self.modes, self.radius)
        self.n += samples.shape[0]

    def compute(self) -> ModeResult:
        """Statistics of every sample added so far."""
        return _mode_compute(self.counts, self.n, self.reference)

    def reset(self) -> None:
        """Forget every generated sample (the reference histogram stays)."""
        self.counts.zero_()
        self.n = 0


def mode_statistics(
    samples: torch.Tensor,
    modes: torch.Tensor,
    std: float,
    *,
    num_std: float = DEFAULTS.mode_num_std,
    real: torch.Tensor | None = None,
    weights: Sequence[float] | None = None,
) -> ModeResult:
    """Mode statistics of ``samples`` ``[N, D]``; the functional twin of :class:`ModeStatistics` (same arguments)."""
    metric = ModeStatistics(modes, std, num_std=num_std, real=real, weights=weights)
    samples = metric._checked(samples, "samples")
    return _mode_compute(_mode_counts(samples, metric.modes, metric.radius), samples.shape[0], metric.reference)
