"""The generic adapter for any ``torch.nn.Module`` generator (plugin ``torch``).

Layer splitting: for an ``nn.Sequential`` generator every child but the last
is a split point (named by its child name) and the generator really runs from
the middle. For any other module every named submodule is a split point; the
activation is read with a forward hook, and decoding from a changed
activation re-runs the generator from the latents with a hook that
substitutes the activation. That is exact as long as the submodule's output
is used only on the main path (no skip connection bypasses it), which holds
for the layers of DCGAN/SNGAN-style generators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from ..errors import InputError, InputTypeError
from ..hookspecs import hookimpl
from ..validation import ValueRange, check_count, check_value_range
from .adapter import Adapter
from .priors import LatentPrior
from .ranges import CHAIN_RANGE, rescale
from .scoring import Classifier, Discriminator, ScoreKind, as_classifier, as_discriminator
from .splitting import capture_output, module_device, substitute_output

__all__ = ["TorchAdapter", "infer_latent_dim"]

GeneratorCall = Callable[[nn.Module, torch.Tensor, "torch.Tensor | None"], torch.Tensor]

#: Attribute names under which common codebases store the latent size.
LATENT_SIZE_ATTRIBUTES = ("nz", "z_dim", "latent_dim", "dim_z", "z_size", "noise_dim", "latent_size")


def infer_latent_dim(generator: nn.Module) -> int | None:
    """The latent size stored on ``generator`` under a common attribute name, if any."""
    for attr in LATENT_SIZE_ATTRIBUTES:
        value = getattr(generator, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


class TorchAdapter(Adapter):
    """Adapter for any generator module called as ``G(z)`` or ``G(z, y)``.

    Args:
        generator: the generator network. It is put in eval mode.
        latent_shape: per-sample latent shape; inferred from attributes such as
            ``nz`` / ``z_dim`` / ``latent_dim`` when omitted.
        prior: ``"normal"``, ``"uniform"`` (U[-1, 1]) or a :class:`LatentPrior`.
        num_classes: classes of a conditional generator, ``None`` if unconditional.
        label_format: how the generator takes labels: ``"index"`` (``[N]``
            int64) or ``"onehot"`` (``[N, K]`` float).
        output_range: range of the generator's raw output, e.g. ``(-1, 1)`` for
            tanh or ``(0, 1)``; ``None`` for unbounded data (2-D points).
        discriminator: module or :class:`Discriminator`; a module needs
            ``discriminator_output``.
        discriminator_output: ``"probability"``, ``"logit"`` or ``"critic"``.
        classifier: module with a ``num_classes`` attribute, or :class:`Classifier`.
        call: ``(generator, z, y) -> output`` for generators with another
            signature (``y`` already in ``label_format``, ``None`` if unconditional).
    """

    name = "torch"

    def __init__(
        self,
        generator: nn.Module,
        *,
        latent_shape: int | tuple[int, ...] | None = None,
        prior: Literal["normal", "uniform"] | LatentPrior = "normal",
        num_classes: int | None = None,
        label_format: Literal["index", "onehot"] = "index",
        output_range: ValueRange | None = CHAIN_RANGE,
        discriminator: nn.Module | Discriminator | None = None,
        discriminator_output: ScoreKind | str | None = None,
        classifier: nn.Module | Classifier | None = None,
        call: GeneratorCall | None = None,
    ) -> None:
        if not isinstance(generator, nn.Module):
            raise InputTypeError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
        if label_format not in ("index", "onehot"):
            raise InputError(f"label_format must be 'index' or 'onehot', got {label_format!r}")
        self.generator = generator.eval()
        self.prior = self._make_prior(generator, latent_shape, prior)
        self.num_classes = None if num_classes is None else check_count(num_classes, "num_classes", minimum=2)
        self.label_format = label_format
        self.native_range = None if output_range is None else check_value_range(output_range, "output_range")
        self.value_range = CHAIN_RANGE if output_range is not None else None
        self.discriminator = as_discriminator(discriminator, discriminator_output)
        self.classifier = as_classifier(classifier, None)
        for model in (self.discriminator, self.classifier):
            if model is not None:
                model.eval()
        self.call = call

    @staticmethod
    def _make_prior(generator: nn.Module, latent_shape: Any, prior: Any) -> LatentPrior:
        if isinstance(prior, LatentPrior):
            if latent_shape is not None and LatentPrior.of(latent_shape).shape != prior.shape:
                raise InputError(f"latent_shape {latent_shape} contradicts the prior's shape {prior.shape}")
            return prior
        if latent_shape is None:
            latent_shape = infer_latent_dim(generator)
            if latent_shape is None:
                raise InputError(
                    f"cannot infer the latent size of {type(generator).__name__} (no attribute among "
                    f"{', '.join(LATENT_SIZE_ATTRIBUTES)}); pass latent_shape=..."
                )
        return LatentPrior.of(latent_shape, prior)

    @property
    def device(self) -> torch.device:
        return module_device(self.generator)

    def to(self, device: torch.device | str) -> TorchAdapter:
        """Move generator, discriminator and classifier to ``device``.

        A generator dispatched across devices with accelerate's ``device_map``
        (it has ``hf_device_map``) stays where it is; inputs follow it.
        """
        dispatched = getattr(self.generator, "hf_device_map", None) is not None
        return self._move_models(device, None if dispatched else self.generator, self.discriminator, self.classifier)  # type: ignore[return-value]

    def labels_from_native(self, labels: torch.Tensor) -> torch.Tensor:
        if self.label_format == "onehot" and labels.dim() == 2:
            return labels.argmax(dim=1)
        return labels

    def _native_labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None or self.label_format == "index":
            return labels
        return nn.functional.one_hot(labels, self.num_classes).float()

    def _forward(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        y = self._native_labels(labels)
        if self.call is not None:
            return self.call(self.generator, latents, y)
        return self.generator(latents) if y is None else self.generator(latents, y)

    def _generate(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return rescale(self._forward(latents, labels), self.native_range, self.value_range)

    # --- split --------------------------------------------------------------

    def _inner_layer_names(self) -> list[str]:
        if isinstance(self.generator, nn.Sequential):
            return [name for name, _ in self.generator.named_children()][:-1]
        return [name for name, _ in self.generator.named_modules() if name]

    def _activation_at(self, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        output = capture_output(self.generator.get_submodule(layer), lambda: self._forward(latents, labels), name=f"layer {layer!r}")
        if not isinstance(output, torch.Tensor):
            raise InputError(f"layer {layer!r} of {type(self.generator).__name__} did not produce a tensor in the forward pass")
        return output

    def _decode_from(
        self, activation: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor | None, layer: str
    ) -> torch.Tensor:
        if isinstance(self.generator, nn.Sequential) and self.call is None and labels is None:
            children = list(self.generator.named_children())
            position = [name for name, _ in children].index(layer)
            x = activation
            for _, child in children[position + 1 :]:
                x = child(x)
            return rescale(x, self.native_range, self.value_range)

        return substitute_output(
            self.generator.get_submodule(layer), activation, lambda: self._generate(latents, labels), name=f"layer {layer!r}"
        )


@hookimpl
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    return [TorchAdapter]
