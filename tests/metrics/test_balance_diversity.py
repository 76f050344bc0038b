"""Class balance KL (CBGAN) and intra-class SSIM / MS-SSIM diversity (Slim paper)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_postproc import Classifier
from gan_postproc.errors import InputError
from gan_postproc.metrics import (
    ClassBalance,
    IntraClassDiversity,
    balance_kl,
    class_histogram,
    intra_class_diversity,
    pair_similarity,
)


def test_balance_kl_matches_a_hand_computed_value() -> None:
    labels = torch.tensor([0, 0, 0, 1, 2, 2])  # p_hat = (1/2, 1/6, 1/3, 0)
    e = 1e-5
    p = [1 / 2, 1 / 6, 1 / 3, 0.0]
    by_hand = sum((pk + e) * math.log((pk + e) / (0.25 + e)) for pk in p)
    assert balance_kl(labels, 4) == pytest.approx(by_hand, rel=1e-12)
    assert balance_kl(torch.arange(8) % 4, 4) == 0.0
    assert torch.allclose(class_histogram(labels, 4), torch.tensor(p, dtype=torch.float64))


def test_balance_kl_to_an_arbitrary_target() -> None:
    labels = torch.tensor([0, 0, 0, 1])
    target = [0.75, 0.25]
    assert balance_kl(labels, 2, target=target) == 0.0
    e = 1e-5
    by_hand = (0.75 + e) * math.log((0.75 + e) / (0.5 + e)) + (0.25 + e) * math.log((0.25 + e) / (0.5 + e))
    assert balance_kl(labels, 2, target=[0.5, 0.5]) == pytest.approx(by_hand, rel=1e-12)
    with pytest.raises(InputError, match="must sum to 1"):
        balance_kl(labels, 2, target=[0.5, 0.6])
    with pytest.raises(InputError, match="2 weights"):
        balance_kl(labels, 2, target=[1.0])


def test_class_balance_with_a_classifier_streams_like_the_functional() -> None:
    torch.manual_seed(0)
    classifier = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval(), num_classes=10)
    images = torch.rand(300, 1, 8, 8) * 2 - 1
    metric = ClassBalance(classifier=classifier)  # num_classes taken from the classifier
    for chunk in images.split(64):
        metric.update(chunk)
    with torch.no_grad():
        predicted = classifier(images).argmax(1)
    assert metric.compute() == balance_kl(predicted, 10)
    assert torch.equal(metric.histogram(), class_histogram(predicted, 10))
    labels_only = ClassBalance(10)
    labels_only.update(predicted)
    assert labels_only.compute() == metric.compute()
    metric.reset()
    with pytest.raises(InputError, match="at least one labelled sample"):
        metric.compute()


def test_class_balance_bad_inputs() -> None:
    with pytest.raises(InputError, match="pass num_classes"):
        ClassBalance()
    metric = ClassBalance(3)
    with pytest.raises(InputError, match=r"lie in \[0, 2\]"):
        metric.update(torch.tensor([0, 3]))
    with pytest.raises(InputError, match="looks one-hot"):
        metric.update(torch.eye(3))
    with pytest.raises(InputError, match="integer tensor"):
        metric.update(torch.tensor([0.0, 1.0]))
    with_classifier = ClassBalance(5, classifier=nn.Sequential(nn.Flatten(), nn.Linear(4, 3)))
    with pytest.raises(InputError, match="returned 3 scores per sample but num_classes is 5"):
        with_classifier.update(torch.zeros(2, 4))
    training = ClassBalance(3, classifier=nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5)))
    with pytest.raises(InputError, match="Dropout layer .* in training mode"):
        training.update(torch.zeros(2, 4))


def _digits(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_ssim_of_identical_images_is_one_and_of_different_images_lower() -> None:
    x = _digits(6, 0)
    assert torch.allclose(pair_similarity(x, x.clone()), torch.ones(6), atol=1e-5)
    assert bool((pair_similarity(x, _digits(6, 1)) < 0.9).all())
    big = torch.rand(1, 1, 161, 161, generator=torch.Generator().manual_seed(2)) * 2 - 1
    assert torch.allclose(pair_similarity(big, big.clone(), kind="ms_ssim"), torch.ones(1), atol=1e-5)
    pair = torch.cat([big, big.flip(-1)])
    result = intra_class_diversity(pair, torch.tensor([0, 0]), 1)  # 161 px > 160: MS-SSIM is chosen
    assert (result.kind, result.win_size, result.pairs) == ("ms_ssim", 11, {0: 1})
    assert result.mean < 0.9


def test_window_and_kind_are_chosen_by_image_size_or_refused_clearly() -> None:
    images = torch.cat([_digits(4, 3), _digits(4, 3)])  # two copies: pairs (0,1), (2,3) differ; class 1 repeats
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    result = intra_class_diversity(images, labels, 2)
    assert (result.kind, result.win_size) == ("ssim", 7)
    with pytest.raises(InputError, match="MS-SSIM with a 11-px window needs images larger than 160 px"):
        intra_class_diversity(images, labels, 2, kind="ms_ssim")
    with pytest.raises(InputError, match=r"window \(9 px\) must fit in the image \(8 px\)"):
        intra_class_diversity(images, labels, 2, win_size=9)
    with pytest.raises(InputError, match="must be odd"):
        intra_class_diversity(images, labels, 2, win_size=4)
    with pytest.raises(InputError, match="kind must be"):
        intra_class_diversity(images, labels, 2, kind="lpips")
    assert intra_class_diversity(images, labels, 2, win_size=3).win_size == 3


def test_intra_class_similarity_pairs_consecutive_images_per_class() -> None:
    a, b = _digits(3, 4), _digits(3, 5)
    # class 0: identical pairs (similarity 1); class 1: unrelated pairs
    images = torch.stack([a[0], a[0], b[0], a[1], a[1], b[1], b[2], a[2]])
    labels = torch.tensor([0, 0, 1, 0, 0, 1, 1, 1])
    result = intra_class_diversity(images, labels, 3, pairs_per_class=5)
    assert result.pairs == {0: 2, 1: 2}
    assert result.per_class[0] == pytest.approx(1.0, abs=1e-5)
    expected_1 = pair_similarity(torch.stack([b[0], b[2]]), torch.stack([b[1], a[2]])).mean().item()
    assert result.per_class[1] == pytest.approx(expected_1, rel=1e-5)
    assert result.mean == pytest.approx((1.0 + expected_1) / 2, rel=1e-5)
    assert intra_class_diversity(images, labels, 3, pairs_per_class=1).pairs == {0: 1, 1: 1}


def test_intra_class_diversity_streams_like_one_batch() -> None:
    images = _digits(90, 6)
    labels = torch.arange(90) % 4
    whole = intra_class_diversity(images, labels, 4, pairs_per_class=7)
    metric = IntraClassDiversity(4, pairs_per_class=7)
    for chunk_images, chunk_labels in zip(images.split(13), labels.split(13), strict=True):
        metric.update(chunk_images, chunk_labels)
    streamed = metric.compute()
    assert streamed.pairs == whole.pairs == {c: 7 for c in range(4)}
    for c in range(4):
        assert streamed.per_class[c] == pytest.approx(whole.per_class[c], rel=1e-5)


def test_intra_class_diversity_labels_from_a_classifier_and_errors() -> None:
    torch.manual_seed(1)
    classifier = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval(), num_classes=3)
    images = _digits(40, 7)
    metric = IntraClassDiversity(classifier=classifier, pairs_per_class=3)
    metric.update(images)
    with torch.no_grad():
        predicted = classifier(images).argmax(1)
    assert metric.compute().per_class == intra_class_diversity(images, predicted, 3, pairs_per_class=3).per_class
    with pytest.raises(InputError, match="pass labels"):
        IntraClassDiversity(3).update(images)
    with pytest.raises(InputError, match="no class has two images"):
        intra_class_diversity(images[:2], torch.tensor([0, 1]), 2)
    with pytest.raises(InputError, match="4 dimensions"):
        intra_class_diversity(torch.zeros(4, 2), torch.tensor([0, 0, 1, 1]), 2)
    with pytest.raises(InputError, match="one label per sample"):
        intra_class_diversity(images, predicted[:5], 3)
