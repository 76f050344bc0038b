"""``gan-postproc train-importance``: train a latent importance network (latent reweighting, Algorithm 1).

The generator and the real data are a shipped model's names (``--model
toy2d-25gaussians --data toy2d-25gaussians``) or your own code, named as
``package.module:function`` (called with no arguments, as for ``gan-postproc
sample``): ``--model`` returns a :class:`~gan_postproc.Adapter` (its
discriminator is the starting critic), ``--data`` returns real samples in
chain convention (a tensor, or an iterable of batches). Held-out real samples
for model selection come from ``--validation`` or, for tensor data,
``--holdout N`` (N rows split off by the seed). Training checkpoints to
``--checkpoint-dir`` (default ``OUT.checkpoint``) and resumes when re-run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import ModuleType

import torch

from gan_postproc import hookimpl
from gan_postproc.cli.specs import SHIPPED_MODELS, SHIPPED_REAL_DATA, load_adapter, load_real_data
from gan_postproc.errors import InputError
from gan_postproc.files.writing import check_writable, remove_stale_temp_files
from gan_postproc.validation import check_count

from .defaults import DEFAULTS

NAME = "train-importance"
HELP = "train a latent importance network w(z) for latent_rs / latent_ga / latent_rs_ga (Issenhuth et al. 2022, Algorithm 1)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="MODEL", help=f"{', '.join(SHIPPED_MODELS)}, or package.module:function returning an Adapter (with its critic attached)")
    parser.add_argument("--data", required=True, metavar="DATA", help=f"{', '.join(SHIPPED_REAL_DATA)}, or package.module:function returning real samples (a tensor [N, ...] or an iterable of batches)")
    held = parser.add_mutually_exclusive_group()
    held.add_argument("--validation", metavar="DATA", help="held-out real samples [M, ...] for model selection (a name or package.module:function, as --data)")
    held.add_argument("--holdout", type=int, metavar="N", help="hold out N rows of the tensor --data for model selection")
    parser.add_argument("--out", required=True, type=Path, help="where to write the trained network (.safetensors)")
    parser.add_argument("--checkpoint-dir", type=Path, help="checkpoint folder (default: OUT.checkpoint); re-running resumes")
    parser.add_argument("--layer", help="network input: 'latent' or the adapter's mapping layer (default: the mapping layer if any)")
    parser.add_argument("--max-weight", type=float, default=DEFAULTS.importance_max_weight, help="m of Eq. 6; latent_rs accepts with w/m (default %(default)s)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.importance_steps, help="updates of w (default %(default)s)")
    parser.add_argument("--critic-steps", type=int, default=DEFAULTS.importance_critic_steps, help="critic updates per update of w (default %(default)s)")
    parser.add_argument("--critic-warmup", type=int, default=DEFAULTS.importance_critic_warmup, help="critic updates before the first update of w (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.importance_batch_size, help="samples per update (default %(default)s)")
    parser.add_argument("--lr", type=float, default=DEFAULTS.importance_lr, help="Adam learning rate of w (default %(default)s)")
    parser.add_argument("--critic-lr", type=float, default=DEFAULTS.importance_critic_lr, help="Adam learning rate of the critic (default %(default)s)")
    parser.add_argument("--lambda-norm", type=float, default=DEFAULTS.importance_lambda_norm, help="lambda1 of Eq. 6 (default %(default)s)")
    parser.add_argument("--lambda-clip", type=float, default=DEFAULTS.importance_lambda_clip, help="lambda2 of Eq. 6 (default %(default)s)")
    parser.add_argument("--eval-every", type=int, default=DEFAULTS.importance_eval_every, help="updates between held-out evaluations (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of the run (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the training summary as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def split_holdout(data: object, holdout: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``holdout`` rows off a tensor, chosen by ``seed``: ``(training rows, held-out rows)``."""
    if not isinstance(data, torch.Tensor):
        raise InputError(f"--holdout needs --data to return a tensor, got {type(data).__name__}; pass --validation instead")
    holdout = check_count(holdout, "--holdout")
    if holdout >= data.shape[0]:
        raise InputError(f"--holdout {holdout} leaves no training data out of {data.shape[0]} rows; hold out fewer")
    order = torch.randperm(data.shape[0], generator=torch.Generator().manual_seed(seed))
    return data[order[holdout:]], data[order[:holdout]]


def run(args: argparse.Namespace) -> int:
    from gan_postproc.plugins.latent_reweighting.latent_rs import train_importance_network

    checkpoint_dir = args.checkpoint_dir or args.out.with_name(args.out.name + ".checkpoint")
    check_writable(args.out, "--out")
    check_writable(checkpoint_dir, "--checkpoint-dir", folder=True)
    remove_stale_temp_files(args.out)
    remove_stale_temp_files(checkpoint_dir)
    adapter = load_adapter(args.model)
    data = load_real_data(args.data)
    validation = None
    if args.validation:
        validation = load_real_data(args.validation)
    elif args.holdout:
        data, validation = split_holdout(data, args.holdout, args.seed)
    result = train_importance_network(
        adapter,
        data,
        validation_data=validation,
        layer=args.layer,
        max_weight=args.max_weight,
        steps=args.steps,
        critic_steps=args.critic_steps,
        critic_warmup=args.critic_warmup,
        batch_size=args.batch_size,
        lr=args.lr,
        critic_lr=args.critic_lr,
        lambda_norm=args.lambda_norm,
        lambda_clip=args.lambda_clip,
        eval_every=args.eval_every,
        checkpoint_dir=checkpoint_dir,
        seed=args.seed,
        progress=not args.quiet,
    )
    summary = {
        "out": str(args.out),
        "checkpoint": str(result.checkpoint),
        "steps": result.steps,
        "best_step": result.best_step,
        "heldout_sliced_w1_unweighted": result.baseline_score,
        "heldout_sliced_w1_selected": result.best_score,
        "network": result.network.describe(),
    }
    result.network.save(args.out, info={"trained_by": "gan-postproc train-importance", **summary})
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {args.out} (step {result.best_step} of {result.steps}; checkpoint {result.checkpoint})")
        if result.baseline_score is not None:
            print(f"held-out sliced W1: unweighted generator {result.baseline_score:.4f}, selected network {result.best_score:.4f}")
        else:
            print("no held-out data given: the last iterate was kept (pass --validation or --holdout to select on held-out data)")
    return 0


@hookimpl
def gan_postproc_register_commands() -> list[ModuleType]:
    """This module is the family's command (NAME, HELP, add_arguments, run)."""
    return [sys.modules[__name__]]
