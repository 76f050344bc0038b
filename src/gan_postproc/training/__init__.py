"""Training helpers: classifiers (plain and L2-PGD adversarial), PGD, resumable checkpoints."""

from .checkpoint import load_checkpoint, read_checkpoint_state, save_checkpoint, save_safetensors_atomic
from .pgd import pgd, pgd_l2, project_l2_ball, project_linf_ball, random_l2_start
from .robust_classifier import (
    AttackSettings,
    TrainingReport,
    classifier_accuracy,
    train_classifier,
    train_robust_classifier,
)

__all__ = [
    "AttackSettings",
    "TrainingReport",
    "train_classifier",
    "train_robust_classifier",
    "classifier_accuracy",
    "pgd",
    "pgd_l2",
    "project_l2_ball",
    "project_linf_ball",
    "random_l2_start",
    "save_checkpoint",
    "save_safetensors_atomic",
    "load_checkpoint",
    "read_checkpoint_state",
]
