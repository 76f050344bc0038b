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
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..files.loading import load_state_dict_strict, read_json, read_safetensors

__all__ = ["asset_path", "read_manifest", "sha256_of", "load_shipped_state", "load_state_dict_strict", "load_weights"]


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
    return read_json(asset_path(group, "manifest.json"), "asset manifest", fix="reinstall gan-postproc")


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
    manifest = read_manifest(group)
    entry = manifest.get("files", {}).get(name) if isinstance(manifest, dict) else None
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise CheckpointError(f"assets/{group}/manifest.json lists no file {name!r}; reinstall gan-postproc")
    path = asset_path(group, name)
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise CheckpointError(
            f"{path} has SHA-256 {actual}, but the manifest records {entry['sha256']}: the file was changed "
            "or corrupted; reinstall gan-postproc (or re-run benchmarks/train_digits.py, which rewrites both)"
        )
    return read_safetensors(path, "shipped weights file", fix="reinstall gan-postproc")[0]


def load_weights(module: nn.Module, path: str | Path) -> nn.Module:
    """Load a safetensors file into ``module`` with the strict checks of :func:`load_state_dict_strict`."""
    return load_state_dict_strict(module, read_safetensors(path, "weights file")[0], str(path))
