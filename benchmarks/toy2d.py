"""``gan-postproc bench toy2d``: EMD on the DOT paper's pretrained 2-D WGAN-GP models.

For the bare generator and every sampler/refiner that applies (each plugin
contributes its rows through ``gan_postproc_benchmark_setups``), the exact EMD
between generated and real points (mean and std over seeds) and the sampling
cost per sample relative to the bare generator, measured side by side in the
same run. The latent-reweighting paper's Table 1 reports EMD for the same
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
from gan_postproc.bench.suite import baseline_rows, run_side_by_side, summarise
from gan_postproc.manager import get_plugin_manager

NAME = "toy2d"
HELP = "EMD and cost per sample on the DOT 2-D models (25gaussians, swissroll), every applicable method vs the bare generator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=1000, help="generated and real points per seed (default 1000)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--datasets", nargs="+", choices=TOY2D_DATASETS, default=list(TOY2D_DATASETS))
    parser.add_argument("--only", nargs="+", default=None, metavar="ROW", help="run only these rows (baseline always runs)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: small models time best single-threaded)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    seeds = list(range(args.seeds))
    print(describe_run("exact EMD (optimal assignment, Euclidean) between generated and real points; "
                       "ms per sample of sampling (setup excluded) relative to the bare generator",
                       "the DOT paper's pretrained 2-D WGAN-GP generators and critics", args.n, seeds))
    pm = get_plugin_manager()
    result: dict[str, Any] = {}
    for dataset in args.datasets:
        context = toy2d_context(dataset)
        rows = baseline_rows(context) + [r for r in collect_setups(context, pm) if args.only is None or r.name in args.only]
        outcomes = run_side_by_side(context, rows, n=args.n, seeds=seeds, evaluate=toy2d_evaluator(dataset, args.n),
                                    batch_size=args.n, plugin_manager=pm)
        summary = summarise(outcomes, ["emd"])
        table = [{"method": name, **entry} for name, entry in summary.items()]
        print(f"\n{dataset}")
        print(format_table(table, ["method", "emd_mean", "emd_std", "cost_ratio", "ms_per_sample", "setup_seconds", "acceptance_rate", "error"]))
        result[dataset] = {
            name: {"emd_mean": e["emd_mean"], "emd_std": e["emd_std"], "cost_ratio": e["cost_ratio"],
                   "ms_per_sample": e["ms_per_sample"], "setup_seconds": e["setup_seconds"], "seeds": e["seeds"],
                   "n": args.n, "error": e["error"], "note": e["note"]}
            for name, e in summary.items()
        }
    return result
