"""reweight_real_samples against a direct loop implementation of Slim (2020), Algorithm 1."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import WeightedRandomSampler

from gan_postproc.errors import InputError
from gan_postproc.plugins.classifier_guided.real_sample_reweighting import TRANSFORMS, distance_sums, reweight_real_samples


def algorithm_1_loop(real, real_labels, fake, fake_labels, transform):
    """Algorithm 1 written out with Python loops, one real sample and one generated sample at a time."""
    real, fake = real.tolist(), fake.tolist()
    real_labels, fake_labels = real_labels.tolist(), fake_labels.tolist()
    n = len(real)
    probabilities = [0.0] * n
    for k in sorted(set(real_labels)):
        rows = [i for i in range(n) if real_labels[i] == k]
        d = {}
        for i in rows:
            d[i] = 0.0
            for j in range(len(fake)):
                if fake_labels[j] == k:
                    d[i] += math.dist(real[i], fake[j])
        d_min, d_max = min(d.values()), max(d.values())
        w = {i: (d[i] - d_min) / d_max for i in rows}
        mu = sum(w.values()) / len(rows)
        sigma = math.sqrt(sum((w[i] - mu) ** 2 for i in rows) / len(rows))
        f = {}
        for i in rows:
            if transform == "A_mu":
                f[i] = w[i] if w[i] >= mu else 0.0
            elif transform == "A_sigma":
                f[i] = w[i] if w[i] >= mu - sigma else 0.0
            elif transform == "B":
                f[i] = 1.0 / (1.0 + math.exp(-2.0 * (w[i] - mu) / sigma))
            else:
                f[i] = w[i]
        total = sum(f.values())
        for i in rows:
            probabilities[i] = f[i] / total * len(rows) / n
    return torch.tensor(probabilities, dtype=torch.float64)


def _data(seed=0, n_real=40, n_fake=30, dim=5, classes=3):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n_real, dim, generator=g)
    fake = torch.randn(n_fake, dim, generator=g) * 0.5
    real_labels = torch.arange(n_real) % classes
    fake_labels = torch.randint(0, classes, (n_fake,), generator=g)
    fake_labels[:classes] = torch.arange(classes)
    return real, real_labels, fake, fake_labels


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_the_loop_implementation(transform, seed):
    real, real_labels, fake, fake_labels = _data(seed)
    expected = algorithm_1_loop(real, real_labels, fake, fake_labels, transform)
    got = reweight_real_samples(real, real_labels, fake, fake_labels, transform)
    assert got.dtype == torch.float64 and got.shape == (40,)
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert float(got.sum()) == pytest.approx(1.0) and bool((got >= 0).all())


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_small_blocks_give_the_same_result(transform):
    real, real_labels, fake, fake_labels = _data(2, n_real=61, n_fake=47)
    whole = reweight_real_samples(real, real_labels, fake, fake_labels, transform)
    for block in (1, 7, 100):
        assert torch.allclose(reweight_real_samples(real, real_labels, fake, fake_labels, transform, block=block), whole, rtol=1e-12)


def test_distance_sums_in_blocks():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(23, 3, generator=g), torch.randn(19, 3, generator=g)
    direct = torch.cdist(real.double(), fake.double()).sum(1)
    for block in (1, 5, 19, 20, 1000):
        assert torch.allclose(distance_sums(real, fake, block=block), direct, rtol=1e-12)


def test_class_shares_are_kept_and_far_samples_weigh_more():
    real, real_labels, fake, fake_labels = _data(3, n_real=60)
    p = reweight_real_samples(real, real_labels, fake, fake_labels, "C")
    for k in range(3):
        assert float(p[real_labels == k].sum()) == pytest.approx(20 / 60)
    d = torch.zeros(60, dtype=torch.float64)
    for k in range(3):
        rows = real_labels == k
        d[rows] = torch.cdist(real[rows].double(), fake[fake_labels == k].double()).sum(1)
        order = torch.argsort(d[rows])
        assert bool((p[rows][order].diff() >= -1e-15).all())  # monotone in the distance sum


def test_a_mu_zeroes_the_near_half_and_b_is_strictly_positive():
    real, real_labels, fake, fake_labels = _data(4)
    a_mu = reweight_real_samples(real, real_labels, fake, fake_labels, "A_mu")
    b = reweight_real_samples(real, real_labels, fake, fake_labels, "B")
    assert 0 < int((a_mu == 0).sum()) < len(a_mu)
    assert bool((b > 0).all())


def test_usable_with_weighted_random_sampler():
    real, real_labels, fake, fake_labels = _data(5)
    p = reweight_real_samples(real, real_labels, fake, fake_labels, "A_sigma")
    drawn = torch.tensor(list(WeightedRandomSampler(p, 5000, replacement=True, generator=torch.Generator().manual_seed(0))))
    assert set(drawn.tolist()) <= set(torch.nonzero(p > 0)[:, 0].tolist())


def test_degenerate_classes_are_sampled_uniformly_within_their_share():
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0, 1])  # class 1 has one real sample: w = 0
    fake = torch.tensor([[0.5, 0.0], [5.0, 4.0]])
    fake_labels = torch.tensor([0, 1])  # both class-0 reals are 0.5 away: w = 0 for both
    for transform in TRANSFORMS:
        p = reweight_real_samples(real, labels, fake, fake_labels, transform)
        assert torch.allclose(p, torch.tensor([1 / 3, 1 / 3, 1 / 3], dtype=torch.float64))


def test_bad_input_is_refused():
    real, real_labels, fake, fake_labels = _data(0)
    with pytest.raises(InputError, match="transform must be one of"):
        reweight_real_samples(real, real_labels, fake, fake_labels, "D")
    with pytest.raises(InputError, match=r"classes \[2\] have real samples but no generated samples"):
        reweight_real_samples(real, real_labels, fake[fake_labels != 2], fake_labels[fake_labels != 2])
    with pytest.raises(InputError, match="same feature size"):
        reweight_real_samples(real, real_labels, fake[:, :3], fake_labels)
    with pytest.raises(InputError, match="real_labels and real_features must hold the same number"):
        reweight_real_samples(real, real_labels[:-1], fake, fake_labels)
    with pytest.raises(InputError, match="must be finite"):
        reweight_real_samples(real * float("nan"), real_labels, fake, fake_labels)
    with pytest.raises(InputError, match="2 dimensions"):
        reweight_real_samples(real[:, None], real_labels, fake, fake_labels)
    with pytest.raises(InputError, match="integer tensor"):
        reweight_real_samples(real, real_labels.float(), fake, fake_labels)
