"""Drop-in use: the generator's own call signature, improved samples."""

from __future__ import annotations

import pytest
import torch

from gan_postproc import Chain, Refiner, dropin
from gan_postproc.errors import InputError

from ..helpers.tiny_models import TinyConditionalGenerator, TinyGenerator


class Halve(Refiner):
    name = "halve"

    def refine(self, batch, adapter):
        return batch.replace(images=batch.images / 2)


def test_dropin_keeps_the_call_signature_and_applies_the_chain():
    G = TinyGenerator()
    improved = dropin(G, refiners=[Halve()])
    z = torch.randn(5, 4)
    out = improved(z)
    assert out.shape == G(z).shape
    assert torch.allclose(out, G(z) / 2)
    assert improved.nz == 4  # attributes of the generator stay reachable


def test_dropin_returns_the_generators_own_output_range():
    G = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Sigmoid())
    improved = dropin(G, refiners=[Halve()], latent_shape=4, output_range=(0, 1))
    z = torch.randn(6, 4)
    # halving happens in chain space [-1, 1]: x01 -> ((2 x01 - 1) / 2 + 1) / 2
    assert torch.allclose(improved(z), ((2 * G(z) - 1) / 2 + 1) / 2, atol=1e-6)


def test_conditional_call_and_generate_images():
    G = TinyConditionalGenerator()
    improved = dropin(G, refiners=[Halve()], num_classes=3)
    z, y = torch.randn(4, 4), torch.tensor([0, 1, 2, 1])
    assert torch.allclose(improved(z, y), G(z, y) / 2)
    with pytest.raises(InputError, match=r"\[0, 2\]"):
        improved(z, torch.tensor([0, 1, 2, 3]))
    images = improved.generate_images(7)
    assert images.shape == (7, 6)


def test_dropin_refuses_arguments_it_cannot_honour(tiny_adapter):
    improved = dropin(Chain(tiny_adapter))
    with pytest.raises(InputError, match="extra arguments"):
        improved(torch.randn(2, 4), None, truncation=0.5)
    with pytest.raises(InputError, match="either a ready Chain"):
        dropin(Chain(tiny_adapter), refiners=[Halve()])
    with pytest.raises(InputError, match=r"shape \[\*, 4\]"):
        improved(torch.randn(2, 3))
