"""Plugin ``stylegan2``: StyleGAN2 generators and discriminators of the NVlabs and rosinality codebases.

* :class:`StyleGAN2Adapter` (``"stylegan2"``) follows NVlabs'
  stylegan2-ada-pytorch / stylegan3 convention: ``G(z, c, truncation_psi,
  truncation_cutoff, noise_mode=...)``, ``G.mapping(z, c, ...) -> ws [N,
  num_ws, w_dim]``, ``G.mapping.w_avg``, ``G.synthesis`` with blocks ``b4 ..
  bR`` called as ``x, img = block(x, img, ws_slice)``, one-hot labels ``c``,
  ``D(img, c) -> [N, 1]``.
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
collaborative refinement. Images are clamped to [-1, 1], as NVlabs'
``generate.py`` does when saving.

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

import abc
import argparse
import contextlib
import inspect
import os
import pickle
import sys
from collections.abc import Iterator
from typing import IO, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gan_postproc import hookimpl
from gan_postproc.pipeline.adapter import Adapter
from .defaults import DEFAULTS
from gan_postproc.errors import CheckpointError, InputError, InputTypeError
from gan_postproc.files.loading import CodeExecutionWarning, load_code_pickle, torch_load_weights
from gan_postproc.pipeline.priors import LatentPrior
from gan_postproc.pipeline.ranges import CHAIN_RANGE
from gan_postproc.rng import normal
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind, as_classifier
from gan_postproc.pipeline.splitting import module_device
from gan_postproc.validation import check_count, check_probability

__all__ = [
    "StyleGAN2Adapter",
    "RosinalityStyleGAN2Adapter",
    "stylegan2_adapter",
    "stylegan2_discriminator",
    "load_nvlabs_pickle",
    "load_rosinality_checkpoint",
    "CodeExecutionWarning",
]

NoiseMode = Literal["const", "random", "none"]
MAPPING_LAYER = "mapping"


# --- discriminators ----------------------------------------------------------------------------


def _group_size(discriminator: nn.Module) -> int:
    """The minibatch-std group size the discriminator was built with (1 without such a layer).

    NVlabs: ``D.b4.mbstd.group_size`` (``None`` means the whole batch, which
    cannot be padded to; then 1). rosinality: ``D.stddev_group``.
    """
    epilogue = getattr(discriminator, "b4", None)
    if epilogue is not None and hasattr(epilogue, "mbstd"):
        mbstd = epilogue.mbstd
        return 1 if mbstd is None or mbstd.group_size is None else int(mbstd.group_size)
    group = getattr(discriminator, "stddev_group", None)
    return 1 if group is None else int(group)


def _padded_scores(x: torch.Tensor, call: Any, group: int) -> torch.Tensor:
    """Score ``x`` in batches that are a multiple of ``group``, padding with repeated samples."""
    n = x.shape[0]
    total = -(-n // group) * group
    rows = torch.arange(total, device=x.device) % n
    return call(x[rows], rows)[:n]


def stylegan2_discriminator(
    discriminator: nn.Module,
    *,
    output: ScoreKind | str = ScoreKind.LOGIT,
    c_dim: int | None = None,
    group_size: int | None = None,
) -> Discriminator:
    """Wrap a StyleGAN2 discriminator (NVlabs ``D(img, c)`` or rosinality ``D(img)``).

    Args:
        discriminator: the network; images in [-1, 1].
        output: its output convention; StyleGAN2's logistic loss makes it a logit.
        c_dim: label dimension of an NVlabs ``D`` (default ``D.c_dim``; 0 or
            ``None``: unconditional). Labels are passed one-hot.
        group_size: minibatch-std group size (default: read from the network).
            Batches smaller than it are refused; others are padded to a
            multiple of it by repeating samples.
    """
    if isinstance(discriminator, Discriminator):
        return discriminator
    if not isinstance(discriminator, nn.Module):
        raise InputTypeError(f"discriminator must be a torch.nn.Module, got {type(discriminator).__name__}")
    nvlabs = "c" in _forward_parameters(discriminator)
    c_dim = int(getattr(discriminator, "c_dim", 0) or 0) if c_dim is None else c_dim
    group = check_count(group_size if group_size is not None else _group_size(discriminator), "group_size")

    def forward(module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if not nvlabs:
            return _padded_scores(x, lambda images, rows: module(images), group)
        c = _one_hot(labels, c_dim, x.shape[0], x.device)
        return _padded_scores(x, lambda images, rows: module(images, c[rows]), group)

    return Discriminator(discriminator, output, conditional=nvlabs and c_dim > 0, min_batch_size=group, forward_fn=forward)


def _forward_parameters(module: nn.Module) -> list[str]:
    return list(inspect.signature(module.forward).parameters)


def _one_hot(labels: torch.Tensor | None, c_dim: int, n: int, device: torch.device) -> torch.Tensor:
    """NVlabs' label input: one-hot ``[N, c_dim]``, or ``[N, 0]`` for an unconditional network."""
    if c_dim == 0 or labels is None:
        return torch.zeros(n, c_dim, device=device)
    return F.one_hot(labels.to(device), c_dim).float()


# --- the shared adapter machinery ----------------------------------------------------------------


class _StyleGAN2Base(Adapter):
    """Truncation in w, the split at ``mapping`` and at synthesis blocks, clamping; conventions in subclasses."""

    mapping_layer = MAPPING_LAYER
    native_truncation = True

    #: Attributes a generator of this convention has, and the hint when one is missing.
    required_attributes: tuple[str, ...] = ()
    other_convention: str = ""

    def __init__(
        self,
        generator: nn.Module,
        *,
        truncation_psi: float,
        noise_mode: NoiseMode,
        discriminator: nn.Module | Discriminator | None,
        discriminator_output: ScoreKind | str,
        classifier: nn.Module | Classifier | None,
    ) -> None:
        if not isinstance(generator, nn.Module):
            raise InputTypeError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
        for attribute in self.required_attributes:
            if not hasattr(generator, attribute):
                raise InputError(
                    f"{type(self).__name__} needs a generator with .{attribute}; {type(generator).__name__} has none. "
                    f"{self.other_convention} (or stylegan2_adapter, which picks)"
                )
        if noise_mode not in ("const", "random", "none"):
            raise InputError(f"noise_mode must be 'const' (deterministic, NVlabs' default for generation), 'random' or 'none', got {noise_mode!r}")
        self.generator = generator.eval()
        self.truncation_psi = check_probability(truncation_psi, "truncation_psi")
        self.noise_mode = noise_mode
        self.discriminator = None if discriminator is None else self._wrap_discriminator(discriminator, discriminator_output)
        self.classifier = as_classifier(classifier, None)
        for model in (self.discriminator, self.classifier):
            if model is not None:
                model.eval()

    @abc.abstractmethod
    def _wrap_discriminator(self, discriminator: nn.Module | Discriminator, output: ScoreKind | str) -> Discriminator:
        """The discriminator wrapped with this convention's call."""

    @property
    def device(self) -> torch.device:
        return module_device(self.generator)

    def to(self, device: torch.device | str) -> _StyleGAN2Base:
        return self._move_models(device, self.generator, self.discriminator, self.classifier)  # type: ignore[return-value]

    # A synthesis network is a list of blocks; each subclass says how to run one.

    def _generate(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self._generate_at(latents, labels, self.truncation_psi)

    def _generate_truncated(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        """The generator's own w-space truncation with ``psi`` in (0, 1] instead of the constructor's."""
        return self._generate_at(latents, labels, check_probability(psi, "psi (w-space truncation)", open_low=True))

    @abc.abstractmethod
    def _generate_at(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        """Images in [-1, 1] from the generator's own forward call with w-space truncation ``psi``."""

    @abc.abstractmethod
    def mapping(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Truncated ``ws`` ``[N, num_ws, w_dim]`` for checked latents (and labels), with the constructor's psi."""

    @abc.abstractmethod
    def block_resolutions(self) -> list[int]:
        """Resolutions of the synthesis blocks, from 4 to the output resolution."""

    @abc.abstractmethod
    def _run_block(self, position: int, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Block ``position`` of the synthesis network: ``(x, img) -> (x, img)``."""

    @abc.abstractmethod
    def _block_has_image(self, position: int) -> bool:
        """Whether block ``position`` outputs an RGB image next to its features."""

    @property
    @abc.abstractmethod
    def img_channels(self) -> int:
        """Channels of the generated images."""

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "truncation_psi": self.truncation_psi, "noise_mode": self.noise_mode}

    def _inner_layer_names(self) -> list[str]:
        return [MAPPING_LAYER] + [f"b{res}" for res in self.block_resolutions()[:-1]]

    def _synthesize(self, ws: torch.Tensor, state: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None), start: int = 0, stop: int | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, img = state
        for position in range(start, len(self.block_resolutions()) if stop is None else stop):
            x, img = self._run_block(position, x, img, ws)
        return x, img

    def _activation_at(self, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        ws = self.mapping(latents, labels)
        if layer == MAPPING_LAYER:
            return ws
        position = self._block_position(layer)
        x, img = self._synthesize(ws, stop=position + 1)
        return x if img is None else torch.cat([x, img], dim=1)

    def _decode_from(self, activation: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        if layer == MAPPING_LAYER:
            _, img = self._synthesize(activation)
            return img.clamp(*CHAIN_RANGE)
        position = self._block_position(layer)
        ws = self.mapping(latents, labels)
        if self._block_has_image(position):
            x, img = activation[:, : -self.img_channels], activation[:, -self.img_channels :]
        else:
            x, img = activation, None
        _, img = self._synthesize(ws, (x, img), start=position + 1)
        return img.clamp(*CHAIN_RANGE)

    def _block_position(self, layer: str) -> int:
        return [f"b{res}" for res in self.block_resolutions()].index(layer)


# --- NVlabs ----------------------------------------------------------------------------------------


class StyleGAN2Adapter(_StyleGAN2Base):
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
        return _one_hot(labels, self.c_dim, latents.shape[0], latents.device)

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


# --- rosinality ----------------------------------------------------------------------------------


class RosinalityStyleGAN2Adapter(_StyleGAN2Base):
    """Adapter for rosinality's stylegan2-pytorch ``Generator`` (unconditional).

    Args:
        generator: ``Generator(size, style_dim, n_mlp, ...)``.
        truncation_psi: w-space truncation, in [0, 1]: the default of every
            call; the ``truncation`` sampler overrides it per chain
        truncation_latent: ``w_avg`` ``[1, style_dim]``; default: the mean of
            ``G.style(z)`` over ``DEFAULTS.stylegan_mean_latent_samples``
            latents keyed by ``seed`` (rosinality's ``mean_latent`` with a
            reproducible draw).
        noise_mode: ``"const"`` (the registered noise buffers,
            ``randomize_noise=False``; default), ``"random"`` or ``"none"`` (zeros).
        discriminator: rosinality's ``Discriminator`` or a ready :class:`Discriminator`.
        discriminator_output: default ``"logit"`` (logistic loss).
        classifier: a :class:`Classifier`.
        seed: keys the draw of ``truncation_latent``.
    """

    name = "stylegan2_rosinality"
    required_attributes = ("style", "style_dim", "n_latent", "num_layers", "convs", "to_rgbs")
    other_convention = "For NVlabs networks use StyleGAN2Adapter"

    def __init__(
        self,
        generator: nn.Module,
        *,
        truncation_psi: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
        noise_mode: NoiseMode = "const",
        discriminator: nn.Module | Discriminator | None = None,
        discriminator_output: ScoreKind | str = ScoreKind.LOGIT,
        classifier: nn.Module | Classifier | None = None,
        seed: int = DEFAULTS.seed,
    ) -> None:
        super().__init__(
            generator, truncation_psi=truncation_psi, noise_mode=noise_mode, discriminator=discriminator,
            discriminator_output=discriminator_output, classifier=classifier,
        )
        self.prior = LatentPrior.of(int(generator.style_dim))
        if truncation_latent is None:
            indices = torch.arange(DEFAULTS.stylegan_mean_latent_samples)
            with torch.no_grad():
                truncation_latent = generator.style(normal(seed, indices, (generator.style_dim,), "stylegan_mean_latent").to(self.device)).mean(0, keepdim=True)
        self.truncation_latent = truncation_latent.detach().reshape(1, -1)

    def _wrap_discriminator(self, discriminator: nn.Module | Discriminator, output: ScoreKind | str) -> Discriminator:
        return stylegan2_discriminator(discriminator, output=output)

    @property
    def w_avg(self) -> torch.Tensor:
        """The truncation centre, ``[style_dim]``."""
        return self.truncation_latent[0]

    @property
    def img_channels(self) -> int:
        return 3

    def _noise(self) -> list[torch.Tensor | None]:
        G = self.generator
        if self.noise_mode == "random":
            return [None] * G.num_layers
        buffers = [getattr(G.noises, f"noise_{i}") for i in range(G.num_layers)]
        return buffers if self.noise_mode == "const" else [torch.zeros_like(b) for b in buffers]

    def _generate_at(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        img, _ = self.generator(
            [latents], truncation=psi, truncation_latent=self.truncation_latent.to(latents.device), noise=self._noise()
        )
        return img.clamp(*CHAIN_RANGE)

    def mapping(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        w = self.generator.style(latents)
        if self.truncation_psi < 1:
            centre = self.truncation_latent.to(w.device)
            w = centre + self.truncation_psi * (w - centre)
        return w.unsqueeze(1).repeat(1, self.generator.n_latent, 1)

    def block_resolutions(self) -> list[int]:
        return [4 * 2**k for k in range(len(self.generator.to_rgbs) + 1)]

    def _run_block(self, position: int, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        G, noise = self.generator, self._noise()
        if position == 0:  # rosinality's forward: input, conv1, to_rgb1
            x = G.conv1(G.input(ws), ws[:, 0], noise=noise[0])
            return x, G.to_rgb1(x, ws[:, 1])
        i = 2 * position - 1  # the first style index of this block, as rosinality's loop counts
        x = G.convs[i - 1](x, ws[:, i], noise=noise[i])
        x = G.convs[i](x, ws[:, i + 1], noise=noise[i + 1])
        return x, G.to_rgbs[position - 1](x, ws[:, i + 2], img)

    def _block_has_image(self, position: int) -> bool:
        return True


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


# --- checkpoints -----------------------------------------------------------------------------------


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


def load_rosinality_checkpoint(path: str | os.PathLike[str], key: str | None = "g_ema") -> dict[str, Any]:
    """State dicts from a rosinality checkpoint (``{'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args'}``).

    Loaded with ``torch.load(weights_only=True)`` (no code runs; the stored
    ``argparse.Namespace`` of training arguments is allowed). Returns the state
    dict under ``key`` (``"g_ema"`` by default; load it with
    ``G.load_state_dict(...)``), or the whole dict for ``key=None``.
    """
    path = os.fspath(path)
    checkpoint = torch_load_weights(path, "rosinality checkpoint", allowed=[argparse.Namespace])
    if key is None:
        return checkpoint
    if not isinstance(checkpoint, dict) or key not in checkpoint:
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path!r} has no {key!r} entry (found {found})")
    return checkpoint[key]


@hookimpl
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    return [StyleGAN2Adapter, RosinalityStyleGAN2Adapter]
