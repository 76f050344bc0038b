"""One streaming evaluator for the demo, the benchmarks and ``gan-postproc sample --metrics``.

:class:`SampleEvaluator` extracts the real set's features once, then takes
generated batches one at a time and keeps only their features (and the
classifier's label counts), never the images, so a 50k-sample stream costs
``50k x F`` floats. ``compute()`` returns every standard number at once.

The feature network and the classifier measure; they must be independent of
every network that guides the measured method (see
:mod:`gan_postproc.metrics.features`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..defaults import DEFAULTS
from ..errors import InputError
from ..validation import check_count, check_labels
from ._checks import check_module, check_same_width, check_samples, resolve_num_classes
from ._inference import predict_labels
from ._two_sets import FeatureBank
from .balance import ClassBalance
from .features import as_features
from .fid import _fid_compute, _fid_state, _fid_update
from .kid import _kid_compute
from .prdc import _checked_radii, _prdc_compute

__all__ = ["SampleEvaluator"]


class SampleEvaluator:
    """Streaming FID, KID, precision, recall, density, coverage and class balance.

    Args:
        features: feature extractor for FID/KID/PRDC (e.g.
            ``ModuleFeatures(independent_net)`` or ``InceptionFeatures()``),
            or ``None`` to measure ``[N, D]`` samples (2-D points) directly.
        real_images: the real set, chain convention (``[N, C, H, W]`` in
            ``[-1, 1]`` or ``[N, D]``); its features are computed here, once.
            At least ``k + 1`` samples.
        classifier: network mapping samples to logits ``[N, K]`` (eval
            mode) for the class-balance KL; ``None``: no balance measure.
        num_classes: K; taken from ``classifier.num_classes`` when omitted.
        k: nearest neighbour of the PRDC manifolds.
        kid_subsets, kid_subset_size: see :class:`~gan_postproc.metrics.kid.KID`.
        seed: seed of KID's subset draws.
        block: most entries of one block of distances (PRDC).
        batch_size: samples per forward pass of the networks.
    """

    def __init__(
        self,
        features: nn.Module | None,
        real_images: torch.Tensor,
        *,
        classifier: nn.Module | None = None,
        num_classes: int | None = None,
        k: int = DEFAULTS.metrics_nearest_k,
        kid_subsets: int = DEFAULTS.kid_subsets,
        kid_subset_size: int | None = None,
        seed: int = DEFAULTS.seed,
        block: int = DEFAULTS.metrics_distance_block,
        batch_size: int = DEFAULTS.metrics_batch_size,
    ) -> None:
        self.features = check_module(features, "features", optional=True)
        self.k = check_count(k, "k")
        self.kid_subsets = check_count(kid_subsets, "kid_subsets")
        self.kid_subset_size = None if kid_subset_size is None else check_count(kid_subset_size, "kid_subset_size", minimum=2)
        self.seed = seed
        self.block = check_count(block, "block")
        self.batch_size = check_count(batch_size, "batch_size")
        self.classifier = check_module(classifier, "classifier", optional=True)
        # the evaluator runs the classifier itself and feeds the balance predicted labels
        self._balance = None if classifier is None else ClassBalance(resolve_num_classes(num_classes, classifier))

        real_images = check_samples(real_images, "real_images")
        self._sample_shape = tuple(real_images.shape[1:])
        self._real = as_features(real_images, self.features, "real_images", batch_size=self.batch_size)
        self._real_radii = _checked_radii(self._real, self.k, block=self.block, name="real_images")
        self._fid = _fid_state(self._real.shape[1], self._real.device)
        _fid_update(self._fid, self._real, real=True)
        self.reset()

    @property
    def n(self) -> int:
        """Generated samples added since the last reset."""
        return self._fake.count

    def update(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Add a batch of generated samples.

        Args:
            images: same convention and shape (after the batch dimension) as ``real_images``.
            labels: for a conditional generator, the class each sample was
                asked for (``[N]`` int64); with a classifier, the share whose
                predicted class matches is reported as ``label_accuracy``.
        """
        images = check_samples(images, "images")
        if tuple(images.shape[1:]) != self._sample_shape:
            raise InputError(
                f"images must have the real set's shape [N, {', '.join(map(str, self._sample_shape))}], "
                f"got {tuple(images.shape)}"
            )
        if labels is not None and self._balance is None:
            raise InputError("labels are compared with the classifier's predictions; build the evaluator with classifier=...")
        feats = as_features(images, self.features, "images", batch_size=self.batch_size)
        check_same_width("real_images", self._real.shape[1], "images", feats.shape[1])
        predicted = None
        if self._balance is not None:
            num_classes = self._balance.num_classes
            if labels is not None:
                labels = check_labels(labels, "labels", num_classes=num_classes, n=images.shape[0]).cpu()
            predicted = predict_labels(self.classifier, images, num_classes=num_classes, batch_size=self.batch_size)
        # every check has passed: change the state
        _fid_update(self._fid, feats, real=False)
        self._fake.append(feats)
        if predicted is not None:
            self._balance.update(predicted)
            if labels is not None:
                self._labelled += labels.shape[0]
                self._matches += int((predicted == labels).sum())

    def compute(self) -> dict[str, float | int | None]:
        """Every measure of the samples added since the last reset.

        Returns:
            ``fid``, ``kid`` (mean over subsets), ``kid_std``, ``precision``,
            ``recall``, ``density``, ``coverage``, ``balance_kl`` (``None``
            without a classifier), ``label_accuracy`` (``None`` unless
            labels were given), and ``n`` (generated samples).
        """
        if self.n == 0:
            raise InputError("SampleEvaluator.compute() was called before any update; add generated samples first")
        fake = self._fake.all()
        kid_mean, kid_std = _kid_compute(
            self._real, fake, subsets=self.kid_subsets, subset_size=self.kid_subset_size, seed=self.seed
        )
        result: dict[str, float | int | None] = {"fid": _fid_compute(self._fid), "kid": kid_mean, "kid_std": kid_std}
        result.update(_prdc_compute(self._real, fake, k=self.k, block=self.block, real_radii=self._real_radii))
        result["balance_kl"] = None if self._balance is None else self._balance.compute()
        result["label_accuracy"] = self._matches / self._labelled if self._labelled else None
        result["n"] = self.n
        return result

    def reset(self) -> None:
        """Forget the generated samples; the real features stay (they are never recomputed)."""
        self._fid.reset()  # built with reset_real_features=False: keeps the real statistics
        self._fake = FeatureBank()
        if self._balance is not None:
            self._balance.reset()
        self._labelled = 0
        self._matches = 0
