"""StyleGAN2 and StyleGAN3 generators of two codebases: NVlabs' (stylegan2-ada-pytorch, stylegan3) and rosinality's."""

from .nvlabs import (
    CodeExecutionWarning,
    RosinalityStyleGAN2Adapter,
    StyleGAN2Adapter,
    load_nvlabs_pickle,
    load_rosinality_checkpoint,
    stylegan2_adapter,
    stylegan2_discriminator,
)

__all__ = [
    "StyleGAN2Adapter",
    "RosinalityStyleGAN2Adapter",
    "stylegan2_adapter",
    "stylegan2_discriminator",
    "load_nvlabs_pickle",
    "load_rosinality_checkpoint",
    "CodeExecutionWarning",
]
