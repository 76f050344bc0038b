"""``gan-postproc bench overhead``: what the library itself costs on top of the networks.

For each method row of the digits and toy2d suites that declares a ``floor``
(the network passes it cannot avoid: for a refiner, steps x forward+backward
of the networks on its gradient path; for a rejection sampler, proposals per
accepted sample x the proposal's network passes), the method's wall time per
sample is measured beside the floor's, timed alone on the same batch, in the
same run. Each time is the best of ``--repeats`` runs after a warm-up. The
ratio shows the library's own overhead; the goal is at most 1.15.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

from gan_postproc.bench.contexts import TOY2D_DATASETS, digits_context, toy2d_context
from gan_postproc.bench.report import describe_run, format_table
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup, collect_setups, generator_floor
from gan_postproc.pipeline.chain import Chain
from gan_postproc.plugin_system.manager import get_plugin_manager

NAME = "overhead"
HELP = "each method's wall time per sample against its floor (the network passes it cannot avoid), side by side"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=512, help="batch size timed (default 512)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best counts (default 3)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="+", default=None, metavar="ROW")


def _best_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _baseline_floor(context: BenchmarkContext, conditional: bool) -> BenchmarkSetup:
    adapter = context.conditional_adapter if conditional else context.adapter
    return BenchmarkSetup("baseline_conditional" if conditional else "baseline", conditional=conditional, floor=generator_floor(adapter))


def _measure(context: BenchmarkContext, row: BenchmarkSetup, n: int, repeats: int) -> dict[str, Any]:
    adapter = context.conditional_adapter if row.conditional else context.adapter
    chain = Chain(adapter, row.sampler, row.refiners, batch_size=n)
    chain.setup(context.seed)
    outputs = {}

    def method() -> None:
        outputs["batch"] = chain.sample(n, seed=1)
        outputs["report"] = chain.report

    method_s = _best_seconds(method, repeats)
    floor_s = _best_seconds(lambda: row.floor(outputs["batch"], outputs["report"]), repeats)
    return {"ms_per_sample": 1000 * method_s / n, "floor_ms_per_sample": 1000 * floor_s / n, "ratio": method_s / floor_s}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    print(describe_run("wall time per sample of each method vs its floor (unavoidable network passes timed alone on the "
                       f"same batch); best of {args.repeats} after a warm-up",
                       "the shipped digits GANs and the DOT 2-D models", args.n, [1]))
    pm = get_plugin_manager()
    result: dict[str, Any] = {}
    skipped: list[str] = []
    contexts = [digits_context()] + [toy2d_context(d) for d in TOY2D_DATASETS]
    for context in contexts:
        rows = [_baseline_floor(context, False)]
        if context.conditional_adapter is not None:
            rows.append(_baseline_floor(context, True))
        rows += collect_setups(context, pm)
        for row in rows:
            key = f"{row.name}@{context.dataset}"
            if args.only is not None and row.name not in args.only:
                continue
            if row.floor is None:
                skipped.append(key)
                continue
            try:
                result[key] = _measure(context, row, args.n, args.repeats)
            except Exception as error:  # report, do not hide
                result[key] = {"error": f"{type(error).__name__}: {error}"}
    print(format_table([{"method": k, **v} for k, v in result.items()], ["method", "ms_per_sample", "floor_ms_per_sample", "ratio", "error"]))
    if skipped:
        print(f"no floor declared (not measured): {', '.join(skipped)}")
    return result
