"""ensemble: weights respected, one generator per block of indices, provenance and labels recorded, bad weights refused."""

from __future__ import annotations

import pytest
import torch

from gan_postproc import Chain, TorchAdapter, get_registry
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.pipeline.sampler import PriorSampler
from gan_postproc.plugins.classifier_guided.classifier_filter import ClassifierFilter
from gan_postproc.plugins.classifier_guided.ensemble import Ensemble, generator_choice

from ...helpers import toy_classes as toy


def _members():
    return [toy.unconditional_adapter(), toy.conditional_adapter()]


@pytest.mark.parametrize("weights", [(0.75, 0.25), (0.5, 0.5), (0.1, 0.9)])
def test_weights_are_respected_statistically(weights):
    n = 20_000
    choice = generator_choice(0, torch.arange(n), weights, block_size=1)
    share = float((choice == 0).float().mean())
    sigma = (weights[0] * weights[1] / n) ** 0.5
    assert abs(share - weights[0]) < 4 * sigma


def test_weights_per_block_and_three_generators():
    blocks = 4000
    choice = generator_choice(7, torch.arange(blocks * 16), (0.5, 0.3, 0.2), block_size=16)
    per_block = choice.view(blocks, 16)
    assert bool((per_block == per_block[:, :1]).all())  # one generator per block
    shares = torch.bincount(per_block[:, 0], minlength=3).double() / blocks
    assert torch.allclose(shares, torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), atol=4 * (0.25 / blocks) ** 0.5)


def test_chain_samples_come_from_the_recorded_generator(bare_pm):
    members = _members()
    chain = Chain(members[0], Ensemble(members, (0.75, 0.25), block_size=4), batch_size=50, plugin_manager=bare_pm)
    batch = chain.sample(400, seed=1)
    generator = batch.provenance["generator"]
    assert len(batch) == 400 and batch.indices.tolist() == list(range(400))
    assert set(generator.tolist()) == {0, 1}
    assert bool((generator.view(100, 4) == generator.view(100, 4)[:, :1]).all())
    # Mixed conditional / unconditional: no shared labels; the conditional member's labels are recorded.
    assert batch.labels is None
    labels = batch.provenance["label"]
    assert bool((labels[generator == 0] == -1).all()) and bool(((labels[generator == 1] >= 0) & (labels[generator == 1] < 3)).all())
    # Each row equals what its member generates directly for that index.
    for position, member in enumerate(members):
        rows = torch.nonzero(generator == position)[:, 0]
        own = Chain(member, PriorSampler(), plugin_manager=bare_pm)
        expected = torch.cat([b.images for b in own.iter_indices(batch.indices[rows], seed=1)])
        assert torch.allclose(batch.images[rows], expected, atol=1e-6)


def test_choice_does_not_depend_on_batch_size(bare_pm):
    def run(batch_size):
        members = _members()
        return Chain(members[0], Ensemble(members), batch_size=batch_size, plugin_manager=bare_pm).sample(300, seed=5)

    a, b = run(7), run(300)
    assert torch.equal(a.provenance["generator"], b.provenance["generator"])
    assert torch.allclose(a.images, b.images, atol=1e-6)


def test_conditional_members_share_labels(bare_pm):
    members = [toy.conditional_adapter(), toy.confused_adapter()]
    chain = Chain(members[1], Ensemble(members, block_size=1), plugin_manager=bare_pm)
    drawn = chain.sample(200, seed=0)
    plain = Chain(members[0], plugin_manager=bare_pm).sample(200, seed=0)
    assert torch.equal(drawn.labels, plain.labels)
    assert "label" not in drawn.provenance
    requested = chain.sample(30, seed=0, labels=1)
    assert bool((requested.labels == 1).all())


def test_inner_samplers_per_generator(bare_pm):
    members = [toy.conditional_adapter(), toy.confused_adapter()]
    filters = [ClassifierFilter(toy.classifier()), None]
    chain = Chain(members[0], Ensemble(members, samplers=filters, block_size=1), plugin_manager=bare_pm)
    batch = chain.sample(300, seed=0)
    assert chain.sampler.describe()["samplers"][1] == {"name": "prior"}
    assert filters[0].stats.accepted == int((batch.provenance["generator"] == 0).sum())


def test_registered_and_created_by_name():
    sampler = get_registry().create("sampler", "ensemble", generators=_members(), weights=[0.75, 0.25])
    assert isinstance(sampler, Ensemble) and sampler.weights == [0.75, 0.25]


@pytest.mark.parametrize(
    "weights, message",
    [
        ((0.75, -0.25), "non-negative"),
        ((0.5, 0.6), "sum to 1"),
        ((0.5, 0.25, 0.25), "must hold 2 weights"),
        ((float("nan"), 1.0), "finite"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(InputError, match=message):
        Ensemble(_members(), weights)


def test_bad_members_and_chain_adapter_are_refused(bare_pm):
    members = _members()
    with pytest.raises(InputError, match="at least two generators"):
        Ensemble(members[:1])
    with pytest.raises(InputTypeError, match=r"generators\[1\] must be a gan_postproc.Adapter"):
        Ensemble([members[0], toy.ToyConditional()])
    with pytest.raises(InputError, match="one value range"):
        Ensemble([members[0], TorchAdapter(toy.ToyUnconditional(), output_range=None)])
    with pytest.raises(InputError, match="share their classes"):
        Ensemble([members[1], TorchAdapter(toy.ToyConditional(), num_classes=4)])
    with pytest.raises(InputError, match="samplers must hold one entry per generator"):
        Ensemble(members, samplers=[None])
    with pytest.raises(InputError, match="chain's adapter must be one of the ensemble's generators"):
        Chain(toy.unconditional_adapter(), Ensemble(members), plugin_manager=bare_pm).sample(4)
    with pytest.raises(InputError, match="cannot honour requested labels"):
        Chain(members[1], Ensemble(members), plugin_manager=bare_pm).sample(4, labels=0)
    with pytest.raises(InputError, match="block_size"):
        Ensemble(members, block_size=0)


def test_members_with_different_sample_shapes_are_refused(bare_pm):
    small = TorchAdapter(torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh()), latent_shape=5)
    members = [toy.unconditional_adapter(), small]
    with pytest.raises(InputError, match="samples of different shapes"):
        Chain(members[0], Ensemble(members), plugin_manager=bare_pm).sample(4)
