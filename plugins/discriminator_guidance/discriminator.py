"""DG's time-dependent discriminator d_phi(x_t, t): a frozen feature extractor and a trainable head with a time embedding.

Kim et al., *Refining Generative Process with Discriminator Guidance in
Score-based Diffusion Models* (ICML 2023), Section 3: the discriminator sees
a *noised* sample x_t at diffusion time t and estimates whether it was
diffused from real data or from the model; the paper builds it from the
encoder of a pretrained (noise-aware) ADM classifier, kept frozen, and a small
trainable network on top that takes the time embedding. Here the extractor is
any ``nn.Module`` the user chooses; it is frozen (``requires_grad_(False)``,
eval mode) and, with ``extractor_takes_time=True``, called as
``extractor(x_t, t)`` (a noise-aware encoder such as ADM's) instead of
``extractor(x_t)``.

The output is the *logit* ``log d / (1 - d)``, which is exactly what DG's
correction differentiates and DiffRS's acceptance exponentiates, so no
clipping of ``d`` is needed (the reference code clips ``d`` to
``[1e-5, 1 - 1e-5]`` before taking the log; the logit is the same function
without that saturation).

Time is the integer diffusion timestep ``t`` in ``[0, num_timesteps)`` of the
training schedule (diffusers' convention), embedded sinusoidally; the
discriminator records ``num_timesteps`` and refuses a sampler whose schedule
has another length.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_postproc.errors import CheckpointError, InputError, InputTypeError
from gan_postproc.files.checkpoints import save_safetensors_atomic
from gan_postproc.files.loading import load_state_dict_strict, metadata_json, read_safetensors
from gan_postproc.validation import check_count, check_labels, check_tensor

from .defaults import DEFAULTS

__all__ = ["TimeDependentDiscriminator", "timestep_embedding", "extractor_fingerprint", "DISCRIMINATOR_FORMAT"]

#: Written into every saved discriminator's metadata.
DISCRIMINATOR_FORMAT = "gan_postproc.dg_discriminator/1"


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of timesteps ``[N]`` -> ``[N, dim]`` (Vaswani et al. 2017; as in DDPM/ADM time embeddings)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * frequencies[None, :]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
    return torch.nn.functional.pad(embedding, (0, dim % 2))


def extractor_fingerprint(extractor: nn.Module) -> str:
    """SHA-256 of the extractor's class name and every tensor of its state dict (names, shapes, bytes).

    A saved discriminator records it, so loading it onto another extractor
    (other weights, other architecture) is refused instead of silently
    producing meaningless guidance.
    """
    digest = hashlib.sha256(type(extractor).__name__.encode())
    for name, value in sorted(extractor.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class _TimeBlock(nn.Module):
    """``h + Linear(SiLU(LayerNorm(h) * (1 + scale(e)) + shift(e)))``: a residual MLP block modulated by the time embedding ``e``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation = nn.Linear(width, 2 * width)
        self.linear = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        scale, shift = self.modulation(embedding).chunk(2, dim=1)
        return h + self.linear(torch.nn.functional.silu(self.norm(h) * (1 + scale) + shift))


class TimeDependentDiscriminator(nn.Module):
    """d_phi(x_t, t) = sigmoid(head(extractor(x_t), t)): returns the logit ``log d / (1 - d)`` per sample, ``[N]``.

    Args:
        feature_extractor: any ``nn.Module`` mapping ``[N, *input_shape]`` (and,
            with ``extractor_takes_time``, timesteps ``[N]``) to features
            ``[N, ...]`` (flattened here). Frozen: never trained, never put in
            train mode; its gradients w.r.t. the *input* still flow (DG needs
            them).
        input_shape: ``(C, H, W)`` of x_t, the space the diffusion model
            denoises in (pixels, or VAE latents for latent diffusion).
        num_timesteps: length T of the training schedule; ``t`` is an integer
            timestep in ``[0, T)``.
        num_classes: classes of a class-conditional discriminator (projection
            term ``<embed(y), h>``, Miyato & Koyama 2018, as DG's conditional
            discriminator takes the label), ``None`` for an unconditional one.
        width, depth, time_embedding_dim: the head's size.
        extractor_takes_time: call ``feature_extractor(x_t, t)``.
        seed: seeds every initialisation of the head (the global RNG is left untouched).

    The feature size is read by running the extractor once on zeros of
    ``input_shape`` (a wrong ``input_shape`` fails here, before any training).
    """

    def __init__(
        self,
        feature_extractor: nn.Module,
        *,
        input_shape: Sequence[int],
        num_timesteps: int,
        num_classes: int | None = None,
        width: int = DEFAULTS.head_width,
        depth: int = DEFAULTS.head_depth,
        time_embedding_dim: int = DEFAULTS.time_embedding_dim,
        extractor_takes_time: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(feature_extractor, nn.Module):
            raise InputTypeError(f"feature_extractor must be a torch.nn.Module, got {type(feature_extractor).__name__}")
        self.input_shape = tuple(check_count(s, "input_shape entry") for s in input_shape)
        self.num_timesteps = check_count(num_timesteps, "num_timesteps")
        self.num_classes = None if num_classes is None else check_count(num_classes, "num_classes")
        self.width, self.depth = check_count(width, "width"), check_count(depth, "depth")
        self.time_embedding_dim = check_count(time_embedding_dim, "time_embedding_dim", minimum=2)
        self.extractor_takes_time = bool(extractor_takes_time)
        #: The training record of a loaded file (``info`` of :meth:`save`), else empty.
        self.info: dict[str, Any] = {}
        self.extractor = feature_extractor.eval().requires_grad_(False)
        self.feature_dim = self._probe_feature_dim()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.time_mlp = nn.Sequential(nn.Linear(self.time_embedding_dim, self.width), nn.SiLU(), nn.Linear(self.width, self.width))
            self.project = nn.Linear(self.feature_dim, self.width)
            self.blocks = nn.ModuleList(_TimeBlock(self.width) for _ in range(self.depth))
            self.out = nn.Linear(self.width, 1)
            self.class_embed = None
            if self.num_classes is not None:
                self.class_embed = nn.Embedding(self.num_classes, self.width)
                nn.init.xavier_uniform_(self.class_embed.weight)
        self.to(self._extractor_device())

    # -- the network --------------------------------------------------------------------

    def _extractor_device(self) -> torch.device:
        tensor = next(iter(self.extractor.parameters()), None)
        if tensor is None:
            tensor = next(iter(self.extractor.buffers()), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    def _probe_feature_dim(self) -> int:
        device = self._extractor_device()
        x = torch.zeros(1, *self.input_shape, device=device)
        try:
            with torch.no_grad():
                features = self._features(x, torch.zeros(1, dtype=torch.long, device=device))
        except Exception as error:
            raise InputError(
                f"the feature extractor ({type(self.extractor).__name__}) failed on an input of shape "
                f"{(1, *self.input_shape)} (input_shape={self.input_shape}, extractor_takes_time={self.extractor_takes_time}): "
                f"{type(error).__name__}: {error}; pass the shape the diffusion model denoises in"
            ) from error
        return int(features.shape[1])

    def _features(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        features = self.extractor(x, t) if self.extractor_takes_time else self.extractor(x)
        if not isinstance(features, torch.Tensor) or features.dim() < 2 or features.shape[0] != x.shape[0]:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise InputError(f"the feature extractor must return a tensor [N, ...] of features, got {shape} for input {tuple(x.shape)}")
        return features.flatten(1).float()

    def train(self, mode: bool = True) -> TimeDependentDiscriminator:
        """Train mode for the head only: the frozen extractor always stays in eval mode."""
        super().train(mode)
        self.extractor.eval()
        return self

    def head_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters (the head; the extractor is frozen)."""
        return [p for name, p in self.named_parameters() if not name.startswith("extractor.")]

    def check_input(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Validate ``x [N, *input_shape]``, ``t [N]`` (or a scalar) and the labels; returns them on the head's device."""
        check_tensor(x, "x_t", ndim=len(self.input_shape) + 1, floating=True)
        if tuple(x.shape[1:]) != self.input_shape:
            raise InputError(
                f"this discriminator was built for inputs {self.input_shape}, got x_t of shape {tuple(x.shape[1:])}; "
                "train a discriminator in the space this diffusion model denoises in (pixels, or the VAE's latents)"
            )
        device = self.out.weight.device
        t = torch.as_tensor(t, device=device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise InputError(f"t must be a scalar or one timestep per sample ({x.shape[0]}), got shape {tuple(t.shape)}")
        if self.num_classes is None and labels is not None:
            raise InputError("this discriminator is unconditional; call it without labels")
        if self.num_classes is not None:
            if labels is None:
                raise InputError(f"this discriminator is class-conditional ({self.num_classes} classes); pass labels [N]")
            labels = check_labels(torch.as_tensor(labels, device=device), "labels", num_classes=self.num_classes, n=x.shape[0])
        return x.to(device), t, labels

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``x_t [N, *input_shape]``, timesteps ``t [N]`` (integers in ``[0, T)``) -> logits ``log d / (1 - d)``, ``[N]``."""
        x, t, labels = self.check_input(x, t, labels)
        h = self.project(self._features(x.float(), t))
        embedding = self.time_mlp(timestep_embedding(t, self.time_embedding_dim))
        for block in self.blocks:
            h = block(h, embedding)
        h = torch.nn.functional.silu(h)
        logit = self.out(h)[:, 0]
        if self.class_embed is not None:
            logit = logit + (self.class_embed(labels) * h).sum(dim=1)
        return logit

    # -- files ----------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The head's settings (what :meth:`load` rebuilds from) and the extractor's fingerprint."""
        return {
            "input_shape": list(self.input_shape),
            "num_timesteps": self.num_timesteps,
            "num_classes": self.num_classes,
            "width": self.width,
            "depth": self.depth,
            "time_embedding_dim": self.time_embedding_dim,
            "extractor_takes_time": self.extractor_takes_time,
            "feature_dim": self.feature_dim,
            "extractor": type(self.extractor).__name__,
            "extractor_sha256": extractor_fingerprint(self.extractor),
        }

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """The head's tensors (the extractor's are the user's and are not stored)."""
        return {key: value for key, value in self.state_dict().items() if not key.startswith("extractor.")}

    def save(self, path: str | Path, info: dict[str, Any] | None = None) -> Path:
        """Write the head (safetensors, atomic) with its config and ``info`` (training record) in the metadata."""
        metadata = {"format": DISCRIMINATOR_FORMAT, "config": json.dumps(self.config()), "info": json.dumps(info or {})}
        return save_safetensors_atomic(self.head_state_dict(), path, metadata)

    @classmethod
    def load(cls, path: str | Path, feature_extractor: nn.Module, *, check_extractor: bool = True) -> TimeDependentDiscriminator:
        """Rebuild a saved discriminator on ``feature_extractor`` (eval mode).

        Raises:
            CheckpointError: if the file is not a saved DG discriminator, or
                (with ``check_extractor``) the extractor differs from the one it
                was trained on (its fingerprint), or the weights do not fit.
        """
        tensors, metadata = read_safetensors(path, "DG discriminator file")
        if metadata.get("format") != DISCRIMINATOR_FORMAT:
            raise CheckpointError(f"{path} is not a saved DG discriminator (format {metadata.get('format')!r}, expected {DISCRIMINATOR_FORMAT!r})")
        config = metadata_json(metadata, "config", path, "DG discriminator file")
        discriminator = cls(
            feature_extractor, input_shape=config["input_shape"], num_timesteps=config["num_timesteps"],
            num_classes=config["num_classes"], width=config["width"], depth=config["depth"],
            time_embedding_dim=config["time_embedding_dim"], extractor_takes_time=config["extractor_takes_time"],
        )
        if check_extractor and discriminator.config()["extractor_sha256"] != config["extractor_sha256"]:
            raise CheckpointError(
                f"{path} was trained on another feature extractor ({config['extractor']}, weights sha256 "
                f"{config['extractor_sha256'][:12]}...), not the {type(feature_extractor).__name__} given (sha256 "
                f"{discriminator.config()['extractor_sha256'][:12]}...); pass the extractor it was trained with"
            )
        own = {key: value.to(discriminator.out.weight.device) for key, value in tensors.items()}
        load_state_dict_strict(_HeadView(discriminator), own, str(path))
        discriminator.info = metadata_json(metadata, "info", path, "DG discriminator file")
        return discriminator.eval()


class _HeadView(nn.Module):
    """The head's modules of a discriminator without its extractor (so strict loading checks exactly the head's keys)."""

    def __init__(self, discriminator: TimeDependentDiscriminator) -> None:
        super().__init__()
        for name, module in discriminator.named_children():
            if name != "extractor" and module is not None:
                self.add_module(name, module)
