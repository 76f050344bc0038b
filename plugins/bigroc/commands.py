"""``gan-postproc train-robust-classifier``: an L2-PGD adversarially trained classifier for BIGRoC, from your images.

Data: a folder with one sub-folder of PNG/JPEG images per class (the class
names are the sub-folder names, in sorted order), or an ``.npz`` with an
image array and a label array. The network is a
:class:`~gan_postproc.files.classifiers.ConvClassifier` sized for the images;
training is :func:`gan_postproc.plugins.bigroc.train_robust_classifier` (Madry et
al. 2018: every mini-batch replaced by its L2 PGD adversarial examples). The
result is a classifier file (``.safetensors`` with its description, see
:mod:`gan_postproc.files.classifiers`) that ``gan-postproc refine --classifier``
and :func:`~gan_postproc.files.classifiers.load_classifier` read.

A resumable checkpoint is written after every epoch (``--checkpoint-dir``,
default ``OUTPUT.ckpt/``); re-running the same command continues from it.

Example::

    gan-postproc train-robust-classifier --data my_images/ --output robust.safetensors \\
        --eps 0.5 --eps-range 0 1 --epochs 30
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from gan_postproc import hookimpl
from gan_postproc.errors import InputError
from gan_postproc.files.classifiers import ConvClassifier, save_classifier
from gan_postproc.files.images import list_images, read_images, read_label_file, read_npz_images, to_chain
from gan_postproc.files.writing import check_writable, remove_stale_temp_files
from gan_postproc.pipeline.ranges import CHAIN_RANGE
from gan_postproc.pipeline.scoring import Classifier
from gan_postproc.validation import check_count, check_positive

from .defaults import DEFAULTS

NAME = "train-robust-classifier"
HELP = "train an L2-PGD adversarially robust classifier (Madry et al.) on a folder of class sub-folders or an .npz, for BIGRoC"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder with one sub-folder of images per class, or an .npz")
    parser.add_argument("--output", required=True, type=Path, help="the classifier file to write (.safetensors)")
    parser.add_argument("--eps", required=True, type=float, help="L2 radius of the training attack, in --eps-range units (the paper's CIFAR-10 model: 0.5 in [0, 1])")
    parser.add_argument("--eps-range", type=float, nargs=2, default=list(CHAIN_RANGE), metavar=("LOW", "HIGH"), help="image range eps is stated in (default -1 1)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.robust_train_steps, help=f"PGD steps per batch (default {DEFAULTS.robust_train_steps})")
    parser.add_argument("--step-size", type=float, help=f"PGD step, in --eps-range units (default {DEFAULTS.robust_train_step_ratio} * eps / steps)")
    parser.add_argument("--epochs", type=int, required=True, help="total training epochs")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.train_batch_size)
    parser.add_argument("--lr", type=float, default=DEFAULTS.train_lr, help="Adam learning rate")
    parser.add_argument("--width", type=int, default=32, help="channels of the network's first layer")
    parser.add_argument("--holdout", type=float, default=0.1, help="fraction held out to report clean and robust accuracy (0 for none)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--checkpoint-dir", type=Path, help="resumable checkpoint folder (default: OUTPUT.ckpt)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--labels", type=Path, help="npz data: a labels file instead of the npz's own label array")
    parser.add_argument("--key", help="npz: array key of the images (default 'images')")
    parser.add_argument("--labels-key", default="labels", help="npz: array key of the labels (default 'labels')")
    parser.add_argument("--layout", choices=["NCHW", "NHWC"], help="npz: array layout (default: told from the channel axis)")
    parser.add_argument("--value-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="npz: value range of a floating-point array")
    parser.add_argument("--no-progress", action="store_true")


def load_labelled_images(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Chain images ``[N, C, H, W]``, labels ``[N]`` and class names from the ``--data`` argument."""
    data: Path = args.data
    if data.is_file() and data.suffix.lower() == ".npz":
        arrays = read_npz_images(data, args.key or "images", args.layout)
        images = to_chain(arrays.nchw, None if args.value_range is None else tuple(args.value_range))
        if args.labels is not None:
            labels = read_label_file(args.labels, count=images.shape[0], key=args.labels_key)
        elif args.labels_key in arrays.arrays:
            labels = read_label_file(data, count=images.shape[0], key=args.labels_key)
        else:
            raise InputError(f"{data} has no label array {args.labels_key!r}; pass --labels-key NAME or --labels FILE")
        if labels.min() < 0:
            raise InputError(f"labels must be class indices >= 0, got {int(labels.min())}")
        classes = [str(c) for c in range(int(labels.max()) + 1)]
        return images, torch.from_numpy(labels), classes
    if not data.is_dir():
        raise InputError(f"--data must be a folder of class sub-folders or an .npz file, got {data}")
    classes = sorted(p.name for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise InputError(f"{data} must hold one sub-folder of images per class (at least 2), found {classes}")
    names: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        files = list_images(data / name)
        names += [Path(name) / file for file in files]
        labels += [index] * len(files)
    _, pixels = read_images(data, names)
    return to_chain(pixels), torch.tensor(labels, dtype=torch.int64), classes


def _split(n: int, labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and held-out row indices (stratified)."""
    if fraction == 0:
        return torch.arange(n), torch.arange(0)
    from sklearn.model_selection import train_test_split

    try:
        train, held = train_test_split(np.arange(n), test_size=fraction, stratify=labels.numpy(), random_state=seed)
    except ValueError as error:
        raise InputError(f"cannot hold out {fraction:g} of the data with every class represented ({error}); lower --holdout or pass 0") from error
    return torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(held))


def run(args: argparse.Namespace) -> int:
    from gan_postproc.classifier_training import classifier_accuracy

    from .robust_training import AttackSettings, train_robust_classifier

    if args.output.suffix != ".safetensors":
        raise InputError(f"--output must be a .safetensors file, got {args.output}")
    if not 0 <= args.holdout < 1:
        raise InputError(f"--holdout must lie in [0, 1), got {args.holdout}")
    low, high = args.eps_range
    if not low < high:
        raise InputError(f"--eps-range needs LOW < HIGH, got {low} {high}")
    scale = (CHAIN_RANGE[1] - CHAIN_RANGE[0]) / (high - low)
    eps = check_positive(args.eps, "--eps") * scale
    step_size = None if args.step_size is None else check_positive(args.step_size, "--step-size") * scale
    epochs = check_count(args.epochs, "--epochs")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    checkpoint_dir = args.checkpoint_dir or args.output.with_name(args.output.name + ".ckpt")
    check_writable(args.output, "--output")
    check_writable(checkpoint_dir, "--checkpoint-dir", folder=True)
    remove_stale_temp_files(args.output)
    remove_stale_temp_files(checkpoint_dir)
    images, labels, classes = load_labelled_images(args)
    train_rows, held_rows = _split(images.shape[0], labels, args.holdout, args.seed)
    config = {"in_channels": int(images.shape[1]), "num_classes": len(classes), "image_size": [int(images.shape[2]), int(images.shape[3])], "width": args.width}
    torch.manual_seed(args.seed)
    model = ConvClassifier(**config).to(device)
    print(f"training on {len(train_rows)} images of shape {tuple(images.shape[1:])}, {len(classes)} classes, "
          f"L2 eps {eps:g} in [-1, 1] units, {args.steps} PGD steps, {epochs} epochs, on {device}")
    report = train_robust_classifier(
        model, images[train_rows], labels[train_rows], eps=eps, steps=args.steps, step_size=step_size, epochs=epochs,
        batch_size=args.batch_size, lr=args.lr, value_range=CHAIN_RANGE, seed=args.seed, checkpoint_dir=checkpoint_dir,
        progress=not args.no_progress,
    )
    training = {"method": "L2 PGD adversarial training (Madry et al. 2018)", "eps": eps, "eps_units": list(CHAIN_RANGE),
                "steps": args.steps, "step_size": step_size, "epochs": epochs, "batch_size": args.batch_size, "lr": args.lr,
                "seed": args.seed, "train_images": len(train_rows), "history": report.history}
    if len(held_rows):
        attack = AttackSettings(eps=eps, steps=args.steps, step_size=step_size)
        held_x, held_y = images[held_rows].to(device), labels[held_rows].to(device)
        training["holdout_clean_accuracy"] = classifier_accuracy(model, held_x, held_y, value_range=CHAIN_RANGE)
        training["holdout_robust_accuracy"] = classifier_accuracy(model, held_x, held_y, attack=attack, value_range=CHAIN_RANGE, seed=args.seed)
        print(f"held out {len(held_rows)} images: clean accuracy {training['holdout_clean_accuracy']:.3f}, "
              f"accuracy under the training attack {training['holdout_robust_accuracy']:.3f}")
    save_classifier(args.output, Classifier(model.cpu().eval(), len(classes)), architecture="ConvClassifier", config=config, classes=classes, training=training)
    print(f"wrote {args.output} (use it with: gan-postproc refine --refiner bigroc --classifier {args.output} ...)")
    return 0


@hookimpl
def gan_postproc_register_commands() -> list[ModuleType]:
    """This module is the family's command (NAME, HELP, add_arguments, run)."""
    return [sys.modules[__name__]]
