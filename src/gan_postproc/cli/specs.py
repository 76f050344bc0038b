"""Turning command-line words into objects: models, methods and their options."""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from typing import Any

from ..adapter import Adapter
from ..errors import InputError
from ..registry import get_registry

__all__ = ["load_adapter", "parse_options", "build_methods"]


def load_adapter(spec: str) -> Adapter:
    """An adapter from ``package.module:function`` (called with no arguments).

    The function builds the user's generator (and its discriminator or
    classifier) and returns a :class:`~gan_postproc.Adapter`.
    """
    if ":" not in spec:
        raise InputError(f"--model must be 'package.module:function' returning an Adapter, got {spec!r}")
    module_name, _, function_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InputError(f"--model {spec!r}: cannot import {module_name!r} ({error})") from error
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise InputError(f"--model {spec!r}: {module_name!r} has no function {function_name!r}")
    adapter = factory()
    if not isinstance(adapter, Adapter):
        raise InputError(f"--model {spec!r} returned {type(adapter).__name__}; it must return a gan_postproc Adapter")
    return adapter


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


def build_methods(sampler: str | None, sampler_options: Sequence[str], refiners: Sequence[str], refiner_options: Sequence[str]) -> tuple[Any, list[Any]]:
    """Instantiate the named sampler and refiners from the registry.

    Refiner options are ``NAME.key=value`` and go to the refiner called NAME.
    """
    registry = get_registry()
    sampler_obj = registry.create("sampler", sampler, **parse_options(sampler_options, "--sampler-option")) if sampler else None
    per_refiner: dict[str, list[str]] = {}
    for pair in refiner_options:
        name, sep, rest = pair.partition(".")
        if not sep or name not in refiners:
            raise InputError(f"--refiner-option must look like NAME.key=value with NAME one of {list(refiners)}, got {pair!r}")
        per_refiner.setdefault(name, []).append(rest)
    refiner_objs = [registry.create("refiner", name, **parse_options(per_refiner.get(name, []), f"--refiner-option {name}")) for name in refiners]
    return sampler_obj, refiner_objs
