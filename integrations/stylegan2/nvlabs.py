"""NVlabs' StyleGAN2-ADA / StyleGAN3 generators (``"stylegan2"``) and their network pickles.

:class:`StyleGAN2Adapter` follows NVlabs' stylegan2-ada-pytorch / stylegan3 convention:
``G(z, c, truncation_psi, truncation_cutoff, noise_mode=...)``, ``G.mapping(z, c, ...) -> ws [N,
num_ws, w_dim]``, ``G.mapping.w_avg``, ``G.synthesis`` with blocks ``b4 .. bR`` called as ``x, img =
block(x, img, ws_slice)``, one-hot labels ``c``, ``D(img, c) -> [N, 1]``.

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

from gan_postproc.errors import CheckpointError
from gan_postproc.files.loading import CodeExecutionWarning, load_code_pickle
from gan_postproc.pipeline.priors import LatentPrior
from gan_postproc.pipeline.ranges import CHAIN_RANGE
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind
from gan_postproc.validation import check_count

from .base import NoiseMode, StyleGAN2Base, one_hot
from .discriminator import stylegan2_discriminator

__all__ = ["StyleGAN2Adapter", "load_nvlabs_pickle", "CodeExecutionWarning"]


class StyleGAN2Adapter(StyleGAN2Base):
    """Adapter for NVlabs StyleGAN2-ADA / StyleGAN3-style generators (``G.mapping``, ``G.synthesis``).

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
        synthesis_kwargs: more keyword arguments for the synthesis blocks
            (e.g. ``force_fp32=True`` on CPU for fp16 checkpoints).
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
    def img_channels(self) -> int:
        return int(self.generator.synthesis.img_channels)

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

    def block_resolutions(self) -> list[int]:
        return list(self.generator.synthesis.block_resolutions)

    def _block(self, position: int) -> nn.Module:
        return getattr(self.generator.synthesis, f"b{self.block_resolutions()[position]}")

    def _run_block(self, position: int, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        # The ws of block k start after the convolutions of blocks 0..k-1 (NVlabs' SynthesisNetwork.forward).
        start = sum(self._block(p).num_conv for p in range(position))
        block = self._block(position)
        return block(x, img, ws.narrow(1, start, block.num_conv + block.num_torgb), **self.synthesis_kwargs)

    def _block_has_image(self, position: int) -> bool:
        block = self._block(position)
        return bool(block.is_last or block.architecture == "skip")


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
