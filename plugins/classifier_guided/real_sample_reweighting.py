"""Real-sample reweighting for training a complementary generator (Slim 2020, Algorithm 1).

Slim, "Boosting Generative Networks for Incremental Learning" (2020), Sec. 5.1,
"Conditioned GANs": real samples far from what a first generator produces are
weighted up, so that a second generator trained with these weights as
sampling probabilities learns the border cases the first one misses.

Algorithm 1, per class ``k`` (features ``phi``, real samples ``D_R,k``,
generated samples ``D_G,k``):

    d_k(r) = sum_{g in D_G,k} ||phi(r) - phi(g)||_2            for r in D_R,k
    w(r)   = (d_k(r) - d_min) / d_max                           (d_min, d_max over D_R,k)
    w(r)   <- f(w(r); mu_k, sigma_k)                            (mean, std of w over D_R,k)

with the transforms ``f`` of the paper:

* ``"A_mu"``: weights below ``mu_k`` set to zero;
* ``"A_sigma"``: weights below ``mu_k - sigma_k`` set to zero;
* ``"B"``: ``f(w) = 1 / (1 + exp(-2 (w - mu_k) / sigma_k))`` (a sigmoid);
* ``"C"``: ``f(w) = w`` (the normalised distances themselves).

Choices where the paper is silent or inconsistent, made deliberately:

* Algorithm 1 writes ``d_min = min_{s in D_G,k} d_k(s)``, but ``d_k`` is defined
  on real samples only; ``d_min`` and ``d_max`` are taken over ``D_R,k``.
* ``sigma_k`` is the population standard deviation (``ddof = 0``).
* "Distances are normalized within each class and not globally to ensure
  class balancing": the returned sampling probabilities keep each class's
  share of the real data, ``P(r) = (n_k / n) * f(w(r)) / sum_{s in D_R,k} f(w(s))``,
  so reweighting moves probability within a class, never between classes.
* A class whose transformed weights are all zero (all its real samples are
  equally far from the generated ones, e.g. a class with one real sample) is
  sampled uniformly within its share: no sample is farther than another.
  ``"B"`` with ``sigma_k = 0`` gives ``f = 1/2`` (every ``w`` equals ``mu_k``).

The distance sums run over blocks of at most ``block`` entries of the
real x generated distance matrix (``DEFAULTS.metrics_distance_block``, as
for the metrics), in float64, so 50k x 50k samples need a bounded amount of
memory (``block`` float64 entries, 128 MiB by default).
"""

from __future__ import annotations

from typing import Literal

import torch

from gan_postproc.errors import InputError
from gan_postproc.validation import check_count, check_finite, check_same_length, check_tensor

from .defaults import DEFAULTS

__all__ = ["TRANSFORMS", "reweight_real_samples", "distance_sums"]

Transform = Literal["A_mu", "A_sigma", "B", "C"]
#: The weight transforms of Slim (2020), Sec. 5.1.
TRANSFORMS: tuple[str, ...] = ("A_mu", "A_sigma", "B", "C")


def distance_sums(real: torch.Tensor, fake: torch.Tensor, *, block: int = DEFAULTS.metrics_distance_block) -> torch.Tensor:
    """``d(r) = sum_g ||r - g||_2`` for every row ``r`` of ``real`` ``[n, D]`` over ``fake`` ``[m, D]``.

    Computed in float64 over blocks of at most ``block`` distance-matrix
    entries. Returns ``[n]`` float64.
    """
    block = check_count(block, "block")
    real, fake = real.double(), fake.double()
    cols = min(len(fake), block)
    rows = max(1, block // cols)
    sums = torch.zeros(len(real), dtype=torch.float64, device=real.device)
    for r0 in range(0, len(real), rows):
        for c0 in range(0, len(fake), cols):
            sums[r0 : r0 + rows] += torch.cdist(real[r0 : r0 + rows], fake[c0 : c0 + cols]).sum(dim=1)
    return sums


def _transform(w: torch.Tensor, transform: str) -> torch.Tensor:
    """Apply ``f(w; mu_k, sigma_k)`` to one class's normalised distances ``w`` ``[n_k]``."""
    mu = w.mean()
    sigma = w.std(unbiased=False)
    if transform == "A_mu":
        return torch.where(w >= mu, w, torch.zeros_like(w))
    if transform == "A_sigma":
        return torch.where(w >= mu - sigma, w, torch.zeros_like(w))
    if transform == "B":
        if float(sigma) == 0.0:
            return torch.full_like(w, 0.5)
        return torch.sigmoid(2.0 * (w - mu) / sigma)
    return w


def reweight_real_samples(
    real_features: torch.Tensor,
    real_labels: torch.Tensor,
    fake_features: torch.Tensor,
    fake_labels: torch.Tensor,
    transform: Transform = "A_mu",
    *,
    block: int = DEFAULTS.metrics_distance_block,
) -> torch.Tensor:
    """Sampling probabilities of real samples by Slim (2020), Algorithm 1.

    Args:
        real_features: ``phi`` of the real samples, ``[n, D]`` float (e.g. a
            classifier's penultimate-layer features).
        real_labels: ``[n]`` int64 classes of the real samples.
        fake_features: ``phi`` of the generated samples, ``[m, D]`` float.
        fake_labels: ``[m]`` int64 classes of the generated samples (the
            conditional labels, or a classifier's pseudo labels). Every class
            of ``real_labels`` needs at least one generated sample.
        transform: ``"A_mu"``, ``"A_sigma"``, ``"B"`` or ``"C"`` (see the module doc).
        block: most entries of one block of the distance matrix.

    Returns:
        ``[n]`` float64 probabilities, non-negative, summing to 1, on the
        features' device; pass them to
        ``torch.utils.data.WeightedRandomSampler(p, num_samples, replacement=True)``.
    """
    if transform not in TRANSFORMS:
        raise InputError(f"transform must be one of {list(TRANSFORMS)} (Slim 2020, Sec. 5.1), got {transform!r}")
    real_features = check_finite(check_tensor(real_features, "real_features", ndim=2, floating=True), "real_features")
    fake_features = check_finite(check_tensor(fake_features, "fake_features", ndim=2, floating=True), "fake_features")
    if real_features.shape[1] != fake_features.shape[1]:
        raise InputError(
            f"real_features and fake_features must have the same feature size, got {real_features.shape[1]} and "
            f"{fake_features.shape[1]}; extract both with the same feature network"
        )
    for name, labels, features in (("real_labels", real_labels, real_features), ("fake_labels", fake_labels, fake_features)):
        check_tensor(labels, name, ndim=1, floating=False)
        check_same_length(name, labels, name.replace("labels", "features"), features)
        if int(labels.min()) < 0:
            raise InputError(f"{name} must be class indices >= 0, got a minimum of {int(labels.min())}")
    real_labels = real_labels.to(real_features.device)
    fake_features = fake_features.to(real_features.device)
    fake_labels = fake_labels.to(real_features.device)
    classes = torch.unique(real_labels)
    missing = [int(k) for k in classes if not bool((fake_labels == k).any())]
    if missing:
        raise InputError(
            f"classes {missing} have real samples but no generated samples; Algorithm 1 measures each real sample "
            "against the generated samples of its class, so generate samples of every class"
        )
    n = len(real_labels)
    probabilities = torch.zeros(n, dtype=torch.float64, device=real_features.device)
    for k in classes:
        members = real_labels == k
        d = distance_sums(real_features[members], fake_features[fake_labels == k], block=block)
        d_max = d.max()
        w = (d - d.min()) / d_max if float(d_max) > 0 else torch.zeros_like(d)
        f = _transform(w, transform)
        total = f.sum()
        within = f / total if float(total) > 0 else torch.full_like(f, 1.0 / len(f))
        probabilities[members] = within * (len(f) / n)
    return probabilities
