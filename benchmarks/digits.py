"""``gan-postproc bench digits``: the demo's measurements with more samples and seeds."""

from __future__ import annotations

import argparse
from typing import Any

import torch

from gan_postproc.bench.digits_suite import run_digits_suite

NAME = "digits"
HELP = "FID, precision, recall, balance KL and cost of every applicable method on the shipped digits GANs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=2000, help="samples per method and seed (default 2000)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--out", default=None, help="directory for results.json and grid.png")
    parser.add_argument("--only", nargs="+", default=None, metavar="ROW", help="run only these rows (baselines always run; 'none': the baselines alone)")
    parser.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    return run_digits_suite(quick=False, n=args.n, seeds=list(range(args.seeds)), out=args.out, only=args.only)
