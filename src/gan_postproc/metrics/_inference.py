"""Running a measuring network (feature extractor, classifier) over samples in batches."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from ..validation import call_network, check_count, check_finite

__all__ = ["batched_forward", "predict_labels"]

# Layers whose output depends on the rest of the batch (or on chance) in training mode.
_BATCH_DEPENDENT = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


def _check_eval_mode(module: nn.Module, what: str) -> None:
    for name, layer in module.named_modules():
        if isinstance(layer, _BATCH_DEPENDENT) and layer.training:
            raise InputError(
                f"the {what} has a {type(layer).__name__} layer ({name or 'the module itself'}) in training mode, "
                "so its outputs would depend on the batch and on chance; call .eval() on it before measuring"
            )


def _device_of(module: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return fallback


def batched_forward(module: nn.Module, samples: torch.Tensor, *, batch_size: int, what: str) -> torch.Tensor:
    """``module(samples)`` in batches under ``no_grad``, checked to be ``[N, F]`` and finite.

    Samples are moved to the module's device; outputs stay there.
    """
    batch_size = check_count(batch_size, "batch_size")
    _check_eval_mode(module, what)
    device = _device_of(module, samples.device)
    outputs = []
    with torch.no_grad():
        for chunk in samples.split(batch_size):
            out = call_network(f"the {what}", module, chunk.to(device))
            if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != chunk.shape[0]:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise InputError(
                    f"the {what} must return one vector per sample, shape [{chunk.shape[0]}, F], got {shape}; "
                    "wrap it in ModuleFeatures (which flattens outputs and can read a named layer)"
                )
            if not out.is_floating_point():
                raise InputError(f"the {what} must return floating-point values, got {out.dtype}")
            outputs.append(out.detach())
    return check_finite(torch.cat(outputs), f"the output of the {what}")


def predict_labels(classifier: nn.Module, samples: torch.Tensor, *, num_classes: int, batch_size: int) -> torch.Tensor:
    """Arg-max class of ``classifier(samples)`` (logits ``[N, num_classes]``), as ``[N]`` int64 on the CPU."""
    logits = batched_forward(classifier, samples, batch_size=batch_size, what="classifier")
    if logits.shape[1] != num_classes:
        raise InputError(
            f"the classifier returned {logits.shape[1]} scores per sample but num_classes is {num_classes}; "
            "pass the classifier's number of classes"
        )
    return logits.argmax(dim=1).cpu()
