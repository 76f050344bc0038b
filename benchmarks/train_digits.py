"""Train the digits models that ship in ``gan_postproc/assets/digits/`` and measure them.

Reproducible: fixed seeds, CPU, ``torch.set_num_threads(1)`` by default, a
few minutes in all. Trains on the fixed train split of
``sklearn.datasets.load_digits`` (``gan_postproc.models.digits.digits_dataset``):

1. the independent feature network (measuring only), plain training;
2. the normal classifier, plain training;
3. the robust classifier, L2-PGD adversarial training (Madry et al.) with
   ``gan_postproc.plugins.bigroc.train_robust_classifier``, eps in [-1, 1] units;
4. an unconditional GAN (non-saturating loss), stopped early on purpose;
5. a conditional GAN (label-embedding generator, projection discriminator), also stopped early.

Then writes the weights (safetensors) and ``manifest.json`` to ``--out``,
loads them back through the public loaders and measures: test accuracy of
the classifiers and the feature net, the classifiers' accuracy under an L2
PGD attack, FID (Frechet distance of the feature net's penultimate features,
numpy/scipy) of GAN samples vs the test split next to the train-vs-test floor,
the conditional GAN's label accuracy per requested class, and writes a sample
grid and a robust-gradient figure to ``--results``.

Usage::

    python benchmarks/train_digits.py                 # writes src/gan_postproc/assets/digits/
    python benchmarks/train_digits.py --out /tmp/digits --results /tmp/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from scipy import linalg
from torch import nn
from tqdm.auto import tqdm

import gan_postproc
from gan_postproc import Chain
from gan_postproc.classifier_training import classifier_accuracy, train_classifier
from gan_postproc.files.checkpoints import save_safetensors_atomic
from gan_postproc.models import assets as assets_module
from gan_postproc.models.digits import (
    DIGITS_FILES,
    DIGITS_NUM_CLASSES,
    DIGITS_SPLIT_SEED,
    DIGITS_TEST_SIZE,
    DigitsClassifier,
    DigitsDiscriminator,
    DigitsFeatureExtractor,
    DigitsFeatureNet,
    DigitsGenerator,
    digits_dataset,
    load_digits_classifier,
    load_digits_discriminator,
    load_digits_feature_net,
    load_digits_generator,
)
from gan_postproc.pipeline.torch_adapter import TorchAdapter
from gan_postproc.plugins.bigroc import AttackSettings, train_robust_classifier
from gan_postproc.plugins.bigroc.pgd import pgd_l2

#: The folder the package loads the digits models from (src/gan_postproc/assets/digits in a checkout).
PACKAGE_DIGITS = Path(gan_postproc.__file__).resolve().parent / "assets" / "digits"
#: Where figures and train_digits.json go by default: benchmarks/results of a source checkout.
_CHECKOUT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = _CHECKOUT / "benchmarks" / "results" if (_CHECKOUT / "pyproject.toml").is_file() else Path("train_digits_results")

#: Every seed of the run. Each model gets its own, set right before it is built.
SEEDS = {"feature_net": 1234, "classifier": 1, "robust_classifier": 2, "gan": 3, "cond_gan": 4, "evaluation": 0}

#: Architectures (constructor arguments, recorded in the manifest; the loaders rebuild from them).
CONFIGS: dict[str, dict[str, Any]] = {
    "generator": {"nz": 32, "num_classes": None, "width": 32},
    "discriminator": {"num_classes": None, "width": 32},
    "cond_generator": {"nz": 32, "num_classes": DIGITS_NUM_CLASSES, "width": 32},
    "cond_discriminator": {"num_classes": DIGITS_NUM_CLASSES, "width": 32},
    "classifier": {"width": 32, "num_classes": DIGITS_NUM_CLASSES},
    "robust_classifier": {"width": 32, "num_classes": DIGITS_NUM_CLASSES},
    "feature_net": {"num_features": 64, "num_classes": DIGITS_NUM_CLASSES},
}

#: Training hyper-parameters.
FEATURE_NET = {"epochs": 30, "batch_size": 64, "lr": 2e-3}
CLASSIFIER = {"epochs": 30, "batch_size": 128, "lr": 1e-3}
ROBUST = {"eps": 1.5, "steps": 7, "epochs": 30, "batch_size": 128, "lr": 1e-3}
GAN = {"batch_size": 64, "lr": 2e-4, "betas": (0.5, 0.999)}

#: Evaluation settings.
FID_SAMPLES = 2000
ATTACK_EPS = (0.5, 1.0, 1.5)
ATTACK_STEPS = 20


# --- GAN training ------------------------------------------------------------------


def train_gan(
    generator: DigitsGenerator,
    discriminator: DigitsDiscriminator,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    iterations: int,
    seed: int,
    desc: str,
) -> list[dict[str, float]]:
    """Non-saturating GAN training (Goodfellow et al. 2014, Sec. 3): one D step and one G step per iteration.

    D minimises ``softplus(-D(x)) + softplus(D(G(z)))`` (binary cross-entropy on
    logits), G minimises ``softplus(-D(G(z)))``. A conditional pair gets real
    labels for real images and uniform labels for fakes. Returns the losses
    every 50 iterations.
    """
    conditional = generator.num_classes is not None
    generator_rng = torch.Generator().manual_seed(seed)
    opt_g = torch.optim.Adam(generator.parameters(), lr=GAN["lr"], betas=GAN["betas"])
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=GAN["lr"], betas=GAN["betas"])
    generator.train()
    discriminator.train()
    log: list[dict[str, float]] = []
    batch = GAN["batch_size"]
    for iteration in tqdm(range(1, iterations + 1), desc=desc, unit="it"):
        rows = torch.randint(len(images), (batch,), generator=generator_rng)
        real, real_y = images[rows], (labels[rows] if conditional else None)
        z = torch.randn(batch, generator.nz, generator=generator_rng)
        fake_y = torch.randint(DIGITS_NUM_CLASSES, (batch,), generator=generator_rng) if conditional else None
        fake = generator(z, fake_y)
        loss_d = F.softplus(-discriminator(real, real_y)).mean() + F.softplus(discriminator(fake.detach(), fake_y)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-discriminator(fake, fake_y)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if iteration % 50 == 0:
            log.append({"iteration": iteration, "loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach())})
    generator.eval()
    discriminator.eval()
    return log


def recalibrate_batch_norm(generator: DigitsGenerator, *, seed: int, batches: int = 40, batch_size: int = 256) -> None:
    """Replace the generator's batch-norm running statistics by exact averages over generated batches.

    The running averages collected during training (momentum 0.1) lag behind
    the weights of a generator stopped early; recomputing them for the final
    weights (BigGAN's "standing statistics", Brock et al. 2019) makes the
    eval-mode generator match its train-mode output. Measured here: FID
    10-20% lower at the same weights.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches below
    rng = torch.Generator().manual_seed(seed)
    generator.train()
    with torch.no_grad():
        for _ in range(batches):
            z = torch.randn(batch_size, generator.nz, generator=rng)
            y = torch.randint(DIGITS_NUM_CLASSES, (batch_size,), generator=rng) if generator.num_classes is not None else None
            generator(z, y)
    for norm in norms:
        norm.momentum = 0.1
    generator.eval()


# --- measuring -------------------------------------------------------------------------


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance of Gaussians fitted to two feature sets ``[N, d]`` (Heusel et al. 2017, Eq. 6)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * np.real(root)))


def balance_kl(predicted: torch.Tensor, num_classes: int) -> float:
    """KL(predicted label histogram || uniform), 1e-5 added to both (CBGAN supplement's convention)."""
    p = torch.bincount(predicted, minlength=num_classes).double() / len(predicted) + 1e-5
    q = torch.full_like(p, 1.0 / num_classes) + 1e-5
    return float((p * (p / q).log()).sum())


# --- figures -------------------------------------------------------------------------------


def image_grid(images: torch.Tensor, columns: int, scale: int) -> Image.Image:
    """``[N, 1, 8, 8]`` in ``[-1, 1]`` -> a grey PIL image, ``columns`` per row, 1-pixel grey gaps."""
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()[:, 0]
    rows = -(-len(pixels) // columns)
    canvas = np.full((rows * 9 + 1, columns * 9 + 1), 96, np.uint8)
    for i, tile in enumerate(pixels):
        r, c = divmod(i, columns)
        canvas[1 + 9 * r : 9 + 9 * r, 1 + 9 * c : 9 + 9 * c] = tile
    return Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), Image.NEAREST)


def labelled_panels(panels: list[tuple[str, Image.Image]], path: Path) -> None:
    """Put image panels side by side with a title above each; write a PNG."""
    gap, title = 16, 22
    width = sum(p.width for _, p in panels) + gap * (len(panels) + 1)
    height = max(p.height for _, p in panels) + title + gap
    sheet = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(sheet)
    x = gap
    for caption, panel in panels:
        draw.text((x, 4), caption, fill=0)
        sheet.paste(panel, (x, title))
        x += panel.width + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


# --- the run -------------------------------------------------------------------------------


def seeded(seed: int, build: type[nn.Module], config: dict[str, Any]) -> nn.Module:
    torch.manual_seed(seed)
    return build(**config)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PACKAGE_DIGITS, help="where the weights and manifest.json go")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="where figures and train_digits.json go")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: reproducible and fastest for these small models)")
    parser.add_argument("--gan-iterations", type=int, default=1000, help="early stop of the unconditional GAN")
    parser.add_argument("--cond-gan-iterations", type=int, default=375, help="early stop of the conditional GAN")
    args = parser.parse_args(argv)
    command = "python benchmarks/train_digits.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    train_x, train_y = digits_dataset("train")
    test_x, test_y = digits_dataset("test")
    print(f"digits: {len(train_x)} train / {len(test_x)} test images, CPU, {args.threads} thread(s), torch {torch.__version__}")

    # 1-3: the feature net and the two classifiers, with the library's training loop.
    models: dict[str, nn.Module] = {}
    histories: dict[str, Any] = {}
    t = time.perf_counter()
    models["feature_net"] = seeded(SEEDS["feature_net"], DigitsFeatureNet, CONFIGS["feature_net"])
    histories["feature_net"] = train_classifier(models["feature_net"], train_x, train_y, seed=SEEDS["feature_net"], **FEATURE_NET).history
    seconds["feature_net"] = time.perf_counter() - t
    t = time.perf_counter()
    models["classifier"] = seeded(SEEDS["classifier"], DigitsClassifier, CONFIGS["classifier"])
    histories["classifier"] = train_classifier(models["classifier"], train_x, train_y, seed=SEEDS["classifier"], **CLASSIFIER).history
    seconds["classifier"] = time.perf_counter() - t
    t = time.perf_counter()
    models["robust_classifier"] = seeded(SEEDS["robust_classifier"], DigitsClassifier, CONFIGS["robust_classifier"])
    histories["robust_classifier"] = train_robust_classifier(
        models["robust_classifier"], train_x, train_y, seed=SEEDS["robust_classifier"], **ROBUST
    ).history
    seconds["robust_classifier"] = time.perf_counter() - t

    # 4-5: the GANs, stopped early on purpose.
    for prefix, iterations in (("", args.gan_iterations), ("cond_", args.cond_gan_iterations)):
        t = time.perf_counter()
        seed = SEEDS[f"{prefix}gan"]
        torch.manual_seed(seed)
        generator = DigitsGenerator(**CONFIGS[f"{prefix}generator"])
        discriminator = DigitsDiscriminator(**CONFIGS[f"{prefix}discriminator"])
        histories[f"{prefix}gan"] = train_gan(
            generator, discriminator, train_x, train_y, iterations=iterations, seed=seed, desc=f"training {prefix}GAN"
        )
        recalibrate_batch_norm(generator, seed=seed + 1000)
        models[f"{prefix}generator"], models[f"{prefix}discriminator"] = generator, discriminator
        seconds[f"{prefix}gan"] = time.perf_counter() - t

    # Write the weights and a first manifest, then measure through the public loaders.
    files = {}
    for key, filename in DIGITS_FILES.items():
        module = models[key]
        path = save_safetensors_atomic(
            module.state_dict(), args.out / filename, {"architecture": type(module).__name__, "config": json.dumps(CONFIGS[key])}
        )
        files[filename] = {
            "architecture": type(module).__name__,
            "config": CONFIGS[key],
            "sha256": assets_module.sha256_of(path),
            "bytes": path.stat().st_size,
            "parameters": sum(p.numel() for p in module.parameters()),
        }
    manifest = build_manifest(files, args, command, histories, seconds, measurements=None)
    write_manifest(args.out, manifest)
    if args.out.resolve() == PACKAGE_DIGITS.resolve():
        verify_shipped(models)
    measurements = measure(models, args, train_x, train_y, test_x, test_y)
    seconds["total"] = time.perf_counter() - started
    manifest = build_manifest(files, args, command, histories, seconds, measurements)
    write_manifest(args.out, manifest)
    results_path = args.results / "train_digits.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(rounded({"measurements": measurements, "seconds": seconds, "machine": machine(args)}), indent=2) + "\n")
    print_report(measurements, seconds, files)
    return measurements


def verify_shipped(models: dict[str, nn.Module]) -> None:
    """Load every written file through the public loaders and check it holds exactly the trained weights."""
    assets_module.read_manifest.cache_clear()
    loaded = {
        "generator": load_digits_generator(),
        "cond_generator": load_digits_generator(conditional=True),
        "discriminator": load_digits_discriminator(),
        "cond_discriminator": load_digits_discriminator(conditional=True),
        "classifier": load_digits_classifier(),
        "robust_classifier": load_digits_classifier(robust=True),
        "feature_net": load_digits_feature_net(),
    }
    for key, module in loaded.items():
        trained = models[key].state_dict()
        if any(not torch.equal(value, trained[name]) for name, value in module.state_dict().items()):
            raise RuntimeError(f"the shipped {key} does not hold the trained weights")
    print(f"verified: the {len(loaded)} shipped files load through gan_postproc.models.digits and hold the trained weights")


def machine(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "device": "cpu",
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def measure(
    models: dict[str, nn.Module], args: argparse.Namespace, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor
) -> dict[str, Any]:
    """Every sanity number of the report, measured on the trained models (the files hold exactly these weights)."""
    extractor = DigitsFeatureExtractor(models["feature_net"])
    classifier, robust = models["classifier"], models["robust_classifier"]
    adapters = {
        "gan": TorchAdapter(models["generator"]),
        "cond_gan": TorchAdapter(models["cond_generator"], num_classes=DIGITS_NUM_CLASSES),
    }
    discriminators = {"gan": models["discriminator"], "cond_gan": models["cond_discriminator"]}

    def features(images: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return torch.cat([extractor(chunk) for chunk in images.split(500)]).double().numpy()

    def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(images).argmax(1)

    out: dict[str, Any] = {"n_train": len(train_x), "n_test": len(test_x), "fid_samples": FID_SAMPLES, "seed": SEEDS["evaluation"]}
    out["test_accuracy"] = {
        name: classifier_accuracy(model, test_x, test_y)
        for name, model in (("classifier", classifier), ("robust_classifier", robust), ("feature_net", extractor.net))
    }
    out["attack"] = {"kind": "untargeted L2 PGD, random start", "steps": ATTACK_STEPS, "step_size": "2.5 * eps / steps", "units": "[-1, 1] image range"}
    out["attacked_accuracy"] = {
        name: {
            str(eps): classifier_accuracy(model, test_x, test_y, attack=AttackSettings(eps=eps, steps=ATTACK_STEPS), seed=SEEDS["evaluation"])
            for eps in ATTACK_EPS
        }
        for name, model in (("classifier", classifier), ("robust_classifier", robust))
    }
    test_features = features(test_x)
    out["fid_train_vs_test"] = frechet_distance(features(train_x), test_features)
    samples = {}
    for name, adapter in adapters.items():
        labels = torch.arange(FID_SAMPLES) % DIGITS_NUM_CLASSES if name == "cond_gan" else None
        batch = Chain(adapter, batch_size=500).sample(FID_SAMPLES, seed=SEEDS["evaluation"], labels=labels)
        samples[name] = batch
        entry: dict[str, Any] = {"fid_vs_test": frechet_distance(features(batch.images), test_features)}
        predicted = predict(classifier, batch.images)
        entry["balance_kl"] = balance_kl(predicted, DIGITS_NUM_CLASSES)
        entry["predicted_histogram"] = torch.bincount(predicted, minlength=DIGITS_NUM_CLASSES).tolist()
        with torch.no_grad():
            disc = discriminators[name]
            real_logit = disc(test_x, test_y) if name == "cond_gan" else disc(test_x)
            fake_logit = disc(batch.images, batch.labels) if name == "cond_gan" else disc(batch.images)
        entry["discriminator_mean_logit"] = {"real_test": float(real_logit.mean()), "generated": float(fake_logit.mean())}
        entry["discriminator_accuracy"] = float(((real_logit > 0).float().mean() + (fake_logit < 0).float().mean()) / 2)
        if name == "cond_gan":
            hits = (predicted == batch.labels).float()
            entry["label_accuracy"] = float(hits.mean())
            entry["label_accuracy_per_class"] = [float(hits[batch.labels == k].mean()) for k in range(DIGITS_NUM_CLASSES)]
        out[name] = entry
    out["figures"] = write_figures(samples, test_x, classifier, robust, args.results)
    return out


def write_figures(samples: dict[str, Any], test_x: torch.Tensor, classifier: nn.Module, robust: nn.Module, results: Path) -> list[str]:
    """Sample grids of both GANs beside real images; targeted large-eps PGD towards every class."""
    cond = samples["cond_gan"].images[:100]  # labels are index % 10: column = requested label
    sample_path = results / "digits_samples.png"
    labelled_panels(
        [
            ("real (test split)", image_grid(test_x[:100], 10, 5)),
            ("unconditional GAN", image_grid(samples["gan"].images[:100], 10, 5)),
            ("conditional GAN (column = label 0..9)", image_grid(cond, 10, 5)),
        ],
        sample_path,
    )
    # Perceptually aligned gradients: push 10 test images towards each class with a large L2 budget.
    start = test_x[:10].repeat_interleave(DIGITS_NUM_CLASSES, 0)
    target = torch.arange(DIGITS_NUM_CLASSES).repeat(10)
    panels = []
    for caption, model in (("normal classifier", classifier), ("robust classifier", robust)):
        moved = pgd_l2(lambda x, m=model: -F.cross_entropy(m(x), target, reduction="none"), start, eps=4.0, steps=40, step_size=0.25)
        panels.append((f"{caption}: row = test image, column = target class, L2 eps 4", image_grid(moved, 10, 5)))
    pgd_path = results / "digits_robust_pgd.png"
    labelled_panels(panels, pgd_path)
    return [str(p.resolve().relative_to(_CHECKOUT)) if p.resolve().is_relative_to(_CHECKOUT) else str(p) for p in (sample_path, pgd_path)]


def build_manifest(
    files: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    command: str,
    histories: dict[str, Any],
    seconds: dict[str, float],
    measurements: dict[str, Any] | None,
) -> dict[str, Any]:
    m = measurements or {}
    split = {
        "source": "sklearn.datasets.load_digits (1797 images, 8x8, pixels 0..16)",
        "function": "gan_postproc.models.digits.digits_dataset",
        "method": f"sklearn.model_selection.train_test_split(test_size={DIGITS_TEST_SIZE}, stratify=labels, random_state={DIGITS_SPLIT_SEED})",
        "n_train": 1347,
        "n_test": 450,
        "pixel_map": "p / 8 - 1, so images are float32 [N, 1, 8, 8] in [-1, 1]",
        "trained_on": "train split only",
    }
    gan_training = {
        "loss": "non-saturating GAN (binary cross-entropy on discriminator logits), one D step then one G step per iteration",
        "optimizer": f"Adam(lr={GAN['lr']}, betas={list(GAN['betas'])}) for both",
        "batch_size": GAN["batch_size"],
        "latent_prior": "N(0, I), 32 dimensions",
        "batch_norm": "generator running statistics recomputed after training over 40 batches of 256 samples (seed = training seed + 1000)",
    }
    stops = {
        "gan": (
            "stopped early on purpose; 1000 iterations chosen from a scan of 800-1200, where FID (2000 samples vs test) "
            "moved between 10.5 and 19.5 from one checkpoint to the next: recognisable digits with stroke noise, "
            "some malformed samples and an uneven class histogram"
        ),
        "cond_gan": (
            "stopped early on purpose; 375 iterations chosen from a scan of 300-1000 as a point where about 1 in 10 "
            "samples is not recognised as its requested class (class-ambiguous 4s, 8s, 9s) and FID is of the same order "
            "as the unconditional GAN's; after 1000 iterations label accuracy is 99% and FID about 6.5"
        ),
    }
    describe = {
        "generator": ("generator of the unconditional GAN (deliberately stopped early: recognisable but flawed samples)", "gan", args.gan_iterations),
        "discriminator": ("discriminator of the unconditional GAN; output is a logit of p(real | x)", "gan", args.gan_iterations),
        "cond_generator": ("generator of the class-conditional GAN, G(z, y) (deliberately stopped early)", "cond_gan", args.cond_gan_iterations),
        "cond_discriminator": ("projection discriminator of the conditional GAN, D(x, y); output is a logit of p(real | x, y)", "cond_gan", args.cond_gan_iterations),
    }
    entries: dict[str, Any] = {}
    for key, filename in DIGITS_FILES.items():
        entry = dict(files[filename])
        if key in describe:
            what, gan, iterations = describe[key]
            entry["what"] = what
            entry["training"] = {
                **gan_training,
                "iterations": iterations,
                "epochs": round(iterations * GAN["batch_size"] / split["n_train"], 2),
                "seed": SEEDS[gan],
                "early_stop": stops[gan],
            }
            if gan in m:
                entry["measured"] = {k: v for k, v in m[gan].items() if k != "predicted_histogram"}
        elif key == "feature_net":
            entry["what"] = (
                "independent feature network for MEASURING only (FID, precision/recall on the 64-d penultimate layer "
                "'features'); other architecture and seed than the classifiers; never use it to guide a method"
            )
            entry["training"] = {"function": "gan_postproc.classifier_training.train_classifier", **FEATURE_NET, "optimizer": "Adam", "seed": SEEDS["feature_net"]}
        elif key == "classifier":
            entry["what"] = "normally trained classifier (cross-entropy), logits [N, 10] for images in [-1, 1]"
            entry["training"] = {"function": "gan_postproc.classifier_training.train_classifier", **CLASSIFIER, "optimizer": "Adam", "seed": SEEDS["classifier"]}
        else:
            entry["what"] = (
                "robust classifier: L2-PGD adversarial training (Madry et al. 2018); same architecture as classifier.safetensors"
            )
            entry["training"] = {
                "function": "gan_postproc.plugins.bigroc.train_robust_classifier",
                **ROBUST,
                "eps_units": "[-1, 1] image range (eps 1.5 here = 0.75 in [0, 1] units)",
                "step_size": f"2.5 * eps / steps = {2.5 * ROBUST['eps'] / ROBUST['steps']:.4f}",
                "random_start": True,
                "optimizer": "Adam",
                "seed": SEEDS["robust_classifier"],
            }
        if key in ("classifier", "robust_classifier", "feature_net"):
            entry["training"]["final_epoch"] = histories[key][-1]
            if "test_accuracy" in m:
                entry["measured"] = {"test_accuracy": m["test_accuracy"][key]}
                if key in m.get("attacked_accuracy", {}):
                    entry["measured"]["attacked_test_accuracy"] = {"attack": m["attack"], "by_eps": m["attacked_accuracy"][key]}
        entries[filename] = entry
    return {
        "description": "Small models trained on scikit-learn's digits by benchmarks/train_digits.py; loaded by gan_postproc.models.digits",
        "command": command,
        "reproducibility": (
            "fixed seeds, CPU, torch.set_num_threads(threads), deterministic algorithms; reruns on the same machine and "
            "torch version give identical files; other CPUs or versions can differ in the last bits, which GAN training amplifies"
        ),
        "machine": machine(args),
        "split": split,
        "seeds": SEEDS,
        "files": entries,
        "measurements": measurements,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def rounded(value: Any, digits: int = 4) -> Any:
    """``value`` with every float rounded to ``digits`` decimals (readable JSON)."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    path = out / "manifest.json"
    temporary = path.with_name(".manifest.json.tmp")
    temporary.write_text(json.dumps(rounded(manifest), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def print_report(m: dict[str, Any], seconds: dict[str, float], files: dict[str, dict[str, Any]]) -> None:
    print("\n=== digits models: what was measured ===")
    print(f"data: {m['n_train']} train / {m['n_test']} test images; GAN samples per FID: {m['fid_samples']} (seed {m['seed']})")
    print("test accuracy:", ", ".join(f"{k} {v:.4f}" for k, v in m["test_accuracy"].items()))
    for name, by_eps in m["attacked_accuracy"].items():
        print(f"accuracy under L2 PGD ({ATTACK_STEPS} steps) [-1,1] units, {name}:", ", ".join(f"eps {e}: {a:.4f}" for e, a in by_eps.items()))
    print(f"FID floor (train split vs test split): {m['fid_train_vs_test']:.3f}")
    for name in ("gan", "cond_gan"):
        e = m[name]
        print(f"{name}: FID vs test {e['fid_vs_test']:.3f}  balance KL {e['balance_kl']:.4f}  D accuracy {e['discriminator_accuracy']:.3f}  predicted histogram {e['predicted_histogram']}")
    cond = m["cond_gan"]
    print(f"cond_gan label accuracy (normal classifier): {cond['label_accuracy']:.4f}; per class:", " ".join(f"{a:.2f}" for a in cond["label_accuracy_per_class"]))
    total = sum(f["bytes"] for f in files.values())
    print(f"files: {len(files)} safetensors, {total / 1e6:.2f} MB; figures: {', '.join(m['figures'])}")
    print("seconds:", ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
