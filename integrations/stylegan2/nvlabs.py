"""NVlabs' StyleGAN2-ADA / StyleGAN3 generators (``"stylegan2"``) and their network pickles.

:class:`StyleGAN2Adapter` follows NVlabs' stylegan2-ada-pytorch / stylegan3 convention:
``G(z, c, truncation_psi, truncation_cutoff, noise_mode=...)``, ``G.mapping(z, c, ...) -> ws [N,
num_ws, w_dim]``, ``G.mapping.w_avg``, ``G.synthesis`` with blocks ``b4 .. bR`` called as ``x, img =
block(x, img, ws_slice)`` (StyleGAN2) or with ``input`` and layers ``layer_names`` called as
``x = layer(x, w)`` (StyleGAN3), one-hot labels ``c``, ``D(img, c) -> [N, 1]``.

Loading NVlabs pickles executes code stored in them (``torch_utils.persistence``);
:func:`load_nvlabs_pickle` refuses unless called with ``allow_code_execution=True``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
from collections.abc import Iterator
from typing import IO, Any

import torch
from torch import nn

from gan_postproc.errors import CheckpointError, InputError
from gan_postproc.files.loading import CodeExecutionWarning, load_code_pickle
from gan_postproc.pipeline.priors import LatentPrior
from gan_postproc.pipeline.ranges import CHAIN_RANGE
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind
from gan_postproc.validation import check_count

from .base import NoiseMode, SkipBlocks, State, StyleGAN2Base, Synthesis, one_hot
from .discriminator import stylegan2_discriminator

__all__ = ["StyleGAN2Adapter", "load_nvlabs_pickle", "CodeExecutionWarning"]


class _NVlabsBlocks(SkipBlocks):
    """NVlabs StyleGAN2's ``G.synthesis`` (``block_resolutions``, blocks ``b4 .. bR``)."""

    def __init__(self, synthesis: nn.Module, synthesis_kwargs: dict[str, Any]) -> None:
        super().__init__(list(synthesis.block_resolutions), int(synthesis.img_channels))
        self.synthesis, self.synthesis_kwargs = synthesis, synthesis_kwargs

    def _block(self, position: int) -> nn.Module:
        return getattr(self.synthesis, self.names[position])

    def has_image(self, position: int) -> bool:
        block = self._block(position)
        return bool(block.is_last or block.architecture == "skip")

    def run(self, position: int, state: State, ws: torch.Tensor) -> State:
        x, img = (None, None) if state is None else state
        # The ws of block k start after the convolutions of blocks 0..k-1 (NVlabs' SynthesisNetwork.forward).
        start = sum(self._block(p).num_conv for p in range(position))
        block = self._block(position)
        return block(x, img, ws.narrow(1, start, block.num_conv + block.num_torgb), **self.synthesis_kwargs)


class _NVlabsLayers(Synthesis):
    """StyleGAN3's ``G.synthesis`` (``networks_stylegan3``): ``input`` (Fourier features) from ``ws[:, 0]``,
    then the layers ``layer_names`` (``L0_36_512`` ...; the last one is ToRGB), layer ``k`` on ``ws[:, k + 1]``,
    and the output scaled by ``output_scale``."""

    def __init__(self, synthesis: nn.Module, synthesis_kwargs: dict[str, Any]) -> None:
        self.synthesis, self.synthesis_kwargs = synthesis, synthesis_kwargs
        self.names = ["input", *synthesis.layer_names]

    def run(self, position: int, state: State, ws: torch.Tensor) -> State:
        w = ws[:, position].to(torch.float32)
        if position == 0:
            return self.synthesis.input(w)
        return getattr(self.synthesis, self.names[position])(state, w, **self.synthesis_kwargs)

    def activation(self, position: int, state: State) -> torch.Tensor:
        return state

    def state(self, position: int, activation: torch.Tensor) -> State:
        return activation

    def image(self, state: State) -> torch.Tensor:
        scale = float(self.synthesis.output_scale)
        return (state * scale if scale != 1 else state).to(torch.float32)


class StyleGAN2Adapter(StyleGAN2Base):
    """Adapter for NVlabs StyleGAN2-ADA and StyleGAN3 generators (``G.mapping``, ``G.synthesis``).

    Split points after ``"mapping"``: a StyleGAN2 synthesis network (``block_resolutions``;
    stylegan2-ada-pytorch, StyleGAN3's ``networks_stylegan2``) splits after its blocks ``"b4"``,
    ``"b8"``, ...; a StyleGAN3 one (``layer_names``; ``networks_stylegan3``, configs stylegan3-t and
    stylegan3-r) after its ``"input"`` (Fourier features) and every layer but the ToRGB one
    (``"L0_36_512"``, ...: the names ``G.synthesis.layer_names`` lists).

    Args:
        generator: ``G`` (or ``G_ema``), with ``z_dim``, ``c_dim``, ``mapping``
            and ``synthesis``. Put in eval mode (so ``w_avg`` is not updated).
        truncation_psi: w-space truncation ``w_avg + psi (w - w_avg)``, in [0, 1]:
            the default of every call; the ``truncation`` sampler overrides it
            per chain (see the module docs)
        truncation_cutoff: truncate only the first ``cutoff`` of the ``ws``
            (``None``: all).
        noise_mode: ``"const"`` (deterministic, default), ``"random"``
            (fresh noise each call, not keyed by sample index) or ``"none"``.
        synthesis_kwargs: more keyword arguments for the synthesis blocks or layers
            (e.g. ``force_fp32=True`` for fp16 networks).
        discriminator: ``D(img, c)`` or a ready :class:`Discriminator`.
        discriminator_output: its convention (default ``"logit"``: the logistic loss).
        classifier: a :class:`Classifier` (or module with ``num_classes``).

    Labels are class indices; the adapter passes them one-hot as ``c``.
    """

    name = "stylegan2"
    required_attributes = ("z_dim", "c_dim", "mapping", "synthesis")
    other_convention = "For rosinality's stylegan2-pytorch use RosinalityStyleGAN2Adapter"

    def __init__(
        self,
        generator: nn.Module,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: NoiseMode = "const",
        synthesis_kwargs: dict[str, Any] | None = None,
        discriminator: nn.Module | Discriminator | None = None,
        discriminator_output: ScoreKind | str = ScoreKind.LOGIT,
        classifier: nn.Module | Classifier | None = None,
    ) -> None:
        super().__init__(
            generator, truncation_psi=truncation_psi, noise_mode=noise_mode, discriminator=discriminator,
            discriminator_output=discriminator_output, classifier=classifier,
        )
        self.truncation_cutoff = None if truncation_cutoff is None else check_count(truncation_cutoff, "truncation_cutoff")
        self.synthesis_kwargs = {"noise_mode": noise_mode, **(synthesis_kwargs or {})}
        synthesis = generator.synthesis
        if hasattr(synthesis, "block_resolutions"):
            self._stages: Synthesis = _NVlabsBlocks(synthesis, self.synthesis_kwargs)
        elif hasattr(synthesis, "layer_names") and hasattr(synthesis, "input"):
            self._stages = _NVlabsLayers(synthesis, self.synthesis_kwargs)
        else:
            raise InputError(
                f"{type(synthesis).__name__} (G.synthesis) has neither block_resolutions (StyleGAN2) nor input and layer_names "
                "(StyleGAN3); wrap other generators with TorchAdapter and a call= function instead"
            )
        self.prior = LatentPrior.of(int(generator.z_dim))
        self.c_dim = int(generator.c_dim)
        self.num_classes = self.c_dim if self.c_dim > 0 else None

    def _wrap_discriminator(self, discriminator: nn.Module | Discriminator, output: ScoreKind | str) -> Discriminator:
        return stylegan2_discriminator(discriminator, output=output)

    @property
    def w_avg(self) -> torch.Tensor:
        """The tracked average ``w`` (``G.mapping.w_avg``), ``[w_dim]``."""
        return self.generator.mapping.w_avg

    @property
    def synthesis_stages(self) -> Synthesis:
        return self._stages

    def labels_from_native(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.argmax(dim=1) if labels.dim() == 2 else labels

    def _c(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return one_hot(labels, self.c_dim, latents.shape[0], latents.device)

    def _generate_at(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        img = self.generator(
            latents, self._c(latents, labels), truncation_psi=psi, truncation_cutoff=self.truncation_cutoff, **self.synthesis_kwargs
        )
        return img.clamp(*CHAIN_RANGE)

    def mapping(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator.mapping(
            latents, self._c(latents, labels), truncation_psi=self.truncation_psi, truncation_cutoff=self.truncation_cutoff
        )


@contextlib.contextmanager
def _on_sys_path(root: str | os.PathLike[str] | None) -> Iterator[None]:
    if root is None:
        yield
        return
    sys.path.insert(0, os.fspath(root))
    try:
        yield
    finally:
        sys.path.remove(os.fspath(root))


def load_nvlabs_pickle(
    path: str | os.PathLike[str],
    *,
    allow_code_execution: bool = False,
    nvlabs_root: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Load a network pickle of stylegan2-ada-pytorch / stylegan3 (``{'G', 'D', 'G_ema', ...}``).

    These pickles carry the networks' source code and run it while loading
    (``torch_utils.persistence``): loading one runs whatever its author put in
    it. This function therefore refuses unless ``allow_code_execution=True``,
    and warns (:class:`CodeExecutionWarning`) when it does load. Only load
    pickles from sources you trust.

    Args:
        path: the ``.pkl`` file.
        allow_code_execution: the explicit opt-in; default ``False`` refuses.
        nvlabs_root: a checkout of the NVlabs repository, put on ``sys.path``
            while unpickling (its ``torch_utils`` and ``dnnlib`` must be importable).

    Raises:
        UnsafeCheckpointError: without the opt-in (nothing is read).
        CheckpointError: if the file is missing or is not such a pickle.
    """
    path = os.fspath(path)

    def unpickle(file: IO[bytes]) -> Any:
        with _on_sys_path(nvlabs_root):
            try:
                return pickle.load(file)  # noqa: S301 - the caller opted in (load_code_pickle checks)
            except ModuleNotFoundError as error:
                raise CheckpointError(
                    f"unpickling {path!r} needs the NVlabs code ({error.name!r} is missing); pass nvlabs_root= pointing "
                    "to a stylegan2-ada-pytorch or stylegan3 checkout"
                ) from error

    data = load_code_pickle(
        path, "StyleGAN2 network pickle", allow=allow_code_execution, load=unpickle, stacklevel=3,
        opt_in="call load_nvlabs_pickle(path, allow_code_execution=True) (NVlabs' torch_utils.persistence runs code from it)",
    )
    if not isinstance(data, dict) or not any(key in data for key in ("G", "G_ema", "D")):
        raise CheckpointError(f"{path!r} is not a StyleGAN2 network pickle (expected a dict with 'G_ema', 'G', 'D')")
    return data
