"""Latent priors: the distribution a generator's inputs are drawn from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from .. import rng
from ..errors import InputError
from ..validation import check_finite, check_tensor

__all__ = ["LatentPrior"]

PriorKind = Literal["normal", "uniform", "truncated_normal"]


@dataclass(frozen=True)
class LatentPrior:
    """A factorised latent prior p0(z) of a given shape.

    Attributes:
        shape: per-sample latent shape, e.g. ``(128,)``.
        kind: ``"normal"`` (N(0, 1) per coordinate), ``"uniform"``
            (U[low, high] per coordinate, as the DOT 2-D models use) or
            ``"truncated_normal"`` (N(0, 1) conditioned on ``low <= z <= high``
            per coordinate: BigGAN-style truncation, StudioGAN's
            ``truncated_normal``).
        low, high: bounds of the uniform or truncated normal prior.
    """

    shape: tuple[int, ...]
    kind: PriorKind = "normal"
    low: float = -1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("normal", "uniform", "truncated_normal"):
            raise InputError(f"prior kind must be 'normal', 'uniform' or 'truncated_normal', got {self.kind!r}")
        shape = (self.shape,) if isinstance(self.shape, int) else self.shape
        if (
            not isinstance(shape, (tuple, list))
            or not shape
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)
        ):
            raise InputError(f"latent shape must be a positive int or a non-empty tuple of positive ints, got {self.shape!r}")
        object.__setattr__(self, "shape", tuple(shape))
        if self.bounded:
            # A uniform prior needs a finite box; a truncated normal may be one-sided (low=-inf or high=inf).
            for name in ("low", "high"):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or (
                    self.kind == "uniform" and not math.isfinite(value)
                ):
                    bound = "a finite number" if self.kind == "uniform" else "a number (+-inf allowed)"
                    raise InputError(f"{self.kind} prior: {name} must be {bound}, got {value!r}")
                object.__setattr__(self, name, float(value))
            if not self.low < self.high:
                raise InputError(f"{self.kind} prior needs low < high, got low={self.low}, high={self.high}")

    @property
    def bounded(self) -> bool:
        """True when the support is the box ``[low, high]`` per coordinate."""
        return self.kind != "normal"

    @property
    def dim(self) -> int:
        """Number of latent coordinates per sample."""
        return math.prod(self.shape)

    def sample(self, seed: int, indices: torch.Tensor, *keys: int | str, device: torch.device | str | None = None) -> torch.Tensor:
        """Draw ``[N, *shape]`` float32 latents keyed by sample index (see :mod:`gan_postproc.rng`).

        ``device``: where they are made (default: the indices' device); pass
        the generator's device so a batch's latents are made there in one go.
        """
        if self.kind == "normal":
            return rng.normal(seed, indices, self.shape, "latent", *keys, device=device)
        if self.kind == "uniform":
            u = rng.uniform(seed, indices, self.shape, "latent", *keys, device=device)
            return self.low + (self.high - self.low) * u
        # Inverse-CDF sampling of the truncated normal, in float64 so the tails stay exact.
        u = rng.uniform(seed, indices, self.shape, "latent", *keys, dtype=torch.float64, device=device)
        cdf_low, cdf_high = self._normal_cdf_bounds()
        z = torch.special.ndtri(cdf_low + u * (cdf_high - cdf_low))
        return z.clamp(self.low, self.high).to(torch.float32)

    def _normal_cdf_bounds(self) -> tuple[float, float]:
        return 0.5 * math.erfc(-self.low / math.sqrt(2)), 0.5 * math.erfc(-self.high / math.sqrt(2))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Log-density ``log p0(z)`` per sample, ``[N]`` (``-inf`` outside a uniform's support)."""
        check_tensor(z, "z", shape=(None, *self.shape), floating=True, allow_empty=True)
        flat = z.reshape(z.shape[0], -1)
        gaussian = -0.5 * (flat**2).sum(1) - 0.5 * self.dim * math.log(2 * math.pi)
        if self.kind == "normal":
            return gaussian
        inside = ((flat >= self.low) & (flat <= self.high)).all(1)
        if self.kind == "uniform":
            value = torch.full_like(flat[:, 0], -self.dim * math.log(self.high - self.low))
        else:
            cdf_low, cdf_high = self._normal_cdf_bounds()
            value = gaussian - self.dim * math.log(cdf_high - cdf_low)
        return torch.where(inside, value, torch.full_like(value, -math.inf))

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Map ``z`` into the prior's support: clip for a bounded prior, identity for a normal one."""
        if self.bounded:
            return z.clamp(self.low, self.high)
        return z

    def check(self, z: object, name: str = "latents", n: int | None = None) -> torch.Tensor:
        """Validate latents: ``[N, *shape]`` floating, finite, inside the support."""
        z = check_tensor(z, name, shape=(n, *self.shape), floating=True)
        check_finite(z, name)
        if self.bounded:
            low, high = float(z.detach().min()), float(z.detach().max())
            if low < self.low or high > self.high:
                raise InputError(
                    f"{name} must lie in the {self.kind} prior's support [{self.low:g}, {self.high:g}], "
                    f"got values in [{low:.4g}, {high:.4g}]"
                )
        return z

    @classmethod
    def of(cls, shape: int | Sequence[int], kind: PriorKind = "normal", **bounds: float) -> LatentPrior:
        """Build a prior from an int or a shape tuple."""
        return cls(shape=(shape,) if isinstance(shape, int) else tuple(shape), kind=kind, **bounds)
