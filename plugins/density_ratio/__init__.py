"""Density-ratio samplers (DRS, MH-GAN, SIR): the discriminator's density ratio, its calibration, the samplers."""

from .calibration import CalibratedHead, CalibratedScore, calibrate_discriminator, calibrated_copy, load_calibrated_discriminator
from .defaults import DEFAULTS
from .drs import DiscriminatorRejectionSampler, drs_f
from .mh import MetropolisHastingsSampler, MHStats
from .ratio import CalibrationReport, DensityRatio, IsotonicCalibrator, UncalibratedDiscriminatorWarning
from .sir import SamplingImportanceResampling, SIRStats, effective_sample_size

__all__ = [
    "DEFAULTS",
    "DiscriminatorRejectionSampler",
    "drs_f",
    "MetropolisHastingsSampler",
    "MHStats",
    "SamplingImportanceResampling",
    "SIRStats",
    "effective_sample_size",
    "DensityRatio",
    "IsotonicCalibrator",
    "CalibrationReport",
    "UncalibratedDiscriminatorWarning",
    "calibrate_discriminator",
    "load_calibrated_discriminator",
    "calibrated_copy",
    "CalibratedScore",
    "CalibratedHead",
]
