"""classifier_filter: the Slim (2020) rule holds for every returned sample, counts are exact, bad input is refused."""

from __future__ import annotations

import pytest
import torch

from gan_postproc import Chain, LatentSampler, SampleBatch, get_registry
from gan_postproc.errors import InputError, InputTypeError, MissingModelError
from gan_postproc.pipeline.sampler import PriorSampler
from gan_postproc.plugins.classifier_guided.classifier_filter import ClassifierFilter, passes_filter
from gan_postproc.plugins.classifier_guided.proposals import classify

from ...helpers import toy_classes as toy


def _rule_holds(classifier, batch: SampleBatch, threshold: float) -> torch.Tensor:
    """Re-check the rule independently: argmax == label and p(label) >= threshold."""
    p = classify(classifier, batch.images)
    labels = batch.labels if batch.labels is not None else batch.provenance["pseudo_label"]
    return (p.argmax(1) == labels) & (p[torch.arange(len(p)), labels] >= threshold)


@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.97])
@pytest.mark.parametrize("make_adapter", [toy.conditional_adapter, toy.unconditional_adapter])
def test_every_returned_sample_passes_the_rule_and_count_is_exact(bare_pm, threshold, make_adapter):
    classifier = toy.classifier()
    chain = Chain(make_adapter(), ClassifierFilter(classifier, threshold=threshold), batch_size=128, plugin_manager=bare_pm)
    batch = chain.sample(500, seed=2)
    assert len(batch) == 500 and batch.indices.tolist() == list(range(500))
    assert bool(_rule_holds(classifier, batch, threshold).all())
    assert bool((batch.scores["classifier_probability"] >= threshold).all())
    stats = chain.sampler.stats
    assert stats.accepted == 500 and stats.proposals == int(batch.provenance["proposals"].sum())
    # The plain generator fails the rule often enough that filtering had work to do.
    assert stats.proposals > 500


def test_plain_samples_would_fail_the_rule(bare_pm):
    classifier = toy.classifier()
    plain = Chain(toy.conditional_adapter(), plugin_manager=bare_pm).sample(500, seed=2)
    assert float(_rule_holds(classifier, plain, 0.9).float().mean()) < 0.9


def test_labels_are_kept_per_index_so_the_class_mix_is_unchanged(bare_pm):
    adapter = toy.conditional_adapter()
    filtered = Chain(adapter, ClassifierFilter(toy.classifier()), plugin_manager=bare_pm).sample(400, seed=5)
    plain = Chain(adapter, plugin_manager=bare_pm).sample(400, seed=5)
    assert torch.equal(filtered.labels, plain.labels)
    # Samples accepted at their first proposal are exactly the unfiltered samples.
    first = filtered.provenance["proposals"] == 1
    assert int(first.sum()) > 200
    assert torch.allclose(filtered.images[first], plain.images[first], atol=1e-6)
    assert not torch.allclose(filtered.images[~first], plain.images[~first], atol=1e-3)


def test_requested_labels_are_honoured(bare_pm):
    chain = Chain(toy.conditional_adapter(), ClassifierFilter(toy.classifier()), plugin_manager=bare_pm)
    batch = chain.sample(60, seed=0, labels=2)
    assert bool((batch.labels == 2).all())
    assert bool(_rule_holds(toy.classifier(), batch, 0.9).all())


def test_acceptance_is_reported_per_class_and_per_pseudo_class(bare_pm):
    conditional = Chain(toy.conditional_adapter(), ClassifierFilter(toy.classifier()), plugin_manager=bare_pm)
    conditional.sample(600, seed=1)
    per_class = conditional.sampler.stats.as_dict()["acceptance_rate_per_class"]
    assert set(per_class) == {"0", "1", "2"} and all(0 < rate <= 1 for rate in per_class.values())
    unconditional = Chain(toy.unconditional_adapter(), ClassifierFilter(toy.classifier()), plugin_manager=bare_pm)
    batch = unconditional.sample(600, seed=1)
    assert batch.labels is None and batch.provenance["pseudo_label"].dtype == torch.int64
    assert set(unconditional.sampler.stats.acceptance_rate_per_class()) == {0, 1, 2}


def test_result_does_not_depend_on_batch_size(bare_pm):
    def run(batch_size):
        return Chain(toy.conditional_adapter(), ClassifierFilter(toy.classifier()), batch_size=batch_size, plugin_manager=bare_pm).sample(90, seed=4)

    a, b = run(7), run(90)
    assert torch.equal(a.latents, b.latents) and torch.equal(a.labels, b.labels)
    assert torch.equal(a.provenance["proposals"], b.provenance["proposals"])


class Shrink(LatentSampler):
    """A stand-in for truncation: prior latents scaled by 1/2."""

    name = "shrink"

    def sample(self, adapter, request):
        batch = PriorSampler().sample(adapter, request)
        return batch.replace(latents=batch.latents / 2)


def test_proposals_come_from_the_given_sampler(bare_pm):
    plain = Chain(toy.conditional_adapter(), PriorSampler(), plugin_manager=bare_pm).sample(200, seed=3)
    chain = Chain(toy.conditional_adapter(), ClassifierFilter(toy.classifier(), proposal=Shrink()), plugin_manager=bare_pm)
    batch = chain.sample(200, seed=3)
    first = batch.provenance["proposals"] == 1
    assert torch.allclose(batch.latents[first], plain.latents[first] / 2)
    assert chain.sampler.describe()["proposal"] == {"name": "shrink"}


def test_the_adapters_classifier_is_used_when_none_is_given(bare_pm):
    chain = Chain(toy.conditional_adapter(classifier=toy.classifier()), ClassifierFilter(threshold=0.95), plugin_manager=bare_pm)
    batch = chain.sample(50)
    assert bool(_rule_holds(toy.classifier(), batch, 0.95).all())


def test_registered_and_created_by_name():
    sampler = get_registry().create("sampler", "classifier_filter", classifier=toy.classifier(), threshold=0.8)
    assert isinstance(sampler, ClassifierFilter) and sampler.threshold == 0.8


@pytest.mark.parametrize("threshold, error", [(-0.1, InputError), (1.5, InputError), (float("nan"), InputError), ("high", InputTypeError)])
def test_bad_thresholds_are_refused(threshold, error):
    with pytest.raises(error, match="threshold"):
        ClassifierFilter(toy.classifier(), threshold=threshold)


def test_missing_or_mismatched_classifier_is_refused(bare_pm):
    with pytest.raises(MissingModelError, match="classifier_filter needs a classifier"):
        Chain(toy.conditional_adapter(), ClassifierFilter(), plugin_manager=bare_pm).sample(4)
    from gan_postproc import Classifier, TorchAdapter

    five_classes = TorchAdapter(toy.ToyConditional(), num_classes=5)
    with pytest.raises(InputError, match="3 classes but the conditional generator has 5"):
        Chain(five_classes, ClassifierFilter(toy.classifier()), plugin_manager=bare_pm).sample(4)
    with pytest.raises(InputTypeError, match="proposal must be"):
        ClassifierFilter(toy.classifier(), proposal="truncation")
    assert isinstance(toy.classifier(), Classifier)


def test_passes_filter_rule_on_hand_made_probabilities():
    p = torch.tensor([[0.95, 0.05], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    labels = torch.tensor([0, 0, 0, 0])
    assert passes_filter(p, labels, 0.9).tolist() == [True, False, False, False]
    assert passes_filter(p, labels, 0.4).tolist() == [True, True, False, False]  # argmax must agree too
    assert passes_filter(p, None, 0.6).tolist() == [True, True, True, False]


def test_an_unreachable_threshold_stops_with_a_clear_error(bare_pm):
    from gan_postproc.errors import AcceptanceError

    chain = Chain(toy.conditional_adapter(), ClassifierFilter(toy.classifier(), threshold=0.999, max_rounds=20), plugin_manager=bare_pm)
    with pytest.raises(AcceptanceError, match="classifier_filter: .* after max_rounds=20"):
        chain.sample(10)
