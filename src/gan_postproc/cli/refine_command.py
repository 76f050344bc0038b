"""``gan-postproc refine``: refine standalone images with a refiner, without any generator.

Input: a folder of PNG/JPEG images (searched recursively) or an ``.npz``
array. Output: a folder with the refined images under the same relative
file names (same format; JPEG re-encoded at ``--jpeg-quality``), or the
``.npz`` with its image array replaced and every other array kept.

Every output file is written atomically, so an interrupted run leaves only
whole files; re-running the same command skips the images already written
(a folder output file that opens as an image of the input's size, or a
finished chunk of an ``.npz``) and does the rest. A small
``gan_postproc_refine.json`` in the output folder records the settings; a
re-run with other settings is refused rather than mixing two runs' images.

The refiner's settings are ``--refiner-option NAME.key=value`` (repeatable, NAME
the ``--refiner``; the value is parsed as JSON, else taken as a string), as for
``gan-postproc sample``. Example (BIGRoC with the shipped digits robust
classifier, eps 1.0 in [-1, 1] units)::

    gan-postproc refine --refiner bigroc --classifier digits-robust --refiner-option bigroc.eps=1.0 \\
        --input generated/ --output refined/

The BIGRoC flags of gan-postproc 0.1 (``--eps``, ``--eps-range``, ``--steps``,
``--step-size``, ``--norm``, ``--debias``, ``--autocast``) and ``--option KEY=VALUE``
still work until 0.3, with a warning that names the ``--refiner-option`` to use.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..defaults import DEFAULTS
from ..errors import InputError
from ..files.classifiers import load_classifier
from ..files.images import (
    NpzImages,
    list_images,
    read_image,
    read_images,
    read_label_file,
    read_npz_images,
    to_chain,
    to_uint8,
    write_image,
)
from ..files.loading import differing_keys, read_json, read_npz
from ..files.writing import atomic_write_bytes, atomic_write_json, check_writable, npz_bytes, remove_stale_temp_files
from ..pipeline.batch import SampleBatch
from ..pipeline.chain import Chain
from ..pipeline.ranges import CHAIN_RANGE, rescale
from ..plugin_system.registry import get_registry
from .specs import parse_options, refiner_options

NAME = "refine"
HELP = "refine standalone images (a folder of PNG/JPEG files or an .npz array) with a refiner such as bigroc, no generator needed"
#: The settings record written into the output folder.
MANIFEST = "gan_postproc_refine.json"
MANIFEST_FORMAT = "gan_postproc.refine/1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refiner", required=True, help="refiner name (see `gan-postproc plugins`), e.g. bigroc")
    parser.add_argument("--input", required=True, type=Path, help="a folder of .png/.jpg images, or an .npz file")
    parser.add_argument("--output", required=True, type=Path, help="output folder (created; re-running resumes)")
    parser.add_argument("--classifier", help="shipped classifier name (e.g. digits-robust) or a classifier .safetensors file")
    parser.add_argument("--allow-pickle", action="store_true", help="allow a pickled classifier (.pt/.pth): runs code from the file")
    parser.add_argument("--num-classes", type=int, help="class count of a pickled bare classifier module")
    parser.add_argument("--labels", type=Path, help="target classes: .npy/.npz/.json/.csv/.txt (see docs); default: the refiner decides (bigroc: pseudo labels)")
    parser.add_argument("--labels-key", default="labels", help="array key in an .npz labels file (default: labels)")
    parser.add_argument(
        "--refiner-option", action="append", default=[], metavar="NAME.KEY=VALUE",
        help="a setting of the refiner, e.g. bigroc.eps=1.0 or bigroc.norm=linf (VALUE parsed as JSON, else a string); repeatable",
    )
    # The BIGRoC flags of 0.1 and --option, kept until 0.3 (hidden from --help; each use warns).
    for flag, settings in _DEPRECATED_FLAGS.items():
        parser.add_argument(flag, help=argparse.SUPPRESS, **settings)
    arrays = parser.add_argument_group("npz input")
    arrays.add_argument("--key", help="array key of the images (default: the only array, or 'images')")
    arrays.add_argument("--layout", choices=["NCHW", "NHWC"], help="array layout (default: told from the channel axis)")
    arrays.add_argument("--value-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="value range of a floating-point array (required for float arrays)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help=f"images per refiner call (default {DEFAULTS.batch_size})")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--jpeg-quality", type=int, default=95, help="quality of re-encoded .jpg outputs (default 95)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


#: The 0.1 flags (BIGRoC's settings and the generic --option) -> argparse settings; see _deprecated_options.
_DEPRECATED_FLAGS: dict[str, dict[str, Any]] = {
    "--eps": {"type": float},
    "--eps-range": {"type": float, "nargs": 2},
    "--steps": {"type": int},
    "--step-size": {"type": float},
    "--norm": {"choices": ["l2", "linf"]},
    "--debias": {},
    "--autocast": {"action": "store_true"},
    "--option": {"action": "append", "default": []},
}


def _deprecated_options(args: argparse.Namespace) -> dict[str, Any]:
    """The refiner options given through the 0.1 flags, each use warned about with its --refiner-option spelling."""
    given: dict[str, Any] = {}
    for key in ("eps", "steps", "step_size", "norm"):
        if getattr(args, key) is not None:
            given[key] = getattr(args, key)
    if args.eps_range is not None:
        given["eps_range"] = tuple(args.eps_range)
    if args.autocast:
        given["autocast"] = True
    if args.debias is not None:
        given["debias"] = {"auto": True, "off": False}.get(args.debias.lower(), args.debias)
    given.update(parse_options(args.option, "--option"))
    for key, value in given.items():
        spelled = json.dumps(list(value) if isinstance(value, tuple) else value).replace(" ", "")
        flag = f"--{key.replace('_', '-')}" if f"--{key.replace('_', '-')}" in _DEPRECATED_FLAGS else "--option"
        print(
            f"gan-postproc refine: warning: {flag} is deprecated; use --refiner-option {args.refiner}.{key}={spelled} "
            "(the old flags are removed in gan-postproc 0.3)",
            file=sys.stderr,
        )
    return given


def _refiner_options(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    options = _deprecated_options(args)
    options.update(refiner_options(args.refiner_option, [args.refiner])[args.refiner])
    if args.classifier is not None:
        options["classifier"] = load_classifier(args.classifier, allow_pickle=args.allow_pickle, num_classes=args.num_classes, device=device)
    return options


def _check_manifest(output: Path, record: dict[str, Any]) -> None:
    path = output / MANIFEST
    if path.is_file():
        stored = read_json(path, "refine settings record", fix="delete it (or the output folder) to start over", error=InputError)
        if not isinstance(stored, dict):
            raise InputError(f"{path} is not a refine settings record; delete it (or the output folder) to start over")
        if stored != record:
            changed = differing_keys(stored, record)
            raise InputError(
                f"{output} holds the output of a run with other settings ({', '.join(changed)} differ); "
                "re-run with the same settings to resume, or choose another --output"
            )
    else:
        atomic_write_json(path, record)


# --- folder input ----------------------------------------------------------------------


class _Folder:
    """A folder of images: which are left to do, and reading them in batches."""

    def __init__(self, root: Path, output: Path, names: list[Path], labels: np.ndarray | None, jpeg_quality: int) -> None:
        self.root, self.output, self.target = root, output, output
        self.names, self.labels = names, labels
        self.count = len(names)
        # Every input is decoded once up front: a damaged file or a second image size stops the run before any work.
        self.shape, _ = read_images(root, names, keep=False)
        self.jpeg_quality = jpeg_quality

    def finished(self) -> bool:
        return False

    def size(self, positions: list[int]) -> int:
        return len(positions)

    def is_done(self, positions: list[int]) -> bool:
        """True when every output of the batch was written by an earlier run."""
        return all(self._written(position) for position in positions)

    def _written(self, position: int) -> bool:
        """The output exists and reads as an image of the inputs' size and mode."""
        target = self.output / self.names[position]
        if not target.is_file():
            return False
        try:
            return read_image(target).shape == self.shape
        except InputError:
            return False

    def read(self, positions: list[int]) -> SampleBatch:
        _, pixels = read_images(self.root, [self.names[position] for position in positions])
        labels = None if self.labels is None else torch.from_numpy(self.labels[positions])
        return SampleBatch(images=to_chain(pixels), labels=labels, indices=torch.tensor(positions))

    def write(self, positions: list[int], refined: torch.Tensor) -> None:
        for position, pixels in zip(positions, to_uint8(refined)):
            write_image(self.output / self.names[position], pixels, jpeg_quality=self.jpeg_quality)

    def finish(self) -> None:
        """Nothing to assemble: every image is its own file."""


# --- npz input ----------------------------------------------------------------------------


class _Npz:
    """An ``.npz`` image array, refined in chunks saved as part files, assembled at the end."""

    def __init__(self, path: Path, output: Path, data: NpzImages, labels: np.ndarray | None, value_range: tuple[float, float] | None, chunk: int) -> None:
        self.path, self.data, self.labels, self.chunk = path, data, labels, chunk
        self.target = output / path.name
        self.parts = output / f".{path.stem}.parts"
        self.images = data.nchw
        self.count = int(self.images.shape[0])
        self.dtype = self.images.dtype
        if self.dtype == np.uint8 and value_range is not None and tuple(value_range) != (0.0, 255.0):
            raise InputError(f"{path}[{data.key!r}] is uint8, whose range is 0..255; drop --value-range {value_range[0]:g} {value_range[1]:g}")
        self.value_range = None if self.dtype == np.uint8 else value_range
        if self.dtype != np.uint8 and value_range is None:
            to_chain(self.images[:1], None)  # raises the clear "state the value range" error

    def size(self, start: int) -> int:
        return min(self.chunk, self.count - start)

    def _part(self, start: int) -> Path:
        stop = min(start + self.chunk, self.images.shape[0])
        return self.parts / f"{start:010d}-{stop:010d}.npz"

    def finished(self) -> bool:
        """True when the assembled output exists with the input's array shape."""
        if not self.target.is_file():
            return False
        try:
            with np.load(self.target, allow_pickle=False) as done:
                return self.data.key in done.files and done[self.data.key].shape == self.data.arrays[self.data.key].shape
        except (OSError, ValueError):
            return False

    def is_done(self, start: int) -> bool:
        part = self._part(start)
        try:
            with np.load(part, allow_pickle=False) as done:
                return done["images"].shape == self.images[start : start + self.chunk].shape
        except (OSError, ValueError, KeyError):
            return False

    def read(self, start: int) -> SampleBatch:
        rows = slice(start, start + self.chunk)
        labels = None if self.labels is None else torch.from_numpy(self.labels[rows])
        images = to_chain(self.images[rows], self.value_range)
        return SampleBatch(images=images, labels=labels, indices=torch.arange(start, start + images.shape[0]))

    def write(self, start: int, refined: torch.Tensor) -> None:
        if self.dtype == np.uint8:
            array = to_uint8(refined)
        else:
            array = rescale(refined.detach().float().cpu(), CHAIN_RANGE, self.value_range).numpy().astype(self.dtype)
        atomic_write_bytes(self._part(start), npz_bytes({"images": array}))

    def finish(self) -> None:
        """Concatenate the chunks into the output .npz (atomically) and remove them."""
        chunks = []
        for start in range(0, self.count, self.chunk):
            chunks.append(read_npz(self._part(start), "refined chunk", fix="re-run the same command")["images"])
        arrays = dict(self.data.arrays)
        arrays[self.data.key] = self.data.from_nchw(np.concatenate(chunks))
        atomic_write_bytes(self.target, npz_bytes(arrays))
        for part in self.parts.glob("*.npz"):
            part.unlink()
        self.parts.rmdir()


# --- the run -------------------------------------------------------------------------------------


def _open_job(args: argparse.Namespace) -> tuple[_Folder | _Npz, list[Any]]:
    """The input as a job and its batch keys (lists of folder positions, or npz chunk starts)."""
    source: Path = args.input
    if not source.exists():
        raise InputError(f"--input {source} does not exist")
    if args.output.resolve() == source.resolve():
        raise InputError("--output must differ from the input folder (outputs keep the input file names)")
    if source.is_dir() and source.resolve() in args.output.resolve().parents:
        raise InputError(f"--output {args.output} lies inside the input folder {source}; a re-run would read the refined images as inputs. Choose a folder outside it")
    check_writable(args.output, "--output", folder=True)
    remove_stale_temp_files(args.output)
    if source.is_file() and source.suffix.lower() == ".npz":
        data = read_npz_images(source, args.key, args.layout)
        count = data.nchw.shape[0]
        labels = None if args.labels is None else read_label_file(args.labels, count=count, key=args.labels_key)
        value_range = None if args.value_range is None else (args.value_range[0], args.value_range[1])
        return _Npz(source, args.output, data, labels, value_range, args.batch_size), list(range(0, count, args.batch_size))
    if not source.is_dir():
        raise InputError(f"--input must be a folder of images or an .npz file, got {source}")
    names = list_images(source)
    labels = None
    if args.labels is not None:
        labels = read_label_file(args.labels, names=[n.as_posix() for n in names], count=len(names), key=args.labels_key)
    positions = list(range(len(names)))
    return _Folder(source, args.output, names, labels, args.jpeg_quality), [positions[i : i + args.batch_size] for i in range(0, len(names), args.batch_size)]


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not 1 <= args.jpeg_quality <= 100:
        raise InputError(f"--jpeg-quality must lie in [1, 100], got {args.jpeg_quality}")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    job, keys = _open_job(args)
    refiner = get_registry().create("refiner", args.refiner, **_refiner_options(args, device))
    chain = Chain(None, refiners=[refiner], batch_size=args.batch_size)
    chain.setup(DEFAULTS.seed)
    _check_manifest(args.output, {
        "format": MANIFEST_FORMAT,
        "refiner": refiner.describe(),
        "classifier": args.classifier,
        "input": str(args.input.resolve()),
        "labels": None if args.labels is None else str(args.labels.resolve()),
    })
    if job.finished():
        print(f"{job.target} is already complete; nothing to do")
        return 0
    pending = [key for key in keys if not job.is_done(key)]
    if pending:
        # Standalone fitting (BIGRoC: the debias offsets) sees every input, done or not, so a resumed run fits the same.
        refiner.fit_standalone(job.read(key) for key in keys)
    total = job.count
    todo = sum(job.size(key) for key in pending)
    bar = tqdm(total=total, initial=total - todo, unit="image", desc=f"refine ({args.refiner})", disable=args.no_progress)
    for key in pending:
        batch = job.read(key)
        job.write(key, chain.refine(batch).images)
        bar.update(len(batch))
    bar.close()
    job.finish()
    print(f"refined {todo} of {total} images ({total - todo} written by an earlier run) -> {job.target}")
    return 0
