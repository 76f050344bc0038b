"""Feature extractors: the networks that turn samples into the vectors metrics compare.

.. important::
   **Measure with a network that played no part in producing the samples.**
   The feature network used to MEASURE (FID, KID, precision/recall, ...) must be
   independent of the classifier or discriminator used to GUIDE a method
   (BIGRoC's robust classifier, a rejection sampler's discriminator, a
   classifier filter). A method that pushes samples along a network's gradient
   or keeps the samples a network likes will look better in that same
   network's features without being better: the metric would reward
   adversarial fitting, not quality. Use the standard Inception network
   (:class:`~gan_postproc.metrics.inception.InceptionFeatures`) or a network
   trained separately (other seed, other architecture, ideally other data
   split) from every network a method consults.

The protocol is small: a feature extractor is any ``torch.nn.Module`` whose
forward takes chain-convention samples (``[N, C, H, W]`` images in
``[-1, 1]``, or ``[N, D]`` vectors) and returns ``[N, F]`` floating-point
features. It may declare ``num_features: int``. Wrap a network that expects
another input range, or whose useful output is an inner layer (for example a
classifier's penultimate layer), in :class:`ModuleFeatures`. Metrics run the
extractor under ``torch.no_grad()`` in batches and refuse one whose
BatchNorm/Dropout layers are in training mode.
"""

from __future__ import annotations

import torch
from torch import nn

from ..defaults import DEFAULTS
from ..errors import InputError
from ..pipeline.ranges import CHAIN_RANGE, rescale
from ..validation import ValueRange
from ._checks import check_features, check_module, check_samples
from ._inference import batched_forward

__all__ = ["ModuleFeatures", "extract_features", "as_features"]


class ModuleFeatures(nn.Module):
    """Any ``nn.Module`` as a feature extractor.

    Args:
        module: the network. Called as ``module(x)`` on samples mapped into
            ``input_range``. Put it in eval mode first.
        input_range: value range the network expects (e.g. ``(0, 1)``);
            chain images in ``[-1, 1]`` are mapped linearly into it. ``None``
            passes samples through unchanged (vector data, or a network such
            as :class:`gan_postproc.Classifier` that converts its own input).
        layer: name of a submodule (as in ``module.named_modules()``, e.g.
            ``"fc1"`` or ``"module.body.3"``) whose output is the feature
            vector, read with a forward hook that exists only during the call.
            If the layer runs several times in one forward, its last output
            is used. ``None``: the network's own output.

    Output: ``[N, F]``, the chosen output flattened after the batch dimension.
    """

    def __init__(self, module: nn.Module, *, input_range: ValueRange | None = CHAIN_RANGE, layer: str | None = None) -> None:
        super().__init__()
        self.module = check_module(module, "module")
        self.input_range = input_range
        self.layer = layer
        if layer is not None:
            names = [name for name, _ in module.named_modules() if name]
            if layer not in names:
                shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
                raise InputError(f"the module has no layer named {layer!r}; its layers are: {shown or '(none)'}")

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """Features ``[N, F]`` of chain-convention samples."""
        x = rescale(samples, CHAIN_RANGE if self.input_range is not None else None, self.input_range)
        if self.layer is None:
            out = self.module(x)
        else:
            captured: list[object] = []
            # looked up per call (not stored) so the layer is not registered twice in this module's state_dict
            layer = self.module.get_submodule(self.layer)
            handle = layer.register_forward_hook(lambda _m, _i, output: captured.append(output))
            try:
                self.module(x)
            finally:
                handle.remove()
            if not captured:
                raise InputError(f"layer {self.layer!r} did not run during the forward pass, so it gives no features")
            out = captured[-1]
        if not isinstance(out, torch.Tensor):
            where = f"layer {self.layer!r}" if self.layer else "the module"
            raise InputError(f"{where} returned {type(out).__name__}, not a tensor; choose a layer that returns a tensor")
        return out.flatten(1)


def extract_features(
    features: nn.Module, samples: torch.Tensor, *, batch_size: int = DEFAULTS.metrics_batch_size
) -> torch.Tensor:
    """Run a feature extractor over chain-convention samples in batches.

    Args:
        features: the extractor (see the module docstring for the protocol).
        samples: ``[N, C, H, W]`` in ``[-1, 1]`` or ``[N, D]``; finite.
        batch_size: samples per forward pass.

    Returns:
        ``[N, F]`` features on the extractor's device, without gradient.
    """
    check_module(features, "features")
    return as_features(samples, features, "samples", batch_size=batch_size)


def as_features(x: object, features: nn.Module | None, name: str, *, batch_size: int) -> torch.Tensor:
    """``x`` as ``[N, F]`` features: extracted by ``features``, or ``x`` itself when ``features`` is None."""
    if features is None:
        return check_features(x, name)
    check_module(features, "features")
    samples = check_samples(x, name)
    return batched_forward(features, samples, batch_size=batch_size, what="feature network")
