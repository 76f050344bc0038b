"""The DOT paper's pretrained 2-D WGAN-GP models and their real data.

Discriminator Optimal Transport (Tanaka, NeurIPS 2019) publishes a generator
and a WGAN-GP critic for each of two 2-D data sets, ``25gaussians`` and
``swissroll`` (chainer ``.npz`` files, MIT licence; copies with the
attribution ship in ``gan_postproc/assets/dot2d/``). This module rebuilds the
two networks as torch modules, loads the published weights, draws the real
data the way the DOT demo does, and wraps everything in a
:class:`~gan_postproc.pipeline.torch_adapter.TorchAdapter`.

Architectures (chainer ``Linear`` weights are stored ``(out, in)``, as in torch):

* generator: ``z ~ U[-1, 1]^2 -> l0 (2->256) -> LeakyReLU(0.2) -> l1 (256->256)
  -> LeakyReLU(0.2) -> l2 (256->256) -> LeakyReLU(0.2) -> l4 (256->2)``;
* critic (unbounded score, higher = more real): ``x -> l1 (2->512) -> LeakyReLU(0.2)
  -> l2 (512->512) -> LeakyReLU(0.2) -> l3 (512->512) -> LeakyReLU(0.2) -> l4 (512->1)``.

Measured with these files (exact EMD by optimal assignment, 1000 generated
vs 1000 real points): about 0.155 on 25gaussians and 0.115 on swissroll.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import make_swiss_roll
from torch import nn

from ..errors import CheckpointError, InputError
from ..files.loading import load_state_dict_strict, read_npz
from ..pipeline.priors import LatentPrior
from ..pipeline.scoring import Discriminator, ScoreKind
from ..pipeline.torch_adapter import TorchAdapter
from ..validation import check_count
from .assets import asset_path

__all__ = [
    "TOY2D_DATASETS",
    "Toy2DGenerator",
    "Toy2DCritic",
    "load_toy2d_generator",
    "load_toy2d_critic",
    "sample_toy2d_real",
    "toy2d_prior",
    "toy2d_adapter",
]

Toy2DDataset = Literal["25gaussians", "swissroll"]

#: The data sets the DOT paper publishes 2-D models for.
TOY2D_DATASETS: tuple[str, ...] = ("25gaussians", "swissroll")

#: Negative slope of chainer's ``F.leaky_relu`` default, used by both networks.
LEAKY_SLOPE = 0.2

#: Standard deviation of each of the 25 Gaussians before the global rescaling.
_GAUSSIAN_STD = 0.05
#: The DOT demo divides the 25-Gaussians data by this ("stdev").
_GAUSSIAN_SCALE = 2.828
#: Noise of ``make_swiss_roll`` and the rescaling the DOT demo applies.
_SWISSROLL_NOISE = 0.25
_SWISSROLL_SCALE = 7.5


class _LeakyMLP(nn.Module):
    """Linear layers with LeakyReLU(0.2) between them, named like the chainer originals."""

    def __init__(self, layers: list[tuple[str, int, int]]) -> None:
        super().__init__()
        for name, fan_in, fan_out in layers:
            self.add_module(name, nn.Linear(fan_in, fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, last = self.children()
        for layer in hidden:
            x = F.leaky_relu(layer(x), LEAKY_SLOPE)
        return last(x)


class Toy2DGenerator(_LeakyMLP):
    """The DOT 2-D generator: ``[N, 2]`` latents in ``[-1, 1]`` -> ``[N, 2]`` points (unbounded).

    Layers ``l0`` (2->256), ``l1``, ``l2`` (256->256), ``l4`` (256->2).
    """

    latent_dim = 2

    def __init__(self) -> None:
        super().__init__([("l0", 2, 256), ("l1", 256, 256), ("l2", 256, 256), ("l4", 256, 2)])


class Toy2DCritic(_LeakyMLP):
    """The DOT 2-D WGAN-GP critic: ``[N, 2]`` points -> ``[N, 1]`` scores (higher = more real).

    Layers ``l1`` (2->512), ``l2``, ``l3`` (512->512), ``l4`` (512->1).
    """

    def __init__(self) -> None:
        super().__init__([("l1", 2, 512), ("l2", 512, 512), ("l3", 512, 512), ("l4", 512, 1)])


def _check_dataset(dataset: str) -> str:
    if dataset not in TOY2D_DATASETS:
        raise InputError(f"2-D data set must be one of {list(TOY2D_DATASETS)}, got {dataset!r}")
    return dataset


def _chainer_to_torch_key(key: str, source: str) -> str:
    """``"l0/W"`` -> ``"l0.weight"``, ``"l0/b"`` -> ``"l0.bias"``."""
    layer, _, param = key.rpartition("/")
    names = {"W": "weight", "b": "bias"}
    if not layer or param not in names:
        raise CheckpointError(f"{source}: key {key!r} is not a chainer Linear parameter ('<layer>/W' or '<layer>/b')")
    return f"{layer}.{names[param]}"


def _load_npz(module: nn.Module, filename: str) -> nn.Module:
    path = asset_path("dot2d", filename)
    arrays = read_npz(path, "shipped DOT weights file", fix="reinstall gan-postproc")
    state = {_chainer_to_torch_key(k, str(path)): torch.from_numpy(v.astype(np.float32)) for k, v in arrays.items()}
    return load_state_dict_strict(module, state, str(path)).eval()


def load_toy2d_generator(dataset: Toy2DDataset) -> Toy2DGenerator:
    """The pretrained DOT generator for ``dataset`` (``"25gaussians"`` or ``"swissroll"``), in eval mode."""
    return _load_npz(Toy2DGenerator(), f"G_{_check_dataset(dataset)}_WGAN-GP.npz")


def load_toy2d_critic(dataset: Toy2DDataset) -> Toy2DCritic:
    """The pretrained DOT WGAN-GP critic for ``dataset``, in eval mode."""
    return _load_npz(Toy2DCritic(), f"D_{_check_dataset(dataset)}_WGAN-GP.npz")


def sample_toy2d_real(dataset: Toy2DDataset, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` real points of ``dataset``, ``[n, 2]`` float32, drawn as the DOT demo draws them.

    * ``25gaussians``: centres ``(2x, 2y)`` for ``x, y in {-2..2}``, equally
      many points per centre (``n`` need not be a multiple of 25: the first
      ``n mod 25`` centres get one more), ``N(0, 0.05^2)`` noise, shuffled,
      then everything divided by 2.828.
    * ``swissroll``: ``sklearn.datasets.make_swiss_roll(n, noise=0.25)[:, [0, 2]] / 7.5``.

    Deterministic: the same ``(dataset, n, seed)`` gives the same points.
    """
    _check_dataset(dataset)
    n = check_count(n, "n")
    if dataset == "swissroll":
        points = make_swiss_roll(n, noise=_SWISSROLL_NOISE, random_state=seed)[0][:, [0, 2]] / _SWISSROLL_SCALE
        return torch.from_numpy(points.astype(np.float32))
    generator = np.random.default_rng(seed)
    grid = np.array([(2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)])
    centres = grid[np.arange(n) % len(grid)]
    points = centres + generator.normal(0.0, _GAUSSIAN_STD, size=(n, 2))
    points = points[generator.permutation(n)] / _GAUSSIAN_SCALE
    return torch.from_numpy(points.astype(np.float32))


def toy2d_prior() -> LatentPrior:
    """The DOT 2-D models' latent prior, U[-1, 1]^2."""
    return LatentPrior.of(2, "uniform", low=-1.0, high=1.0)


def toy2d_adapter(dataset: Toy2DDataset) -> TorchAdapter:
    """A :class:`TorchAdapter` for the DOT models of ``dataset``.

    Prior U[-1, 1]^2; samples are unbounded 2-D points (``value_range``
    ``None``); the critic is attached with output ``"critic"`` (a WGAN score,
    not a density ratio: density-ratio samplers must calibrate it first).
    Split points: ``latent``, ``l0``, ``l1``, ``l2``, ``l4``, ``output``
    (the ``l*`` activations are taken before the LeakyReLU).
    """
    critic = Discriminator(load_toy2d_critic(dataset), ScoreKind.CRITIC, input_range=None)
    return TorchAdapter(load_toy2d_generator(dataset), prior=toy2d_prior(), output_range=None, discriminator=critic)
