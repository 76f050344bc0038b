"""Input checks shared by every public entry point.

Each check raises :class:`~gan_postproc.errors.InputError` (or
:class:`~gan_postproc.errors.InputTypeError`) whose message names the argument,
what was expected, what was received, and how to fix it. Checks run before any
work starts, so a bad input never costs a half-finished run.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from ._moved import moved_name
from .errors import GanPostprocError, InputError, InputTypeError

__all__ = [
    "ValueRange",
    "check_count",
    "check_seed",
    "check_positive",
    "check_number",
    "check_probability",
    "check_choice",
    "check_value_range",
    "check_device",
    "check_options",
    "check_tensor",
    "check_finite",
    "check_in_range",
    "check_labels",
    "check_same_length",
    "check_weights",
    "check_images",
    "check_sample_shape",
    "check_model_output",
    "call_network",
]

T = TypeVar("T")

ValueRange = tuple[float, float]


def check_count(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
            value = int(value.item())
        else:
            raise InputTypeError(f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value}; pass a value of at least {minimum}")
    return value


def check_seed(value: object, name: str = "seed") -> int:
    """Return ``value`` after checking it is an integer (the key of every random number of a run)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}); pass e.g. {name}=0")
    return value


def check_positive(value: object, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float after checking it is > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputTypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    bound_ok = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not bound_ok:
        relation = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be a finite number {relation}, got {value}")
    return value


def check_number(value: object, name: str, *, low: float | None = None, high: float | None = None) -> float:
    """Return ``value`` as a float after checking it is a finite number in ``[low, high]`` (``None``: no bound)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputTypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        interval = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
        raise InputError(f"{name} must be a finite number in {interval}, got {value}")
    return value


def check_probability(value: object, name: str, *, open_low: bool = False, open_high: bool = False) -> float:
    """Return ``value`` as a float after checking it lies in [0, 1] (ends optionally open)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputTypeError(f"{name} must be a probability (a number in [0, 1]), got {value!r}")
    value = float(value)
    low_ok = value > 0 if open_low else value >= 0
    high_ok = value < 1 if open_high else value <= 1
    if not (math.isfinite(value) and low_ok and high_ok):
        interval = ("(" if open_low else "[") + "0, 1" + (")" if open_high else "]")
        raise InputError(f"{name} must lie in {interval}, got {value}")
    return value


def check_choice(value: T, name: str, choices: Sequence[object]) -> T:
    """Return ``value`` after checking it is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_value_range(value: object, name: str) -> ValueRange:
    """Return a ``(low, high)`` pair of finite floats with ``low < high`` (a value range such as ``(-1, 1)``)."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise InputError(f"{name} must be a (low, high) pair such as (-1, 1) or (0, 1), or None for unbounded data, got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise InputTypeError(f"{name} must hold two numbers (low, high), got {value!r}")
    low, high = (float(v) for v in value)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InputError(f"{name} must be a finite (low, high) pair with low < high, got {value!r}")
    return (low, high)


def check_device(device: object, name: str = "device") -> torch.device:
    """Parse ``device`` (``"cpu"``, ``"cuda:0"``, a :class:`torch.device`) and check this machine has it."""
    if not isinstance(device, (str, torch.device)):
        raise InputTypeError(f"{name} must be a device name such as 'cpu' or 'cuda', got {device!r}")
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise InputError(f"{name} {device!r} is not a device name; use e.g. 'cpu', 'cuda' or 'cuda:1' ({error})") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{name} {device!r} asks for CUDA, but this machine has no usable CUDA device; use 'cpu'")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise InputError(f"{name} {device!r}: this machine has {torch.cuda.device_count()} CUDA devices (0-based); pick one of them")
    return parsed


def check_options(target: Callable[..., Any], options: dict[str, Any], what: str) -> None:
    """Check that ``target(**options)`` binds to ``target``'s signature before calling it.

    The error lists the unknown and the missing options and every option the
    target takes (with its default), derived from the signature, so a user
    (or a command line passing ``key=value`` options) learns what is needed.
    """
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # builtins without a signature: let the call itself speak
        return
    parameters = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [] if takes_any else sorted(set(options) - set(parameters))
    missing = [name for name, p in parameters.items() if p.default is p.empty and name not in options]
    if not unknown and not missing:
        return
    problems = []
    if missing:
        problems.append(f"missing required option{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    listing = ", ".join(
        f"{name} (required)" if p.default is p.empty else f"{name}={p.default!r}" for name, p in parameters.items()
    )
    takes = f"It takes: {listing}" if listing else "It takes no options"
    raise InputError(f"{what}: {'; '.join(problems)}. {takes}")


def _describe(x: torch.Tensor) -> str:
    return f"shape {tuple(x.shape)}, dtype {x.dtype}, device {x.device}"


def check_tensor(
    x: object,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    floating: bool | None = None,
    device: torch.device | str | None = None,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Check type, rank, shape (``None`` entries match anything), dtype kind and device.

    Returns the tensor unchanged.
    """
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; convert it with torch.as_tensor")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            wanted = " or ".join(str(a) for a in allowed)
            raise InputError(f"{name} must have {wanted} dimension{'' if allowed == (1,) else 's'}, got {_describe(x)}")
    if shape is not None:
        ok = x.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
        if not ok:
            wanted = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
            raise InputError(f"{name} must have shape {wanted}, got {_describe(x)}")
    if not allow_empty and x.numel() == 0:
        raise InputError(f"{name} is empty ({_describe(x)}); pass at least one sample")
    if floating is True and not x.is_floating_point():
        raise InputError(f"{name} must be a floating-point tensor, got {x.dtype}; convert it with .float()")
    if floating is False and x.is_floating_point():
        raise InputError(f"{name} must be an integer tensor, got {x.dtype}; convert it with .long()")
    if device is not None and torch.device(device).type != x.device.type:
        raise InputError(f"{name} must be on device {torch.device(device)}, got {x.device}; move it with .to({str(device)!r})")
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise if ``x`` holds NaN or infinity, saying how many and where the first one is."""
    if x.is_floating_point():
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            count = int(bad.sum())
            first = tuple(int(i) for i in bad.nonzero()[0])
            raise InputError(
                f"{name} must be finite, got {count} NaN/inf values (first at index {first}); "
                "remove or repair those samples before calling"
            )
    return x


def check_in_range(x: torch.Tensor, name: str, value_range: ValueRange | None, *, tolerance: float = 1e-4) -> torch.Tensor:
    """Raise if ``x`` leaves ``value_range`` by more than ``tolerance`` (``None`` = unbounded)."""
    if value_range is None or x.numel() == 0:
        return x
    low, high = value_range
    lo, hi = float(x.min()), float(x.max())
    if lo < low - tolerance or hi > high + tolerance:
        raise InputError(
            f"{name} must lie in [{low:g}, {high:g}], got values in [{lo:.4g}, {hi:.4g}]; "
            "state the range your images use (e.g. value_range=(0, 1)) or rescale them"
        )
    return x


def check_labels(labels: object, name: str, *, num_classes: int | None, n: int | None = None) -> torch.Tensor:
    """Check class labels are ``[N]`` integer indices in ``[0, num_classes)``.

    One-hot or probability labels (``[N, K]``) are refused with a hint, not
    converted: a silent ``argmax`` would hide a mix-up of label forms.
    """
    if num_classes is None:
        raise InputError(
            f"{name} were given but the model is unconditional (num_classes is None); "
            "drop the labels, or declare num_classes on the adapter"
        )
    labels = check_tensor(labels, name)
    if labels.dim() == 2 and labels.shape[1] == num_classes:
        raise InputError(
            f"{name} must be class indices of shape [N], got a [N, {num_classes}] tensor that looks one-hot; "
            "pass labels.argmax(dim=1)"
        )
    check_tensor(labels, name, ndim=1, floating=False)
    if n is not None and labels.shape[0] != n:
        raise InputError(f"{name} must hold one label per sample ({n}), got {labels.shape[0]}")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise InputError(
            f"{name} must lie in [0, {num_classes - 1}] for a model with {num_classes} classes, "
            f"got values in [{lo}, {hi}]"
        )
    return labels


def check_same_length(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Raise unless ``a`` and ``b`` have the same first dimension."""
    if a.shape[0] != b.shape[0]:
        raise InputError(f"{name_a} and {name_b} must hold the same number of samples, got {a.shape[0]} and {b.shape[0]}")


def check_weights(weights: Sequence[float], name: str, *, length: int | None = None, tolerance: float = 1e-6) -> list[float]:
    """Check mixture weights: finite, non-negative, summing to 1, of the given length."""
    values = [float(w) for w in weights]
    if length is not None and len(values) != length:
        raise InputError(f"{name} must hold {length} weights (one per component), got {len(values)}")
    if not values:
        raise InputError(f"{name} must hold at least one weight, got none")
    if any(not math.isfinite(w) or w < 0 for w in values):
        raise InputError(f"{name} must be finite and non-negative, got {values}")
    total = sum(values)
    if abs(total - 1.0) > tolerance:
        raise InputError(f"{name} must sum to 1, got {values} (sum {total:.6g}); divide them by their sum")
    return values


def check_images(x: object, name: str, value_range: ValueRange | None) -> torch.Tensor:
    """Samples with the batch dimension first: floating ``[N, ...]`` (``N >= 1``, at least 2-D), finite,
    inside ``value_range`` (``None``: unbounded). Returns the tensor unchanged."""
    x = check_tensor(x, name, floating=True)
    if x.dim() < 2:
        raise InputError(
            f"{name} must be samples with the batch dimension first ([N, C, H, W] images or [N, D] vectors), "
            f"got {_describe(x)}; add the batch dimension with x.unsqueeze(0)"
        )
    check_finite(x, name)
    return check_in_range(x, name, value_range)


def check_sample_shape(x: torch.Tensor, name: str, expected: Sequence[int], what: str) -> torch.Tensor:
    """Raise unless each sample of ``x`` (``x.shape[1:]``) has the shape ``expected`` of ``what``."""
    if tuple(x.shape[1:]) != tuple(expected):
        raise InputError(
            f"{name} holds samples of shape {list(x.shape[1:])}, but {what} has samples of shape {list(expected)}; "
            "pass samples of the same kind (same channels and size)"
        )
    return x


def check_model_output(x: torch.Tensor, what: str) -> torch.Tensor:
    """Raise if a model's output ``[N, ...]`` holds NaN/inf for some of the (checked, finite) samples it was given."""
    finite = torch.isfinite(x.detach()).reshape(x.shape[0], -1).all(dim=1)
    if not bool(finite.all()):
        raise InputError(
            f"{what} returned NaN/inf for {int((~finite).sum())} of {len(finite)} samples (first at row "
            f"{int((~finite).nonzero()[0, 0])}) although the samples are finite; check the model's weights and the "
            "input range it expects"
        )
    return x


def call_network(what: str, network: Callable[..., T], *inputs: torch.Tensor | None) -> T:
    """Call a user's network; a shape, dtype or device mismatch becomes an :class:`InputError` naming the inputs.

    PyTorch reports such mismatches as ``RuntimeError`` (e.g. "mat1 and mat2
    shapes cannot be multiplied"); the error raised here says what was fed to
    ``what`` and keeps PyTorch's message. Out-of-memory errors and the
    library's own errors pass through unchanged.
    """
    try:
        return network(*inputs)
    except GanPostprocError:
        raise
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as error:
        fed = "; ".join(_describe(x) for x in inputs if isinstance(x, torch.Tensor))
        raise InputError(
            f"{what} failed on its input ({fed}): {error}. Check that the inputs have the shape, dtype and device "
            "the network expects (chain samples are float32 [N, C, H, W] in [-1, 1] or [N, D] vectors, on the model's device)"
        ) from error


def __getattr__(name: str) -> Any:
    """Names that moved out of this module (``check_batch``, ``KEEP``: to gan_postproc.pipeline.batch) still work, with a warning."""
    return moved_name(__name__, name)
