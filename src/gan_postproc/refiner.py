"""Post-sampling refiners: plugins that improve samples after they were generated."""

from __future__ import annotations

import abc
from typing import ClassVar

from .adapter import Adapter
from .batch import SampleBatch

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

    @abc.abstractmethod
    def refine(self, batch: SampleBatch, adapter: Adapter | None) -> SampleBatch:
        """Return the refined batch (same length and order as ``batch``)."""

    def describe(self) -> dict[str, object]:
        """Settings that identify this refiner's output (used in run manifests)."""
        return {"name": self.name}
