"""SyntheticDataset: deterministic per seed and worker, works with DataLoader, fresh vs fixed epochs, transforms."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from gan_postproc import Chain, SampleBatch
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.plugins.classifier_guided.classifier_filter import ClassifierFilter
from gan_postproc.runs.synthetic import SyntheticDataset, batch_labels, random_crop, random_flip

from ..helpers import toy_classes as toy


def _dataset(bare_pm, samples=120, batch_size=16, **options) -> SyntheticDataset:
    chain = Chain(toy.conditional_adapter(), batch_size=batch_size, plugin_manager=bare_pm)
    return SyntheticDataset(chain, samples, **options)


def _collect(dataset, num_workers):
    images, labels = zip(*DataLoader(dataset, batch_size=None, num_workers=num_workers))
    return torch.cat(images), torch.cat(labels)


def _canonical(images, labels):
    """Rows sorted by a fixed projection, so epochs can be compared as sets of samples."""
    key = images.flatten(1) @ torch.linspace(1, 2, images[0].numel()) + 100 * labels
    order = torch.argsort(key)
    return images[order], labels[order]


def test_deterministic_per_seed_and_the_same_samples_with_0_or_2_workers(bare_pm):
    dataset = _dataset(bare_pm, seed=3, crop_padding=1, flip=True)
    single_images, single_labels = _collect(dataset, 0)
    assert single_images.shape == (120, 1, 4, 4) and single_labels.shape == (120,)
    again = _collect(dataset, 0)
    assert torch.equal(single_images, again[0]) and torch.equal(single_labels, again[1])
    two_workers = _collect(dataset, 2)
    a, b = _canonical(single_images, single_labels), _canonical(*two_workers)
    assert torch.equal(a[1], b[1]) and torch.allclose(a[0], b[0], atol=1e-6)
    other_seed = _collect(_dataset(bare_pm, seed=4), 0)
    assert not torch.allclose(_canonical(*other_seed)[0], a[0])


def test_workers_get_disjoint_ranges_covering_the_epoch(bare_pm):
    dataset = _dataset(bare_pm, samples=50)
    epoch = dataset.epoch_indices()
    assert sorted(epoch.tolist()) == list(range(50))
    parts = torch.tensor_split(epoch, 3)
    assert sum(len(p) for p in parts) == 50 and len(set(torch.cat(parts).tolist())) == 50


def test_fresh_epochs_bring_new_samples_and_fixed_epochs_the_same(bare_pm):
    fresh = _dataset(bare_pm, samples=64)
    first = _canonical(*_collect(fresh, 0))
    fresh.set_epoch(1)
    assert sorted(fresh.epoch_indices().tolist()) == list(range(64, 128))
    assert not torch.allclose(_canonical(*_collect(fresh, 0))[0], first[0])
    fixed = _dataset(bare_pm, samples=64, fresh=False)
    fixed.set_epoch(1)
    second = _canonical(*_collect(fixed, 0))
    assert torch.equal(first[1], second[1]) and torch.allclose(first[0], second[0], atol=1e-6)


def test_a_fixed_dataset_is_generated_once_and_kept(bare_pm):
    fixed = _dataset(bare_pm, samples=64, fresh=False, crop_padding=1)
    first = _collect(fixed, 0)
    proposals = fixed.chain.sampler.stats.proposals
    assert proposals == 64
    fixed.set_epoch(1)
    second = _collect(fixed, 0)
    assert fixed.chain.sampler.stats.proposals == proposals  # nothing generated again
    assert not torch.equal(first[0], second[0])  # new order and new crops
    # Two workers each generate and keep their own part: the same samples.
    single = _canonical(*_collect(_dataset(bare_pm, samples=64, fresh=False), 0))
    two = _canonical(*_collect(_dataset(bare_pm, samples=64, fresh=False), 2))
    assert torch.equal(single[1], two[1]) and torch.allclose(single[0], two[0], atol=1e-6)


def test_images_match_the_chain_with_transforms_keyed_by_index(bare_pm):
    dataset = _dataset(bare_pm, samples=40, batch_size=40, seed=1, crop_padding=1, flip=True)
    dataset.set_epoch(2)
    images, labels = next(iter(dataset))
    indices = dataset.epoch_indices()
    batch = next(dataset.chain.iter_indices(indices, seed=1))
    expected = random_flip(random_crop(batch.images, indices, 1, 1, epoch=2), indices, 1, epoch=2)
    assert torch.equal(labels, batch.labels) and torch.allclose(images, expected)


def test_flip_and_crop():
    images = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3) / 17 * 2 - 1
    indices = torch.arange(2)
    flips = [random_flip(images, indices, seed, 0) for seed in range(20)]
    assert any(torch.equal(f[0], images[0].flip(-1)) for f in flips) and any(torch.equal(f[0], images[0]) for f in flips)
    crops = [random_crop(images, indices, seed, 1) for seed in range(40)]
    assert all(c.shape == images.shape for c in crops)
    # A crop is a shifted window of the image padded with the range minimum (-1).
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), value=-1.0)
    windows = {(dy, dx): padded[:, :, dy : dy + 3, dx : dx + 3] for dy in range(3) for dx in range(3)}
    for crop in crops:
        for row in range(2):
            assert any(torch.equal(crop[row], w[row]) for w in windows.values())
    assert len({tuple(c[0].flatten().tolist()) for c in crops}) > 3
    assert torch.equal(random_crop(images, indices, 0, 0), images)


def test_pseudo_labels_of_an_unconditional_generator_with_filtering(bare_pm):
    chain = Chain(toy.unconditional_adapter(), ClassifierFilter(toy.classifier()), batch_size=32, plugin_manager=bare_pm)
    images, labels = _collect(SyntheticDataset(chain, 64), 0)
    assert labels.shape == (64,) and set(labels.tolist()) <= {0, 1, 2}


def test_a_chain_without_labels_is_refused_when_iterated(bare_pm):
    chain = Chain(toy.unconditional_adapter(), plugin_manager=bare_pm)
    with pytest.raises(InputError, match="carry no labels"):
        next(iter(SyntheticDataset(chain, 8)))
    with pytest.raises(InputError, match="carry no labels"):
        batch_labels(SampleBatch(images=torch.zeros(2, 1, 4, 4)))


def test_bad_arguments_are_refused(bare_pm):
    chain = Chain(toy.conditional_adapter(), plugin_manager=bare_pm)
    with pytest.raises(InputTypeError, match="chain must be a gan_postproc.Chain"):
        SyntheticDataset(toy.conditional_adapter(), 10)
    with pytest.raises(InputError, match="samples_per_epoch"):
        SyntheticDataset(chain, 0)
    with pytest.raises(InputError, match="crop_padding"):
        SyntheticDataset(chain, 10, crop_padding=-1)
    with pytest.raises(InputError, match="epoch"):
        SyntheticDataset(chain, 10).set_epoch(-1)


def test_trains_a_classifier_with_a_standard_loop(bare_pm):
    torch.manual_seed(0)
    dataset = _dataset(bare_pm, samples=256, batch_size=32)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for images, labels in DataLoader(dataset, batch_size=None, num_workers=0):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            grads = torch.autograd.grad(loss, list(model.parameters()))
            with torch.no_grad():
                for parameter, grad in zip(model.parameters(), grads):
                    parameter -= 0.5 * grad
    test = Chain(toy.conditional_adapter(), plugin_manager=bare_pm).sample(300, seed=99)
    accuracy = float((model(test.images).argmax(1) == test.labels).float().mean())
    assert accuracy > 0.9


def test_yielded_batches_need_not_match_the_chains_batches(bare_pm):
    chain = Chain(toy.conditional_adapter(), batch_size=50, plugin_manager=bare_pm)
    for fresh in (True, False):
        dataset = SyntheticDataset(chain, 130, fresh=fresh, batch_size=32)
        sizes = [len(labels) for _, labels in DataLoader(dataset, batch_size=None)]
        assert sizes == [32, 32, 32, 32, 2]
        reference = _canonical(*_collect(SyntheticDataset(chain, 130, fresh=fresh), 0))
        assert torch.allclose(_canonical(*_collect(dataset, 0))[0], reference[0], atol=1e-6)
    with pytest.raises(InputError, match="batch_size"):
        SyntheticDataset(chain, 10, batch_size=0)
