"""Plugin ``prior``: plain sampling from the generator's prior (the baseline)."""

from __future__ import annotations

from gan_postproc import hookimpl
from gan_postproc.pipeline.sampler import LatentSampler, PriorSampler


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [PriorSampler]
