"""Plain-torch networks of StyleGAN2's size, for benchmarks where the NVlabs code is not at hand.

``gan-postproc bench realistic`` measures methods on a network of the size
users run (StyleGAN2 config-f at 256x256: ``channel_base`` 32768,
``channel_max`` 512, z and w of 512). It builds the real NVlabs networks when
their source is given; otherwise these stand-ins, which have the same
widths per resolution (``min(channel_base // resolution, channel_max)``),
the same mapping network (8 fully connected layers of ``w_dim``), the same
modulated and demodulated 3x3 convolutions (two per resolution, run as one
grouped convolution per batch, as NVlabs' fused path does), skip-connected
RGB outputs and a residual discriminator with minibatch standard deviation
(groups of 4). They differ in what costs little: resampling is bilinear (no
FIR filter), there are no noise inputs, no equalised learning rate and no
weight averaging. Random weights: they are for timing and memory, not samples.

Images come out in ``[-1, 1]`` (clamped, as NVlabs' ``generate.py`` does when saving).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import check_count

__all__ = ["stylegan2_widths", "StyleGAN2SizedGenerator", "StyleGAN2SizedDiscriminator"]


def stylegan2_widths(resolution: int, channel_base: int = 32768, channel_max: int = 512) -> dict[int, int]:
    """Channels per resolution ``4, 8, ..., resolution``: ``min(channel_base // r, channel_max)`` (StyleGAN2)."""
    resolution = check_count(resolution, "resolution", minimum=4)
    if resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of 2 (4, 8, ..., 1024), got {resolution}")
    return {4 * 2**i: min(channel_base // (4 * 2**i), channel_max) for i in range(int(math.log2(resolution)) - 1)}


class _ModulatedConv(nn.Module):
    """A 3x3 (or 1x1) convolution whose weights are scaled per sample by a style from ``w`` (StyleGAN2, Eq. 1-3)."""

    def __init__(self, w_dim: int, in_channels: int, out_channels: int, kernel: int = 3, demodulate: bool = True) -> None:
        super().__init__()
        self.affine = nn.Linear(w_dim, in_channels)
        nn.init.normal_(self.affine.weight, std=1 / math.sqrt(w_dim))  # styles of order 1 around 1, as StyleGAN2's init gives
        nn.init.ones_(self.affine.bias)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel) / math.sqrt(in_channels * kernel * kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.demodulate = demodulate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, width = x.shape
        weight = self.weight[None] * self.affine(w)[:, None, :, None, None]  # [N, out, in, k, k]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(x.reshape(1, n * c, h, width), weight.flatten(0, 1), padding=self.weight.shape[-1] // 2, groups=n)
        return out.reshape(n, -1, h, width) + self.bias[None, :, None, None]


class _SynthesisBlock(nn.Module):
    def __init__(self, w_dim: int, in_channels: int, out_channels: int, first: bool) -> None:
        super().__init__()
        self.first = first
        self.conv0 = _ModulatedConv(w_dim, in_channels, out_channels)
        self.conv1 = _ModulatedConv(w_dim, out_channels, out_channels)
        self.to_rgb = _ModulatedConv(w_dim, out_channels, 3, kernel=1, demodulate=False)

    def forward(self, x: torch.Tensor, image: torch.Tensor | None, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.first:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.leaky_relu(self.conv0(x, w), 0.2)
        x = F.leaky_relu(self.conv1(x, w), 0.2)
        rgb = self.to_rgb(x, w)
        if image is not None:
            rgb = rgb + F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
        return x, rgb


class StyleGAN2SizedGenerator(nn.Module):
    """``z [N, z_dim] -> images [N, 3, resolution, resolution]`` in [-1, 1]; submodules ``mapping`` and ``synthesis``."""

    def __init__(self, resolution: int = 256, *, z_dim: int = 512, w_dim: int = 512, channel_base: int = 32768, channel_max: int = 512) -> None:
        super().__init__()
        widths = stylegan2_widths(resolution, channel_base, channel_max)
        self.z_dim, self.w_dim, self.resolution = z_dim, w_dim, resolution
        layers: list[nn.Module] = []
        for fan_in in [z_dim] + [w_dim] * 7:
            layers += [nn.Linear(fan_in, w_dim), nn.LeakyReLU(0.2)]
        self.mapping = nn.Sequential(*layers)
        for layer in self.mapping[::2]:
            nn.init.kaiming_normal_(layer.weight, a=0.2)  # keeps w of order 1 through the 8 layers
        self.const = nn.Parameter(torch.randn(widths[4], 4, 4))
        blocks, previous = [], widths[4]
        for res, channels in widths.items():
            blocks.append(_SynthesisBlock(w_dim, previous, channels, first=res == 4))
            previous = channels
        self.synthesis = nn.ModuleList(blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)  # the mapping's input normalisation
        w = self.mapping(z)
        x, image = self.const[None].expand(z.shape[0], -1, -1, -1), None
        for block in self.synthesis:
            x, image = block(x, image, w)
        return image.clamp(-1.0, 1.0)


class StyleGAN2SizedDiscriminator(nn.Module):
    """``images [N, 3, r, r] -> logits [N, 1]``: residual blocks down to 4x4, minibatch std (groups of 4), two linear layers."""

    group_size = 4

    def __init__(self, resolution: int = 256, *, channel_base: int = 32768, channel_max: int = 512) -> None:
        super().__init__()
        widths = stylegan2_widths(resolution, channel_base, channel_max)
        self.from_rgb = nn.Conv2d(3, widths[resolution], 1)
        self.blocks = nn.ModuleList()
        for res in sorted(widths, reverse=True)[:-1]:
            self.blocks.append(nn.ModuleDict({
                "conv0": nn.Conv2d(widths[res], widths[res], 3, padding=1),
                "conv1": nn.Conv2d(widths[res], widths[res // 2], 3, padding=1),
                "skip": nn.Conv2d(widths[res], widths[res // 2], 1, bias=False),
            }))
        self.conv = nn.Conv2d(widths[4] + 1, widths[4], 3, padding=1)
        self.fc = nn.Linear(widths[4] * 16, widths[4])
        self.out = nn.Linear(widths[4], 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.from_rgb(images), 0.2)
        for block in self.blocks:
            skip = block["skip"](F.avg_pool2d(x, 2))
            x = F.leaky_relu(block["conv0"](x), 0.2)
            x = F.avg_pool2d(F.leaky_relu(block["conv1"](x), 0.2), 2)
            x = (x + skip) / math.sqrt(2)
        n, c, h, w = x.shape
        group = math.gcd(self.group_size, n)  # groups that divide the batch (NVlabs needs the batch to be a multiple)
        std = x.reshape(group, -1, c, h, w).std(dim=0, unbiased=False).mean(dim=(1, 2, 3))  # [N / group]
        x = torch.cat([x, std.repeat(group)[:, None, None, None].expand(n, 1, h, w)], dim=1)
        x = F.leaky_relu(self.conv(x), 0.2)
        return self.out(F.leaky_relu(self.fc(x.flatten(1)), 0.2))
