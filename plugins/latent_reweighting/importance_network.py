"""The latent importance network ``w_phi`` of latent reweighting (public through ``gan_postproc.plugins.latent_reweighting``).

Issenhuth, Tanielian, Picard, Mary, "Latent reweighting, an almost free
improvement for GANs" (WACV 2022), Section 3.1: a network
``w_phi: R^d -> R+`` reweights the generator's latent prior,
``d gamma_phi(z) = w_phi(z) d gamma(z)`` (Eq. 4), which is a probability
measure when ``E_gamma[w_phi] = 1`` (Lemma 1). The samplers ``latent_rs``,
``latent_ga`` and ``latent_rs_ga`` sample from it; Algorithm 1 trains it
(:func:`gan_postproc.plugins.latent_reweighting.train_importance_network`).

This module holds the network, its file format (safetensors with the
settings in the metadata, so ``LatentRS(importance="w.safetensors")`` needs
nothing else) and the checks that a network fits a generator.

Input of the network: the flattened latent ``z`` (``layer="latent"``), or,
for StyleGAN-style generators whose adapter names a ``mapping_layer``, the
flattened output of the mapping network (the paper's LSUN setup, Section
4.3.1: "we leverage this pre-trained M_theta and train w_phi on top of it").
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup, generator_floor
from gan_postproc.errors import CheckpointError, GanPostprocError, InputError, InputTypeError
from gan_postproc.files.checkpoints import save_safetensors_atomic
from gan_postproc.files.loading import (
    checked_entries,
    load_state_dict_strict,
    metadata_json,
    read_safetensors,
    read_safetensors_metadata,
)
from gan_postproc.models.assets import asset_path, read_manifest, sha256_of
from gan_postproc.pipeline.adapter import LATENT_LAYER, Adapter
from gan_postproc.pipeline.sampler import LatentSampler
from gan_postproc.validation import check_count, check_model_output, check_positive

from .defaults import DEFAULTS

__all__ = [
    "ImportanceNetwork",
    "IMPORTANCE_FORMAT",
    "SHIPPED_NETWORKS",
    "resolve_layer",
    "as_importance_network",
    "check_max_weight",
    "network_inputs",
    "load_shipped_importance_network",
    "benchmark_rows",
]

#: Written into the metadata of every importance-network file.
IMPORTANCE_FORMAT = "gan_postproc.importance/1"

#: softplus^-1(1): the output bias that makes a network with a zero last layer output exactly 1.
_SOFTPLUS_INVERSE_OF_ONE = math.log(math.e - 1.0)


def resolve_layer(adapter: Adapter, layer: str | None) -> str:
    """Where ``w_phi`` reads its input: ``"latent"`` or the adapter's ``mapping_layer``.

    ``None`` picks the mapping layer when the adapter declares one (the
    paper's choice for StyleGAN2), else ``"latent"``.
    """
    if layer is None:
        return adapter.mapping_layer or LATENT_LAYER
    allowed = [LATENT_LAYER] + ([adapter.mapping_layer] if adapter.mapping_layer else [])
    if layer not in allowed:
        raise InputError(
            f"the importance network reads the latent z or a mapping network's output, so layer must be one of "
            f"{allowed} for this {type(adapter).__name__}, got {layer!r}"
        )
    return layer


def network_inputs(adapter: Adapter, latents: torch.Tensor, layer: str) -> torch.Tensor:
    """The importance network's input ``[N, F]`` for ``latents``: flattened ``z``, or the mapping output at ``layer``.

    A mapping output ``[N, num_ws, w_dim]`` (StyleGAN's per-layer copies of
    one ``w``, truncated per layer by an affine map of that same ``w``) is
    read as its first row ``[N, w_dim]``: it determines all the others, and
    the network stays the paper's size (``w_dim`` inputs, not 18 x 512).
    """
    if layer == LATENT_LAYER:
        return latents.reshape(latents.shape[0], -1)
    activation = adapter.generate_to(latents, None, layer)
    if activation.dim() == 3:
        activation = activation[:, 0]
    return activation.reshape(latents.shape[0], -1)


class ImportanceNetwork(nn.Module):
    """The importance network ``w_phi``: an MLP with a non-negative output.

    ``w(u) = scale * softplus(MLP(u))`` with ReLU hidden layers (the paper:
    "an MLP with 4 fully-connected layers and ReLU activation"). The last
    layer starts at zero with bias ``softplus^-1(1)``, so an untrained
    network gives ``w = 1`` everywhere: training starts from the unweighted
    generator. ``scale`` (a buffer, 1 while training) is set afterwards so
    that ``E_prior[w] = 1`` exactly (Lemma 1; :meth:`normalise_`).

    Args:
        input_dim: size of the flattened input (latent size, or mapping-output size).
        hidden_layers: number of hidden layers.
        width: hidden units; default ``max(importance_width_factor * input_dim, importance_min_width)``.
        layer: where the input is read: ``"latent"`` or the adapter's ``mapping_layer``.
        max_weight: the soft-clipping threshold ``m`` it is trained with (Eq. 6),
            the default rejection bound of ``latent_rs``.
    """

    def __init__(
        self,
        input_dim: int,
        *,
        hidden_layers: int = DEFAULTS.importance_hidden_layers,
        width: int | None = None,
        layer: str = LATENT_LAYER,
        max_weight: float = DEFAULTS.importance_max_weight,
    ) -> None:
        super().__init__()
        self.input_dim = check_count(input_dim, "input_dim")
        self.hidden_layers = check_count(hidden_layers, "hidden_layers")
        default_width = max(DEFAULTS.importance_width_factor * self.input_dim, DEFAULTS.importance_min_width)
        self.width = check_count(default_width if width is None else width, "width")
        if not isinstance(layer, str) or not layer:
            raise InputError(f"layer must be a split-point name such as 'latent', got {layer!r}")
        self.layer = layer
        self.max_weight = check_max_weight(max_weight)
        sizes = [self.input_dim] + [self.width] * self.hidden_layers
        blocks: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            blocks += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(self.width, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, _SOFTPLUS_INVERSE_OF_ONE)
        self.register_buffer("scale", torch.ones(()))

    # --- evaluating ---------------------------------------------------------

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Importance weights ``[N]`` (>= 0) for flattened inputs ``[N, input_dim]``."""
        return self.scale * F.softplus(self.head(self.body(inputs)))[:, 0]

    def inputs(self, adapter: Adapter, latents: torch.Tensor) -> torch.Tensor:
        """The network's input for ``latents`` ``[N, *latent_shape]``: flattened ``z`` or mapping output.

        Differentiable with respect to ``latents`` (latentGA ascends through it).
        """
        return network_inputs(adapter, latents, self.layer)

    def weights(self, adapter: Adapter, latents: torch.Tensor) -> torch.Tensor:
        """``w_phi(z)``, ``[N]`` >= 0, for latents ``[N, *latent_shape]`` of ``adapter``'s prior."""
        return self(self.inputs(adapter, latents))

    def checked_weights(self, adapter: Adapter, latents: torch.Tensor) -> torch.Tensor:
        """:meth:`weights`, raising :class:`~gan_postproc.errors.InputError` if any is NaN/inf (finite latents in)."""
        return check_model_output(self.weights(adapter, latents), "the importance network")

    def check_parameters(self, method: str) -> ImportanceNetwork:
        """Raise a clear error if a parameter or buffer is NaN/inf (a diverged or corrupted network)."""
        for name, tensor in [*self.named_parameters(), *self.named_buffers()]:
            if not bool(torch.isfinite(tensor).all()):
                raise InputError(
                    f"{method}: the importance network's {name} holds NaN/inf values, so every weight it gives would be "
                    "undefined; its training diverged or the file is corrupted. Retrain it with train_importance_network "
                    "(a lower lr), or load another file"
                )
        return self

    def check_adapter(self, adapter: Adapter, method: str) -> None:
        """Raise a clear error unless this network can weight ``adapter``'s latents.

        Latent reweighting is defined for unconditional generators; the
        input layer must exist and have ``input_dim`` values per sample.
        """
        if not isinstance(adapter, Adapter):
            raise InputTypeError(f"{method} needs a gan_postproc.Adapter, got {type(adapter).__name__}")
        if adapter.conditional:
            raise InputError(
                f"{method}: latent reweighting (Issenhuth et al. 2022) weights the latent prior of an unconditional "
                f"generator; this adapter is conditional ({adapter.num_classes} classes). Use an unconditional adapter"
            )
        resolve_layer(adapter, self.layer)
        probe = adapter.prior.sample(0, torch.zeros(1, dtype=torch.int64), "importance-probe").to(adapter.device)
        with torch.no_grad():
            size = self.inputs(adapter, probe).shape[1]
        if size != self.input_dim:
            where = "latents" if self.layer == LATENT_LAYER else f"{self.layer!r} activations"
            raise InputError(
                f"{method}: this importance network takes {self.input_dim} inputs per sample, but the adapter's {where} "
                f"have {size}; it was trained for another generator. Train one for this generator with "
                "train_importance_network(adapter, real_data, ...)"
            )

    # --- normalising --------------------------------------------------------

    @torch.no_grad()
    def normalise_(self, mean_weight: float) -> ImportanceNetwork:
        """Divide the output by ``mean_weight`` (the network's current mean over prior draws), so E[w] = 1."""
        mean_weight = check_positive(mean_weight, "mean_weight")
        self.scale.div_(mean_weight)
        return self

    # --- files ----------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-friendly)."""
        return {
            "input_dim": self.input_dim,
            "hidden_layers": self.hidden_layers,
            "width": self.width,
            "layer": self.layer,
            "max_weight": self.max_weight,
        }

    def describe(self) -> dict[str, Any]:
        """Settings that identify the network (used in run manifests)."""
        return {**self.config(), "scale": float(self.scale)}

    def save(self, path: str | Path, info: dict[str, Any] | None = None) -> Path:
        """Write the weights and settings to a safetensors file, atomically.

        Args:
            path: target file (``.safetensors``).
            info: JSON-friendly notes stored beside the settings (how it was trained).
        """
        metadata = {"format": IMPORTANCE_FORMAT, "config": json.dumps(self.config()), "info": json.dumps(info or {})}
        return save_safetensors_atomic(self.state_dict(), path, metadata)

    @classmethod
    def load(cls, path: str | Path) -> ImportanceNetwork:
        """Rebuild a network saved by :meth:`save` (safetensors: loading runs no code).

        Raises:
            CheckpointError: if the file is missing, damaged, not an importance
                network, or its tensors do not fit its stored settings.
        """
        state, metadata = read_safetensors(path, "importance network file", fix=_DAMAGED)
        config = checked_entries(_checked_metadata(path, metadata, "config"), ("input_dim",), path, "importance network file", "config", fix=_DAMAGED)
        try:
            network = cls(**config)
        except (TypeError, GanPostprocError) as error:
            raise CheckpointError(f"importance network file {path}: its stored settings do not build a network ({error}); {_DAMAGED}") from error
        return load_state_dict_strict(network, state, str(path)).eval()

    @staticmethod
    def read_info(path: str | Path) -> dict[str, Any]:
        """The ``info`` notes stored in a saved network (how it was trained), without loading tensors."""
        metadata = read_safetensors_metadata(path, "importance network file", fix=_DAMAGED)
        return _checked_metadata(path, {"info": "{}", **metadata}, "info")


#: What to do about a damaged importance network file.
_DAMAGED = "it is damaged: train it again with `gan-postproc train-importance`"


def _checked_metadata(path: str | Path, metadata: dict[str, str], key: str) -> Any:
    """``metadata[key]`` parsed, once the file is known to be an importance network."""
    if metadata.get("format") != IMPORTANCE_FORMAT:
        raise CheckpointError(
            f"{path} is not an importance network (format {metadata.get('format')!r}, expected {IMPORTANCE_FORMAT!r}); "
            "pass a file written by train_importance_network or ImportanceNetwork.save"
        )
    return metadata_json(metadata, key, path, "importance network file")


def check_max_weight(value: object) -> float:
    value = check_positive(value, "max_weight (m)")
    if value < 1.0:
        raise InputError(
            f"max_weight (m) must be >= 1: the weights average 1 (E w = 1), so a bound below 1 cannot hold; got {value:g}"
        )
    return value


def as_importance_network(importance: object, method: str) -> ImportanceNetwork:
    """An :class:`ImportanceNetwork`, or the path of a saved one, as a network in eval mode."""
    if isinstance(importance, ImportanceNetwork):
        return importance.check_parameters(method).eval()
    if isinstance(importance, (str, Path)):
        return ImportanceNetwork.load(importance).check_parameters(method)
    raise InputTypeError(
        f"{method} needs importance=ImportanceNetwork or the path of a saved one, got {type(importance).__name__}; "
        "train one with train_importance_network(adapter, real_data, ...) or `gan-postproc train-importance`"
    )


# --- shipped networks and benchmark rows ---------------------------------------

#: The shipped importance networks by benchmark data set: (asset group, file name).
SHIPPED_NETWORKS: dict[str, tuple[str, str]] = {
    "25gaussians": ("dot2d", "importance_25gaussians.safetensors"),
    "swissroll": ("dot2d", "importance_swissroll.safetensors"),
    "digits": ("digits", "importance.safetensors"),
}


def load_shipped_importance_network(dataset: str) -> ImportanceNetwork:
    """The importance network shipped for a benchmark data set, checked against its manifest's SHA-256.

    Written by ``benchmarks/train_importance.py``; ``dataset`` is one of
    :data:`SHIPPED_NETWORKS` (the DOT 2-D models, the digits GAN).
    """
    if dataset not in SHIPPED_NETWORKS:
        raise InputError(f"no importance network ships for {dataset!r}; shipped: {sorted(SHIPPED_NETWORKS)}")
    group, name = SHIPPED_NETWORKS[dataset]
    entry = read_manifest(group).get("files", {}).get(name)
    if entry is None:
        raise CheckpointError(f"assets/{group}/manifest.json lists no {name}; re-run benchmarks/train_importance.py or reinstall gan-postproc")
    path = asset_path(group, name)
    if sha256_of(path) != entry["sha256"]:
        raise CheckpointError(f"{path} does not match the SHA-256 in assets/{group}/manifest.json; re-run benchmarks/train_importance.py")
    return ImportanceNetwork.load(path)


def benchmark_rows(
    context: BenchmarkContext,
    name: str,
    make_sampler: Callable[[ImportanceNetwork, dict[str, Any]], LatentSampler],
    note: str,
) -> list[BenchmarkSetup]:
    """The row a latent-reweighting sampler contributes to a suite, if a network ships for its data set.

    ``make_sampler(network, settings)`` builds the sampler from the shipped
    network and the settings recorded with it for this sampler
    (``info["samplers"][name]``, tuned on held-out data by the training
    script). The floor is one generator pass over the returned latents.
    """
    if context.dataset not in SHIPPED_NETWORKS or context.adapter.conditional:
        return []
    network = load_shipped_importance_network(context.dataset)
    settings = ImportanceNetwork.read_info(asset_path(*SHIPPED_NETWORKS[context.dataset])).get("samplers", {}).get(name, {})
    floor = generator_floor(context.adapter)
    detail = ", ".join(f"{key}={value}" for key, value in sorted(settings.items()))
    return [BenchmarkSetup(name=name, sampler=make_sampler(network, settings), floor=floor, note=f"{note} ({detail})" if detail else note)]
