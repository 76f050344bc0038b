"""Training image classifiers: L2-PGD adversarial training (Madry et al.) and plain training.

Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models
Resistant to Adversarial Attacks" (ICLR 2018), Eq. 2.1: adversarial training
minimises the saddle-point objective

    min_theta E_(x, y) [ max_{||delta||_2 <= eps} L(theta, x + delta, y) ],

the inner maximum approximated by PGD from a random start in the ball
(:func:`~gan_postproc.plugins.bigroc.pgd.pgd_l2`) and the outer minimum by
stochastic gradient steps on the adversarial examples alone. BIGRoC
(Ganz & Elad 2022) needs such a *robust* classifier: its input gradients are
perceptually aligned, so following them changes an image towards its class
instead of adding adversarial noise.

Plain training (:func:`train_classifier`) is the same loop with the inner
maximisation left out. Both write a resumable checkpoint after every epoch
(safetensors, written atomically) when given ``checkpoint_dir``; re-running
with the same arguments continues from it, and the result equals that of an
uninterrupted run, because each epoch's shuffling and random starts are drawn
from a generator seeded by ``(seed, epoch)``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .defaults import DEFAULTS
from .errors import CheckpointError, InputError, InputTypeError
from .pipeline.ranges import CHAIN_RANGE
from .validation import ValueRange, call_network, check_count, check_images, check_labels, check_positive, check_tensor
from .files.checkpoints import load_checkpoint, read_checkpoint_state, save_checkpoint
from gan_postproc.plugins.bigroc.pgd import pgd_l2, random_l2_start

__all__ = ["CHECKPOINT_NAME", "AttackSettings", "TrainingReport", "train_classifier", "train_robust_classifier", "classifier_accuracy"]

#: File name of the resumable checkpoint inside ``checkpoint_dir``.
CHECKPOINT_NAME = "last.safetensors"


@dataclass(frozen=True)
class AttackSettings:
    """An untargeted L2 PGD attack: radius ``eps``, ``steps`` steps of length ``step_size``.

    ``eps`` and ``step_size`` are in the units of the images' value range.
    """

    eps: float
    steps: int = DEFAULTS.robust_train_steps
    step_size: float | None = None
    random_start: bool = True

    def __post_init__(self) -> None:
        check_positive(self.eps, "eps")
        check_count(self.steps, "steps")
        if self.step_size is None:
            object.__setattr__(self, "step_size", DEFAULTS.robust_train_step_ratio * self.eps / self.steps)
        check_positive(self.step_size, "step_size")

    def perturb(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, value_range: ValueRange | None, generator: torch.Generator
    ) -> torch.Tensor:
        """Adversarial examples maximising the cross-entropy of ``model`` within the ball."""
        start = random_l2_start(images, self.eps, generator) if self.random_start else None

        def cross_entropy(x: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(model(x), labels, reduction="none")

        return pgd_l2(
            cross_entropy, images, eps=self.eps, steps=self.steps, step_size=self.step_size, value_range=value_range, start=start
        )


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
    attack: AttackSettings | None = None,
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
        attack: ``None`` for plain training; an :class:`AttackSettings` to replace
            every mini-batch by its adversarial examples (see :func:`train_robust_classifier`).
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
        "kind": "plain" if attack is None else "l2_pgd",
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
    what = "robust classifier (L2 PGD)" if attack is not None else "classifier"
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


def train_robust_classifier(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    steps: int = DEFAULTS.robust_train_steps,
    step_size: float | None = None,
    epochs: int,
    **options: Any,
) -> TrainingReport:
    """Adversarially train ``model`` in place against an L2 PGD attack (Madry et al. 2018, Eq. 2.1).

    Every mini-batch is replaced by its adversarial examples: PGD with
    ``steps`` normalised-gradient steps of length ``step_size`` from a random
    start in the L2 ball of radius ``eps`` around each image, maximising the
    cross-entropy (model in eval mode during the attack); the model then takes
    one Adam step on the cross-entropy of those examples.

    Args:
        eps: L2 radius, in the units of the images' value range (for images in
            ``[-1, 1]`` twice the radius in ``[0, 1]`` units: BIGRoC's 0.5 for
            32x32 images in ``[0, 1]`` is 1.0 here).
        steps: PGD steps per mini-batch (default 7).
        step_size: PGD step length; default ``2.5 * eps / steps``.
        epochs: total epochs of the run.
        **options: the other keyword arguments of :func:`train_classifier`
            (``batch_size``, ``lr``, ``weight_decay``, ``value_range``, ``seed``,
            ``checkpoint_dir``, ``progress``).

    Returns:
        A :class:`TrainingReport`; its accuracies are on the adversarial batches.
    """
    attack = AttackSettings(eps=eps, steps=steps, step_size=step_size)
    return train_classifier(model, images, labels, epochs=epochs, attack=attack, **options)


def classifier_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    attack: AttackSettings | None = None,
    value_range: ValueRange | None = CHAIN_RANGE,
    batch_size: int = DEFAULTS.batch_size,
    seed: int = DEFAULTS.seed,
) -> float:
    """Top-1 accuracy of ``model`` on ``images``, or on their adversarial examples under ``attack``.

    Args:
        model: maps images to logits ``[N, K]``; put in eval mode.
        images, labels: as in :func:`train_classifier`.
        attack: an L2 PGD attack to evaluate robust accuracy, or ``None`` for clean accuracy.
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
