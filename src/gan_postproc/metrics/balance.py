"""Class balance of generated samples (CBGAN, Rangwani et al. 2021; supplement Sec. "KL Divergence").

A classifier labels each generated sample with its arg-max class; ``p_hat``
is the histogram of those labels, and the balance measure is
``KL(p_hat || uniform)`` with ``1e-5`` added to both histograms and the
natural log (the CBGAN code's ``KL``, see
:func:`~gan_postproc.metrics.divergence.kl_divergence`). 0 means perfectly
balanced; lower is better. ``target`` replaces the uniform distribution by
any other (for example the real data's class frequencies).

The classifier labels the samples; it must be independent of any
classifier that guides the measured method (see
:mod:`gan_postproc.metrics.features`), or the method can score well by
fooling it. Memory: ``K`` counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..defaults import DEFAULTS
from ..errors import InputError
from ..validation import check_count, check_labels, check_positive, check_weights
from ._checks import check_module, check_samples, resolve_num_classes
from ._inference import predict_labels
from .divergence import kl_divergence

__all__ = ["ClassBalance", "balance_kl", "class_histogram"]


def _target_histogram(target: Sequence[float] | torch.Tensor | None, num_classes: int) -> torch.Tensor:
    if target is None:
        return torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64)
    values = target.tolist() if isinstance(target, torch.Tensor) else list(target)
    return torch.tensor(check_weights(values, "target", length=num_classes), dtype=torch.float64)


def _balance_update(counts: torch.Tensor, labels: torch.Tensor) -> None:
    counts += torch.bincount(labels.cpu(), minlength=counts.shape[0])


def _balance_compute(counts: torch.Tensor, target: torch.Tensor, epsilon: float) -> float:
    total = int(counts.sum())
    if total == 0:
        raise InputError("the class balance needs at least one labelled sample; add samples first")
    return kl_divergence(counts.double() / total, target, epsilon=epsilon)


def _label_counts(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    labels = check_labels(labels, "labels", num_classes=num_classes)
    counts = torch.zeros(num_classes, dtype=torch.long)
    _balance_update(counts, labels)
    return counts


def class_histogram(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Fraction of ``labels`` (``[N]`` int in ``[0, num_classes)``) in each class, ``[num_classes]`` float64."""
    counts = _label_counts(labels, check_count(num_classes, "num_classes", minimum=2))
    return counts.double() / counts.sum()


def balance_kl(
    labels: torch.Tensor,
    num_classes: int,
    *,
    target: Sequence[float] | torch.Tensor | None = None,
    epsilon: float = DEFAULTS.balance_epsilon,
) -> float:
    """``KL(p_hat || target)`` of predicted labels; the functional twin of :class:`ClassBalance`.

    Args:
        labels: ``[N]`` int64 predicted classes of the generated samples.
        num_classes: K.
        target: ``K`` probabilities summing to 1; ``None``: uniform (CBGAN).
        epsilon: smoothing added to both histograms (CBGAN: 1e-5).
    """
    num_classes = check_count(num_classes, "num_classes", minimum=2)
    return _balance_compute(_label_counts(labels, num_classes), _target_histogram(target, num_classes), epsilon)


class ClassBalance:
    """Accumulating class balance ``KL(p_hat || target)``.

    Args:
        num_classes: K; taken from ``classifier.num_classes`` when omitted.
        classifier: network mapping chain-convention samples to logits
            ``[N, K]`` (in eval mode); then :meth:`update` takes samples.
            ``None``: :meth:`update` takes predicted labels ``[N]``.
        target: ``K`` probabilities; ``None``: uniform.
        epsilon: smoothing added to both histograms.
        batch_size: samples per forward pass of ``classifier``.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        *,
        classifier: nn.Module | None = None,
        target: Sequence[float] | torch.Tensor | None = None,
        epsilon: float = DEFAULTS.balance_epsilon,
        batch_size: int = DEFAULTS.metrics_batch_size,
    ) -> None:
        self.classifier = check_module(classifier, "classifier", optional=True)
        self.num_classes = resolve_num_classes(num_classes, classifier)
        self.target = _target_histogram(target, self.num_classes)
        self.epsilon = check_positive(epsilon, "epsilon", allow_zero=True)
        self.batch_size = check_count(batch_size, "batch_size")
        self.counts = torch.zeros(self.num_classes, dtype=torch.long)

    def update(self, samples_or_labels: torch.Tensor) -> None:
        """Add samples (with a classifier) or their predicted labels ``[N]`` (without one)."""
        if self.classifier is None:
            labels = check_labels(samples_or_labels, "labels", num_classes=self.num_classes)
        else:
            samples = check_samples(samples_or_labels, "samples")
            labels = predict_labels(self.classifier, samples, num_classes=self.num_classes, batch_size=self.batch_size)
        _balance_update(self.counts, labels)

    def histogram(self) -> torch.Tensor:
        """``p_hat``: fraction of the samples so far in each class, ``[K]`` float64."""
        return self.counts.double() / max(int(self.counts.sum()), 1)

    def compute(self) -> float:
        """``KL(p_hat || target)`` over every sample added so far."""
        return _balance_compute(self.counts, self.target, self.epsilon)

    def reset(self) -> None:
        """Forget every sample."""
        self.counts.zero_()
