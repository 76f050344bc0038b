"""Write N samples of a chain to disk: streaming, atomic, resumable, split across processes.

Layout of an output directory::

    manifest.json              configuration, then (when complete) shard list and totals
    shards/shard-000000.npz    per shard: indices, labels, latents, scores/*, provenance/*,
                               and images (npz format)
    images/000000000.png       one PNG per sample (png format), named by global index

The work unit is a shard: the samples with global indices
``[k * shard_size, (k + 1) * shard_size)``. Shards are split between processes
whole (accelerate's ``PartialState``), and each shard runs in the same
batches whatever the number of processes, so the output is byte-identical for
1 or K processes. A shard file is written atomically after its images, so a
run stopped at any point (Ctrl-C, SIGKILL, out of memory) resumes with the same
command: finished shards are kept, the rest are redone. Peak memory is one
shard, independent of N. The manifest records the configuration, and a run
with another configuration refuses to resume in the same directory.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..defaults import DEFAULTS
from ..errors import CheckpointError, InputError
from ..files.images import read_image
from ..files.loading import read_json, read_npz
from ..files.writing import atomic_write_bytes, atomic_write_json, check_writable, npz_bytes, remove_stale_temp_files
from ..pipeline.batch import SampleBatch
from ..pipeline.chain import Chain
from ..pipeline.ranges import CHAIN_RANGE, rescale
from ..validation import check_count

if TYPE_CHECKING:
    from accelerate import PartialState

__all__ = ["SampleRunConfig", "sample_to_disk", "iter_shards", "read_manifest", "evaluate_run", "process_state", "run_device"]

Format = Literal["npz", "png"]
MANIFEST = "manifest.json"
_NOT_A_RUN = "remove the directory or choose another --output"
_DAMAGED_RUN = "delete it and re-run the same `sample` command, which redoes only the missing shards"


@dataclass(frozen=True)
class SampleRunConfig:
    """What determines a run's output; a directory only resumes a run with equal configuration."""

    n: int
    seed: int
    shard_size: int
    batch_size: int
    format: Format
    chain: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "seed": self.seed,
            "shard_size": self.shard_size,
            "batch_size": self.batch_size,
            "format": self.format,
            "chain": self.chain,
        }


def _shard_path(out: Path, shard: int) -> Path:
    return out / "shards" / f"shard-{shard:06d}.npz"


def _png_path(out: Path, index: int) -> Path:
    return out / "images" / f"{index:09d}.png"


def _shard_indices(config: SampleRunConfig, shard: int) -> torch.Tensor:
    start = shard * config.shard_size
    return torch.arange(start, min(start + config.shard_size, config.n))


def _to_png_bytes(image: torch.Tensor) -> bytes:
    array = rescale(image.clamp(*CHAIN_RANGE), CHAIN_RANGE, (0.0, 255.0)).round().to(torch.uint8)
    array = array[0] if array.shape[0] == 1 else array.permute(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(array.numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def _shard_arrays(batch: SampleBatch, include_images: bool) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {"indices": batch.indices.cpu().numpy()}
    if include_images:
        arrays["images"] = batch.images.cpu().numpy()
    if batch.labels is not None:
        arrays["labels"] = batch.labels.cpu().numpy()
    if batch.latents is not None:
        arrays["latents"] = batch.latents.cpu().numpy()
    for group in ("scores", "provenance"):
        for key, value in getattr(batch, group).items():
            arrays[f"{group}/{key}"] = value.detach().cpu().numpy()
    return arrays


def _shard_is_complete(out: Path, config: SampleRunConfig, shard: int) -> bool:
    """A shard is done when its file loads and holds exactly its indices (and its PNGs exist)."""
    path = _shard_path(out, shard)
    if not path.exists():
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            indices = data["indices"]
    except Exception:  # a file cut short by a crash before the rename cannot exist; anything else is redone
        return False
    if not np.array_equal(indices, _shard_indices(config, shard).numpy()):
        return False
    return config.format != "png" or all(_png_path(out, int(i)).exists() for i in indices)


def _run_shard(chain: Chain, out: Path, config: SampleRunConfig, shard: int) -> int:
    indices = _shard_indices(config, shard)
    batch = SampleBatch.cat(chain.iter_indices(indices, seed=config.seed))
    if config.format == "png":
        # Each image is renamed into place whole; the shard file (fsynced) is written only after all of them.
        for index, image in zip(batch.indices.tolist(), batch.images.cpu()):
            atomic_write_bytes(_png_path(out, index), _to_png_bytes(image), durable=False)
    arrays = _shard_arrays(batch, include_images=config.format == "npz")
    atomic_write_bytes(_shard_path(out, shard), npz_bytes(arrays))
    return len(batch)


def read_manifest(out: str | Path) -> dict[str, Any] | None:
    """The manifest of an output directory, or ``None`` if there is none."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return None
    manifest = read_json(path, "run manifest", fix=_NOT_A_RUN)
    if not isinstance(manifest, dict):
        raise CheckpointError(f"run manifest {path} holds a {type(manifest).__name__}, not a gan-postproc manifest; {_NOT_A_RUN}")
    return manifest


def _check_resume(out: Path, config: SampleRunConfig) -> None:
    manifest = read_manifest(out)
    if manifest is None:
        if (out / "shards").exists() and any((out / "shards").iterdir()):
            raise CheckpointError(f"{out} holds shards but no manifest; it is not a gan-postproc run directory to resume")
        return
    if manifest.get("config") != json.loads(json.dumps(config.as_dict())):
        raise CheckpointError(
            f"{out} holds a run with another configuration; refusing to mix outputs. "
            f"Existing: {json.dumps(manifest.get('config'), sort_keys=True)[:400]} ... "
            "Use a new --output directory, or delete this one to start over"
        )


def sample_to_disk(
    chain: Chain,
    n: int,
    out: str | Path,
    *,
    seed: int = DEFAULTS.seed,
    format: Format = "npz",
    shard_size: int = DEFAULTS.sample_shard_size,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate ``n`` samples with ``chain`` into directory ``out`` (see the module docs).

    Under ``accelerate launch --num_processes K`` the shards are split between the
    K processes, each on its own device; the output is identical to one process.

    Returns:
        The final manifest (configuration, shards, totals, sampler statistics).
    """
    n = check_count(n, "n")
    shard_size = check_count(shard_size, "shard_size")
    if format not in ("npz", "png"):
        raise InputError(f"format must be 'npz' or 'png', got {format!r}")
    if chain.adapter is None:
        raise InputError("sample_to_disk needs a chain with an adapter (a generator)")
    if format == "png" and chain.adapter.value_range is None:
        raise InputError("format='png' needs images; this generator's samples are unbounded vectors: use format='npz'")
    out = Path(out)
    config = SampleRunConfig(n=n, seed=seed, shard_size=shard_size, batch_size=chain.batch_size, format=format, chain=chain.describe())
    state = process_state()
    if state.is_main_process:
        _check_resume(out, config)
        check_writable(out, "output directory", folder=True)
        remove_stale_temp_files(out)
        if read_manifest(out) is None:
            atomic_write_json(out / MANIFEST, {"config": config.as_dict(), "complete": False})
    state.wait_for_everyone()
    if state.device.type != "cpu" or state.num_processes > 1:
        chain.adapter.to(state.device)
    shards = list(range((n + shard_size - 1) // shard_size))
    pending = [s for s in shards if not _shard_is_complete(out, config, s)]
    with state.split_between_processes(pending) as mine:
        bar = tqdm(total=sum(len(_shard_indices(config, s)) for s in mine), desc=f"sample[{state.process_index}]",
                   unit="sample", disable=not progress or not state.is_local_main_process)
        for shard in mine:
            bar.update(_run_shard(chain, out, config, shard))
        bar.close()
    state.wait_for_everyone()
    manifest = {
        "config": config.as_dict(),
        "complete": True,
        "shards": [_shard_path(out, s).relative_to(out).as_posix() for s in shards],
        "n": n,
        "processes": state.num_processes,
    }
    if state.is_main_process:
        missing = [s for s in shards if not _shard_is_complete(out, config, s)]
        if missing:
            raise CheckpointError(f"shards {missing[:5]} are missing after the run; re-run the same command to finish them")
        manifest["acceptance_rate"] = _acceptance_rate(out, shards)
        atomic_write_json(out / MANIFEST, manifest)
    state.wait_for_everyone()
    return manifest if state.is_main_process else (read_manifest(out) or manifest)  # every process returns the full manifest


def _launched_processes() -> int:
    """How many processes the launcher started (torchrun / ``accelerate launch`` set ``WORLD_SIZE``; 1 if none)."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return max(1, int(value))
    except ValueError:
        raise InputError(f"the environment variable WORLD_SIZE must be a number of processes, got {value!r}") from None


def process_state() -> PartialState:
    """accelerate's view of this process (which of how many, on which device), refusing a broken launch.

    With no usable CUDA device the processes join on the CPU (gloo), as with
    ``ACCELERATE_USE_CPU=1``: so ``accelerate launch --multi_gpu --num_processes K``
    starts K cooperating processes on a GPU machine and on a CPU-only one alike.

    Raises:
        InputError: when the launcher started several processes (``WORLD_SIZE`` > 1)
            but each sees itself alone: they would all write every shard.
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    state = PartialState(cpu=cpu)
    launched = _launched_processes()
    if launched != state.num_processes:
        raise InputError(
            f"the launcher started {launched} processes (WORLD_SIZE={launched}) but accelerate sees {state.num_processes} "
            f"(distributed type {state.distributed_type.value}), so each would write every shard. Launch with "
            "`accelerate launch --multi_gpu --num_processes K ...` (it starts K processes that find each other on GPUs, "
            "and on the CPU when no GPU is usable or ACCELERATE_USE_CPU=1 is set)"
        )
    return state


def run_device() -> torch.device:
    """The device :func:`sample_to_disk` runs this process's chain on: its GPU, else the CPU."""
    return process_state().device


def _acceptance_rate(out: Path, shards: list[int]) -> float | None:
    """Samples / proposals over the whole run, from the per-sample ``proposals`` records of
    rejection samplers (``None`` for samplers that do not reject)."""
    samples = proposals = 0
    for shard in shards:
        data = read_npz(_shard_path(out, shard), "sample shard", fix=_DAMAGED_RUN)
        if "provenance/proposals" not in data:
            return None
        samples += len(data["indices"])
        proposals += int(data["provenance/proposals"].sum())
    return samples / proposals if proposals else None


def iter_shards(out: str | Path) -> Iterator[dict[str, np.ndarray]]:
    """Yield the arrays of each shard of a complete run, in index order (images from PNGs for png runs)."""
    out = Path(out)
    manifest = read_manifest(out)
    if manifest is None or not manifest.get("complete"):
        raise CheckpointError(f"{out} holds no complete run; finish it by re-running the same command")
    for relative in manifest["shards"]:
        arrays = read_npz(out / relative, "sample shard", fix=_DAMAGED_RUN)
        if manifest["config"]["format"] == "png":
            images = []
            for index in arrays["indices"]:
                image = read_image(_png_path(out, int(index)), fix=_DAMAGED_RUN)
                if images and image.shape != images[0].shape:
                    raise CheckpointError(f"{_png_path(out, int(index))} is {image.shape} (channels, height, width), unlike the run's "
                                          f"other images {images[0].shape}; it was changed after the run: {_DAMAGED_RUN}")
                images.append(image)
            arrays["images"] = np.stack([image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0) for image in images])
        yield arrays


def evaluate_run(out: str | Path, evaluator: Any) -> dict[str, Any]:
    """Stream a complete run's samples through ``evaluator`` (a
    :class:`~gan_postproc.metrics.SampleEvaluator`) shard by shard; memory stays one shard.

    PNG runs are read back from the files (uint8 mapped to [-1, 1]), npz runs
    from the stored float32 images. The result is also written into the manifest.
    """
    out = Path(out)
    for arrays in iter_shards(out):
        images = torch.from_numpy(arrays["images"])
        if images.dtype == torch.uint8:
            images = rescale(images.float(), (0.0, 255.0), CHAIN_RANGE)
            images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
        labels = torch.from_numpy(arrays["labels"]) if "labels" in arrays else None
        evaluator.update(images, labels)
    metrics = dict(evaluator.compute())
    manifest = read_manifest(out)
    atomic_write_json(out / MANIFEST, {**manifest, "metrics": metrics})
    return metrics
