"""Input checks: each error says what was expected and what came."""

from __future__ import annotations

import math

import pytest
import torch

from gan_postproc import validation as v
from gan_postproc.errors import InputError, InputTypeError


def test_counts():
    assert v.check_count(3, "n") == 3
    assert v.check_count(torch.tensor(2), "n") == 2
    with pytest.raises(InputError, match="n must be an integer >= 1, got 0"):
        v.check_count(0, "n")
    with pytest.raises(InputError, match="got -5"):
        v.check_count(-5, "n")
    with pytest.raises(InputTypeError, match="got 2.5"):
        v.check_count(2.5, "n")
    with pytest.raises(InputTypeError):
        v.check_count(True, "n")


def test_positive_and_probability():
    assert v.check_positive(0.5, "eps") == 0.5
    for bad in (0, -1.0, math.inf, math.nan):
        with pytest.raises(InputError, match="eps"):
            v.check_positive(bad, "eps")
    assert v.check_probability(1.0, "p") == 1.0
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        v.check_probability(1.0, "p", open_high=True)
    with pytest.raises(InputError):
        v.check_probability(-0.1, "p")


def test_tensor_shape_dtype_finite_and_range():
    x = torch.zeros(2, 3)
    assert v.check_tensor(x, "x", shape=(None, 3)) is x
    with pytest.raises(InputError, match=r"shape \[\*, 4\], got shape \(2, 3\)"):
        v.check_tensor(x, "x", shape=(None, 4))
    with pytest.raises(InputError, match="3 dimensions"):
        v.check_tensor(x, "x", ndim=3)
    with pytest.raises(InputError, match="empty"):
        v.check_tensor(torch.zeros(0, 3), "x")
    with pytest.raises(InputTypeError, match="torch.Tensor"):
        v.check_tensor([1, 2], "x")
    with pytest.raises(InputError, match="floating-point"):
        v.check_tensor(torch.zeros(2, dtype=torch.int64), "x", floating=True)
    bad = torch.tensor([0.0, math.nan, math.inf])
    with pytest.raises(InputError, match="2 NaN/inf values"):
        v.check_finite(bad, "x")
    with pytest.raises(InputError, match=r"\[-1, 1\], got values in \[0, 2\]"):
        v.check_in_range(torch.tensor([0.0, 2.0]), "x", (-1, 1))
    v.check_in_range(torch.tensor([50.0]), "x", None)


def test_labels():
    assert v.check_labels(torch.tensor([0, 2]), "y", num_classes=3).tolist() == [0, 2]
    with pytest.raises(InputError, match=r"\[0, 2\].*got values in \[0, 3\]"):
        v.check_labels(torch.tensor([0, 3]), "y", num_classes=3)
    with pytest.raises(InputError, match="one-hot"):
        v.check_labels(torch.eye(3), "y", num_classes=3)
    with pytest.raises(InputError, match="unconditional"):
        v.check_labels(torch.tensor([0]), "y", num_classes=None)
    with pytest.raises(InputError, match="integer"):
        v.check_labels(torch.tensor([0.0, 1.0]), "y", num_classes=3)
    with pytest.raises(InputError, match="one label per sample"):
        v.check_labels(torch.tensor([0, 1]), "y", num_classes=3, n=3)


def test_weights():
    assert v.check_weights([0.75, 0.25], "w", length=2) == [0.75, 0.25]
    with pytest.raises(InputError, match="sum to 1"):
        v.check_weights([0.5, 0.6], "w")
    with pytest.raises(InputError, match="non-negative"):
        v.check_weights([1.5, -0.5], "w")
    with pytest.raises(InputError, match="hold 3 weights"):
        v.check_weights([0.5, 0.5], "w", length=3)
