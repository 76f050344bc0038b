"""Collaborative sampling (Liu et al., AAAI 2020): the refiner (Algorithm 1) and discriminator shaping (Algorithm 2)."""

from .defaults import DEFAULTS
from .refiner import SELECTIONS, CollaborativeRefiner, RefinementResult, Selection, collaborative_refine, mean_realness, refinement_floor
from .shaped_files import (
    SHAPED_DIGITS_FILE,
    SHAPED_DIGITS_SETTINGS,
    load_shaped_discriminator,
    save_shaped_discriminator,
    shipped_shaped_digits_discriminator,
)
from .shaping import shape_discriminator

__all__ = [
    "DEFAULTS",
    "CollaborativeRefiner",
    "RefinementResult",
    "Selection",
    "SELECTIONS",
    "collaborative_refine",
    "mean_realness",
    "refinement_floor",
    "shape_discriminator",
    "save_shaped_discriminator",
    "load_shaped_discriminator",
    "shipped_shaped_digits_discriminator",
    "SHAPED_DIGITS_FILE",
    "SHAPED_DIGITS_SETTINGS",
]
