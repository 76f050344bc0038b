"""The fault harness: start a CLI command in a subprocess, kill it part-way, and let the test run it again.

Every long-running command steps a tqdm progress bar (per shard, batch or
optimiser step), so the harness slows the command down by patching
``tqdm.update`` to sleep in the child process only: the command itself runs
unchanged, and a test can wait until some of its work is on disk before the
signal lands. The signal arrives wherever the child happens to be (computing,
writing a file, sleeping).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_postproc.files.loading import read_safetensors

ROOT = Path(__file__).resolve().parents[2]

#: Runs ``gan-postproc ARGV`` with every progress step delayed by SECONDS: ``python -c SLOWED SECONDS ARGV...``.
#: One torch thread, like the test process, so a run resumed in the test equals one made there.
SLOWED = """
import signal, sys, time
import torch
import tqdm.std
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal, even when started from a background job (SIGINT ignored)
torch.set_num_threads(1)  # as in the test process (conftest): float sums then match bit for bit
update = tqdm.std.tqdm.update
def slow_update(self, n=1):
    time.sleep(float(sys.argv[1]))
    return update(self, n)
tqdm.std.tqdm.update = slow_update
from gan_postproc.cli.app import main
sys.exit(main(sys.argv[2:]))
"""


@dataclass
class Stopped:
    """How the interrupted run ended."""

    returncode: int
    stderr: str


def interrupt_part_way(
    argv: Sequence[str],
    *,
    started: Callable[[], bool],
    finished: Callable[[], bool],
    slow: float = 0.1,
    signal_number: int = signal.SIGKILL,
    timeout: float = 240,
) -> Stopped:
    """Run ``gan-postproc argv`` in a subprocess and send it ``signal_number`` once ``started()`` is true.

    Args:
        started: true once some of the command's work is on disk (polled every 10 ms).
        finished: true once the whole output is there; it must still be false after the
            signal, or the command was not stopped part-way (the test then fails: raise ``slow``).
        slow: seconds added to every progress-bar step.

    Returns:
        The exit code (``-9`` for SIGKILL) and what the command printed to stderr.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", SLOWED, str(slow), *argv], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + timeout
    try:
        while not started():
            if process.poll() is not None:
                raise AssertionError(f"the command ended (exit {process.returncode}) before it was interrupted:\n{process.stderr.read()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the command made no progress within {timeout} s")
            time.sleep(0.01)
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not finished(), "the command finished before the signal: it was not stopped part-way (raise slow)"
    return Stopped(process.returncode, stderr)


def files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (hidden ones too), by relative path: what a run left on disk."""
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def safetensors_content(path: Path) -> tuple[dict[str, tuple[str, tuple[int, ...], bytes]], dict[str, str]]:
    """A safetensors file's tensors (as raw bytes, with dtype and shape) and metadata.

    Compare these rather than file bytes: safetensors writes metadata entries in
    hash-map order, which differs between processes.
    """
    tensors, metadata = read_safetensors(path)
    return {key: (str(t.dtype), tuple(t.shape), t.contiguous().view(-1).view(torch.uint8).numpy().tobytes()) for key, t in tensors.items()}, metadata
