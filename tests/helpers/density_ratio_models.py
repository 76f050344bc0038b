"""A known density-ratio toy: two 1-D Gaussians and the exact optimal discriminator.

p_g = N(MU_G, S_G^2) is the generator (an affine map of z ~ N(0, 1)),
p_data = N(MU_DATA, S_DATA^2) the data. With S_G > S_DATA the density ratio
r = p_data / p_g is bounded, so rejection sampling is valid, and the optimal
discriminator D* = p_data / (p_data + p_g) has the exact logit
log p_data(x) - log p_g(x). Module-level factories so CLI tests can name them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_postproc import Discriminator, TorchAdapter

MU_G, S_G = 0.0, 1.5
MU_DATA, S_DATA = 0.8, 0.8


class AffineGenerator(nn.Module):
    """z [N, 1] -> MU_G + S_G z: samples of p_g."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return MU_G + S_G * z


def _log_normal(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)


class ExactLogit(nn.Module):
    """x [N, 1] -> log p_data(x) - log p_g(x), the logit of the optimal discriminator."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, 0].double()
        return (_log_normal(x, MU_DATA, S_DATA) - _log_normal(x, MU_G, S_G)).float()


class LinearCritic(nn.Module):
    """A WGAN-style critic (unbounded score, higher = more real): a small MLP, not a density ratio."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(1, 16), nn.Tanh())
        self.out = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


def real_data(n: int, seed: int) -> torch.Tensor:
    """``n`` samples of p_data, ``[n, 1]``."""
    generator = torch.Generator().manual_seed(seed)
    return MU_DATA + S_DATA * torch.randn(n, 1, generator=generator)


def data_cdf(x: torch.Tensor) -> torch.Tensor:
    """CDF of p_data."""
    return 0.5 * (1 + torch.erf((x.double() - MU_DATA) / (S_DATA * math.sqrt(2))))


def exact_discriminator() -> Discriminator:
    return Discriminator(ExactLogit(), "logit", input_range=None)


def toy_adapter() -> TorchAdapter:
    """The generator with the exact optimal discriminator attached."""
    return TorchAdapter(AffineGenerator(), latent_shape=1, output_range=None, discriminator=exact_discriminator())


def critic_adapter() -> TorchAdapter:
    """The generator with a critic attached (declared ``"critic"``)."""
    return TorchAdapter(AffineGenerator(), latent_shape=1, output_range=None, discriminator=LinearCritic(), discriminator_output="critic")


def real_data_tensor() -> torch.Tensor:
    """4000 real samples, for ``--real-data`` of the CLI."""
    return real_data(4000, 123)
