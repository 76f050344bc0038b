"""Writing output files: atomically (a file appears whole or not at all), after checking the place is writable.

A process killed while writing leaves at most a hidden ``.<name>.<random>.tmp``
beside the target, which :func:`remove_stale_temp_files` clears when the run
is started again.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import secrets
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_json", "npz_bytes", "remove_stale_temp_files", "check_writable"]

#: Suffix of the temp files :func:`atomic_write` renames into place.
TEMP_SUFFIX = ".tmp"
_TEMP_HEX = 12
#: Names of those temp files: ``.<target name>.<12 hex digits>.tmp``.
_TEMP_NAME = re.compile(rf"\..+\.[0-9a-f]{{{_TEMP_HEX}}}{re.escape(TEMP_SUFFIX)}")


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None], *, durable: bool = True) -> Path:
    """Call ``write(temp_path)`` and rename the temp file onto ``path``.

    The temp file lives in the destination directory (so the rename is atomic
    on POSIX) and is removed if ``write`` fails. Parent directories are created.
    The file appears whole or not at all if the process dies at any point; with
    ``durable`` it is also flushed to disk (fsync) before the rename, so it
    survives a power loss too.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _new_temp_file(target)
    try:
        write(temp)
        if durable:
            with open(temp, "rb") as stream:
                os.fsync(stream.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def _new_temp_file(target: Path) -> Path:
    """Create an empty ``.<name>.<random>.tmp`` beside ``target``, with the permissions a plain ``open`` would give."""
    while True:
        temp = target.with_name(f".{target.name}.{secrets.token_hex(_TEMP_HEX // 2)}{TEMP_SUFFIX}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, unlike mkstemp's 0600
        except FileExistsError:
            continue
        return temp


def remove_stale_temp_files(path: str | os.PathLike[str]) -> int:
    """Delete temp files that :func:`atomic_write` left behind when its process was killed (SIGKILL, power loss).

    ``path`` is either a folder (its temp files, recursively) or a target
    file (only that file's temp files). Call it when a run starts, before
    anything writes there. Returns how many were removed.
    """
    path = Path(path)
    if path.is_dir():
        candidates = path.rglob(f".*{TEMP_SUFFIX}")
    else:
        candidates = path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}")
    stale = [p for p in candidates if _TEMP_NAME.fullmatch(p.name) and p.is_file()]
    for temp in stale:
        temp.unlink(missing_ok=True)
    return len(stale)


def check_writable(path: str | os.PathLike[str], option: str, *, folder: bool = False) -> Path:
    """Make sure an output can be written, before any work: create its folder and write a probe file there.

    Args:
        path: the output file, or with ``folder=True`` the output folder.
        option: how the user named it (``"--output"``), for the message.

    Raises:
        InputError: naming the path, the reason and the fix.
    """
    path = Path(path)
    directory = path if folder else path.parent
    if not folder and path.is_dir():
        raise InputError(f"{option} {path} is a folder; give a file name")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = _new_temp_file(directory / ".gan-postproc-write-test")
        probe.unlink()
    except OSError as error:
        raise InputError(
            f"{option} {path} is not writable ({error.strerror or error}: {error.filename or directory}); "
            "choose another location or fix its permissions"
        ) from error
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda temp: temp.write_bytes(data), durable=durable)


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """Write ``value`` as indented JSON to ``path`` atomically."""
    return atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive (readable by ``np.load``) whose bytes depend only on ``arrays``.

    ``np.savez`` stamps each member with the current time; this writes fixed
    timestamps and a fixed member order, so equal arrays give equal files.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buffer.getvalue()
