"""``gan-postproc sample``: generate N samples of a chain to a directory (resumable, multi-process)."""

from __future__ import annotations

import argparse
import json

from ..defaults import DEFAULTS
from ..errors import InputError
from ..files.writing import check_writable
from ..pipeline.chain import Chain
from ..runs.sample_run import evaluate_run, process_state, sample_to_disk
from .specs import SHIPPED_MODELS, SHIPPED_REFERENCES, build_methods, load_adapter, load_evaluator

NAME = "sample"
HELP = "generate N samples with a sampler and refiners into a directory of PNGs or npz shards (resumable; runs under `accelerate launch`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help=f"a shipped model ({', '.join(SHIPPED_MODELS)}) or package.module:function returning a gan_postproc Adapter")
    parser.add_argument("--n", type=int, required=True, help="number of samples")
    parser.add_argument("--output", required=True, help="output directory (re-run the same command to resume)")
    parser.add_argument("--sampler", default=None, help="sampler name (default: plain prior sampling)")
    parser.add_argument("--sampler-option", action="append", default=[], metavar="KEY=VALUE", help="sampler option (repeatable)")
    parser.add_argument("--refiner", action="append", default=[], metavar="NAME", help="refiner name, applied in the order given (repeatable)")
    parser.add_argument("--refiner-option", action="append", default=[], metavar="NAME.KEY=VALUE", help="refiner option (repeatable)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--format", choices=["npz", "png"], default="npz")
    parser.add_argument("--shard-size", type=int, default=DEFAULTS.sample_shard_size, help="samples per shard (the unit of resuming)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--metrics", action="store_true", help="after writing, stream the samples through the --reference evaluator (FID, KID, precision, recall, density, coverage, balance KL)")
    parser.add_argument("--reference", default=None, help=f"how to measure: a shipped reference ({', '.join(SHIPPED_REFERENCES)}) or package.module:function returning a gan_postproc.metrics.SampleEvaluator")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    if args.metrics and args.reference is None:
        raise InputError("--metrics needs --reference (how to measure: a shipped reference or package.module:function)")
    check_writable(args.output, "--output", folder=True)
    evaluator = load_evaluator(args.reference) if args.metrics else None
    sampler, refiners = build_methods(args.sampler, args.sampler_option, args.refiner, args.refiner_option)
    chain = Chain(load_adapter(args.model), sampler, refiners, batch_size=args.batch_size)
    manifest = sample_to_disk(chain, args.n, args.output, seed=args.seed, format=args.format,
                              shard_size=args.shard_size, progress=not args.no_progress)
    if not process_state().is_main_process:
        return 0  # under `accelerate launch` the main process measures and reports; every process exits 0
    summary = {k: manifest[k] for k in ("n", "processes", "acceptance_rate")}
    if evaluator is not None:
        summary["metrics"] = evaluate_run(args.output, evaluator)
    print(json.dumps(summary, indent=2))
    return 0
