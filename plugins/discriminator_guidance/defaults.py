"""The defaults of discriminator guidance (DG) and DiffRS: the core's table plus these (see
:class:`gan_postproc.defaults.Defaults`; ``train_lr`` and ``train_batch_size`` are DG's own here).
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_postproc.defaults import Defaults

__all__ = ["GuidanceDefaults", "DEFAULTS"]


@dataclass(frozen=True)
class GuidanceDefaults(Defaults):
    """Default settings of DG (Kim et al., ICML 2023) and DiffRS (Na et al., ICML 2024). Each field says where it comes from."""

    #: Samples per row of ``gan-postproc demo``'s diffusion-model rows (DG), which cost more per sample than the GANs.
    demo_diffusion_samples: int = 500

    # -- the time-dependent discriminator d_phi(x_t, t) --
    #: Width of the trainable head (hidden units of its MLP blocks).
    head_width: int = 256
    #: Residual MLP blocks of the head, each modulated by the time embedding.
    head_depth: int = 2
    #: Size of the sinusoidal time embedding (as in DDPM / ADM time embeddings).
    time_embedding_dim: int = 128

    # -- training (DG reference code train.py: Adam lr 3e-4, weight decay 1e-7, batch 128, BCE) --
    train_lr: float = 3e-4
    train_weight_decay: float = 1e-7
    train_batch_size: int = 128
    #: Passes over the real samples (the reference trains 50 epochs on 50k CIFAR-10 images).
    train_epochs: int = 50
    #: Epochs between checkpoints.
    train_checkpoint_every: int = 1

    # -- guidance (DG reference code generate.py) --
    #: w of s + w * grad log(d / (1 - d)); 1 is the paper's theory (the optimal discriminator's
    #: correction recovers the data score exactly).
    guidance_weight: float = 1.0
    #: Fractions t / T of the training schedule where guidance applies (reference: time_min 0.01, time_max 1.0).
    guidance_time_range: tuple[float, float] = (0.01, 1.0)

    # -- DiffRS (reference code generate_diffrs.py) --
    #: gamma: the thresholds log M are this quantile of the warm-up log ratios, floored at 0
    #: (the reference README runs rej_percentile 0.75).
    diffrs_percentile: float = 0.75
    #: Levels a rejected sample is sent back (re-noised) by (reference: backsteps 1).
    diffrs_backsteps: int = 1
    #: Samples of the base sampler used to estimate the thresholds (warm-up).
    diffrs_warmup_samples: int = 500
    #: Most rounds (proposals and checks) one sample may take; past it the sample continues
    #: without rejection (the bound on its cost).
    diffrs_max_rounds_per_step: int = 8


#: The family's defaults.
DEFAULTS = GuidanceDefaults()
