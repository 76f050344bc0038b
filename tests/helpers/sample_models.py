"""Module-level model factories for tests that run in other processes (CLI, accelerate, SIGKILL)."""

from __future__ import annotations

import torch
from torch import nn

from gan_postproc import Chain, TorchAdapter


class ImageGenerator(nn.Module):
    """z [N, 8] -> images [N, 1, 8, 8] in [-1, 1]."""

    nz = 8

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.fc = nn.Linear(8, 64)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(64, 8, generator=generator) * 0.5)
            self.fc.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(z)).view(-1, 1, 8, 8)


def image_adapter() -> TorchAdapter:
    return TorchAdapter(ImageGenerator())


def image_chain(batch_size: int = 32) -> Chain:
    return Chain(image_adapter(), batch_size=batch_size)
