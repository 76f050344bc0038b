"""``gan-postproc demo``: every applicable method on the shipped digits models, in under two minutes on a CPU."""

from __future__ import annotations

import argparse
import time

import torch

from ..defaults import DEFAULTS
from ..validation import check_count
from .bench_command import available

NAME = "demo"
HELP = "run every registered method on the embedded digits models and print FID, precision, recall, balance and cost"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="also write DIR/results.json and DIR/grid.png (a labelled before/after grid)")
    parser.add_argument("--n", type=int, default=DEFAULTS.demo_samples, help=f"samples per method (default {DEFAULTS.demo_samples})")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--only", nargs="+", default=None, metavar="METHOD", help="run only these rows (baselines always run; 'none': the baselines alone)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: small models run fastest single-threaded)")


def run(args: argparse.Namespace) -> int:
    from ..bench.digits_suite import run_digits_suite

    torch.set_num_threads(check_count(args.threads, "--threads"))
    start = time.perf_counter()
    results = run_digits_suite(quick=True, n=args.n, seeds=[args.seed], out=args.out, only=args.only)
    if args.only is None:
        _benchmark_rows(args)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 1 if any(r["error"] for r in results.values()) else 0


def _benchmark_rows(args: argparse.Namespace) -> None:
    """The demo rows of benchmarks that add some (a module-level ``demo_rows(n, seed, out)``, e.g. DG on a diffusion model)."""
    for benchmark in available().values():
        add_rows = getattr(benchmark, "demo_rows", None)
        if callable(add_rows):
            add_rows(args.n, args.seed, args.out)
