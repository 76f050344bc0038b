"""The counter-based RNG: exact values, index keying, distribution."""

from __future__ import annotations

import hashlib

import torch

from gan_postproc import rng

MASK = (1 << 64) - 1


def _mix_reference(x: int) -> int:
    """SplitMix64's finaliser on Python ints (independent of torch's int64 arithmetic)."""
    x &= MASK
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def _key_reference(key: int | str) -> int:
    if isinstance(key, str):
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return key & MASK


def _uniform_reference(seed: int, index: int, keys: tuple, count: int) -> list[float]:
    golden = 0x9E3779B97F4A7C15
    state = _key_reference(seed)
    for key in keys:
        state = (_mix_reference(state ^ _key_reference(key)) + golden) & MASK
    per_sample = _mix_reference(_mix_reference((index * golden + state) & MASK) ^ state)
    words = [_mix_reference((per_sample + (j + 1) * golden) & MASK) for j in range(count)]
    return [((w >> 11) + 0.5) * 2.0**-53 for w in words]


def test_uniform_matches_an_independent_python_implementation():
    indices = torch.tensor([0, 1, 7, 123456789, 2**40])
    got = rng.uniform(42, indices, (3,), "latent", 5, dtype=torch.float64)
    for row, index in enumerate(indices.tolist()):
        expected = _uniform_reference(42, index, ("latent", 5), 3)
        assert got[row].tolist() == expected


def test_same_index_same_numbers_whatever_the_batch():
    all_rows = rng.normal(3, torch.arange(100), (5,), "z")
    some_rows = rng.normal(3, torch.tensor([97, 4, 50]), (5,), "z")
    assert torch.equal(some_rows, all_rows[[97, 4, 50]])


def test_streams_seeds_and_indices_differ():
    base = rng.uniform(0, torch.arange(50), (4,), "a")
    assert not torch.equal(base, rng.uniform(1, torch.arange(50), (4,), "a"))
    assert not torch.equal(base, rng.uniform(0, torch.arange(50), (4,), "b"))
    assert not torch.equal(base, rng.uniform(0, torch.arange(1, 51), (4,), "a"))
    assert len(set(base.flatten().tolist())) == base.numel()


def test_distributions_have_the_right_moments():
    n = 100_000
    u = rng.uniform(5, torch.arange(n), (), "u")
    assert 0 < float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.005
    z = rng.normal(5, torch.arange(n), (2,), "z")
    assert abs(float(z.mean())) < 0.01
    assert abs(float(z.std()) - 1) < 0.01
    assert abs(float(torch.corrcoef(z.T)[0, 1])) < 0.01
    counts = rng.randint(5, torch.arange(n), 10, "k").bincount(minlength=10)
    assert int(counts.min()) > 9_500 and int(counts.max()) < 10_500


def test_bad_keys_and_indices_are_refused():
    import pytest

    with pytest.raises(TypeError):
        rng.uniform(0, torch.arange(3), (), 1.5)
    with pytest.raises(ValueError):
        rng.uniform(0, torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError):
        rng.randint(0, torch.arange(3), 0)
