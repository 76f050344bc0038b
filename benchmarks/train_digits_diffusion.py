"""Train the shipped digits diffusion model and its DG discriminator, and record both in the asset manifest.

Reproducible: fixed seeds, CPU, ``torch.set_num_threads(1)`` by default.
Writes ``src/gan_postproc/assets/digits_diffusion/`` (or ``--out``):

1. ``unet.safetensors``: a small ``diffusers.UNet2DModel`` trained with the
   DDPM noise-prediction loss (Ho et al. 2020, Eq. 14, "L_simple") under a
   ``DDPMScheduler`` (1000 training timesteps, linear betas), on the fixed
   train split of the digits (``gan_postproc.models.digits.digits_dataset``,
   the split the digits GANs were trained on), stopped early on purpose (a
   weak model leaves room for guidance);
2. ``dg_discriminator.safetensors``: DG's time-dependent discriminator
   (:class:`gan_postproc.plugins.discriminator_guidance.TimeDependentDiscriminator`)
   on the frozen body of the shipped normal digits classifier (never the
   measuring feature network), trained with
   :func:`gan_postproc.plugins.discriminator_guidance.train_dg_discriminator` on
   noised train-split digits (real) against samples of the bare model drawn
   with the benchmark's sampler settings and seeds the benchmark never uses;
3. ``manifest.json``: per file what it is, how it was trained (settings,
   seeds, time, machine) and what was measured (FID of the bare model with the
   independent feature network against the held-out test split, the
   discriminator's held-out accuracy).

Each stage keeps a resumable checkpoint in ``--work-dir``; re-running resumes.

Usage::

    python benchmarks/train_digits_diffusion.py
    python benchmarks/train_digits_diffusion.py --out /tmp/dd --work-dir /tmp/dd-work
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

import gan_postproc
from gan_postproc.bench.report import machine_info
from gan_postproc.files.checkpoints import load_checkpoint, save_checkpoint, save_safetensors_atomic
from gan_postproc.files.writing import atomic_write_json
from gan_postproc.models.assets import sha256_of

#: The folder the package loads the digits diffusion model from.
PACKAGE_ASSETS = Path(gan_postproc.__file__).resolve().parent / "assets" / "digits_diffusion"
_CHECKOUT = Path(__file__).resolve().parents[1]

#: Seeds: UNet initialisation and batches; generated training samples for the discriminator
#: (far from the benchmark's seeds 0-4 and its timing seeds); discriminator training; its held-out check.
SEEDS = {"unet": 10, "generated": 5000, "discriminator": 11, "heldout_generated": 6000, "evaluation": 7000}

#: Training of the UNet (L_simple, Adam).
UNET_TRAINING = {"iterations": 3000, "batch_size": 128, "lr": 1e-3, "checkpoint_every": 250}
#: Generated samples for the discriminator, drawn with the benchmark's sampler settings.
GENERATED = {"n": 4000, "heldout": 500, "batch_size": 500}
#: The discriminator: head size, and its training (train_dg_discriminator's arguments).
#: Chosen over (width 128, lr 3e-4, 20 epochs, uniform t) and (lr 1e-3, 40 epochs, uniform t) by the held-out
#: accuracy at small t (0.69 / 0.68 / 0.65 at t = 10 / 50 / 100, against 0.64 / 0.65 / 0.62 with uniform t);
#: the likelihood weighting is the reference code's default.
DISCRIMINATOR = {"width": 256, "depth": 2, "time_embedding_dim": 64}
DISCRIMINATOR_TRAINING = {"epochs": 40, "batch_size": 128, "lr": 1e-3, "weight_decay": 1e-7, "time_sampling": "likelihood"}
#: Timesteps at which the held-out accuracy is reported.
ACCURACY_TIMESTEPS = (10, 50, 100, 200, 400, 700)
#: Real train-split images held out from the discriminator's training (its held-out accuracy).
HELDOUT_REAL = 200
#: What the manifest says about the one measured draw.
MEASUREMENT_NOTE = "one draw of 1000 samples; single draws of this model vary by about 1 FID point (4.3 to 7.8 seen), see gan-postproc bench dg_digits for 5 seeds"
#: Measured FID of the bare model: samples.
EVALUATION = {"n": 1000}


def unet_config() -> dict[str, Any]:
    from gan_postproc.integrations.diffusers.guidance import DIGITS_UNET_CONFIG

    return dict(DIGITS_UNET_CONFIG)


def train_unet(work_dir: Path, threads: int, progress: bool = True) -> tuple[torch.nn.Module, dict[str, Any]]:
    """DDPM training: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, loss ||eps - eps_theta(x_t, t)||^2 (Ho et al. 2020, Eq. 14).

    Resumable: a checkpoint (model, optimizer, generator state, iteration) every
    ``checkpoint_every`` iterations; re-running continues from it bit-exactly.
    """
    from diffusers import DDPMScheduler, UNet2DModel

    from gan_postproc.integrations.diffusers.guidance import DIGITS_SCHEDULER_CONFIG
    from gan_postproc.models.digits import digits_dataset

    settings = UNET_TRAINING
    images, _ = digits_dataset("train")
    torch.manual_seed(SEEDS["unet"])
    unet = UNet2DModel(**unet_config())
    scheduler = DDPMScheduler(**DIGITS_SCHEDULER_CONFIG)
    optimizer = torch.optim.Adam(unet.parameters(), lr=settings["lr"])
    rng = torch.Generator().manual_seed(SEEDS["unet"])
    checkpoint = work_dir / "unet.checkpoint.safetensors"
    start, history, seconds = 0, [], 0.0
    if checkpoint.is_file():
        state = load_checkpoint(checkpoint, modules={"unet": unet}, optimizers={"adam": optimizer})
        start, history, seconds = state["iteration"], state["history"], state["seconds"]
        rng.set_state(torch.tensor(state["rng"], dtype=torch.uint8))
    alphas_cumprod = scheduler.alphas_cumprod
    unet.train()
    began = time.perf_counter() - seconds
    running = 0.0
    for iteration in tqdm(range(start + 1, settings["iterations"] + 1), desc="training digits UNet", unit="it",
                          initial=start, total=settings["iterations"], disable=not progress):
        rows = torch.randint(len(images), (settings["batch_size"],), generator=rng)
        x0 = images[rows]
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), generator=rng)
        noise = torch.randn(x0.shape, generator=rng)
        abar = alphas_cumprod[t].view(-1, 1, 1, 1)
        xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        loss = (unet(xt, t).sample - noise).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += float(loss.detach())
        if iteration % 50 == 0:
            history.append({"iteration": iteration, "loss": running / 50})
            running = 0.0
        if iteration % settings["checkpoint_every"] == 0 or iteration == settings["iterations"]:
            save_checkpoint(checkpoint, modules={"unet": unet}, optimizers={"adam": optimizer}, state={
                "iteration": iteration, "history": history, "seconds": time.perf_counter() - began,
                "rng": rng.get_state().tolist(), "threads": threads})
    unet.eval()
    state = load_checkpoint(checkpoint, modules={"unet": unet})
    return unet, {"history": state["history"], "seconds": state["seconds"]}


def generate(unet: torch.nn.Module, work_dir: Path) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Samples of the bare model for the discriminator (training and held-out), with the benchmark's sampler settings."""
    from diffusers import DDPMPipeline, DDPMScheduler

    from gan_postproc.integrations.diffusers.guidance import DIGITS_INFERENCE_STEPS, DIGITS_SCHEDULER_CONFIG, sample_pipeline

    path = work_dir / "generated.safetensors"
    if path.is_file():
        from safetensors.torch import load_file

        stored = load_file(path)
        return stored["training"], stored["heldout"], float(stored["seconds"])
    pipeline = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(**DIGITS_SCHEDULER_CONFIG))
    pipeline.set_progress_bar_config(disable=True)
    started = time.perf_counter()
    training = sample_pipeline(pipeline, GENERATED["n"], seed=SEEDS["generated"], batch_size=GENERATED["batch_size"],
                               num_inference_steps=DIGITS_INFERENCE_STEPS)
    heldout = sample_pipeline(pipeline, GENERATED["heldout"], seed=SEEDS["heldout_generated"], batch_size=GENERATED["batch_size"],
                              num_inference_steps=DIGITS_INFERENCE_STEPS)
    seconds = time.perf_counter() - started
    save_safetensors_atomic({"training": training, "heldout": heldout, "seconds": torch.tensor(seconds)}, path)
    return training, heldout, seconds


def train_discriminator(generated: torch.Tensor, heldout_generated: torch.Tensor, work_dir: Path) -> tuple[Any, Any, dict[str, Any]]:
    """DG's discriminator on the frozen body of the shipped normal classifier, against the bare model's samples."""
    from diffusers import DDPMScheduler

    from gan_postproc.integrations.diffusers.guidance import DIGITS_SCHEDULER_CONFIG, digits_dg_feature_extractor
    from gan_postproc.models.digits import digits_dataset
    from gan_postproc.plugins.discriminator_guidance import TimeDependentDiscriminator, train_dg_discriminator

    images, _ = digits_dataset("train")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(SEEDS["discriminator"]))
    heldout_real, real = images[order[:HELDOUT_REAL]], images[order[HELDOUT_REAL:]]
    discriminator = TimeDependentDiscriminator(digits_dg_feature_extractor(), input_shape=(1, 8, 8),
                                               num_timesteps=DIGITS_SCHEDULER_CONFIG["num_train_timesteps"],
                                               seed=SEEDS["discriminator"], **DISCRIMINATOR)
    report = train_dg_discriminator(
        discriminator, real, generated, alphas_cumprod=DDPMScheduler(**DIGITS_SCHEDULER_CONFIG).alphas_cumprod,
        validation=(heldout_real, heldout_generated), checkpoint_dir=work_dir / "discriminator", seed=SEEDS["discriminator"],
        value_range=(-1.0, 1.0), **DISCRIMINATOR_TRAINING)
    return discriminator, report, {"real": len(real), "heldout_real": len(heldout_real),
                                   "accuracy_by_timestep": accuracy_by_timestep(discriminator, heldout_real, heldout_generated)}


def accuracy_by_timestep(discriminator: Any, real: torch.Tensor, generated: torch.Tensor) -> dict[str, float]:
    """Held-out accuracy (mean of the real and the generated side) at fixed timesteps, seeded noise."""
    from diffusers import DDPMScheduler

    from gan_postproc.integrations.diffusers.guidance import DIGITS_SCHEDULER_CONFIG
    from gan_postproc.plugins.discriminator_guidance import noise_samples

    alphas = DDPMScheduler(**DIGITS_SCHEDULER_CONFIG).alphas_cumprod.double()
    generator = torch.Generator().manual_seed(SEEDS["heldout_generated"])
    accuracy = {}
    with torch.no_grad():
        for t in ACCURACY_TIMESTEPS:
            sides = []
            for samples, sign in ((real, 1.0), (generated[: len(real)], -1.0)):
                steps = torch.full((len(samples),), t)
                logit = discriminator(noise_samples(samples, steps, alphas, torch.randn(samples.shape, generator=generator)), steps)
                sides.append(float((sign * logit > 0).float().mean()))
            accuracy[str(t)] = sum(sides) / 2
    return accuracy


def measure_bare(unet: torch.nn.Module) -> dict[str, Any]:
    """FID / precision / recall of the bare model with the independent digits features against the test split."""
    from diffusers import DDPMPipeline, DDPMScheduler

    from gan_postproc.bench.contexts import digits_evaluator
    from gan_postproc.integrations.diffusers.guidance import DIGITS_INFERENCE_STEPS, DIGITS_SCHEDULER_CONFIG, sample_pipeline
    from gan_postproc.pipeline.batch import SampleBatch

    pipeline = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(**DIGITS_SCHEDULER_CONFIG))
    pipeline.set_progress_bar_config(disable=True)
    images = sample_pipeline(pipeline, EVALUATION["n"], seed=SEEDS["evaluation"], num_inference_steps=DIGITS_INFERENCE_STEPS)
    measured = digits_evaluator()(SampleBatch(images=images), 0)
    return {"samples": EVALUATION["n"], "num_inference_steps": DIGITS_INFERENCE_STEPS, "seed": SEEDS["evaluation"],
            "note": MEASUREMENT_NOTE,
            **{key: float(measured[key]) for key in ("fid", "precision", "recall")}}


def write_assets(out: Path, unet: torch.nn.Module, discriminator: Any, info: dict[str, Any], command: str) -> dict[str, Any]:
    """The two weight files and manifest.json (atomic writes)."""
    from gan_postproc.integrations.diffusers.guidance import (
        DIGITS_DIFFUSION_FILES,
        DIGITS_INFERENCE_STEPS,
        DIGITS_SCHEDULER_CONFIG,
    )

    out.mkdir(parents=True, exist_ok=True)
    unet_path = save_safetensors_atomic(unet.state_dict(), out / DIGITS_DIFFUSION_FILES["unet"])
    disc_path = discriminator.save(out / DIGITS_DIFFUSION_FILES["discriminator"], info={"trained_by": command, **info["discriminator"]})
    files = {
        DIGITS_DIFFUSION_FILES["unet"]: {
            "what": "digits diffusion model: diffusers UNet2DModel predicting epsilon, DDPMScheduler; trained for a CPU budget of minutes, not to convergence",
            "architecture": "UNet2DModel", "config": unet_config(), "scheduler": DIGITS_SCHEDULER_CONFIG,
            "sampler": {"pipeline": "DDPMPipeline", "num_inference_steps": DIGITS_INFERENCE_STEPS},
            "sha256": sha256_of(unet_path), "bytes": unet_path.stat().st_size, "parameters": sum(p.numel() for p in unet.parameters()),
            "training": info["unet"], "measured": info["measured"],
        },
        DIGITS_DIFFUSION_FILES["discriminator"]: {
            "what": ("DG time-dependent discriminator of the digits diffusion model: frozen body of the shipped normal digits "
                     "classifier (assets/digits/classifier.safetensors) + trainable head with a time embedding; output logit "
                     "log d / (1 - d); never the measuring feature network"),
            "architecture": "TimeDependentDiscriminator", "config": discriminator.config(),
            "sha256": sha256_of(disc_path), "bytes": disc_path.stat().st_size,
            "parameters": sum(p.numel() for p in discriminator.head_parameters()), "training": info["discriminator"],
        },
    }
    manifest = {
        "description": "The digits diffusion model and its DG discriminator, trained by benchmarks/train_digits_diffusion.py; "
                       "loaded by gan_postproc.integrations.diffusers.guidance",
        "command": command, "machine": info["machine"], "seeds": SEEDS, "files": files, "seconds": info["seconds"],
        "split": "sklearn load_digits, gan_postproc.models.digits.digits_dataset: train split (1347) for training, "
                 "test split (450) only for measuring",
    }
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PACKAGE_ASSETS, help="where the weights and manifest.json go")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/train_digits_diffusion"), help="checkpoints (re-running resumes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--stage", choices=("unet", "all"), default="all", help="'unet': train the UNet only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    unet, unet_info = train_unet(args.work_dir, args.threads)
    print(f"UNet trained in {unet_info['seconds']:.0f} s; last loss {unet_info['history'][-1]['loss']:.4f}")
    if args.stage == "unet":
        return {"unet": unet_info}
    command = "python benchmarks/train_digits_diffusion.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    generated, heldout_generated, generate_seconds = generate(unet, args.work_dir)
    print(f"generated {len(generated)} + {len(heldout_generated)} samples in {generate_seconds:.0f} s")
    discriminator, report, sizes = train_discriminator(generated, heldout_generated, args.work_dir)
    print(f"discriminator trained in {report.seconds:.0f} s; last epoch {report.history[-1]}")
    measured = measure_bare(unet)
    print(f"bare model: {measured}")
    info = {
        "unet": {"loss": "L_simple (Ho et al. 2020, Eq. 14)", "optimizer": f"Adam(lr={UNET_TRAINING['lr']})", **UNET_TRAINING,
                 "seed": SEEDS["unet"], "data": "digits train split (1347 images in [-1, 1])",
                 "final_loss": unet_info["history"][-1]["loss"], "seconds": round(unet_info["seconds"], 1)},
        "discriminator": {"function": "gan_postproc.plugins.discriminator_guidance.train_dg_discriminator", **DISCRIMINATOR,
                          **DISCRIMINATOR_TRAINING, "seed": SEEDS["discriminator"],
                          "real": f"{sizes['real']} train-split digits (train split minus {sizes['heldout_real']} held out)",
                          "generated": f"{len(generated)} samples of the bare model, DDPM {GENERATED} seed {SEEDS['generated']}",
                          "final_epoch": report.history[-1], "seconds": round(report.seconds, 1),
                          "heldout_accuracy_by_timestep": sizes["accuracy_by_timestep"],
                          "generation_seconds": round(generate_seconds, 1)},
        "measured": measured, "machine": machine_info("cpu"),
        "seconds": {"unet": round(unet_info["seconds"], 1), "generation": round(generate_seconds, 1), "discriminator": round(report.seconds, 1)},
    }
    manifest = write_assets(args.out, unet, discriminator, info, command)
    print(json.dumps(manifest["files"], indent=1)[:3000])
    return manifest


if __name__ == "__main__":
    main()
