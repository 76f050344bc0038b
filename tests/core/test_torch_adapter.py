"""The generic torch adapter: conventions, splitting, attached models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_postproc import Classifier, Discriminator, LatentPrior, TorchAdapter
from gan_postproc.errors import InputError, MissingModelError, UncalibratedDiscriminatorError

from ..helpers.tiny_models import TinyConditionalGenerator, TinyGenerator


def test_latent_size_inferred_or_required():
    assert TorchAdapter(TinyGenerator()).prior.shape == (4,)
    with pytest.raises(InputError, match="latent_shape"):
        TorchAdapter(nn.Linear(3, 3))
    assert TorchAdapter(nn.Linear(3, 3), latent_shape=3, prior="uniform").prior == LatentPrior((3,), "uniform")


def test_output_range_is_converted_to_the_chain_convention_and_back():
    G = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid())
    adapter = TorchAdapter(G, latent_shape=2, output_range=(0, 1))
    z = torch.randn(5, 2)
    out = adapter.generate(z)
    assert torch.allclose(out, G(z) * 2 - 1)
    assert torch.allclose(adapter.to_native(out), G(z))
    unbounded = TorchAdapter(nn.Linear(2, 2), latent_shape=2, output_range=None)
    assert unbounded.value_range is None


@pytest.mark.parametrize("layer", ["0", "1", "2"])
def test_split_of_a_sequential_reproduces_the_generator_exactly(tiny_adapter, layer):
    z = torch.randn(7, 4)
    h = tiny_adapter.generate_to(z, None, layer)
    assert torch.equal(tiny_adapter.generate_from(h, z, None, layer), tiny_adapter.generate(z))


@pytest.mark.parametrize("layer", ["embed", "body", "body.0", "head"])
def test_split_at_named_submodules_reproduces_the_generator_exactly(conditional_adapter, layer):
    z, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    h = conditional_adapter.generate_to(z, y, layer)
    assert torch.equal(conditional_adapter.generate_from(h, z, y, layer), conditional_adapter.generate(z, y))


def test_split_decoding_is_differentiable_in_the_activation(conditional_adapter):
    z, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    h = conditional_adapter.generate_to(z, y, "body").detach().requires_grad_(True)
    out = conditional_adapter.generate_from(h, z, y, "body")
    (grad,) = torch.autograd.grad(out.sum(), h)
    assert grad.shape == h.shape and float(grad.abs().sum()) > 0


def test_latent_and_output_are_always_split_points(tiny_adapter):
    z = torch.randn(3, 4)
    names = tiny_adapter.layer_names()
    assert names[0] == "latent" and names[-1] == "output"
    assert torch.equal(tiny_adapter.generate_to(z, None, "latent"), z)
    x = tiny_adapter.generate_to(z, None, "output")
    assert torch.equal(tiny_adapter.generate_from(x, z, None, "output"), x)


def test_a_bad_layer_name_lists_the_valid_ones(tiny_adapter):
    with pytest.raises(InputError, match=r"valid layers: \['latent', '0', '1', '2', 'output'\]"):
        tiny_adapter.generate_to(torch.randn(2, 4), None, "block9")


def test_onehot_label_format():
    seen = {}

    class OneHotG(nn.Module):
        nz = 2

        def forward(self, z, y):
            seen["y"] = y
            return torch.tanh(z.sum(1, keepdim=True) + y.argmax(1, keepdim=True).float())

    adapter = TorchAdapter(OneHotG(), num_classes=3, label_format="onehot")
    adapter.generate(torch.zeros(2, 2), torch.tensor([2, 0]))
    assert torch.equal(seen["y"], torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    assert adapter.labels_from_native(seen["y"]).tolist() == [2, 0]


def test_discriminator_output_must_be_declared_and_is_respected():
    D = nn.Linear(6, 1)
    with pytest.raises(InputError, match="discriminator_output="):
        TorchAdapter(TinyGenerator(), discriminator=D)
    critic = TorchAdapter(TinyGenerator(), discriminator=D, discriminator_output="critic")
    x = torch.rand(4, 6)
    assert critic.discriminator(x).shape == (4,)
    with pytest.raises(UncalibratedDiscriminatorError, match="critic"):
        critic.discriminator.logit(x)
    prob = Discriminator(nn.Sequential(nn.Linear(6, 1), nn.Sigmoid()), "probability")
    p = prob(x)
    assert torch.allclose(torch.sigmoid(prob.logit(x)), p, atol=1e-6)
    with pytest.raises(InputError, match="one of"):
        Discriminator(D, "score")


def test_discriminator_minimum_batch_and_output_shape_checks():
    D = Discriminator(nn.Linear(6, 1), "logit", min_batch_size=4)
    with pytest.raises(InputError, match="at least 4"):
        D(torch.zeros(2, 6))
    wrong = Discriminator(nn.Linear(6, 3), "logit")
    with pytest.raises(InputError, match=r"one score per sample"):
        wrong(torch.zeros(2, 6))


def test_classifier_preprocessing_and_class_count():
    seen = {}

    class Net(nn.Module):
        def forward(self, x):
            seen["x"] = x
            return torch.zeros(x.shape[0], 10)

    clf = Classifier(Net(), 10, input_range=(0, 1), mean=[0.5], std=[0.25], input_size=(4, 4))
    images = torch.full((2, 1, 8, 8), 1.0)
    assert clf(images).shape == (2, 10)
    assert seen["x"].shape == (2, 1, 4, 4)
    assert torch.allclose(seen["x"], torch.full((2, 1, 4, 4), 2.0))
    with pytest.raises(InputError, match=r"\[2, 5\].*num_classes=5"):
        Classifier(Net(), 5)(images)


def test_missing_models_give_errors_that_say_how_to_attach_them(tiny_adapter):
    with pytest.raises(MissingModelError, match="drs needs a discriminator.*discriminator_output"):
        tiny_adapter.require_discriminator("drs")
    with pytest.raises(MissingModelError, match="bigroc needs a classifier"):
        tiny_adapter.require_classifier("bigroc")
    with pytest.raises(InputError, match="num_classes"):
        TorchAdapter(TinyGenerator(), classifier=nn.Linear(6, 3))


def test_describe_is_json_friendly(conditional_adapter):
    import json

    info = json.loads(json.dumps(conditional_adapter.describe()))
    assert info["adapter"] == "torch" and info["num_classes"] == 3 and info["latent_shape"] == [4]


def test_generator_conditional_fixture_builds():
    assert TinyConditionalGenerator()(torch.zeros(1, 4), torch.tensor([1])).shape == (1, 6)
