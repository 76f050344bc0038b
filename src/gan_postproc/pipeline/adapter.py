"""The adapter interface: how methods talk to a generator of any framework.

An adapter is the one place that knows a framework's calling convention. It
tells methods four things and does four things:

* what the latent prior is (:attr:`Adapter.prior`), how many classes the
  generator has (:attr:`Adapter.num_classes`, ``None`` if unconditional) and
  the value range of its samples in chain convention (:attr:`Adapter.value_range`);
* which discriminator and classifier it carries, each wrapped with its output
  and input conventions declared (:class:`~gan_postproc.pipeline.scoring.Discriminator`,
  :class:`~gan_postproc.pipeline.scoring.Classifier`);
* :meth:`Adapter.generate`: latents (+ labels) -> chain-convention samples;
* optionally, a split of the generator at a named layer
  (:meth:`Adapter.layer_names`, :meth:`Adapter.generate_to`,
  :meth:`Adapter.generate_from`) for methods that act on intermediate
  activations. ``"latent"`` (the input) and ``"output"`` (the samples) are
  always valid split points.

What an adapter for a new framework must provide: ``prior``,
``num_classes``, ``value_range``, ``device`` and :meth:`generate`. Providing
the split enables layer-wise refinement (collaborative sampling):

* ``_inner_layer_names()``: the intermediate split points, input to output;
* ``_activation_at(latents, labels, layer)``: the activation at ``layer``;
* ``_decode_from(activation, latents, labels, layer)``: chain-convention
  samples from a (changed) activation, differentiable with respect to
  ``activation``; ``latents`` and ``labels`` produced the original activation,
  for adapters that must recompute the earlier layers.

Contract: ``generate_from(generate_to(z, y, l), z, y, l)`` equals
``generate(z, y)`` exactly at every split point ``l``. Attaching a
discriminator or classifier enables the methods that need them.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import torch

from ..errors import InputError, MissingModelError
from ..validation import ValueRange, call_network, check_device, check_labels
from .priors import LatentPrior
from .ranges import rescale
from .scoring import Classifier, Discriminator

__all__ = ["Adapter", "LATENT_LAYER", "OUTPUT_LAYER"]

#: Split point naming the generator's input.
LATENT_LAYER = "latent"
#: Split point naming the generator's output.
OUTPUT_LAYER = "output"


class Adapter(abc.ABC):
    """Base class of framework adapters. Subclasses set the class attribute ``name``.

    Attributes:
        name: unique registry name (``"torch"``, ``"diffusers"``, ...).
        prior: the latent prior p0(z).
        num_classes: number of classes of a conditional generator, else ``None``.
        value_range: range of generated samples in chain convention:
            ``(-1, 1)`` for images, ``None`` for unbounded data.
        discriminator: the attached discriminator, if any.
        classifier: the attached classifier, if any.
        mapping_layer: for StyleGAN-style generators, the name of the split
            point whose output is the intermediate latent ``w``; else ``None``.
        native_truncation: True when the framework truncates in its own way
            and the adapter implements :meth:`_generate_truncated` (StyleGAN:
            ``w`` toward ``w_avg``; BigGAN: its ``truncation`` argument, which
            also selects batch-norm statistics). The ``truncation`` sampler then
            uses :meth:`generate_truncated` instead of truncating the prior.
    """

    name: ClassVar[str]
    prior: LatentPrior
    num_classes: int | None = None
    value_range: ValueRange | None = (-1.0, 1.0)
    discriminator: Discriminator | None = None
    classifier: Classifier | None = None
    mapping_layer: str | None = None
    native_truncation: bool = False
    #: Range of the framework's own output (what :meth:`to_native` maps back to).
    native_range: ValueRange | None = (-1.0, 1.0)

    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """The device the generator runs on; inputs are moved here."""

    @property
    def conditional(self) -> bool:
        """True for a class-conditional generator."""
        return self.num_classes is not None

    @abc.abstractmethod
    def _generate(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Run the generator on checked inputs; return chain-convention samples ``[N, ...]``."""

    def generate(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Samples for the given latents (and labels, for a conditional generator).

        Args:
            latents: ``[N, *prior.shape]`` float.
            labels: ``[N]`` int64 in ``[0, num_classes)``; required iff conditional.

        Returns:
            ``[N, ...]`` float32 samples in :attr:`value_range`. Differentiable
            with respect to ``latents``.
        """
        latents, labels = self.check_inputs(latents, labels)
        return self._checked_output(call_network(f"the generator of {type(self).__name__}", self._generate, latents, labels), len(latents))

    def generate_finite(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`generate`, refusing samples with NaN/inf (for methods that score or keep generated samples).

        Raises:
            InputError: naming how many of the generated samples are not finite.
        """
        samples = self.generate(latents, labels)
        finite = torch.isfinite(samples.detach()).reshape(samples.shape[0], -1).all(dim=1)
        if not bool(finite.all()):
            raise InputError(
                f"the generator of {type(self).__name__} produced NaN/inf for {int((~finite).sum())} of {len(samples)} latents; "
                "check the generator (its weights, or an input outside the range it was trained on)"
            )
        return samples

    def _checked_output(self, samples: object, n: int) -> torch.Tensor:
        """The generator's output as float ``[n, ...]`` samples, or a clear error about what came instead."""
        if not isinstance(samples, torch.Tensor):
            raise InputError(
                f"the generator of {type(self).__name__} returned {type(samples).__name__}, not a tensor of samples; "
                "if it returns a tuple or dict, pass a call= function that extracts the images"
            )
        if samples.dim() < 2 or samples.shape[0] != n:
            raise InputError(
                f"the generator of {type(self).__name__} returned shape {tuple(samples.shape)} for {n} latents; "
                f"it must return [{n}, ...] samples (batch dimension first)"
            )
        return samples.float()

    def generate_truncated(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        """Samples under the framework's own truncation with parameter ``psi`` (see :attr:`native_truncation`).

        ``latents`` are drawn from :attr:`prior` as usual (untruncated, keyed
        by sample index); the adapter applies its framework's truncation, e.g.
        ``w <- w_avg + psi (w - w_avg)`` after the mapping network
        (StyleGAN), or BigGAN's ``truncation=psi`` with the latents truncated
        by a deterministic map (such as the normal CDF), so samples stay
        keyed by index. Same shapes and range as :meth:`generate`.
        """
        if not self.native_truncation:
            raise InputError(
                f"{type(self).__name__} has no native truncation; truncate the prior instead "
                "(the truncation sampler's mode='prior', for Gaussian priors)"
            )
        if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not psi > 0:
            raise InputError(f"psi must be a number > 0, got {psi!r}")
        latents, labels = self.check_inputs(latents, labels)
        return self._generate_truncated(latents, labels, float(psi)).float()

    def _generate_truncated(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        """Run the generator with native truncation on checked inputs (adapters with ``native_truncation``)."""
        raise InputError(f"{type(self).__name__} sets native_truncation but does not implement _generate_truncated")

    def check_inputs(self, latents: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Validate latents and labels and move them to :attr:`device`."""
        self.prior.check(latents, "latents")
        if self.conditional:
            if labels is None:
                raise InputError(
                    f"this generator is conditional ({self.num_classes} classes) and needs labels of shape [N]; "
                    "pass labels=... or use a sampler that draws them"
                )
            check_labels(labels, "labels", num_classes=self.num_classes, n=latents.shape[0])
            labels = labels.to(self.device)
        elif labels is not None:
            check_labels(labels, "labels", num_classes=None)
        return latents.to(self.device), labels

    def to(self, device: torch.device | str) -> Adapter:
        """Move the generator and attached models to ``device``; returns ``self``.

        Adapters whose models cannot be moved as a whole (e.g. dispatched with
        accelerate's ``device_map``) leave them where they are.
        """
        raise InputError(f"{type(self).__name__} cannot move its models; place them on the device yourself")

    def _move_models(self, device: torch.device | str, *models: torch.nn.Module | None) -> Adapter:
        """Check ``device`` exists on this machine, then move each model that is not ``None``; returns ``self``."""
        device = check_device(device)
        for model in models:
            if model is not None:
                model.to(device)
        return self

    def to_native(self, samples: torch.Tensor) -> torch.Tensor:
        """Chain-convention samples -> the framework's own output range (for drop-in use)."""
        return rescale(samples, self.value_range, self.native_range)

    def labels_from_native(self, labels: torch.Tensor) -> torch.Tensor:
        """The framework's label form -> ``[N]`` class indices (identity by default)."""
        return labels

    # --- the optional split of the generator at a named layer -------------

    def layer_names(self) -> list[str]:
        """Split points, from the input to the output; always starts with
        ``"latent"`` and ends with ``"output"``."""
        return [LATENT_LAYER, *self._inner_layer_names(), OUTPUT_LAYER]

    def _inner_layer_names(self) -> list[str]:
        """Intermediate split points this adapter supports (override to add some)."""
        return []

    def check_layer(self, layer: str) -> str:
        """Raise a clear error listing the valid names if ``layer`` is not a split point."""
        names = self.layer_names()
        if layer not in names:
            raise InputError(f"{type(self).__name__} cannot split the generator at {layer!r}; valid layers: {names}")
        return layer

    def generate_to(self, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        """The activation at ``layer`` for these inputs (the latents themselves at ``"latent"``)."""
        self.check_layer(layer)
        latents, labels = self.check_inputs(latents, labels)
        if layer == LATENT_LAYER:
            return latents
        if layer == OUTPUT_LAYER:
            return self._generate(latents, labels).float()
        return self._activation_at(latents, labels, layer)

    def generate_from(
        self, activation: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor | None, layer: str
    ) -> torch.Tensor:
        """Samples decoded from an activation at ``layer`` (Eq. 5 of collaborative sampling).

        ``latents`` are the inputs that produced the original activation;
        adapters that cannot run the generator from the middle use them to
        recompute the earlier layers, then substitute ``activation``.
        Differentiable with respect to ``activation``.
        """
        self.check_layer(layer)
        latents, labels = self.check_inputs(latents, labels)
        if layer == LATENT_LAYER:
            return self._generate(activation, labels).float()
        if layer == OUTPUT_LAYER:
            return activation
        return self._decode_from(activation, latents, labels, layer).float()

    def _activation_at(self, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        raise InputError(f"{type(self).__name__} does not expose intermediate layers; use 'latent' or 'output'")

    def _decode_from(
        self, activation: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor | None, layer: str
    ) -> torch.Tensor:
        raise InputError(f"{type(self).__name__} does not expose intermediate layers; use 'latent' or 'output'")

    # --- scoring ------------------------------------------------------------

    def require_discriminator(self, method: str) -> Discriminator:
        """The attached discriminator, or a clear error naming ``method``."""
        if self.discriminator is None:
            raise MissingModelError(
                f"{method} needs a discriminator, but this {type(self).__name__} has none; "
                f"attach one, e.g. {type(self).__name__}(..., discriminator=D, discriminator_output='logit'), "
                f"or pass one to the method directly"
            )
        return self.discriminator

    def require_classifier(self, method: str) -> Classifier:
        """The attached classifier, or a clear error naming ``method``."""
        if self.classifier is None:
            raise MissingModelError(
                f"{method} needs a classifier, but this {type(self).__name__} has none; "
                f"attach one with {type(self).__name__}(..., classifier=Classifier(net, num_classes=K)), "
                f"or pass one to the method directly"
            )
        return self.classifier

    def describe(self) -> dict[str, object]:
        """A JSON-friendly summary used in manifests and reports."""
        return {
            "adapter": self.name,
            "latent_shape": list(self.prior.shape),
            "prior": self.prior.kind,
            "num_classes": self.num_classes,
            "value_range": None if self.value_range is None else list(self.value_range),
            "discriminator": None if self.discriminator is None else self.discriminator.output.value,
            "classifier": None if self.classifier is None else self.classifier.num_classes,
            "layers": self.layer_names(),
        }
