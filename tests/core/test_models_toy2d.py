"""The DOT paper's 2-D models: loading, forward values, real data, EMD sanity, adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from sklearn.datasets import make_swiss_roll

from gan_postproc import Chain
from gan_postproc.errors import CheckpointError, InputError
from gan_postproc.models.assets import asset_path
from gan_postproc.models.toy2d import (
    TOY2D_DATASETS,
    _chainer_to_torch_key,
    load_toy2d_critic,
    load_toy2d_generator,
    sample_toy2d_real,
    toy2d_adapter,
)
from gan_postproc.pipeline.scoring import ScoreKind


def numpy_mlp(path: str, layers: list[str], x: np.ndarray) -> np.ndarray:
    """Forward pass of a chainer Linear/LeakyReLU(0.2) MLP straight from the .npz, in float64."""
    with np.load(path) as weights:
        h = x.astype(np.float64)
        for i, layer in enumerate(layers):
            h = h @ weights[f"{layer}/W"].astype(np.float64).T + weights[f"{layer}/b"]
            if i < len(layers) - 1:
                h = np.where(h > 0, h, 0.2 * h)
    return h


def exact_emd(a: torch.Tensor, b: torch.Tensor) -> float:
    cost = cdist(a.numpy(), b.numpy())
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


@pytest.mark.parametrize("dataset", TOY2D_DATASETS)
def test_generator_and_critic_match_a_numpy_forward_pass(dataset: str) -> None:
    z = np.random.default_rng(0).uniform(-1, 1, size=(64, 2))
    points = np.random.default_rng(1).normal(0, 1, size=(64, 2))
    generator, critic = load_toy2d_generator(dataset), load_toy2d_critic(dataset)
    with torch.no_grad():
        torch_x = generator(torch.tensor(z, dtype=torch.float32)).double().numpy()
        torch_d = critic(torch.tensor(points, dtype=torch.float32)).double().numpy()
    numpy_x = numpy_mlp(str(asset_path("dot2d", f"G_{dataset}_WGAN-GP.npz")), ["l0", "l1", "l2", "l4"], z)
    numpy_d = numpy_mlp(str(asset_path("dot2d", f"D_{dataset}_WGAN-GP.npz")), ["l1", "l2", "l3", "l4"], points)
    np.testing.assert_allclose(torch_x, numpy_x, atol=1e-4)
    np.testing.assert_allclose(torch_d, numpy_d, atol=1e-4)


# Computed once with numpy_mlp above from the published .npz files (float64); pins the files themselves.
KNOWN = {
    "25gaussians": ([[0.006694, 0.020116], [1.130858, 1.021410]], 0.423153),
    "swissroll": ([[0.708856, -0.120031], [0.105435, 0.993786]], 0.172457),
}


@pytest.mark.parametrize("dataset", TOY2D_DATASETS)
def test_known_output_values(dataset: str) -> None:
    expected_x, expected_d = KNOWN[dataset]
    with torch.no_grad():
        x = load_toy2d_generator(dataset)(torch.tensor([[0.0, 0.0], [0.5, -0.5]]))
        d = load_toy2d_critic(dataset)(torch.tensor([[0.1, 0.2]]))
    np.testing.assert_allclose(x.numpy(), expected_x, atol=1e-4)
    assert d.shape == (1, 1)
    assert float(d) == pytest.approx(expected_d, abs=1e-4)


def test_real_samplers_are_seeded_and_follow_the_dot_recipe() -> None:
    a = sample_toy2d_real("25gaussians", 1000, seed=3)
    assert a.shape == (1000, 2) and a.dtype == torch.float32
    assert torch.equal(a, sample_toy2d_real("25gaussians", 1000, seed=3))
    assert not torch.equal(a, sample_toy2d_real("25gaussians", 1000, seed=4))
    # Every point sits near one of the 25 centres (2x, 2y) / 2.828, 40 points per centre.
    scaled = a.double() * 2.828
    centres = torch.round(scaled / 2) * 2
    assert centres.abs().max() <= 4
    assert (scaled - centres).std() == pytest.approx(0.05, rel=0.1)
    _, counts = torch.unique(centres, dim=0, return_counts=True)
    assert counts.tolist() == [40] * 25

    roll = sample_toy2d_real("swissroll", 500, seed=7)
    expected = make_swiss_roll(500, noise=0.25, random_state=7)[0][:, [0, 2]] / 7.5
    np.testing.assert_allclose(roll.numpy(), expected, atol=1e-6)


def test_emd_of_the_pretrained_generators() -> None:
    """The README's numbers: 0.15-0.16 (25gaussians), 0.11-0.12 (swissroll), 1000 vs 1000 points.

    On 25gaussians the generator is far above the sampling floor (real vs real,
    about 0.01). On swissroll the floor of 1000-point sets is itself about 0.083
    and the generator only about 1.3x above it (measured over 5 seeds).
    """
    for dataset, (low, high), margin, seeds in (("25gaussians", (0.13, 0.18), 5.0, 3), ("swissroll", (0.09, 0.14), 1.1, 5)):
        adapter = toy2d_adapter(dataset)
        generated, real_vs_real = [], []
        for seed in range(seeds):
            with torch.no_grad():
                x = Chain(adapter, batch_size=1000).sample(1000, seed=seed).images
            real = sample_toy2d_real(dataset, 1000, seed=seed)
            generated.append(exact_emd(x, real))
            real_vs_real.append(exact_emd(sample_toy2d_real(dataset, 1000, seed=100 + seed), real))
        assert low < np.mean(generated) < high, (dataset, generated)
        assert np.mean(generated) > margin * np.mean(real_vs_real), (dataset, generated, real_vs_real)


def test_adapter_declares_the_dot_conventions() -> None:
    adapter = toy2d_adapter("25gaussians")
    assert adapter.prior.kind == "uniform" and adapter.prior.shape == (2,)
    assert (adapter.prior.low, adapter.prior.high) == (-1.0, 1.0)
    assert adapter.value_range is None and adapter.num_classes is None
    assert adapter.discriminator.output is ScoreKind.CRITIC and adapter.discriminator.input_range is None
    assert adapter.layer_names() == ["latent", "l0", "l1", "l2", "l4", "output"]
    z = adapter.prior.sample(0, torch.arange(8))
    with torch.no_grad():
        x = adapter.generate(z)
        scores = adapter.discriminator(x)
        again = adapter.generate_from(adapter.generate_to(z, None, "l1"), z, None, "l1")
    assert x.shape == (8, 2) and scores.shape == (8,)
    torch.testing.assert_close(again, x)
    # Unbounded data is passed to the critic unchanged, and a critic is not a density ratio.
    torch.testing.assert_close(scores, adapter.discriminator.module(x)[:, 0])
    with pytest.raises(Exception, match="critic"):
        adapter.discriminator.logit(x)


def test_bad_names_give_clear_errors() -> None:
    with pytest.raises(InputError, match="25gaussians"):
        load_toy2d_generator("8gaussians")  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="chainer Linear"):
        _chainer_to_torch_key("l0/gamma", "G.npz")
