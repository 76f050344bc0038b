"""The defaults of latent reweighting (Issenhuth et al., WACV 2022): the importance network, its
training, latentRS and latentGA: the core's table plus these (see
:class:`gan_postproc.defaults.Defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_postproc.defaults import Defaults

__all__ = ["LatentReweightingDefaults", "DEFAULTS"]


@dataclass(frozen=True)
class LatentReweightingDefaults(Defaults):
    """Each field documents its unit and where it comes from."""

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


DEFAULTS = LatentReweightingDefaults()
