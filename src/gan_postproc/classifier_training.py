"""Training an image classifier with cross-entropy and Adam, resumable, on clean or adversarial batches.

:func:`train_classifier` writes a resumable checkpoint after every epoch
(safetensors, written atomically) when given ``checkpoint_dir``; re-running
with the same arguments continues from it, and the result equals that of an
uninterrupted run, because each epoch's shuffling (and an attack's random
starts) are drawn from a generator seeded by ``(seed, epoch)``. Given an
:class:`Attack`, every mini-batch is replaced by its adversarial examples
(robust training; BIGRoC's L2 PGD lives with BIGRoC:
:func:`gan_postproc.plugins.bigroc.train_robust_classifier`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .defaults import DEFAULTS
from .errors import CheckpointError, InputError, InputTypeError
from .files.checkpoints import load_checkpoint, read_checkpoint_state, save_checkpoint
from .pipeline.ranges import CHAIN_RANGE
from .validation import ValueRange, call_network, check_count, check_images, check_labels, check_positive, check_tensor

__all__ = ["CHECKPOINT_NAME", "Attack", "TrainingReport", "train_classifier", "classifier_accuracy"]

#: File name of the resumable checkpoint inside ``checkpoint_dir``.
CHECKPOINT_NAME = "last.safetensors"


class Attack(Protocol):
    """Adversarial examples a classifier is trained or evaluated on (robust training).

    BIGRoC's L2 PGD attack is one: :class:`gan_postproc.plugins.bigroc.AttackSettings`.
    Its ``vars()`` are recorded in the checkpoint, so a resumed run must use the same attack.
    """

    #: A short name recorded in the checkpoint (``"l2_pgd"``).
    kind: str

    def perturb(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, value_range: ValueRange | None, generator: torch.Generator
    ) -> torch.Tensor:
        """Adversarial examples ``[N, ...]`` for ``images`` (in ``value_range``) against ``model`` (in eval mode)."""


@dataclass
class TrainingReport:
    """What a training call did.

    Attributes:
        start_epoch: epochs already done when the call began (0 for a fresh run).
        epochs: epochs done when it ended.
        history: one entry per epoch since the beginning of the run (also the
            resumed part): ``{"epoch", "loss", "accuracy"}``, where the loss and
            accuracy are on the training batches as trained on (adversarial
            ones for robust training).
        checkpoint: the checkpoint file, or ``None`` without ``checkpoint_dir``.
    """

    start_epoch: int
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator for one epoch, so a resumed run draws what an uninterrupted one would."""
    return torch.Generator().manual_seed(int(hashlib.blake2b(f"{seed}/{epoch}".encode(), digest_size=7).hexdigest(), 16))


def _model_device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _check_data(
    model: nn.Module, images: object, labels: object, value_range: ValueRange | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Validate images and labels against each other and against the model's output; return them and K."""
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    images = check_images(images, "images", value_range)
    labels = check_tensor(labels, "labels", ndim=1, floating=False)
    if labels.shape[0] != images.shape[0]:
        raise InputError(f"images and labels must hold the same number of samples, got {images.shape[0]} and {labels.shape[0]}")
    was_training = model.training
    with torch.no_grad():
        logits = call_network("the model", model.eval(), images[:2].to(_model_device(model)))
    model.train(was_training)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != min(2, images.shape[0]):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(f"model must map images [N, ...] to logits [N, K], got {shape} for {min(2, images.shape[0])} images")
    num_classes = int(logits.shape[1])
    check_labels(labels, "labels", num_classes=num_classes)
    return images, labels.to(torch.int64), num_classes


def _data_digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    digest = hashlib.sha256()
    digest.update(images.detach().cpu().contiguous().numpy().tobytes())
    digest.update(labels.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _resume(
    checkpoint: Path, config: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[int, list[dict[str, float]]]:
    stored = read_checkpoint_state(checkpoint)
    if stored.get("config") != config:
        old = stored.get("config") or {}
        changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        raise CheckpointError(
            f"{checkpoint} was written by a run with different settings ({', '.join(changed)} differ); "
            "resume with the same data and arguments, or pass another checkpoint_dir to start afresh"
        )
    state = load_checkpoint(checkpoint, modules={"model": model}, optimizers={"optimizer": optimizer})
    return int(state["epoch"]), list(state["history"])


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    attack: Attack | None = None,
    batch_size: int = DEFAULTS.train_batch_size,
    lr: float = DEFAULTS.train_lr,
    weight_decay: float = 0.0,
    value_range: ValueRange | None = CHAIN_RANGE,
    seed: int = DEFAULTS.seed,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> TrainingReport:
    """Train ``model`` in place with cross-entropy and Adam, on clean or adversarial batches.

    Args:
        model: maps images ``[N, ...]`` (as given, in ``value_range``) to logits ``[N, K]``.
        images: ``[N, ...]`` float training images, e.g. ``[N, C, H, W]`` in ``[-1, 1]``.
        labels: ``[N]`` int64 classes in ``[0, K)``.
        epochs: total epochs of the run (a resumed run trains only the missing ones).
        attack: ``None`` for plain training; an :class:`Attack` to replace every
            mini-batch by its adversarial examples (robust training, e.g.
            :func:`gan_postproc.plugins.bigroc.train_robust_classifier`).
        batch_size, lr, weight_decay: Adam mini-batch settings.
        value_range: range of ``images`` (checked); ``None`` for unbounded data.
        seed: seeds shuffling and the attack's random starts.
        checkpoint_dir: folder for a resumable checkpoint (``last.safetensors``),
            written atomically after every epoch; an existing one made with the
            same data and arguments is resumed, one made with others is refused.
        progress: show a progress bar.

    Returns:
        A :class:`TrainingReport`. ``model`` is left in eval mode.
    """
    epochs = check_count(epochs, "epochs")
    batch_size = check_count(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
    images, labels, num_classes = _check_data(model, images, labels, value_range)
    device = _model_device(model)
    config = json.loads(json.dumps({
        "kind": "plain" if attack is None else attack.kind,
        "attack": None if attack is None else vars(attack),
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "value_range": value_range,
        "seed": seed,
        "num_classes": num_classes,
        "data_sha256": _data_digest(images, labels),
    }))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    start, history = (0, []) if checkpoint is None or not checkpoint.exists() else _resume(checkpoint, config, model, optimizer)
    batches = -(-images.shape[0] // batch_size)
    what = "classifier" if attack is None else f"robust classifier ({attack.kind})"
    bar = tqdm(total=epochs * batches, initial=min(start, epochs) * batches, desc=f"training {what}", unit="batch", disable=not progress)
    try:
        for epoch in range(start, epochs):
            generator = _epoch_generator(seed, epoch)
            loss_sum, correct = 0.0, 0
            for rows in torch.randperm(images.shape[0], generator=generator).split(batch_size):
                x, y = images[rows].to(device), labels[rows].to(device)
                if attack is not None:
                    # The attack sees the model as it is evaluated (no dropout, frozen normalisation statistics).
                    x = attack.perturb(model.eval(), x, y, value_range, generator)
                logits = model.train()(x)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * len(rows)
                correct += int((logits.argmax(1) == y).sum())
                bar.update(1)
            history.append({"epoch": epoch + 1, "loss": loss_sum / images.shape[0], "accuracy": correct / images.shape[0]})
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{history[-1]['accuracy']:.3f}")
            if checkpoint is not None:
                save_checkpoint(
                    checkpoint,
                    modules={"model": model},
                    optimizers={"optimizer": optimizer},
                    state={"epoch": epoch + 1, "config": config, "history": history},
                )
    finally:
        bar.close()
        model.eval()
    return TrainingReport(start_epoch=start, epochs=max(start, epochs), history=history, checkpoint=checkpoint)


def classifier_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    attack: Attack | None = None,
    value_range: ValueRange | None = CHAIN_RANGE,
    batch_size: int = DEFAULTS.batch_size,
    seed: int = DEFAULTS.seed,
) -> float:
    """Top-1 accuracy of ``model`` on ``images``, or on their adversarial examples under ``attack``.

    Args:
        model: maps images to logits ``[N, K]``; put in eval mode.
        images, labels: as in :func:`train_classifier`.
        attack: an :class:`Attack` to evaluate robust accuracy, or ``None`` for clean accuracy.
        seed: seeds the attack's random starts.

    Returns:
        The fraction of correctly classified samples, in ``[0, 1]``.
    """
    images, labels, _ = _check_data(model, images, labels, value_range)
    device = _model_device(model)
    model.eval()
    generator = _epoch_generator(seed, -1)
    correct = 0
    for rows in torch.arange(images.shape[0]).split(check_count(batch_size, "batch_size")):
        x, y = images[rows].to(device), labels[rows].to(device)
        if attack is not None:
            x = attack.perturb(model, x, y, value_range, generator)
        with torch.no_grad():
            correct += int((model(x).argmax(1) == y).sum())
    return correct / images.shape[0]
