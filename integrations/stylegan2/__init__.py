"""Plugin ``stylegan2``: StyleGAN2 generators and discriminators of the NVlabs and rosinality codebases.

One job per module: ``base`` (what both share), ``discriminator`` (minibatch-std groups), ``nvlabs``
(NVlabs' StyleGAN2-ADA / StyleGAN3 and their pickles), ``rosinality`` (rosinality's stylegan2-pytorch
and its checkpoints); this face picks the codebase (:func:`stylegan2_adapter`) and registers both.

* :class:`StyleGAN2Adapter` (``"stylegan2"``) follows NVlabs'
  stylegan2-ada-pytorch / stylegan3 convention: ``G(z, c, truncation_psi,
  truncation_cutoff, noise_mode=...)``, ``G.mapping(z, c, ...) -> ws [N,
  num_ws, w_dim]``, ``G.mapping.w_avg``, ``G.synthesis`` with blocks ``b4 ..
  bR`` called as ``x, img = block(x, img, ws_slice)`` (StyleGAN2) or with
  ``input`` and layers ``layer_names`` called as ``x = layer(x, w)``
  (StyleGAN3), one-hot labels ``c``, ``D(img, c) -> [N, 1]``.
* :class:`RosinalityStyleGAN2Adapter` (``"stylegan2_rosinality"``) follows
  rosinality's stylegan2-pytorch: ``G([z], truncation=, truncation_latent=,
  input_is_latent=, randomize_noise=) -> (img, latent)``, ``G.style`` (the
  mapping network), ``conv1 / to_rgb1`` then pairs of ``convs`` and
  ``to_rgbs``; ``D(img) -> [N, 1]``.

Both truncate in w space (``w_avg + psi (w - w_avg)``; ``truncation_cutoff``
limits it to the first layers, NVlabs only): by default with the constructor's
``truncation_psi``, and with any other psi through the ``truncation`` sampler,
which calls the generator's own truncation (:attr:`Adapter.native_truncation`;
``Chain(adapter, TruncationSampler(0.7))`` gives exactly ``G(z, c,
truncation_psi=0.7)``). Both split the generator at
``"mapping"`` (the activation is the truncated ``ws``, so latent samplers can
work on w: :attr:`Adapter.mapping_layer`) and after every synthesis block but
the last (``"b4"``, ``"b8"``, ...; the activation is the block's feature map
and, in the skip architecture, its RGB image, stacked along channels), for
collaborative refinement. A StyleGAN3 synthesis network (``networks_stylegan3``,
configs stylegan3-t and stylegan3-r) has layers instead of blocks: it splits after
its ``"input"`` and after every layer but the ToRGB one, named as
``G.synthesis.layer_names`` names them (``"L0_36_512"``, ...). Images are clamped
to [-1, 1], as NVlabs' ``generate.py`` does when saving.

Their discriminators judge groups of samples together (minibatch standard
deviation). The wrapper declares the group size as the smallest batch it
scores and pads other batches to a multiple of it by repeating samples, so a
sample's score depends on the other members of its group, as in training.
StyleGAN2 discriminators are trained with the logistic loss, so their output
is declared a logit by default.

Loading NVlabs pickles executes code stored in them (``torch_utils.persistence``);
:func:`load_nvlabs_pickle` refuses unless called with
``allow_code_execution=True``. rosinality checkpoints are plain state dicts:
:func:`load_rosinality_checkpoint` loads them with ``weights_only=True``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gan_postproc import hookimpl
from gan_postproc.errors import InputError
from gan_postproc.pipeline.adapter import Adapter

from .defaults import DEFAULTS
from .discriminator import stylegan2_discriminator
from .nvlabs import CodeExecutionWarning, StyleGAN2Adapter, load_nvlabs_pickle
from .rosinality import RosinalityStyleGAN2Adapter, load_rosinality_checkpoint

__all__ = [
    "StyleGAN2Adapter",
    "RosinalityStyleGAN2Adapter",
    "stylegan2_adapter",
    "stylegan2_discriminator",
    "load_nvlabs_pickle",
    "load_rosinality_checkpoint",
    "CodeExecutionWarning",
    "DEFAULTS",
]


def stylegan2_adapter(generator: nn.Module, **options: Any) -> Adapter:
    """The adapter for ``generator``'s convention: NVlabs (``mapping``/``synthesis``) or rosinality (``style``/``convs``)."""
    if hasattr(generator, "mapping") and hasattr(generator, "synthesis"):
        return StyleGAN2Adapter(generator, **options)
    if hasattr(generator, "style") and hasattr(generator, "convs"):
        return RosinalityStyleGAN2Adapter(generator, **options)
    raise InputError(
        f"{type(generator).__name__} follows neither StyleGAN2 convention (NVlabs: .mapping and .synthesis; "
        "rosinality: .style and .convs); wrap it with TorchAdapter and a call= function instead"
    )


@hookimpl
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    return [StyleGAN2Adapter, RosinalityStyleGAN2Adapter]
