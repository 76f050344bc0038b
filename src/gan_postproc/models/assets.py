"""Files that ship inside the package: where they are, and loading them safely.

Shipped model weights live under ``gan_postproc/assets/<group>/``; each group
with trained weights has a ``manifest.json`` recording, per file, what it is,
how it was made and its SHA-256. Loading never touches the network, checks
the file against the manifest, and checks the weights against the module they
go into (:func:`load_weights`), so a file from another architecture gives an
error naming the keys that differ instead of a half-loaded model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..errors import CheckpointError

__all__ = ["asset_path", "read_manifest", "sha256_of", "load_shipped_state", "load_state_dict_strict", "load_weights"]

#: How many differing key names an error message lists before summarising.
_MAX_LISTED_KEYS = 8


def asset_path(group: str, name: str) -> Path:
    """Path of the shipped file ``assets/<group>/<name>``.

    Raises:
        CheckpointError: if the file is not in the installed package.
    """
    path = Path(str(resources.files("gan_postproc").joinpath("assets").joinpath(group).joinpath(name)))
    if not path.is_file():
        raise CheckpointError(
            f"shipped asset {group}/{name} is missing from the installed package (looked at {path}); "
            "reinstall gan-postproc, or check that your packaging keeps package data"
        )
    return path


@lru_cache(maxsize=None)
def read_manifest(group: str) -> dict[str, Any]:
    """The parsed ``assets/<group>/manifest.json``."""
    path = asset_path(group, "manifest.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}); reinstall gan-postproc") from error


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_shipped_state(group: str, name: str) -> dict[str, torch.Tensor]:
    """Tensors of the shipped safetensors file ``assets/<group>/<name>``, checked against the manifest.

    Raises:
        CheckpointError: if the manifest does not list the file or its
            SHA-256 differs from the recorded one (a corrupted or replaced file).
    """
    entry = read_manifest(group).get("files", {}).get(name)
    if entry is None:
        raise CheckpointError(f"assets/{group}/manifest.json lists no file {name!r}; reinstall gan-postproc")
    path = asset_path(group, name)
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise CheckpointError(
            f"{path} has SHA-256 {actual}, but the manifest records {entry['sha256']}: the file was changed "
            "or corrupted; reinstall gan-postproc (or re-run benchmarks/train_digits.py, which rewrites both)"
        )
    return _read_safetensors(path)


def _read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"cannot read {path} as safetensors ({error}); is it a .safetensors file?") from error


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED_KEYS])
    more = len(keys) - _MAX_LISTED_KEYS
    return shown + (f" (and {more} more)" if more > 0 else "")


def load_state_dict_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state`` into ``module`` after checking the key sets and every shape match exactly.

    Args:
        module: the network to fill in place.
        state: parameter and buffer tensors by ``state_dict`` key.
        source: where ``state`` came from, for the error message.

    Returns:
        ``module``.

    Raises:
        CheckpointError: naming the missing keys, unexpected keys and shape
            mismatches, when ``state`` was made for another architecture.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{key} (checkpoint {tuple(state[key].shape)}, model {tuple(expected[key].shape)})"
        for key in set(expected) & set(state)
        if tuple(state[key].shape) != tuple(expected[key].shape)
    )
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys: {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_listed(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches: {_listed(mismatched)}")
        raise CheckpointError(
            f"{source} does not fit {type(module).__name__}: " + "; ".join(parts)
            + ". The checkpoint was made for a different architecture; build the module with the "
            "configuration the checkpoint was trained with"
        )
    module.load_state_dict(dict(state), strict=True)
    return module


def load_weights(module: nn.Module, path: str | Path) -> nn.Module:
    """Load a safetensors file into ``module`` with the strict checks of :func:`load_state_dict_strict`."""
    return load_state_dict_strict(module, _read_safetensors(path), str(path))
