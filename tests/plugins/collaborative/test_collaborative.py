"""Collaborative sampling (plugin ``collaborative``): the split, Algorithm 1's stopping rule, conventions, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_postproc import Chain, Discriminator, SampleBatch, TorchAdapter
from gan_postproc.errors import InputError, MissingModelError
from gan_postproc.plugins.collaborative import CollaborativeRefiner, mean_realness

from ...helpers.tiny_models import TinyConditionalGenerator, TinyGenerator


class LinearLogit(nn.Module):
    """d(x) = <w, x> + b on [N, 6] samples: a discriminator whose gradient we know."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.net = nn.Linear(6, 1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.net(x)


class SigmoidOf(nn.Module):
    """The same network, returning the probability instead of the logit."""

    def __init__(self, logit: nn.Module) -> None:
        super().__init__()
        self.logit = logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logit(x))


def _adapter(output: str = "logit") -> TorchAdapter:
    return TorchAdapter(TinyGenerator(), discriminator=LinearLogit(), discriminator_output=output)


def _proposals(adapter: TorchAdapter, n: int = 16, seed: int = 0) -> SampleBatch:
    return Chain(adapter).sample(n, seed=seed)


@pytest.mark.parametrize("make", [_adapter, lambda: TorchAdapter(TinyConditionalGenerator(), num_classes=3, discriminator=LinearLogit(), discriminator_output="logit")])
def test_zero_steps_reproduce_the_generator_exactly_at_every_split_point(make):
    adapter = make()
    batch = _proposals(adapter)
    for layer in adapter.layer_names():
        refiner = CollaborativeRefiner(layer=layer, steps=0, selection="best")
        refined = Chain(adapter, refiners=[refiner]).refine(batch)
        assert torch.equal(refined.images, batch.images), layer
        assert torch.equal(refined.provenance["refinement_steps"], torch.zeros(len(batch), dtype=torch.int64))


def test_bad_layer_name_lists_the_valid_ones():
    adapter = _adapter()
    chain = Chain(adapter, refiners=[CollaborativeRefiner(layer="block9", selection="best")])
    with pytest.raises(InputError) as error:
        chain.sample(4)
    for name in adapter.layer_names():
        assert repr(name) in str(error.value)


def test_every_layer_raises_the_discriminator_score():
    adapter = _adapter()
    batch = _proposals(adapter, 64)
    with torch.no_grad():
        before = torch.sigmoid(adapter.discriminator(batch.images))
    for layer in adapter.layer_names():
        refined = Chain(adapter, refiners=[CollaborativeRefiner(layer=layer, steps=10, selection="best")]).refine(batch)
        assert torch.allclose(refined.scores["discriminator"], torch.sigmoid(adapter.discriminator(refined.images)), atol=1e-6)
        assert bool((refined.scores["discriminator"] >= before - 1e-7).all()), layer
        assert float(refined.scores["discriminator"].mean()) > float(before.mean()) + 1e-3, layer


def test_threshold_stops_each_sample_at_its_first_iterate_above_the_mean_real_score():
    adapter = _adapter()
    batch = _proposals(adapter, 64)
    d0 = torch.sigmoid(adapter.discriminator(batch.images)).detach()
    threshold = float(d0.median())  # half the proposals start above it
    steps, step_size = 30, 0.05
    refine = lambda k: Chain(adapter, refiners=[CollaborativeRefiner(layer="0", steps=k, step_size=step_size, threshold=threshold)]).refine(batch)  # noqa: E731
    refined = refine(steps)
    taken = refined.provenance["refinement_steps"]
    final = refined.scores["discriminator"]
    started_above = d0 >= threshold
    # Samples already at the threshold are not touched.
    assert bool((taken[started_above] == 0).all())
    assert torch.equal(refined.images[started_above], batch.images[started_above])
    # The others stop at the first iterate that reaches it, or run all K steps.
    stopped = (taken < steps) & ~started_above
    assert bool(stopped.any()) and bool((final[stopped] >= threshold).all())
    assert bool((final[taken == steps] < threshold).all())
    for k in sorted({int(t) for t in taken[stopped]}):
        earlier = refine(k - 1).scores["discriminator"]
        rows = taken == k
        assert bool((earlier[rows] < threshold).all()), "a sample moved past an iterate that already reached the threshold"
    # Per sample: refining a subset gives the same rows (the rule reads no other sample).
    subset = refine(steps).select(torch.arange(0, 64, 3))
    alone = Chain(adapter, refiners=[CollaborativeRefiner(layer="0", steps=steps, step_size=step_size, threshold=threshold)]).refine(batch.select(torch.arange(0, 64, 3)))
    assert torch.equal(subset.provenance["refinement_steps"], alone.provenance["refinement_steps"])
    torch.testing.assert_close(subset.images, alone.images, rtol=0, atol=1e-6)


def test_a_group_scoring_discriminator_gets_full_groups_when_few_samples_still_move():
    adapter = _adapter()
    batch = _proposals(adapter, 8)
    d0 = torch.sigmoid(adapter.discriminator(batch.images)).detach()
    threshold = float(d0.sort().values[2])  # two samples start below it
    grouped = Discriminator(adapter.discriminator.module, "logit", min_batch_size=4)  # e.g. a minibatch-std group
    refine = lambda d: Chain(adapter, refiners=[CollaborativeRefiner(discriminator=d, layer="0", steps=5, threshold=threshold)]).refine(batch)  # noqa: E731
    refined, reference = refine(grouped), refine(adapter.discriminator)
    assert int((refined.provenance["refinement_steps"] > 0).sum()) == 2
    # The filling samples' scores are dropped: a per-sample network gives exactly the ungrouped result.
    assert torch.equal(refined.images, reference.images)
    assert torch.equal(refined.provenance["refinement_steps"], reference.provenance["refinement_steps"])


def test_threshold_is_the_mean_real_score_from_any_iterable_of_tensors():
    adapter = _adapter()
    real = torch.rand(50, 6) * 2 - 1
    with torch.no_grad():
        expected = float(torch.sigmoid(adapter.discriminator(real)).mean())
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(real, torch.zeros(50)), batch_size=8)
    for real_data in (real, list(real.split(7)), loader, (b for b in real.split(20))):
        refiner = CollaborativeRefiner(real_data=real_data)
        refiner.setup(adapter, 0)
        assert refiner.threshold == pytest.approx(expected, abs=1e-6)
    assert mean_realness(adapter.discriminator, real, None) == pytest.approx(expected, abs=1e-6)


def test_the_convention_comes_from_the_wrapper_not_the_values():
    logit_net = LinearLogit(scale=3.0)
    batch = _proposals(TorchAdapter(TinyGenerator()), 32)
    as_logit = TorchAdapter(TinyGenerator(), discriminator=logit_net, discriminator_output="logit")
    as_probability = TorchAdapter(TinyGenerator(), discriminator=SigmoidOf(logit_net), discriminator_output="probability")
    results = [
        Chain(adapter, refiners=[CollaborativeRefiner(layer="latent", steps=5, selection="best")]).refine(batch)
        for adapter in (as_logit, as_probability)
    ]
    torch.testing.assert_close(results[0].images, results[1].images, rtol=0, atol=1e-4)
    # A critic is refined on -D: its raw score goes up, with no sigmoid in between.
    as_critic = TorchAdapter(TinyGenerator(), discriminator=logit_net, discriminator_output="critic")
    refined = Chain(as_critic, refiners=[CollaborativeRefiner(layer="latent", steps=5, selection="best")]).refine(batch)
    assert torch.allclose(refined.scores["discriminator"], logit_net(refined.images)[:, 0], atol=1e-5)
    assert float(refined.scores["discriminator"].mean()) > float(logit_net(batch.images).detach().mean())


def test_latent_refinement_returns_the_new_latents_inside_a_uniform_prior():
    adapter = TorchAdapter(TinyGenerator(), prior="uniform", discriminator=LinearLogit(scale=50.0), discriminator_output="critic")
    batch = _proposals(adapter, 32)
    latents, images = batch.latents.clone(), batch.images.clone()
    refined = Chain(adapter, refiners=[CollaborativeRefiner(layer="latent", steps=20, step_size=1.0, selection="best")]).refine(batch)
    assert torch.equal(batch.latents, latents) and torch.equal(batch.images, images), "the input batch was changed in place"
    assert not torch.equal(refined.latents, batch.latents)
    assert float(refined.latents.abs().max()) <= 1.0
    torch.testing.assert_close(refined.images, adapter.generate(refined.latents), rtol=0, atol=1e-6)


def test_standalone_images_refine_in_data_space_and_stay_in_range():
    discriminator = Discriminator(LinearLogit(scale=20.0), "logit")
    images = torch.rand(10, 6) * 2 - 1
    chain = Chain(None, refiners=[CollaborativeRefiner(discriminator=discriminator, steps=20, step_size=1.0, selection="best")])
    refined = chain.refine(SampleBatch(images=images))
    assert refined.images.abs().max() <= 1.0
    assert float(refined.scores["discriminator"].mean()) > float(torch.sigmoid(discriminator(images)).detach().mean())
    with pytest.raises(InputError, match="layer='output'"):
        Chain(None, refiners=[CollaborativeRefiner(discriminator=discriminator, layer="latent", selection="best")]).refine(SampleBatch(images=images))


def test_clear_errors():
    with pytest.raises(MissingModelError, match="discriminator"):
        Chain(TorchAdapter(TinyGenerator()), refiners=[CollaborativeRefiner(selection="best")]).sample(2)
    with pytest.raises(InputError, match="real_data"):
        Chain(_adapter(), refiners=[CollaborativeRefiner()]).sample(2)
    with pytest.raises(InputError, match="step_size"):
        CollaborativeRefiner(step_size=0.0)
    with pytest.raises(InputError, match="step_size"):
        CollaborativeRefiner(step_size=float("nan"))
    with pytest.raises(InputError, match="steps"):
        CollaborativeRefiner(steps=-1)
    with pytest.raises(InputError, match="selection"):
        CollaborativeRefiner(selection="first")
    with pytest.raises(InputError, match="selection='best'"):
        CollaborativeRefiner(selection="best", threshold=0.5)
    with pytest.raises(TypeError, match="Discriminator"):
        Chain(TorchAdapter(TinyGenerator()), refiners=[CollaborativeRefiner(discriminator=LinearLogit(), selection="best")]).sample(2)
    with pytest.raises(InputError, match="real_data"):
        CollaborativeRefiner(real_data=[torch.zeros(3)]).setup(_adapter(), 0)


def test_the_shipped_shaped_digits_discriminator_is_a_changed_copy_of_the_shipped_one():
    from gan_postproc.models import assets
    from gan_postproc.models.digits import digits_adapter
    from gan_postproc.plugins.collaborative import SHAPED_DIGITS_FILE, shipped_shaped_digits_discriminator

    files = assets.read_manifest("digits")["files"]
    assert files[SHAPED_DIGITS_FILE]["training"]["shaped_from_sha256"] == files["discriminator.safetensors"]["sha256"], (
        "discriminator.safetensors changed: re-run benchmarks/train_shaped_discriminator.py"
    )
    adapter = digits_adapter(classifier=None)
    original = {k: v.clone() for k, v in adapter.discriminator.state_dict().items()}
    shaped = shipped_shaped_digits_discriminator(adapter.discriminator)
    assert shaped.output is adapter.discriminator.output
    assert all(torch.equal(adapter.discriminator.state_dict()[k], v) for k, v in original.items())
    assert any(not torch.equal(shaped.state_dict()[k], v) for k, v in original.items())


def test_the_digits_row_refines_the_middle_layer_with_the_shaped_discriminator():
    from gan_postproc.bench.contexts import digits_context
    from gan_postproc.bench.setups import collect_setups
    from gan_postproc.plugin_system.manager import get_plugin_manager

    context = digits_context(quick=True)
    (row,) = [r for r in collect_setups(context, get_plugin_manager()) if r.name == "collaborative"]
    (refiner,) = row.refiners
    assert refiner.layer == "block1" and refiner.discriminator is not context.adapter.discriminator
    chain = Chain(context.adapter, refiners=[refiner], batch_size=32)
    batch = chain.sample(32, seed=0)
    bare = Chain(context.adapter).sample(32, seed=0)
    with torch.no_grad():
        assert float(refiner.discriminator(batch.images).mean()) > float(refiner.discriminator(bare.images).mean())
    row.floor(batch, chain.report)


def test_no_digits_row_for_another_discriminator():
    from gan_postproc.bench.setups import BenchmarkContext, collect_setups
    from gan_postproc.plugin_system.manager import get_plugin_manager

    context = BenchmarkContext(suite="demo", dataset="digits", adapter=_adapter(), conditional_adapter=None,
                               real_data=lambda n, seed: torch.rand(n, 6) * 2 - 1, quick=True)
    assert [r for r in collect_setups(context, get_plugin_manager()) if r.name == "collaborative"] == []
