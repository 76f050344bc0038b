"""Numerical safety of iterative methods: a step that turns a sample into NaN/inf is undone for that sample.

Gradient-based refiners and samplers (BIGRoC's PGD, collaborative sampling,
DOT, DDLS, latent gradient ascent) update every sample many times. A model
whose gradient overflows at one sample (a saturated logit, an exploding
layer) would otherwise turn that sample into NaN, and one NaN sample makes
the whole batch unusable. :class:`FiniteGuard` is the one place that handles
it: after each step, a sample whose new value is not finite keeps its last
finite value for the rest of the run (it is *frozen*: a step that failed
once would fail again from the same point), the others go on. The method
then records which samples were frozen in
``provenance["nonfinite_restored"]`` (``[N]`` int64, 1 for a frozen sample)
and a :class:`NonFiniteStepWarning` says how many.

Usage in a method's loop::

    guard = FiniteGuard(self.name, n)
    for step in range(steps):
        x = guard.keep_finite(x, update(x))     # rows that went NaN/inf keep their value
    batch = guard.report(batch.replace(images=x))
"""

from __future__ import annotations

import warnings

import torch

from .batch import SampleBatch

__all__ = ["FiniteGuard", "NonFiniteStepWarning", "finite_rows", "NONFINITE_KEY"]

#: The provenance key a guarded method writes: 1 for a sample frozen at its last finite value.
NONFINITE_KEY = "nonfinite_restored"


class NonFiniteStepWarning(RuntimeWarning):
    """A step of an iterative method produced NaN/inf for some samples; they kept their last finite values."""


def finite_rows(x: torch.Tensor) -> torch.Tensor:
    """``[N]`` bool: True for the rows of ``x`` (``[N, ...]``) whose entries are all finite."""
    return torch.isfinite(x.detach()).reshape(x.shape[0], -1).all(dim=1)


class FiniteGuard:
    """Keeps every sample of an iterative method finite, freezing samples whose step failed.

    Args:
        method: the method's name, for the warning.
        n: number of samples the method updates (rows ``0 .. n-1``).

    Attributes:
        restored: ``[n]`` bool on the CPU: samples frozen at their last finite value.
    """

    def __init__(self, method: str, n: int) -> None:
        self.method = method
        with torch.inference_mode(False):  # a normal tensor: gradient methods update it outside a caller's inference mode
            self.restored = torch.zeros(n, dtype=torch.bool)

    def _rows(self, rows: torch.Tensor | None) -> torch.Tensor:
        return torch.arange(len(self.restored)) if rows is None else rows.detach().cpu()

    def mark(self, bad: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Freeze the samples where ``bad`` (``[m]`` bool over ``rows``, default all rows) is True."""
        rows = self._rows(rows)
        self.restored[rows[bad.detach().cpu()]] = True

    def keep_finite(self, previous: torch.Tensor, proposed: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """``proposed``, except that samples whose proposed row is not finite, or that were frozen
        before, get their ``previous`` row.

        Args:
            previous: ``[m, ...]`` the samples' last values (finite).
            proposed: ``[m, ...]`` their values after the step.
            rows: ``[m]`` which of the ``n`` samples these rows are (default: all, in order).
        """
        rows = self._rows(rows)
        self.mark(~finite_rows(proposed), rows)
        frozen = self.restored[rows].to(proposed.device).view(-1, *([1] * (proposed.dim() - 1)))
        return torch.where(frozen, previous.to(proposed.dtype), proposed)

    @property
    def count(self) -> int:
        """How many samples were frozen."""
        return int(self.restored.sum())

    def report(self, batch: SampleBatch) -> SampleBatch:
        """``batch`` with ``provenance["nonfinite_restored"]`` set, warning when any sample was frozen.

        ``batch`` must hold the ``n`` guarded samples in order.
        """
        if self.count:
            rows = self.restored.nonzero()[:, 0].tolist()
            shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
            warnings.warn(
                f"{self.method}: a step produced NaN/inf for {self.count} of {len(self.restored)} samples (rows {shown} "
                f"of the batch); each kept its last finite value (provenance[{NONFINITE_KEY!r}] marks them). "
                "The model's values or gradients overflow there: lower the step size, or check the model",
                NonFiniteStepWarning,
                stacklevel=3,
            )
        return batch.with_provenance(**{NONFINITE_KEY: self.restored.to(torch.int64).to(batch.device)})
