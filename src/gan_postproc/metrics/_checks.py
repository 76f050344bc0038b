"""Input checks shared by the metrics, on top of :mod:`gan_postproc.validation`."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError, InputTypeError
from ..pipeline.ranges import CHAIN_RANGE
from ..validation import check_count, check_finite, check_in_range, check_tensor

__all__ = [
    "check_samples",
    "check_features",
    "check_module",
    "check_at_least",
    "check_same_width",
    "resolve_num_classes",
]


def check_samples(x: object, name: str) -> torch.Tensor:
    """Chain-convention samples: ``[N, C, H, W]`` images in ``[-1, 1]`` or ``[N, D]`` vectors, finite."""
    x = check_tensor(x, name, ndim=(2, 4), floating=True)
    check_finite(x, name)
    if x.dim() == 4:
        check_in_range(x, name, CHAIN_RANGE)
    return x


def check_features(x: object, name: str) -> torch.Tensor:
    """Feature vectors ``[N, F]``, floating point, finite."""
    x = check_tensor(x, name, floating=True)
    if x.dim() != 2:
        hint = (
            "; these look like images: pass features=<nn.Module> (e.g. ModuleFeatures(net)) to map them to feature vectors"
            if x.dim() == 4
            else ""
        )
        raise InputError(f"{name} must be feature vectors of shape [N, F], got shape {tuple(x.shape)}{hint}")
    return check_finite(x, name)


def check_module(module: object, name: str, *, optional: bool = False) -> nn.Module | None:
    """Raise unless ``module`` is a ``torch.nn.Module`` (or ``None`` when ``optional``)."""
    if module is None and optional:
        return None
    if not isinstance(module, nn.Module):
        allowed = "a torch.nn.Module or None" if optional else "a torch.nn.Module"
        raise InputTypeError(f"{name} must be {allowed}, got {type(module).__name__}")
    return module


def check_at_least(n: int, minimum: int, name: str, why: str) -> None:
    """Raise unless ``n >= minimum``, saying why the metric needs that many samples."""
    if n < minimum:
        raise InputError(f"{name} holds {n} samples but at least {minimum} are needed ({why}); pass more samples")


def check_same_width(name_a: str, a: int, name_b: str, b: int) -> None:
    """Raise unless two feature sets have the same number of features."""
    if a != b:
        raise InputError(
            f"{name_a} has {a} features per sample but {name_b} has {b}; "
            "both sets must come from the same feature network"
        )


def resolve_num_classes(num_classes: int | None, classifier: nn.Module | None, *, minimum: int = 2) -> int:
    """``num_classes``, or the classifier's ``num_classes`` attribute when it is omitted."""
    if num_classes is None:
        num_classes = getattr(classifier, "num_classes", None)
        if num_classes is None:
            raise InputError("pass num_classes (no classifier with a num_classes attribute was given)")
    return check_count(num_classes, "num_classes", minimum=minimum)
