"""FID: closed form, self-distance, streaming, twins, custom feature modules, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from gan_postproc.errors import InputError
from gan_postproc.metrics import FID, ModuleFeatures, fid


def _gaussian(n: int, mean: list[float], std: list[float], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(mean), generator=g, dtype=torch.float64) * torch.tensor(std, dtype=torch.float64) + torch.tensor(
        mean, dtype=torch.float64
    )


def _closed_form(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to a and b (Heusel et al. Eq. 6), via scipy's sqrtm."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * covmean))


def test_fid_of_two_gaussians_matches_the_closed_form() -> None:
    real = _gaussian(4000, [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], seed=0)
    fake = _gaussian(4000, [1.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0], seed=1)
    value = fid(real, fake)
    assert value == pytest.approx(_closed_form(real.numpy(), fake.numpy()), rel=1e-6)
    # population value: ||mu||^2 + sum(1 + s^2 - 2 s) = 1 + 4 * (1 + 4 - 4) = 5
    assert value == pytest.approx(5.0, abs=0.25)


def test_fid_of_a_set_to_itself_is_zero() -> None:
    x = _gaussian(500, [0.5, -1.0, 2.0], [1.0, 0.3, 2.0], seed=2)
    assert abs(fid(x, x)) < 1e-6
    assert fid(x, x + 1.0) == pytest.approx(3.0, rel=1e-6)  # a shift by (1, 1, 1) moves only the means


def test_streaming_in_batches_equals_one_batch_and_the_functional() -> None:
    real = _gaussian(300, [0.0] * 5, [1.0] * 5, seed=3)
    fake = _gaussian(301, [0.3] * 5, [1.5] * 5, seed=4)
    metric = FID()
    for chunk in real.split(64):
        metric.update(real=chunk)
    for chunk in fake.split(50):
        metric.update(fake=chunk)
    streamed = metric.compute()
    assert streamed == pytest.approx(fid(real, fake), rel=1e-9)
    one = FID()
    one.update(real=real, fake=fake)
    assert one.compute() == pytest.approx(streamed, rel=1e-9)


def test_reset_keeps_the_real_statistics_when_asked() -> None:
    real = _gaussian(200, [0.0] * 3, [1.0] * 3, seed=5)
    fake_a = _gaussian(200, [1.0] * 3, [1.0] * 3, seed=6)
    fake_b = _gaussian(200, [2.0] * 3, [1.0] * 3, seed=7)
    metric = FID()
    metric.update(real=real, fake=fake_a)
    metric.reset(keep_real=True)
    metric.update(fake=fake_b)
    assert metric.compute() == pytest.approx(fid(real, fake_b), rel=1e-9)
    metric.reset()
    with pytest.raises(InputError, match="before any update"):
        metric.compute()


def test_custom_feature_module_on_8x8_grey_images_and_on_2d_points() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 8)).eval()
    images = torch.rand(64, 1, 8, 8) * 2 - 1
    other = (torch.rand(64, 1, 8, 8) * 2 - 1).clamp(-1, 0)
    features = ModuleFeatures(net)
    with torch.no_grad():
        feats_a, feats_b = net(images), net(other)
    assert fid(images, other, features=features, batch_size=7) == pytest.approx(fid(feats_a, feats_b), rel=1e-5)
    assert fid(images, other, features=features) > 0.01

    points = _gaussian(100, [0.0, 0.0], [1.0, 1.0], seed=8).float()
    identity = nn.Identity()
    assert fid(points, points * 2, features=identity) == pytest.approx(fid(points, points * 2), rel=1e-5)


def test_bad_inputs_give_clear_errors() -> None:
    x = _gaussian(10, [0.0, 0.0], [1.0, 1.0], seed=9)
    with pytest.raises(InputError, match=r"\[N, F\].*features=<nn.Module>"):
        fid(torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 8, 8))
    with pytest.raises(InputError, match="same feature network"):
        fid(x, torch.zeros(10, 3, dtype=torch.float64))
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(InputError, match="NaN/inf"):
        fid(x, bad)
    with pytest.raises(InputError, match="empty"):
        fid(x, x[:0])
    with pytest.raises(InputError, match="at least 2"):
        fid(x, x[:1])
    with pytest.raises(InputError, match=r"\[-1, 1\]"):
        fid(torch.full((4, 1, 8, 8), 3.0), torch.zeros(4, 1, 8, 8), features=nn.Flatten())
    metric = FID()
    metric.update(real=x)
    with pytest.raises(InputError, match="same feature network"):
        metric.update(fake=torch.zeros(5, 3, dtype=torch.float64))
    with pytest.raises(InputError, match="real=... and/or fake=..."):
        metric.update()
