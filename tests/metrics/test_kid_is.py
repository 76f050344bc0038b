"""KID and Inception Score: reference values, streaming, twins, seeds, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gan_postproc import Classifier
from gan_postproc.errors import InputError
from gan_postproc.metrics import KID, InceptionScore, inception_score, kid


def _randn(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def _unbiased_poly_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 (Binkowski et al. 2018), written out with loops over pairs."""
    m, d = x.shape
    k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return float(xx + yy - 2 * xy)


def test_kid_with_one_full_subset_is_the_unbiased_mmd() -> None:
    x, y = _randn(40, 3, 0), _randn(40, 3, 1, shift=0.5)
    mean, std = kid(x, y, subsets=1, subset_size=40)
    assert mean == pytest.approx(_unbiased_poly_mmd(x.numpy(), y.numpy()), rel=1e-9)
    assert std == 0.0


def test_kid_sanity_same_distribution_near_zero_and_shift_grows_it() -> None:
    x, y = _randn(300, 4, 2), _randn(300, 4, 3)
    same, _ = kid(x, y, subsets=10, subset_size=150)
    near, _ = kid(x, _randn(300, 4, 4, shift=0.3), subsets=10, subset_size=150)
    far, _ = kid(x, _randn(300, 4, 5, shift=1.0), subsets=10, subset_size=150)
    # sampling noise of the unbiased estimate is about 0.05 here; a 0.3 shift is far above it
    assert abs(same) < 0.15 < near < far


def test_kid_streaming_equals_one_batch_and_is_seeded() -> None:
    x, y = _randn(150, 6, 6), _randn(120, 6, 7, shift=0.2)
    metric = KID(subsets=10, seed=3)
    for chunk in x.split(40):
        metric.update(real=chunk)
    for chunk in y.split(33):
        metric.update(fake=chunk)
    torch.manual_seed(123)  # the global RNG must not matter
    streamed = metric.compute()
    assert streamed == kid(x, y, subsets=10, seed=3)
    assert kid(x, y, subsets=10, seed=4) != streamed
    metric.reset(keep_real=True)
    metric.update(fake=y)
    assert metric.compute() == streamed


def test_kid_subset_size_defaults_to_the_smaller_set_and_refuses_a_larger_one() -> None:
    x, y = _randn(30, 2, 8), _randn(20, 2, 9)
    assert kid(x, y, subsets=5) == kid(x, y, subsets=5, subset_size=20)
    with pytest.raises(InputError, match="subset_size=25 is larger than the smaller set"):
        kid(x, y, subset_size=25)
    with pytest.raises(InputError, match="at least 2"):
        kid(x, y[:1])
    with pytest.raises(InputError, match="needs real=... and fake="):
        KID().compute()


def _reference_is(logits: np.ndarray) -> float:
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    marginal = p.mean(0)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


def test_inception_score_uniform_is_one_peaked_even_is_k_and_random_matches_reference() -> None:
    k = 10
    uniform = torch.zeros(500, k)
    assert inception_score(uniform, splits=1)[0] == pytest.approx(1.0, abs=1e-6)
    peaked = 60.0 * nn.functional.one_hot(torch.arange(500) % k, k).float()
    assert inception_score(peaked, splits=1)[0] == pytest.approx(k, rel=1e-4)
    one_class = 60.0 * nn.functional.one_hot(torch.zeros(500, dtype=torch.long), k).float()
    assert inception_score(one_class, splits=1)[0] == pytest.approx(1.0, abs=1e-4)
    mean, std = inception_score(peaked, splits=10)
    assert 8.5 < mean <= k + 1e-3 and std > 0
    logits = torch.randn(300, k, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    assert inception_score(logits, splits=1)[0] == pytest.approx(_reference_is(logits.numpy()), rel=1e-9)


def test_inception_score_with_a_classifier_streams_like_one_batch() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 5)).eval()
    classifier = Classifier(net, num_classes=5)
    images = torch.rand(200, 1, 8, 8) * 2 - 1
    metric = InceptionScore(classifier, splits=4, seed=1)
    for chunk in images.split(64):
        metric.update(chunk)
    with torch.no_grad():
        logits = classifier(images)
    assert metric.compute() == pytest.approx(inception_score(logits, splits=4, seed=1), rel=1e-6)
    assert metric.compute() == inception_score(images, classifier=classifier, splits=4, seed=1)
    with pytest.raises(InputError, match="at least 4"):
        inception_score(logits[:3], splits=4)
    from_logits = InceptionScore(splits=1)
    from_logits.update(logits)
    with pytest.raises(InputError, match="same feature network"):
        from_logits.update(torch.zeros(3, 7))
    metric.reset()
    with pytest.raises(InputError, match="before any update"):
        metric.compute()
    assert math.isnan(inception_score(logits, splits=1)[1])
