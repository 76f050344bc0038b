"""The shared rejection loop: exact counts, index keying, bounded failure."""

from __future__ import annotations

import pytest
import torch

from gan_postproc import Chain, RejectionSampler, SampleBatch
from gan_postproc.errors import AcceptanceError, InputError


class PositiveFirstCoordinate(RejectionSampler):
    """Accepts z with probability 1 if z[0] > 0 else ``floor``."""

    name = "positive_first"

    def __init__(self, floor: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.floor = floor

    def propose(self, adapter, request, round):
        z = request.draw_latents(adapter, round=round)
        labels = request.draw_labels(adapter, round)
        p = torch.where(z[:, 0] > 0, torch.ones(len(z)), torch.full((len(z),), self.floor))
        return SampleBatch(latents=z, labels=labels, indices=request.indices, value_range=adapter.value_range), p


def test_every_returned_sample_passes_and_count_is_exact(tiny_adapter, bare_pm):
    chain = Chain(tiny_adapter, PositiveFirstCoordinate(), batch_size=16, plugin_manager=bare_pm)
    batch = chain.sample(100, seed=3)
    assert len(batch) == 100 and batch.indices.tolist() == list(range(100))
    assert bool((batch.latents[:, 0] > 0).all())
    stats = chain.sampler.stats
    assert stats.accepted == 100
    assert 0.35 < stats.acceptance_rate < 0.65
    assert int(batch.provenance["proposals"].sum()) == stats.proposals
    assert torch.equal(batch.scores["acceptance_probability"], torch.ones(100))


def test_result_is_independent_of_batch_size(tiny_adapter, bare_pm):
    a = Chain(tiny_adapter, PositiveFirstCoordinate(), batch_size=5, plugin_manager=bare_pm).sample(40, seed=9)
    b = Chain(tiny_adapter, PositiveFirstCoordinate(), batch_size=40, plugin_manager=bare_pm).sample(40, seed=9)
    assert torch.equal(a.latents, b.latents)
    assert torch.allclose(a.images, b.images, atol=1e-6)


def test_per_class_acceptance_is_reported(conditional_adapter, bare_pm):
    chain = Chain(conditional_adapter, PositiveFirstCoordinate(), plugin_manager=bare_pm)
    chain.sample(200)
    per_class = chain.sampler.stats.acceptance_rate_per_class()
    assert set(per_class) == {0, 1, 2}
    assert all(0.2 < rate < 0.8 for rate in per_class.values())


def test_zero_acceptance_stops_with_a_clear_error(tiny_adapter, bare_pm):
    class Never(PositiveFirstCoordinate):
        def propose(self, adapter, request, round):
            batch, p = super().propose(adapter, request, round)
            return batch, torch.zeros_like(p)

    with pytest.raises(AcceptanceError, match="after max_rounds=50"):
        Chain(tiny_adapter, Never(max_rounds=50), plugin_manager=bare_pm).sample(10)
    with pytest.raises(AcceptanceError, match="acceptance collapsed"):
        Chain(tiny_adapter, Never(), batch_size=5000, plugin_manager=bare_pm).sample(5000)


def test_bad_acceptance_probabilities_are_refused(tiny_adapter, bare_pm):
    class NaNs(PositiveFirstCoordinate):
        def propose(self, adapter, request, round):
            batch, p = super().propose(adapter, request, round)
            return batch, p * float("nan")

    with pytest.raises(AcceptanceError, match="NaN"):
        Chain(tiny_adapter, NaNs(), plugin_manager=bare_pm).sample(4)
    with pytest.raises(InputError, match="max_rounds"):
        PositiveFirstCoordinate(max_rounds=0)


def test_per_class_acceptance_can_use_the_samplers_own_classes(tiny_adapter, bare_pm):
    class BySign(PositiveFirstCoordinate):
        def class_labels(self, batch):
            return (batch.latents[:, 1] > 0).long()

    chain = Chain(tiny_adapter, BySign(), plugin_manager=bare_pm)
    chain.sample(200)
    stats = chain.sampler.stats
    assert set(stats.acceptance_rate_per_class()) == {0, 1}
    assert sum(stats.proposals_per_class.values()) == stats.proposals


def test_several_rounds_per_call_keep_the_first_accepted_round(tiny_adapter, bare_pm):
    def run(batch_size):
        sampler = PositiveFirstCoordinate(rounds_per_call=4)
        batch = Chain(tiny_adapter, sampler, batch_size=batch_size, plugin_manager=bare_pm).sample(300, seed=5)
        return sampler, batch

    sampler, batch = run(300)
    assert len(batch) == 300 and bool((batch.latents[:, 0] > 0).all())
    stats = sampler.stats
    assert stats.accepted == 300 and 0.4 < stats.acceptance_rate < 0.6
    # proposals after the first acceptance of an index are not counted: about 2 per sample at rate 1/2
    assert int(batch.provenance["proposals"].sum()) == stats.proposals
    assert float(batch.provenance["proposals"].float().mean()) == pytest.approx(2.0, abs=0.3)
    _, other = run(7)
    assert torch.equal(batch.latents, other.latents)


def test_growing_rounds_per_call_follow_the_schedule_and_stay_batch_independent(tiny_adapter, bare_pm):
    class Recording(PositiveFirstCoordinate):
        def propose_rounds(self, adapter, request, first_round, count):
            self.calls.append((first_round, count))
            return super().propose_rounds(adapter, request, first_round, count)

    def run(batch_size, **kwargs):
        sampler = Recording(floor=0.05, rounds_per_call=2, round_growth=2, **kwargs)
        sampler.calls = []
        batch = Chain(tiny_adapter, sampler, batch_size=batch_size, plugin_manager=bare_pm).sample(200, seed=2)
        return sampler, batch

    sampler, batch = run(200)
    assert sampler.calls[:3] == [(0, 2), (2, 4), (6, 8)]  # 2, 4, 8, ... rounds, whatever is pending
    assert len(batch) == 200 and int(batch.provenance["proposals"].sum()) == sampler.stats.proposals
    _, other = run(9)
    assert torch.equal(batch.latents, other.latents)
    with pytest.raises(InputError, match="round_growth"):
        PositiveFirstCoordinate(round_growth=0)


def test_several_rounds_per_call_still_stop_at_max_rounds(tiny_adapter, bare_pm):
    class Never(PositiveFirstCoordinate):
        def propose(self, adapter, request, round):
            batch, p = super().propose(adapter, request, round)
            return batch, torch.zeros_like(p)

    sampler = Never(rounds_per_call=4, max_rounds=6)
    with pytest.raises(AcceptanceError, match="after max_rounds=6"):
        Chain(tiny_adapter, sampler, plugin_manager=bare_pm).sample(10)
    assert sampler.stats.proposals == 60
    with pytest.raises(InputError, match="rounds_per_call"):
        PositiveFirstCoordinate(rounds_per_call=0)
