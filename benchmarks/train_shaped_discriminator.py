"""Shape the shipped digits discriminator for collaborative sampling and ship the result.

Discriminator shaping (Liu et al., "Collaborative Sampling in Generative Adversarial
Networks", Algorithm 2, Eq. 6) fine-tunes a copy of the unconditional digits GAN's
discriminator on real training images vs samples refined by collaborative sampling at the
generator's middle layer ``block1`` (Algorithm 1: K = 20 steps of size 0.1, each sample stopped
once D reaches the mean D on real data). Adam, lr 1e-5 (the reference code's MNIST setting),
batch 64, 200 steps, fixed seed, CPU, one thread: about 3 minutes.

Writes ``shaped_discriminator.safetensors`` next to the other digits models (``--out``,
default ``src/gan_postproc/assets/digits/``), adds its entry to ``manifest.json`` there (how
it was made, the SHA-256 of the discriminator it was shaped from, its own SHA-256), and
measures FID (the independent feature network, the test split) of the bare generator and of
collaborative sampling guided by the original and by the shaped discriminator.

The shaped discriminator belongs to ``discriminator.safetensors``: re-run this script after
``train_digits.py`` (which rewrites the manifest).

Usage::

    python benchmarks/train_shaped_discriminator.py
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

import gan_postproc
from gan_postproc import Chain
from gan_postproc.bench.contexts import digits_evaluator
from gan_postproc.files.writing import atomic_write_bytes
from gan_postproc.models import assets as assets_module
from gan_postproc.models.digits import digits_adapter, digits_dataset
from gan_postproc.plugins.collaborative import (
    SHAPED_DIGITS_FILE,
    SHAPED_DIGITS_SETTINGS,
    CollaborativeRefiner,
    shape_discriminator,
)

#: The folder the package loads the digits models from.
PACKAGE_DIGITS = Path(gan_postproc.__file__).resolve().parent / "assets" / "digits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PACKAGE_DIGITS, help="the digits asset folder (default: the package's)")
    parser.add_argument("--iterations", type=int, default=200, help="shaping steps (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64, help="real and refined samples per step (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-5, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the shaping latents and the real-data order (default: %(default)s)")
    parser.add_argument("--fid-samples", type=int, default=2000, help="samples per FID (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    adapter = digits_adapter(conditional=False, classifier=None)
    train, _ = digits_dataset("train")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))
    refiner = CollaborativeRefiner(**SHAPED_DIGITS_SETTINGS)
    path = args.out / SHAPED_DIGITS_FILE
    started = time.perf_counter()
    shaped = shape_discriminator(
        adapter, train[order], refiner=refiner, iterations=args.iterations, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, out=path, progress=True,
    )
    seconds = time.perf_counter() - started

    evaluate = digits_evaluator()
    measured: dict[str, Any] = {"fid_samples": args.fid_samples, "seed": 0, "reference": "digits test split, independent feature net"}
    bare = Chain(adapter).sample(args.fid_samples, seed=0)
    measured["fid_bare"] = evaluate(bare, 0)["fid"]
    for name, guide in (("original", None), ("shaped", shaped)):
        chain = Chain(adapter, refiners=[CollaborativeRefiner(discriminator=guide, real_data=train, **SHAPED_DIGITS_SETTINGS)])
        measured[f"fid_collaborative_{name}_discriminator"] = evaluate(chain.refine(bare), 0)["fid"]

    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    source = manifest["files"]["discriminator.safetensors"]
    manifest["files"][SHAPED_DIGITS_FILE] = {
        "architecture": source["architecture"],
        "config": source["config"],
        "sha256": assets_module.sha256_of(path),
        "bytes": path.stat().st_size,
        "parameters": sum(p.numel() for p in shaped.parameters()),
        "what": (
            "discriminator.safetensors shaped for collaborative sampling (Liu et al. 2020, Algorithm 2); output is a logit; "
            "guides plugin collaborative at layer block1"
        ),
        "training": {
            "command": "python benchmarks/train_shaped_discriminator.py",
            "function": "gan_postproc.plugins.collaborative.shape_discriminator",
            "shaped_from_sha256": source["sha256"],
            "refinement": SHAPED_DIGITS_SETTINGS,
            "iterations": args.iterations,
            "batch_size": args.batch_size,
            "optimizer": f"Adam(lr={args.lr}, betas=[0.5, 0.999])",
            "real_data": f"train split, shuffled with seed {args.seed}",
            "seed": args.seed,
            "threads": args.threads,
            "seconds": round(seconds, 1),
            "machine": f"{platform.machine()}, torch {torch.__version__}",
        },
        "measured": {k: round(v, 4) if isinstance(v, float) else v for k, v in measured.items()},
    }
    atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    assets_module.read_manifest.cache_clear()
    print(json.dumps(manifest["files"][SHAPED_DIGITS_FILE], indent=2))


if __name__ == "__main__":
    main()
