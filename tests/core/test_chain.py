"""Chain: composition, determinism, exact counts, and clear errors for bad input."""

from __future__ import annotations

import pytest
import torch

from gan_postproc import Chain, Refiner, SampleBatch
from gan_postproc.errors import InputError, InputTypeError, PluginError
from gan_postproc.pipeline.sampler import LatentSampler, PriorSampler


class Shift(Refiner):
    """Adds a constant to images (and clamps to the value range)."""

    name = "shift"

    def __init__(self, amount: float = 0.1) -> None:
        self.amount = amount

    def refine(self, batch, adapter):
        return batch.replace(images=(batch.images + self.amount).clamp(-1, 1))


class DropsOne(LatentSampler):
    name = "drops_one"

    def sample(self, adapter, request):
        return PriorSampler().sample(adapter, request).select(slice(1, None))


class Reorders(LatentSampler):
    name = "reorders"

    def sample(self, adapter, request):
        batch = PriorSampler().sample(adapter, request)
        return batch.select(torch.arange(len(batch) - 1, -1, -1))


class MakesNaN(Refiner):
    name = "makes_nan"

    def refine(self, batch, adapter):
        images = batch.images.clone()
        images[0, 0] = float("nan")
        return batch.replace(images=images)


def test_sample_returns_exactly_n_in_index_order(tiny_adapter, bare_pm):
    chain = Chain(tiny_adapter, batch_size=7, plugin_manager=bare_pm)
    batch = chain.sample(23, seed=1)
    assert len(batch) == 23
    assert batch.indices.tolist() == list(range(23))
    assert batch.images.shape == (23, 6)
    assert batch.images.dtype == torch.float32
    assert chain.report.n == 23 and chain.report.batches == 4


def test_output_does_not_depend_on_batch_size_and_repeats_with_the_seed(tiny_adapter, bare_pm):
    a = Chain(tiny_adapter, batch_size=3, plugin_manager=bare_pm).sample(20, seed=5)
    again = Chain(tiny_adapter, batch_size=3, plugin_manager=bare_pm).sample(20, seed=5)
    b = Chain(tiny_adapter, batch_size=20, plugin_manager=bare_pm).sample(20, seed=5)
    c = Chain(tiny_adapter, batch_size=8, plugin_manager=bare_pm).sample(20, seed=6)
    assert torch.equal(a.latents, b.latents)  # the random inputs are keyed by index alone
    assert torch.equal(a.images, again.images)  # same batches: byte-identical
    assert torch.allclose(a.images, b.images, atol=1e-6)  # other batches: up to BLAS rounding
    assert not torch.allclose(a.images, c.images)


def test_start_and_indices_regenerate_single_samples(tiny_adapter, bare_pm):
    chain = Chain(tiny_adapter, plugin_manager=bare_pm)
    full = chain.sample(30, seed=2)
    tail = chain.sample(10, seed=2, start=20)
    assert torch.equal(tail.latents, full.latents[20:])
    assert torch.allclose(tail.images, full.images[20:], atol=1e-6)
    one = next(chain.iter_indices(torch.tensor([17]), seed=2))
    assert torch.equal(one.latents[0], full.latents[17])
    assert torch.allclose(one.images[0], full.images[17], atol=1e-6)


def test_refiners_apply_in_order_and_the_name_composes(tiny_adapter, bare_pm):
    plain = Chain(tiny_adapter, plugin_manager=bare_pm).sample(10, seed=0)
    chain = Chain(tiny_adapter, refiners=[Shift(0.1), Shift(-0.3)], plugin_manager=bare_pm)
    refined = chain.sample(10, seed=0)
    expected = ((plain.images + 0.1).clamp(-1, 1) - 0.3).clamp(-1, 1)
    assert torch.allclose(refined.images, expected)
    assert chain.name == "prior+shift+shift"
    assert set(chain.report.seconds) == {"sampler:prior", "generate", "refiner:shift"}


def test_conditional_labels_int_tensor_or_drawn(conditional_adapter, bare_pm):
    chain = Chain(conditional_adapter, plugin_manager=bare_pm)
    assert chain.sample(6, labels=2).labels.tolist() == [2] * 6
    given = torch.tensor([0, 1, 2, 0])
    assert chain.sample(4, labels=given).labels.tolist() == given.tolist()
    drawn = chain.sample(300).labels
    assert set(drawn.tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "n must be an integer >= 1, got 0"),
        ({"n": -3}, "got -3"),
        ({"n": 4, "labels": 3}, r"\[0, 2\].*got values in \[3, 3\]"),
        ({"n": 2, "labels": torch.tensor([0, 5])}, r"got values in \[0, 5\]"),
        ({"n": 3, "labels": torch.eye(3)}, "one-hot"),
        ({"n": 3, "labels": torch.tensor([0, 1])}, "one label per sample"),
        ({"n": 2, "start": -1}, "start must be an integer >= 0"),
    ],
)
def test_bad_run_arguments_are_refused_before_any_work(conditional_adapter, bare_pm, kwargs, message):
    chain = Chain(conditional_adapter, plugin_manager=bare_pm)
    with pytest.raises(InputError, match=message):
        chain.sample(**kwargs)
    assert chain.report.n == 0


def test_labels_for_an_unconditional_generator_are_refused(tiny_adapter, bare_pm):
    with pytest.raises(InputError, match="unconditional"):
        Chain(tiny_adapter, plugin_manager=bare_pm).sample(3, labels=1)


def test_missing_labels_for_a_conditional_generator_call(conditional_adapter):
    with pytest.raises(InputError, match="conditional"):
        conditional_adapter.generate(torch.zeros(2, 4))


def test_wrong_latent_shape_and_nan_latents_are_refused(tiny_adapter):
    with pytest.raises(InputError, match=r"shape \[\*, 4\], got shape \(2, 5\)"):
        tiny_adapter.generate(torch.zeros(2, 5))
    with pytest.raises(InputError, match="NaN"):
        tiny_adapter.generate(torch.tensor([[0.0, float("nan"), 0.0, 0.0]]))


def test_constructor_type_errors(tiny_adapter):
    with pytest.raises(InputTypeError, match="Adapter"):
        Chain(torch.nn.Linear(2, 2))
    with pytest.raises(InputTypeError, match="LatentSampler"):
        Chain(tiny_adapter, sampler=Shift())
    with pytest.raises(InputTypeError, match=r"refiners\[1\]"):
        Chain(tiny_adapter, refiners=[Shift(), PriorSampler()])
    with pytest.raises(InputError, match="batch_size"):
        Chain(tiny_adapter, batch_size=0)


@pytest.mark.parametrize(
    "sampler, refiners, message",
    [
        (DropsOne(), [], "never change the number of samples"),
        (Reorders(), [], "reordered or lost"),
        (None, [MakesNaN()], "NaN/inf in 1 of"),
    ],
)
def test_misbehaving_plugins_are_named(tiny_adapter, bare_pm, sampler, refiners, message):
    chain = Chain(tiny_adapter, sampler=sampler, refiners=refiners, batch_size=4, plugin_manager=bare_pm)
    with pytest.raises(PluginError, match=message) as caught:
        chain.sample(8)
    assert "at batch 0" in str(caught.value)
    assert (refiners[0].name if refiners else sampler.name) in str(caught.value)


def test_refine_only_chain_works_without_a_generator(bare_pm):
    chain = Chain(None, refiners=[Shift(0.5)], plugin_manager=bare_pm)
    images = torch.zeros(3, 1, 2, 2)
    out = chain.refine(SampleBatch(images=images, indices=torch.arange(3)))
    assert torch.allclose(out.images, torch.full_like(images, 0.5))
    with pytest.raises(InputError, match="no adapter"):
        chain.sample(2)
    with pytest.raises(InputError, match="refines images, but the batch has none"):
        chain.refine(SampleBatch(latents=torch.zeros(2, 2)))


def test_refiner_exception_gets_a_note_naming_the_stage(tiny_adapter, bare_pm):
    class Broken(Refiner):
        name = "broken"

        def refine(self, batch, adapter):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom") as caught:
        Chain(tiny_adapter, refiners=[Broken()], plugin_manager=bare_pm).sample(2)
    assert any("refiner 'broken', batch 0" in note for note in getattr(caught.value, "__notes__", []))


def test_setup_runs_once_then_many_seeds_sample_from_the_same_fit(tiny_adapter, bare_pm):
    class CountingRefiner(Shift):
        def __init__(self):
            super().__init__(0.0)
            self.setups = []

        def setup(self, adapter, seed):
            self.setups.append(seed)

    refiner = CountingRefiner()
    chain = Chain(tiny_adapter, refiners=[refiner], plugin_manager=bare_pm)
    chain.setup(11)
    chain.sample(3, seed=1)
    chain.sample(3, seed=2)
    assert refiner.setups == [11]
    chain.setup(12)
    assert refiner.setups == [11, 12]
    fresh = CountingRefiner()
    Chain(tiny_adapter, refiners=[fresh], plugin_manager=bare_pm).sample(3, seed=4)
    assert fresh.setups == [4]


def test_begin_run_is_called_once_per_run_after_setup(tiny_adapter, bare_pm):
    class Counting(PriorSampler):
        name = "counting"

        def __init__(self) -> None:
            super().__init__()
            self.events: list[str] = []

        def setup(self, adapter, seed):
            self.events.append(f"setup {seed}")

        def begin_run(self):
            self.events.append("begin_run")

    sampler = Counting()
    chain = Chain(tiny_adapter, sampler, batch_size=4, plugin_manager=bare_pm)
    chain.sample(10, seed=1)
    chain.sample(3, seed=1)
    list(chain.iter_indices(torch.tensor([5, 2]), seed=2))
    assert sampler.events == ["setup 1", "begin_run", "begin_run", "begin_run"]
