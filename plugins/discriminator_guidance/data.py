"""Training samples for the DG discriminator: a tensor, an iterable of batches, an ``.npz`` file or a folder of images."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.files.images import list_images, read_images, read_npz_images, to_chain
from gan_postproc.real_data import iter_real
from gan_postproc.validation import ValueRange

__all__ = ["SampleSource", "load_samples"]

#: What :func:`load_samples` accepts.
SampleSource = torch.Tensor | Iterable[torch.Tensor] | str | os.PathLike[str]


def load_samples(source: SampleSource, name: str, input_shape: Sequence[int], *, value_range: ValueRange | None = None) -> torch.Tensor:
    """All samples of ``source`` as one CPU float32 tensor ``[N, *input_shape]``, checked before any work.

    Args:
        source: a tensor ``[N, *input_shape]``; an iterable of such batches (or
            of tuples whose first element is one: a ``DataLoader``); a path to
            an ``.npz`` (its image array, NCHW or NHWC: uint8 0..255 or floats in
            ``value_range`` become images in ``[-1, 1]``; floats without a
            ``value_range`` are taken as they are, e.g. VAE latents) or to a folder of images (PNG/JPEG, searched
            recursively, one size and mode). Image folders give images in ``[-1, 1]``.
        name: what the samples are, for messages (``"real"``, ``"generated"``).
        input_shape: ``(C, H, W)`` the discriminator takes.
        value_range: the range of float samples (checked); ``None``: unbounded (latents).

    Raises:
        InputError: for a missing file, no samples, or samples of another shape
            (naming both shapes and the fix).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            names = list_images(path)
            _, pixels = read_images(path, names)
            samples = to_chain(pixels)
        elif path.suffix == ".npz" and path.is_file():
            array = read_npz_images(path).nchw
            # uint8 images (or floats in a stated range) become [-1, 1] images; unbounded floats
            # (latents of a latent diffusion model) are taken as they are.
            samples = to_chain(array, value_range) if array.dtype == np.uint8 or value_range is not None else torch.from_numpy(array.astype(np.float32))
        else:
            raise InputError(f"{name} samples: {path} is neither a folder of images nor an .npz file")
    elif isinstance(source, torch.Tensor) or (isinstance(source, Iterable) and not isinstance(source, (str, bytes))):
        samples = torch.cat([batch.detach().float().cpu() for batch in iter_real(source, value_range)])
    else:
        raise InputTypeError(f"{name} samples must be a tensor, an iterable of batches, an .npz path or an image folder, got {type(source).__name__}")
    if samples.shape[0] == 0:
        raise InputError(f"no {name} samples were given")
    if tuple(samples.shape[1:]) != tuple(input_shape):
        raise InputError(
            f"{name} samples have shape {tuple(samples.shape[1:])} per sample, but the discriminator takes {tuple(input_shape)}; "
            "give samples in the space the diffusion model denoises in (pixels, or latents of a latent diffusion model)"
        )
    return samples
