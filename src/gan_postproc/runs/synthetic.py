"""On-the-fly synthetic training data: a ``torch.utils.data.IterableDataset`` over a chain.

Slim, "Boosting Generative Networks for Incremental Learning" (2020), Sec. 3.1:
"On-the-fly generation. Instead of training the classifier on a dataset of
fixed size, [...] we train the classifier with different batches of synthetic
images at every epoch", optionally with "data transformations" (horizontal
flips and random crops) and "sample filtering" (use the ``classifier_filter``
sampler in the chain; with a truncation sampler as its ``proposal`` for the
paper's filtering + truncation setting).

Indices and determinism: epoch ``e`` of an on-the-fly dataset covers the
global sample indices ``start + e * S .. start + (e + 1) * S - 1``
(``S = samples_per_epoch``), so every epoch sees new samples; a fixed dataset
(``fresh=False``) covers ``start .. start + S - 1`` in every epoch, generated
once and kept (transforms still differ by epoch). The epoch's indices
are put in an order keyed by ``(seed, epoch)`` and cut into one contiguous,
disjoint range per ``DataLoader`` worker (``torch.utils.data.get_worker_info``),
which generates its range in batches of ``chain.batch_size`` and yields it in
batches of ``batch_size``. Every random
number (latents, labels, flips, crops) is keyed by sample index, so a sample
does not depend on the worker that made it, and with ``num_workers=0`` or any
number of workers an epoch holds the same samples (up to the floating-point
rounding of different batch compositions; samplers with running state, such as
``class_balance``, also depend on the batches their worker ran before).

Call :meth:`SyntheticDataset.set_epoch` before each epoch (like
``DistributedSampler.set_epoch``); workers receive a fresh copy of the dataset
every epoch, so the epoch cannot be counted inside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import IterableDataset, get_worker_info

from .. import rng
from ..defaults import DEFAULTS
from ..errors import InputError, InputTypeError
from ..pipeline.batch import SampleBatch
from ..pipeline.chain import Chain
from ..validation import ValueRange, check_count, check_tensor

__all__ = ["SyntheticDataset", "random_flip", "random_crop", "batch_labels"]


def _check_augmentable(images: object, indices: object) -> None:
    """Flips and crops act on images ``[N, C, H, W]`` with one global index each."""
    check_tensor(images, "images", ndim=4)
    indices = check_tensor(indices, "indices", ndim=1, floating=False)
    if len(indices) != len(images):
        raise InputError(f"indices must hold one global index per image ({len(images)}), got {len(indices)}")


def random_flip(images: torch.Tensor, indices: torch.Tensor, seed: int, epoch: int = 0) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2, keyed by ``(seed, index, epoch)``.

    ``images``: ``[N, C, H, W]``; ``indices``: ``[N]`` int64 global sample indices.
    """
    _check_augmentable(images, indices)
    flip = rng.uniform(seed, indices.cpu(), (), "flip", epoch) < 0.5
    flip = flip.to(images.device)[:, None, None, None]
    return torch.where(flip, images.flip(-1), images)


def random_crop(
    images: torch.Tensor, indices: torch.Tensor, seed: int, padding: int, epoch: int = 0, value_range: ValueRange | None = (-1.0, 1.0)
) -> torch.Tensor:
    """Pad by ``padding`` pixels on each side and crop back to ``H x W`` at an offset keyed by ``(seed, index, epoch)``.

    The padding takes the lowest value of ``value_range`` (black; 0 for
    unbounded data), like the usual CIFAR crop. ``images``: ``[N, C, H, W]``.
    """
    padding = check_count(padding, "padding", minimum=0)
    _check_augmentable(images, indices)
    if padding == 0:
        return images
    n, _, height, width = images.shape
    fill = 0.0 if value_range is None else float(value_range[0])
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding), value=fill)
    offsets = rng.randint(seed, indices.cpu(), 2 * padding + 1, "crop", epoch, "y"), rng.randint(seed, indices.cpu(), 2 * padding + 1, "crop", epoch, "x")
    dy, dx = (offset.to(images.device) for offset in offsets)
    rows = dy[:, None] + torch.arange(height, device=images.device)
    cols = dx[:, None] + torch.arange(width, device=images.device)
    crops = padded[torch.arange(n, device=images.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2).contiguous()


def batch_labels(batch: SampleBatch) -> torch.Tensor:
    """The class of every sample: ``labels``, else the sampler's ``provenance["pseudo_label"]``.

    Raises:
        InputError: the batch has neither (an unconditional generator with a
            sampler that assigns no pseudo labels).
    """
    if batch.labels is not None:
        return batch.labels
    if "pseudo_label" in batch.provenance:
        return batch.provenance["pseudo_label"]
    raise InputError(
        "the chain's samples carry no labels: use a conditional generator, or a sampler that assigns "
        "pseudo labels to an unconditional one (classifier_filter, class_balance)"
    )


def _rebatch(parts: Iterable[tuple[torch.Tensor, ...]], size: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """Regroup a stream of row-aligned tensor tuples into tuples of ``size`` rows (the last may be shorter)."""
    pending: list[tuple[torch.Tensor, ...]] = []
    count = 0
    for part in parts:
        pending.append(part)
        count += len(part[0])
        while count >= size:
            merged = tuple(torch.cat(column) for column in zip(*pending))
            yield tuple(column[:size] for column in merged)
            pending = [tuple(column[size:] for column in merged)]
            count -= size
    if count:
        yield tuple(torch.cat(column) for column in zip(*pending))


class SyntheticDataset(IterableDataset):
    """Fresh ``(images, labels)`` batches from a chain, for training a classifier on synthetic data.

    Args:
        chain: any :class:`~gan_postproc.Chain` (sampler + refiners) whose
            samples carry labels (see :func:`batch_labels`).
        samples_per_epoch: ``S``, samples per epoch over all workers.
        seed: keys every random number.
        fresh: ``True`` (on-the-fly generation): new samples every epoch;
            ``False``: the same ``S`` samples every epoch (a fixed dataset),
            generated once and then kept in memory (by each worker process:
            with ``num_workers > 0`` use ``persistent_workers=True`` to keep
            them across epochs; otherwise they are regenerated, the same
            samples up to floating-point rounding).
        flip: flip images horizontally with probability 1/2.
        crop_padding: random crop after padding by this many pixels (0: off).
        start: first global sample index.
        batch_size: samples per yielded batch (default ``chain.batch_size``);
            the chain still generates in batches of ``chain.batch_size``, so
            a small training batch need not make generation slow.

    Yields:
        ``(images, labels)``: ``[B, C, H, W]`` float32 on the CPU, in the
        chain's value range, and ``[B]`` int64; ``B`` is ``batch_size``
        except for the last batch of each worker. Use it with
        ``DataLoader(dataset, batch_size=None, num_workers=...)``.
    """

    def __init__(
        self,
        chain: Chain,
        samples_per_epoch: int,
        *,
        seed: int = DEFAULTS.seed,
        fresh: bool = True,
        flip: bool = False,
        crop_padding: int = 0,
        start: int = 0,
        batch_size: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(chain, Chain):
            raise InputTypeError(f"chain must be a gan_postproc.Chain, got {type(chain).__name__}")
        if chain.adapter is None:
            raise InputError("the chain has no adapter, so it cannot generate; build it as Chain(adapter, sampler=...)")
        self.chain = chain
        self.samples_per_epoch = check_count(samples_per_epoch, "samples_per_epoch")
        self.seed = seed
        self.fresh = bool(fresh)
        self.flip = bool(flip)
        self.crop_padding = check_count(crop_padding, "crop_padding", minimum=0)
        self.start = check_count(start, "start", minimum=0)
        self.batch_size = chain.batch_size if batch_size is None else check_count(batch_size, "batch_size")
        self.epoch = 0
        self._cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # images, labels, filled

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch the next iteration yields (new samples if ``fresh``, new transforms always)."""
        self.epoch = check_count(epoch, "epoch", minimum=0)

    def epoch_indices(self) -> torch.Tensor:
        """The current epoch's global sample indices, ``[S]`` int64, in the epoch's (seeded) order."""
        first = self.start + (self.epoch * self.samples_per_epoch if self.fresh else 0)
        indices = torch.arange(first, first + self.samples_per_epoch, dtype=torch.int64)
        order = torch.argsort(rng.uniform(self.seed, indices, (), "epoch_order", self.epoch, dtype=torch.float64))
        return indices[order]

    def worker_indices(self) -> torch.Tensor:
        """The contiguous part of :meth:`epoch_indices` that this ``DataLoader`` worker generates."""
        indices = self.epoch_indices()
        info = get_worker_info()
        if info is None:
            return indices
        return torch.tensor_split(indices, info.num_workers)[info.id]

    def augment(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Apply the configured random crop and flip, keyed by ``(seed, index, epoch)``."""
        if (self.flip or self.crop_padding) and images.dim() != 4:
            raise InputError(f"flip and crop_padding need images [N, C, H, W], got samples of shape {tuple(images.shape)}")
        images = random_crop(images, indices, self.seed, self.crop_padding, self.epoch, self.chain.adapter.value_range)
        return random_flip(images, indices, self.seed, self.epoch) if self.flip else images

    def _generate(self, indices: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(indices, images, labels)`` of the chain's samples, batch by batch, images on the CPU."""
        for batch in self.chain.iter_indices(indices, seed=self.seed):
            yield batch.indices.cpu(), batch.images.detach().float().cpu(), batch_labels(batch).cpu()

    def _fixed_samples(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels of ``indices`` of the fixed dataset, generating (once) the ones not kept yet."""
        if self._cache is None:
            self._cache = (torch.empty(0), torch.empty(0, dtype=torch.int64), torch.zeros(self.samples_per_epoch, dtype=torch.bool))
        images, labels, filled = self._cache
        missing = indices[~filled[indices - self.start]]
        if len(missing):
            for rows, new_images, new_labels in self._generate(missing):
                if images.numel() == 0:
                    images = torch.empty((self.samples_per_epoch, *new_images.shape[1:]), dtype=new_images.dtype)
                    labels = torch.empty(self.samples_per_epoch, dtype=torch.int64)
                images[rows - self.start], labels[rows - self.start] = new_images, new_labels
                filled[rows - self.start] = True
            self._cache = (images, labels, filled)
        return images[indices - self.start], labels[indices - self.start]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = self.worker_indices()
        if len(indices) == 0:
            return
        if self.fresh:
            for rows, images, labels in _rebatch(self._generate(indices), self.batch_size):
                yield self.augment(images, rows), labels
            return
        images, labels = self._fixed_samples(indices)
        for rows in torch.arange(len(indices)).split(self.batch_size):
            yield self.augment(images[rows], indices[rows]), labels[rows]
