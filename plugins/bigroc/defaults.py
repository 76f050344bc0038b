"""The defaults of BIGRoC (refinement, debiasing, the digits settings) and its robust-classifier
training: the core's table plus these (see :class:`gan_postproc.defaults.Defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_postproc.defaults import Defaults

__all__ = ["BIGRoCDefaults", "DEFAULTS"]


@dataclass(frozen=True)
class BIGRoCDefaults(Defaults):
    """Each field documents its unit and where it comes from."""

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
    #: PGD steps of the inner maximisation in adversarial training (Madry et al. 2018 use 7 on CIFAR-10).
    robust_train_steps: int = 7
    #: PGD step size in adversarial training, as a multiple of eps / steps
    #: (2.5 * eps / steps, the rule of the Madry lab's robustness library).
    robust_train_step_ratio: float = 2.5


DEFAULTS = BIGRoCDefaults()
