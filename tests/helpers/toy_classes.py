"""Small generators with known class structure and a classifier that reads it, for the classifier-in-the-loop tests.

Every image is ``[N, 1, 4, 4]`` in ``[-1, 1]``: ``tanh(2 * P[y] + noise * W z)``
where ``P[y]`` is a fixed +-1 pattern of class ``y``. The classifier scores
each class by how well the image matches its pattern, so it is right for
clean samples and unsure for noisy ones. The unconditional generator picks
the class from the first latent coordinate with unequal probabilities
(``CLASS_SHARES``), so its class mix is imbalanced by construction.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_postproc import Classifier, TorchAdapter

NUM_CLASSES = 3
#: Class shares of the unconditional toy generator.
CLASS_SHARES = (0.6, 0.3, 0.1)
LATENT = 5


def _patterns() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 2, (NUM_CLASSES, 16), generator=g).float() * 2 - 1


def _mixing() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(LATENT - 1, 16, generator=g)


class ToyConditional(nn.Module):
    """``G(z [N, 5], y [N]) -> [N, 1, 4, 4]``: the class pattern plus latent noise."""

    nz = LATENT

    def __init__(self, noise: float = 0.8) -> None:
        super().__init__()
        self.register_buffer("patterns", _patterns())
        self.register_buffer("mixing", _mixing())
        self.noise = noise

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = 2 * self.patterns[y] + self.noise * z[:, 1:] @ self.mixing
        return torch.tanh(x).view(-1, 1, 4, 4)


class ToyUnconditional(ToyConditional):
    """``G(z [N, 5]) -> [N, 1, 4, 4]``; the class is the bucket of ``Phi(z[:, 0])`` in ``CLASS_SHARES``."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = 0.5 * (1 + torch.erf(z[:, 0] / 2**0.5))
        edges = torch.cumsum(torch.tensor(CLASS_SHARES), 0)[:-1]
        y = torch.bucketize(u, edges)
        return super().forward(z, y)


class PatternClassifier(nn.Module):
    """Logits ``[N, 3]``: ``sharpness`` times the mean agreement of the image with each class pattern."""

    num_classes = NUM_CLASSES

    def __init__(self, sharpness: float = 6.0) -> None:
        super().__init__()
        self.register_buffer("patterns", _patterns())
        self.sharpness = sharpness

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sharpness * x.flatten(1) @ self.patterns.T / 16


def classifier() -> Classifier:
    return Classifier(PatternClassifier(), num_classes=NUM_CLASSES)


def conditional_adapter(**kwargs) -> TorchAdapter:
    return TorchAdapter(ToyConditional(), num_classes=NUM_CLASSES, **kwargs)


def unconditional_adapter(**kwargs) -> TorchAdapter:
    return TorchAdapter(ToyUnconditional(), **kwargs)


class ToyConfusedConditional(ToyConditional):
    """Like :class:`ToyConditional`, but label 2 comes out as class 0 whenever ``z[:, 0] < 0`` (half the time)."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = torch.where((y == 2) & (z[:, 0] < 0), torch.zeros_like(y), y)
        return super().forward(z, y)


def confused_adapter(**kwargs) -> TorchAdapter:
    return TorchAdapter(ToyConfusedConditional(), num_classes=NUM_CLASSES, **kwargs)

