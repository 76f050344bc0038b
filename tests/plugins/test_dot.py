"""DOT (plugin ``dot``): target- and latent-space transport, K_eff, priors, conventions, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_postproc import Chain, Discriminator, LatentPrior, SampleBatch, TorchAdapter
from gan_postproc.errors import InputError, MissingModelError
from gan_postproc.plugins.dot import DOT, _tangential, estimate_k_eff

from ..helpers.tiny_models import TinyGenerator


class Bump(nn.Module):
    """A critic on [N, 6] samples peaked at a fixed point: higher = closer to it."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("centre", torch.linspace(-0.5, 0.5, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -(x - self.centre).norm(dim=1, keepdim=True)


def _adapter(prior: str = "normal", output: str = "critic", module: nn.Module | None = None) -> TorchAdapter:
    return TorchAdapter(TinyGenerator(), prior=prior, discriminator=module or Bump(), discriminator_output=output)


def test_target_space_moves_samples_up_the_critic_and_keeps_them_in_range():
    adapter = _adapter()
    batch = Chain(adapter).sample(64, seed=0)
    refined = Chain(adapter, refiners=[DOT(space="target")]).refine(batch)
    critic = adapter.discriminator
    with torch.no_grad():
        assert float(critic(refined.images).mean()) > float(critic(batch.images).mean()) + 0.05
        torch.testing.assert_close(refined.scores["discriminator"], critic(refined.images))
    assert refined.images.abs().max() <= 1.0
    assert torch.equal(refined.latents, batch.latents)


def test_zero_steps_return_the_proposals():
    adapter = _adapter()
    batch = Chain(adapter).sample(8, seed=0)
    for space in ("target", "latent"):
        refined = Chain(adapter, refiners=[DOT(space=space, steps=0)]).refine(batch)
        torch.testing.assert_close(refined.images, batch.images, rtol=0, atol=1e-6)


def test_latent_space_keeps_uniform_latents_in_the_box_and_returns_them():
    adapter = _adapter(prior="uniform")
    batch = Chain(adapter).sample(64, seed=1)
    refined = Chain(adapter, refiners=[DOT(space="latent", lr=0.1)]).refine(batch)
    assert float(refined.latents.abs().max()) <= 1.0
    assert not torch.equal(refined.latents, batch.latents)
    torch.testing.assert_close(refined.images, adapter.generate(refined.latents).detach(), rtol=0, atol=1e-6)
    with torch.no_grad():
        assert float(adapter.discriminator(refined.images).mean()) > float(adapter.discriminator(batch.images).mean())


def test_normal_prior_gradients_lose_their_radial_part():
    z, g = torch.randn(5, 4), torch.randn(5, 4)
    tangent = _tangential(z, g)
    torch.testing.assert_close((tangent * z).sum(1), torch.zeros(5), rtol=0, atol=1e-5)
    # Bump pulls G(z) towards a point that small latents reach: without the projection the
    # latents' norms shrink by about 0.07 on average here; with it they move along their sphere.
    adapter = _adapter()
    batch = Chain(adapter).sample(256, seed=2)
    refined = Chain(adapter, refiners=[DOT(space="latent", lr=0.01, steps=20)]).refine(batch)
    radial = refined.latents.norm(dim=1) - batch.latents.norm(dim=1)
    moved = (refined.latents - batch.latents).norm(dim=1)
    assert abs(float(radial.mean())) < 0.01
    assert float(radial.abs().mean()) < 0.3 * float(moved.mean())


def test_k_eff_follows_the_reference_estimate_and_is_reproducible():
    adapter = _adapter()
    critic = adapter.discriminator
    k = estimate_k_eff(adapter, critic, trials=3, pairs=50, seed=4)
    assert k == estimate_k_eff(adapter, critic, trials=3, pairs=50, seed=4)
    # Bump is 1-Lipschitz in x: the ratio can never exceed 1.
    assert 0 < k <= 1 + 1e-5
    # In latent space the ratio is taken over ||z1 - z2||; by hand for one trial:
    z1 = adapter.prior.sample(7, torch.arange(20), "dot_keff", 0, 1)
    z2 = adapter.prior.sample(7, torch.arange(20), "dot_keff", 0, 2)
    with torch.no_grad():
        ratio = (critic(adapter.generate(z1)) - critic(adapter.generate(z2))).abs() / (z1 - z2).norm(dim=1)
    assert estimate_k_eff(adapter, critic, space="latent", trials=1, pairs=20, seed=7) == pytest.approx(float(ratio.max()), rel=1e-5)
    refiner = DOT()
    Chain(adapter, refiners=[refiner]).sample(2, seed=5)
    assert refiner.k_eff == pytest.approx(estimate_k_eff(adapter, critic, seed=5))


def test_probability_and_logit_discriminators_use_the_same_potential():
    class Logit(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return Bump()(x) * 2 + 1

    class Probability(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(Logit()(x))

    batch = Chain(_adapter()).sample(16, seed=3)
    results = [
        Chain(_adapter(output=output, module=module), refiners=[DOT(space="target", steps=10)]).refine(batch).images
        for output, module in (("logit", Logit()), ("probability", Probability()))
    ]
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-4)


def test_standalone_images_need_k_eff_and_the_target_space():
    critic = Discriminator(Bump(), "critic")
    images = torch.rand(6, 6) * 2 - 1
    refined = Chain(None, refiners=[DOT(discriminator=critic, k_eff=1.0)]).refine(SampleBatch(images=images))
    assert refined.images.shape == images.shape and not torch.equal(refined.images, images)
    with pytest.raises(InputError, match="k_eff"):
        Chain(None, refiners=[DOT(discriminator=critic)]).refine(SampleBatch(images=images))
    # fit_standalone estimates K_eff from the images themselves: consecutive pairs, in k_eff_trials groups.
    many = torch.rand(40, 6, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fitted = DOT(discriminator=critic, k_eff_trials=2, k_eff_pairs=5)
    fitted.fit_standalone(SampleBatch(images=chunk) for chunk in many.split(7))
    with torch.no_grad():
        d = critic(many[:20])
    ratio = (d[0::2] - d[1::2]).abs() / (many[0:20:2] - many[1:20:2]).norm(dim=1)
    assert fitted.k_eff == pytest.approx((float(ratio[:5].max()) + float(ratio[5:].max())) / 2, rel=1e-5)
    assert Chain(None, refiners=[fitted]).refine(SampleBatch(images=images)).images.shape == images.shape
    with pytest.raises(InputError, match="latent"):
        Chain(None, refiners=[DOT(discriminator=critic, space="latent", k_eff=1.0)]).refine(SampleBatch(images=images))


def test_clear_errors():
    with pytest.raises(MissingModelError, match="discriminator"):
        Chain(TorchAdapter(TinyGenerator()), refiners=[DOT()]).sample(2)
    with pytest.raises(InputError, match="space"):
        DOT(space="pixel")
    with pytest.raises(InputError, match="lr"):
        DOT(lr=-0.1)
    with pytest.raises(InputError, match="betas"):
        DOT(betas=(0.0, 1.0))
    with pytest.raises(InputError, match="k_eff"):
        DOT(k_eff=0.0)
    flat = TorchAdapter(TinyGenerator(), prior=LatentPrior.of(4), discriminator=nn.Identity(), discriminator_output="critic")
    with pytest.raises(InputError):
        Chain(flat, refiners=[DOT()]).sample(2)


def test_dot_on_the_real_dot_2d_models_lowers_emd():
    from gan_postproc.metrics import emd
    from gan_postproc.models.toy2d import sample_toy2d_real, toy2d_adapter

    adapter = toy2d_adapter("25gaussians")
    real = sample_toy2d_real("25gaussians", 300, seed=10_001)
    bare = Chain(adapter).sample(300, seed=1)
    before = emd(bare.images, real)  # about 0.166
    for space, factor in (("target", 0.95), ("latent", 0.85)):
        refined = Chain(adapter, refiners=[DOT(space=space)]).refine(bare)
        assert emd(refined.images, real) < factor * before, space
