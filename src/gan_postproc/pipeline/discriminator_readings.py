"""What the discriminator-guided methods (collaborative, dot, ddls) read from a discriminator.

Each method takes the output convention from the :class:`~gan_postproc.pipeline.scoring.Discriminator`
wrapper (its declared :class:`~gan_postproc.pipeline.scoring.ScoreKind`), never from the values:

* :func:`potential` is the ``d(x)`` of DOT and DDLS: the logit ``log D / (1 - D)`` (an
  estimate of ``log p_data(x) / p_model(x)``) for a probability or logit discriminator,
  the raw score for a WGAN/hinge critic.
* :func:`generator_loss` turns ``d`` into the ``L_G`` of collaborative sampling (Liu et al.,
  Eq. 2 and Eq. 4): the non-saturating ``-log D(x) = softplus(-logit)`` for a probability or
  logit discriminator, ``-D(x)`` for a critic.
* :func:`realness` turns ``d`` into what collaborative sampling compares and keeps the best
  of: ``D(x)`` as a probability in (0, 1), or the raw critic score.

So one discriminator pass gives all three. Each is ``[N]`` float32, differentiable with
respect to ``x``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputTypeError, MissingModelError
from .adapter import Adapter
from .scoring import Discriminator, ScoreKind

__all__ = ["resolve_discriminator", "potential", "generator_loss", "realness"]


def resolve_discriminator(explicit: Discriminator | None, adapter: Adapter | None, method: str) -> Discriminator:
    """The discriminator a method uses: the one passed to it, else the adapter's.

    Raises:
        InputTypeError: if ``explicit`` is a bare module (its output convention would be a guess).
        MissingModelError: if neither gives one.
    """
    if explicit is not None:
        if not isinstance(explicit, Discriminator):
            raise InputTypeError(
                f"{method} needs a gan_postproc.Discriminator that declares its output convention, got "
                f"{type(explicit).__name__}; wrap it: Discriminator(D, output='logit' | 'probability' | 'critic')"
            )
        return explicit
    if adapter is None:
        raise MissingModelError(
            f"{method} needs a discriminator: pass discriminator=Discriminator(D, output=...) to it, "
            "or run it on an adapter with a discriminator attached"
        )
    return adapter.require_discriminator(method)


def _labels_for(discriminator: Discriminator, labels: torch.Tensor | None) -> torch.Tensor | None:
    return labels if discriminator.conditional else None


def potential(discriminator: Discriminator, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``d(x)``: the logit for a probability/logit discriminator, the raw score for a critic; ``[N]``.

    A batch smaller than the discriminator's ``min_batch_size`` is padded (:meth:`Discriminator.padded`).
    """
    x, labels, n = discriminator.padded(x, _labels_for(discriminator, labels))
    if discriminator.output is ScoreKind.CRITIC:
        return discriminator(x, labels)[:n]
    return discriminator.logit(x, labels)[:n]


def generator_loss(discriminator: Discriminator, d: torch.Tensor) -> torch.Tensor:
    """``L_G`` from the potential ``d`` (:func:`potential`): ``-log D = softplus(-d)``, or ``-d`` for a critic."""
    return -d if discriminator.output is ScoreKind.CRITIC else F.softplus(-d)


def realness(discriminator: Discriminator, d: torch.Tensor) -> torch.Tensor:
    """``D(x)`` from the potential ``d``: a probability ``sigmoid(d)`` in (0, 1), or the raw critic score."""
    return d if discriminator.output is ScoreKind.CRITIC else torch.sigmoid(d)
