"""``gan-postproc bench synthetic_training``: Slim (2020) Table 1 in miniature, on the shipped digits GAN.

A small classifier (the shipped digits classifier's architecture, freshly
initialised) is trained only on samples of the shipped *conditional* digits
GAN and tested on the real digits test split (450 images), next to the same
classifier trained on the real training split (1347 images) with the same
number of optimisation steps, as in Slim (2020), Sec. 3.2 and Table 1. The
synthetic settings cross:

* fixed dataset (the same ``S`` samples every epoch) vs on-the-fly
  generation (``S`` new samples every epoch), ``S`` = the size of the real
  training split, both through :class:`~gan_postproc.runs.synthetic.SyntheticDataset`;
* data transformations: random crop after 1 pixel of padding (the digits
  analogue of CIFAR's 4 of 32 pixels); horizontal flips only with ``--flip``,
  since a mirrored digit is often another glyph (the paper flips CIFAR images);
* sample filtering: ``classifier_filter`` with the shipped normally trained
  digits classifier, ``p_t = 0.9``;
* truncated normal latents, ``psi = 1.5``, through the ``truncation`` sampler
  when one is registered (otherwise those columns are left out, and the
  output says so).

Every setting runs for each seed with the same seed for the synthetic data
and the classifier's initialisation; the table gives mean and standard
deviation over seeds of the final test accuracy and of the best test
accuracy over the epochs (the paper's "best accuracy over the whole training
session").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from gan_postproc import rng
from gan_postproc.bench.report import describe_run, format_table, machine_info
from gan_postproc.classifier_training import classifier_accuracy
from gan_postproc.defaults import DEFAULTS
from gan_postproc.errors import InputError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.chain import Chain
from gan_postproc.pipeline.sampler import LatentSampler
from gan_postproc.pipeline.scoring import Classifier
from gan_postproc.plugin_system.registry import get_registry
from gan_postproc.plugins.classifier_guided import ClassifierFilter
from gan_postproc.plugins.truncation import DEFAULTS as TRUNCATION_DEFAULTS
from gan_postproc.runs.synthetic import SyntheticDataset, random_crop, random_flip

NAME = "synthetic_training"
HELP = "Slim (2020) Table 1 in miniature: a digits classifier trained on synthetic data (fixed / on-the-fly, transforms, filtering, truncation) vs real data"

@dataclass(frozen=True)
class Setting:
    """One column of Table 1: where the training data comes from and how it is treated."""

    source: str  # "fixed", "on-the-fly" or "real"
    transforms: bool = False
    filtering: bool = False
    truncation: bool = False

    @property
    def name(self) -> str:
        parts = [self.source] + [flag for flag, on in (("transforms", self.transforms), ("filtering", self.filtering), ("truncation", self.truncation)) if on]
        return "+".join(parts)


def table1_settings(with_truncation: bool) -> list[Setting]:
    """The twelve synthetic columns of Table 1 (eight without truncation) and the real-data baselines.

    The paper's baseline trains on augmented real data; the plain real-data
    run is added because on 8x8 digits the crop changes more than on CIFAR.
    """
    combos = [(False, False, False), (True, False, False), (False, True, False), (False, False, True), (True, True, False), (True, True, True)]
    settings = [
        Setting(source, transforms, filtering, truncation)
        for source in ("fixed", "on-the-fly")
        for transforms, filtering, truncation in combos
        if with_truncation or not truncation
    ]
    return settings + [Setting("real", transforms=True), Setting("real")]


@dataclass(frozen=True)
class Training:
    """How every classifier is trained (the same for every setting)."""

    epochs: int
    samples_per_epoch: int
    batch_size: int = DEFAULTS.train_batch_size
    generation_batch_size: int = 512
    #: Twice ``DEFAULTS.train_lr``: the table trains for few epochs so that it runs in minutes.
    lr: float = 2 * DEFAULTS.train_lr
    crop_padding: int = 1
    flip: bool = False


def truncation_sampler(psi: float = TRUNCATION_DEFAULTS.truncation_psi) -> LatentSampler | None:
    """The registered ``truncation`` sampler at ``psi``, or ``None`` if no plugin provides one."""
    registry = get_registry()
    if "truncation" not in registry.names("sampler"):
        return None
    return registry.create("sampler", "truncation", psi=psi)


def synthetic_chain(adapter: Adapter, setting: Setting, filter_classifier: Classifier, truncation: LatentSampler | None, batch_size: int) -> Chain:
    """The chain a synthetic setting draws from: prior or truncated latents, optionally filtered."""
    if setting.truncation and truncation is None:
        raise InputError("this setting needs a truncation sampler, and none is registered")
    proposal = truncation if setting.truncation else None
    sampler = ClassifierFilter(filter_classifier, proposal=proposal) if setting.filtering else proposal
    return Chain(adapter, sampler, batch_size=batch_size)


def _real_batches(images: torch.Tensor, labels: torch.Tensor, training: Training, transforms: bool, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of the real training split: seeded order, the same transforms as the synthetic data."""
    indices = torch.arange(len(images))
    order = torch.argsort(rng.uniform(seed, indices, (), "real_order", epoch, dtype=torch.float64))
    for rows in order.split(training.batch_size):
        x = images[rows]
        if transforms:
            x = random_crop(x, rows, seed, training.crop_padding, epoch)
            x = random_flip(x, rows, seed, epoch) if training.flip else x
        yield x, labels[rows]


def train_and_test(
    model: nn.Module, epoch_batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]], test: tuple[torch.Tensor, torch.Tensor], training: Training
) -> dict[str, float]:
    """Adam on cross-entropy for ``training.epochs`` epochs; test accuracy after every epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=training.lr)
    history = []
    model.train()
    steps = 0
    for epoch in range(training.epochs):
        for images, labels in epoch_batches(epoch):
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        history.append(classifier_accuracy(model, *test))
        model.train()
    return {"final": history[-1], "best": max(history), "steps": steps}


def run_setting(
    setting: Setting,
    seed: int,
    *,
    adapter: Adapter,
    filter_classifier: Classifier,
    truncation: LatentSampler | None,
    make_model: Callable[[], nn.Module],
    real_train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    training: Training,
) -> dict[str, float]:
    """Train one classifier for ``setting`` and ``seed``; return its test accuracies and cost."""
    torch.manual_seed(seed)
    model = make_model()
    start = time.perf_counter()
    if setting.source == "real":

        def epoch_batches(epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
            return _real_batches(*real_train, training, setting.transforms, seed, epoch)

    else:
        chain = synthetic_chain(adapter, setting, filter_classifier, truncation, training.generation_batch_size)
        dataset = SyntheticDataset(
            chain,
            training.samples_per_epoch,
            seed=seed,
            fresh=setting.source == "on-the-fly",
            crop_padding=training.crop_padding if setting.transforms else 0,
            flip=training.flip and setting.transforms,
            batch_size=training.batch_size,
        )

        def epoch_batches(epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
            dataset.set_epoch(epoch)
            return DataLoader(dataset, batch_size=None, num_workers=0)

    result = train_and_test(model, epoch_batches, test, training)
    result["seconds"] = time.perf_counter() - start
    return result


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return mean, std


def run_table(settings: Sequence[Setting], seeds: Sequence[int], **models: Any) -> list[dict[str, Any]]:
    """Every setting for every seed; one summary row per setting (accuracies in percent)."""
    rows = []
    for setting in settings:
        results = [run_setting(setting, seed, **models) for seed in seeds]
        final, best = _mean_std([100 * r["final"] for r in results]), _mean_std([100 * r["best"] for r in results])
        rows.append(
            {
                "setting": setting.name,
                "data": setting.source,
                "transforms": "yes" if setting.transforms else "-",
                "filtering": "yes" if setting.filtering else "-",
                "truncation": "yes" if setting.truncation else "-",
                "acc_final": final[0],
                "acc_final_std": final[1],
                "acc_best": best[0],
                "acc_best_std": best[1],
                "steps": results[0]["steps"],
                "seconds_per_run": sum(r["seconds"] for r in results) / len(results),
                "per_seed_final": [100 * r["final"] for r in results],
            }
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (data and classifier initialisation)")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs per classifier")
    parser.add_argument("--width", type=int, default=16, help="channels of the trained classifier's first layer (the shipped one has 32)")
    parser.add_argument("--flip", action="store_true", help="add horizontal flips to the transforms (the paper's CIFAR setting)")
    parser.add_argument("--quick", action="store_true", help="one seed, 3 epochs: a smoke run")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gan_postproc.models.digits import DigitsClassifier, digits_adapter, digits_classifier, digits_dataset

    torch.set_num_threads(1)
    seeds = args.seeds[:1] if args.quick else args.seeds
    real_train, test = digits_dataset("train"), digits_dataset("test")
    training = Training(epochs=3 if args.quick else args.epochs, samples_per_epoch=len(real_train[0]), flip=args.flip)
    truncation = truncation_sampler()
    settings = table1_settings(with_truncation=truncation is not None)
    print(
        describe_run(
            "Slim (2020) Table 1 in miniature: test accuracy (%) on the real digits test split of a classifier trained on synthetic data",
            f"shipped conditional digits GAN; filter: shipped digits classifier, p_t=0.9; classifier trained: DigitsClassifier "
            f"(width {args.width}, fresh), Adam lr {training.lr}, {training.epochs} epochs x {training.samples_per_epoch} samples, batch {training.batch_size}; "
            f"transforms: crop (pad {training.crop_padding})" + (" + horizontal flip" if training.flip else "") + "; test: 450 real images",
            training.samples_per_epoch,
            seeds,
        )
    )
    if truncation is None:
        print("truncation: no 'truncation' sampler is registered, so the truncated-normal columns are left out")
    rows = run_table(
        settings,
        seeds,
        adapter=digits_adapter(conditional=True, classifier=None),
        filter_classifier=digits_classifier(robust=False),
        truncation=truncation,
        make_model=lambda: DigitsClassifier(width=args.width),
        real_train=real_train,
        test=test,
        training=training,
    )
    columns = ["data", "transforms", "filtering", "truncation", "acc_final", "acc_final_std", "acc_best", "acc_best_std", "steps", "seconds_per_run"]
    print(format_table(rows, columns))
    return {"benchmark": NAME, "machine": machine_info(), "seeds": list(seeds), "training": asdict(training), "rows": rows}
