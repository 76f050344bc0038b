"""The one table of defaults, read by the Python API and the CLI alike.

A default is written here once; function signatures and CLI options refer
to ``DEFAULTS.<field>`` so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Defaults", "DEFAULTS"]


@dataclass(frozen=True)
class Defaults:
    """Default settings. Each field documents its unit and where it comes from."""

    #: Seed of a run when none is given.
    seed: int = 0
    #: Samples a chain generates per batch; setup and scoring passes (burn-in, calibration, probes,
    #: pools) put at most this many through a network at once too (gan_postproc.batching).
    batch_size: int = 256
    #: Most proposals per sample a rejection sampler makes before giving up.
    rejection_max_rounds: int = 10_000
    #: A rejection sampler gives up if its acceptance rate falls below this ...
    rejection_min_acceptance_rate: float = 1e-4
    #: ... once it has made at least this many proposals.
    rejection_min_proposals_for_check: int = 20_000
    #: Most times a chain re-draws samples rejected by a filter hook.
    filter_max_attempts: int = 100
    #: Samples per method in ``gan-postproc demo``.
    demo_samples: int = 1000
    #: Samples per row of the demo's diffusion-model rows (DG), which cost more per sample than the GANs.
    demo_diffusion_samples: int = 500
    #: Samples per shard written by ``gan-postproc sample`` (the unit of resuming).
    sample_shard_size: int = 1000
    #: Latents averaged into w_avg for truncating generators that do not track it
    #: (rosinality's StyleGAN2: its generate.py uses ``--truncation_mean 4096``).
    stylegan_mean_latent_samples: int = 4096
    #: BIGRoC: targeted PGD steps T (Ganz & Elad 2022, Appendix E.1: "we opt to use seven steps").
    bigroc_steps: int = 7
    #: BIGRoC: step size as a multiple of eps / T (Appendix E.1: step size 1.5 * eps / num_steps).
    bigroc_step_ratio: float = 1.5
    #: BIGRoC: threat model of the refinement, ``"l2"`` (the paper's choice, Section 3) or ``"linf"``.
    bigroc_norm: str = "l2"
    #: BIGRoC_PL: generated images used to estimate the logit debiasing offsets (Section 3's validation set).
    bigroc_debias_samples: int = 5000
    #: BIGRoC_PL in the quick demo: fewer images for the debias estimate.
    bigroc_debias_samples_quick: int = 1000
    #: BIGRoC on the shipped digits GANs (demo and ``bench digits``): L2 eps in [-1, 1] units for
    #: BIGRoC_PL (unconditional GAN) and BIGRoC_GT (conditional GAN), chosen from the eps curve of
    #: ``gan-postproc bench bigroc`` (see README, BIGRoC).
    bigroc_digits_eps_pl: float = 0.75
    bigroc_digits_eps_gt: float = 0.75

    # -- metrics (gan_postproc.metrics) --
    #: Samples per forward pass when a metric runs a feature network or classifier.
    metrics_batch_size: int = 256
    #: k of the k-NN manifolds of precision / recall / density / coverage
    #: (Naeem et al. 2020 recommend k = 5; Kynkaanniemi et al. 2019 use k = 3).
    metrics_nearest_k: int = 5
    #: Most entries of one block of a pairwise-distance matrix, so 50k x 50k
    #: comparisons run in bounded memory (2**24 float32 entries = 64 MiB).
    metrics_distance_block: int = 2**24
    #: KID: number of random subsets (Binkowski et al. 2018; torch-fidelity's default).
    kid_subsets: int = 100
    #: KID: largest subset size; smaller sample sets use all their samples per subset.
    kid_subset_size: int = 1000
    #: Inception Score: number of splits (Salimans et al. 2016).
    inception_score_splits: int = 10
    #: Mode statistics: a sample is "good" within this many standard deviations of
    #: its nearest mode (collaborative-sampling paper, Fig. 4: 3; its 2-D code: 4).
    mode_num_std: float = 3.0
    #: Class balance: added to both histograms before the KL divergence (CBGAN code).
    balance_epsilon: float = 1e-5
    #: Intra-class diversity: disjoint image pairs per class (Slim paper, Sec. 4.3: 200).
    diversity_pairs_per_class: int = 200

    # -- classifier training (gan_postproc.training) --
    #: Samples per optimiser step when training a classifier (plain or robust).
    train_batch_size: int = 128
    #: Adam learning rate when training a classifier.
    train_lr: float = 1e-3
    #: PGD steps of the inner maximisation in adversarial training (Madry et al. 2018 use 7 on CIFAR-10).
    robust_train_steps: int = 7
    #: PGD step size in adversarial training, as a multiple of eps / steps
    #: (2.5 * eps / steps, the rule of the Madry lab's robustness library).
    robust_train_step_ratio: float = 2.5

    # --- density-ratio samplers (DRS, MH-GAN, SIR) and their calibration ------
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
    #: Seeds passed to a real-data function ``(n, seed)`` lie below this (the benchmark
    #: suites reserve higher seeds for the points they measure against).
    real_data_seed_limit: int = 10_000

    # --- calibrate_discriminator: BCE fine-tuning of a copy of a discriminator --
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

    # --- truncation ----------------------------------------------------------
    #: Threshold psi of the truncated-normal prior: |z_i| <= psi (Slim's incremental-learning paper: 1.5).
    truncation_psi: float = 1.5
    # -- discriminator-guided refinement (plugins collaborative, dot, ddls) --
    #: Collaborative sampling: split point refined when none is named ("output" = data space;
    #: the paper recommends a middle layer, which only the caller can name).
    collaborative_layer: str = "output"
    #: Collaborative sampling: most refinement steps K (paper, Sec. 5.2: at most 50 updates).
    collaborative_steps: int = 50
    #: Collaborative sampling: step size lambda of Eq. 4 (paper, Sec. 5.2: 0.1).
    collaborative_step_size: float = 0.1
    #: Collaborative sampling: "threshold" (Algorithm 1: stop a sample once D(x) reaches the
    #: mean D on real data) or "best" (the reference code: keep the iterate with the highest D).
    collaborative_selection: str = "threshold"
    #: Discriminator shaping (Algorithm 2): optimiser steps of the discriminator copy.
    shaping_iterations: int = 500
    #: Discriminator shaping: real and refined samples per step (m of Algorithm 2).
    shaping_batch_size: int = 64
    #: Discriminator shaping: Adam learning rate (reference code, MNIST: 1e-5; small, so the copy
    #: stays close to the trained discriminator).
    shaping_lr: float = 1e-5
    #: Discriminator shaping: write a resumable checkpoint every this many steps.
    shaping_checkpoint_every: int = 100
    #: Discriminator shaping of a WGAN critic: gradient-penalty weight (Gulrajani et al. 2017).
    shaping_gradient_penalty: float = 10.0
    #: DOT: Adam steps (Tanaka 2019, reference 2-D demo: 100).
    dot_steps: int = 100
    #: DOT: Adam learning rate (reference: 0.01).
    dot_lr: float = 0.01
    #: DOT: Adam betas (reference: beta1 = 0, beta2 = 0.9).
    dot_betas: tuple[float, float] = (0.0, 0.9)
    #: DOT: offset added to x - y inside the transport cost ||x - y + delta|| (reference: 0.001).
    dot_delta: float = 0.001
    #: DOT: K_eff is the mean over this many estimates ... (reference demo: 10)
    dot_keff_trials: int = 10
    #: ... of the largest |D(x1) - D(x2)| / ||x1 - x2|| over this many random pairs (reference: 100).
    dot_keff_pairs: int = 100
    #: DDLS: Langevin steps (StudioGAN ``langevin_sampling``: 1000).
    ddls_steps: int = 1000
    #: DDLS: initial step size eps of z <- z - eps/2 grad E + sqrt(eps) noise (StudioGAN: 0.01).
    ddls_step_size: float = 0.01
    #: DDLS: standard deviation of the Langevin noise (StudioGAN: 1).
    ddls_noise_std: float = 1.0
    #: DDLS: every ``ddls_decay_steps`` steps the step size and noise scale are multiplied by this (StudioGAN: 0.1 ...
    ddls_decay: float = 0.1
    #: ... every 200 steps); a decay of 1 turns the schedule off.
    ddls_decay_steps: int = 200

    # -- classifier in the loop (classifier_filter, class_balance, ensemble, reweighting) --
    #: classifier_filter: keep a sample when p(y | x) >= this (Slim 2020, Sec. 3.1: p_t = 0.9).
    classifier_filter_threshold: float = 0.9
    #: class_balance: weight alpha of the newest batch in the running convex combination
    #: N <- (1 - alpha) N + alpha n_batch of the classifier-estimated class distribution (CBGAN).
    class_balance_update_rate: float = 0.1
    #: class_balance: generated samples classified in ``setup`` to initialise the class counts.
    class_balance_calibration_samples: int = 2000
    #: class_balance: cap on the rejection constant M (unconditional: a proposal of class k
    #: is kept with probability at least pi_k / (this * N_k)) and on the label weights
    #: 1 / N_k <= K * this (conditional), so a nearly missing class cannot stall sampling.
    class_balance_max_ratio: float = 20.0
    #: ensemble: consecutive global sample indices that share one generator
    #: (Slim 2020 picks one generator per training batch of 125).
    ensemble_block_size: int = 128

    # -- latent reweighting (Issenhuth et al., WACV 2022; plugins latent_rs, latent_ga, latent_rs_ga) --
    #: Soft-clipping threshold m of Eq. 6; latentRS accepts z with probability w(z)/m, so the
    #: expected acceptance rate is 1/m. The paper's appendix is not in our copy; 3 is the value
    #: the community uses (shared/REFERENCE.md).
    importance_max_weight: float = 3.0
    #: lambda1 of Eq. 6: weight of the self-normalisation penalty (E w - 1)^2.
    importance_lambda_norm: float = 10.0
    #: lambda2 of Eq. 6: weight of the soft-clipping penalty E max(0, w - m)^2.
    importance_lambda_clip: float = 3.0
    #: Hidden layers of the importance MLP (the paper: 3 for LSUN, 3-4 for MNIST, 5 for CelebA).
    importance_hidden_layers: int = 3
    #: Hidden width of the importance MLP as a multiple of its input size (the paper's MNIST MLP: 4 x d) ...
    importance_width_factor: int = 4
    #: ... but at least this many units (a 2-D latent would otherwise get an 8-unit MLP).
    importance_min_width: int = 128
    #: Updates of w in Algorithm 1.
    importance_steps: int = 1000
    #: Critic updates per w update (n_d of Algorithm 1). On the DOT 2-D models, 5 updates at the
    #: same learning rate as w let w outrun the critic (w learned a global tilt and the held-out
    #: EMD oscillated); 10 updates at a 4x larger learning rate than w kept the critic close to
    #: its best response (benchmarks/train_importance.py records the runs).
    importance_critic_steps: int = 10
    #: Fake samples per update of w or of the critic (and real samples per critic update for tensor data).
    importance_batch_size: int = 128
    #: Adam learning rate of w (betas 0.5, 0.9, as for WGAN-GP).
    importance_lr: float = 5e-5
    #: Adam learning rate of the critic.
    importance_critic_lr: float = 2e-4
    #: Critic updates on the unweighted model before the first update of w.
    importance_critic_warmup: int = 300
    #: Gradient-penalty weight of the WGAN-GP critic loss (Gulrajani et al. 2017).
    importance_gp_weight: float = 10.0
    #: Updates of w between two held-out evaluations (and checkpoints).
    importance_eval_every: int = 50
    #: Held-out real samples the reweighted model is compared with at each evaluation (at most as many as given).
    importance_eval_samples: int = 1000
    #: Prior draws whose weights define the reweighted model at each evaluation.
    importance_eval_pool: int = 4000
    #: latentRS: proposal rounds drawn in the first pass of w (about m = 1 / acceptance, the expected
    #: proposals per sample). One round per pass would need about 20 passes per batch at acceptance
    #: 1/3, each paying the loop's fixed overhead.
    latent_rs_rounds_per_call: int = 3
    #: latentRS: each later pass draws this many times the rounds of the one before (3, 6, 12, ...:
    #: about 5 proposals of w per sample in 3-4 passes at acceptance 1/3, where a constant 8 rounds
    #: per pass evaluates w on about 8.3 proposals per sample for the same number of passes).
    latent_rs_round_growth: int = 2
    #: latentGA: gradient-ascent steps on w(z) (the paper tunes it; about 10).
    latent_ga_steps: int = 10
    #: latentGA: step size of each ascent step z <- z + step * grad w(z).
    latent_ga_step_size: float = 0.02


DEFAULTS = Defaults()
