"""class_balance: the predicted class mix moves to the target; running counts are deterministic; bad input is refused."""

from __future__ import annotations

import pytest
import torch

from gan_postproc import Chain, get_registry
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.metrics.balance import balance_kl, class_histogram
from gan_postproc.plugins.classifier_guided.class_balance import ClassBalanceSampler
from gan_postproc.plugins.classifier_guided.proposals import classify

from ...helpers import toy_classes as toy


def _predicted(batch) -> torch.Tensor:
    return classify(toy.classifier(), batch.images).argmax(1)


def test_unconditional_balance_kl_drops_by_more_than_half_at_equal_count(bare_pm):
    adapter = toy.unconditional_adapter()
    plain = Chain(adapter, plugin_manager=bare_pm).sample(3000, seed=0)
    balanced_chain = Chain(adapter, ClassBalanceSampler(toy.classifier()), plugin_manager=bare_pm)
    balanced = balanced_chain.sample(3000, seed=0)
    kl_plain, kl_balanced = balance_kl(_predicted(plain), 3), balance_kl(_predicted(balanced), 3)
    assert kl_plain > 0.1  # 60/30/10 by construction
    assert kl_balanced <= 0.5 * kl_plain
    assert kl_balanced < 0.01
    assert torch.equal(balanced.provenance["pseudo_label"], _predicted(balanced))
    # Rejection sampling from (0.6, 0.3, 0.1) to uniform accepts about 1 / M = 0.1 / (1/3) of the proposals.
    assert 0.25 < balanced_chain.sampler.stats.acceptance_rate < 0.4


def test_a_non_uniform_target_is_approached(bare_pm):
    target = (0.2, 0.2, 0.6)
    chain = Chain(toy.unconditional_adapter(), ClassBalanceSampler(toy.classifier(), target=target), plugin_manager=bare_pm)
    histogram = class_histogram(_predicted(chain.sample(3000, seed=1)), 3)
    assert torch.allclose(histogram, torch.tensor(target, dtype=torch.float64), atol=0.04)


def test_a_class_with_zero_target_is_never_kept(bare_pm):
    sampler = ClassBalanceSampler(toy.classifier(), target=(0.5, 0.5, 0.0))
    batch = Chain(toy.unconditional_adapter(), sampler, plugin_manager=bare_pm).sample(400, seed=0)
    assert 2 not in batch.provenance["pseudo_label"].tolist()
    sampler.counts = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)  # a class the calibration never saw
    assert sampler.acceptance_by_class()[2] == 0.0


def test_max_ratio_caps_the_rejection_constant(bare_pm):
    chain = Chain(toy.unconditional_adapter(), ClassBalanceSampler(toy.classifier(), max_ratio=1.5), plugin_manager=bare_pm)
    chain.sample(2000, seed=1)
    per_class = chain.sampler.stats.acceptance_rate_per_class()
    # M = min(max_k pi_k / N_k, 1.5) = 1.5: class k is kept with probability min(1, (1/3) / (1.5 N_k)).
    assert per_class[0] == pytest.approx((1 / 3) / (1.5 * 0.6), abs=0.05)
    assert per_class[1] == pytest.approx((1 / 3) / (1.5 * 0.3), abs=0.05)
    assert per_class[2] == 1.0


def test_conditional_labels_favour_classes_the_generator_under_produces(bare_pm):
    adapter = toy.confused_adapter()  # label 2 comes out as class 0 half the time
    plain = Chain(adapter, plugin_manager=bare_pm).sample(3000, seed=0)
    chain = Chain(adapter, ClassBalanceSampler(toy.classifier()), plugin_manager=bare_pm)
    balanced = chain.sample(3000, seed=0)
    label_mix = class_histogram(balanced.labels, 3)
    assert label_mix[2] > 0.4 and label_mix[0] < 0.3  # 1/N_k favours class 2, damps class 0
    kl_plain, kl_balanced = balance_kl(_predicted(plain), 3), balance_kl(_predicted(balanced), 3)
    assert kl_balanced < 0.5 * kl_plain
    assert chain.sampler.stats.acceptance_rate == 1.0
    assert torch.allclose(chain.sampler.counts, class_histogram(_predicted(balanced), 3), atol=0.1)


def test_same_seed_and_batch_size_give_the_same_run_even_when_repeated(bare_pm):
    chain = Chain(toy.confused_adapter(), ClassBalanceSampler(toy.classifier()), batch_size=64, plugin_manager=bare_pm)
    first = chain.sample(500, seed=3)
    again = chain.sample(500, seed=3)  # begin_run resets the running counts
    assert torch.equal(first.labels, again.labels) and torch.equal(first.images, again.images)
    other = Chain(toy.confused_adapter(), ClassBalanceSampler(toy.classifier()), batch_size=64, plugin_manager=bare_pm).sample(500, seed=3)
    assert torch.equal(first.labels, other.labels)


def test_without_updates_the_output_does_not_depend_on_batch_size(bare_pm):
    def run(adapter, batch_size):
        sampler = ClassBalanceSampler(toy.classifier(), update_rate=0.0)
        return Chain(adapter, sampler, batch_size=batch_size, plugin_manager=bare_pm).sample(200, seed=2)

    for adapter in (toy.confused_adapter(), toy.unconditional_adapter()):
        a, b = run(adapter, 13), run(adapter, 200)
        assert torch.equal(a.latents, b.latents)
        assert torch.equal(a.provenance["proposals"], b.provenance["proposals"])


def test_running_counts_start_from_calibration_and_move_with_batches(bare_pm):
    sampler = ClassBalanceSampler(toy.classifier(), update_rate=0.5, calibration_samples=3000)
    chain = Chain(toy.unconditional_adapter(), sampler, batch_size=100, plugin_manager=bare_pm)
    chain.setup(0)
    assert torch.allclose(sampler.counts, torch.tensor(toy.CLASS_SHARES, dtype=torch.float64), atol=0.03)
    calibrated = sampler.counts.clone()
    chain.run_request(chain_request(100))
    assert not torch.equal(sampler.counts, calibrated)
    sampler.begin_run()
    assert torch.equal(sampler.counts, calibrated)


def chain_request(n: int):
    from gan_postproc import SampleRequest

    return SampleRequest(indices=torch.arange(n), seed=0)


def test_registered_and_created_by_name():
    sampler = get_registry().create("sampler", "class_balance", classifier=toy.classifier(), update_rate=0.2)
    assert isinstance(sampler, ClassBalanceSampler) and sampler.describe()["update_rate"] == 0.2


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"target": (0.5, 0.6, -0.1)}, InputError, "non-negative"),
        ({"target": (0.5, 0.6, 0.1)}, InputError, "sum to 1"),
        ({"update_rate": 1.5}, InputError, "update_rate"),
        ({"max_ratio": 0.5}, InputError, "max_ratio must be >= 1"),
        ({"calibration_samples": 0}, InputError, "calibration_samples"),
        ({"proposal": "prior"}, InputTypeError, "proposal must be"),
    ],
)
def test_bad_options_are_refused(options, error, message):
    with pytest.raises(error, match=message):
        ClassBalanceSampler(toy.classifier(), **options)


def test_target_mismatches_are_refused_at_setup(bare_pm):
    with pytest.raises(InputError, match="target must hold 3 weights"):
        Chain(toy.unconditional_adapter(), ClassBalanceSampler(toy.classifier(), target=(0.5, 0.5)), plugin_manager=bare_pm).sample(4)
    with pytest.raises(InputError, match="target is for unconditional generators"):
        Chain(toy.conditional_adapter(), ClassBalanceSampler(toy.classifier(), target=(0.2, 0.3, 0.5)), plugin_manager=bare_pm).sample(4)
