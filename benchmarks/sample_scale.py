"""``gan-postproc bench sample_scale``: writing 5k and 50k digits samples, throughput and peak memory.

Each size runs ``sample_to_disk`` in its own fresh process (so its peak RSS is
its own, read with ``os.wait4``), with the same chain, seed and shard size;
the two runs are measured in the same benchmark. Streaming means the peak
memory must not grow with N: the ratio of peak RSS (50k / 5k) should be
within 1.10.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from gan_postproc.bench.report import describe_run, format_table

NAME = "sample_scale"
HELP = "samples/s and peak RSS of `sample_to_disk` for 5k vs 50k shipped-digits samples (streaming: memory must not grow with N)"

_CHILD = """
import sys, torch
torch.set_num_threads({threads})
from gan_postproc import Chain
from gan_postproc.cli.specs import build_methods, load_adapter
from gan_postproc.runs.sample_run import sample_to_disk
sampler, refiners = build_methods({sampler!r}, [], {refiners!r}, [])
chain = Chain(load_adapter("digits"), sampler, refiners, batch_size=500)
sample_to_disk(chain, {n}, sys.argv[1], format={format!r}, shard_size=1000, progress=False)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--sampler", default=None, help="sampler name (default: prior)")
    parser.add_argument("--refiner", action="append", default=[], help="refiner name(s) in the chain")
    parser.add_argument("--format", choices=["npz", "png"], default="png")
    parser.add_argument("--threads", type=int, default=1)


def _run_child(code: str, out: str) -> tuple[float, float]:
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, out])
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the sampling process failed with exit code {os.waitstatus_to_exitcode(status)}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)  # what the children use; reported below
    chain = "+".join([args.sampler or "prior", *args.refiner])
    print(describe_run(f"wall time and peak RSS of writing N samples ({args.format}) with the chain {chain}, "
                       "each size in its own process", "the shipped unconditional digits GAN", max(args.sizes), [0]))
    rows = []
    for n in args.sizes:
        code = _CHILD.format(threads=args.threads, sampler=args.sampler, refiners=args.refiner, n=n, format=args.format)
        with tempfile.TemporaryDirectory() as out:
            seconds, peak_mib = _run_child(code, out)
        rows.append({"n": n, "seconds": seconds, "samples_per_second": n / seconds, "peak_rss_mib": peak_mib})
    ratio = rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]
    print(format_table(rows, ["n", "seconds", "samples_per_second", "peak_rss_mib"]))
    print(f"peak RSS ratio {rows[-1]['n']} / {rows[0]['n']}: {ratio:.3f} (streaming goal: <= 1.10)")
    return {"chain": chain, "format": args.format, "runs": rows, "peak_rss_ratio": ratio}
