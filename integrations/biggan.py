"""Plugin ``biggan``: BigGAN generators of pytorch-pretrained-biggan.

pytorch-pretrained-biggan's ``BigGAN`` is called as ``model(z, class_one_hot,
truncation)``: ``z`` ``[N, z_dim]``, one-hot labels ``[N, num_classes]``
float, and ``truncation`` in (0, 1], which also picks the batch-norm
statistics the model was calibrated with at that truncation. Its own sampler
draws ``z = truncation * u`` with ``u`` from a standard normal truncated to
[-2, 2] (``truncated_noise_sample``).

:class:`BigGANAdapter` keeps both halves of that convention together: its
latents are ``u`` (prior: the truncated normal on [-2, 2]), and it feeds
``truncation * u`` and ``truncation`` to the model, so every method samples
and searches in ``u`` with the right prior and the model always sees inputs
matching its batch-norm statistics. Labels are class indices; the adapter
passes them one-hot. The generator splits at ``"gen_z"`` and at each of
``generator.layers`` (``"layers.0"`` ...; GenBlocks and the self-attention
layer). No discriminator ships with BigGAN: attach one, or a classifier.

Truncation: the constructor's ``truncation`` is the default of every call;
the ``truncation`` sampler uses BigGAN's own truncation with its psi
(:attr:`Adapter.native_truncation`): ``Chain(adapter, TruncationSampler(0.4))``
gives exactly ``model(0.4 * u, one_hot, 0.4)``, as
``truncated_noise_sample(truncation=0.4)`` followed by ``model(z, one_hot,
0.4)`` does, batch-norm statistics included.

:func:`load_biggan` loads a model from a local directory holding
``config.json`` and ``pytorch_model.bin`` with ``torch.load(weights_only=True)``,
or downloads a published one by name (needs network access). Loading needs
``pip install 'gan-postproc[biggan]'``; the adapter itself duck-types the model.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from gan_postproc import hookimpl
from gan_postproc.errors import CheckpointError, InputError, InputTypeError
from gan_postproc.files.loading import load_state_dict_strict, read_json, torch_load_weights
from gan_postproc.optional import require
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.priors import LatentPrior
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind, as_classifier, as_discriminator
from gan_postproc.pipeline.splitting import capture_output, module_device, substitute_output
from gan_postproc.validation import check_probability

__all__ = ["BigGANAdapter", "load_biggan", "TRUNCATION_BOUND"]

#: pytorch-pretrained-biggan truncates the standard normal to [-TRUNCATION_BOUND, TRUNCATION_BOUND].
TRUNCATION_BOUND = 2.0

WEIGHTS_NAME = "pytorch_model.bin"
CONFIG_NAME = "config.json"


class BigGANAdapter(Adapter):
    """Adapter for pytorch-pretrained-biggan's ``BigGAN`` (see the module docs for the latent convention).

    Args:
        model: a ``BigGAN`` (``.config`` with ``z_dim`` and ``num_classes``,
            ``.embeddings``, ``.generator``). Put in eval mode.
        truncation: in (0, 1]; scales the latents and selects the batch-norm
            statistics (the model's ``truncation`` argument). The default of
            every call; the ``truncation`` sampler overrides it per chain.
        discriminator: a module or :class:`Discriminator` judging images in
            [-1, 1] (none ships with BigGAN); a module needs ``discriminator_output``.
        discriminator_output: ``"probability"``, ``"logit"`` or ``"critic"``.
        classifier: a :class:`Classifier` over the model's classes.
    """

    name = "biggan"
    native_truncation = True

    def __init__(
        self,
        model: nn.Module,
        *,
        truncation: float = 1.0,
        discriminator: nn.Module | Discriminator | None = None,
        discriminator_output: ScoreKind | str | None = None,
        classifier: nn.Module | Classifier | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise InputTypeError(f"model must be a pytorch-pretrained-biggan BigGAN, got {type(model).__name__}")
        config = getattr(model, "config", None)
        if config is None or not hasattr(model, "generator") or not hasattr(getattr(model, "generator"), "layers"):
            raise InputError(
                f"{type(model).__name__} is not a pytorch-pretrained-biggan BigGAN (needs .config, .generator.layers); "
                "wrap other BigGAN implementations with TorchAdapter(G, label_format='onehot', call=...)"
            )
        self.truncation = check_probability(truncation, "truncation", open_low=True)
        self.model = model.eval()
        self.prior = LatentPrior.of(int(config.z_dim), "truncated_normal", low=-TRUNCATION_BOUND, high=TRUNCATION_BOUND)
        self.num_classes = int(config.num_classes)
        self.discriminator = as_discriminator(discriminator, discriminator_output)
        self.classifier = as_classifier(classifier, self.num_classes)
        for attached in (self.discriminator, self.classifier):
            if attached is not None:
                attached.eval()

    @property
    def generator(self) -> nn.Module:
        """The wrapped model (read by the drop-in wrapper for attributes such as ``config``)."""
        return self.model

    @property
    def device(self) -> torch.device:
        return module_device(self.model)

    def to(self, device: torch.device | str) -> BigGANAdapter:
        return self._move_models(device, self.model, self.discriminator, self.classifier)  # type: ignore[return-value]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "truncation": self.truncation}

    def model_latents(self, latents: torch.Tensor, truncation: float | None = None) -> torch.Tensor:
        """The ``z`` the model receives for adapter latents ``u``: ``truncation * u`` (default: the constructor's)."""
        return (self.truncation if truncation is None else truncation) * latents

    def labels_from_native(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.argmax(dim=1) if labels.dim() == 2 else labels

    def _forward(self, latents: torch.Tensor, labels: torch.Tensor | None, truncation: float | None = None) -> torch.Tensor:
        truncation = self.truncation if truncation is None else truncation
        one_hot = F.one_hot(labels, self.num_classes).float()
        return self.model(self.model_latents(latents, truncation), one_hot, truncation)

    def _generate(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self._forward(latents, labels)  # tanh output: already in [-1, 1]

    def _generate_truncated(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        """BigGAN's own truncation ``psi`` in (0, 1] instead of the constructor's: ``model(psi * u, one_hot, psi)``."""
        return self._forward(latents, labels, check_probability(psi, "psi (BigGAN's truncation)", open_low=True))

    def _inner_layer_names(self) -> list[str]:
        return ["gen_z"] + [f"layers.{i}" for i in range(len(self.model.generator.layers))]

    def _activation_at(self, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        return capture_output(self.model.generator.get_submodule(layer), lambda: self._forward(latents, labels), name=f"layer {layer!r}")

    def _decode_from(self, activation: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        return substitute_output(
            self.model.generator.get_submodule(layer), activation, lambda: self._forward(latents, labels), name=f"layer {layer!r}"
        )


def load_biggan(name_or_path: str | os.PathLike[str]) -> nn.Module:
    """A pytorch-pretrained-biggan ``BigGAN`` in eval mode.

    Args:
        name_or_path: a directory with ``config.json`` and ``pytorch_model.bin``
            (loaded with ``torch.load(weights_only=True)``; every parameter of
            the model must be in the file), or a published name
            (``"biggan-deep-128"``, ``-256``, ``-512``), downloaded by the
            package (needs network access).

    Raises:
        OptionalDependencyError: without pytorch-pretrained-biggan.
        CheckpointError: for a missing or incomplete checkpoint, or a failed download.
    """
    package = require("pytorch_pretrained_biggan", "load_biggan")
    model_module = require("pytorch_pretrained_biggan.model", "load_biggan")
    path = os.fspath(name_or_path)
    if os.path.isdir(path):
        config_file, weights_file = os.path.join(path, CONFIG_NAME), os.path.join(path, WEIGHTS_NAME)
        for file in (config_file, weights_file):
            if not os.path.isfile(file):
                raise CheckpointError(f"{path!r} has no {os.path.basename(file)}; a BigGAN directory holds {CONFIG_NAME} and {WEIGHTS_NAME}")
        config = read_json(config_file, "BigGAN config")
        try:
            model = package.BigGAN(package.BigGANConfig.from_dict(config))
        except Exception as error:  # the package builds the network from whatever the file says
            raise CheckpointError(f"{config_file!r} is not a BigGAN config ({type(error).__name__}: {error})") from error
        state = torch_load_weights(weights_file, "BigGAN weights file")
        if not isinstance(state, dict):
            raise CheckpointError(f"{weights_file!r} holds a {type(state).__name__}, not a state dict of BigGAN weights")
        return load_state_dict_strict(model, state, repr(weights_file)).eval()
    if path in model_module.PRETRAINED_MODEL_ARCHIVE_MAP:
        try:
            return package.BigGAN.from_pretrained(path).eval()
        except Exception as error:  # network and cache errors of the package's downloader
            raise CheckpointError(
                f"could not download {path!r} ({type(error).__name__}: {error}); download {CONFIG_NAME} and "
                f"{WEIGHTS_NAME} into a directory and pass its path"
            ) from error
    known = sorted(model_module.PRETRAINED_MODEL_ARCHIVE_MAP)
    raise CheckpointError(f"{path!r} is neither a directory nor a published BigGAN ({known})")


@hookimpl
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    return [BigGANAdapter]
