"""The batch of samples that flows through a chain."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..errors import InputError, InputTypeError
from ..validation import ValueRange, check_images, check_labels, check_tensor, check_value_range
from .ranges import CHAIN_RANGE

if TYPE_CHECKING:
    from .priors import LatentPrior

__all__ = ["SampleBatch", "check_batch", "KEEP"]

_PER_SAMPLE_TENSORS = ("images", "latents", "labels", "indices")
_PER_SAMPLE_DICTS = ("activations", "scores", "provenance")


@dataclass(frozen=True)
class SampleBatch:
    """Samples with everything known about them, one row per sample.

    A batch is immutable: samplers create it, refiners return a changed copy
    (:meth:`replace`). Every field is either ``None``/empty or holds exactly
    ``len(batch)`` rows, in the same order.

    Attributes:
        images: ``[N, C, H, W]`` (or ``[N, D]`` for vector data) float32, in
            :attr:`value_range`. ``None`` until the generator has run.
        latents: ``[N, *latent_shape]`` float32, the generator inputs that
            produced ``images`` (after any latent-space refinement).
        labels: ``[N]`` int64 class indices in ``[0, num_classes)``, or
            ``None`` for unconditional generation.
        indices: ``[N]`` int64 global sample indices; every random number
            used for sample ``i`` is keyed by ``indices[i]``
            (see :mod:`gan_postproc.rng`).
        activations: generator activations by layer name, each ``[N, ...]``.
        scores: per-sample scores by name, each ``[N]`` float (for example
            ``"discriminator"``, ``"acceptance_probability"``,
            ``"importance_weight"``, ``"classifier_probability"``).
        provenance: per-sample records by name, each ``[N]`` tensor (for
            example ``"generator"``: which generator of an ensemble made it,
            ``"proposals"``: how many proposals it took).
        value_range: the range of ``images`` (``(-1, 1)`` inside a chain), or
            ``None`` for unbounded data such as 2-D points or diffusion latents.
    """

    images: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    indices: torch.Tensor | None = None
    activations: Mapping[str, torch.Tensor] = field(default_factory=dict)
    scores: Mapping[str, torch.Tensor] = field(default_factory=dict)
    provenance: Mapping[str, torch.Tensor] = field(default_factory=dict)
    value_range: ValueRange | None = CHAIN_RANGE

    def __post_init__(self) -> None:
        for group in _PER_SAMPLE_DICTS:
            if not isinstance(getattr(self, group), Mapping):
                raise InputTypeError(f"SampleBatch.{group} must be a dict of per-sample tensors, got {type(getattr(self, group)).__name__}")
        for name, value in self._per_sample_items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                got = "a 0-d tensor" if isinstance(value, torch.Tensor) else type(value).__name__
                raise InputTypeError(
                    f"SampleBatch.{name} must be a tensor with one row per sample ([N, ...]), got {got}; "
                    "convert it with torch.as_tensor and keep the batch dimension first"
                )
        if self.value_range is not None:
            object.__setattr__(self, "value_range", check_value_range(self.value_range, "SampleBatch.value_range"))
        sizes = {name: len(value) for name, value in self._per_sample_items()}
        if len(set(sizes.values())) > 1:
            listing = ", ".join(f"{name}: {size}" for name, size in sizes.items())
            raise InputError(f"every per-sample field of a SampleBatch must have the same length, got {listing}")

    def _per_sample_items(self) -> Iterable[tuple[str, torch.Tensor]]:
        for name in _PER_SAMPLE_TENSORS:
            value = getattr(self, name)
            if value is not None:
                yield name, value
        for group in _PER_SAMPLE_DICTS:
            for key, value in getattr(self, group).items():
                yield f"{group}[{key!r}]", value

    def __len__(self) -> int:
        for _, value in self._per_sample_items():
            return len(value)
        return 0

    @property
    def device(self) -> torch.device:
        """The device of the batch's tensors (CPU for an empty batch)."""
        for _, value in self._per_sample_items():
            return value.device
        return torch.device("cpu")

    def replace(self, **changes: Any) -> SampleBatch:
        """Return a copy with the given fields replaced (checked for consistent length)."""
        return dataclasses.replace(self, **changes)

    def with_scores(self, **scores: torch.Tensor) -> SampleBatch:
        """Return a copy with the given per-sample scores added or replaced."""
        return self.replace(scores={**self.scores, **scores})

    def with_provenance(self, **records: torch.Tensor) -> SampleBatch:
        """Return a copy with the given per-sample records added or replaced."""
        return self.replace(provenance={**self.provenance, **records})

    def _map(self, fn: Any) -> dict[str, Any]:
        """Apply ``fn`` to every per-sample tensor, keeping the structure."""
        fields: dict[str, Any] = {}
        for name in _PER_SAMPLE_TENSORS:
            value = getattr(self, name)
            fields[name] = None if value is None else fn(value)
        for group in _PER_SAMPLE_DICTS:
            fields[group] = {key: fn(value) for key, value in getattr(self, group).items()}
        return fields

    def select(self, index: torch.Tensor | slice) -> SampleBatch:
        """Rows picked by a boolean mask, an index tensor or a slice.

        The fields of a batch may live on different devices (the images on the
        generator's GPU, the indices on the CPU): an index tensor is moved to
        each field's device (once per device), wherever it was made.
        """
        if not isinstance(index, torch.Tensor):
            return SampleBatch(**self._map(lambda value: value[index]), value_range=self.value_range)
        n = len(self)
        if index.dtype == torch.bool and index.shape != (n,):
            raise InputError(f"a row mask must have shape [{n}] (one entry per sample), got {tuple(index.shape)}")
        if index.dtype != torch.bool and index.numel():
            low, high = torch.aminmax(index)
            if int(low) < -n or int(high) >= n:
                raise InputError(f"row indices must lie in [0, {n - 1}] for a batch of {n} samples, got [{int(low)}, {int(high)}]")
        on_device = {index.device: index}

        def pick(value: torch.Tensor) -> torch.Tensor:
            if value.device not in on_device:
                on_device[value.device] = index.to(value.device)
            return value[on_device[value.device]]

        return SampleBatch(**self._map(pick), value_range=self.value_range)

    def to(self, device: torch.device | str) -> SampleBatch:
        """The same batch with every tensor on ``device``."""
        return SampleBatch(**self._map(lambda value: value.to(device)), value_range=self.value_range)

    def detach(self) -> SampleBatch:
        """The same batch with every tensor detached from the autograd graph."""
        return SampleBatch(**self._map(lambda value: value.detach()), value_range=self.value_range)

    @staticmethod
    def cat(batches: Iterable[SampleBatch]) -> SampleBatch:
        """Concatenate batches row-wise; they must carry the same fields and value range."""
        batches = [b for b in batches]
        if not batches:
            raise InputError("SampleBatch.cat needs at least one batch, got none")
        first = batches[0]
        layout = _layout(first)
        for other in batches[1:]:
            if _layout(other) != layout or other.value_range != first.value_range:
                raise InputError(
                    "SampleBatch.cat needs batches with the same fields and value range, got "
                    f"{_layout(first)} {first.value_range} and {_layout(other)} {other.value_range}"
                )
        fields: dict[str, Any] = {}
        for name in _PER_SAMPLE_TENSORS:
            values = [getattr(b, name) for b in batches]
            fields[name] = None if values[0] is None else torch.cat(values)
        for group in _PER_SAMPLE_DICTS:
            fields[group] = {key: torch.cat([getattr(b, group)[key] for b in batches]) for key in getattr(first, group)}
        return SampleBatch(**fields, value_range=first.value_range)


def _layout(batch: SampleBatch) -> tuple[Any, ...]:
    tensors = tuple(getattr(batch, name) is not None for name in _PER_SAMPLE_TENSORS)
    groups = tuple(tuple(sorted(getattr(batch, group))) for group in _PER_SAMPLE_DICTS)
    return tensors + groups


#: ``check_batch(value_range=KEEP)``: accept the batch's own value range.
KEEP: Any = object()


def check_batch(
    batch: object,
    method: str,
    *,
    value_range: ValueRange | None = KEEP,
    num_classes: int | None = None,
    prior: LatentPrior | None = None,
    need_latents: bool = False,
) -> SampleBatch:
    """Check a :class:`~gan_postproc.SampleBatch` handed to ``method`` (a refiner) before any work.

    ``images`` must be set and pass :func:`check_images` in the batch's value
    range; ``value_range`` (unless ``KEEP``) is the range the method's models
    expect and must equal the batch's. ``labels``, if present, must be ``[N]``
    class indices (in ``[0, num_classes)`` when ``num_classes`` is known).
    ``latents`` are checked against ``prior`` when given (and required with
    ``need_latents``).
    """
    if not isinstance(batch, SampleBatch):
        raise InputTypeError(
            f"{method} refines a gan_postproc.SampleBatch, got {type(batch).__name__}; "
            "wrap images with SampleBatch(images=x, value_range=(-1, 1))"
        )
    if batch.images is None:
        raise InputError(f"{method} refines images, but the batch has none; build it with SampleBatch(images=...)")
    if value_range is not KEEP and batch.value_range != (None if value_range is None else tuple(value_range)):
        raise InputError(
            f"{method}: the batch's images are in value range {batch.value_range}, but the generator's samples are in "
            f"{value_range}; rescale them (gan_postproc.pipeline.ranges.rescale) and set value_range={value_range}"
        )
    check_images(batch.images, "batch.images", batch.value_range)
    if batch.labels is not None:
        labels = batch.labels
        if num_classes is not None:
            check_labels(labels, "batch.labels", num_classes=num_classes, n=len(batch))
        else:
            if isinstance(labels, torch.Tensor) and labels.dim() == 2:
                raise InputError(
                    f"batch.labels must be class indices of shape [N], got shape {tuple(labels.shape)}, which looks one-hot; "
                    "pass labels.argmax(dim=1)"
                )
            check_tensor(labels, "batch.labels", ndim=1, floating=False)
            if int(labels.min()) < 0:
                raise InputError(f"batch.labels must be class indices >= 0, got a minimum of {int(labels.min())}")
    if need_latents and batch.latents is None:
        raise InputError(f"{method} needs the batch's latents (it re-runs the generator); keep them in the batch (latents=...)")
    if prior is not None and batch.latents is not None:
        prior.check(batch.latents, "batch.latents", len(batch))
    return batch
