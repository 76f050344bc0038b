"""Plugin ``mimicry``: torch-mimicry networks (and any model shaped like them).

:class:`MimicryAdapter` duck-types torch-mimicry's conventions, so it needs
no import of torch-mimicry: a generator has ``nz``, is called as ``G(z)``
(or ``G(z, y)`` for the conditional cGAN-PD family, which also has
``num_classes``), outputs images in [-1, 1] through tanh, and is built from
top-level layers ``l1``, ``block2 .. blockN``, ``bN`` (batch norm) and ``cN``
(the last convolution), which are the adapter's split points. A
discriminator returns ``[N, 1]`` scores, or a tuple whose first element they
are (SSGAN: ``(scores, rotation_logits)``; InfoMax-GAN: ``(scores,
local_features, global_features)``); its ``loss_type`` declares what the
scores mean: ``"gan"`` / ``"ns"`` train a logit, ``"hinge"`` /
``"wasserstein"`` a critic.

torch-mimicry 0.1.16 does not import on torch 2 (its package ``__init__``
pulls in the training and metrics code), and a plain ``pip install`` would
replace torch. Install it with ``pip install --no-deps torch-mimicry`` and
load its networks with :func:`import_mimicry`, which never runs that
``__init__``. :func:`load_mimicry_checkpoint` reads mimicry checkpoints
(``{'model_state_dict', 'optimizer_state_dict', 'global_step'}``) with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
import types

import torch
from torch import nn

from gan_postproc import hookimpl
from gan_postproc.errors import CheckpointError, InputError, InputTypeError
from gan_postproc.files.loading import load_state_dict_strict, torch_load_weights
from gan_postproc.optional import require_installed
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.priors import LatentPrior
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind, as_classifier
from gan_postproc.pipeline.splitting import capture_output, module_device, substitute_output

__all__ = ["MimicryAdapter", "mimicry_discriminator", "import_mimicry", "load_mimicry_checkpoint", "LOSS_OUTPUT"]

#: What a torch-mimicry discriminator's scores mean, by the ``loss_type`` it was trained with.
LOSS_OUTPUT: dict[str, ScoreKind] = {
    "gan": ScoreKind.LOGIT,
    "ns": ScoreKind.LOGIT,
    "hinge": ScoreKind.CRITIC,
    "wasserstein": ScoreKind.CRITIC,
}

_LAYER_NAME = re.compile(r"^(l\d+|block\d+|b\d+|c\d+)$")


def import_mimicry(module: str) -> types.ModuleType:
    """Import ``torch_mimicry.<module>`` (e.g. ``"nets.sngan"``) without running ``torch_mimicry/__init__.py``.

    The top-level package is registered as a bare namespace over the installed
    files (unless it was imported already), so only the modules you ask for,
    and what they import, run.

    Raises:
        OptionalDependencyError: naming ``pip install --no-deps torch-mimicry``.
    """
    require_installed("torch_mimicry", "loading torch-mimicry networks")
    if "torch_mimicry" not in sys.modules:
        spec = importlib.util.find_spec("torch_mimicry")
        package = types.ModuleType("torch_mimicry", "torch-mimicry's files, without its package __init__ (see gan_postproc.integrations.mimicry)")
        package.__path__ = list(spec.submodule_search_locations or [])
        package.__spec__ = spec  # find_spec keeps answering; its loader never runs
        sys.modules["torch_mimicry"] = package
    return importlib.import_module(f"torch_mimicry.{module}")


def _takes_labels(module: nn.Module) -> bool:
    return "y" in inspect.signature(module.forward).parameters


def mimicry_discriminator(discriminator: nn.Module | Discriminator, output: ScoreKind | str | None = None) -> Discriminator:
    """Wrap a torch-mimicry discriminator: first element of tuple outputs, labels for cGAN-PD.

    Args:
        discriminator: the network (images in [-1, 1]).
        output: its convention; default: read from ``discriminator.loss_type``.
    """
    if isinstance(discriminator, Discriminator):
        return discriminator
    if not isinstance(discriminator, nn.Module):
        raise InputTypeError(f"discriminator must be a torch.nn.Module, got {type(discriminator).__name__}")
    if output is None:
        loss_type = getattr(discriminator, "loss_type", None)
        if loss_type not in LOSS_OUTPUT:
            raise InputError(
                f"cannot tell what this discriminator's scores mean: its loss_type is {loss_type!r} (known: "
                f"{sorted(LOSS_OUTPUT)}); pass discriminator_output='logit', 'probability' or 'critic'"
            )
        output = LOSS_OUTPUT[loss_type]
    conditional = _takes_labels(discriminator)

    def forward(module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> object:
        raw = module(x, labels) if conditional else module(x)
        return raw[0] if isinstance(raw, tuple) else raw

    return Discriminator(discriminator, output, conditional=conditional, forward_fn=forward)


class MimicryAdapter(Adapter):
    """Adapter for torch-mimicry generators (see the module docs for the conventions it relies on).

    Args:
        generator: the network, with ``nz``; conditional when its ``forward``
            takes ``y`` and it has ``num_classes``. Put in eval mode.
        discriminator: a torch-mimicry discriminator or a ready :class:`Discriminator`.
        discriminator_output: overrides what ``discriminator.loss_type`` declares.
        classifier: a :class:`Classifier` (or a module with ``num_classes``).
    """

    name = "mimicry"

    def __init__(
        self,
        generator: nn.Module,
        *,
        discriminator: nn.Module | Discriminator | None = None,
        discriminator_output: ScoreKind | str | None = None,
        classifier: nn.Module | Classifier | None = None,
    ) -> None:
        if not isinstance(generator, nn.Module):
            raise InputTypeError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
        nz = getattr(generator, "nz", None)
        if not isinstance(nz, int) or isinstance(nz, bool) or nz < 1:
            raise InputError(f"a torch-mimicry generator has an int attribute nz (the latent size); {type(generator).__name__} has {nz!r}")
        self.generator = generator.eval()
        self.prior = LatentPrior.of(nz)
        conditional = _takes_labels(generator)
        num_classes = getattr(generator, "num_classes", None)
        if conditional and num_classes is None:
            raise InputError(f"{type(generator).__name__}.forward takes labels y but the generator has no num_classes")
        self.num_classes = int(num_classes) if conditional else None
        self.discriminator = None if discriminator is None else mimicry_discriminator(discriminator, discriminator_output)
        self.classifier = as_classifier(classifier, self.num_classes)
        for model in (self.discriminator, self.classifier):
            if model is not None:
                model.eval()

    @property
    def device(self) -> torch.device:
        return module_device(self.generator)

    def to(self, device: torch.device | str) -> MimicryAdapter:
        return self._move_models(device, self.generator, self.discriminator, self.classifier)  # type: ignore[return-value]

    def _generate(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator(latents) if labels is None else self.generator(latents, labels)

    def _inner_layer_names(self) -> list[str]:
        return [name for name, _ in self.generator.named_children() if _LAYER_NAME.match(name)]

    def _activation_at(self, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        return capture_output(self.generator.get_submodule(layer), lambda: self._generate(latents, labels), name=f"layer {layer!r}")

    def _decode_from(self, activation: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        return substitute_output(
            self.generator.get_submodule(layer), activation, lambda: self._generate(latents, labels), name=f"layer {layer!r}"
        )


def load_mimicry_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> int | None:
    """Load a torch-mimicry checkpoint into ``model``; returns its ``global_step`` (``None`` if it has none).

    Reads ``{'model_state_dict', 'optimizer_state_dict', 'global_step'}`` (what
    mimicry's ``save_checkpoint`` writes) with ``torch.load(weights_only=True)``,
    so no code stored in the file runs. Every parameter must match.
    """
    path = os.fspath(path)
    checkpoint = torch_load_weights(path, "torch-mimicry checkpoint")
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model_state_dict"), dict):
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path!r} is not a torch-mimicry checkpoint (no 'model_state_dict'; found {found})")
    load_state_dict_strict(model, checkpoint["model_state_dict"], repr(path))
    step = checkpoint.get("global_step")
    return None if step is None else int(step)


@hookimpl
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    return [MimicryAdapter]
