"""Real data given by the user as a tensor or as any iterable of tensors.

Methods that calibrate on real data (collaborative sampling's threshold, discriminator
shaping) accept:

* a tensor ``[N, ...]`` (split into chunks), or
* any re-iterable of tensors ``[B, ...]`` (a list, a ``DataLoader``), or of tuples / lists
  whose first element is that tensor (a ``DataLoader`` over a ``TensorDataset`` of images
  and labels), or
* a one-shot iterator of such batches, read once (enough for a mean; shaping, which
  cycles through the data, then says it ran out).

Samples are in the chain convention (images ``[N, C, H, W]`` in ``[-1, 1]``; vectors
``[N, D]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from .errors import InputError, InputTypeError
from .validation import ValueRange, check_count, check_finite, check_in_range, check_tensor

__all__ = ["RealData", "iter_real", "cycle_real"]

RealData = torch.Tensor | Iterable[torch.Tensor] | Iterable[tuple[torch.Tensor, ...]]

#: Rows per chunk when a whole tensor of real data is given.
_CHUNK = 256


def _as_batch(item: object, position: int, value_range: ValueRange | None) -> torch.Tensor:
    if isinstance(item, (tuple, list)) and item:
        item = item[0]
    if not isinstance(item, torch.Tensor):
        raise InputTypeError(
            f"real_data item {position} must be a tensor [B, ...] (or a tuple whose first element is one), "
            f"got {type(item).__name__}"
        )
    batch = check_tensor(item, f"real_data batch {position}", floating=True)
    if batch.dim() < 2:
        raise InputError(
            f"real_data batch {position} must have a batch dimension first ([B, ...]), got shape {tuple(batch.shape)}; "
            "pass a tensor [N, ...] or an iterable of such batches"
        )
    check_finite(batch, f"real_data batch {position}")
    return check_in_range(batch, f"real_data batch {position}", value_range)


def iter_real(real_data: RealData, value_range: ValueRange | None = None) -> Iterator[torch.Tensor]:
    """Yield the real batches once, checked (floating, finite, inside ``value_range``).

    Raises:
        InputTypeError / InputError: for anything that is not a tensor of samples; and if
            no sample at all came.
    """
    if isinstance(real_data, torch.Tensor):
        check_tensor(real_data, "real_data", floating=True)
        source: Iterable[object] = real_data.split(_CHUNK) if real_data.dim() >= 2 else [real_data]
    elif isinstance(real_data, Iterable) and not isinstance(real_data, (str, bytes)):
        source = real_data
    else:
        raise InputTypeError(f"real_data must be a tensor or an iterable of tensors, got {type(real_data).__name__}")
    count = 0
    for position, item in enumerate(source):
        batch = _as_batch(item, position, value_range)
        count += batch.shape[0]
        yield batch
    if count == 0:
        raise InputError("real_data holds no samples; pass at least one real batch")


def cycle_real(real_data: RealData, batch_size: int, value_range: ValueRange | None = None) -> Iterator[torch.Tensor]:
    """Endless batches of exactly ``batch_size`` real samples, re-reading ``real_data`` after each pass.

    Raises:
        InputError: if ``real_data`` is a one-shot iterator that ran out (pass a list, a
            tensor or a ``DataLoader`` instead).
    """
    batch_size = check_count(batch_size, "batch_size")
    one_shot = isinstance(real_data, Iterator)
    leftover: torch.Tensor | None = None
    while True:
        for batch in iter_real(real_data, value_range):
            leftover = batch if leftover is None else torch.cat([leftover, batch])
            while leftover.shape[0] >= batch_size:
                yield leftover[:batch_size]
                leftover = leftover[batch_size:]
        if one_shot:
            raise InputError(
                "real_data ran out: it is a one-shot iterator (a generator?), and this method reads the real data "
                "more than once; pass a tensor, a list of batches or a DataLoader"
            )
