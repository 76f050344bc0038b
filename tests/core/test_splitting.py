"""Reading and replacing activations with forward hooks (the split used by several adapters)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_postproc.errors import InputError
from gan_postproc.pipeline.splitting import capture_output, module_device, substitute_output


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 4)
        self.act = nn.ReLU(inplace=True)  # shared: runs twice per forward pass
        self.c = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(self.act(self.b(self.act(self.a(x)))))


def test_capture_stops_at_the_layer_and_substitution_reproduces_the_forward_pass():
    net, x = _Net(), torch.randn(5, 3)
    h = capture_output(net.b, lambda: net(x))
    assert h.shape == (5, 4)
    assert torch.equal(substitute_output(net.b, h, lambda: net(x)), net(x))


def test_substitution_is_differentiable_and_never_changes_the_callers_tensor():
    net, x = _Net(), torch.randn(5, 3)
    h = capture_output(net.b, lambda: net(x)).detach()
    negative = h - h.abs().max() - 1.0  # the in-place ReLU after net.b would zero every entry
    before = negative.clone()
    substitute_output(net.b, negative, lambda: net(x))
    assert torch.equal(negative, before)
    positive = (h.abs() + 0.1).requires_grad_(True)  # the ReLU passes gradients
    out = substitute_output(net.b, positive, lambda: net(x))
    (grad,) = torch.autograd.grad(out.sum(), positive)
    assert grad.shape == h.shape and float(grad.abs().sum()) > 0


def test_bad_split_points_are_refused_clearly():
    net, x = _Net(), torch.randn(2, 3)
    with pytest.raises(InputError, match="runs more than once"):
        substitute_output(net.act, torch.zeros(2, 4), lambda: net(x), name="layer 'act'")
    with pytest.raises(InputError, match=r"must have shape \(2, 4\), got \(2, 5\)"):
        substitute_output(net.b, torch.zeros(2, 5), lambda: net(x))
    with pytest.raises(InputError, match="did not run"):
        capture_output(nn.Linear(1, 1), lambda: net(x))
    assert module_device(net) == torch.device("cpu") and module_device(nn.ReLU()) == torch.device("cpu")
