"""Gradients for the methods that need them, whatever context they are called in.

Frameworks generate under ``torch.no_grad()`` (StudioGAN's evaluation and ``save_images_png``,
torch-mimicry's metrics, diffusers pipelines) or ``torch.inference_mode()``, and a gradient
method (collaborative sampling and shaping, DOT, BIGRoC, latent GA, DDLS) runs inside their
calls. :func:`gradients_on` switches both off for the method's gradient work. A tensor made in
inference mode cannot take part in autograd (it cannot require grad nor be saved for backward),
so :func:`autograd_ready` hands the method a normal copy of such inputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

import torch

__all__ = ["gradients_on", "autograd_ready"]

T = TypeVar("T", torch.Tensor, None)


@contextlib.contextmanager
def gradients_on() -> Iterator[None]:
    """Autograd on, inside ``torch.no_grad()`` and ``torch.inference_mode()`` too (also usable as a decorator)."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def autograd_ready(tensor: T) -> T:
    """``tensor`` itself, or a normal copy of it where it was made in inference mode (``None`` stays ``None``)."""
    if tensor is None or not tensor.is_inference():
        return tensor
    with torch.inference_mode(False):
        return tensor.clone()
