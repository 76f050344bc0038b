"""The defaults of the classifier-in-the-loop samplers (classifier_filter, class_balance, ensemble):
the core's table plus these (see :class:`gan_postproc.defaults.Defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_postproc.defaults import Defaults

__all__ = ["ClassifierGuidedDefaults", "DEFAULTS"]


@dataclass(frozen=True)
class ClassifierGuidedDefaults(Defaults):
    """Each field documents its unit and where it comes from."""

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


DEFAULTS = ClassifierGuidedDefaults()
