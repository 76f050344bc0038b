"""Every gradient-using method runs inside a caller's ``torch.no_grad()`` and ``torch.inference_mode()``.

Frameworks generate under them (StudioGAN's evaluation and ``save_images_png``, torch-mimicry's metrics,
diffusers pipelines); a method inside must take its own gradients and give the same samples as outside.
The issue: collaborative sampling failed under ``no_grad`` (``element 0 of tensors does not require grad``),
and every gradient method under ``inference_mode`` (tensors made there cannot enter autograd).
On the shipped digits GANs (unconditional and conditional: labels go through an embedding, which
saves them for backward); through StudioGAN's own evaluation code see test_integration_studiogan.py.
"""

from __future__ import annotations

import pytest
import torch

from gan_postproc import Chain
from gan_postproc.gradients import autograd_ready, gradients_on
from gan_postproc.models.digits import digits_adapter, digits_dataset
from gan_postproc.plugins.bigroc import BIGRoC
from gan_postproc.plugins.collaborative import CollaborativeRefiner, shape_discriminator
from gan_postproc.plugins.ddls import DDLS
from gan_postproc.plugins.dot import DOT
from gan_postproc.plugins.latent_reweighting.importance_network import load_shipped_importance_network
from gan_postproc.plugins.latent_reweighting.latent_ga import LatentGA
from gan_postproc.plugins.latent_reweighting.latent_rs_ga import LatentRSGA

CONTEXTS = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


def _chains(conditional: bool):
    """Chains of every gradient method (a function, so each run starts from fresh method state)."""
    chains = {
        "collaborative-threshold": lambda a: Chain(a, refiners=[CollaborativeRefiner(layer="block1", steps=3, threshold=0.9)], batch_size=8),
        "collaborative-best": lambda a: Chain(a, refiners=[CollaborativeRefiner(layer="block1", steps=3, selection="best")], batch_size=8),
        "dot-target": lambda a: Chain(a, refiners=[DOT(steps=3, k_eff=1.0)], batch_size=8),
        "dot-latent": lambda a: Chain(a, refiners=[DOT(space="latent", steps=3, k_eff=1.0)], batch_size=8),
        "ddls": lambda a: Chain(a, DDLS(steps=3), batch_size=8),
        "bigroc": lambda a: Chain(a, refiners=[BIGRoC(eps=0.5, steps=2, debias=False)], batch_size=8),
    }
    if not conditional:  # the shipped importance network belongs to the unconditional GAN
        importance = load_shipped_importance_network("digits")
        chains["latent_ga"] = lambda a: Chain(a, LatentGA(importance, steps=2), batch_size=8)
        chains["latent_rs_ga"] = lambda a: Chain(a, LatentRSGA(importance, steps=2), batch_size=8)
    return chains


CASES = [(conditional, name) for conditional in (False, True) for name in _chains(conditional)]


@pytest.fixture(scope="module")
def adapters():
    return {False: digits_adapter(), True: digits_adapter(conditional=True)}


@pytest.mark.parametrize("context", list(CONTEXTS))
@pytest.mark.parametrize("conditional, method", CASES, ids=[f"{'cond-' if c else ''}{m}" for c, m in CASES])
def test_a_gradient_method_gives_the_same_samples_inside_no_grad_and_inference_mode(adapters, conditional, method, context):
    adapter, make = adapters[conditional], _chains(conditional)[method]
    outside = make(adapter).sample(12, seed=0)
    with CONTEXTS[context]():
        inside = make(adapter).sample(12, seed=0)
    assert torch.equal(inside.images, outside.images)
    assert torch.equal(inside.latents, outside.latents)
    assert not torch.equal(outside.images, Chain(adapter, batch_size=8).sample(12, seed=0).images)  # the method acted


@pytest.mark.parametrize("context", list(CONTEXTS))
def test_discriminator_shaping_trains_inside_no_grad_and_inference_mode(adapters, context):
    adapter = adapters[False]
    real = digits_dataset()[0][:64]
    refiner = CollaborativeRefiner(layer="block1", steps=2, selection="best")

    def shape():
        return shape_discriminator(adapter, real, refiner=refiner, iterations=2, batch_size=8, progress=False)

    outside = shape()
    with CONTEXTS[context]():
        inside = shape()
    for (name, a), (_, b) in zip(outside.module.state_dict().items(), inside.module.state_dict().items()):
        assert torch.equal(a, b), name
        assert not b.is_inference()
    assert any(not torch.equal(a, b) for a, b in zip(outside.module.state_dict().values(), adapter.discriminator.module.state_dict().values()))


def test_gradients_on_and_autograd_ready():
    with torch.inference_mode():
        made = torch.ones(3)
        with gradients_on():
            ready = autograd_ready(made)
            assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
            assert not ready.is_inference() and torch.equal(ready, made)
            x = ready.requires_grad_(True)
            (grad,) = torch.autograd.grad((x * x).sum(), x)
        assert torch.is_inference_mode_enabled() and not grad.is_inference()
    normal = torch.ones(2)
    assert autograd_ready(normal) is normal and autograd_ready(None) is None
