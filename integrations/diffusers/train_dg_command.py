"""``gan-postproc train-dg``: train DG's time-dependent discriminator for a diffusers pipeline.

A command of the diffusers integration (it reads a diffusers pipeline's schedule and denoiser), registered
through the hook ``gan_postproc_register_commands``; the training itself is the discriminator-guidance
family's :func:`~gan_postproc.plugins.discriminator_guidance.train_dg_discriminator`.

The pipeline gives the schedule (its scheduler's ``alphas_cumprod``) and the
input shape (its denoiser's ``in_channels`` / ``sample_size``): ``--pipeline
digits`` (the shipped digits diffusion model) or ``package.module:function``
returning a diffusers pipeline. The frozen feature extractor: ``--extractor
digits`` (the shipped digits classifier's body) or ``package.module:function``
returning an ``nn.Module``. Real samples: a folder of images, an ``.npz``,
``digits`` (the train split) or ``package.module:function``. Generated
samples: an ``.npz`` / folder (``--generated``), or ``--generate N`` draws
them from a pixel-space pipeline with ``--num-inference-steps``. For a latent
diffusion model give real and generated *latents* as ``.npz`` files (floats,
taken as they are). Training checkpoints to ``--checkpoint-dir`` (default
``OUT.checkpoint``) and resumes when re-run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from gan_postproc import hookimpl
from gan_postproc.cli.specs import call_factory
from gan_postproc.errors import InputError
from gan_postproc.files.writing import check_writable, remove_stale_temp_files
from gan_postproc.models.digits import digits_dataset
from gan_postproc.plugins.discriminator_guidance import DEFAULTS, TimeDependentDiscriminator, load_samples, train_dg_discriminator

from .guidance import check_discriminator, digits_dg_feature_extractor, load_digits_diffusion_pipeline, sample_pipeline

NAME = "train-dg"
HELP = "train DG's time-dependent discriminator d(x_t, t) on noised real and generated samples (Kim et al. 2023)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    parser.add_argument("--pipeline", required=True, help="'digits' or package.module:function returning a diffusers pipeline")
    parser.add_argument("--extractor", required=True, help="'digits' or package.module:function returning the frozen feature extractor (an nn.Module)")
    parser.add_argument("--real", required=True, help="real samples: an image folder, an .npz, 'digits' (train split) or package.module:function")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--generated", help="generated samples: an image folder or an .npz (latents for latent pipelines)")
    source.add_argument("--generate", type=int, metavar="N", help="draw N samples from the (pixel-space) pipeline first")
    parser.add_argument("--num-inference-steps", type=int, help="sampler steps for --generate (use the ones you will guide with)")
    parser.add_argument("--out", required=True, type=Path, help="where to write the discriminator (.safetensors)")
    parser.add_argument("--checkpoint-dir", type=Path, help="checkpoint folder (default: OUT.checkpoint); re-running resumes")
    parser.add_argument("--extractor-takes-time", action="store_true", help="call the extractor as extractor(x_t, t)")
    parser.add_argument("--width", type=int, default=d.head_width, help="head width (default %(default)s)")
    parser.add_argument("--depth", type=int, default=d.head_depth, help="head blocks (default %(default)s)")
    parser.add_argument("--time-embedding-dim", type=int, default=d.time_embedding_dim, help="time embedding size (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=d.train_epochs, help="epochs (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=d.train_batch_size, help="samples per step, half real (default %(default)s)")
    parser.add_argument("--lr", type=float, default=d.train_lr, help="Adam learning rate (default %(default)s)")
    parser.add_argument("--weight-decay", type=float, default=d.train_weight_decay, help="Adam weight decay (default %(default)s)")
    parser.add_argument("--time-sampling", choices=("likelihood", "uniform"), default="likelihood", help="how t is drawn (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the run (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the training summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _pipeline(spec: str) -> Any:
    if spec == "digits":
        return load_digits_diffusion_pipeline()
    return call_factory(spec, "--pipeline", "a diffusers pipeline")


def _extractor(spec: str) -> Any:
    if spec == "digits":
        return digits_dg_feature_extractor()
    return call_factory(spec, "--extractor", "an nn.Module")


def _real(spec: str) -> Any:
    if spec == "digits":
        return digits_dataset("train")[0]
    if ":" in spec and not Path(spec).exists():
        return call_factory(spec, "--real", "real samples (a tensor or an iterable of batches)")
    return Path(spec)


def run(args: argparse.Namespace) -> int:
    if args.generated is None and args.generate is None:
        raise InputError("give the generated samples: --generated FILE.npz|DIR, or --generate N --num-inference-steps K")
    if args.generate is not None and args.num_inference_steps is None:
        raise InputError("--generate needs --num-inference-steps (the sampler steps you will guide with)")
    checkpoint_dir = args.checkpoint_dir or args.out.with_name(args.out.name + ".checkpoint")
    check_writable(args.out, "--out")
    check_writable(checkpoint_dir, "--checkpoint-dir", folder=True)
    remove_stale_temp_files(args.out)
    pipeline = _pipeline(args.pipeline)
    extractor = _extractor(args.extractor)
    denoiser = getattr(pipeline, "unet", None) or getattr(pipeline, "transformer", None)
    config = getattr(denoiser, "config", None)
    size = getattr(config, "sample_size", None)
    if config is None or size is None:
        raise InputError(f"cannot read the input shape of {type(pipeline).__name__}'s denoiser (in_channels, sample_size)")
    size = (size, size) if isinstance(size, int) else tuple(size)
    scheduler = getattr(pipeline, "scheduler", None)
    steps = getattr(getattr(scheduler, "config", None), "num_train_timesteps", None)
    if steps is None:
        raise InputError(f"{type(pipeline).__name__}'s scheduler has no num_train_timesteps")
    discriminator = TimeDependentDiscriminator(
        extractor, input_shape=(config.in_channels, *size), num_timesteps=steps, width=args.width, depth=args.depth,
        time_embedding_dim=args.time_embedding_dim, extractor_takes_time=args.extractor_takes_time, seed=args.seed)
    check_discriminator(pipeline, discriminator)  # the pipeline can be guided with it: refused here, before any work
    real = load_samples(_real(args.real), "real", discriminator.input_shape)
    if args.generate is not None:
        generated = sample_pipeline(pipeline, args.generate, seed=args.seed, num_inference_steps=args.num_inference_steps)
    else:
        generated = load_samples(Path(args.generated), "generated", discriminator.input_shape)
    report = train_dg_discriminator(
        discriminator, real, generated, alphas_cumprod=scheduler.alphas_cumprod, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, weight_decay=args.weight_decay, time_sampling=args.time_sampling, checkpoint_dir=checkpoint_dir,
        seed=args.seed, progress=not args.quiet)
    summary = {"out": str(args.out), "checkpoint": str(report.checkpoint), "epochs": report.epochs, "real": len(real),
               "generated": len(generated), "last_epoch": report.history[-1] if report.history else None}
    discriminator.save(args.out, info={"trained_by": "gan-postproc train-dg", **summary})
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {args.out} ({report.epochs} epochs on {len(real)} real and {len(generated)} generated samples; "
              f"checkpoint {report.checkpoint}); last epoch: {summary['last_epoch']}")
    return 0


@hookimpl
def gan_postproc_register_commands() -> list[ModuleType]:
    """This module is the diffusers integration's ``train-dg`` command (NAME, HELP, add_arguments, run)."""
    return [sys.modules[__name__]]
