"""DDLS (plugin ``ddls``): determinism across batch sizes, direction, priors, conventions, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_postproc import Chain, TorchAdapter
from gan_postproc.errors import InputError, MissingModelError
from gan_postproc.pipeline.priors import LatentPrior
from gan_postproc.plugins.ddls import DDLS, _reflect

from ..helpers.tiny_models import TinyGenerator


class Logit(nn.Module):
    """A logit discriminator on [N, 6] samples, higher towards a fixed point."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("centre", torch.linspace(-0.6, 0.6, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 - 4.0 * (x - self.centre).pow(2).sum(1, keepdim=True)


def _adapter(prior: str = "normal", output: str = "logit") -> TorchAdapter:
    return TorchAdapter(TinyGenerator(), prior=prior, discriminator=Logit(), discriminator_output=output)


def test_latents_do_not_depend_on_the_batch_size_and_repeat_with_the_seed():
    adapter = _adapter()
    sampler = lambda: DDLS(steps=40, step_size=0.02, decay_steps=15)  # noqa: E731
    runs = [Chain(adapter, sampler=sampler(), batch_size=size).sample(24, seed=3).latents for size in (24, 7, 1)]
    for other in runs[1:]:
        torch.testing.assert_close(other, runs[0], rtol=0, atol=1e-5)
    assert torch.equal(Chain(adapter, sampler=sampler(), batch_size=24).sample(24, seed=3).latents, runs[0])
    assert not torch.allclose(Chain(adapter, sampler=sampler()).sample(24, seed=4).latents, runs[0])


def test_langevin_moves_towards_higher_discriminator_scores():
    adapter = _adapter()
    bare = Chain(adapter).sample(200, seed=0)
    moved = Chain(adapter, sampler=DDLS(steps=100, step_size=0.01, decay=1.0)).sample(200, seed=0)
    with torch.no_grad():
        before, after = adapter.discriminator(bare.images), adapter.discriminator(moved.images)
    assert float(after.mean()) > float(before.mean()) + 0.2
    assert moved.latents.shape == bare.latents.shape


def test_zero_steps_give_the_prior_draws():
    adapter = _adapter()
    assert torch.equal(Chain(adapter, sampler=DDLS(steps=0)).sample(8, seed=1).latents, Chain(adapter).sample(8, seed=1).latents)


def test_uniform_priors_reflect_at_the_walls():
    assert torch.allclose(_reflect(torch.tensor([1.2, -1.5, 3.5, 0.3]), -1.0, 1.0), torch.tensor([0.8, -0.5, -0.5, 0.3]))
    adapter = _adapter(prior="uniform", output="critic")
    batch = Chain(adapter, sampler=DDLS(steps=50, step_size=0.5, decay=1.0)).sample(64, seed=2)
    assert float(batch.latents.abs().max()) <= 1.0
    assert float((batch.latents.abs() == 1.0).float().mean()) < 0.05, "latents piled up on the walls"


@pytest.mark.parametrize("bounds", [(-2.0, 2.0), (-0.5, float("inf")), (-float("inf"), 0.5)], ids=["two-sided", "low", "high"])
def test_truncated_normal_priors_keep_every_latent_in_their_support(bounds):
    """BigGAN-style truncated normal priors (issue 13: latents left [-2, 2] and the generator refused them):
    every Langevin step is reflected into the box, at a finite wall only for a one-sided truncation."""
    low, high = bounds
    prior = LatentPrior.of(TinyGenerator.nz, "truncated_normal", low=low, high=high)
    adapter = TorchAdapter(TinyGenerator(), prior=prior, discriminator=Logit(), discriminator_output="logit")
    batch = Chain(adapter, sampler=DDLS(steps=20, step_size=2.0, decay=1.0)).sample(64, seed=5)
    assert low <= float(batch.latents.min()) and float(batch.latents.max()) <= high
    assert not torch.equal(batch.latents, Chain(adapter).sample(64, seed=5).latents), "the chain must move"
    assert torch.allclose(_reflect(torch.tensor([-0.7, 0.2]), -0.5, float("inf")), torch.tensor([-0.3, 0.2]))
    assert torch.allclose(_reflect(torch.tensor([0.9, 0.2]), -float("inf"), 0.5), torch.tensor([0.1, 0.2]))


def test_a_critic_drives_the_chain_with_its_raw_score():
    adapter = _adapter(output="critic")
    bare = Chain(adapter).sample(200, seed=0)
    moved = Chain(adapter, sampler=DDLS(steps=100, step_size=0.01, decay=1.0)).sample(200, seed=0)
    with torch.no_grad():
        assert float(adapter.discriminator(moved.images).mean()) > float(adapter.discriminator(bare.images).mean())


def test_clear_errors():
    with pytest.raises(MissingModelError, match="discriminator"):
        Chain(TorchAdapter(TinyGenerator()), sampler=DDLS(steps=2)).sample(2)
    with pytest.raises(InputError, match="step_size"):
        DDLS(step_size=0)
    with pytest.raises(InputError, match="decay"):
        DDLS(decay=1.5)
    with pytest.raises(InputError, match="steps"):
        DDLS(steps=-3)
