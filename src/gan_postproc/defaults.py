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
    #: Samples a chain generates per batch.
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
    #: Samples per shard written by ``gan-postproc sample`` (the unit of resuming).
    sample_shard_size: int = 1000
    #: Latents averaged into w_avg for truncating generators that do not track it
    #: (rosinality's StyleGAN2: its generate.py uses ``--truncation_mean 4096``).
    stylegan_mean_latent_samples: int = 4096

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
    #: latentRS: proposal rounds drawn per pass of w. With acceptance 1/3, 8 rounds leave 4% of the
    #: samples for a next pass, so a batch finishes in 2-3 passes instead of about 20 (on the DOT 2-D
    #: models, where w costs about as much as the generator's loop overhead, this cut latentRS's
    #: time per sample about 4-fold).
    latent_rs_rounds_per_call: int = 8
    #: latentGA: gradient-ascent steps on w(z) (the paper tunes it; about 10).
    latent_ga_steps: int = 10
    #: latentGA: step size of each ascent step z <- z + step * grad w(z).
    latent_ga_step_size: float = 0.02


DEFAULTS = Defaults()
