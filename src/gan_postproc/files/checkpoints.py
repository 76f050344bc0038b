"""Training checkpoints in safetensors, written atomically and resumable.

One file holds the tensors of any number of modules and optimizers plus a
JSON-friendly ``state`` (epoch, configuration, history). It is written to a
temporary file in the same folder and renamed over the target, so a run
killed mid-write leaves the previous checkpoint intact. safetensors files
hold only tensors and strings: loading one never executes code.

Layout: module tensors under ``<module name>.<state_dict key>``, optimizer
tensors under ``<optimizer name>.state.<param index>.<key>``; everything
else (optimizer ``param_groups`` and non-tensor state, the caller's
``state``) as JSON in the file's metadata.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save
from torch import nn

from ..errors import CheckpointError
from .loading import load_state_dict_strict, metadata_json, read_safetensors, read_safetensors_metadata
from .writing import atomic_write_bytes

__all__ = ["CHECKPOINT_FORMAT", "save_safetensors_atomic", "save_checkpoint", "load_checkpoint", "read_checkpoint_state"]

#: Written into every checkpoint's metadata; bumped when the layout changes.
CHECKPOINT_FORMAT = "gan_postproc.checkpoint/1"


def _optimizer_tensors(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into tensors and a JSON-friendly rest."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    rest: dict[str, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}.state.{index}.{key}"] = value
            else:
                rest.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "state": rest}


def save_safetensors_atomic(tensors: Mapping[str, torch.Tensor], path: str | Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``tensors`` to a safetensors file at ``path`` via a temporary file and a rename.

    Readers see either the old file or the complete new one, never a partial
    write. Tensors are copied to contiguous CPU memory first (safetensors
    refuses shared or strided storage).
    """
    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in tensors.items()}
    payload = save(tensors, metadata=dict(metadata) if metadata is not None else None)
    return atomic_write_bytes(path, payload)


def save_checkpoint(
    path: str | Path,
    *,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    state: Mapping[str, Any] | None = None,
) -> Path:
    """Write modules, optimizers and a JSON-friendly ``state`` to ``path`` atomically.

    Args:
        path: target ``.safetensors`` file; its folder is created if needed.
        modules: networks by name (names must not contain ``"."``).
        optimizers: optimizers by name.
        state: anything ``json.dumps`` accepts (epoch, config, history).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    optimizers = dict(optimizers or {})
    names = [*modules, *optimizers]
    if len(set(names)) != len(names) or any("." in n for n in names):
        raise CheckpointError(f"module and optimizer names must be unique and contain no '.', got {names}")
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update({f"{name}.{key}": value for key, value in module.state_dict().items()})
    optimizer_meta = {}
    for name, optimizer in optimizers.items():
        optimizer_tensors, optimizer_meta[name] = _optimizer_tensors(name, optimizer)
        tensors.update(optimizer_tensors)
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "modules": json.dumps(sorted(modules)),
        "optimizers": json.dumps(optimizer_meta),
        "state": json.dumps(dict(state or {})),
    }
    return save_safetensors_atomic(tensors, path, metadata)


_DAMAGED = "delete it (or its folder) to start over"


def _check_format(path: Path, metadata: dict[str, str]) -> dict[str, str]:
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a gan-postproc training checkpoint (format {metadata.get('format')!r}, "
            f"expected {CHECKPOINT_FORMAT!r}); for plain weights use gan_postproc.models.assets.load_weights"
        )
    return metadata


def read_checkpoint_state(path: str | Path) -> dict[str, Any]:
    """The JSON ``state`` stored in a checkpoint, without loading any tensor."""
    metadata = _check_format(Path(path), read_safetensors_metadata(path, "training checkpoint", fix=_DAMAGED))
    return metadata_json(metadata, "state", path, "training checkpoint")


def load_checkpoint(
    path: str | Path,
    *,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into the given modules and optimizers.

    Every module's keys and shapes must match exactly (see
    :func:`~gan_postproc.files.loading.load_state_dict_strict`).

    Returns:
        The checkpoint's ``state``.
    """
    path = Path(path)
    tensors, metadata = read_safetensors(path, "training checkpoint", fix=_DAMAGED)
    _check_format(path, metadata)
    stored_modules = metadata_json(metadata, "modules", path, "training checkpoint")
    optimizer_meta = metadata_json(metadata, "optimizers", path, "training checkpoint")
    optimizers = dict(optimizers or {})
    absent = sorted((set(modules) - set(stored_modules)) | (set(optimizers) - set(optimizer_meta)))
    if absent:
        raise CheckpointError(f"{path} holds no {absent}; it holds modules {stored_modules} and optimizers {sorted(optimizer_meta)}")
    for name, module in modules.items():
        prefix = f"{name}."
        device = next((t.device for t in module.state_dict().values()), torch.device("cpu"))
        own = {key[len(prefix):]: value.to(device) for key, value in tensors.items() if key.startswith(prefix)}
        load_state_dict_strict(module, own, f"{path} [{name}]")
    for name, optimizer in optimizers.items():
        prefix = f"{name}.state."
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, _, entry = key[len(prefix):].partition(".")
                state.setdefault(int(index), {})[entry] = value
        for index, entries in optimizer_meta[name]["state"].items():
            state.setdefault(int(index), {}).update(entries)
        try:
            optimizer.load_state_dict({"state": state, "param_groups": optimizer_meta[name]["param_groups"]})
        except (ValueError, KeyError) as error:
            raise CheckpointError(f"{path}: optimizer {name!r} does not match the stored one ({error})") from error
    return metadata_json(metadata, "state", path, "training checkpoint")
