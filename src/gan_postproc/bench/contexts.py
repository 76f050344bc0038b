"""The suites' contexts: shipped models and real data, and how samples are measured.

Real data has two roles kept apart: methods fit on ``context.real_data``
(digits: the train split; toy2d: points drawn with seeds below 10 000), and
samples are measured against held-out data (digits: the test split, through
the independent feature network; toy2d: points drawn with seed 10 000 + the
evaluation seed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..errors import InputError
from ..pipeline.batch import SampleBatch
from ..pipeline.scoring import Classifier
from .setups import BenchmarkContext

__all__ = ["TOY2D_DATASETS", "EVAL_SEED_OFFSET", "toy2d_context", "toy2d_evaluator", "digits_context", "digits_evaluator"]

TOY2D_DATASETS = ("25gaussians", "swissroll")
#: Reference points for measuring use seeds from here on; methods fit on seeds below it.
EVAL_SEED_OFFSET = 10_000


def toy2d_context(dataset: str, *, seed: int = 0) -> BenchmarkContext:
    """The DOT paper's pretrained 2-D WGAN-GP generator and critic for ``dataset``."""
    from ..models.toy2d import sample_toy2d_real, toy2d_adapter

    def real_data(n: int, data_seed: int) -> torch.Tensor:
        if data_seed >= EVAL_SEED_OFFSET:
            raise InputError(f"real-data seeds >= {EVAL_SEED_OFFSET} are reserved for measuring; methods must fit on others")
        return sample_toy2d_real(dataset, n, seed=data_seed)

    return BenchmarkContext(suite="toy2d", dataset=dataset, adapter=toy2d_adapter(dataset), conditional_adapter=None,
                            real_data=real_data, seed=seed)


def toy2d_evaluator(dataset: str, n: int) -> Callable[[SampleBatch, int], dict[str, float | None]]:
    """``evaluate(batch, seed)``: exact EMD between the samples and ``n`` fresh real points."""
    from ..metrics import emd
    from ..models.toy2d import sample_toy2d_real

    def evaluate(batch: SampleBatch, seed: int) -> dict[str, float | None]:
        real = sample_toy2d_real(dataset, n, seed=EVAL_SEED_OFFSET + seed)
        return {"emd": emd(batch.images.cpu(), real)}

    return evaluate


def digits_context(*, quick: bool = False, seed: int = 0) -> BenchmarkContext:
    """The shipped digits GANs (unconditional and conditional) and classifiers."""
    from ..models.digits import digits_adapter, digits_classifier, digits_dataset

    train_images, _ = digits_dataset("train")

    def real_data(n: int, data_seed: int) -> torch.Tensor:
        if n > len(train_images):
            raise InputError(f"the digits train split has {len(train_images)} images, {n} were asked for")
        order = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(data_seed))
        return train_images[order[:n]]

    models: dict[str, Any] = {"classifier": digits_classifier(robust=False), "robust_classifier": digits_classifier(robust=True)}
    return BenchmarkContext(
        suite="demo" if quick else "digits",
        dataset="digits",
        adapter=digits_adapter(conditional=False, classifier="normal"),
        conditional_adapter=digits_adapter(conditional=True, classifier="normal"),
        real_data=real_data,
        models=models,
        seed=seed,
        quick=quick,
    )


def digits_evaluator() -> Callable[[SampleBatch, int], dict[str, float | None]]:
    """``evaluate(batch, seed)`` on the digits test split with the independent feature network:
    FID, KID, precision, recall, density, coverage, and the class-balance KL of the feature
    network's own predicted labels (a classifier no method is guided by)."""
    from ..metrics import SampleEvaluator
    from ..models.digits import DIGITS_NUM_CLASSES, digits_dataset, digits_feature_extractor, load_digits_feature_net

    test_images, _ = digits_dataset("test")
    independent = Classifier(load_digits_feature_net(), DIGITS_NUM_CLASSES)
    evaluator = SampleEvaluator(digits_feature_extractor(), test_images, classifier=independent)

    def evaluate(batch: SampleBatch, seed: int) -> dict[str, float | None]:
        evaluator.reset()
        evaluator.update(batch.images.cpu())
        return dict(evaluator.compute())

    return evaluate
