"""``gan-postproc bench latent_rw_toy2d``: latent reweighting on the DOT 2-D models (paper Table 1).

Issenhuth et al. (WACV 2022), Table 1: EMD between generated and real points
for the WGAN-GP generators of DOT on 25 Gaussians and the Swiss roll, bare
and with latentRS (the paper: 0.044 -> 0.036 and 0.030 -> 0.025, i.e. -18%
and -17%; its EMD is computed on another sample size, so compare the
relative change, not the absolute values). This benchmark runs the rows the
latent-reweighting plugins contribute to the ``toy2d`` suite (the shipped
importance networks of ``benchmarks/train_importance.py``) beside the bare
generator, over several seeds, and times them side by side: exact EMD
(optimal assignment, :func:`gan_postproc.metrics.emd`) of ``--n`` generated
vs ``--n`` fresh real points per seed, wall time per sample with
``--threads`` threads, and the ratio to the bare generator's time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import torch

from gan_postproc import Chain
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup
from gan_postproc.defaults import DEFAULTS
from gan_postproc.metrics import emd
from gan_postproc.models.toy2d import TOY2D_DATASETS, sample_toy2d_real, toy2d_adapter
from gan_postproc.plugins.latent_ga import gan_postproc_benchmark_setups as ga_rows
from gan_postproc.plugins.latent_rs import gan_postproc_benchmark_setups as rs_rows
from gan_postproc.plugins.latent_rs_ga import gan_postproc_benchmark_setups as rs_ga_rows

NAME = "latent_rw_toy2d"
HELP = "latent reweighting on the DOT 2-D models: EMD over seeds and cost vs the bare generator (paper Table 1)"

#: Seed offset of the real points each seed is compared with (never the training or validation points).
REAL_SEED_OFFSET = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datasets", nargs="+", default=list(TOY2D_DATASETS), choices=TOY2D_DATASETS)
    parser.add_argument("--seeds", type=int, default=5, help="seeds per row (default %(default)s)")
    parser.add_argument("--n", type=int, default=1000, help="generated and real points per seed (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="chain batch size (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while timing (default %(default)s)")


def _rows(context: BenchmarkContext) -> list[BenchmarkSetup]:
    return [BenchmarkSetup(name="bare"), *rs_rows(context), *ga_rows(context), *rs_ga_rows(context)]


def _run_row(adapter: Any, row: BenchmarkSetup, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    chain = Chain(adapter, row.sampler, batch_size=args.batch_size)
    chain.sample(min(args.n, 100), seed=10**6)  # warm-up: setup and first-call costs are not timed
    emds, seconds, acceptance = [], [], []
    for seed in range(args.seeds):
        start = time.perf_counter()
        batch = chain.sample(args.n, seed=seed)
        seconds.append(time.perf_counter() - start)
        emds.append(emd(batch.images, sample_toy2d_real(dataset, args.n, seed=REAL_SEED_OFFSET + seed)))
        acceptance.append(chain.report.sampler.get("acceptance_rate", 1.0))
    return {
        "emd_mean": statistics.mean(emds),
        "emd_std": statistics.stdev(emds) if len(emds) > 1 else 0.0,
        "emd_per_seed": emds,
        "ms_per_sample": 1000.0 * statistics.mean(seconds) / args.n,
        "acceptance": statistics.mean(acceptance),
        "note": row.note,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    machine = {"device": "cpu", "threads": args.threads, "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(), "torch": torch.__version__}
    print(f"latent reweighting on the DOT 2-D WGAN-GP models: {args.seeds} seeds x {args.n} generated vs {args.n} real points, "
          f"exact EMD; CPU, {args.threads} thread(s), batch size {args.batch_size}")
    results: dict[str, Any] = {"machine": machine, "seeds": args.seeds, "n": args.n, "datasets": {}}
    try:
        for dataset in args.datasets:
            adapter = toy2d_adapter(dataset)
            context = BenchmarkContext(
                suite="toy2d", dataset=dataset, adapter=adapter, conditional_adapter=None,
                real_data=lambda n, seed, d=dataset: sample_toy2d_real(d, n, seed=seed),
            )
            rows = {row.name: _run_row(adapter, row, dataset, args) for row in _rows(context)}
            bare = rows["bare"]
            for row in rows.values():
                row["emd_change"] = row["emd_mean"] / bare["emd_mean"] - 1.0
                row["cost_ratio"] = row["ms_per_sample"] / bare["ms_per_sample"]
            results["datasets"][dataset] = rows
            print(f"\n{dataset}")
            print(f"  {'row':14s} {'EMD mean':>9s} {'std':>7s} {'vs bare':>8s} {'ms/sample':>10s} {'cost x':>7s} {'accept':>7s}")
            for name, row in rows.items():
                print(f"  {name:14s} {row['emd_mean']:9.4f} {row['emd_std']:7.4f} {100 * row['emd_change']:7.1f}% "
                      f"{row['ms_per_sample']:10.4f} {row['cost_ratio']:7.2f} {row['acceptance']:7.3f}")
    finally:
        torch.set_num_threads(previous_threads)
    return results
