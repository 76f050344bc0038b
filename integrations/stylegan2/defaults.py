"""The defaults of the StyleGAN2 / StyleGAN3 adapters: the core's table plus these (see
:class:`gan_postproc.defaults.Defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_postproc.defaults import Defaults

__all__ = ["StyleGAN2Defaults", "DEFAULTS"]


@dataclass(frozen=True)
class StyleGAN2Defaults(Defaults):
    """Each field documents its unit and where it comes from."""

    #: Latents averaged into w_avg for truncating generators that do not track it
    #: (rosinality's StyleGAN2: its generate.py uses ``--truncation_mean 4096``).
    stylegan_mean_latent_samples: int = 4096


DEFAULTS = StyleGAN2Defaults()
