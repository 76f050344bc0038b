"""Reading and replacing a generator's activation at a submodule, with forward hooks.

Adapters whose generator cannot be run from the middle split it at a named
submodule this way: :func:`capture_output` runs the generator until that
submodule has produced its output and returns it; :func:`substitute_output`
runs the whole generator with that output replaced. Decoding by substitution
recomputes the layers before the split point, and it is exact as long as the
submodule's output is used only on the main path (no skip connection reads
the submodule's input past it) and the submodule runs once per forward pass
(a shared activation module does not qualify; substitution refuses it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from ..errors import InputError

__all__ = ["capture_output", "substitute_output", "module_device", "unwrap_parallel"]

T = TypeVar("T")


class _StopForward(Exception):
    """Raised by a capture hook to stop the forward pass once the activation is read."""


def capture_output(layer: nn.Module, run: Callable[[], object], *, name: str = "layer") -> Any:
    """The output of ``layer`` the first time it runs inside ``run()``; the rest of ``run`` is skipped.

    Raises:
        InputError: if ``layer`` never ran.
    """
    captured: list[Any] = []

    def capture(module: nn.Module, inputs: Any, output: Any) -> None:
        captured.append(output)
        raise _StopForward

    handle = layer.register_forward_hook(capture)
    try:
        with contextlib.suppress(_StopForward):  # the hook stops the forward pass once the layer has run
            run()
    finally:
        handle.remove()
    if not captured:
        raise InputError(f"{name} did not run in the generator's forward pass, so it cannot be a split point")
    return captured[0]


def substitute_output(layer: nn.Module, value: torch.Tensor, run: Callable[[], T], *, name: str = "layer") -> T:
    """``run()`` with the output of ``layer`` replaced by ``value``.

    ``value`` enters the forward pass as a clone, so in-place operations after
    the layer (``ReLU(inplace=True)``) never change the caller's tensor; the
    result stays differentiable with respect to ``value``.

    Raises:
        InputError: if ``value``'s shape differs from the layer's output, or
            the layer runs more than once per forward pass.
    """
    calls = 0

    def substitute(module: nn.Module, inputs: Any, output: Any) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise InputError(f"{name} runs more than once per forward pass (a shared module), so it cannot be a split point")
        if not isinstance(output, torch.Tensor) or output.shape != value.shape:
            got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise InputError(f"the activation for {name} must have shape {got}, got {tuple(value.shape)}")
        return value.clone()

    handle = layer.register_forward_hook(substitute)
    try:
        return run()
    finally:
        handle.remove()


def module_device(module: nn.Module) -> torch.device:
    """The device of the module's first parameter or buffer (CPU for a module without any)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def unwrap_parallel(module: T) -> T:
    """The network inside ``DataParallel`` / ``DistributedDataParallel`` (and wrappers like them), else ``module``.

    A wrapper of that kind has exactly one child, ``module``. Its own forward scatters the batch over
    replicas, on which forward hooks would see chunks, not the batch, so split points and hooks are
    read from and put on the network itself, which runs on its own device.
    """
    while isinstance(module, nn.Module) and isinstance(getattr(module, "module", None), nn.Module):
        children = list(module.named_children())
        if not (isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)) or children == [("module", module.module)]):
            break
        module = module.module  # type: ignore[assignment]
    return module
