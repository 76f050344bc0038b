"""Streaming N samples to disk: exact counts, atomic files, resume, multi-process identity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_postproc import Chain, TorchAdapter
from gan_postproc.errors import CheckpointError, InputError
from gan_postproc.runs.sample_run import iter_shards, read_manifest, run_device, sample_to_disk

from ..helpers.faults import files, interrupt_part_way
from ..helpers.sample_models import image_chain

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("format", ["npz", "png"])
def test_exactly_n_samples_in_index_order(tmp_path, format):
    manifest = sample_to_disk(image_chain(), 130, tmp_path, format=format, shard_size=50, progress=False)
    assert manifest["complete"] and manifest["n"] == 130 and len(manifest["shards"]) == 3
    shards = list(iter_shards(tmp_path))
    indices = np.concatenate([s["indices"] for s in shards])
    assert indices.tolist() == list(range(130))
    images = np.concatenate([s["images"] for s in shards])
    assert images.shape == ((130, 1, 8, 8) if format == "npz" else (130, 8, 8))
    if format == "png":
        assert len(list((tmp_path / "images").iterdir())) == 130
    assert not list(tmp_path.rglob("*.tmp"))


def test_npz_samples_equal_the_chain_in_memory(tmp_path):
    sample_to_disk(image_chain(), 64, tmp_path, shard_size=32, progress=False)
    on_disk = np.concatenate([s["images"] for s in iter_shards(tmp_path)])
    chain = image_chain()
    chain.adapter.to(run_device())  # compare on one device: the run uses the GPU where there is one
    in_memory = chain.sample(64).images.cpu().numpy()
    assert np.array_equal(on_disk, in_memory)


def test_resume_redoes_only_missing_shards_and_gives_identical_files(tmp_path):
    full, partial = tmp_path / "full", tmp_path / "partial"
    sample_to_disk(image_chain(), 100, full, format="png", shard_size=25, progress=False)
    sample_to_disk(image_chain(), 100, partial, format="png", shard_size=25, progress=False)
    (partial / "shards" / "shard-000002.npz").unlink()
    (partial / "images" / "000000099.png").unlink()
    kept = (partial / "shards" / "shard-000000.npz").stat().st_mtime_ns
    sample_to_disk(image_chain(), 100, partial, format="png", shard_size=25, progress=False)
    assert (partial / "shards" / "shard-000000.npz").stat().st_mtime_ns == kept
    assert files(full) == files(partial)


def test_a_different_configuration_refuses_to_resume(tmp_path):
    sample_to_disk(image_chain(), 20, tmp_path, shard_size=10, progress=False)
    with pytest.raises(CheckpointError, match="another configuration"):
        sample_to_disk(image_chain(), 20, tmp_path, shard_size=10, seed=1, progress=False)
    with pytest.raises(CheckpointError, match="another configuration"):
        sample_to_disk(image_chain(), 30, tmp_path, shard_size=10, progress=False)


def test_bad_arguments(tmp_path):
    points = Chain(TorchAdapter(torch.nn.Linear(2, 2), latent_shape=2, output_range=None))
    with pytest.raises(InputError, match="format='png' needs images"):
        sample_to_disk(points, 10, tmp_path, format="png")
    with pytest.raises(InputError, match="n must be"):
        sample_to_disk(image_chain(), 0, tmp_path)
    with pytest.raises(InputError, match="format must be"):
        sample_to_disk(image_chain(), 3, tmp_path, format="jpg")
    (tmp_path / "a_file").write_text("not a directory")
    with pytest.raises(InputError, match="not writable"):
        sample_to_disk(image_chain(), 3, tmp_path / "a_file" / "out")


def _sample_args(out: Path) -> list[str]:
    return ["sample", "--model", "tests.helpers.sample_models:image_adapter", "--n", "300", "--output", str(out), "--format", "png",
            "--shard-size", "20", "--batch-size", "10", "--no-progress"]


#: Seconds added to each progress step of the interrupted runs: long enough that a loaded machine, which may
#: not schedule the polling test process for a second, still signals the run before it ends.
SLOW = 0.2


def test_a_run_interrupted_then_killed_resumes_to_identical_output(tmp_path):
    from gan_postproc.cli import main

    reference, out = tmp_path / "reference", tmp_path / "killed"
    assert main(_sample_args(reference)) == 0

    def shards_done() -> int:
        return len(list((out / "shards").glob("*.npz"))) if (out / "shards").exists() else 0

    def complete() -> bool:
        return bool((read_manifest(out) or {}).get("complete"))

    stopped = interrupt_part_way(_sample_args(out), started=lambda: shards_done() >= 2, finished=complete, signal_number=signal.SIGINT, slow=SLOW)
    assert stopped.returncode == 130 and "Traceback" not in stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1] == "gan-postproc sample: interrupted; re-run the same command to resume where it stopped"
    first = shards_done()
    interrupt_part_way(_sample_args(out), started=lambda: shards_done() >= first + 2, finished=complete, slow=SLOW)
    assert main(_sample_args(out)) == 0
    assert files(reference) == files(out)  # nothing lost, nothing twice, no temp files left, same bytes
    assert len(list((out / "images").glob("*.png"))) == 300


def _cli_sample(out: Path, launcher: list[str]) -> subprocess.CompletedProcess:
    command = [*launcher, "-m", "gan_postproc.cli.app_main", "sample", "--model", "tests.helpers.sample_models:image_adapter",
               "--n", "150", "--output", str(out), "--shard-size", "40", "--batch-size", "16", "--no-progress"]
    # Identical bytes need the same thread count in every run (BLAS splits its work by thread count).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_two_processes_write_byte_identical_output_to_one(tmp_path):
    """The README's launch line through the CLI: `accelerate launch --multi_gpu --num_processes 2` starts two fresh
    processes (spawned, never forked after CUDA was initialised), every rank exits 0, and the files equal one process's."""
    single = _cli_sample(tmp_path / "single", [sys.executable])
    assert single.returncode == 0, single.stderr
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--num_cpu_threads_per_process", "1"]
    double = _cli_sample(tmp_path / "double", launch)
    assert double.returncode == 0, double.stderr  # accelerate launch fails if any rank does
    assert json.loads(double.stdout)["processes"] == 2  # only the main process prints the summary
    single_files, double_files = files(tmp_path / "single"), files(tmp_path / "double")
    manifest = json.loads(double_files.pop("manifest.json"))
    assert manifest["processes"] == 2
    single_files.pop("manifest.json")
    assert single_files == double_files


def test_several_launched_processes_that_each_see_themselves_alone_are_refused(monkeypatch):
    """A launcher that started K processes which did not join (each would write every shard) is refused before any work."""
    import accelerate

    class Alone:
        num_processes, is_main_process = 1, True

        class distributed_type:
            value = "NO"

        def __init__(self, cpu: bool = False) -> None:
            pass

    monkeypatch.setattr(accelerate, "PartialState", Alone)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InputError, match="started 2 processes .* but accelerate sees 1"):
        sample_to_disk(image_chain(), 10, "unused-output", progress=False)


def test_cli_sample_writes_a_resumable_run(tmp_path):
    command = [sys.executable, "-m", "gan_postproc.cli.app_main", "sample", "--model", "tests.helpers.sample_models:image_adapter",
               "--n", "45", "--output", str(tmp_path / "cli"), "--shard-size", "20", "--no-progress"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 45
    assert read_manifest(tmp_path / "cli")["complete"]
    bad = subprocess.run(command[:5] + ["nope:factory"] + command[6:], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "cannot import 'nope'" in bad.stderr


def test_metrics_stream_over_the_written_run(tmp_path):
    from gan_postproc.runs.sample_run import evaluate_run

    class CountingEvaluator:
        """Stands in for SampleEvaluator: records what it is fed, shard by shard."""

        def __init__(self):
            self.sizes, self.ranges = [], []

        def update(self, images, labels=None):
            self.sizes.append(len(images))
            self.ranges.append((float(images.min()), float(images.max())))

        def compute(self):
            return {"n": sum(self.sizes)}

    sample_to_disk(image_chain(), 70, tmp_path, format="png", shard_size=30, progress=False)
    counting = CountingEvaluator()
    assert evaluate_run(tmp_path, counting) == {"n": 70}
    assert counting.sizes == [30, 30, 10]
    assert all(-1 <= lo and hi <= 1 for lo, hi in counting.ranges)
    assert read_manifest(tmp_path)["metrics"] == {"n": 70}


def test_cli_metrics_need_a_reference(tmp_path, capsys):
    from gan_postproc.cli import main

    code = main(["sample", "--model", "tests.helpers.sample_models:image_adapter", "--n", "5", "--output", str(tmp_path), "--metrics"])
    assert code == 2 and "--metrics needs --reference" in capsys.readouterr().err
