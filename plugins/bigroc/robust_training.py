"""Adversarial training of the robust classifier BIGRoC needs: L2-PGD (Madry et al., ICLR 2018).

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

The training loop itself (resumable checkpoints, seeded epochs) is the core's
plain one, :func:`gan_postproc.classifier_training.train_classifier`, given the
attack of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gan_postproc.classifier_training import TrainingReport, train_classifier
from gan_postproc.validation import ValueRange, check_count, check_positive

from .defaults import DEFAULTS
from .pgd import pgd_l2, random_l2_start

__all__ = ["AttackSettings", "train_robust_classifier"]


@dataclass(frozen=True)
class AttackSettings:
    """An untargeted L2 PGD attack: radius ``eps``, ``steps`` steps of length ``step_size``.

    ``eps`` and ``step_size`` are in the units of the images' value range.
    """

    #: Recorded in training checkpoints (gan_postproc.classifier_training.Attack).
    kind: ClassVar[str] = "l2_pgd"

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
        **options: the other keyword arguments of
            :func:`~gan_postproc.classifier_training.train_classifier`
            (``batch_size``, ``lr``, ``weight_decay``, ``value_range``, ``seed``,
            ``checkpoint_dir``, ``progress``).

    Returns:
        A :class:`TrainingReport`; its accuracies are on the adversarial batches.
    """
    attack = AttackSettings(eps=eps, steps=steps, step_size=step_size)
    return train_classifier(model, images, labels, epochs=epochs, attack=attack, **options)
