"""``gan-postproc shape-discriminator``: fine-tune a copy of a discriminator for collaborative sampling (Algorithm 2)."""

from __future__ import annotations

import argparse
import json
import sys
from types import ModuleType

from gan_postproc import hookimpl
from gan_postproc.cli.specs import SHIPPED_MODELS, SHIPPED_REAL_DATA, load_adapter, load_real_data
from gan_postproc.files.writing import check_writable

from .defaults import DEFAULTS

NAME = "shape-discriminator"
HELP = (
    "shape a copy of the model's discriminator on real vs collaboratively refined samples (collaborative sampling, "
    "Algorithm 2) and save it as safetensors (checkpointed; re-run the same command to resume)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True,
        help=f"a shipped model ({', '.join(sorted(SHIPPED_MODELS))}) or package.module:function returning an Adapter with a discriminator",
    )
    parser.add_argument(
        "--real-data", required=True,
        help=f"shipped real data ({', '.join(sorted(SHIPPED_REAL_DATA))}) or package.module:function returning real samples "
        "in chain convention: a tensor [N, ...] or an iterable of tensors",
    )
    parser.add_argument("--out", required=True, help="where to write the shaped discriminator (.safetensors)")
    parser.add_argument("--layer", default=DEFAULTS.collaborative_layer, help="generator layer refined to make the negatives (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.collaborative_steps, help="refinement steps K (default: %(default)s)")
    parser.add_argument("--step-size", type=float, default=DEFAULTS.collaborative_step_size, help="refinement step size lambda (default: %(default)s)")
    parser.add_argument("--selection", choices=["threshold", "best"], default=DEFAULTS.collaborative_selection, help="which iterate a sample ends with (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=DEFAULTS.shaping_iterations, help="optimiser steps (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.shaping_batch_size, help="real and refined samples per step (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=DEFAULTS.shaping_lr, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--checkpoint-every", type=int, default=DEFAULTS.shaping_checkpoint_every, help="steps between checkpoints (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    check_writable(args.out, "--out")
    from .refiner import CollaborativeRefiner
    from .shaping import shape_discriminator

    refiner = CollaborativeRefiner(layer=args.layer, steps=args.steps, step_size=args.step_size, selection=args.selection)
    shape_discriminator(
        load_adapter(args.model),
        load_real_data(args.real_data, "--real-data"),
        refiner=refiner,
        iterations=args.iterations,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        out=args.out,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
    )
    print(json.dumps({"out": args.out, "iterations": args.iterations, **refiner.describe()}, indent=2))
    return 0


@hookimpl
def gan_postproc_register_commands() -> list[ModuleType]:
    """This module is the family's command (NAME, HELP, add_arguments, run)."""
    return [sys.modules[__name__]]
