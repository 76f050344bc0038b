"""SampleBatch keeps every per-sample field in step."""

from __future__ import annotations

import pytest
import torch

from gan_postproc import SampleBatch
from gan_postproc.errors import InputError


def _batch(n: int = 5, offset: int = 0) -> SampleBatch:
    return SampleBatch(
        images=torch.arange(n * 2, dtype=torch.float32).reshape(n, 2) / 100 + offset,
        latents=torch.randn(n, 3),
        labels=torch.arange(n) % 2,
        indices=torch.arange(offset, offset + n),
        scores={"d": torch.arange(n, dtype=torch.float32)},
        provenance={"generator": torch.zeros(n, dtype=torch.int64)},
    )


def test_length_and_select_keep_fields_aligned():
    batch = _batch()
    assert len(batch) == 5
    picked = batch.select(torch.tensor([4, 0]))
    assert picked.indices.tolist() == [4, 0]
    assert picked.scores["d"].tolist() == [4.0, 0.0]
    assert torch.equal(picked.images[0], batch.images[4])
    masked = batch.select(batch.labels == 1)
    assert masked.indices.tolist() == [1, 3]


def test_cat_concatenates_every_field():
    merged = SampleBatch.cat([_batch(3), _batch(2, offset=3)])
    assert merged.indices.tolist() == [0, 1, 2, 3, 4]
    assert merged.scores["d"].tolist() == [0, 1, 2, 0, 1]
    assert merged.provenance["generator"].shape == (5,)


def test_inconsistent_lengths_are_refused():
    with pytest.raises(InputError, match="same length"):
        SampleBatch(images=torch.zeros(3, 2), labels=torch.zeros(2, dtype=torch.int64))
    with pytest.raises(InputError, match="same length"):
        _batch().with_scores(extra=torch.zeros(4))


def test_cat_refuses_mismatched_layouts():
    with pytest.raises(InputError, match="same fields"):
        SampleBatch.cat([_batch(2), _batch(2).replace(scores={})])
    with pytest.raises(InputError, match="at least one"):
        SampleBatch.cat([])


def test_replace_returns_a_new_batch_and_leaves_the_old_one():
    batch = _batch()
    changed = batch.replace(images=batch.images * 0)
    assert float(batch.images.abs().sum()) > 0
    assert float(changed.images.abs().sum()) == 0
    with pytest.raises(Exception):
        batch.images = None  # frozen
