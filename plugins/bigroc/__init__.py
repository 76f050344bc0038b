"""BIGRoC (Ganz & Elad 2022): refining images along a robust classifier's gradients, the logit debiasing of
its pseudo-label variant, PGD, and adversarial training of the robust classifier it needs."""

from .defaults import DEFAULTS
from .pgd import NORMS, pgd, pgd_l2, project_l2_ball, project_linf_ball, random_l2_start
from .refiner import LABEL_MODES, BIGRoC, LogitDebias, targeted_pgd
from .robust_training import AttackSettings, train_robust_classifier

__all__ = [
    "DEFAULTS",
    "BIGRoC",
    "LogitDebias",
    "targeted_pgd",
    "LABEL_MODES",
    "NORMS",
    "pgd",
    "pgd_l2",
    "project_l2_ball",
    "project_linf_ball",
    "random_l2_start",
    "AttackSettings",
    "train_robust_classifier",
]
