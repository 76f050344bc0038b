"""Counter-based random numbers keyed by (seed, sample index, stream, round).

Every random number a chain draws for sample ``i`` is a pure function of the
run's seed, ``i`` and a few integer or string keys (which stream, which
proposal round). So the random inputs of a run do not depend on the batch
size, on how samples are split across processes, or on the order batches run
in, and any single sample can be regenerated from its index alone. (Network
outputs are then byte-identical for identical batches; across different batch
sizes they agree up to the floating-point rounding of batched matrix products,
which BLAS libraries compute with kernels chosen by batch size.)

The generator is SplitMix64's finaliser applied to a running hash of the keys;
it is fully vectorised over the sample indices and runs on the device that
uses the numbers (``device=``; the indices are copied there once), with
only integer operations up to the uniforms (exact and identical on every
device), which are turned into floats in float64 before casting. The hash of
the keys is pure Python and cached, so a batch's random numbers cost a few
vectorised operations and no per-sample work.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence

import torch

__all__ = ["stream_key", "uniform", "normal", "randint"]

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """Reinterpret an unsigned 64-bit constant as torch's signed int64."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)
_GOLDEN = _signed(0x9E3779B97F4A7C15)


#: ``_LOW_BITS[b]``: the mask of the low ``64 - b`` bits (a logical right shift by ``b`` is ``(x >> b) & _LOW_BITS[b]``).
_LOW_BITS = tuple((1 << (64 - bits)) - 1 for bits in range(64))


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical (unsigned) right shift of an int64 tensor (a new tensor)."""
    shifted = x >> bits
    shifted &= _LOW_BITS[bits]
    return shifted


def _mix_(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser, in place on an int64 tensor: a bijection of 64-bit words with good avalanche.

    In place, so the batch's random words cost one allocation per shift
    rather than one per operation (int64 products wrap modulo 2**64 on
    every device, which is the arithmetic the finaliser needs).
    """
    x ^= _shift_right(x, 30)
    x *= _MIX1
    x ^= _shift_right(x, 27)
    x *= _MIX2
    x ^= _shift_right(x, 31)
    return x


def _mix_int(x: int) -> int:
    """SplitMix64's finaliser on a Python int (for the per-call key state: no tensor ops)."""
    x &= _MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@functools.lru_cache(maxsize=4096, typed=True)  # typed: True and 1 are different keys (a bool is refused)
def stream_key(key: int | str) -> int:
    """Map a stream key (an int, or a name such as ``"latent"``) to a signed 64-bit int.

    Strings are hashed with BLAKE2b so the mapping is stable across processes
    and Python versions (unlike ``hash``).
    """
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise TypeError(f"stream keys must be int or str, got {type(key).__name__}")
    if isinstance(key, str):
        return _signed(int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little"))
    return _signed(key)


@functools.lru_cache(maxsize=4096, typed=True)
def _key_state(seed: int, keys: tuple[int | str, ...]) -> int:
    """The signed 64-bit state of ``(seed, *keys)``: pure Python, cached (a sampler asks for the same keys every batch)."""
    state = stream_key(seed) & _MASK64
    for key in keys:
        state = (_mix_int(state ^ (stream_key(key) & _MASK64)) + _GOLDEN) & _MASK64
    return _signed(state)


def _bits(
    seed: int, indices: torch.Tensor, keys: Sequence[int | str], count: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Return ``[N, count]`` int64 random words for the given sample indices, computed on ``device``.

    ``device`` defaults to the indices' device; the indices are moved there
    first (one copy of ``N`` integers), so a whole batch's words come from a
    few vectorised integer operations on the device that will use them.
    """
    if not isinstance(indices, torch.Tensor) or indices.dim() != 1:
        shape = tuple(indices.shape) if isinstance(indices, torch.Tensor) else type(indices).__name__
        raise ValueError(f"indices must be a 1-D tensor of sample indices, got shape {shape}")
    for key in keys:
        stream_key(key)  # refuse a bad key with a TypeError before caching anything
    state = _key_state(seed, tuple(keys))
    x = indices.to(device=device, dtype=torch.int64) * _GOLDEN
    x += state
    x = _mix_(x)
    x ^= state
    per_sample = _mix_(x)
    counters = torch.arange(1, count + 1, dtype=torch.int64, device=per_sample.device)
    counters *= _GOLDEN
    return _mix_(per_sample[:, None] + counters[None, :])


def _unit_interval(words: torch.Tensor) -> torch.Tensor:
    """float64 values ``(w >>> 11 + 0.5) / 2**53`` in the open interval (0, 1): exact, so equal on every device."""
    values = _shift_right(words, 11).to(torch.float64)  # 53 random bits
    values += 0.5
    values *= 2.0**-53
    return values


def uniform(
    seed: int,
    indices: torch.Tensor,
    shape: Sequence[int] = (),
    *keys: int | str,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Uniform numbers in the open interval (0, 1).

    Args:
        seed: the run's global seed.
        indices: ``[N]`` int64 global sample indices.
        shape: per-sample shape; the result is ``[N, *shape]``.
        *keys: stream keys (ints or names) that separate independent streams,
            e.g. ``"latent", round``.
        dtype: floating dtype of the result.
        device: where to compute and return them (default: the indices' device).
            The values do not depend on it.
    """
    count = math.prod(shape)
    values = _unit_interval(_bits(seed, indices, keys, count, device))
    return values.reshape(indices.shape[0], *shape).to(dtype)


def normal(
    seed: int,
    indices: torch.Tensor,
    shape: Sequence[int] = (),
    *keys: int | str,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Standard normal numbers, ``[N, *shape]``, by the Box-Muller transform (in float64), on ``device``.

    The uniforms behind them are exact on every device; ``log``, ``sqrt`` and
    ``cos`` in float64 may differ between CPU and CUDA libraries in the last
    float64 bit, far below the float32 result's precision.
    """
    count = math.prod(shape)
    u = _unit_interval(_bits(seed, indices, keys, 2 * count, device))
    radius = u[:, :count].log_()
    radius *= -2.0
    radius.sqrt_()
    angle = u[:, count:]
    angle *= 2.0 * math.pi
    radius *= angle.cos_()
    return radius.reshape(indices.shape[0], *shape).to(dtype)


def randint(
    seed: int, indices: torch.Tensor, high: int, *keys: int | str, device: torch.device | str | None = None
) -> torch.Tensor:
    """Integers uniform in ``[0, high)``, one per index, ``[N]`` int64, on ``device`` (default: the indices')."""
    if high < 1:
        raise ValueError(f"high must be >= 1, got {high}")
    u = uniform(seed, indices, (), *keys, dtype=torch.float64, device=device)
    return torch.clamp((u * high).to(torch.int64), max=high - 1)
