"""Reading and writing standalone images: folders of PNG/JPEG files and ``.npz`` arrays.

Used by the commands that work without a generator (``gan-postproc refine``,
``gan-postproc train-robust-classifier``). Pixels are 8-bit: a file's values
0..255 map to the chain's ``[-1, 1]`` as ``p / 127.5 - 1`` and back with
rounding. Arrays may be ``uint8`` (0..255) or floating point in a value range
the caller states; nothing is guessed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..pipeline.ranges import CHAIN_RANGE, rescale
from ..validation import ValueRange, check_finite, check_in_range
from .loading import read_json, read_npz
from .writing import atomic_write

__all__ = [
    "IMAGE_SUFFIXES",
    "UINT8_RANGE",
    "list_images",
    "read_image",
    "read_images",
    "write_image",
    "to_chain",
    "to_uint8",
    "NpzImages",
    "read_npz_images",
    "read_label_file",
]

#: File suffixes read as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: The value range of 8-bit pixels.
UINT8_RANGE: ValueRange = (0.0, 255.0)
#: PIL modes read as they are (channels first): grayscale and RGB.
_MODES = {"L": 1, "RGB": 3}
#: How many unreadable files an error lists by name.
_MAX_LISTED = 5


def list_images(root: str | os.PathLike[str]) -> list[Path]:
    """Image files under ``root`` (recursively), as sorted paths relative to ``root``.

    Only names ending in :data:`IMAGE_SUFFIXES` are listed; other files and
    anything hidden (a name, or a folder on the way, starting with ``.``)
    are skipped. Whether a listed file really is an image is checked when it
    is read (:func:`read_image`, :func:`read_images`).

    Raises:
        InputError: if ``root`` is not a folder, or holds no image file (the
            message names a few of the files that were skipped).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder of images" + (" (it does not exist)" if not root.exists() else ""))
    found, skipped = [], []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        # A broken link with an image name is listed, so reading it reports it instead of skipping it silently.
        if not (path.is_file() or path.is_symlink()) or any(part.startswith(".") for part in relative.parts):
            continue
        (found if path.suffix.lower() in IMAGE_SUFFIXES else skipped).append(relative)
    if not found:
        others = f"; it holds {len(skipped)} other file(s), e.g. {sorted(p.as_posix() for p in skipped)[:3]}" if skipped else " (it is empty)"
        raise InputError(f"{root} holds no {'/'.join(IMAGE_SUFFIXES)} images{others}; point to the folder with the images")
    return sorted(found, key=lambda p: p.as_posix())


class _ImageProblem(Exception):
    """Why one file cannot be used as an image (internal: becomes an InputError naming the file)."""


def _describe_mode(mode: str) -> str:
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        return f"pixel mode {mode!r} (an alpha channel)"
    if mode.startswith("I") or mode == "F":
        return f"pixel mode {mode!r} (16- or 32-bit pixels)"
    return f"pixel mode {mode!r}"


def _decode(path: Path) -> np.ndarray:
    """The pixels ``[C, H, W]`` uint8 of one image file, or :class:`_ImageProblem`."""
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below; opening first tells "cannot open" from "cannot decode"
    except OSError as error:
        raise _ImageProblem(f"cannot open it ({error.strerror or type(error).__name__})") from error
    with file:
        if os.fstat(file.fileno()).st_size == 0:
            raise _ImageProblem("the file is empty")
        return _decode_open(file)


def _decode_open(file: BinaryIO) -> np.ndarray:
    try:
        with Image.open(file) as opened:
            frames = getattr(opened, "n_frames", 1)
            opened.load()
            image = opened
            if image.mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif image.mode == "1":
                image = image.convert("L")  # bilevel: 0 and 255, nothing lost
            mode = image.mode
            array = np.asarray(image, dtype=np.uint8) if mode in _MODES else None
    except UnidentifiedImageError as error:
        raise _ImageProblem("its content is not an image format Pillow knows (not a PNG or JPEG file)") from error
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, struct.error, ... for damaged files
        raise _ImageProblem(f"the image data is damaged or truncated ({type(error).__name__}: {error})") from error
    if frames > 1:
        raise _ImageProblem(f"it is an animation of {frames} frames; only single images are read")
    if array is None:
        raise _ImageProblem(f"{_describe_mode(mode)}; only 8-bit grayscale ('L') and RGB images are read: convert it, "
                            "e.g. Image.open(path).convert('RGB').save(path) with Pillow")
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


_READ_FIX = "fix or re-export the file, or move it out of the input folder"


def read_image(path: str | os.PathLike[str], *, fix: str = _READ_FIX) -> np.ndarray:
    """One image as ``[C, H, W]`` uint8 (C = 1 for grayscale, 3 for RGB).

    Palette images without transparency become RGB and bilevel images
    grayscale (0 and 255), which loses nothing. Images with an alpha channel,
    more than 8 bits per channel, other colour modes (CMYK, ...) or several
    frames are refused: converting them would change the pixels silently.

    Args:
        fix: what the user should do about a file that cannot be read, for the message.

    Raises:
        InputError: naming the file, what is wrong with it and ``fix``.
    """
    path = Path(path)
    try:
        return _decode(path)
    except _ImageProblem as problem:
        raise InputError(f"cannot use {path} as an image: {problem}; {fix}") from problem


def read_images(root: str | os.PathLike[str], names: Sequence[str | os.PathLike[str]], *, keep: bool = True) -> tuple[tuple[int, int, int], np.ndarray | None]:
    """Decode every image ``root / name`` first, and refuse the set with one error if any cannot be used.

    Every file is read in full (a truncated file is found here, before any
    work), and all must have one shape: mixing sizes or grayscale with RGB is
    refused, not resized or converted.

    Args:
        keep: return the pixels (``False`` only checks, keeping memory flat).

    Returns:
        The common ``(C, H, W)`` and, with ``keep``, the images ``[N, C, H, W]`` uint8.

    Raises:
        InputError: listing the files that cannot be read (and why), or how the shapes differ.
    """
    root = Path(root)
    if not names:
        raise InputError(f"{root}: no images to read")
    problems: list[str] = []
    shapes: dict[tuple[int, int, int], list[str]] = {}
    kept: list[np.ndarray] = []
    for name in names:
        path = root / name
        try:
            pixels = _decode(path)
        except _ImageProblem as problem:
            problems.append(f"{path}: {problem}")
            continue
        shapes.setdefault(pixels.shape, []).append(Path(name).as_posix())
        if keep:
            kept.append(pixels)
    if problems:
        listed = "; ".join(problems[:_MAX_LISTED])
        more = f" (and {len(problems) - _MAX_LISTED} more)" if len(problems) > _MAX_LISTED else ""
        raise InputError(f"{len(problems)} of {len(names)} files cannot be used as images: {listed}{more}; {_READ_FIX}")
    if len(shapes) > 1:
        counts = ", ".join(f"{len(files)} are {shape} (e.g. {files[0]})" for shape, files in sorted(shapes.items(), key=lambda kv: -len(kv[1])))
        raise InputError(
            f"the images in {root} differ in size or colour mode (channels, height, width): {counts}; "
            "use images of one size and mode (resize or convert them first)"
        )
    shape = next(iter(shapes))
    return shape, (np.stack(kept) if keep else None)


def write_image(path: str | os.PathLike[str], pixels: np.ndarray, *, jpeg_quality: int = 95) -> Path:
    """Write ``[C, H, W]`` uint8 pixels atomically, in the format the suffix names (PNG lossless, JPEG lossy)."""
    path = Path(path)
    array = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    image = Image.fromarray(np.ascontiguousarray(array))
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    options = {"quality": jpeg_quality} if fmt == "JPEG" else {}
    return atomic_write(path, lambda temp: image.save(temp, format=fmt, **options))


def to_chain(array: np.ndarray, value_range: ValueRange | None = None) -> torch.Tensor:
    """``[N, C, H, W]`` pixels -> float32 chain images in ``[-1, 1]``.

    ``uint8`` arrays are in ``[0, 255]``; floating arrays need their
    ``value_range`` stated and are checked to be finite and inside it.
    """
    if array.dtype == np.uint8:
        return rescale(torch.from_numpy(array.astype(np.float32)), UINT8_RANGE, CHAIN_RANGE)
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"image arrays must be uint8 (0..255) or floating point, got {array.dtype}")
    if value_range is None:
        raise InputError(
            f"a floating-point image array ({array.dtype}) needs its value range stated, e.g. (-1, 1) or (0, 1) "
            "(CLI: --value-range -1 1)"
        )
    images = torch.from_numpy(array.astype(np.float32))
    check_finite(images, "images")
    check_in_range(images, "images", value_range)
    return rescale(images, value_range, CHAIN_RANGE).clamp(*CHAIN_RANGE)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Chain images ``[N, C, H, W]`` in ``[-1, 1]`` -> uint8 ``[N, C, H, W]`` (rounded)."""
    pixels = rescale(images.detach().float().cpu(), CHAIN_RANGE, UINT8_RANGE)
    return pixels.round().clamp(0, 255).to(torch.uint8).numpy()


@dataclass
class NpzImages:
    """Images read from an ``.npz`` file.

    Attributes:
        arrays: every array of the file, by key (written back unchanged except ``key``).
        key: the key holding the images.
        layout: ``"NCHW"`` or ``"NHWC"``, how ``arrays[key]`` stores them.
    """

    arrays: dict[str, np.ndarray]
    key: str
    layout: str

    @property
    def nchw(self) -> np.ndarray:
        """The images as ``[N, C, H, W]`` (a view)."""
        images = self.arrays[self.key]
        return images if self.layout == "NCHW" else images.transpose(0, 3, 1, 2)

    def from_nchw(self, images: np.ndarray) -> np.ndarray:
        """``[N, C, H, W]`` back to the file's layout."""
        return images if self.layout == "NCHW" else images.transpose(0, 2, 3, 1)


def _guess_layout(shape: Sequence[int], path: Path, key: str) -> str:
    channels_first = shape[1] in (1, 3)
    channels_last = shape[3] in (1, 3)
    if channels_first == channels_last:
        raise InputError(
            f"{path}[{key!r}] has shape {tuple(shape)}: cannot tell whether it is NCHW or NHWC; pass layout (CLI: --layout NCHW)"
        )
    return "NCHW" if channels_first else "NHWC"


def read_npz_images(path: str | os.PathLike[str], key: str | None = None, layout: str | None = None) -> NpzImages:
    """Read an ``.npz`` whose ``key`` array holds images ``[N, C, H, W]`` or ``[N, H, W, C]`` (or ``[N, H, W]``).

    Args:
        key: the array's key; default: the only array, or ``"images"``.
        layout: ``"NCHW"`` / ``"NHWC"``; default: told from where a size-1 or 3 axis is.
    """
    path = Path(path)
    arrays = read_npz(path, "image array file", fix="write it again (numpy.savez)", error=InputError)
    if key is None:
        key = next(iter(arrays)) if len(arrays) == 1 else "images"
    if key not in arrays:
        raise InputError(f"{path} has no array {key!r}; its arrays are {sorted(arrays)} (CLI: --key NAME)")
    images = arrays[key]
    if images.ndim == 3:
        arrays[key] = images = images[:, None]
        layout = "NCHW"
    if images.ndim != 4 or images.shape[0] == 0:
        raise InputError(f"{path}[{key!r}] must hold images [N, C, H, W] or [N, H, W, C] with N >= 1, got shape {images.shape}")
    layout = _guess_layout(images.shape, path, key) if layout is None else layout.upper()
    if layout not in ("NCHW", "NHWC"):
        raise InputError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    return NpzImages(arrays=arrays, key=key, layout=layout)


def read_label_file(path: str | os.PathLike[str], *, names: Sequence[str] | None = None, count: int | None = None, key: str = "labels") -> np.ndarray:
    """Class labels, ``[N]`` int64, from a file.

    Formats:
        * ``.npy``: an integer array ``[N]`` (in input order);
        * ``.npz``: the integer array under ``key``;
        * ``.json``: ``{"relative/name.png": label, ...}`` (needs ``names``)
          or a list ``[label, ...]`` in input order;
        * ``.csv`` / ``.txt``: lines ``name,label`` (needs ``names``) or one
          ``label`` per line in input order.

    Args:
        names: the inputs' relative file names (a folder input), to match by name.
        count: how many labels are needed (checked).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"labels file {path} does not exist")
    suffix = path.suffix.lower()
    by_name: dict[str, int] | None = None
    values: list[int] | np.ndarray
    try:
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
            if not isinstance(values, np.ndarray):
                raise ValueError("it is not a .npy array file")
        elif suffix == ".npz":
            arrays = read_npz(path, "labels file", error=InputError)
            if key not in arrays:
                raise InputError(f"{path} has no array {key!r}; its arrays are {sorted(arrays)} (CLI: --labels-key NAME)")
            values = arrays[key]
        elif suffix == ".json":
            loaded = read_json(path, "labels file", error=InputError)
            if isinstance(loaded, dict):
                by_name = {str(k): int(v) for k, v in loaded.items()}
            else:
                values = [int(v) for v in loaded]
        elif suffix in (".csv", ".txt"):
            rows = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            if rows and "," in rows[0]:
                by_name = {}
                for row in rows:
                    name, _, label = row.rpartition(",")
                    if name.strip().lower() in ("name", "file", "filename") and not label.strip().lstrip("-").isdigit():
                        continue  # a header line
                    by_name[name.strip()] = int(label)
            else:
                values = [int(row) for row in rows]
        else:
            raise InputError(f"labels file {path} must be .npy, .npz, .json, .csv or .txt")
    except InputError:
        raise
    except Exception as error:  # numpy's .npy reader and int() on arbitrary file content raise many types
        raise InputError(
            f"cannot read labels from {path} ({type(error).__name__}: {error}); see `gan-postproc refine --help` for the label file formats"
        ) from error
    if by_name is not None:
        if names is None:
            raise InputError(f"{path} gives labels by file name, but the input is an array; give one label per row in order")
        missing = [n for n in names if n not in by_name]
        if missing:
            raise InputError(f"{path} has no label for {len(missing)} input file(s), e.g. {missing[:3]}")
        values = [by_name[n] for n in names]
    labels = np.asarray(values)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels in {path} must be a 1-D list of integer classes, got shape {labels.shape} and dtype {labels.dtype}")
    if count is not None and labels.shape[0] != count:
        raise InputError(f"{path} holds {labels.shape[0]} labels for {count} input images; give exactly one per image")
    return labels.astype(np.int64)
