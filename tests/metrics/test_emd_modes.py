"""Exact EMD against brute force; mode statistics on a constructed Gaussian mixture."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gan_postproc.errors import InputError
from gan_postproc.metrics import ModeStatistics, emd, kl_divergence, mode_statistics


def _brute_force_emd(a: torch.Tensor, b: torch.Tensor) -> float:
    n = a.shape[0]
    cost = torch.cdist(a.double(), b.double())
    return min(float(sum(cost[i, p[i]] for i in range(n))) / n for p in itertools.permutations(range(n)))


@pytest.mark.parametrize("seed", range(4))
def test_emd_matches_brute_force_over_permutations(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n, d = 4 + seed % 3, 2 + seed % 2
    a, b = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) + 0.5
    assert emd(a, b) == pytest.approx(_brute_force_emd(a, b), rel=1e-12)


def test_emd_of_a_set_to_itself_is_zero_and_a_shift_costs_its_length() -> None:
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert emd(x, x[torch.randperm(50, generator=torch.Generator().manual_seed(1))]) == 0.0
    # any matching costs at least |mean difference| = |v|, and the identity matching costs exactly |v|
    assert emd(x, x + torch.tensor([0.3, 0.4], dtype=torch.float64)) == pytest.approx(0.5, rel=1e-12)


def test_emd_refuses_unequal_sets_and_bad_values() -> None:
    x = torch.zeros(5, 2)
    with pytest.raises(InputError, match="same size and dimension"):
        emd(x, torch.zeros(6, 2))
    with pytest.raises(InputError, match="same size and dimension"):
        emd(x, torch.zeros(5, 3))
    with pytest.raises(InputError, match="NaN/inf"):
        emd(x, torch.full((5, 2), float("nan")))
    with pytest.raises(InputError, match="empty"):
        emd(x[:0], x[:0])


GRID = torch.tensor([[x, y] for x in (-2.0, 0.0, 2.0) for y in (-2.0, 0.0, 2.0)])  # 9 modes
STD = 0.1


def _mixture(counts: list[int], far: int) -> torch.Tensor:
    """counts[m] points near mode m (offsets of 1 and 2 std, inside 3 std), then `far` points 1.0 away from every mode."""
    parts = []
    offsets = torch.tensor([[STD, 0.0], [0.0, -2 * STD], [-1.5 * STD, 1.5 * STD]])
    for m, c in enumerate(counts):
        parts.append(GRID[m] + offsets[torch.arange(c) % 3])
    parts.append(torch.full((far, 2), 1.0))  # (1, 1): distance sqrt(2) from the nearest modes
    return torch.cat(parts)


def test_mode_statistics_on_a_constructed_mixture() -> None:
    counts = [10, 10, 10, 10, 20, 0, 0, 10, 10]
    samples = _mixture(counts, far=20)
    result = mode_statistics(samples, GRID, STD)
    assert result.n == 100
    assert result.good_fraction == pytest.approx(0.8)
    assert result.modes_covered == 7
    expected_hist = torch.tensor(counts, dtype=torch.float64) / 80
    assert torch.allclose(result.histogram, expected_hist)
    # KL(uniform real || model), by hand: two dropped modes cost (1/9 + e) log((1/9 + e)/e) each
    e = 1e-12
    by_hand = sum((1 / 9 + e) * math.log((1 / 9 + e) / (p + e)) for p in expected_hist.tolist())
    assert result.kl == pytest.approx(by_hand, rel=1e-12)
    assert result.kl == pytest.approx(kl_divergence(torch.full((9,), 1 / 9), expected_hist, epsilon=e))


def test_mode_statistics_threshold_real_reference_and_weights() -> None:
    samples = _mixture([3] * 9, far=0)
    perfect = mode_statistics(samples, GRID, STD)
    assert perfect.good_fraction == 1.0 and perfect.kl == pytest.approx(0.0, abs=1e-9)
    # the offsets are 1, 2 and 1.5 * sqrt(2) = 2.12 std from the mode
    assert mode_statistics(samples, GRID, STD, num_std=1.5).good_fraction == pytest.approx(1 / 3)
    assert mode_statistics(samples, GRID, STD, num_std=2.05).good_fraction == pytest.approx(2 / 3)
    real = _mixture([1, 1, 1, 1, 5, 1, 1, 1, 1], far=4)
    with_real = mode_statistics(samples, GRID, STD, real=real)
    weights = [1 / 13] * 4 + [5 / 13] + [1 / 13] * 4
    assert with_real.kl == pytest.approx(mode_statistics(samples, GRID, STD, weights=weights).kl, rel=1e-9)
    assert with_real.kl > 0.1


def test_mode_statistics_streams_and_has_no_histogram_without_good_samples() -> None:
    samples = _mixture([4, 0, 2, 6, 1, 0, 3, 5, 7], far=9)
    metric = ModeStatistics(GRID, STD)
    for chunk in samples[torch.randperm(len(samples), generator=torch.Generator().manual_seed(0))].split(7):
        metric.update(chunk)
    streamed, whole = metric.compute(), mode_statistics(samples, GRID, STD)
    assert (streamed.good_fraction, streamed.kl, streamed.modes_covered, streamed.n) == (
        whole.good_fraction,
        whole.kl,
        whole.modes_covered,
        whole.n,
    )
    nothing = mode_statistics(torch.full((5, 2), 1.0), GRID, STD)
    assert nothing.good_fraction == 0.0 and math.isnan(nothing.kl) and nothing.modes_covered == 0


def test_mode_statistics_bad_inputs() -> None:
    with pytest.raises(InputError, match="not both"):
        ModeStatistics(GRID, STD, real=GRID, weights=[1 / 9] * 9)
    with pytest.raises(InputError, match="same feature network"):
        mode_statistics(torch.zeros(4, 3), GRID, STD)
    with pytest.raises(InputError, match="std must be a finite number > 0"):
        mode_statistics(GRID, GRID, 0.0)
    with pytest.raises(InputError, match="must sum to 1"):
        ModeStatistics(GRID, STD, weights=[0.5] * 9)
    with pytest.raises(InputError, match="no real sample lies within"):
        ModeStatistics(GRID, STD, real=torch.full((3, 2), 1.0))
    with pytest.raises(InputError, match="at least one sample"):
        ModeStatistics(GRID, STD).compute()
