"""Real samples for the density-ratio family: drawn from a tensor or a sampler function, keyed by seed.

The density-ratio samplers and :func:`~gan_postproc.plugins.density_ratio.calibrate_discriminator`
take real data as a tensor ``[N, ...]`` or as a function ``(n, seed) -> [n, ...]`` that draws fresh
samples (unlike the iterables of :mod:`gan_postproc.real_data`, these can be re-drawn by seed, so
calibration and held-out sets never overlap). Setup work draws its generated samples with
:func:`draw_prior_samples`, on streams of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from gan_postproc import rng
from gan_postproc.errors import InputError
from gan_postproc.factories import call_factory
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batching import row_slices
from gan_postproc.validation import check_finite, check_in_range, check_tensor

from .defaults import DEFAULTS

__all__ = ["RealData", "load_real_data", "real_order", "real_samples", "prior_batches", "draw_prior_samples"]

#: Real data: a tensor ``[N, ...]`` of real samples in chain convention, a
#: function ``(n, seed) -> [n, ...]`` drawing them (like ``BenchmarkContext.real_data``),
#: or, from the command line, ``"package.module:function"`` naming a function
#: that returns either (``--sampler-option real_data=my_data:real``).
RealData = torch.Tensor | Callable[[int, int], torch.Tensor] | str


def load_real_data(spec: str) -> torch.Tensor | Callable[[int, int], torch.Tensor]:
    """Call the function named ``"package.module:function"``; it returns a real-data tensor or a function ``(n, seed)``."""
    real = call_factory(spec, "real_data", "a tensor of real samples or a function (n, seed)")
    if not (isinstance(real, torch.Tensor) or callable(real)):
        raise InputError(f"real_data {spec!r} returned {type(real).__name__}; it must return a tensor or a function (n, seed)")
    return real


def real_order(seed: int, n: int, stream: str) -> torch.Tensor:
    """A permutation of ``range(n)`` keyed by ``(seed, stream)``: how a real-data tensor is shuffled."""
    return torch.argsort(rng.uniform(seed, torch.arange(n), (), stream, dtype=torch.float64))


def real_samples(
    real_data: RealData, n: int, seed: int, stream: str, value_range: tuple[float, float] | None
) -> torch.Tensor:
    """``n`` real samples (fewer if a tensor holds fewer), checked: finite, in ``value_range``.

    A tensor is shuffled by :func:`real_order` before its first ``n`` rows are
    taken, so its order does not matter. A function is called as
    ``real_data(n, s)`` with a seed ``s < DEFAULTS.real_data_seed_limit``
    derived from ``(seed, stream)``, so two uses with different streams
    (fitting a calibration, holding data out) draw different samples from a
    sampler of fresh data.
    """
    if isinstance(real_data, torch.Tensor):
        data = check_tensor(real_data, "real_data", floating=True)
        data = data[real_order(seed, len(data), stream)[:n]]
    elif callable(real_data):
        derived = int(rng.randint(seed, torch.zeros(1, dtype=torch.int64), DEFAULTS.real_data_seed_limit, stream)[0])
        data = check_tensor(real_data(n, derived), "real_data(n, seed)", floating=True)
        if len(data) != n:
            raise InputError(f"real_data(n, seed) must return n={n} samples, got {len(data)}")
    else:
        raise InputError(
            f"real_data must be a tensor of real samples [N, ...] or a function (n, seed) -> [n, ...], got {type(real_data).__name__}"
        )
    check_finite(data, "real_data")
    check_in_range(data, "real_data", value_range)
    return data.float()


def prior_batches(
    adapter: Adapter, n: int, seed: int, stream: str, *, offset: int = 0
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
    """``n`` latents, labels and generated samples for setup work (burn-in, calibration, probes), a batch at a time.

    Keyed by ``(seed, stream, index)`` with indices ``offset .. offset + n - 1``,
    a stream separate from the one sampling uses, so setup never reuses a
    sample's random numbers. Batches of :func:`~gan_postproc.pipeline.batching.work_batch_size`
    samples, made on the adapter's device and generated without gradients, so
    only one batch is in memory at a time.

    Yields:
        ``(latents [b, *latent_shape], labels [b] or None, samples [b, ...])`` on the adapter's device.
    """
    for rows in row_slices(n):
        indices = torch.arange(offset + rows.start, offset + rows.stop)
        latents = adapter.prior.sample(seed, indices, stream, device=adapter.device)
        labels = None
        if adapter.num_classes is not None:
            labels = rng.randint(seed, indices, adapter.num_classes, stream, "label", device=adapter.device)
        with torch.no_grad():
            samples = adapter.generate_finite(latents, labels)
        yield latents, labels, samples


def draw_prior_samples(
    adapter: Adapter, n: int, seed: int, stream: str, *, offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """All ``n`` samples of :func:`prior_batches`, gathered on the CPU (for sets a method must hold, such
    as a held-out calibration set; device memory stays one batch).

    Returns:
        ``(latents [n, *latent_shape], labels [n] or None, samples [n, ...])`` on the CPU.
    """
    parts = [(z.cpu(), None if y is None else y.cpu(), x.cpu()) for z, y, x in prior_batches(adapter, n, seed, stream, offset=offset)]
    latents, labels, samples = zip(*parts)
    return torch.cat(latents), None if labels[0] is None else torch.cat(labels), torch.cat(samples)
