"""Reading files safely: every weights, checkpoint, manifest and array file gan-postproc reads is opened here.

Three rules hold for all of them:

* Nothing that can execute code is read without an explicit opt-in.
  safetensors, JSON and ``.npz`` (``allow_pickle=False``) hold only data;
  PyTorch pickles are read with ``torch.load(weights_only=True)``
  (:func:`torch_load_weights`); pickles that carry code (NVlabs network
  pickles, whole pickled modules) go through :func:`load_code_pickle`, which
  refuses without the caller's opt-in and warns with
  :class:`CodeExecutionWarning` when it loads.
* A file that is missing, empty, truncated, corrupt or of another kind raises
  :class:`~gan_postproc.errors.CheckpointError` (or the error class the
  caller names) with the file's path, what is wrong and what to do, never a
  decoding library's own exception. The ``try`` blocks around the decoders
  catch ``Exception`` on purpose: they hold only the library call on
  untrusted bytes, which can raise nearly anything (``zipfile.BadZipFile``,
  ``EOFError``, ``RuntimeError`` from PyTorch's zip reader, ``SafetensorError``).
* Weights go into a module only when every key and shape matches
  (:func:`load_state_dict_strict`); otherwise the error lists the missing,
  unexpected and mis-shaped keys.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from safetensors import safe_open
from torch import nn

from ..errors import CheckpointError, GanPostprocError, UnsafeCheckpointError

__all__ = [
    "CodeExecutionWarning",
    "read_safetensors",
    "read_safetensors_metadata",
    "metadata_json",
    "checked_entries",
    "differing_keys",
    "read_json",
    "read_npz",
    "torch_load_weights",
    "load_code_pickle",
    "load_state_dict_strict",
]

#: How many differing key names an error message lists before summarising.
_MAX_LISTED_KEYS = 8
#: What to do about a damaged file, unless the caller says better.
_DEFAULT_FIX = "the file is truncated or corrupted: write or download it again"


class CodeExecutionWarning(UserWarning):
    """Issued when a file is loaded whose loading runs code stored in it (the caller opted in)."""


def _path_of(path: str | os.PathLike[str], what: str, error: type[GanPostprocError]) -> Path:
    path = Path(path)
    if not path.exists():
        raise error(f"{what} {path} does not exist; check the path")
    if not path.is_file():
        raise error(f"{what} {path} is not a file")
    return path


def _one_line(cause: BaseException, limit: int = 200) -> str:
    """A library's message on one line, cut to ``limit`` characters (PyTorch's run to several lines)."""
    text = " ".join(str(cause).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unreadable(path: Path, what: str, kind: str, cause: BaseException, fix: str | None, error: type[GanPostprocError]) -> GanPostprocError:
    reason = type(cause).__name__ + (f": {_one_line(cause)}" if str(cause) else "")
    if path.stat().st_size == 0:
        reason = "the file is empty"
    return error(f"cannot read {what} {path} as {kind} ({reason}); {fix or _DEFAULT_FIX}")


def read_safetensors(
    path: str | os.PathLike[str], what: str = "checkpoint", *, fix: str | None = None, error: type[GanPostprocError] = CheckpointError
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (on the CPU) and the metadata of a safetensors file.

    Args:
        what: what the file is, for messages (``"calibration checkpoint"``).
        fix: what the user should do if the file is damaged (default: write it again).
    """
    path = _path_of(path, what, error)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as cause:  # see the module docs: only the decoder runs here
        raise _unreadable(path, what, "safetensors", cause, fix, error) from cause
    return tensors, metadata


def read_safetensors_metadata(
    path: str | os.PathLike[str], what: str = "checkpoint", *, fix: str | None = None, error: type[GanPostprocError] = CheckpointError
) -> dict[str, str]:
    """The metadata of a safetensors file, without reading its tensors."""
    path = _path_of(path, what, error)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return dict(handle.metadata() or {})
    except Exception as cause:  # see the module docs
        raise _unreadable(path, what, "safetensors", cause, fix, error) from cause


def metadata_json(metadata: Mapping[str, str], key: str, path: str | os.PathLike[str], what: str = "checkpoint") -> Any:
    """``json.loads(metadata[key])`` of a file's metadata, with a clear error when the entry is absent or not JSON."""
    if key not in metadata:
        raise CheckpointError(f"{what} {path} has no {key!r} entry in its metadata; it was not written by gan-postproc or is damaged")
    try:
        return json.loads(metadata[key])
    except ValueError as cause:
        raise CheckpointError(f"{what} {path}: the metadata entry {key!r} is not valid JSON ({cause})") from cause


def checked_entries(
    value: Any, keys: Iterable[str], path: str | os.PathLike[str], what: str, entry: str, *, fix: str | None = None
) -> dict[str, Any]:
    """``value`` (a parsed metadata entry), checked to be a JSON object holding every one of ``keys``.

    Args:
        entry: the entry's name, for messages (``"state"``, ``"state.config"``).
        fix: what the user should do about a damaged file (default: write it again).

    Raises:
        CheckpointError: naming the file, the entry and the missing keys.
    """
    if not isinstance(value, dict):
        raise CheckpointError(f"{what} {path}: its {entry!r} metadata is a {type(value).__name__}, not an object; {fix or _DEFAULT_FIX}")
    missing = [key for key in keys if key not in value]
    if missing:
        raise CheckpointError(f"{what} {path}: its {entry!r} metadata lacks {', '.join(missing)}; {fix or _DEFAULT_FIX}")
    return value


def differing_keys(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The keys, sorted, whose values differ between a stored settings record and the current one
    (a key present in only one of them counts): what a resumed run names when it refuses to continue."""
    return sorted(key for key in set(stored) | set(current) if stored.get(key) != current.get(key))


def read_json(
    path: str | os.PathLike[str], what: str = "file", *, fix: str | None = None, error: type[GanPostprocError] = CheckpointError
) -> Any:
    """The parsed JSON of a text file."""
    path = _path_of(path, what, error)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as cause:  # ValueError covers JSONDecodeError and UnicodeDecodeError
        raise _unreadable(path, what, "JSON", cause, fix, error) from cause


def read_npz(
    path: str | os.PathLike[str], what: str = "array file", *, fix: str | None = None, error: type[GanPostprocError] = CheckpointError
) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (read with ``allow_pickle=False``), by key."""
    path = _path_of(path, what, error)
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError(f"it holds a single {type(data).__name__}, not an .npz archive of named arrays")
            return {name: data[name] for name in data.files}
    except Exception as cause:  # see the module docs
        raise _unreadable(path, what, "an .npz archive", cause, fix, error) from cause


def torch_load_weights(path: str | os.PathLike[str], what: str = "checkpoint", *, allowed: Iterable[type] = ()) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors, numbers, strings and containers only.

    Args:
        allowed: further classes the file may hold (``torch.serialization.safe_globals``),
            e.g. ``argparse.Namespace`` for training arguments stored beside the weights.

    Raises:
        UnsafeCheckpointError: if the file holds other objects (loading them could run code).
        CheckpointError: if it is missing, truncated or not a PyTorch file.
    """
    path = _path_of(path, what, CheckpointError)
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as cause:
        if "weights only" not in str(cause).lower():
            raise _unreadable(path, what, "a PyTorch file", cause, None, CheckpointError) from cause
        raise UnsafeCheckpointError(
            f"{what} {path} holds objects other than tensors and plain values; refusing to unpickle them, because that "
            f"could run code stored in the file ({_one_line(cause)}). Load it yourself only if you trust it"
        ) from cause
    except Exception as cause:  # see the module docs
        raise _unreadable(path, what, "a PyTorch file", cause, None, CheckpointError) from cause


def load_code_pickle(
    path: str | os.PathLike[str],
    what: str,
    *,
    allow: bool,
    opt_in: str,
    load: Callable[[IO[bytes]], Any] = pickle.load,
    stacklevel: int = 3,
) -> Any:
    """Unpickle a file whose loading runs code stored in it, only with the caller's explicit opt-in.

    Args:
        what: what the file is, for messages.
        allow: the opt-in; anything but ``True`` refuses before the file is opened.
        opt_in: how the user opts in, e.g. ``"pass allow_pickle=True (CLI: --allow-pickle)"``.
        load: reads the object from the open binary file (default ``pickle.load``).
        stacklevel: of the :class:`CodeExecutionWarning`, so it points at the user's call.

    Raises:
        UnsafeCheckpointError: without the opt-in.
        CheckpointError: if the file is missing or cannot be unpickled.
    """
    path = _path_of(path, what, CheckpointError)
    if allow is not True:
        raise UnsafeCheckpointError(
            f"{what} {path} is a pickle, and loading a pickle runs whatever code it contains; if you trust its "
            f"source, {opt_in}"
        )
    warnings.warn(f"loading {path} executes the code stored in the pickle", CodeExecutionWarning, stacklevel=stacklevel)
    try:
        with open(path, "rb") as file:
            return load(file)
    except GanPostprocError:
        raise
    except Exception as cause:  # unpickling runs the file's code, which can raise anything
        raise _unreadable(path, what, "a pickle", cause, None, CheckpointError) from cause


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
    not_tensors = sorted(key for key, value in state.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise CheckpointError(f"{source} holds entries that are not tensors: {_listed(not_tensors)}; it is not a state dict")
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
