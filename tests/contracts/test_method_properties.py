"""Property-based tests of every registered sampler and refiner on real models.

Every method in the registry (so a new plugin is covered as soon as it is
installed) is driven through a :class:`~gan_postproc.Chain` on the shipped
digits GANs (unconditional and conditional, with their discriminator and
classifier) and the DOT paper's 25-Gaussians generator and critic, with
random sample counts, batch sizes, start indices and seeds, random label
forms, random changes to the images a refiner gets (NaN/inf, values outside
the range, wrong rank, dtype, empty batches, label forms) and random NaN
injections into the models (:class:`~tests.helpers.poisoned_models.Poisoned`).

Each run must end in one of two ways:

* a valid result: exactly the requested samples, at the requested indices,
  with finite images inside the value range (and the requested labels);
* a :class:`~gan_postproc.errors.GanPostprocError` whose message names the
  bad input. A method that cannot run on a model at all (no classifier on
  the 2-D model, a uniform prior for truncation) fails the same way for
  every input; that baseline error is measured once per method and model.

Every method also gives the same samples for the same seed on the CPU,
refuses a NaN/inf value of any of its float options naming the option, and
(for the latent-reweighting samplers, found by their ``importance`` option)
refuses an importance network of another latent size or with NaN weights
before any work.

Methods run with small settings (:data:`FAST`), few examples each, and no
deadline, so the file stays fast on a loaded 2-core machine.
"""

from __future__ import annotations

import functools
import inspect
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gan_postproc import Chain, Classifier, Discriminator, SampleBatch, TorchAdapter, get_registry
from gan_postproc.errors import GanPostprocError, InputError
from gan_postproc.models.digits import digits_adapter, digits_dataset
from gan_postproc.models.toy2d import sample_toy2d_real, toy2d_adapter
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.plugins.latent_reweighting.importance_network import ImportanceNetwork, load_shipped_importance_network

from ..helpers.poisoned_models import Poisoned, first_coordinate

MODELS = ("digits", "digits_conditional", "toy2d")
PROPERTY_SETTINGS = settings(
    max_examples=4, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


@dataclass
class Models:
    """A model to run methods on, and what the methods' options may need."""

    adapter: Adapter
    other: Adapter  # a second generator of the same kind and classes (for ensembles)
    real: torch.Tensor
    real_labels: torch.Tensor | None
    importance: ImportanceNetwork  # the shipped latent importance network of the (unconditional) model


@functools.cache
def models(name: str) -> Models:
    if name == "toy2d":
        return Models(
            toy2d_adapter("25gaussians"), toy2d_adapter("swissroll"), sample_toy2d_real("25gaussians", 256), None, load_shipped_importance_network("25gaussians")
        )
    conditional = name == "digits_conditional"
    images, labels = digits_dataset("train")
    adapter = digits_adapter(conditional=conditional, classifier="normal")
    return Models(
        adapter,
        digits_adapter(conditional=conditional, classifier="normal"),
        images[:256],
        labels[:256] if conditional else None,
        load_shipped_importance_network("digits"),
    )


def _critic_options(m: Models) -> dict[str, Any]:
    """Density-ratio samplers run on the 2-D critic only when allowed to (it is no density ratio)."""
    return {"allow_uncalibrated": True} if m.adapter.discriminator.output.value == "critic" else {}


#: Small settings per registered method, so a run takes milliseconds. A method missing here must run
#: with no options at all (``test_every_method_has_fast_options``).
FAST: dict[str, Callable[[Models], dict[str, Any]]] = {
    "prior": lambda m: {},
    "truncation": lambda m: {},
    "ddls": lambda m: {"steps": 2, "step_size": 1e-3},
    "drs": lambda m: {"burn_in": 64, **_critic_options(m)},
    "sir": lambda m: {"pool_size": 2, **_critic_options(m)},
    "mh": lambda m: {"real_data": m.real, "real_labels": m.real_labels, "chain_length": 3, "calibration_size": 128, **_critic_options(m)},
    "classifier_filter": lambda m: {"threshold": 0.2},
    "class_balance": lambda m: {"calibration_samples": 32},
    "ensemble": lambda m: {"generators": [m.adapter, m.other]},
    "bigroc": lambda m: {"eps": 0.5, "steps": 2, "debias": False},
    "collaborative": lambda m: {"steps": 2, "selection": "best"},
    "dot": lambda m: {"steps": 2, "k_eff": 1.0},
    "latent_rs": lambda m: {"importance": m.importance},
    "latent_ga": lambda m: {"importance": m.importance, "steps": 2},
    "latent_rs_ga": lambda m: {"importance": m.importance, "steps": 2},
}


def create(kind: str, name: str, m: Models) -> Any:
    options = FAST[name](m) if name in FAST else {}
    return get_registry().create(kind, name, **options)


def names(kind: str) -> list[str]:
    return get_registry().names(kind)


def test_every_method_has_fast_options():
    """A newly registered method is covered with its defaults, or needs an entry in FAST."""
    for kind in ("sampler", "refiner"):
        for name in names(kind):
            if name not in FAST:
                try:
                    get_registry().create(kind, name)
                except GanPostprocError as error:
                    pytest.fail(f"{kind} {name!r} cannot be created without options ({error}); add small settings to FAST")


# --- outcomes ------------------------------------------------------------------------------------------


@functools.cache
def sampler_chain(name: str, model: str) -> Chain:
    return Chain(models(model).adapter, sampler=create("sampler", name, models(model)))


@functools.cache
def refiner_chain(name: str, model: str) -> Chain:
    return Chain(models(model).adapter, refiners=[create("refiner", name, models(model))])


@functools.cache
def baseline(kind: str, name: str, model: str) -> str | None:
    """The error a method gives on a valid input with this model (``None``: it runs). Never a raw exception."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "sampler":
                sampler_chain(name, model).sample(2, seed=0)
            else:
                refiner_chain(name, model).refine(good_batch(model, 2))
    except GanPostprocError as error:
        return f"{type(error).__name__}: {error}"
    return None


@functools.cache
def _proposals(model: str) -> SampleBatch:
    return Chain(models(model).adapter).sample(6, seed=0)


def good_batch(model: str, rows: int) -> SampleBatch:
    return _proposals(model).select(slice(0, rows))


def check_valid(batch: SampleBatch, indices: torch.Tensor, adapter: Adapter) -> None:
    assert len(batch) == len(indices) and torch.equal(batch.indices.cpu(), indices.cpu())
    assert batch.images is not None and bool(torch.isfinite(batch.images).all())
    if adapter.value_range is not None:
        low, high = adapter.value_range
        assert float(batch.images.min()) >= low - 1e-4 and float(batch.images.max()) <= high + 1e-4


def run(kind: str, name: str, model: str, action: Callable[[], SampleBatch], expected_error: str | None) -> SampleBatch | None:
    """Run ``action``; return its batch, or check it raised a library error whose message matches ``expected_error``.

    ``expected_error`` is a regex for an invalid input, ``None`` for a valid one (which must then run,
    unless the method cannot run on this model at all).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = action()
    except GanPostprocError as error:
        message = str(error)
        if f"{type(error).__name__}: {message}" == baseline(kind, name, model):
            return None  # the method cannot run on this model at all, and says so first
        if expected_error is not None:
            assert re.search(expected_error, message), f"{kind} {name} on {model}: error does not name the bad input: {message}"
        else:
            assert baseline(kind, name, model) is not None, f"{kind} {name} on {model} refused a valid input: {message}"
        return None
    assert expected_error is None, f"{kind} {name} on {model} accepted an input that must be refused ({expected_error})"
    assert baseline(kind, name, model) is None, f"{kind} {name} on {model} ran although it fails on valid input"
    return result


# --- samplers: counts, indices, seeds, label forms -----------------------------------------------------

LABEL_FORMS = ("none", "index", "int", "onehot", "out_of_range", "float", "wrong_length", "matrix")


def make_labels(form: str, n: int, k: int, value: int) -> tuple[Any, str | None]:
    """Labels of ``form`` for ``n`` samples of ``k`` classes, and the error expected for a conditional generator."""
    if form == "none":
        return None, None
    if form == "index":
        return torch.arange(value, value + n) % k, None
    if form == "int":
        return value % k, None
    if form == "onehot":
        return torch.nn.functional.one_hot(torch.arange(n) % k, k).float(), "one-hot"
    if form == "out_of_range":
        return torch.full((n,), k + value), rf"must lie in \[0, {k - 1}\]"
    if form == "float":
        return (torch.arange(n) % k).float(), "integer tensor"
    if form == "wrong_length":
        return torch.zeros(n + 1, dtype=torch.int64), "one label per sample"
    return torch.zeros(n, 2, dtype=torch.int64), "dimension|one-hot"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", names("sampler"))
@PROPERTY_SETTINGS
@given(
    n=st.integers(1, 5),
    batch_size=st.integers(1, 4),
    start=st.integers(0, 1000),
    seed=st.integers(0, 2**31),
    label_form=st.sampled_from(LABEL_FORMS),
    value=st.integers(0, 30),
)
def test_samplers_return_exact_valid_samples_or_name_the_bad_labels(name, model, n, batch_size, start, seed, label_form, value):
    adapter = models(model).adapter
    chain = sampler_chain(name, model)
    chain.batch_size = batch_size
    if adapter.num_classes is None:
        labels, expected = make_labels(label_form, n, 10, value)
        expected = None if labels is None else "unconditional|labels"
    else:
        labels, expected = make_labels(label_form, n, adapter.num_classes, value)
    batch = run("sampler", name, model, lambda: chain.sample(n, seed=seed, labels=labels, start=start), expected)
    if batch is not None:
        check_valid(batch, torch.arange(start, start + n), adapter)
        if labels is not None and name != "ensemble":
            wanted = labels if isinstance(labels, torch.Tensor) else torch.full((n,), labels)
            assert torch.equal(batch.labels.cpu(), wanted)


# --- refiners: what they are given -----------------------------------------------------------------------


def _set(batch: SampleBatch, row: int, value: float) -> SampleBatch:
    images = batch.images.clone()
    images[row].view(-1)[0] = value
    return batch.replace(images=images)


#: change -> (function of (batch, row, factor), error for image data, error for unbounded data (None: valid)).
CHANGES: dict[str, tuple[Callable[[SampleBatch, int, float], SampleBatch], str | None, str | None]] = {
    "none": (lambda b, row, f: b, None, None),
    "nan": (lambda b, row, f: _set(b, row, float("nan")), "finite", "finite"),
    "inf": (lambda b, row, f: _set(b, row, -float("inf")), "finite", "finite"),
    "out_of_range": (lambda b, row, f: b.replace(images=b.images * f), r"lie in \[-1, 1\]", None),
    "range_label": (lambda b, row, f: b.replace(value_range=(0.0, 1.0)), r"lie in \[0, 1\]", r"lie in \[0, 1\]|value range"),
    "extra_dim": (lambda b, row, f: b.replace(images=b.images.unsqueeze(1)), "failed on its input|shape", "failed on its input|shape"),
    "integer": (lambda b, row, f: b.replace(images=b.images.round().long()), "floating-point", "floating-point"),
    "empty": (lambda b, row, f: b.select(torch.zeros(len(b), dtype=torch.bool)), "empty", "empty"),
    "onehot_labels": (lambda b, row, f: b.replace(labels=torch.eye(10)[: len(b)]), "one-hot", "one-hot"),
    "negative_labels": (lambda b, row, f: b.replace(labels=-torch.ones(len(b), dtype=torch.int64)), r"labels must|lie in", r"labels must|lie in"),
    "float_labels": (lambda b, row, f: b.replace(labels=torch.zeros(len(b))), "integer tensor", "integer tensor"),
}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", names("refiner"))
@PROPERTY_SETTINGS
@given(
    change=st.sampled_from(sorted(CHANGES)),
    rows=st.integers(1, 6),
    row=st.integers(0, 5),
    factor=st.floats(1.5, 50.0),
)
def test_refiners_keep_rows_valid_or_name_the_bad_input(name, model, change, rows, row, factor):
    adapter = models(model).adapter
    batch = good_batch(model, rows)
    apply, image_error, vector_error = CHANGES[change]
    changed = apply(batch, row % rows, factor)
    expected = image_error if adapter.value_range is not None else vector_error
    refined = run("refiner", name, model, lambda: refiner_chain(name, model).refine(changed), expected)
    if refined is not None:
        check_valid(refined, changed.indices, adapter)


# --- NaN injected into the models ---------------------------------------------------------------------


def poisoned(model: str, part: str, quantile: float) -> Models:
    """The model with one network (generator, discriminator or classifier) NaN for part of its inputs.

    The threshold is the ``quantile`` of the first coordinate of that network's typical inputs, so the
    part of the samples that turn NaN varies with ``quantile``.
    """
    m = models(model)
    source = m.adapter
    typical = source.prior.sample(0, torch.arange(64)) if part == "generator" else _proposals(model).images
    threshold = float(torch.quantile(first_coordinate(typical), quantile))
    generator, discriminator, classifier = source.generator, source.discriminator, source.classifier
    if part == "generator":
        generator = Poisoned(generator, threshold)
    elif part == "discriminator":
        discriminator = Discriminator(
            Poisoned(discriminator.module, threshold), discriminator.output, input_range=discriminator.input_range, conditional=discriminator.conditional
        )
    else:
        classifier = Classifier(Poisoned(classifier.module, threshold), classifier.num_classes, input_range=classifier.input_range)
    adapter = TorchAdapter(
        generator,
        prior=source.prior,
        num_classes=source.num_classes,
        output_range=source.native_range,
        discriminator=discriminator,
        classifier=classifier,
    )
    return Models(adapter, m.other, m.real, m.real_labels, m.importance)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("kind, name", [("sampler", n) for n in names("sampler")] + [("refiner", n) for n in names("refiner")])
@settings(max_examples=3, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(part=st.sampled_from(["generator", "discriminator", "classifier"]), quantile=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_nan_from_a_model_is_restored_or_refused_with_a_clear_error(kind, name, model, part, quantile, seed):
    if part == "classifier" and models(model).adapter.classifier is None:
        part = "discriminator"
    m = poisoned(model, part, quantile)
    method = create(kind, name, m)
    chain = Chain(m.adapter, sampler=method) if kind == "sampler" else Chain(m.adapter, refiners=[method])
    action = (lambda: chain.sample(4, seed=seed)) if kind == "sampler" else (lambda: chain.refine(good_batch(model, 4)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batch = action()
    except GanPostprocError as error:
        if baseline(kind, name, model) is None:  # the method runs on this model, so the NaN must be the reason
            assert re.search("NaN|nan|finite", str(error)), f"{kind} {name} on {model} with a {part} NaN for some inputs: {error}"
        return
    check_valid(batch, torch.arange(4) if kind == "sampler" else good_batch(model, 4).indices, m.adapter)


# --- options: NaN/inf numbers and misfit importance networks -----------------------------------------


def _float_options(kind: str, name: str) -> list[str]:
    signature = inspect.signature(get_registry().get(kind, name))
    return [
        option
        for option, parameter in signature.parameters.items()
        if isinstance(parameter.default, float) and not isinstance(parameter.default, bool)
    ]


@pytest.mark.parametrize("kind, name", [("sampler", n) for n in names("sampler")] + [("refiner", n) for n in names("refiner")])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_number_option_is_refused_naming_the_option(kind, name, value):
    m = models("toy2d")
    for option in _float_options(kind, name):
        with pytest.raises(GanPostprocError, match=re.escape(option)):
            get_registry().create(kind, name, **{**(FAST[name](m) if name in FAST else {}), option: value})


def _takes_importance(name: str) -> bool:
    return "importance" in inspect.signature(get_registry().get("sampler", name)).parameters


@pytest.mark.parametrize("name", [n for n in names("sampler") if _takes_importance(n)])
def test_an_importance_network_that_does_not_fit_is_refused_before_any_work(name):
    digits = models("digits").adapter
    foreign = models("toy2d").importance  # 2 inputs, the digits latents have more
    with pytest.raises(InputError, match=r"takes 2 inputs per sample.*train_importance_network"):
        Chain(digits, sampler=create("sampler", name, Models(digits, digits, models("digits").real, None, foreign))).sample(2)
    broken = ImportanceNetwork(**models("digits").importance.config())
    broken.load_state_dict(models("digits").importance.state_dict())
    with torch.no_grad():
        broken.head.bias.fill_(float("nan"))
    with pytest.raises(InputError, match=r"head.bias holds NaN/inf.*Retrain"):
        create("sampler", name, Models(digits, digits, models("digits").real, None, broken))


# --- determinism ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("kind, name", [("sampler", n) for n in names("sampler")] + [("refiner", n) for n in names("refiner")])
def test_the_same_seed_gives_the_same_samples_on_cpu(kind, name, model):
    if baseline(kind, name, model) is not None:
        pytest.skip(f"{kind} {name} cannot run on {model}: {baseline(kind, name, model)}")
    m = models(model)
    runs = []
    for _ in range(2):
        method = create(kind, name, m)  # a fresh method each time: no state carried between runs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "sampler":
                runs.append(Chain(m.adapter, sampler=method).sample(5, seed=11))
            else:
                runs.append(Chain(m.adapter, refiners=[method]).refine(good_batch(model, 5)))
    assert torch.equal(runs[0].images, runs[1].images), f"{kind} {name} on {model}"
    assert torch.equal(runs[0].indices, runs[1].indices)
    check_valid(runs[0], runs[0].indices, m.adapter)
