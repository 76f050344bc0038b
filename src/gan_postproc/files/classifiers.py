"""Classifier files: the one format the command line reads classifiers from.

A classifier file is a single ``.safetensors`` file: the network's
``state_dict`` as tensors, plus a JSON description in the file's metadata
under the key ``"gan_postproc.classifier"``::

    {"format": "gan_postproc.classifier/1",
     "architecture": "ConvClassifier",          # a name in ARCHITECTURES
     "config": {"in_channels": 1, "num_classes": 10, "image_size": [8, 8], "width": 32},
     "num_classes": 10,
     "input_range": [-1.0, 1.0],                # what the network expects (null: unbounded)
     "mean": null, "std": null,                 # per-channel normalisation after rescaling
     "input_size": null,                        # [H, W] to resize to, or null
     "classes": ["0", "1", ...],                # optional class names
     "training": {...}}                         # optional: how it was made

Loading it builds the named architecture with ``config``, loads the
tensors with strict key and shape checks, and wraps the network in a
:class:`~gan_postproc.pipeline.scoring.Classifier` carrying the declared input
convention. safetensors holds only tensors and strings, so loading a file
never executes code. ``gan-postproc train-robust-classifier`` writes such
files; :func:`save_classifier` writes one for any network of a listed
architecture.

:func:`load_classifier` also accepts the names of the classifiers shipped
with the package (:data:`SHIPPED_CLASSIFIERS`: ``"digits-robust"``,
``"digits"``) and, only with ``allow_pickle=True``, a pickled
``torch.nn.Module`` (``.pt``/``.pth``/``.pkl``), which runs code on loading:
use it only for files you trust.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from ..errors import CheckpointError, GanPostprocError, InputError, InputTypeError
from ..models.digits import DigitsClassifier, digits_classifier
from ..pipeline.ranges import CHAIN_RANGE
from ..pipeline.scoring import Classifier
from ..validation import ValueRange, check_count
from .loading import load_code_pickle, load_state_dict_strict, metadata_json, read_safetensors, read_safetensors_metadata
from .writing import atomic_write

__all__ = [
    "CLASSIFIER_FORMAT",
    "METADATA_KEY",
    "ConvClassifier",
    "ARCHITECTURES",
    "SHIPPED_CLASSIFIERS",
    "PICKLE_SUFFIXES",
    "save_classifier",
    "load_classifier",
    "read_classifier_spec",
]

#: Format tag of a classifier file's description.
CLASSIFIER_FORMAT = "gan_postproc.classifier/1"
#: Metadata key holding the JSON description.
METADATA_KEY = "gan_postproc.classifier"
#: File suffixes of pickled modules (loaded only with ``allow_pickle=True``).
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin")


class ConvClassifier(nn.Module):
    """A small generic CNN for ``[N, C, H, W]`` images of any size (what the training CLI trains).

    A 3x3 convolution of ``width`` channels, then stride-2 3x3 convolutions
    (channels doubling up to ``max_width``) until the feature map is about
    2x2, ReLU after each, average pooling to exactly 2x2, and a linear head:
    for 8x8 inputs ``[N, C, 8, 8] -> [N, w, 8, 8] -> [N, 2w, 4, 4] -> [N, 4w, 2, 2] -> [N, K]``.

    Args:
        in_channels: C.
        num_classes: K.
        image_size: ``(H, W)`` the network is built for (it runs on others too).
        width: channels of the first convolution.
        max_width: cap on the channel count.
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: Sequence[int], width: int = 32, max_width: int = 256) -> None:
        super().__init__()
        self.in_channels = check_count(in_channels, "in_channels")
        self.num_classes = check_count(num_classes, "num_classes", minimum=2)
        if len(image_size) != 2 or min(image_size) < 2:
            raise InputError(f"image_size must be (H, W) with both at least 2, got {tuple(image_size)}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        stages = max(1, int(math.log2(min(self.image_size))) - 1)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU()]
        channels = width
        for _ in range(stages):
            out = min(2 * channels, max_width)
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.ReLU()]
            channels = out
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(4 * channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` -> logits ``[N, num_classes]``."""
        return self.head(self.body(x))


#: Architectures a classifier file may name: name -> ``(**config) -> nn.Module``.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "ConvClassifier": ConvClassifier,
    "DigitsClassifier": DigitsClassifier,
}


#: Classifiers shipped with the package, by the name the CLI accepts.
SHIPPED_CLASSIFIERS: dict[str, Callable[[], Classifier]] = {
    "digits-robust": lambda: digits_classifier(robust=True),
    "digits": lambda: digits_classifier(robust=False),
}


def _range_or_none(value: ValueRange | None) -> list[float] | None:
    return None if value is None else [float(value[0]), float(value[1])]


def save_classifier(
    path: str | os.PathLike[str],
    classifier: Classifier,
    *,
    architecture: str,
    config: Mapping[str, Any],
    classes: Sequence[str] | None = None,
    training: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``classifier`` as a classifier file (atomically).

    Args:
        path: destination ``.safetensors`` file.
        classifier: the wrapped network; its input range, normalisation and
            resize are recorded.
        architecture: a key of :data:`ARCHITECTURES` that rebuilds
            ``classifier.module`` from ``config``.
        config: keyword arguments of the architecture (JSON-friendly).
        classes: optional class names, one per class.
        training: optional JSON-friendly record of how the network was made.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise InputError(f"classifier files end in .safetensors, got {path.name!r}")
    if architecture not in ARCHITECTURES:
        raise InputError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {architecture!r}")
    if classes is not None and len(classes) != classifier.num_classes:
        raise InputError(f"classes must name each of the {classifier.num_classes} classes, got {len(classes)} names")
    spec = {
        "format": CLASSIFIER_FORMAT,
        "architecture": architecture,
        "config": dict(config),
        "num_classes": classifier.num_classes,
        "input_range": _range_or_none(classifier.input_range),
        "mean": None if classifier.mean is None else classifier.mean.tolist(),
        "std": None if classifier.std is None else classifier.std.tolist(),
        "input_size": None if classifier.input_size is None else list(classifier.input_size),
        "classes": None if classes is None else [str(c) for c in classes],
        "training": None if training is None else dict(training),
    }
    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in classifier.module.state_dict().items()}
    metadata = {METADATA_KEY: json.dumps(spec)}
    return atomic_write(path, lambda temp: save_file(tensors, str(temp), metadata=metadata))


def read_classifier_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON description of a classifier file, without loading its tensors."""
    metadata = read_safetensors_metadata(path, "classifier file")
    if METADATA_KEY not in metadata:
        raise CheckpointError(
            f"{path} is a safetensors file without a classifier description (metadata key {METADATA_KEY!r}); "
            "plain weights do not say which network they belong to: write the file with "
            "gan_postproc.files.classifiers.save_classifier, or train one with `gan-postproc train-robust-classifier`"
        )
    spec = metadata_json(metadata, METADATA_KEY, path, "classifier file")
    if not isinstance(spec, dict) or spec.get("format") != CLASSIFIER_FORMAT:
        found = spec.get("format") if isinstance(spec, dict) else type(spec).__name__
        raise CheckpointError(f"{path} has classifier format {found!r}, expected {CLASSIFIER_FORMAT!r}")
    return spec


def _from_file(path: Path) -> Classifier:
    spec = read_classifier_spec(path)
    name = spec.get("architecture")
    if name not in ARCHITECTURES:
        raise CheckpointError(f"{path} names architecture {name!r}, which this gan-postproc does not know; known: {sorted(ARCHITECTURES)}")
    try:
        module = ARCHITECTURES[name](**spec.get("config", {}))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot build {name} from config {spec.get('config')} ({error})") from error
    load_state_dict_strict(module, read_safetensors(path, "classifier file")[0], str(path))
    input_range = spec.get("input_range")
    input_size = spec.get("input_size")
    try:
        return Classifier(
            module.eval(),
            int(spec["num_classes"]),
            input_range=None if input_range is None else (float(input_range[0]), float(input_range[1])),
            mean=spec.get("mean"),
            std=spec.get("std"),
            input_size=None if input_size is None else (int(input_size[0]), int(input_size[1])),
        )
    except (KeyError, IndexError, TypeError, ValueError) as error:
        if isinstance(error, GanPostprocError):
            raise
        raise CheckpointError(f"{path}: the classifier description is invalid ({type(error).__name__}: {error})") from error


def _from_pickle(path: Path, num_classes: int | None, input_range: ValueRange | None, allow_pickle: bool) -> Classifier:
    loaded = load_code_pickle(
        path, "classifier file", allow=allow_pickle, stacklevel=4,
        opt_in="pass allow_pickle=True (CLI: --allow-pickle), or convert it once to a safe classifier file with "
        "gan_postproc.files.classifiers.save_classifier",
        load=lambda file: torch.load(file, map_location="cpu", weights_only=False),
    )
    if isinstance(loaded, Classifier):
        return loaded.eval()
    if not isinstance(loaded, nn.Module):
        raise CheckpointError(
            f"{path} holds a {type(loaded).__name__}, not a torch.nn.Module; a state_dict says nothing about its "
            "architecture: load it in Python and save it with gan_postproc.files.classifiers.save_classifier"
        )
    k = num_classes if num_classes is not None else getattr(loaded, "num_classes", None)
    if k is None:
        raise InputError(f"cannot tell how many classes the network in {path} has; pass num_classes (CLI: --num-classes)")
    return Classifier(loaded.eval(), int(k), input_range=input_range)


def load_classifier(
    source: str | os.PathLike[str],
    *,
    allow_pickle: bool = False,
    num_classes: int | None = None,
    input_range: ValueRange | None = CHAIN_RANGE,
    device: torch.device | str | None = None,
) -> Classifier:
    """A :class:`~gan_postproc.pipeline.scoring.Classifier` from a shipped name or a file.

    Args:
        source: a name in :data:`SHIPPED_CLASSIFIERS` (``"digits-robust"``),
            a classifier ``.safetensors`` file (see the module docs), or with
            ``allow_pickle`` a pickled module.
        allow_pickle: permit loading a pickle, which executes code from the file.
        num_classes, input_range: for a pickled bare module only (a classifier
            file declares both itself).
        device: where to put the network (default: CPU).

    Raises:
        UnsafeCheckpointError: for a pickle without ``allow_pickle``.
        CheckpointError: for a missing, unreadable or inconsistent file.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise InputTypeError(f"classifier source must be a shipped name or a file path, got {type(source).__name__}")
    if isinstance(source, str) and source in SHIPPED_CLASSIFIERS:
        classifier = SHIPPED_CLASSIFIERS[source]()
    else:
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            classifier = _from_file(path)
        elif suffix in PICKLE_SUFFIXES:
            classifier = _from_pickle(path, num_classes, input_range, allow_pickle)
        elif not path.exists() and os.sep not in str(source) and not suffix:
            raise InputError(f"no shipped classifier named {str(source)!r}; shipped: {sorted(SHIPPED_CLASSIFIERS)}, or give a file path")
        else:
            raise InputError(
                f"cannot load a classifier from {str(source)!r}: expected a shipped name {sorted(SHIPPED_CLASSIFIERS)}, "
                f"a .safetensors classifier file, or (with allow_pickle) one of {list(PICKLE_SUFFIXES)}"
            )
    return classifier.to(device) if device is not None else classifier
