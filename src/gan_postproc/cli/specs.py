"""Turning command-line words into objects: models, methods and their options."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..errors import InputError
from ..factories import call_factory, call_named_factory
from ..pipeline.adapter import Adapter
from ..plugin_system.registry import get_registry

__all__ = [
    "SHIPPED_MODELS",
    "SHIPPED_REFERENCES",
    "SHIPPED_REAL_DATA",
    "call_factory",
    "load_adapter",
    "load_evaluator",
    "load_real_data",
    "parse_options",
    "refiner_options",
    "build_methods",
]


def _digits(conditional: bool) -> Adapter:
    from ..models.digits import digits_adapter

    return digits_adapter(conditional=conditional, classifier="normal")


def _toy2d(dataset: str) -> Adapter:
    from ..models.toy2d import toy2d_adapter

    return toy2d_adapter(dataset)


def _digits_evaluator() -> Any:
    from ..metrics import SampleEvaluator
    from ..models.digits import DIGITS_NUM_CLASSES, digits_dataset, digits_feature_extractor, load_digits_feature_net
    from ..pipeline.scoring import Classifier

    independent = Classifier(load_digits_feature_net(), DIGITS_NUM_CLASSES)
    return SampleEvaluator(digits_feature_extractor(), digits_dataset("test")[0], classifier=independent)


def _digits_train_images() -> Any:
    from ..models.digits import digits_dataset

    return digits_dataset("train")[0]


def _toy2d_real(dataset: str) -> Any:
    from ..models.toy2d import sample_toy2d_real

    return sample_toy2d_real(dataset, TOY2D_REAL_POINTS, seed=0)


#: Real points drawn for a shipped 2-D model's training data (a fresh sample of the DOT demo's distribution).
TOY2D_REAL_POINTS = 50_000

#: ``--model`` names of the models that ship with gan-postproc.
SHIPPED_MODELS: dict[str, Any] = {
    "digits": lambda: _digits(False),
    "digits-conditional": lambda: _digits(True),
    "toy2d-25gaussians": lambda: _toy2d("25gaussians"),
    "toy2d-swissroll": lambda: _toy2d("swissroll"),
}
#: ``--data`` names: the real training data of the shipped models, in chain convention
#: (digits: the train split only; the test split is kept for measuring).
SHIPPED_REAL_DATA: dict[str, Any] = {
    "digits": _digits_train_images,
    "toy2d-25gaussians": lambda: _toy2d_real("25gaussians"),
    "toy2d-swissroll": lambda: _toy2d_real("swissroll"),
}
#: ``--reference`` names: how samples of the shipped models are measured.
SHIPPED_REFERENCES: dict[str, Any] = {"digits": _digits_evaluator}


def load_adapter(spec: str) -> Adapter:
    """An adapter from a shipped model name (:data:`SHIPPED_MODELS`) or ``package.module:function``.

    The function builds the user's generator (and its discriminator or
    classifier) and returns a :class:`~gan_postproc.Adapter`.
    """
    adapter = call_named_factory(spec, "--model", SHIPPED_MODELS, "an Adapter")
    if not isinstance(adapter, Adapter):
        raise InputError(f"--model {spec!r} returned {type(adapter).__name__}; it must return a gan_postproc Adapter")
    return adapter


def load_real_data(spec: str, option: str = "--data") -> Any:
    """Real samples from a shipped name (:data:`SHIPPED_REAL_DATA`) or ``package.module:function``.

    The function returns a tensor ``[N, ...]`` in chain convention or an
    iterable of such batches (e.g. a ``DataLoader``); ``option`` names the
    command-line option in error messages.
    """
    return call_named_factory(spec, option, SHIPPED_REAL_DATA, "real samples (a tensor or an iterable of batches)")


def load_evaluator(spec: str) -> Any:
    """A :class:`~gan_postproc.metrics.SampleEvaluator` from a shipped reference name or
    ``package.module:function`` (which builds it with the user's features and real data)."""
    from ..metrics import SampleEvaluator

    evaluator = call_named_factory(spec, "--reference", SHIPPED_REFERENCES, "a SampleEvaluator")
    if not isinstance(evaluator, SampleEvaluator):
        raise InputError(f"--reference {spec!r} returned {type(evaluator).__name__}; it must return a gan_postproc.metrics.SampleEvaluator")
    return evaluator


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_options(pairs: Sequence[str], what: str) -> dict[str, Any]:
    """``["eps=0.5", "norm=l2"]`` -> ``{"eps": 0.5, "norm": "l2"}`` (values parsed as JSON when they are JSON)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"{what} options must look like key=value, got {pair!r}")
        options[key.replace("-", "_")] = _parse_value(value)
    return options


def refiner_options(pairs: Sequence[str], refiners: Sequence[str], option: str = "--refiner-option") -> dict[str, dict[str, Any]]:
    """``["bigroc.eps=0.5", "bigroc.norm=l2"]`` -> ``{"bigroc": {"eps": 0.5, "norm": "l2"}}``, for the named refiners.

    Every refiner of ``refiners`` gets an entry (empty when no option names it).

    Raises:
        InputError: for a pair that is not ``NAME.key=value`` with NAME one of ``refiners``.
    """
    per_refiner: dict[str, list[str]] = {name: [] for name in refiners}
    for pair in pairs:
        name, sep, rest = pair.partition(".")
        if not sep or name not in per_refiner:
            raise InputError(f"{option} must look like NAME.key=value with NAME one of {list(refiners)}, got {pair!r}")
        per_refiner[name].append(rest)
    return {name: parse_options(rest, f"{option} {name}") for name, rest in per_refiner.items()}


def build_methods(sampler: str | None, sampler_options: Sequence[str], refiners: Sequence[str], refiner_option_pairs: Sequence[str]) -> tuple[Any, list[Any]]:
    """Instantiate the named sampler and refiners from the registry.

    Refiner options are ``NAME.key=value`` and go to the refiner called NAME.
    """
    registry = get_registry()
    sampler_obj = registry.create("sampler", sampler, **parse_options(sampler_options, "--sampler-option")) if sampler else None
    options = refiner_options(refiner_option_pairs, refiners)
    refiner_objs = [registry.create("refiner", name, **options[name]) for name in refiners]
    return sampler_obj, refiner_objs
