"""StyleGAN2 discriminators (both codebases): minibatch-std groups and the wrapper that pads to them.

The discriminators judge groups of samples together (minibatch standard deviation). The wrapper
declares the group size as the smallest batch it scores and pads other batches to a multiple of it
by repeating samples, so a sample's score depends on the other members of its group, as in
training. StyleGAN2 discriminators are trained with the logistic loss, so their output is declared
a logit by default.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from gan_postproc.errors import InputTypeError
from gan_postproc.pipeline.scoring import Discriminator, ScoreKind, score_in_groups
from gan_postproc.validation import check_count

from .base import one_hot

__all__ = ["stylegan2_discriminator"]


def _group_size(discriminator: nn.Module) -> int:
    """The minibatch-std group size the discriminator was built with (1 without such a layer).

    NVlabs: ``D.b4.mbstd.group_size`` (``None`` means the whole batch, which
    cannot be padded to; then 1). rosinality: ``D.stddev_group``.
    """
    epilogue = getattr(discriminator, "b4", None)
    if epilogue is not None and hasattr(epilogue, "mbstd"):
        mbstd = epilogue.mbstd
        return 1 if mbstd is None or mbstd.group_size is None else int(mbstd.group_size)
    group = getattr(discriminator, "stddev_group", None)
    return 1 if group is None else int(group)


def stylegan2_discriminator(
    discriminator: nn.Module,
    *,
    output: ScoreKind | str = ScoreKind.LOGIT,
    c_dim: int | None = None,
    group_size: int | None = None,
) -> Discriminator:
    """Wrap a StyleGAN2 discriminator (NVlabs ``D(img, c)`` or rosinality ``D(img)``).

    Args:
        discriminator: the network; images in [-1, 1].
        output: its output convention; StyleGAN2's logistic loss makes it a logit.
        c_dim: label dimension of an NVlabs ``D`` (default ``D.c_dim``; 0 or
            ``None``: unconditional). Labels are passed one-hot.
        group_size: minibatch-std group size (default: read from the network).
            Batches smaller than it are refused; others are padded to a
            multiple of it by repeating samples.
    """
    if isinstance(discriminator, Discriminator):
        return discriminator
    if not isinstance(discriminator, nn.Module):
        raise InputTypeError(f"discriminator must be a torch.nn.Module, got {type(discriminator).__name__}")
    nvlabs = "c" in _forward_parameters(discriminator)
    c_dim = int(getattr(discriminator, "c_dim", 0) or 0) if c_dim is None else c_dim
    group = check_count(group_size if group_size is not None else _group_size(discriminator), "group_size")

    def forward(module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if not nvlabs:
            return score_in_groups(x, group, lambda images, rows: module(images))
        c = one_hot(labels, c_dim, x.shape[0], x.device)
        return score_in_groups(x, group, lambda images, rows: module(images, c[rows]))

    return Discriminator(discriminator, output, conditional=nvlabs and c_dim > 0, min_batch_size=group, forward_fn=forward)


def _forward_parameters(module: nn.Module) -> list[str]:
    return list(inspect.signature(module.forward).parameters)
