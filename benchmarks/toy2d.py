"""``gan-postproc bench toy2d``: EMD on the DOT paper's pretrained 2-D WGAN-GP models.

For the bare generator and every sampler/refiner that applies (each plugin
contributes its rows through ``gan_postproc_benchmark_setups``), the exact EMD
between generated and real points (mean and std over seeds) and the sampling
cost per sample relative to the bare generator, measured side by side in the
same run. Each method's cost is timed apart from the scored passes
(``--timing-n`` samples per pass in batches of ``--timing-batch-size``,
``--timing-repeats`` passes interleaved across methods in rotating order after
one untimed warm-up pass each, median reported; see
:class:`gan_postproc.bench.suite.TimingPlan`): one scored pass of 1000 2-D
points takes a few milliseconds, which per-call overhead and the noise of a
shared machine would otherwise dominate. The latent-reweighting paper's Table 1 reports EMD for the same
kind of models (25 Gaussians: WGAN 0.044, DRS 0.038, SIR 0.041, DOT 0.035,
latentRS 0.036); its numbers come from its own trained models, so compare
relative changes, not absolute values.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from gan_postproc.bench.contexts import TOY2D_DATASETS, toy2d_context, toy2d_evaluator
from gan_postproc.bench.report import describe_run, format_table
from gan_postproc.bench.setups import collect_setups
from gan_postproc.bench.suite import TimingPlan, baseline_rows, run_side_by_side, summarise
from gan_postproc.plugin_system.manager import get_plugin_manager

NAME = "toy2d"
#: Cost is timed on separate passes of this many points (one batch), repeated and interleaved.
TIMING_N = 10_000
TIMING_REPEATS = 9
HELP = "EMD and cost per sample on the DOT 2-D models (25gaussians, swissroll), every applicable method vs the bare generator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=1000, help="generated and real points per seed (default 1000)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--datasets", nargs="+", choices=TOY2D_DATASETS, default=list(TOY2D_DATASETS))
    parser.add_argument("--only", nargs="+", default=None, metavar="ROW", help="run only these rows (baseline always runs)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: small models time best single-threaded)")
    parser.add_argument("--timing-n", type=int, default=TIMING_N, help=f"samples per timed pass (default {TIMING_N})")
    parser.add_argument("--timing-batch-size", type=int, default=TIMING_N, help=f"chain batch size of the timed passes (default {TIMING_N})")
    parser.add_argument("--timing-repeats", type=int, default=TIMING_REPEATS,
                        help=f"timed passes per method, interleaved; the median is reported (default {TIMING_REPEATS})")


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    seeds = list(range(args.seeds))
    timing = TimingPlan(n=args.timing_n, repeats=args.timing_repeats, batch_size=args.timing_batch_size)
    print(describe_run("exact EMD (optimal assignment, Euclidean) between generated and real points; "
                       "ms per sample of sampling (setup excluded) relative to the bare generator",
                       "the DOT paper's pretrained 2-D WGAN-GP generators and critics", args.n, seeds))
    print(timing.describe(args.n))
    pm = get_plugin_manager()
    result: dict[str, Any] = {}
    for dataset in args.datasets:
        context = toy2d_context(dataset)
        rows = baseline_rows(context) + [r for r in collect_setups(context, pm) if args.only is None or r.name in args.only]
        outcomes = run_side_by_side(context, rows, n=args.n, seeds=seeds, evaluate=toy2d_evaluator(dataset, args.n),
                                    batch_size=args.n, plugin_manager=pm, timing=timing)
        summary = summarise(outcomes, ["emd"])
        table = [{"method": name, **entry} for name, entry in summary.items()]
        print(f"\n{dataset}")
        print(format_table(table, ["method", "emd_mean", "emd_std", "cost_ratio", "ms_per_sample", "setup_seconds", "acceptance_rate", "error"]))
        result[dataset] = {
            name: {"emd_mean": e["emd_mean"], "emd_std": e["emd_std"], "cost_ratio": e["cost_ratio"],
                   "ms_per_sample": e["ms_per_sample"], "setup_seconds": e["setup_seconds"],
                   "acceptance_rate": e.get("acceptance_rate"), "seeds": e["seeds"],
                   "n": args.n, "error": e["error"], "note": e["note"]}
            for name, e in summary.items()
        }
    return result
