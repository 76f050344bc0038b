"""Latent samplers: plugins that decide which latents and labels to generate from."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from .. import rng
from ..errors import InputError
from ..validation import check_count, check_seed, check_tensor
from .adapter import Adapter
from .batch import SampleBatch

__all__ = ["SampleRequest", "SamplerStats", "LatentSampler", "PriorSampler"]


@dataclass(frozen=True)
class SampleRequest:
    """What a chain asks a sampler for: one sample per index.

    Attributes:
        indices: ``[n]`` int64 global sample indices. The sampler returns
            exactly one sample per index, in this order.
        seed: the run's seed; with ``indices`` it keys every random number.
        labels: ``[n]`` int64 requested classes for a conditional generator,
            or ``None`` to let the sampler draw them.
        latents: optional first proposals ``[n, *latent_shape]`` (the caller's
            ``z`` in the drop-in wrapper); later proposals come from the RNG.
        attempt: 0 for a first request; k > 0 when the chain re-requests
            samples that a ``gan_postproc_filter_batch`` hook rejected, so
            that the k-th attempt draws fresh random numbers.
    """

    indices: torch.Tensor
    seed: int
    labels: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    attempt: int = 0

    def __post_init__(self) -> None:
        indices = self.indices
        if not isinstance(indices, torch.Tensor) or indices.dim() != 1 or indices.is_floating_point() or indices.dtype == torch.bool:
            got = f"{indices.dtype} {tuple(indices.shape)}" if isinstance(indices, torch.Tensor) else type(indices).__name__
            raise InputError(f"SampleRequest.indices must be a 1-D integer tensor of global sample indices, got {got}")
        check_seed(self.seed, "SampleRequest.seed")
        check_count(self.attempt, "SampleRequest.attempt", minimum=0)
        for name in ("labels", "latents"):
            value = getattr(self, name)
            if value is not None:
                check_tensor(value, f"SampleRequest.{name}", allow_empty=True)
                if value.dim() == 0 or value.shape[0] != indices.shape[0]:
                    raise InputError(f"SampleRequest.{name} must hold one row per index ({indices.shape[0]}), got shape {tuple(value.shape)}")

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def subset(self, rows: torch.Tensor) -> SampleRequest:
        """The request restricted to the given rows (index tensor or mask)."""
        return SampleRequest(
            indices=self.indices[rows],
            seed=self.seed,
            labels=None if self.labels is None else self.labels[rows],
            latents=None if self.latents is None else self.latents[rows],
            attempt=self.attempt,
        )

    def uniform(self, shape: Sequence[int], *keys: int | str, device: torch.device | str | None = None) -> torch.Tensor:
        """``[n, *shape]`` uniforms in (0, 1), keyed by this request's seed, indices and attempt, made on ``device``."""
        return rng.uniform(self.seed, self.indices, shape, self.attempt, *keys, device=device)

    def normal(self, shape: Sequence[int], *keys: int | str, device: torch.device | str | None = None) -> torch.Tensor:
        """``[n, *shape]`` standard normals, keyed like :meth:`uniform`."""
        return rng.normal(self.seed, self.indices, shape, self.attempt, *keys, device=device)

    def draw_latents(self, adapter: Adapter, *keys: int | str, round: int = 0) -> torch.Tensor:
        """Latents from the adapter's prior for proposal ``round``, made on the adapter's device in one call.

        Round 0 uses :attr:`latents` when the caller supplied them.
        """
        if round == 0 and self.latents is not None:
            return adapter.prior.check(self.latents, "latents", len(self)).to(adapter.device)
        return adapter.prior.sample(self.seed, self.indices, self.attempt, round, *keys, device=adapter.device)

    def draw_labels(self, adapter: Adapter, *keys: int | str) -> torch.Tensor | None:
        """Requested labels, or labels uniform over the classes (on the adapter's device); ``None`` if unconditional."""
        if adapter.num_classes is None:
            return None
        if self.labels is not None:
            return self.labels.to(adapter.device)
        return rng.randint(self.seed, self.indices, adapter.num_classes, "label", self.attempt, *keys, device=adapter.device)


@dataclass
class SamplerStats:
    """Running counts of proposals and acceptances, overall and per class.

    Attributes:
        proposals: latents proposed so far.
        accepted: proposals accepted so far.
        proposals_per_class / accepted_per_class: the same, per label, for
            samplers that know labels (empty otherwise).
    """

    proposals: int = 0
    accepted: int = 0
    proposals_per_class: dict[int, int] = field(default_factory=dict)
    accepted_per_class: dict[int, int] = field(default_factory=dict)

    @property
    def acceptance_rate(self) -> float:
        """Accepted / proposed (1.0 before anything was proposed)."""
        return self.accepted / self.proposals if self.proposals else 1.0

    def acceptance_rate_per_class(self) -> dict[int, float]:
        """Acceptance rate for each class seen so far."""
        return {k: self.accepted_per_class.get(k, 0) / n for k, n in sorted(self.proposals_per_class.items()) if n}

    def record(self, accepted: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Count a round of proposals; ``accepted`` is a ``[n]`` bool mask."""
        self.proposals += int(accepted.numel())
        self.accepted += int(accepted.sum())
        if labels is not None:
            for label, total, hits in _per_class(labels, accepted):
                self.proposals_per_class[label] = self.proposals_per_class.get(label, 0) + total
                self.accepted_per_class[label] = self.accepted_per_class.get(label, 0) + hits

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly summary."""
        return {
            "proposals": self.proposals,
            "accepted": self.accepted,
            "acceptance_rate": self.acceptance_rate,
            "acceptance_rate_per_class": {str(k): v for k, v in self.acceptance_rate_per_class().items()},
        }


def _per_class(labels: torch.Tensor, accepted: torch.Tensor) -> list[tuple[int, int, int]]:
    labels = labels.detach().cpu()
    accepted = accepted.detach().cpu()
    classes, totals = labels.unique(return_counts=True)
    hits = torch.zeros_like(totals)
    hits.scatter_add_(0, torch.searchsorted(classes, labels[accepted]), torch.ones_like(labels[accepted]))
    return [(int(c), int(t), int(h)) for c, t, h in zip(classes, totals, hits)]


class LatentSampler(abc.ABC):
    """Base class of sampler plugins. Subclasses set the class attribute ``name``.

    A sampler turns a :class:`SampleRequest` into a :class:`SampleBatch` with
    exactly one sample per requested index, in order, holding at least
    ``latents`` (and ``labels`` for a conditional generator). It may also fill
    ``images`` when it had to generate them anyway (rejection samplers score
    generated images); otherwise the chain generates them.

    Attributes:
        name: unique registry name.
        stats: proposals and acceptances so far.
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self.stats = SamplerStats()

    def setup(self, adapter: Adapter, seed: int) -> None:
        """Prepare for sampling from ``adapter`` (fit, calibrate, check models).

        Called by the chain before its first batch. Must be deterministic given
        ``seed`` and must raise a clear error if the adapter lacks a model the
        method needs. The default does nothing.
        """

    def begin_run(self) -> None:
        """Called by the chain at the start of every run, after :meth:`setup`.

        Samplers with running state (state that changes from batch to batch,
        such as running class counts) reset it here, so that the same seed
        gives the same run however often it is repeated. The default does nothing.
        """

    @abc.abstractmethod
    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        """Return exactly ``len(request)`` samples for ``request.indices``, in order."""

    def describe(self) -> dict[str, object]:
        """Settings that identify this sampler's output (used in run manifests)."""
        return {"name": self.name}


class PriorSampler(LatentSampler):
    """Plain sampling from the generator's prior: the baseline every method is measured against."""

    name = "prior"

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        latents = request.draw_latents(adapter)
        labels = request.draw_labels(adapter)
        self.stats.record(torch.ones(len(request), dtype=torch.bool), labels)
        return SampleBatch(latents=latents, labels=labels, indices=request.indices, value_range=adapter.value_range)
