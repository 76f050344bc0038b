"""The tiny generators most tests build adapters from (seeded, so every test sees the same weights)."""

from __future__ import annotations

import torch
from torch import nn


class TinyGenerator(nn.Sequential):
    """z [N, 4] -> x [N, 6] in [-1, 1]; a Sequential so it splits at every child."""

    nz = 4

    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 6), nn.Tanh())


class TinyConditionalGenerator(nn.Module):
    """(z [N, 4], y [N]) -> x [N, 6]; named submodules, not a Sequential."""

    nz = 4

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.embed = nn.Embedding(num_classes, 4)
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(16, 6)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.body(torch.cat([z, self.embed(y)], 1))))
