"""Resolving ``package.module:function`` specs: how the command line (and string options) name user code."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from .errors import InputError

__all__ = ["call_factory", "call_named_factory"]


def call_named_factory(spec: str, option: str, shipped: Mapping[str, Callable[[], Any]], returns: str) -> Any:
    """Call a factory of ``shipped`` by name, or the function ``package.module:function``, with no arguments.

    ``option`` names where the spec came from (``--model``) and ``returns`` what the factory must
    return, for the error messages.

    Raises:
        InputError: if the spec is neither a shipped name nor ``module:function``, the module
            does not import or has no such function.
    """
    if spec in shipped:
        return shipped[spec]()
    if ":" not in spec:
        raise InputError(f"{option} must be one of {sorted(shipped)} or 'package.module:function' returning {returns}, got {spec!r}")
    module_name, _, function_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InputError(f"{option} {spec!r}: cannot import {module_name!r} ({error})") from error
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise InputError(f"{option} {spec!r}: {module_name!r} has no function {function_name!r}")
    return factory()


def call_factory(spec: str, option: str, returns: str) -> Any:
    """Call the function named ``package.module:function`` (given as ``option``) with no arguments.

    ``returns`` says what it must return, for the error message.
    """
    return call_named_factory(spec, option, {}, returns)
