"""Inception Score (Salimans et al. 2016, Sec. 4): ``exp(E_x KL(p(y|x) || p(y)))``.

Computed by torchmetrics' ``InceptionScore`` on a classifier's logits: the
samples are shuffled with a fixed seed, cut into ``splits`` groups, and the
score's mean and standard deviation over the groups are returned. It ranges
from 1 (every prediction uniform, or every sample the same class) to the
number of classes K (confident predictions spread evenly over the classes).
Higher is better. With one split the standard deviation is NaN.

It is the "Inception" Score only with the Inception classifier; with another
classifier it measures confidence and class spread under that classifier,
which must be independent of any classifier that guides the measured method
(see :mod:`gan_postproc.metrics.features`). Memory: the ``N x K`` logits.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..defaults import DEFAULTS
from ..errors import InputError
from ..validation import check_count
from ._checks import check_at_least, check_features, check_module, check_same_width, check_samples
from ._inference import batched_forward
from ._torchmetrics import FeaturePassthrough, quiet_construction, seeded
from ._two_sets import FeatureBank

__all__ = ["InceptionScore", "inception_score"]


def _is_logits(x: object, classifier: nn.Module | None, *, batch_size: int) -> torch.Tensor:
    """Logits ``[N, K]``: ``classifier(x)``, or ``x`` itself when ``classifier`` is None."""
    if classifier is None:
        return check_features(x, "logits")
    samples = check_samples(x, "samples")
    return batched_forward(classifier, samples, batch_size=batch_size, what="classifier")


def _is_compute(logits: torch.Tensor, *, splits: int, seed: int) -> tuple[float, float]:
    check_at_least(logits.shape[0], splits, "the generated set", f"the score is averaged over {splits} splits")
    from torchmetrics.image.inception import InceptionScore as _TMInceptionScore  # here: slow to import

    with quiet_construction():
        metric = _TMInceptionScore(feature=FeaturePassthrough(logits.shape[1]), splits=splits, normalize=False)
    metric.update(logits)
    with seeded(seed), warnings.catch_warnings():
        # one split has no spread: the std is NaN, as documented, not a surprise worth a warning
        warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom", category=UserWarning)
        mean, std = metric.compute()
    return float(mean), float(std)


class InceptionScore:
    """Accumulating Inception Score.

    Args:
        classifier: network mapping chain-convention samples to logits
            ``[N, K]`` (e.g. a :class:`gan_postproc.Classifier`, in eval
            mode), or ``None`` when updates are logits already.
        splits: number of groups the score is averaged over.
        seed: seed of the shuffle before splitting.
        batch_size: samples per forward pass of ``classifier``.
    """

    def __init__(
        self,
        classifier: nn.Module | None = None,
        *,
        splits: int = DEFAULTS.inception_score_splits,
        seed: int = DEFAULTS.seed,
        batch_size: int = DEFAULTS.metrics_batch_size,
    ) -> None:
        self.classifier = check_module(classifier, "classifier", optional=True)
        self.splits = check_count(splits, "splits")
        self.seed = seed
        self.batch_size = check_count(batch_size, "batch_size")
        self._logits = FeatureBank()
        self._num_classes: int | None = None

    def update(self, samples: torch.Tensor) -> None:
        """Add generated samples (or logits when there is no classifier)."""
        logits = _is_logits(samples, self.classifier, batch_size=self.batch_size)
        if self._num_classes is not None:
            check_same_width("the logits seen so far", self._num_classes, "this batch", logits.shape[1])
        self._num_classes = logits.shape[1]
        self._logits.append(logits)

    def compute(self) -> tuple[float, float]:
        """``(mean, std)`` of the score over the splits."""
        if self._logits.count == 0:
            raise InputError("InceptionScore.compute() was called before any update; add samples first")
        return _is_compute(self._logits.all(), splits=self.splits, seed=self.seed)

    def reset(self) -> None:
        """Forget every sample."""
        self._logits = FeatureBank()
        self._num_classes = None


def inception_score(
    samples: torch.Tensor,
    *,
    classifier: nn.Module | None = None,
    splits: int = DEFAULTS.inception_score_splits,
    seed: int = DEFAULTS.seed,
    batch_size: int = DEFAULTS.metrics_batch_size,
) -> tuple[float, float]:
    """``(mean, std)`` Inception Score; the functional twin of :class:`InceptionScore` (same arguments)."""
    splits = check_count(splits, "splits")
    logits = _is_logits(samples, check_module(classifier, "classifier", optional=True), batch_size=batch_size)
    return _is_compute(logits, splits=splits, seed=seed)
