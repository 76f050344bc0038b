"""Training DG's time-dependent discriminator on noised real and generated samples (binary cross-entropy).

Kim et al. (ICML 2023), Section 3: the discriminator is trained after (and
without touching) the score network, with the time-weighted binary
cross-entropy

    L(phi) = E_t [ lambda(t) ( E_{x_0 ~ p_data} -log d_phi(x_t, t) + E_{x_0 ~ p_model} -log(1 - d_phi(x_t, t)) ) ],

where x_t is x_0 diffused by the forward process,
``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``. Its minimiser is
``d* = p_t^data / (p_t^data + p_t^model)``, whose logit's gradient is the
score correction DG adds.

The weighting over t is a sampling distribution here: ``"likelihood"`` draws
t with probability proportional to ``beta_t / (1 - abar_t)``, the discrete
counterpart of the likelihood weighting ``g(t)^2 / sigma(t)^2`` the reference
code's importance sampling of t implements for its VP-SDE (``vpsde.get_diffusion_time``);
``"uniform"`` draws t uniformly from the training timesteps.

Each batch holds ``batch_size / 2`` real and ``batch_size / 2`` generated
samples (so the classes are balanced whatever the sizes of the two sets; an
epoch is one pass over the larger set), each noised at its own t.
Everything random (shuffling, t, noise) in epoch ``e`` comes from a
generator seeded by ``(seed, e)``, so a resumed run equals an uninterrupted
one bit for bit. A checkpoint (head, optimizer, history) is written
atomically after every ``checkpoint_every`` epochs.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gan_postproc.errors import CheckpointError, InputError, InputTypeError
from gan_postproc.files.checkpoints import load_checkpoint, read_checkpoint_state, save_checkpoint
from gan_postproc.files.loading import differing_keys
from gan_postproc.rng import stream_key
from gan_postproc.validation import ValueRange, check_choice, check_count, check_labels, check_positive, check_tensor

from .data import SampleSource, load_samples
from .defaults import DEFAULTS
from .discriminator import TimeDependentDiscriminator, _HeadView

__all__ = ["CHECKPOINT_NAME", "TimeSampling", "DGTrainingReport", "train_dg_discriminator", "discriminator_accuracy", "noise_samples"]

#: The resumable checkpoint inside ``checkpoint_dir``.
CHECKPOINT_NAME = "last.safetensors"

TimeSampling = Literal["likelihood", "uniform"]


@dataclass
class DGTrainingReport:
    """What a training run did.

    Attributes:
        start_epoch: epochs found in the checkpoint (0 for a fresh run).
        epochs: epochs trained in all.
        history: per epoch ``{"epoch", "loss", "accuracy"}`` on the training
            batches, plus ``"heldout_loss"`` / ``"heldout_accuracy"`` with validation data.
        checkpoint: the checkpoint file, if any.
        seconds: training wall time, summed over the calls that trained this checkpoint's epochs.
    """

    start_epoch: int
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    seconds: float = 0.0


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator of one epoch: a pure function of ``(seed, epoch)``."""
    return torch.Generator().manual_seed(stream_key(f"dg_discriminator/{seed}/{epoch}") & (2**63 - 1))


def _time_distribution(alphas_cumprod: torch.Tensor, time_sampling: str) -> torch.Tensor:
    """Probabilities over the T training timesteps."""
    if time_sampling == "uniform":
        return torch.full_like(alphas_cumprod, 1.0 / len(alphas_cumprod))
    previous = torch.cat([torch.ones(1, dtype=alphas_cumprod.dtype), alphas_cumprod[:-1]])
    betas = 1 - alphas_cumprod / previous
    weights = betas / (1 - alphas_cumprod)
    return weights / weights.sum()


def noise_samples(x0: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The forward process: ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` (per-sample ``t [N]``)."""
    abar = alphas_cumprod.to(x0.device)[t].view(-1, *([1] * (x0.dim() - 1))).float()
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def _check_schedule(discriminator: TimeDependentDiscriminator, alphas_cumprod: object) -> torch.Tensor:
    schedule = check_tensor(alphas_cumprod, "alphas_cumprod", ndim=1, floating=True).detach().double().cpu()
    if len(schedule) != discriminator.num_timesteps:
        raise InputError(
            f"alphas_cumprod has {len(schedule)} timesteps but the discriminator embeds {discriminator.num_timesteps}; "
            "build the discriminator with num_timesteps = the scheduler's num_train_timesteps"
        )
    if bool((schedule <= 0).any()) or bool((schedule > 1).any()) or bool((schedule[1:] > schedule[:-1]).any()):
        raise InputError("alphas_cumprod must decrease within (0, 1] (the scheduler's alphas_cumprod)")
    return schedule


def _check_labels(discriminator: TimeDependentDiscriminator, labels: object, samples: torch.Tensor, name: str) -> torch.Tensor | None:
    if discriminator.num_classes is None:
        if labels is not None:
            raise InputError(f"{name}_labels were given but the discriminator is unconditional (num_classes=None)")
        return None
    if labels is None:
        raise InputError(f"the discriminator is class-conditional ({discriminator.num_classes} classes): pass {name}_labels [N]")
    return check_labels(torch.as_tensor(labels), f"{name}_labels", num_classes=discriminator.num_classes, n=samples.shape[0]).cpu()


def _digest(*tensors: torch.Tensor | None) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        if tensor is not None:
            digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_dg_discriminator(
    discriminator: TimeDependentDiscriminator,
    real: SampleSource,
    generated: SampleSource,
    *,
    alphas_cumprod: torch.Tensor,
    real_labels: torch.Tensor | None = None,
    generated_labels: torch.Tensor | None = None,
    epochs: int = DEFAULTS.train_epochs,
    batch_size: int = DEFAULTS.train_batch_size,
    lr: float = DEFAULTS.train_lr,
    weight_decay: float = DEFAULTS.train_weight_decay,
    time_sampling: TimeSampling = "likelihood",
    value_range: ValueRange | None = None,
    validation: tuple[SampleSource, SampleSource] | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = DEFAULTS.train_checkpoint_every,
    seed: int = 0,
    progress: bool = True,
) -> DGTrainingReport:
    """Train the head of ``discriminator`` in place (the extractor stays frozen) with DG's BCE (module docstring).

    Args:
        discriminator: a :class:`TimeDependentDiscriminator`.
        real, generated: samples ``[N, *input_shape]`` in the space the
            diffusion model denoises in (a tensor, an iterable of batches, an
            ``.npz`` path or an image folder: see
            :func:`~gan_postproc.plugins.discriminator_guidance.data.load_samples`);
            generated ones drawn from the model with the sampler settings it
            will be guided with.
        alphas_cumprod: ``[T]`` the diffusion schedule's cumulative alphas
            (``scheduler.alphas_cumprod``), T = ``discriminator.num_timesteps``.
        real_labels, generated_labels: ``[N]`` classes for a class-conditional discriminator.
        epochs: total epochs of the run (a resumed run trains only the missing ones).
        batch_size: samples per step, half real and half generated (even, >= 2).
        lr, weight_decay: Adam settings (the reference code's defaults).
        time_sampling: ``"likelihood"`` (the reference) or ``"uniform"``.
        value_range: range of float samples, checked (``None``: unbounded latents).
        validation: ``(real, generated)`` held-out samples; each epoch records
            their loss and accuracy at fixed noise and times (seeded).
        checkpoint_dir: folder for ``last.safetensors``; an existing checkpoint
            of the same data and settings is resumed, another is refused.
        checkpoint_every: epochs between checkpoints (the last epoch is always written).
        seed: seeds shuffling, times and noise.
        progress: show a progress bar.

    Returns:
        A :class:`DGTrainingReport`; the discriminator is left in eval mode.
    """
    if not isinstance(discriminator, TimeDependentDiscriminator):
        raise InputTypeError(f"discriminator must be a TimeDependentDiscriminator, got {type(discriminator).__name__}")
    epochs = check_count(epochs, "epochs")
    batch_size = check_count(batch_size, "batch_size", minimum=2)
    if batch_size % 2:
        raise InputError(f"batch_size must be even (half real, half generated), got {batch_size}")
    lr = check_positive(lr, "lr")
    weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
    checkpoint_every = check_count(checkpoint_every, "checkpoint_every")
    check_choice(time_sampling, "time_sampling", ("likelihood", "uniform"))
    schedule = _check_schedule(discriminator, alphas_cumprod)
    shape = discriminator.input_shape
    real_x = load_samples(real, "real", shape, value_range=value_range)
    fake_x = load_samples(generated, "generated", shape, value_range=value_range)
    real_y = _check_labels(discriminator, real_labels, real_x, "real")
    fake_y = _check_labels(discriminator, generated_labels, fake_x, "generated")
    heldout = None
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise InputError("validation must be a pair (real, generated) of held-out samples")
        if discriminator.num_classes is not None:
            raise InputError("validation data for a class-conditional discriminator is not supported; pass validation=None")
        heldout = (load_samples(validation[0], "held-out real", shape, value_range=value_range),
                   load_samples(validation[1], "held-out generated", shape, value_range=value_range))
    started = time.perf_counter()
    config = json.loads(json.dumps({
        "discriminator": {k: v for k, v in discriminator.config().items()},
        "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "time_sampling": time_sampling, "seed": seed,
        "schedule_sha256": _digest(schedule.float()), "data_sha256": _digest(real_x, fake_x, real_y, fake_y),
    }))
    head = _HeadView(discriminator)
    optimizer = torch.optim.Adam(discriminator.head_parameters(), lr=lr, weight_decay=weight_decay)
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    start, history, previous_seconds = 0, [], 0.0
    if checkpoint is not None and checkpoint.exists():
        stored = read_checkpoint_state(checkpoint)
        changed = differing_keys(stored.get("config") or {}, config)
        if changed:
            raise CheckpointError(
                f"{checkpoint} was written by a run with other settings or data ({', '.join(changed)} differ); resume with the "
                "same ones, or pass another checkpoint_dir to start afresh"
            )
        state = load_checkpoint(checkpoint, modules={"head": head}, optimizers={"adam": optimizer})
        start, history, previous_seconds = int(state["epoch"]), list(state["history"]), float(state.get("seconds", 0.0))
    device = discriminator.out.weight.device
    probabilities = _time_distribution(schedule, time_sampling)
    half = batch_size // 2
    steps = -(-max(len(real_x), len(fake_x)) // half)
    bar = tqdm(total=epochs * steps, initial=min(start, epochs) * steps, desc="training DG discriminator", unit="batch", disable=not progress)
    try:
        for epoch in range(start, epochs):
            generator = _epoch_generator(seed, epoch)
            real_rows = torch.randperm(len(real_x), generator=generator).repeat(-(-steps * half // len(real_x)))
            fake_rows = torch.randperm(len(fake_x), generator=generator).repeat(-(-steps * half // len(fake_x)))
            discriminator.train()
            loss_sum, correct, seen = 0.0, 0, 0
            for step in range(steps):
                rows_r, rows_f = real_rows[step * half : (step + 1) * half], fake_rows[step * half : (step + 1) * half]
                x0 = torch.cat([real_x[rows_r], fake_x[rows_f]])
                y = None if real_y is None else torch.cat([real_y[rows_r], fake_y[rows_f]]).to(device)
                target = torch.cat([torch.ones(half), torch.zeros(half)]).to(device)
                t = torch.multinomial(probabilities.float(), len(x0), replacement=True, generator=generator)
                noise = torch.randn(x0.shape, generator=generator)
                xt = noise_samples(x0, t, schedule, noise).to(device)
                logit = discriminator(xt, t.to(device), y)
                loss = F.binary_cross_entropy_with_logits(logit, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * len(x0)
                correct += int(((logit.detach() > 0).float() == target).sum())
                seen += len(x0)
                bar.update(1)
            discriminator.eval()
            record: dict[str, float] = {"epoch": epoch + 1, "loss": loss_sum / seen, "accuracy": correct / seen}
            if heldout is not None:
                record["heldout_loss"], record["heldout_accuracy"] = discriminator_accuracy(
                    discriminator, heldout[0], heldout[1], alphas_cumprod=schedule, time_sampling=time_sampling, seed=seed)
            history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.3f}")
            if checkpoint is not None and ((epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs):
                save_checkpoint(checkpoint, modules={"head": head}, optimizers={"adam": optimizer},
                                state={"epoch": epoch + 1, "config": config, "history": history,
                                       "seconds": previous_seconds + time.perf_counter() - started})
    finally:
        bar.close()
        discriminator.eval()
    trained = time.perf_counter() - started if start < epochs else 0.0
    return DGTrainingReport(start_epoch=start, epochs=max(start, epochs), history=history, checkpoint=checkpoint,
                            seconds=previous_seconds + trained)


def discriminator_accuracy(
    discriminator: TimeDependentDiscriminator,
    real: torch.Tensor,
    generated: torch.Tensor,
    *,
    alphas_cumprod: torch.Tensor,
    time_sampling: TimeSampling = "uniform",
    seed: int = 0,
    batch_size: int = 512,
) -> tuple[float, float]:
    """BCE and accuracy of ``discriminator`` on noised ``real`` vs ``generated`` samples, at seeded times and noise.

    Returns:
        ``(loss, accuracy)`` with accuracy in [0, 1] (0.5: chance).
    """
    schedule = _check_schedule(discriminator, alphas_cumprod)
    probabilities = _time_distribution(schedule, time_sampling)
    generator = torch.Generator().manual_seed(stream_key(f"dg_heldout/{seed}") & (2**63 - 1))
    device = discriminator.out.weight.device
    loss_sum, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for samples, label in ((real, 1.0), (generated, 0.0)):
            for chunk in samples.split(batch_size):
                t = torch.multinomial(probabilities.float(), len(chunk), replacement=True, generator=generator)
                xt = noise_samples(chunk.float(), t, schedule, torch.randn(chunk.shape, generator=generator)).to(device)
                logit = discriminator(xt, t.to(device))
                target = torch.full_like(logit, label)
                loss_sum += float(F.binary_cross_entropy_with_logits(logit, target, reduction="sum"))
                correct += int(((logit > 0).float() == target).sum())
                seen += len(chunk)
    return loss_sum / seen, correct / seen
