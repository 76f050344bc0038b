"""Small stand-ins for PyTorch-StudioGAN's interfaces, for tests (StudioGAN is a checkout, not a package).

* :class:`Generator`: ``forward(z, label, shared_label=None, eval=False)``,
  layers ``linear0``, ``blocks`` (a ModuleList of ModuleLists of blocks taking
  ``(x, label)``), ``bn4``, a shared ``activation``, ``conv2d5``, ``tanh``.
* :class:`Discriminator`: ``forward(x, label, eval=False, adc_fake=False) ->
  dict`` whose ``adv_output`` is ``torch.squeeze`` of the last linear layer
  (``[B]``, 0-d for B == 1), or ``[B, 1]``, or ``[B, num_classes + 1]`` for
  the multi-hinge loss ("MH"), with projection ("PD") conditioning.
* :class:`MappingNetwork` / :class:`SynthesisNetwork`: StudioGAN's StyleGAN2
  halves, ``mapping(z, c, truncation_psi=1, truncation_cutoff=None,
  update_emas=False)`` and ``synthesis(ws, update_emas=False, noise_mode=...)``.
* :func:`make_sample_module`: a module standing in for ``utils.sample`` whose
  ``generate_images`` has StudioGAN's signature and 7-tuple result (our own
  implementation of the default path: latents from the prior, labels from
  ``y_sampler``, ``generator(z, y, eval=not is_train)``); :func:`evaluate`
  calls it as a module attribute, as StudioGAN's workers do.
"""

from __future__ import annotations

import types
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn


class GenBlock(nn.Module):
    def __init__(self, in_channels, out_channels, num_classes, conditional):
        super().__init__()
        self.conditional = conditional
        self.bn1 = nn.BatchNorm2d(in_channels, affine=not conditional)
        self.embed = nn.Embedding(num_classes, in_channels) if conditional else None
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x, label):
        h = self.bn1(x)
        if self.conditional:
            h = h * (1 + self.embed(label)[:, :, None, None])
        return self.conv(F.interpolate(F.relu(h), scale_factor=2))


class Generator(nn.Module):
    def __init__(self, z_dim=8, num_classes=4, g_cond_mtd="W/O", g_conv_dim=8):
        super().__init__()
        self.z_dim, self.num_classes, self.g_cond_mtd = z_dim, num_classes, g_cond_mtd
        conditional = g_cond_mtd != "W/O"
        self.linear0 = nn.Linear(z_dim, g_conv_dim * 4 * 4)
        self.blocks = nn.ModuleList([nn.ModuleList([GenBlock(g_conv_dim, g_conv_dim, num_classes, conditional)]) for _ in range(2)])
        self.bn4 = nn.BatchNorm2d(g_conv_dim)
        self.activation = nn.ReLU(inplace=True)
        self.conv2d5 = nn.Conv2d(g_conv_dim, 3, 3, padding=1)
        self.tanh = nn.Tanh()

    def forward(self, z, label, shared_label=None, eval=False):
        act = self.linear0(z).view(-1, self.conv2d5.in_channels, 4, 4)
        for blocklist in self.blocks:
            for block in blocklist:
                act = block(act, label)
        return self.tanh(self.conv2d5(self.activation(self.bn4(act))))


class Discriminator(nn.Module):
    def __init__(self, num_classes=4, d_cond_mtd="W/O", adv_shape="squeeze", d_conv_dim=8):
        super().__init__()
        self.d_cond_mtd, self.adv_shape = d_cond_mtd, adv_shape
        self.blocks = nn.Sequential(nn.Conv2d(3, d_conv_dim, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(d_conv_dim, d_conv_dim, 3, stride=2, padding=1))
        self.activation = nn.ReLU()
        self.linear1 = nn.Linear(d_conv_dim, 1 + num_classes if d_cond_mtd == "MH" else 1)
        if d_cond_mtd == "PD":
            self.embedding = nn.Embedding(num_classes, d_conv_dim)

    def forward(self, x, label, eval=False, adc_fake=False):
        h = torch.sum(self.activation(self.blocks(x)), dim=[2, 3])
        adv_output = self.linear1(h)
        if self.adv_shape == "squeeze" or self.d_cond_mtd == "MH":
            adv_output = torch.squeeze(adv_output)
        if self.d_cond_mtd == "PD":
            projection = torch.sum(self.embedding(label) * h, 1)
            adv_output = adv_output + (projection if adv_output.dim() < 2 else projection[:, None])
        return {"h": h, "adv_output": adv_output, "embed": None, "proxy": None, "cls_output": None, "label": label,
                "info_discrete_c_logits": None, "info_conti_mu": None, "info_conti_var": None}  # fmt: skip


class MappingNetwork(nn.Module):
    def __init__(self, z_dim=8, c_dim=0, w_dim=8, num_ws=4):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.fc = nn.Linear(z_dim + c_dim, w_dim)
        self.register_buffer("w_avg", torch.randn(w_dim) * 0.3)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = self.fc(torch.cat([z, c.float()[:, : self.c_dim]], 1)).unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
        return x


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim=8, num_ws=4):
        super().__init__()
        self.num_ws = num_ws
        self.const = nn.Parameter(torch.randn(8, 4, 4))
        self.affine = nn.Linear(w_dim, 8)
        self.register_buffer("noise_const", torch.randn(8, 8))
        self.to_rgb = nn.Conv2d(8, 3, 1)

    def forward(self, ws, update_emas=False, noise_mode="random"):
        x = self.const[None] * self.affine(ws.mean(1))[:, :, None, None]
        x = F.interpolate(x, scale_factor=2)
        if noise_mode == "random":
            x = x + torch.randn(x.shape[0], 1, 8, 8) * 0.1
        elif noise_mode == "const":
            x = x + self.noise_const * 0.1
        return self.to_rgb(F.leaky_relu(x, 0.2))


def config(adv_loss="hinge", g_cond_mtd="W/O", d_cond_mtd="W/O", **run):
    """(LOSS, RUN, MODEL) namespaces with the fields generate_images reads."""
    LOSS = SimpleNamespace(adv_loss=adv_loss, apply_lo=False, lo_steps4train=0, lo_steps4eval=0)
    RUN = SimpleNamespace(**{"langevin_sampling": False, "truncation_cutoff": None, **run})
    MODEL = SimpleNamespace(g_cond_mtd=g_cond_mtd, d_cond_mtd=d_cond_mtd, info_type="N/A", z_prior="gaussian", z_dim=8)
    return LOSS, RUN, MODEL


def _sample_y(y_sampler, batch_size, num_classes, device):
    if y_sampler == "totally_random":
        return torch.randint(0, num_classes, (batch_size,), device=device)
    if y_sampler == "acending_all":
        return torch.arange(num_classes, device=device).repeat_interleave(8)
    return torch.full((batch_size,), y_sampler, dtype=torch.long, device=device)


def generate_images(z_prior, truncation_factor, batch_size, z_dim, num_classes, y_sampler, radius, generator, discriminator,
                    is_train, LOSS, RUN, MODEL, device, is_stylegan, generator_mapping, generator_synthesis, style_mixing_p,
                    stylegan_update_emas, cal_trsp_cost):  # fmt: skip
    """The default path of StudioGAN's generate_images (no LO, Langevin, InfoGAN codes or style mixing)."""
    fake_labels = _sample_y(y_sampler, batch_size, num_classes, device)
    batch_size = fake_labels.shape[0]
    zs = torch.randn(batch_size, z_dim, device=device) if z_prior == "gaussian" else torch.rand(batch_size, z_dim, device=device) * 2 - 1
    if is_stylegan:
        ws = generator_mapping(zs, F.one_hot(fake_labels, num_classes), truncation_psi=1, update_emas=stylegan_update_emas)
        fake_images = generator_synthesis(ws, update_emas=stylegan_update_emas)
    else:
        ws, fake_images = None, generator(zs, fake_labels, eval=not is_train)
    return fake_images, fake_labels, None, None, ws, None, None


def make_sample_module() -> types.ModuleType:
    """A fresh stand-in for StudioGAN's ``utils.sample``."""
    module = types.ModuleType("utils.sample")
    module.generate_images = generate_images
    return module


def evaluate(sample, generator, discriminator, LOSS, RUN, MODEL, *, batch_size=8, y_sampler="totally_random",
             truncation_factor=-1.0, radius="N/A", is_train=False, is_stylegan=False, mapping=None, synthesis=None, z_prior="gaussian"):  # fmt: skip
    """Calls ``sample.generate_images`` as StudioGAN's workers do: through the module attribute."""
    return sample.generate_images(
        z_prior=z_prior, truncation_factor=truncation_factor, batch_size=batch_size, z_dim=8, num_classes=4,
        y_sampler=y_sampler, radius=radius, generator=generator, discriminator=discriminator, is_train=is_train,
        LOSS=LOSS, RUN=RUN, MODEL=MODEL, device="cpu", is_stylegan=is_stylegan, generator_mapping=mapping,
        generator_synthesis=synthesis, style_mixing_p=0.0, stylegan_update_emas=False, cal_trsp_cost=False,
    )  # fmt: skip
