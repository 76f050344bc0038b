"""How many samples a setup or scoring pass puts through a network at once.

Setup work (a burn-in, a calibration set, a probe, a pool of proposals) can
be far larger than one batch: DRS scores 10,000 burn-in samples, SIR scores
``pool_size`` proposals per sample. Peak memory must be set by the batch,
never by such counts, so every such pass runs in batches of
:func:`work_batch_size`: the running chain's ``batch_size`` (a
:class:`~gan_postproc.Chain` sets it around its ``setup`` and around every
batch it samples), or ``DEFAULTS.batch_size`` when a method is used outside a
chain. Only one batch of generated samples is on the device at a time; what
a pass keeps (logits, sums, indices) is one number or so per sample.

The batching never changes a result: every random number is keyed by sample
index (:mod:`gan_postproc.rng`), so a sample is the same in any batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from ..defaults import DEFAULTS
from ..validation import check_count

__all__ = ["work_batch_size", "using_batch_size", "row_slices"]

_BATCH_SIZE: ContextVar[int | None] = ContextVar("gan_postproc_work_batch_size", default=None)


def work_batch_size() -> int:
    """Samples per network call of a setup or scoring pass: the running chain's ``batch_size``, else ``DEFAULTS.batch_size``."""
    size = _BATCH_SIZE.get()
    return DEFAULTS.batch_size if size is None else size


@contextlib.contextmanager
def using_batch_size(size: int) -> Iterator[None]:
    """Run the block with :func:`work_batch_size` returning ``size`` (what a chain does around its work)."""
    token = _BATCH_SIZE.set(check_count(size, "batch_size"))
    try:
        yield
    finally:
        _BATCH_SIZE.reset(token)


def row_slices(n: int, size: int | None = None) -> Iterator[slice]:
    """Slices ``[begin, begin + size)`` covering ``range(n)`` in order; ``size`` defaults to :func:`work_batch_size`."""
    size = work_batch_size() if size is None else check_count(size, "batch size")
    for begin in range(0, n, size):
        yield slice(begin, min(begin + size, n))
