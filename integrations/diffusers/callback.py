"""``DiffusersCallback``: samplers and latent refiners inside a diffusers denoising loop.

Passed as ``callback_on_step_end=`` to any pipeline that has that argument (Stable Diffusion, SDXL,
SD3, Kandinsky, Flux, ...). At the steps you choose (by default the last) it runs a latent sampler
and latent-space refiners on the pipeline's ``latents``, with gradients enabled inside the
pipeline's ``torch.no_grad()`` loop, on a detached clone. It reads and writes ``latents`` only
through the ``callback_kwargs`` the pipeline hands it (its declared ``tensor_inputs``), returns that
dict, and composes with diffusers' ``MultiPipelineCallbacks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from gan_postproc.defaults import DEFAULTS
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.gradients import gradients_on
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.chain import Chain
from gan_postproc.pipeline.refiner import Refiner
from gan_postproc.pipeline.rejection import RejectionSampler
from gan_postproc.pipeline.sampler import LatentSampler, PriorSampler, SampleRequest
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind, as_classifier, as_discriminator
from gan_postproc.validation import check_tensor

from .adapter import DecodeFn, DiffusersAdapter

__all__ = ["DiffusersCallback", "LATENTS"]

#: The tensor the callback reads and writes (its declared ``tensor_inputs``).
LATENTS = "latents"


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
