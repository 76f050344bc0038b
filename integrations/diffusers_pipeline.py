"""Plugin ``diffusers``: gan-postproc inside and after Hugging Face diffusers pipelines.

Three ways in, one adapter underneath:

* :class:`DiffusersCallback`, passed as ``callback_on_step_end=`` to any
  pipeline that has that argument (Stable Diffusion, SDXL, SD3, Kandinsky,
  Flux, ...). At the steps you choose (by default the last) it runs a latent
  sampler and latent-space refiners on the pipeline's ``latents``, with
  gradients enabled inside the pipeline's ``torch.no_grad()`` loop, on a
  detached clone. It reads and writes ``latents`` only through the
  ``callback_kwargs`` the pipeline hands it (its declared ``tensor_inputs``),
  returns that dict, and composes with diffusers' ``MultiPipelineCallbacks``.
* :class:`CallbackPipeline` runs the same callback on pipelines *without*
  ``callback_on_step_end`` (DDPM, DDIM, DiT, PNDM, ...) by wrapping the
  scheduler's ``step`` for the duration of a call, and passes it natively
  where the pipeline has the argument: one callback serves every pipeline.
* :class:`DiffusersPostprocessor` applies image refiners (BIGRoC, ...) to what
  ``pipe(...)`` returned, for every ``output_type`` (``"pil"``, ``"np"``,
  ``"pt"``), returning the same type and structure. Wrapping a pipeline
  (:meth:`DiffusersPostprocessor.wrap`) passes DiT's ``class_labels`` to the
  refiners as ground-truth labels.

The adapter :class:`DiffusersAdapter` (registered as ``"diffusers"``) is the
pipeline's decoder seen as a generator: latents ``[N, C, h, w]`` -> images
``[N, 3, H, W]`` in [-1, 1] (the VAE / VQ decoder, or the identity for
pixel-space pipelines). Inside the callback it decodes the latents of the
current step; at the last step that is exactly what the pipeline outputs, at
earlier steps it is the decode of a still-noisy latent.

diffusers is imported only when one of these is used; without it they raise
an error naming ``pip install 'gan-postproc[diffusers]'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from gan_postproc import hookimpl
from gan_postproc.adapter import Adapter
from gan_postproc.batch import SampleBatch
from gan_postproc.chain import Chain
from gan_postproc.defaults import DEFAULTS
from gan_postproc.errors import InputError, InputTypeError, PluginError
from gan_postproc.gradients import gradients_on
from gan_postproc.optional import require
from gan_postproc.priors import LatentPrior
from gan_postproc.ranges import CHAIN_RANGE, rescale
from gan_postproc.refiner import Refiner
from gan_postproc.rejection import RejectionSampler
from gan_postproc.sampler import LatentSampler, PriorSampler, SampleRequest
from gan_postproc.scoring import Classifier, Discriminator, ScoreKind, as_classifier, as_discriminator
from gan_postproc.validation import ValueRange, check_device, check_in_range, check_tensor

__all__ = [
    "DiffusersAdapter",
    "DiffusersCallback",
    "CallbackPipeline",
    "DiffusersPostprocessor",
    "RefinedPipeline",
    "decode_latents",
]

#: ``(pipeline, latents) -> images [N, C, H, W]`` in [-1, 1], differentiable in ``latents``.
DecodeFn = Callable[[Any, torch.Tensor], torch.Tensor]

#: The tensor the callback reads and writes (its declared ``tensor_inputs``).
LATENTS = "latents"

#: Pipeline classes whose ``output_type="pt"`` images are in [-1, 1] rather than [0, 1]
#: (they rescale only for "np" and "pil"): the Kandinsky family.
_MINUS_ONE_TO_ONE_PT_PREFIX = "Kandinsky"


def _require_diffusers(feature: str) -> Any:
    return require("diffusers", feature)


# --- the decoder adapter --------------------------------------------------------------------


def decode_latents(pipeline: Any, latents: torch.Tensor) -> torch.Tensor:
    """The pipeline's own latents -> images step, in [-1, 1] before clamping, differentiable.

    Follows the pipelines' code: ``vae.decode(latents / scaling_factor
    (+ shift_factor))`` (Stable Diffusion, SD3, DiT), ``vqvae.decode(latents /
    scaling_factor)`` (latent diffusion), ``movq.decode(latents,
    force_not_quantize=True)`` (Kandinsky), the latents themselves for
    pixel-space pipelines (DDPM, DDIM). Pipelines with packed latents (Flux)
    need ``decode=`` instead.
    """
    for attribute in ("vae", "vqvae"):
        decoder = getattr(pipeline, attribute, None)
        if decoder is not None:
            scaling = getattr(decoder.config, "scaling_factor", None)
            if scaling is None:
                raise InputError(
                    f"the pipeline's {attribute} has no config.scaling_factor; pass decode=lambda pipe, z: ... "
                    "to DiffusersAdapter / DiffusersCallback"
                )
            z = latents / scaling
            shift = getattr(decoder.config, "shift_factor", None)
            if shift is not None:
                z = z + shift
            return decoder.decode(z.to(decoder.dtype)).sample.float()
    movq = getattr(pipeline, "movq", None)
    if movq is not None:
        return movq.decode(latents.to(movq.dtype), force_not_quantize=True).sample.float()
    if getattr(pipeline, "unet", None) is not None or getattr(pipeline, "transformer", None) is not None:
        return latents.float()  # pixel space: the latents are the images
    raise InputError(
        f"cannot tell how {type(pipeline).__name__} decodes its latents (no vae, vqvae or movq); "
        "pass decode=lambda pipe, latents: images_in_minus_one_to_one"
    )


def _infer_latent_shape(pipeline: Any) -> tuple[int, ...]:
    denoiser = getattr(pipeline, "unet", None) or getattr(pipeline, "transformer", None)
    config = getattr(denoiser, "config", None)
    channels = getattr(config, "in_channels", None)
    size = getattr(config, "sample_size", None)
    if channels is None or size is None:
        raise InputError(f"cannot infer the latent shape of {type(pipeline).__name__}; pass latent_shape=(C, h, w)")
    size = (size, size) if isinstance(size, int) else tuple(size)
    return (int(channels), *(int(s) for s in size))


class DiffusersAdapter(Adapter):
    """A diffusers pipeline's decoder as a generator: latents -> images in [-1, 1].

    Used by :class:`DiffusersCallback` on the latents of a denoising step, and
    on its own on final latents (``pipe(..., output_type="latent")``).
    Generation is differentiable in the latents. The prior is N(0, I) over the
    latent shape (the distribution the loop starts from; VAE latents are
    scaled to about unit variance by the VAE's scaling factor).

    Args:
        pipeline: a ``diffusers.DiffusionPipeline``.
        latent_shape: ``(C, h, w)`` of one latent; inferred from the
            denoiser's config (``in_channels``, ``sample_size``) when omitted.
        decode: ``(pipeline, latents) -> images`` in [-1, 1] for pipelines
            :func:`decode_latents` does not know.
        discriminator: a module or :class:`Discriminator` judging images in
            [-1, 1]; a module needs ``discriminator_output``.
        discriminator_output: ``"probability"``, ``"logit"`` or ``"critic"``.
        classifier: a :class:`Classifier` (or a module with ``num_classes``).
    """

    name = "diffusers"

    def __init__(
        self,
        pipeline: Any,
        *,
        latent_shape: Sequence[int] | None = None,
        decode: DecodeFn | None = None,
        discriminator: nn.Module | Discriminator | None = None,
        discriminator_output: ScoreKind | str | None = None,
        classifier: nn.Module | Classifier | None = None,
    ) -> None:
        _require_diffusers("DiffusersAdapter")
        if not callable(pipeline) or not hasattr(pipeline, "components"):
            raise InputTypeError(f"pipeline must be a diffusers DiffusionPipeline, got {type(pipeline).__name__}")
        self.pipeline = pipeline
        self.decode = decode
        self.prior = LatentPrior.of(tuple(latent_shape) if latent_shape is not None else _infer_latent_shape(pipeline))
        self.discriminator = as_discriminator(discriminator, discriminator_output)
        self.classifier = as_classifier(classifier, None)
        for model in (self.discriminator, self.classifier):
            if model is not None:
                model.eval()

    @property
    def device(self) -> torch.device:
        return torch.device(getattr(self.pipeline, "_execution_device", None) or self.pipeline.device)

    def to(self, device: torch.device | str) -> DiffusersAdapter:
        self.pipeline.to(check_device(device))
        return self._move_models(device, self.discriminator, self.classifier)  # type: ignore[return-value]

    def _generate(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        images = self.decode(self.pipeline, latents) if self.decode is not None else decode_latents(self.pipeline, latents)
        return images.clamp(*CHAIN_RANGE)


# --- the in-loop callback -------------------------------------------------------------------


def _pipeline_steps(pipeline: Any) -> int:
    """How many times the loop calls the callback: ``pipe.num_timesteps`` where the
    pipeline sets it, otherwise the scheduler's timesteps (one step call each)."""
    total = getattr(pipeline, "num_timesteps", None)
    if total is None:
        total = len(pipeline.scheduler.timesteps)
    return int(total)


def _check_step_choice(steps: Literal["last"] | Sequence[int]) -> tuple[int, ...]:
    if steps == "last":
        return (-1,)
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or not steps:
        raise InputError(f"steps must be 'last' or a non-empty list of step indices (negative counts from the end), got {steps!r}")
    for step in steps:
        if isinstance(step, bool) or not isinstance(step, int):
            raise InputTypeError(f"steps must hold ints (e.g. [-1] for the last step), got {step!r}")
    return tuple(steps)


class DiffusersCallback:
    """Latent sampler and refiners at chosen denoising steps of a diffusers pipeline.

    Use it as ``pipe(..., callback_on_step_end=DiffusersCallback(...))`` on
    pipelines with that argument, inside ``MultiPipelineCallbacks([...])``
    next to other callbacks, or on any pipeline through
    ``CallbackPipeline(pipe, callback)``.

    At each chosen step it decodes the step's latents with a
    :class:`DiffusersAdapter`, runs ``sampler`` (whose first proposals are the
    step's latents) and then each refiner, and hands the resulting latents back
    through ``callback_kwargs["latents"]`` (cast to the pipeline's dtype). It
    works on a detached float32 clone with gradients enabled, so methods can
    differentiate through the decoder although the pipeline runs under
    ``torch.no_grad()``. The pipeline's tensors are never modified in place.

    Only latents flow back into the loop. Refiners must act on
    ``batch.latents`` (latent-space refiners, or layer refiners at
    ``"latent"``); one that changes only images is refused with an error
    pointing to :class:`DiffusersPostprocessor`. Samplers must start from the
    latents they are given (gradient samplers such as DDLS or latent gradient
    ascent); rejection samplers, which replace rejected rows with fresh draws
    from the prior, would put pure noise into the loop and are refused.

    Random numbers of the methods are keyed by (seed, sample index), where
    the indices count the images this callback has refined over all pipeline
    calls (``indices`` restarts that count), so reruns with the same seed
    give the same images.

    Args:
        refiners: latent-space refiners, applied in order.
        sampler: a gradient-based sampler starting from the step's latents;
            default: none (the latents are kept as they are).
        steps: ``"last"`` (default) or step indices, negative counting from
            the end (``[-1]`` is the last step, ``[0]`` the first).
        seed: keys the methods' random numbers and their ``setup``.
        decode, discriminator, discriminator_output, classifier: passed to
            the :class:`DiffusersAdapter` the methods see.
    """

    #: The pipeline tensors this callback reads and writes (diffusers' ``tensor_inputs`` contract).
    tensor_inputs: list[str] = [LATENTS]

    def __init__(
        self,
        refiners: Sequence[Refiner] = (),
        sampler: LatentSampler | None = None,
        *,
        steps: Literal["last"] | Sequence[int] = "last",
        seed: int = DEFAULTS.seed,
        decode: DecodeFn | None = None,
        discriminator: nn.Module | Discriminator | None = None,
        discriminator_output: ScoreKind | str | None = None,
        classifier: nn.Module | Classifier | None = None,
    ) -> None:
        refiners = list(refiners)
        for position, refiner in enumerate(refiners):
            if not isinstance(refiner, Refiner):
                raise InputTypeError(f"refiners[{position}] must be a gan_postproc.Refiner, got {type(refiner).__name__}")
        if sampler is not None and not isinstance(sampler, LatentSampler):
            raise InputTypeError(f"sampler must be a gan_postproc.LatentSampler, got {type(sampler).__name__}")
        if isinstance(sampler, RejectionSampler):
            raise InputError(
                f"the {sampler.name!r} sampler rejects latents and replaces them with fresh draws from the prior, which "
                "inside a denoising loop would be pure noise; use a sampler that starts from the given latents "
                "(gradient samplers), or sample whole pipeline outputs and filter them afterwards"
            )
        if not refiners and sampler is None:
            raise InputError("DiffusersCallback needs at least one refiner or a sampler")
        self.refiners = refiners
        self.sampler = sampler
        self.steps = _check_step_choice(steps)
        self.seed = seed
        self._adapter_options = {
            "decode": decode,
            "discriminator": as_discriminator(discriminator, discriminator_output),
            "classifier": as_classifier(classifier, None),
        }
        self._chains: dict[tuple[Any, ...], tuple[Chain, list[Chain]]] = {}
        self._next_index = 0
        self._current_call: tuple[int, int] | None = None  # (id(pipeline), first index of the call)
        self._last_step = -1

    def chosen_steps(self, total: int) -> list[int]:
        """The step indices (0 .. total-1) this callback acts at, for a loop of ``total`` steps."""
        resolved = []
        for step in self.steps:
            index = step + total if step < 0 else step
            if not 0 <= index < total:
                raise InputError(f"step {step} does not exist in a loop of {total} steps (valid: {-total} .. {total - 1})")
            resolved.append(index)
        return sorted(set(resolved))

    def __call__(self, pipeline: Any, step_index: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        """diffusers' callback contract: returns ``callback_kwargs`` with ``"latents"`` replaced at chosen steps."""
        if not isinstance(callback_kwargs, dict) or LATENTS not in callback_kwargs:
            got = sorted(callback_kwargs) if isinstance(callback_kwargs, dict) else type(callback_kwargs).__name__
            raise InputError(
                f"DiffusersCallback needs callback_kwargs['latents'], got {got}; do not pass "
                "callback_on_step_end_tensor_inputs without 'latents' (MultiPipelineCallbacks sets it for you)"
            )
        latents = callback_kwargs[LATENTS]
        first_index = self._indices_for_call(pipeline, step_index, len(latents))
        if step_index in self.chosen_steps(_pipeline_steps(pipeline)):
            callback_kwargs[LATENTS] = self.refine_latents(pipeline, latents, first_index=first_index)
        return callback_kwargs

    def _indices_for_call(self, pipeline: Any, step_index: int, n: int) -> int:
        """First sample index of the current pipeline call (a step index that does not grow starts a new call)."""
        if self._current_call is None or self._current_call[0] != id(pipeline) or step_index <= self._last_step:
            self._current_call = (id(pipeline), self._next_index)
            self._next_index += n
        self._last_step = step_index
        return self._current_call[1]

    def reset_indices(self) -> None:
        """Count sample indices from 0 again (as a fresh callback would)."""
        self._next_index, self._current_call, self._last_step = 0, None, -1

    def _chains_for(self, pipeline: Any, latents: torch.Tensor) -> tuple[Chain, list[Chain]]:
        key = (id(pipeline), tuple(latents.shape[1:]), latents.device)
        if key not in self._chains:
            adapter = DiffusersAdapter(pipeline, latent_shape=tuple(latents.shape[1:]), **self._adapter_options)
            sampling = Chain(adapter, self.sampler or PriorSampler(), batch_size=len(latents))
            refining = [Chain(adapter, refiners=[refiner], batch_size=len(latents)) for refiner in self.refiners]
            for chain in (sampling, *refining):
                chain.setup(self.seed)
            self._chains[key] = (sampling, refining)
        return self._chains[key]

    def refine_latents(self, pipeline: Any, latents: torch.Tensor, *, first_index: int = 0) -> torch.Tensor:
        """Run the sampler and refiners on ``latents`` ``[N, C, h, w]``; returns new latents, same dtype and device.

        ``latents`` itself is never modified.
        """
        check_tensor(latents, "latents", ndim=(3, 4, 5), floating=True)
        sampling, refining = self._chains_for(pipeline, latents)
        with gradients_on():
            z = latents.detach().clone().float()
            request = SampleRequest(indices=torch.arange(first_index, first_index + len(z)), seed=self.seed, latents=z)
            batch = sampling.run_request(request)
            for chain, refiner in zip(refining, self.refiners):
                before, batch = batch, chain.refine(batch)
                _check_latents_moved_with_images(refiner, before, batch)
        return batch.latents.detach().to(device=latents.device, dtype=latents.dtype)


def _check_latents_moved_with_images(refiner: Refiner, before: SampleBatch, after: SampleBatch) -> None:
    if torch.equal(after.latents, before.latents) and not torch.equal(after.images, before.images):
        raise InputError(
            f"refiner {refiner.name!r} changed the images but not the latents; inside a denoising loop only latents "
            "reach the pipeline, so its work would be lost. Apply image refiners to the pipeline's output with "
            "DiffusersPostprocessor instead"
        )


# --- one callback for every pipeline ----------------------------------------------------------


def _innermost(pipeline: Any) -> Any:
    """The diffusers pipeline inside gan-postproc wrappers (classes with ``wraps_pipeline``, which pass their
    arguments through to ``.pipeline``), or ``pipeline`` itself."""
    while getattr(type(pipeline), "wraps_pipeline", False):
        pipeline = pipeline.pipeline
    return pipeline


def _call_signature(pipeline: Any) -> inspect.Signature:
    """The signature of ``pipeline(...)`` (of the wrapped pipeline, for a wrapper)."""
    return inspect.signature(_innermost(pipeline).__call__)


def _has_native_callback(pipeline: Any) -> bool:
    return "callback_on_step_end" in _call_signature(pipeline).parameters


def _bound_arguments(pipeline: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    signature = _call_signature(pipeline)
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

    #: Passes its arguments to the wrapped pipeline (see :func:`_call_signature`).
    wraps_pipeline = True

    def __init__(self, pipeline: Any, callback: Callable[..., Any]) -> None:
        _require_diffusers("CallbackPipeline")
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
        real_rows = _cfg_doubled_rows(_bound_arguments(self.pipeline, args, kwargs))
        with _scheduler_step_callback(self.pipeline, self.callback, real_rows):
            return self.pipeline(*args, **kwargs)


# --- refining what the pipeline returned ------------------------------------------------------


def _pil_to_array(images: Sequence[Any]) -> np.ndarray:
    arrays = [np.asarray(image) for image in images]
    if len({a.shape for a in arrays}) != 1:
        raise InputError("the PIL images of one output must share one size and mode")
    stacked = np.stack(arrays)
    return stacked[..., None] if stacked.ndim == 3 else stacked  # mode "L" -> one channel


def _to_chain(images: Any, tensor_range: ValueRange) -> tuple[torch.Tensor, Callable[[torch.Tensor, torch.Tensor], Any]]:
    """Pipeline images -> chain images ``[N, C, H, W]`` in [-1, 1], and the map back to the same type.

    The map back takes ``(refined, chain_images)`` and keeps every value the
    refiners left unchanged bit-identical to the input (values outside the
    range, e.g. Kandinsky's unclamped tensors, included).
    """
    if isinstance(images, torch.Tensor):
        check_tensor(images, "images", ndim=4, floating=True)
        if tuple(tensor_range) == (0.0, 1.0):
            _check_unit_range(images.detach())
        source = images
        x = rescale(images.detach().float(), tensor_range, CHAIN_RANGE).clamp(*CHAIN_RANGE)

        def back(refined: torch.Tensor, chain_images: torch.Tensor) -> torch.Tensor:
            native = rescale(refined, CHAIN_RANGE, tensor_range).to(source.device, source.dtype)
            return torch.where((refined == chain_images).to(source.device), source, native)

        return x, back
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.dtype.kind != "f":
            raise InputError(f"numpy images must be float NHWC in [0, 1] (output_type='np'), got {images.dtype} {images.shape}")
        _check_unit_range(torch.from_numpy(np.ascontiguousarray(images)))
        x = rescale(torch.from_numpy(np.ascontiguousarray(images)).float().permute(0, 3, 1, 2), (0.0, 1.0), CHAIN_RANGE)

        def back(refined: torch.Tensor, chain_images: torch.Tensor) -> np.ndarray:
            native = rescale(refined, CHAIN_RANGE, (0.0, 1.0)).permute(0, 2, 3, 1).numpy().astype(images.dtype)
            unchanged = (refined == chain_images).permute(0, 2, 3, 1).numpy()
            return np.where(unchanged, images, native)

        return x, back
    if isinstance(images, list) and images and all(hasattr(image, "mode") and hasattr(image, "size") for image in images):
        from PIL import Image

        modes = {image.mode for image in images}
        if len(modes) != 1 or not modes <= {"RGB", "L"}:
            raise InputError(f"PIL images must all be 'RGB' or all 'L', got modes {sorted(modes)}")
        (mode,) = modes
        array = _pil_to_array(images)
        x = rescale(torch.from_numpy(array).float().permute(0, 3, 1, 2), (0.0, 255.0), CHAIN_RANGE)

        def back(refined: torch.Tensor, chain_images: torch.Tensor) -> list[Any]:
            pixels = rescale(refined, CHAIN_RANGE, (0.0, 255.0)).round().clamp(0, 255).to(torch.uint8)
            unchanged = (refined == chain_images).permute(0, 2, 3, 1).numpy()
            pixels = np.where(unchanged, array, pixels.permute(0, 2, 3, 1).numpy())
            return [Image.fromarray(p[..., 0] if mode == "L" else p, mode=mode) for p in pixels]

        return x, back
    raise InputTypeError(
        f"cannot refine {type(images).__name__}: expected the images of output_type 'pil' (a list of PIL images), "
        "'np' (a float NHWC array) or 'pt' (an NCHW tensor); output_type='latent' gives latents, which belong to "
        "DiffusersCallback"
    )


def _check_unit_range(images: torch.Tensor) -> None:
    try:
        check_in_range(images, "images", (0.0, 1.0))
    except InputError as error:
        raise InputError(
            f"{error}. Pipeline images ('np', 'pt') lie in [0, 1]; values outside it are latents "
            "(output_type='latent', refine those with DiffusersCallback) or a pipeline whose 'pt' images are in "
            "[-1, 1] (pass tensor_range=(-1, 1))"
        ) from None


def _split_output(output: Any) -> tuple[Any, Callable[[Any], Any]]:
    """A pipeline result -> (its images, a function putting new images into a copy of the same structure)."""
    if dataclasses.is_dataclass(output) and hasattr(output, "images"):
        return output.images, lambda images: dataclasses.replace(output, images=images)
    if isinstance(output, tuple) and output:
        return output[0], lambda images: (images, *output[1:])
    return output, lambda images: images


class DiffusersPostprocessor:
    """Image refiners applied to the output of ``pipe(...)``.

    ``post(output)`` accepts what a pipeline returns (its output dataclass, the
    tuple of ``return_dict=False``, or the bare images) for ``output_type``
    ``"pil"``, ``"np"`` or ``"pt"``, and returns the same type and structure
    with refined images. Pixels the refiners do not change come back
    bit-identical (PIL images are re-quantised to uint8, so changed pixels are
    rounded).

    Args:
        refiners: image refiners (BIGRoC, ...), applied in order to images in
            [-1, 1] (the chain convention). They get no adapter.
        seed: keys the refiners' random numbers and their ``setup``.
        tensor_range: range of ``"pt"`` outputs: ``(0, 1)`` for most
            pipelines; :meth:`wrap` picks ``(-1, 1)`` for the Kandinsky family.

    Example::

        post = DiffusersPostprocessor([BIGRoC(classifier=robust, eps=0.5)])
        images = post(pipe(class_labels=[207, 360]), labels=[207, 360]).images
        pipe = post.wrap(pipe)          # or: refine every call, DiT labels passed through
    """

    def __init__(self, refiners: Sequence[Refiner], *, seed: int = DEFAULTS.seed, tensor_range: ValueRange = (0.0, 1.0)) -> None:
        refiners = list(refiners)
        if not refiners:
            raise InputError("DiffusersPostprocessor needs at least one refiner")
        self.chain = Chain(None, refiners=refiners)
        self.chain.setup(seed)
        self.seed = seed
        self.tensor_range = tuple(tensor_range)
        self.samples_seen = 0

    def __call__(
        self, output: Any, labels: Sequence[int] | torch.Tensor | None = None, *, tensor_range: ValueRange | None = None
    ) -> Any:
        """Refine the images of a pipeline result; same type and structure back.

        Args:
            output: what ``pipe(...)`` returned.
            labels: ground-truth class per image (``[N]``), e.g. DiT's
                ``class_labels``; refiners that use labels (BIGRoC_GT) get them.
            tensor_range: range of ``"pt"`` images for this call (default: the
                postprocessor's ``tensor_range``).
        """
        images, rebuild = _split_output(output)
        x, back = _to_chain(images, tuple(tensor_range) if tensor_range is not None else self.tensor_range)
        label_tensor = None
        if labels is not None:
            label_tensor = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
            if label_tensor.shape[0] != x.shape[0] or bool((label_tensor < 0).any()):
                raise InputError(f"labels must hold one non-negative class per image ({x.shape[0]}), got {label_tensor.tolist()}")
        indices = torch.arange(self.samples_seen, self.samples_seen + x.shape[0])
        self.samples_seen += x.shape[0]
        refined = self.chain.refine(SampleBatch(images=x, labels=label_tensor, indices=indices))
        return rebuild(back(refined.images.detach().cpu(), x))

    def wrap(self, pipeline: Any) -> RefinedPipeline:
        """A pipeline whose every call returns refined images (see :class:`RefinedPipeline`)."""
        return RefinedPipeline(pipeline, self)


class RefinedPipeline:
    """``pipeline(...)`` followed by a :class:`DiffusersPostprocessor`.

    Passes the call's ``class_labels`` (DiT) to the refiners as ground-truth
    labels, and reads ``output_type="pt"`` images in the range the pipeline
    uses ([-1, 1] for the Kandinsky family, else [0, 1]). Attributes of the
    pipeline are readable through the wrapper.
    """

    #: Passes its arguments to the wrapped pipeline (see :func:`_call_signature`).
    wraps_pipeline = True

    def __init__(self, pipeline: Any, postprocessor: DiffusersPostprocessor) -> None:
        _require_diffusers("RefinedPipeline")
        self.pipeline = pipeline
        self.postprocessor = postprocessor
        self.tensor_range = CHAIN_RANGE if type(_innermost(pipeline)).__name__.startswith(_MINUS_ONE_TO_ONE_PT_PREFIX) else None

    def __getattr__(self, name: str) -> Any:
        if name in ("pipeline", "postprocessor", "tensor_range"):
            raise AttributeError(name)
        return getattr(self.pipeline, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the pipeline, then refine its images; same arguments and result type as the pipeline."""
        arguments = _bound_arguments(self.pipeline, args, kwargs)
        if arguments.get("output_type") == "latent":
            raise InputError("output_type='latent' returns latents, not images; refine latents with DiffusersCallback")
        labels = arguments.get("class_labels")
        if isinstance(labels, int):
            labels = [labels]
        return self.postprocessor(self.pipeline(*args, **kwargs), labels=labels, tensor_range=self.tensor_range)


@hookimpl
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    return [DiffusersAdapter]
