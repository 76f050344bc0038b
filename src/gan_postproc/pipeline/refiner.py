"""Post-sampling refiners: plugins that improve samples after they were generated."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import ClassVar

from ..errors import InputError
from .adapter import Adapter
from .batch import SampleBatch, check_batch

__all__ = ["Refiner"]


class Refiner(abc.ABC):
    """Base class of refiner plugins. Subclasses set the class attribute ``name``.

    A refiner receives a :class:`SampleBatch` whose ``images`` are set and
    returns a batch with the same rows in the same order (same ``indices``),
    usually with changed ``images`` (and, for latent-space refiners, changed
    ``latents``). It never adds or drops samples.

    ``adapter`` is ``None`` when refining standalone images (no generator);
    refiners that need the generator (latent- or layer-space refinement) must
    say so with a clear error in that case.
    """

    name: ClassVar[str]

    def setup(self, adapter: Adapter | None, seed: int) -> None:
        """Prepare for refining samples of ``adapter`` (estimate constants, check models).

        Called by the chain before its first batch; must be deterministic given
        ``seed``. The default does nothing.
        """

    def fit_standalone(self, batches: Iterable[SampleBatch]) -> None:
        """Fit, from the images to be refined, what :meth:`setup` would fit from a generator.

        For standalone images (no adapter) there is no generator to draw a
        calibration set from; ``gan-postproc refine`` streams the whole input
        set through this method once before refining it (for example, BIGRoC
        estimates its pseudo-label debiasing offsets here). ``batches`` may
        be consumed only once. Must be deterministic. The default does nothing.
        """

    def check_batch(self, batch: object, adapter: Adapter | None, *, need_latents: bool = False) -> SampleBatch:
        """Check ``batch`` before refining it (see :func:`~gan_postproc.pipeline.batch.check_batch`).

        With an ``adapter``, the batch must hold samples of its value range
        and, for a conditional generator, labels in its classes; with
        ``need_latents`` (refiners that re-run the generator), latents of its
        prior's shape, finite and inside its support.
        """
        if adapter is None:
            if need_latents:
                raise InputError(f"{self.name} re-runs the generator, but there is none (standalone images); run it in a Chain with an adapter")
            return check_batch(batch, self.name)
        return check_batch(
            batch,
            self.name,
            value_range=adapter.value_range,
            num_classes=adapter.num_classes,
            prior=adapter.prior if need_latents else None,
            need_latents=need_latents,
        )

    @abc.abstractmethod
    def refine(self, batch: SampleBatch, adapter: Adapter | None) -> SampleBatch:
        """Return the refined batch (same length and order as ``batch``)."""

    def describe(self) -> dict[str, object]:
        """Settings that identify this refiner's output (used in run manifests)."""
        return {"name": self.name}
