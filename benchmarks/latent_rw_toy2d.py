"""``gan-postproc bench latent_rw_toy2d``: latent reweighting on the DOT 2-D models (paper Table 1).

Issenhuth et al. (WACV 2022), Table 1: EMD between generated and real points
for the WGAN-GP generators of DOT on 25 Gaussians and the Swiss roll, bare
and with latentRS (the paper: 0.044 -> 0.036 and 0.030 -> 0.025, i.e. -18%
and -17%; its EMD is computed on another sample size, so compare the
relative change, not the absolute values). This benchmark runs the rows the
latent-reweighting plugins contribute to the ``toy2d`` suite (the shipped
importance networks of ``benchmarks/train_importance.py``) beside the bare
generator with the suite runner and the ``toy2d`` suite's context and
measurement (rows interleaved seed by seed, timed in the same process):
exact EMD of ``--n`` generated vs ``--n`` fresh real points per seed,
milliseconds per sample, the cost ratio to the bare generator, and the
acceptance rate. (``gan-postproc bench toy2d`` runs the same rows beside
every other method.)
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from gan_postproc.bench.contexts import TOY2D_DATASETS, toy2d_context, toy2d_evaluator
from gan_postproc.bench.report import describe_run, format_table, machine_info
from gan_postproc.bench.suite import baseline_rows, run_side_by_side, summarise
from gan_postproc.plugins.latent_ga import gan_postproc_benchmark_setups as ga_rows
from gan_postproc.plugins.latent_rs import gan_postproc_benchmark_setups as rs_rows
from gan_postproc.plugins.latent_rs_ga import gan_postproc_benchmark_setups as rs_ga_rows

NAME = "latent_rw_toy2d"
HELP = "latent reweighting on the DOT 2-D models: EMD over seeds and cost vs the bare generator (paper Table 1)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datasets", nargs="+", default=list(TOY2D_DATASETS), choices=TOY2D_DATASETS)
    parser.add_argument("--seeds", type=int, default=5, help="seeds per row (default %(default)s)")
    parser.add_argument("--n", type=int, default=1000, help="generated and real points per seed (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=500, help="chain batch size (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while timing (default %(default)s)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    seeds = list(range(args.seeds))
    results: dict[str, Any] = {"machine": machine_info("cpu"), "seeds": seeds, "n": args.n, "datasets": {}}
    try:
        print(describe_run("latent reweighting rows vs the bare generator: exact EMD to fresh real points, cost per sample",
                           "the DOT 2-D WGAN-GP models (25gaussians, swissroll)", args.n, seeds, "cpu"))
        for dataset in args.datasets:
            context = toy2d_context(dataset)
            rows = [*baseline_rows(context), *rs_rows(context), *ga_rows(context), *rs_ga_rows(context)]
            outcomes = run_side_by_side(context, rows, n=args.n, seeds=seeds, evaluate=toy2d_evaluator(dataset, args.n), batch_size=args.batch_size, progress=False)
            summary = summarise(outcomes, ["emd"])
            base = summary["baseline"]["emd_mean"]
            table = []
            for name, entry in summary.items():
                entry["emd_change_percent"] = None if entry["emd_mean"] is None else 100.0 * (entry["emd_mean"] / base - 1.0)
                table.append({"row": name, **entry})
            results["datasets"][dataset] = summary
            print(f"\n{dataset}")
            print(format_table(table, ["row", "emd_mean", "emd_std", "emd_change_percent", "ms_per_sample", "cost_ratio", "acceptance_rate", "error"]))
    finally:
        torch.set_num_threads(previous_threads)
    return results
