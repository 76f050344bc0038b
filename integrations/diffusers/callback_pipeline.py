"""``CallbackPipeline``: one callback for every diffusers pipeline.

Runs a :class:`~gan_postproc.integrations.diffusers.DiffusersCallback` on pipelines *without*
``callback_on_step_end`` (DDPM, DDIM, DiT, PNDM, ...) by wrapping the scheduler's ``step`` for the
duration of a call, and passes it natively where the pipeline has the argument.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from gan_postproc.errors import InputError, InputTypeError, PluginError

from .adapter import require_diffusers
from .callback import LATENTS

__all__ = ["CallbackPipeline", "bound_arguments", "call_signature", "innermost"]


def innermost(pipeline: Any) -> Any:
    """The diffusers pipeline inside gan-postproc wrappers (classes with ``wraps_pipeline``, which pass their
    arguments through to ``.pipeline``), or ``pipeline`` itself."""
    while getattr(type(pipeline), "wraps_pipeline", False):
        pipeline = pipeline.pipeline
    return pipeline


def call_signature(pipeline: Any) -> inspect.Signature:
    """The signature of ``pipeline(...)`` (of the wrapped pipeline, for a wrapper)."""
    return inspect.signature(innermost(pipeline).__call__)


def _has_native_callback(pipeline: Any) -> bool:
    return "callback_on_step_end" in call_signature(pipeline).parameters


def bound_arguments(pipeline: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    signature = call_signature(pipeline)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as error:
        raise InputError(f"bad arguments for {type(pipeline).__name__}: {error}") from error
    bound.apply_defaults()
    return dict(bound.arguments)


def _cfg_doubled_rows(arguments: Mapping[str, Any]) -> int | None:
    """Rows of the real batch when the scheduler steps a classifier-free-guidance-doubled batch (DiT), else None."""
    labels = arguments.get("class_labels")
    scale = arguments.get("guidance_scale")
    if labels is not None and scale is not None and scale > 1:
        return len(labels) if not isinstance(labels, torch.Tensor) else int(labels.numel())
    return None


@contextlib.contextmanager
def _scheduler_step_callback(pipeline: Any, callback: Callable[..., Any], real_rows: int | None) -> Iterator[None]:
    """Wrap ``pipeline.scheduler.step`` so that ``callback`` sees and may replace each step's ``prev_sample``."""
    scheduler = pipeline.scheduler
    if "step" in vars(scheduler):
        raise InputError("this pipeline's scheduler.step is already wrapped (a CallbackPipeline call in progress?)")
    original = scheduler.step
    calls = 0

    def step(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        output = original(*args, **kwargs)
        sample = output[0] if isinstance(output, tuple) else output.prev_sample
        timestep = kwargs["timestep"] if "timestep" in kwargs else args[1]
        doubled = real_rows is not None and sample.shape[0] == 2 * real_rows
        visible = sample[:real_rows] if doubled else sample
        result = callback(pipeline, calls, timestep, {LATENTS: visible})
        calls += 1
        if not isinstance(result, dict):
            raise PluginError(f"a step callback must return a dict (diffusers' contract), got {type(result).__name__}")
        new = result.pop(LATENTS, visible)
        if doubled:
            new = torch.cat([new, sample[real_rows:]])  # DiT keeps the first (conditional) half
        if isinstance(output, tuple):
            return (new, *output[1:])
        output.prev_sample = new
        return output

    scheduler.step = step
    try:
        yield
    finally:
        del scheduler.step


class CallbackPipeline:
    """A pipeline that runs a step callback whether or not it has ``callback_on_step_end``.

    Where the pipeline has the argument, the callback is passed natively (with
    ``callback_on_step_end_tensor_inputs`` set to its ``tensor_inputs``).
    Elsewhere (DDPM, DDIM, DiT, PNDM, ...) the scheduler's ``step`` is wrapped
    for the duration of each call: after every step the callback gets
    ``(pipeline, step_index, timestep, {"latents": prev_sample})`` and the
    loop continues from the ``"latents"`` it returns. For DiT with
    classifier-free guidance the scheduler steps both halves of the doubled
    batch; the callback sees the first (conditional) half, which is what DiT
    keeps. Calls are not thread-safe (the scheduler is shared state).

    Attributes of the pipeline are readable through the wrapper.

    Example::

        refined = CallbackPipeline(DDPMPipeline(unet=unet, scheduler=scheduler), DiffusersCallback([...]))
        images = refined(batch_size=4, num_inference_steps=50).images
    """

    #: Passes its arguments to the wrapped pipeline (see :func:`call_signature`).
    wraps_pipeline = True

    def __init__(self, pipeline: Any, callback: Callable[..., Any]) -> None:
        require_diffusers("CallbackPipeline")
        if not callable(callback) or not isinstance(getattr(callback, "tensor_inputs", None), (list, tuple)):
            raise InputTypeError(
                "callback must be callable as callback(pipeline, step_index, timestep, callback_kwargs) and declare "
                f"tensor_inputs (a list of names), got {type(callback).__name__}"
            )
        self.pipeline = pipeline
        self.callback = callback
        self.native = _has_native_callback(pipeline)

    def __getattr__(self, name: str) -> Any:
        if name in ("pipeline", "callback", "native"):
            raise AttributeError(name)
        return getattr(self.pipeline, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the pipeline with the callback attached; same arguments and result as the pipeline."""
        tensor_inputs = list(self.callback.tensor_inputs)
        if "callback_on_step_end" in kwargs:
            raise InputError(
                "this CallbackPipeline already attaches a callback; combine yours with it in "
                "diffusers.callbacks.MultiPipelineCallbacks([...]) and wrap that instead"
            )
        if self.native:
            kwargs.setdefault("callback_on_step_end_tensor_inputs", tensor_inputs)
            return self.pipeline(*args, callback_on_step_end=self.callback, **kwargs)
        unavailable = [name for name in tensor_inputs if name != LATENTS]
        if unavailable:
            raise InputError(
                f"{type(self.pipeline).__name__} has no callback_on_step_end, so only 'latents' can reach a callback "
                f"(through its scheduler); this callback asks for {unavailable}"
            )
        real_rows = _cfg_doubled_rows(bound_arguments(self.pipeline, args, kwargs))
        with _scheduler_step_callback(self.pipeline, self.callback, real_rows):
            return self.pipeline(*args, **kwargs)
