"""The defaults of the density-ratio samplers (DRS, MH-GAN, SIR), their isotonic calibration and
calibrate_discriminator: the core's table plus these (see :class:`gan_postproc.defaults.Defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_postproc.defaults import Defaults

__all__ = ["DensityRatioDefaults", "DEFAULTS"]


@dataclass(frozen=True)
class DensityRatioDefaults(Defaults):
    """Each field documents its unit and where it comes from."""

    #: DRS (Azadi et al. 2019, Sec. 4): generated samples scored in setup to estimate
    #: D_M, the largest logit (the paper uses at least 10,000).
    drs_burn_in: int = 10_000
    #: DRS in the quick demo: a smaller burn-in (D_M is still updated while sampling).
    drs_burn_in_quick: int = 1_000
    #: DRS: gamma is this percentile of F(x) over the burn-in (paper: 95th).
    drs_percentile: float = 95.0
    #: DRS: epsilon of F(x) = D_delta - log(1 - exp(D_delta - epsilon)) (paper: 1e-6).
    drs_epsilon: float = 1e-6
    #: MH-GAN (Turner et al. 2019): proposals per chain K (paper and reference code: 640).
    mh_chain_length: int = 640
    #: MH-GAN in the quick demo: a shorter chain (the demo must finish in 2 minutes on a CPU).
    mh_chain_length_quick: int = 16
    #: Real and generated samples each scored to fit isotonic calibration in a sampler's setup;
    #: half of each fits the calibration, the other half is held out to report its quality.
    isotonic_calibration_size: int = 2_000
    #: The same in the quick demo.
    isotonic_calibration_size_quick: int = 1_000
    #: SIR (Grover et al. 2019): proposals in each sample's pool (about the 10-19x cost of
    #: Table 2 of the latent-reweighting paper).
    sir_pool_size: int = 10
    #: SIR: importance weights are flattened to w**alpha (1 = the plain density ratio).
    sir_alpha: float = 1.0
    #: Generated samples a density-ratio sampler scores in setup to check that the
    #: discriminator separates samples at all (a constant output is refused).
    density_ratio_probe_size: int = 1_000
    #: What is trained: "finetune" (the whole copy plus an affine output map) or
    #: "head" (a logistic head on the features of ``feature_layer``, the rest frozen).
    calibration_mode: str = "finetune"
    #: Optimiser steps (one real and one generated batch each).
    calibration_steps: int = 1_000
    #: Real and generated samples per step, each.
    calibration_batch_size: int = 256
    #: Adam learning rate (betas 0.5, 0.999).
    calibration_lr: float = 1e-4
    #: Real and generated samples, each, held out to select the best step by BCE.
    calibration_holdout: int = 2_000
    #: Real samples drawn once as the training pool when real data is a sampler function.
    calibration_real_pool: int = 20_000
    #: Steps between held-out evaluations (and checkpoints).
    calibration_eval_every: int = 100
    #: Weight lambda of the WGAN-GP gradient penalty (Gulrajani et al. 2017, Eq. 3) kept during BCE
    #: fine-tuning, as the latent-reweighting paper does (Sec. 4.3); 0 = off. Off by default: it pulls
    #: the logit's slope towards 1, biasing the ratio (the known-ratio toy of tests/test_calibration.py).
    calibration_gradient_penalty: float = 0.0
    #: How calibrate_discriminator selects its best step: "bce" (held-out binary cross-entropy) or
    #: "emd" (EMD of SIR-resampled generated samples to held-out real ones, as the paper selects).
    calibration_select_on: str = "bce"
    #: The selection calibrated_copy uses (the density-ratio samplers' calibrate_critic_on and the
    #: benchmark rows): "emd". With "bce" DRS/SIR/MH made EMD about 2x worse on the DOT 2-D models.
    calibration_copy_select_on: str = "emd"
    #: "emd" selection: resampled generated samples (and held-out real ones) compared.
    calibration_select_emd_samples: int = 1_000


DEFAULTS = DensityRatioDefaults()
