"""SampleEvaluator: streaming equals one batch, equals the functional metrics, keeps real features across resets."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from gan_postproc import Classifier
from gan_postproc.errors import InputError
from gan_postproc.metrics import ModuleFeatures, SampleEvaluator, balance_kl, extract_features, fid, kid, prdc

KEYS = {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "balance_kl", "label_accuracy", "n"}


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0  # [0, 16] -> [-1, 1]
    return images, torch.tensor(data.target)


def _networks() -> tuple[nn.Module, Classifier]:
    torch.manual_seed(0)
    features = ModuleFeatures(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 12)).eval())
    classifier = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval(), num_classes=10)
    return features, classifier


def _generated(n: int, seed: int) -> torch.Tensor:
    images, _ = _digits()
    g = torch.Generator().manual_seed(seed)
    picked = images[torch.randint(0, len(images), (n,), generator=g)]
    return (picked + 0.3 * torch.randn(picked.shape, generator=g)).clamp(-1, 1)


def test_streaming_equals_one_batch_and_the_functional_metrics() -> None:
    real, _ = _digits()
    real = real[:400]
    features, classifier = _networks()
    fake = _generated(300, seed=1)
    labels = torch.arange(300) % 10
    one = SampleEvaluator(features, real, classifier=classifier, kid_subsets=5, k=3)
    one.update(fake, labels)
    whole = one.compute()
    streamed = SampleEvaluator(features, real, classifier=classifier, kid_subsets=5, k=3)
    for images, chunk_labels in zip(fake.split(37), labels.split(37), strict=True):
        streamed.update(images, chunk_labels)
    result = streamed.compute()
    assert set(result) == KEYS and result["n"] == 300
    for key in KEYS:
        assert result[key] == pytest.approx(whole[key], rel=1e-6, abs=1e-9), key

    real_f, fake_f = extract_features(features, real), extract_features(features, fake)
    assert result["fid"] == pytest.approx(fid(real_f, fake_f), rel=1e-6)
    assert (result["kid"], result["kid_std"]) == pytest.approx(kid(real_f, fake_f, subsets=5), rel=1e-6)
    for key, value in prdc(real_f, fake_f, k=3).items():
        assert result[key] == pytest.approx(value, rel=1e-6), key
    with torch.no_grad():
        predicted = classifier(fake).argmax(1)
    assert result["balance_kl"] == balance_kl(predicted, 10)
    assert result["label_accuracy"] == pytest.approx(float((predicted == labels).float().mean()))


def test_reset_keeps_the_real_features_and_matches_a_fresh_evaluator() -> None:
    real, _ = _digits()
    features, _ = _networks()
    evaluator = SampleEvaluator(features, real[:200], kid_subsets=3)
    evaluator.update(_generated(50, seed=2))
    evaluator.reset()
    assert evaluator.n == 0
    fresh = SampleEvaluator(features, real[:200], kid_subsets=3)
    for e in (evaluator, fresh):
        e.update(_generated(80, seed=3))
    assert evaluator.compute() == pytest.approx(fresh.compute())
    assert fresh.compute()["balance_kl"] is None and fresh.compute()["label_accuracy"] is None


def test_two_dimensional_points_are_measured_directly() -> None:
    g = torch.Generator().manual_seed(4)
    real, fake = torch.randn(200, 2, generator=g), torch.randn(150, 2, generator=g) * 1.5
    evaluator = SampleEvaluator(None, real, kid_subsets=4)
    evaluator.update(fake[:70])
    evaluator.update(fake[70:])
    result = evaluator.compute()
    assert result["fid"] == pytest.approx(fid(real, fake), rel=1e-6)
    assert {k: result[k] for k in ("precision", "recall", "density", "coverage")} == prdc(real, fake)


def test_bad_inputs_give_clear_errors() -> None:
    real, _ = _digits()
    features, classifier = _networks()
    evaluator = SampleEvaluator(features, real[:100], classifier=classifier)
    with pytest.raises(InputError, match="before any update"):
        evaluator.compute()
    with pytest.raises(InputError, match=r"real set's shape \[N, 1, 8, 8\]"):
        evaluator.update(torch.zeros(4, 1, 16, 16))
    with pytest.raises(InputError, match="one label per sample"):
        evaluator.update(torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.long))
    assert evaluator.n == 0  # nothing was added by the failed updates
    with pytest.raises(InputError, match="build the evaluator with classifier="):
        SampleEvaluator(features, real[:100]).update(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(InputError, match="real_images holds 4 samples but at least 6"):
        SampleEvaluator(features, real[:4])
    evaluator.update(torch.zeros(3, 1, 8, 8))
    with pytest.raises(InputError, match="the generated set holds 3 samples but at least 6"):
        evaluator.compute()
    with pytest.raises(InputError, match="pass num_classes"):
        SampleEvaluator(features, real[:100], classifier=nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))
