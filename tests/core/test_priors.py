"""Latent priors: the truncated normal (BigGAN / StudioGAN truncation) next to normal and uniform."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from gan_postproc import LatentPrior
from gan_postproc.errors import InputError


def test_truncated_normal_samples_match_scipy_and_stay_inside_the_bounds():
    prior = LatentPrior.of(4, "truncated_normal", low=-0.5, high=2.0)
    z = prior.sample(0, torch.arange(5000))
    assert z.dtype == torch.float32 and z.shape == (5000, 4)
    assert float(z.min()) >= -0.5 and float(z.max()) <= 2.0
    reference = stats.truncnorm(-0.5, 2.0)
    assert stats.kstest(z.flatten().numpy(), reference.cdf).pvalue > 1e-3
    assert abs(float(z.mean()) - reference.mean()) < 0.02


def test_truncated_normal_is_keyed_by_sample_index():
    prior = LatentPrior.of(3, "truncated_normal", low=-2, high=2)
    together = prior.sample(7, torch.arange(10))
    alone = prior.sample(7, torch.tensor([4]))
    assert torch.equal(together[4:5], alone)


def test_truncated_normal_log_prob_is_normalised_and_minus_inf_outside():
    prior = LatentPrior.of(1, "truncated_normal", low=-1.0, high=1.5)
    grid = torch.linspace(-1.0, 1.5, 20001).reshape(-1, 1)
    density = prior.log_prob(grid).exp()
    assert abs(float(torch.trapezoid(density, grid[:, 0])) - 1.0) < 1e-4
    assert prior.log_prob(torch.tensor([[1.6]])).item() == -math.inf
    expected = stats.truncnorm(-1.0, 1.5).logpdf(0.3)
    assert prior.log_prob(torch.tensor([[0.3]])).item() == pytest.approx(expected, abs=1e-5)


def test_truncated_normal_projects_and_checks_its_support():
    prior = LatentPrior.of(2, "truncated_normal", low=-2, high=2)
    assert prior.bounded and not LatentPrior.of(2).bounded
    assert torch.equal(prior.project(torch.tensor([[3.0, -5.0]])), torch.tensor([[2.0, -2.0]]))
    with pytest.raises(InputError, match=r"truncated_normal prior's support \[-2, 2\]"):
        prior.check(torch.tensor([[0.0, 2.5]]))
    with pytest.raises(InputError, match="low < high"):
        LatentPrior.of(2, "truncated_normal", low=1, high=1)
    with pytest.raises(InputError, match="truncated_normal"):
        LatentPrior.of(2, "gamma")
