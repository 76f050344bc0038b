"""Precision / recall / density / coverage against the authors' prdc package."""

from __future__ import annotations

import pytest
import torch
from prdc import compute_prdc
from torch import nn

from gan_postproc.errors import InputError
from gan_postproc.metrics import PRDC, ModuleFeatures, knn_radii, prdc

KEYS = ("precision", "recall", "density", "coverage")


def _features(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


@pytest.mark.parametrize(("k", "shift", "scale"), [(3, 0.0, 1.0), (5, 0.5, 0.7), (8, -0.3, 1.6)])
def test_matches_the_prdc_package_on_fixed_features(k: int, shift: float, scale: float) -> None:
    real = _features(300, 16, seed=k, shift=0.0)
    fake = _features(250, 16, seed=100 + k, shift=shift, scale=scale)
    reference = compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)
    # a tiny block forces many chunks of rows and columns
    ours = prdc(real, fake, k=k, block=997)
    for key in KEYS:
        assert ours[key] == pytest.approx(float(reference[key]), abs=1e-12), key


def test_knn_radius_is_the_kth_neighbour_excluding_the_point_itself() -> None:
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    assert knn_radii(points, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(points, 2, block=1).tolist() == [3.0, 2.0, 3.0, 6.0]


def test_identical_sets_score_one_on_precision_recall_coverage() -> None:
    x = _features(200, 8, seed=1)
    result = prdc(x, x.clone(), k=5)
    assert result["precision"] == result["recall"] == result["coverage"] == 1.0
    assert result["density"] == pytest.approx(1.0, abs=0.15)


def test_streaming_equals_one_batch_and_the_functional() -> None:
    real, fake = _features(180, 6, seed=2), _features(170, 6, seed=3, shift=0.4)
    metric = PRDC(k=4, block=500)
    for chunk in real.split(50):
        metric.update(real=chunk)
    for chunk in fake.split(37):
        metric.update(fake=chunk)
    streamed = metric.compute()
    assert streamed == prdc(real, fake, k=4)
    assert metric.compute() == streamed  # cached real radii give the same answer
    metric.reset(keep_real=True)
    metric.update(fake=fake[:60])
    assert metric.compute() == prdc(real, fake[:60], k=4)


def test_on_images_through_a_feature_module() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 12)).eval()
    real = torch.rand(60, 1, 8, 8) * 2 - 1
    fake = torch.rand(60, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        expected = prdc(net(real.flatten(1).view(60, 1, 8, 8)), net(fake), k=3)
    assert prdc(real, fake, features=ModuleFeatures(net), k=3, batch_size=16) == expected


def test_bad_inputs_give_clear_errors() -> None:
    x = _features(10, 3, seed=4)
    message = r"the generated set holds 5 samples but at least 6 are needed \(the k-NN radius with k=5"
    with pytest.raises(InputError, match=message):
        prdc(x, x[:5], k=5)
    with pytest.raises(InputError, match="the real set holds 4 samples"):
        prdc(x[:4], x, k=5)
    with pytest.raises(InputError, match="same feature network"):
        prdc(x, _features(10, 4, seed=5), k=2)
    with pytest.raises(InputError, match="k must be an integer >= 1"):
        prdc(x, x, k=0)
    with pytest.raises(InputError, match="needs real=... and fake="):
        PRDC().compute()
    nan = x.clone()
    nan[0, 0] = float("inf")
    with pytest.raises(InputError, match="NaN/inf"):
        prdc(x, nan, k=2)
