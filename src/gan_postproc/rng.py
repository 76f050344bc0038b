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
it is fully vectorised over the sample indices, uses only integer operations
(exact and identical on every device), and turns bits into floats in float64
before casting, so CPU and CUDA agree.
"""

from __future__ import annotations

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


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical (unsigned) right shift of an int64 tensor."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser: a bijection of 64-bit words with good avalanche."""
    x = x ^ _shift_right(x, 30)
    x = x * _MIX1
    x = x ^ _shift_right(x, 27)
    x = x * _MIX2
    return x ^ _shift_right(x, 31)


def _mix_int(x: int) -> int:
    """SplitMix64's finaliser on a Python int (for the per-call key state: no tensor ops)."""
    x &= _MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


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


def _bits(seed: int, indices: torch.Tensor, keys: Sequence[int | str], count: int) -> torch.Tensor:
    """Return ``[N, count]`` int64 random words for the given sample indices."""
    if indices.dim() != 1:
        raise ValueError(f"indices must be a 1-D tensor of sample indices, got shape {tuple(indices.shape)}")
    state = stream_key(seed) & _MASK64
    for key in keys:
        state = (_mix_int(state ^ (stream_key(key) & _MASK64)) + _GOLDEN) & _MASK64
    state = _signed(state)
    per_sample = _mix(_mix(indices.to(torch.int64) * _GOLDEN + state) ^ state)
    counters = torch.arange(1, count + 1, dtype=torch.int64, device=indices.device) * _GOLDEN
    return _mix(per_sample[:, None] + counters[None, :])


def uniform(
    seed: int,
    indices: torch.Tensor,
    shape: Sequence[int] = (),
    *keys: int | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform numbers in the open interval (0, 1).

    Args:
        seed: the run's global seed.
        indices: ``[N]`` int64 global sample indices.
        shape: per-sample shape; the result is ``[N, *shape]``.
        *keys: stream keys (ints or names) that separate independent streams,
            e.g. ``"latent", round``.
        dtype: floating dtype of the result.
    """
    count = math.prod(shape)
    words = _bits(seed, indices, keys, count)
    mantissa = _shift_right(words, 11).to(torch.float64)  # 53 random bits
    values = (mantissa + 0.5) * (2.0**-53)
    return values.reshape(indices.shape[0], *shape).to(dtype)


def normal(
    seed: int,
    indices: torch.Tensor,
    shape: Sequence[int] = (),
    *keys: int | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal numbers, ``[N, *shape]``, by the Box-Muller transform."""
    count = math.prod(shape)
    u = uniform(seed, indices, (2 * count,), *keys, dtype=torch.float64)
    radius = torch.sqrt(-2.0 * torch.log(u[:, :count]))
    values = radius * torch.cos(2.0 * math.pi * u[:, count:])
    return values.reshape(indices.shape[0], *shape).to(dtype)


def randint(seed: int, indices: torch.Tensor, high: int, *keys: int | str) -> torch.Tensor:
    """Integers uniform in ``[0, high)``, one per index, ``[N]`` int64."""
    if high < 1:
        raise ValueError(f"high must be >= 1, got {high}")
    u = uniform(seed, indices, (), *keys, dtype=torch.float64)
    return torch.clamp((u * high).to(torch.int64), max=high - 1)
