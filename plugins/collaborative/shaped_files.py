"""The files of discriminator shaping (safetensors): a shaped discriminator, a shaping checkpoint, the shipped one.

A shaped-discriminator file holds the discriminator module's own ``state_dict`` (so it also loads
with plain ``module.load_state_dict(safetensors.torch.load_file(path))``) and, in its metadata, the
output convention and the shaping settings. A checkpoint adds the Adam state and the step reached.
Both are written atomically.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from gan_postproc.errors import CheckpointError, InputTypeError
from gan_postproc.files.loading import load_state_dict_strict, metadata_json, read_safetensors, read_safetensors_metadata
from gan_postproc.files.writing import atomic_write
from gan_postproc.models.assets import asset_path, read_manifest, sha256_of
from gan_postproc.pipeline.scoring import Discriminator

__all__ = [
    "SHAPED_FORMAT",
    "CHECKPOINT_FORMAT",
    "save_shaped_discriminator",
    "load_shaped_discriminator",
    "shipped_shaped_digits_discriminator",
    "SHAPED_DIGITS_FILE",
    "SHAPED_DIGITS_SETTINGS",
]

#: What to do about a damaged shaped discriminator or checkpoint file.
_DAMAGED = "delete it to start over, or choose another path"

#: ``format`` metadata of a shaped-discriminator file and of a shaping checkpoint.
SHAPED_FORMAT = "gan_postproc.shaped_discriminator/1"
CHECKPOINT_FORMAT = "gan_postproc.shaping_checkpoint/1"


def fingerprint(discriminator: Discriminator) -> str:
    """SHA-256 of the discriminator's parameters and buffers (names, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(discriminator.module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda temp: save_file(cpu, str(temp), metadata=metadata))


def read_settings(path: Path, expected_format: str) -> dict[str, Any]:
    what = "shaping checkpoint" if expected_format == CHECKPOINT_FORMAT else "shaped discriminator file"
    metadata = read_safetensors_metadata(path, what, fix=_DAMAGED)
    if metadata.get("format") != expected_format:
        raise CheckpointError(
            f"{path} is not a {expected_format} file (format {metadata.get('format')!r}); delete it or choose another path"
        )
    return metadata_json(metadata, "settings", path, what)


def check_settings(found: dict[str, Any], wanted: dict[str, Any], path: Path) -> None:
    differing = sorted(key for key in set(found) | set(wanted) if found.get(key) != wanted.get(key))
    if differing:
        listing = ", ".join(f"{key}: file {found.get(key)!r}, now {wanted.get(key)!r}" for key in differing)
        raise CheckpointError(
            f"{path} was made with other shaping settings or from another discriminator ({listing}); "
            "delete it to start over, or choose another path"
        )


def save_shaped_discriminator(discriminator: Discriminator, path: str | os.PathLike[str], settings: dict[str, Any] | None = None) -> None:
    """Write ``discriminator.module``'s state dict to ``path`` (safetensors, atomically).

    The keys are the module's own ``state_dict`` keys, so the file also loads with
    ``module.load_state_dict(safetensors.torch.load_file(path))``; the metadata records the
    output convention and the shaping settings.
    """
    metadata = {"format": SHAPED_FORMAT, "output": discriminator.output.value, "settings": json.dumps(settings or {}, sort_keys=True)}
    _atomic_save(dict(discriminator.module.state_dict()), Path(path), metadata)


def load_shaped_discriminator(path: str | os.PathLike[str], like: Discriminator) -> Discriminator:
    """A shaped discriminator from ``path``: a copy of ``like`` (same architecture and wrapper settings) with the saved weights.

    ``like`` itself is not changed.

    Raises:
        CheckpointError: if the file is missing or unreadable, declares another output
            convention than ``like``, or holds weights of another architecture.
    """
    if not isinstance(like, Discriminator):
        raise InputTypeError(f"like must be the Discriminator the file was shaped from (same architecture), got {type(like).__name__}")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"shaped discriminator {path} does not exist; shape one with shape_discriminator(..., out={str(path)!r})")
    read_settings(path, SHAPED_FORMAT)
    state, metadata = read_safetensors(path, "shaped discriminator file", fix=_DAMAGED)
    output = metadata.get("output")
    if output != like.output.value:
        raise CheckpointError(f"{path} holds a discriminator with output {output!r}, but like declares {like.output.value!r}")
    shaped = copy.deepcopy(like)
    load_state_dict_strict(shaped.module, state, f"shaped discriminator file {path}")
    return shaped.eval().requires_grad_(False)


def save_checkpoint(path: Path, shaped: Discriminator, optimizer: torch.optim.Optimizer, settings: dict[str, Any], step: int) -> None:
    tensors = {f"discriminator/{k}": v for k, v in shaped.module.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"optimizer/{index}/{name}"] = torch.as_tensor(value)
    metadata = {"format": CHECKPOINT_FORMAT, "step": str(step), "settings": json.dumps(settings, sort_keys=True)}
    _atomic_save(tensors, path, metadata)


def load_checkpoint(path: Path, shaped: Discriminator, optimizer: torch.optim.Optimizer, settings: dict[str, Any]) -> int:
    """Restore the copy and the optimizer from a checkpoint; return the step to resume at."""
    found = read_settings(path, CHECKPOINT_FORMAT)
    resumable = {k: v for k, v in settings.items() if k != "iterations"}
    check_settings({k: v for k, v in found.items() if k != "iterations"}, resumable, path)
    tensors, metadata = read_safetensors(path, "shaping checkpoint", fix=_DAMAGED)
    step = int(metadata_json(metadata, "step", path, "shaping checkpoint"))
    if step > settings["iterations"]:
        raise CheckpointError(f"{path} is at step {step}, past iterations={settings['iterations']}; raise iterations or delete it")
    discriminator = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("discriminator/")}
    load_state_dict_strict(shaped.module, discriminator, f"shaping checkpoint {path}")
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    return step


#: The shipped digits GAN's shaped discriminator (made by benchmarks/train_shaped_discriminator.py) and the
#: refinement it was shaped for and guides: the generator's middle layer ``block1``, the paper's 20 steps of
#: size 0.1 (Fig. 5, Sec. 5.2), stopped at the mean real D (Algorithm 1).
SHAPED_DIGITS_FILE = "shaped_discriminator.safetensors"
SHAPED_DIGITS_SETTINGS: dict[str, Any] = {"layer": "block1", "steps": 20, "step_size": 0.1, "selection": "threshold"}


def shipped_shaped_digits_discriminator(like: Discriminator) -> Discriminator:
    """The shipped shaped discriminator of the digits GAN, checked against its manifest entry.

    Args:
        like: the digits GAN's discriminator (``digits_adapter().discriminator``), whose
            architecture and output convention the shaped copy shares.
    """
    path = asset_path("digits", SHAPED_DIGITS_FILE)
    entry = read_manifest("digits").get("files", {}).get(SHAPED_DIGITS_FILE)
    if entry is None or sha256_of(path) != entry["sha256"]:
        raise CheckpointError(
            f"{path} is not the shaped discriminator recorded in assets/digits/manifest.json (missing entry or other SHA-256); "
            "reinstall gan-postproc, or re-run benchmarks/train_shaped_discriminator.py"
        )
    return load_shaped_discriminator(path, like)
