"""Discriminator shaping (Liu, Kothari & Alahi, "Collaborative Sampling in Generative Adversarial
Networks", AAAI 2020), Algorithm 2 and Eq. 6.

A trained discriminator tells real from generated samples but its gradients need not lead a
generated sample towards the data; shaping fine-tunes a COPY of it so that they do. Each step
(Algorithm 2):

1. draw ``m`` latents and refine their samples with collaborative sampling (Algorithm 1,
   :func:`~gan_postproc.plugins.collaborative.collaborative_refine`), guided by the copy
   as it is now;
2. draw ``m`` real samples;
3. take one optimiser step on Eq. 6,
   ``L_D = -E_real[log D(x)] - E_refined[log(1 - D(x'))]`` (binary cross-entropy; the
   paper's ``1 - log D`` is a typo for ``log(1 - D)``) for a probability or logit
   discriminator. A WGAN/hinge critic is shaped with the WGAN-GP critic loss
   ``E_refined[D] - E_real[D] + 10 * (||grad D(x_hat)|| - 1)^2`` instead, since binary
   cross-entropy has no meaning for an unbounded score.

The threshold ``D~`` of Algorithm 1 is re-estimated every step as the copy's mean ``D`` on
that step's real batch (the copy changes, so a fixed ``D~`` would go stale), unless the
refiner was given a fixed ``threshold``. The copy is fine-tuned in eval mode (frozen
batch-norm statistics, no dropout): the mode in which it then guides refinement.

Randomness is keyed like everything else (:mod:`gan_postproc.rng`): the latents of step
``t`` are those of sample indices ``t*m .. (t+1)*m - 1`` under ``seed``, so a run is
reproducible and resumes exactly. Real batches are read in the order the real data gives
them. The reference code draws the negatives at a random iterate along each refinement
path instead of the final one; this follows the paper.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gan_postproc import rng
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.files.writing import check_writable, remove_stale_temp_files
from gan_postproc.gradients import autograd_ready, gradients_on
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.discriminator_readings import potential, realness, resolve_discriminator
from gan_postproc.pipeline.scoring import Discriminator, ScoreKind
from gan_postproc.real_data import RealData, cycle_real
from gan_postproc.validation import check_count, check_positive, check_sample_shape

from .defaults import DEFAULTS
from .refiner import CollaborativeRefiner, collaborative_refine
from .shaped_files import (
    SHAPED_FORMAT,
    check_settings,
    fingerprint,
    load_checkpoint,
    load_shaped_discriminator,
    read_settings,
    save_checkpoint,
    save_shaped_discriminator,
)

__all__ = ["shape_discriminator"]

#: Adam betas of the fine-tuning (the usual GAN setting, beta1 = 0.5).
SHAPING_BETAS = (0.5, 0.999)


@gradients_on()
def shape_discriminator(
    adapter: Adapter,
    real_data: RealData,
    *,
    refiner: CollaborativeRefiner | None = None,
    discriminator: Discriminator | None = None,
    iterations: int = DEFAULTS.shaping_iterations,
    batch_size: int = DEFAULTS.shaping_batch_size,
    lr: float = DEFAULTS.shaping_lr,
    seed: int = DEFAULTS.seed,
    out: str | os.PathLike[str] | None = None,
    checkpoint_every: int = DEFAULTS.shaping_checkpoint_every,
    progress: bool = True,
) -> Discriminator:
    """Fine-tune a copy of the discriminator on real vs collaboratively refined samples (Algorithm 2).

    Args:
        adapter: the generator (frozen) whose samples are refined.
        real_data: real samples in chain convention: a tensor ``[N, ...]`` or any re-iterable
            of tensors (or ``(tensor, label)`` batches), e.g. a ``DataLoader``; read in order,
            over and over.
        refiner: the collaborative refinement that makes the negatives (its ``layer``,
            ``steps``, ``step_size``, ``selection`` and fixed ``threshold``, if any); default
            ``CollaborativeRefiner()``. Its ``real_data`` is not used (``D~`` is re-estimated
            each step).
        discriminator: the discriminator to shape; default: the refiner's, else the adapter's.
            It is not changed.
        iterations: optimiser steps.
        batch_size: ``m``, real and refined samples per step.
        lr: Adam learning rate (betas ``(0.5, 0.999)``).
        seed: keys the latents.
        out: where to save the shaped discriminator (safetensors). A resumable checkpoint
            ``<out>.ckpt`` is written atomically every ``checkpoint_every`` steps and removed
            once ``out`` is written; calling again with the same settings resumes from it, or,
            when ``out`` is complete, loads and returns it without training.
        checkpoint_every: steps between checkpoints.
        progress: show a progress bar.

    Gradients are on throughout, also inside a caller's ``torch.no_grad()`` or
    ``torch.inference_mode()`` (:func:`~gan_postproc.gradients.gradients_on`).

    Returns:
        The shaped copy, a new :class:`~gan_postproc.pipeline.scoring.Discriminator` with the same
        output convention, in eval mode. Attach it with ``CollaborativeRefiner(discriminator=...)``.

    Raises:
        InputError: for a conditional discriminator (shaping reads no real labels), bad settings.
        CheckpointError: if ``out`` or its checkpoint was made with other settings or from
            another discriminator.
    """
    if not isinstance(adapter, Adapter):
        raise InputTypeError(f"shape_discriminator needs the generator's Adapter, got {type(adapter).__name__}")
    refiner = CollaborativeRefiner() if refiner is None else refiner
    if not isinstance(refiner, CollaborativeRefiner):
        raise InputTypeError(f"refiner must be a CollaborativeRefiner (its settings make the negatives), got {type(refiner).__name__}")
    original = resolve_discriminator(discriminator if discriminator is not None else refiner.discriminator, adapter, "discriminator shaping")
    if original.conditional:
        raise InputError(
            "shaping a conditional discriminator needs real labels, which this function does not read; "
            "shape an unconditional discriminator"
        )
    adapter.check_layer(refiner.layer)
    iterations = check_count(iterations, "iterations")
    batch_size = check_count(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    checkpoint_every = check_count(checkpoint_every, "checkpoint_every")
    settings = {
        "layer": refiner.layer,
        "steps": refiner.steps,
        "step_size": refiner.step_size,
        "selection": refiner.selection,
        "threshold": refiner.threshold if refiner.real_data is None else None,
        "iterations": iterations,
        "batch_size": batch_size,
        "lr": lr,
        "betas": list(SHAPING_BETAS),
        "seed": seed,
        "output": original.output.value,
        "source_sha256": fingerprint(original),
    }
    out_path = None if out is None else Path(out)
    if out_path is not None and out_path.exists():
        check_settings(read_settings(out_path, SHAPED_FORMAT), settings, out_path)
        return load_shaped_discriminator(out_path, original)
    if out_path is not None:
        check_writable(out_path, "out")
        for path in (out_path, Path(str(out_path) + ".ckpt")):
            remove_stale_temp_files(path)

    shaped = copy.deepcopy(original).eval()
    params = [p for p in shaped.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=lr, betas=SHAPING_BETAS)
    checkpoint_path = None if out_path is None else Path(str(out_path) + ".ckpt")
    start = 0
    if checkpoint_path is not None and checkpoint_path.exists():
        start = load_checkpoint(checkpoint_path, shaped, optimizer, settings)
    real_batches = _skip(cycle_real(real_data, batch_size, adapter.value_range), start)
    fixed_threshold = settings["threshold"]

    bar = tqdm(total=iterations, initial=start, desc="shaping discriminator", unit="step", disable=not progress)
    try:
        for step in range(start, iterations):
            real = autograd_ready(next(real_batches)).to(adapter.device)
            indices = torch.arange(step * batch_size, (step + 1) * batch_size)
            latents = adapter.prior.sample(seed, indices, "shaping").to(adapter.device)
            labels = None
            if adapter.conditional:
                labels = rng.randint(seed, indices, adapter.num_classes, "shaping_label").to(adapter.device)  # type: ignore[arg-type]
            with torch.no_grad():
                images = adapter.generate_finite(latents, labels)
                check_sample_shape(real, "real_data", images.shape[1:], "the generator")
                threshold = fixed_threshold
                if refiner.selection == "threshold" and threshold is None:
                    threshold = float(realness(shaped, potential(shaped, real)).mean())
            refined = collaborative_refine(
                shaped,
                adapter,
                images=images,
                latents=latents,
                labels=labels,
                layer=refiner.layer,
                steps=refiner.steps,
                step_size=refiner.step_size,
                selection=refiner.selection,
                threshold=threshold,
                value_range=adapter.value_range,
            ).images.detach()
            loss = _shaping_loss(shaped, real, refined, rng.uniform(seed, indices, (), "shaping_gp"))
            grads = torch.autograd.grad(loss, params)
            for p, g in zip(params, grads):
                p.grad = g
            optimizer.step()
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            done = step + 1
            if checkpoint_path is not None and (done % checkpoint_every == 0 or done == iterations):
                save_checkpoint(checkpoint_path, shaped, optimizer, settings, done)
    finally:
        bar.close()
    for p in params:
        p.grad = None
    shaped.requires_grad_(False)
    if out_path is not None:
        save_shaped_discriminator(shaped, out_path, settings)
        if checkpoint_path is not None and checkpoint_path.exists():
            checkpoint_path.unlink()
    return shaped


def _skip(batches: Iterator[torch.Tensor], count: int) -> Iterator[torch.Tensor]:
    """The real batches after the first ``count`` (those a resumed run already used)."""
    for _ in range(count):
        next(batches)
    return batches


def _shaping_loss(discriminator: Discriminator, real: torch.Tensor, refined: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Eq. 6 (binary cross-entropy), or the WGAN-GP critic loss for a critic (``mix``: ``[m]`` uniforms
    placing the gradient-penalty points between the real and refined samples)."""
    d_real = potential(discriminator, real)
    d_fake = potential(discriminator, refined)
    if discriminator.output is not ScoreKind.CRITIC:
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    mix = mix.to(real.device).reshape((real.shape[0],) + (1,) * (real.dim() - 1))
    between = (mix * real + (1 - mix) * refined).requires_grad_(True)
    (grad,) = torch.autograd.grad(potential(discriminator, between).sum(), between, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return d_fake.mean() - d_real.mean() + DEFAULTS.shaping_gradient_penalty * penalty
