"""Hardening of inputs and numerics: shared checks, option errors, NaN-safe iterations, small batches, plugin rules."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from gan_postproc import Chain, Classifier, Discriminator, LatentPrior, Refiner, SampleBatch, SampleRequest, TorchAdapter, get_registry, hookimpl
from gan_postproc import validation as v
from gan_postproc.errors import GanPostprocError, HookError, InputError, InputTypeError, PluginError
from gan_postproc.models.digits import digits_adapter, digits_classifier, load_digits_classifier
from gan_postproc.models.toy2d import load_toy2d_critic, toy2d_adapter
from gan_postproc.pipeline.batch import check_batch
from gan_postproc.pipeline.numerics import NONFINITE_KEY, FiniteGuard, NonFiniteStepWarning
from gan_postproc.plugins.bigroc import BIGRoC
from gan_postproc.plugins.collaborative import CollaborativeRefiner
from gan_postproc.plugins.ddls import DDLS
from gan_postproc.plugins.dot import DOT

from ..helpers.poisoned_models import Poisoned, first_coordinate

# --- the shared checks ------------------------------------------------------------------------------------


def test_seed_number_choice_and_value_range_checks():
    assert v.check_seed(3) == 3
    for bad in ("3", 1.5, None, True):
        with pytest.raises(InputTypeError, match="seed must be an integer"):
            v.check_seed(bad)
    assert v.check_number(95, "percentile", low=0, high=100) == 95.0
    for bad in (-1, 101, math.nan, math.inf):
        with pytest.raises(InputError, match=r"percentile must be a finite number in \[0, 100\]"):
            v.check_number(bad, "percentile", low=0, high=100)
    with pytest.raises(InputTypeError, match="gamma must be a number"):
        v.check_number(True, "gamma")
    with pytest.raises(InputError, match=r"norm must be one of \['l2', 'linf'\], got 'l1'"):
        v.check_choice("l1", "norm", ["l2", "linf"])
    assert v.check_value_range((0, 255), "r") == (0.0, 255.0)
    for bad, message in (((1, 0), "low < high"), ("01", "pair"), ((0, math.inf), "finite"), ((0, 1, 2), "pair")):
        with pytest.raises(GanPostprocError, match=message):
            v.check_value_range(bad, "r")


def test_device_check_refuses_unknown_and_absent_devices():
    assert v.check_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="'gpu0' is not a device name"):
        v.check_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no usable CUDA device; use 'cpu'"):
            v.check_device("cuda")
        with pytest.raises(InputError, match="no usable CUDA device"):
            toy2d_adapter("25gaussians").to("cuda")


def test_options_are_checked_against_the_signature_with_every_option_listed():
    def method(*, eps: float, steps: int = 7) -> None:
        """A stand-in method."""

    v.check_options(method, {"eps": 1.0}, "m")
    with pytest.raises(InputError, match=r"m: missing required option eps; unknown option epsilon\. It takes: eps \(required\), steps=7"):
        v.check_options(method, {"epsilon": 1.0}, "m")
    with pytest.raises(InputError, match=r"cannot create refiner 'bigroc': missing required option eps\. It takes: .*eps \(required\).*steps=7"):
        get_registry().create("refiner", "bigroc")
    with pytest.raises(InputError, match=r"cannot create sampler 'ensemble': missing required option generators"):
        get_registry().create("sampler", "ensemble")


def test_image_batch_and_model_output_checks():
    images = torch.zeros(2, 1, 4, 4)
    assert v.check_images(images, "x", (-1, 1)) is images
    with pytest.raises(InputError, match="batch dimension first"):
        v.check_images(torch.zeros(4), "x", None)
    with pytest.raises(InputError, match=r"x holds samples of shape \[3\], but the generator has samples of shape \[2\]"):
        v.check_sample_shape(torch.zeros(5, 3), "x", (2,), "the generator")
    with pytest.raises(InputError, match=r"the classifier returned NaN/inf for 1 of 2 samples \(first at row 1\)"):
        v.check_model_output(torch.tensor([[0.0, 1.0], [math.nan, 0.0]]), "the classifier")
    with pytest.raises(InputTypeError, match="refines a gan_postproc.SampleBatch, got Tensor"):
        check_batch(images, "m")
    batch = SampleBatch(images=images, labels=torch.tensor([0, 3]))
    with pytest.raises(InputError, match=r"batch.labels must lie in \[0, 2\]"):
        check_batch(batch, "m", num_classes=3)
    with pytest.raises(InputError, match=r"value range \(-1.0, 1.0\), but the generator's samples are in \(0, 1\)"):
        check_batch(batch, "m", value_range=(0, 1))
    with pytest.raises(InputError, match="m needs the batch's latents"):
        check_batch(batch, "m", need_latents=True)
    with pytest.raises(InputError, match=r"the network failed on its input \(shape \(2, 3\).*mat1 and mat2"):
        v.call_network("the network", nn.Linear(2, 1), torch.zeros(2, 3))


def test_core_types_refuse_malformed_fields():
    with pytest.raises(InputTypeError, match="SampleBatch.images must be a tensor with one row per sample"):
        SampleBatch(images=[[0.0]])
    with pytest.raises(InputTypeError, match="got a 0-d tensor"):
        SampleBatch(images=torch.tensor(1.0))
    with pytest.raises(InputError, match="SampleBatch.value_range must be a finite"):
        SampleBatch(images=torch.zeros(2, 3), value_range=(1, -1))
    with pytest.raises(InputError, match=r"row indices must lie in \[0, 1\]"):
        SampleBatch(images=torch.zeros(2, 3)).select(torch.tensor([2]))
    with pytest.raises(InputError, match="SampleRequest.indices must be a 1-D integer tensor"):
        SampleRequest(indices=torch.tensor([0.5]), seed=0)
    with pytest.raises(InputError, match=r"SampleRequest.labels must hold one row per index \(2\)"):
        SampleRequest(indices=torch.arange(2), seed=0, labels=torch.tensor([1]))
    with pytest.raises(InputError, match="latent shape must be a positive int"):
        LatentPrior(shape=(2.5,))
    with pytest.raises(InputError, match="uniform prior: high must be a finite number"):
        LatentPrior(shape=(2,), kind="uniform", high=math.inf)
    assert LatentPrior(shape=2, kind="truncated_normal", low=0.0, high=math.inf).shape == (2,)
    with pytest.raises(InputError, match="std finite and > 0"):
        Classifier(nn.Linear(2, 3), 3, mean=[0.5], std=[0.0])
    with pytest.raises(InputError, match="input_range must be a finite"):
        Discriminator(nn.Linear(2, 1), "logit", input_range=(1, 0))
    with pytest.raises(InputError, match="output_range must be a"):
        TorchAdapter(nn.Linear(2, 2), latent_shape=2, output_range="0-1")


def test_generator_output_problems_are_named():
    tuple_out = TorchAdapter(nn.LSTM(2, 2), latent_shape=2, output_range=None)
    with pytest.raises(InputError, match="returned tuple, not a tensor of samples; .* pass a call= function"):
        tuple_out.generate(torch.zeros(3, 2))
    wrong_size = TorchAdapter(nn.Linear(2, 2), latent_shape=3)
    with pytest.raises(InputError, match=r"the generator of TorchAdapter failed on its input \(shape \(3, 3\)"):
        wrong_size.generate(torch.zeros(3, 3))
    nan_out = TorchAdapter(Poisoned(nn.Identity(), 0.0), latent_shape=2, output_range=None)
    with pytest.raises(InputError, match="produced NaN/inf for 1 of 2 latents"):
        nan_out.generate_finite(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    too_wide = TorchAdapter(nn.Linear(2, 2), latent_shape=2)  # no tanh: leaves the declared (-1, 1)
    with torch.no_grad():
        too_wide.generator.weight.fill_(5.0)
    with pytest.raises(PluginError, match=r"outside their value range \[-1, 1\].*output_range="):
        Chain(too_wide).sample(8)


# --- one guard for every iterative method ----------------------------------------------------------------


def test_guard_freezes_nonfinite_rows_and_reports_them():
    guard = FiniteGuard("m", 4)
    previous = torch.zeros(2, 3)
    proposed = torch.tensor([[1.0, 1.0, 1.0], [math.nan, 1.0, 1.0]])
    out = guard.keep_finite(previous, proposed, rows=torch.tensor([1, 3]))
    assert torch.equal(out, torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    assert guard.restored.tolist() == [False, False, False, True]
    again = guard.keep_finite(torch.ones(4, 3), torch.full((4, 3), 2.0))  # a frozen row stays frozen
    assert again[:, 0].tolist() == [2.0, 2.0, 2.0, 1.0]
    with pytest.warns(NonFiniteStepWarning, match=r"m: a step produced NaN/inf for 1 of 4 samples \(rows 3 of the batch\)"):
        batch = guard.report(SampleBatch(images=torch.zeros(4, 3)))
    assert batch.provenance[NONFINITE_KEY].tolist() == [0, 0, 0, 1]


@pytest.fixture(scope="module")
def toy() -> tuple[TorchAdapter, SampleBatch, float]:
    """The DOT 25-Gaussians generator with its critic poisoned for points whose x exceeds the median x."""
    adapter = toy2d_adapter("25gaussians")
    batch = Chain(adapter).sample(32, seed=0)
    threshold = float(batch.images[:, 0].median())
    poisoned = Discriminator(Poisoned(load_toy2d_critic("25gaussians"), threshold), "critic", input_range=None)
    adapter.discriminator = poisoned
    return adapter, batch, threshold


@pytest.mark.parametrize(
    "refiner",
    [
        DOT(steps=5, k_eff=1.0),
        DOT(steps=5, k_eff=1.0, space="latent"),
        CollaborativeRefiner(steps=5, step_size=0.01, selection="best"),
        CollaborativeRefiner(steps=5, step_size=0.01, layer="l1", threshold=1e6),
    ],
    ids=["dot", "dot_latent", "collaborative_best", "collaborative_l1_threshold"],
)
def test_refiners_restore_the_samples_a_step_made_nan(toy, refiner):
    adapter, batch, threshold = toy
    poisoned_at_start = batch.images[:, 0] > threshold
    with pytest.warns(NonFiniteStepWarning, match=f"{refiner.name}: a step produced NaN/inf"):
        refined = Chain(adapter, refiners=[refiner]).refine(batch)
    assert len(refined) == len(batch) and torch.equal(refined.indices, batch.indices)
    assert bool(torch.isfinite(refined.images).all())
    restored = refined.provenance[NONFINITE_KEY].bool()
    assert bool(restored[poisoned_at_start].all())  # their very first step failed ...
    torch.testing.assert_close(refined.images[poisoned_at_start], batch.images[poisoned_at_start])  # ... so they kept it
    assert not torch.equal(refined.images[~restored], batch.images[~restored])  # the others were refined


def test_ddls_keeps_the_last_finite_latent_of_a_sample_whose_step_went_nan(toy):
    adapter, _, threshold = toy
    plain = Chain(adapter).sample(32, seed=3)
    with pytest.warns(NonFiniteStepWarning, match="ddls: a step produced NaN/inf"):
        out = Chain(adapter, sampler=DDLS(steps=4, step_size=1e-3)).sample(32, seed=3)
    restored = out.provenance[NONFINITE_KEY].bool()
    at_start = first_coordinate(plain.images) > threshold
    assert bool(restored[at_start].all()) and bool(torch.isfinite(out.latents).all())
    torch.testing.assert_close(out.latents[at_start], plain.latents[at_start])
    assert not torch.equal(out.latents[~restored], plain.latents[~restored])


def test_bigroc_restores_images_whose_pgd_step_went_nan():
    adapter = digits_adapter(classifier=None)
    batch = Chain(adapter).sample(16, seed=0)
    labels = torch.arange(16) % 10
    threshold = float(first_coordinate(batch.images).median())
    classifier = Classifier(Poisoned(load_digits_classifier(robust=True), threshold), 10)
    refiner = BIGRoC(classifier=classifier, eps=0.5, steps=3, labels="given")
    with pytest.warns(NonFiniteStepWarning, match="bigroc: a step produced NaN/inf"):
        refined = Chain(None, refiners=[refiner]).refine(batch.replace(labels=labels))
    at_start = first_coordinate(batch.images) > threshold
    restored = refined.provenance[NONFINITE_KEY].bool()
    assert bool(restored[at_start].all()) and bool(torch.isfinite(refined.images).all())
    torch.testing.assert_close(refined.images[at_start], batch.images[at_start])
    assert not torch.equal(refined.images[~restored], batch.images[~restored])
    with pytest.raises(InputError, match="BIGRoC's classifier returned NaN/inf"):  # pseudo labels need finite logits
        Chain(None, refiners=[BIGRoC(classifier=classifier, eps=0.5, debias=False)]).refine(batch)


def test_methods_without_a_nan_step_report_zero_restored():
    adapter = toy2d_adapter("25gaussians")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteStepWarning)
        batch = Chain(adapter, refiners=[DOT(steps=2, k_eff=1.0)]).sample(8, seed=0)
    assert batch.provenance[NONFINITE_KEY].tolist() == [0] * 8


# --- minibatch-std discriminators with small batches ----------------------------------------------------


def test_small_batches_are_padded_for_a_discriminator_that_needs_a_group():
    """A critic that needs 4 samples per call: collaborative (whose set of moving samples shrinks) and a
    last partial batch of 1 still run, with the scores an unconstrained critic gives."""
    results = []
    proposals = Chain(toy2d_adapter("25gaussians")).sample(7, seed=0)
    with torch.no_grad():
        scores = load_toy2d_critic("25gaussians")(proposals.images).flatten().sort().values
    # Some samples stop at once. The threshold lies between two scores: at the median itself, that sample's
    # score ties with it up to the rounding of a batch-size-dependent matmul (it moved in batches of 3, not of 4).
    threshold = float(scores[2:4].mean())
    for group in (1, 4):
        adapter = toy2d_adapter("25gaussians")
        adapter.discriminator = Discriminator(load_toy2d_critic("25gaussians"), "critic", input_range=None, min_batch_size=group)
        refiner = CollaborativeRefiner(steps=6, step_size=0.01, layer="l1", threshold=threshold)
        results.append(Chain(adapter, refiners=[refiner], batch_size=3).sample(7, seed=0))
    torch.testing.assert_close(results[1].images, results[0].images)
    assert results[1].provenance["refinement_steps"].unique().numel() > 1  # samples stopped at different steps
    critic = Discriminator(load_toy2d_critic("25gaussians"), "critic", input_range=None, min_batch_size=4)
    with pytest.raises(InputError, match="needs batches of at least 4 samples"):  # a direct call is still refused
        critic(torch.zeros(1, 2))


# --- refiner inputs are checked before any work -----------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b.replace(images=b.images.masked_fill(torch.arange(4)[:, None, None, None] == 2, math.nan)), "batch.images must be finite"),
        (lambda b: b.replace(images=b.images * 3), r"batch.images must lie in \[-1, 1\]"),
        (lambda b: b.replace(images=b.images.flatten(1)), "failed on its input"),
        (lambda b: b.replace(labels=torch.eye(10)[:4]), "looks one-hot"),
        (lambda b: b.replace(value_range=None), "value range None, but the generator's samples are in"),
        (lambda b: b.select(torch.zeros(4, dtype=torch.bool)), "batch.images is empty"),
    ],
    ids=["nan", "range", "rank", "onehot", "value_range", "empty"],
)
@pytest.mark.parametrize(
    "make",
    [
        lambda: BIGRoC(classifier=digits_classifier(), eps=0.5, steps=1, debias=False),
        lambda: CollaborativeRefiner(steps=1, selection="best"),
        lambda: DOT(steps=1, k_eff=1.0),
    ],
    ids=["bigroc", "collaborative", "dot"],
)
def test_bad_refiner_batches_are_refused(make, change, message):
    adapter = digits_adapter(classifier=None)
    batch = Chain(adapter).sample(4, seed=0)
    refiner = make()
    if refiner.name == "bigroc" and "generator's samples" in message:  # BIGRoC refines images of any range
        assert bool(torch.isfinite(Chain(adapter, refiners=[refiner]).refine(change(batch)).images).all())
        return
    with pytest.raises(GanPostprocError, match=message):
        Chain(adapter, refiners=[refiner]).refine(change(batch))


def test_collaborative_refuses_a_probability_threshold_outside_0_1():
    with pytest.raises(InputError, match=r"threshold=1.5 is compared with D\(x\) as a probability"):
        Chain(digits_adapter(classifier=None), refiners=[CollaborativeRefiner(threshold=1.5)]).sample(2)


# --- plugins cannot change the number of samples, the range, or hide where they failed -------------------


class DropsLast(Refiner):
    name = "drops_last"

    def refine(self, batch, adapter):
        return batch.select(slice(0, len(batch) - 1))


class Unbounded(Refiner):
    name = "unbounded"

    def refine(self, batch, adapter):
        return batch.replace(value_range=None)


class Overshoots(Refiner):
    name = "overshoots"

    def refine(self, batch, adapter):
        return batch.replace(images=batch.images * 1.5 + 0.5)


class Identity(Refiner):
    name = "identity"

    def refine(self, batch, adapter):
        return batch


class ReturnsTensor(Refiner):
    name = "returns_tensor"

    def refine(self, batch, adapter):
        return batch.images


@pytest.mark.parametrize(
    "refiner, message",
    [
        (DropsLast(), "returned 3 samples for 4 requested; a plugin must never change the number of samples"),
        (Unbounded(), "declared in value range None, but it was given"),
        (Overshoots(), r"outside their value range \[-1, 1\]"),
        (ReturnsTensor(), "returned Tensor; expected a SampleBatch"),
    ],
)
def test_misbehaving_refiners_are_named_even_on_standalone_images(refiner, message, bare_pm):
    images = torch.rand(4, 1, 2, 2) * 2 - 1
    with pytest.raises(PluginError, match=f"refiner '{refiner.name}' at batch 0 .*{message}"):
        Chain(None, refiners=[refiner], plugin_manager=bare_pm).refine(SampleBatch(images=images))


@pytest.mark.parametrize("hook", ["gan_postproc_before_sample", "gan_postproc_after_sample", "gan_postproc_before_refine", "gan_postproc_after_refine", "gan_postproc_filter_batch"])
def test_every_run_hook_that_raises_is_named_with_the_batch_index(hook, tiny_adapter, bare_pm):
    class Exploder:
        pass

    def raise_at_batch_1(self, batch_index):
        if batch_index == 1:
            raise KeyError("boom")

    raise_at_batch_1.__name__ = hook
    setattr(Exploder, hook, hookimpl(raise_at_batch_1))
    bare_pm.register_plugin(Exploder(), "exploder")
    chain = Chain(tiny_adapter, refiners=[Identity()], batch_size=2, plugin_manager=bare_pm)
    with pytest.raises(HookError, match=f"plugin 'exploder' raised in {hook} at batch 1: KeyError"):
        chain.sample(6)
