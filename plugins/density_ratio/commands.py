"""``gan-postproc calibrate``: fine-tune a copy of a model's discriminator with BCE (resumable)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import ModuleType

from gan_postproc import hookimpl
from gan_postproc.cli.specs import load_adapter
from gan_postproc.files.writing import check_writable

from .calibration import calibrate_discriminator
from .defaults import DEFAULTS
from .real_samples import load_real_data

NAME = "calibrate"
HELP = (
    "fine-tune a copy of the model's discriminator with binary cross-entropy on real vs generated samples, "
    "so DRS / MH-GAN / SIR can use it; writes a resumable safetensors checkpoint"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="package.module:function returning an Adapter with a discriminator attached")
    parser.add_argument(
        "--real-data",
        required=True,
        help="package.module:function returning real samples in chain convention: a tensor [N, ...], "
        "or a function (n, seed) -> [n, ...]",
    )
    parser.add_argument("--output", required=True, help="checkpoint file (.safetensors); re-run the same command to resume")
    parser.add_argument("--mode", choices=["finetune", "head"], default=DEFAULTS.calibration_mode)
    parser.add_argument("--feature-layer", default=None, help="discriminator submodule whose output feeds the head (--mode head)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.calibration_steps)
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.calibration_batch_size)
    parser.add_argument("--lr", type=float, default=DEFAULTS.calibration_lr)
    parser.add_argument("--holdout", type=int, default=DEFAULTS.calibration_holdout)
    parser.add_argument("--eval-every", type=int, default=DEFAULTS.calibration_eval_every)
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    check_writable(args.output, "--output")
    adapter = load_adapter(args.model)
    calibrated = calibrate_discriminator(
        adapter,
        load_real_data(args.real_data),
        mode=args.mode,
        feature_layer=args.feature_layer,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        holdout=args.holdout,
        eval_every=args.eval_every,
        seed=args.seed,
        checkpoint=Path(args.output),
        progress=not args.no_progress,
    )
    history = calibrated.module.history
    best = dict(history)[calibrated.module.best_step]
    summary = {
        "checkpoint": str(args.output),
        "best_step": calibrated.module.best_step,
        "held_out_bce_start": history[0][1],
        "held_out_bce_best": best,
        "load_with": "gan_postproc.plugins.density_ratio.load_calibrated_discriminator(path, original_discriminator)",
    }
    print(json.dumps(summary, indent=2))
    return 0


@hookimpl
def gan_postproc_register_commands() -> list[ModuleType]:
    """This module is the family's command (NAME, HELP, add_arguments, run)."""
    return [sys.modules[__name__]]
