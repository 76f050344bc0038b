"""Classifier in the loop (Slim 2020, CBGAN): filter and class balance by a classifier, an ensemble of
generators, and reweighting real samples by their distance to generated ones."""

from .class_balance import ClassBalanceSampler
from .classifier_filter import ClassifierFilter, passes_filter
from .defaults import DEFAULTS
from .ensemble import Ensemble, generator_choice
from .real_sample_reweighting import TRANSFORMS, distance_sums, reweight_real_samples

__all__ = [
    "DEFAULTS",
    "ClassifierFilter",
    "passes_filter",
    "ClassBalanceSampler",
    "Ensemble",
    "generator_choice",
    "reweight_real_samples",
    "distance_sums",
    "TRANSFORMS",
]
