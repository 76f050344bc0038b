"""Intra-class diversity: mean SSIM / MS-SSIM of image pairs within each class (Slim paper, Sec. 4.3, Table 2).

The Slim paper scores a source by "summing the similarity scores of 200 image
pairs from each class and averaging the result" (4000 images, 200 pairs per
class). Here the images of each class are paired in the order they arrive,
(1st, 2nd), (3rd, 4th), ..., up to ``pairs_per_class`` disjoint pairs per
class; the score of a class is the mean similarity of its pairs and the
overall score is the mean over classes that have at least one pair.
**Lower similarity = more diverse** (the paper's "MS-SSIM (lower is
better)"; it prints the value x 100).

Similarity (``pytorch-msssim``, images mapped from ``[-1, 1]`` to ``[0, 1]``,
``data_range=1``, Gaussian window of sigma 1.5):

- ``"ms_ssim"`` (Wang et al. 2003): five scales, so the smaller image side
  must exceed ``(win_size - 1) * 16`` (160 px for the standard 11-px window);
- ``"ssim"`` (Wang et al. 2004): one scale, for small images such as 8x8
  digits; the window must fit in the image.

``kind=None`` picks MS-SSIM with an 11-px window where the image size
allows it, else SSIM with an 11-px window shrunk to the largest odd size
that fits (7 px for 8x8 images); the result records which was used.
A requested kind or window that does not fit raises a clear error.

Memory: one waiting image per class and two numbers per class; labels come
from the caller (a conditional generator's classes) or from a classifier
independent of the measured method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..defaults import DEFAULTS
from ..errors import InputError, OptionalDependencyError
from ..validation import check_count, check_labels, check_tensor
from ._checks import check_module, check_samples, resolve_num_classes
from ._inference import predict_labels

__all__ = ["DiversityResult", "IntraClassDiversity", "intra_class_diversity", "pair_similarity"]

_STANDARD_WINDOW = 11
_MS_SSIM_DOWNSAMPLINGS = 4  # five scales


@dataclass(frozen=True)
class DiversityResult:
    """Intra-class similarity of generated images. Lower = more diverse.

    Attributes:
        mean: mean over classes (with at least one pair) of the mean pair similarity.
        per_class: class index -> mean similarity of its pairs.
        pairs: class index -> number of pairs scored.
        kind: ``"ms_ssim"`` or ``"ssim"``.
        win_size: Gaussian window size used.
    """

    mean: float
    per_class: dict[int, float]
    pairs: dict[int, int]
    kind: str
    win_size: int


def _check_settings(kind: str | None, win_size: int | None) -> None:
    """Checks of ``kind`` and ``win_size`` that do not depend on the image size."""
    if kind not in (None, "ms_ssim", "ssim"):
        raise InputError(f"kind must be 'ms_ssim', 'ssim' or None (pick by image size), got {kind!r}")
    if win_size is not None:
        check_count(win_size, "win_size", minimum=3)
        if win_size % 2 == 0:
            raise InputError(f"win_size must be odd, got {win_size}")


def _resolve(image_shape: tuple[int, ...], kind: str | None, win_size: int | None) -> tuple[str, int]:
    """The similarity and window for images of ``image_shape`` ``(C, H, W)``, or a clear error."""
    _check_settings(kind, win_size)
    side = min(image_shape[-2:])
    if kind is None:
        window = win_size or _STANDARD_WINDOW
        kind = "ms_ssim" if side > (window - 1) * 2**_MS_SSIM_DOWNSAMPLINGS else "ssim"
    if kind == "ms_ssim":
        win_size = win_size or _STANDARD_WINDOW
        if side <= (win_size - 1) * 2**_MS_SSIM_DOWNSAMPLINGS:
            raise InputError(
                f"MS-SSIM with a {win_size}-px window needs images larger than "
                f"{(win_size - 1) * 2**_MS_SSIM_DOWNSAMPLINGS} px (4 downsamplings), got {side} px; "
                "use kind='ssim' (single-scale SSIM with a small window) for small images"
            )
    else:
        if side < 3:
            raise InputError(f"SSIM needs images of at least 3 x 3 pixels, got {tuple(image_shape[-2:])}")
        win_size = win_size or min(_STANDARD_WINDOW, side if side % 2 else side - 1)
        if win_size > side:
            raise InputError(f"the SSIM window ({win_size} px) must fit in the image ({side} px); pass a smaller odd win_size")
    return kind, win_size


def _checked_images(images: object, name: str = "images") -> torch.Tensor:
    images = check_samples(images, name)
    return check_tensor(images, name, ndim=4)


def pair_similarity(
    x: torch.Tensor, y: torch.Tensor, *, kind: str | None = None, win_size: int | None = None
) -> torch.Tensor:
    """SSIM or MS-SSIM of each pair ``(x[i], y[i])``, ``[P]`` float32; identical images score 1.

    Args:
        x, y: images ``[P, C, H, W]`` in ``[-1, 1]``, same shape.
        kind, win_size: as in :class:`IntraClassDiversity` (checked against the image size).
    """
    x, y = _checked_images(x, "x"), _checked_images(y, "y")
    if x.shape != y.shape:
        raise InputError(f"x and y must hold pairs of same-shape images, got {tuple(x.shape)} and {tuple(y.shape)}")
    kind, win_size = _resolve(tuple(x.shape[1:]), kind, win_size)
    try:
        import pytorch_msssim
    except ImportError as exc:
        raise OptionalDependencyError("pytorch-msssim", "metrics", "intra-class diversity (SSIM / MS-SSIM)") from exc
    measure = pytorch_msssim.ms_ssim if kind == "ms_ssim" else pytorch_msssim.ssim
    x01 = (x.float() + 1.0) / 2.0
    y01 = (y.float() + 1.0) / 2.0
    return measure(x01, y01, data_range=1.0, size_average=False, win_size=win_size)


@dataclass
class _DiversityState:
    num_classes: int
    pairs_per_class: int
    kind: str | None
    win_size: int | None
    image_shape: tuple[int, ...] | None = None
    #: per class, the image that waits for a partner
    waiting: dict[int, torch.Tensor] = field(default_factory=dict)
    sums: torch.Tensor = field(init=False)
    counts: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.sums = torch.zeros(self.num_classes, dtype=torch.float64)
        self.counts = torch.zeros(self.num_classes, dtype=torch.long)


def _diversity_update(state: _DiversityState, images: torch.Tensor, labels: torch.Tensor) -> None:
    shape = tuple(images.shape[1:])
    if state.image_shape is None:
        state.kind, state.win_size = _resolve(shape, state.kind, state.win_size)
        state.image_shape = shape
    elif shape != state.image_shape:
        raise InputError(f"images must keep one shape, got {shape} after {state.image_shape}")
    firsts, seconds, owners = [], [], []
    waiting: dict[int, torch.Tensor | None] = {}  # the new waiting image of each class seen
    for c in labels.unique().tolist():
        room = state.pairs_per_class - int(state.counts[c])
        if room <= 0:
            continue
        members = images[(labels == c).to(images.device)]
        if c in state.waiting:
            members = torch.cat([state.waiting[c].unsqueeze(0), members])
        pairs = min(members.shape[0] // 2, room)
        if pairs:
            firsts.append(members[0 : 2 * pairs : 2])
            seconds.append(members[1 : 2 * pairs : 2])
            owners.append(torch.full((pairs,), c, dtype=torch.long))
        waiting[c] = members[2 * pairs].clone() if pairs < room and members.shape[0] > 2 * pairs else None
    if owners:
        scores = pair_similarity(torch.cat(firsts), torch.cat(seconds), kind=state.kind, win_size=state.win_size)
        owner = torch.cat(owners)
        state.sums.index_add_(0, owner, scores.double().cpu())
        state.counts += torch.bincount(owner, minlength=state.num_classes)
    for c, image in waiting.items():  # only now, after scoring succeeded
        if image is None:
            state.waiting.pop(c, None)
        else:
            state.waiting[c] = image


def _diversity_compute(state: _DiversityState) -> DiversityResult:
    scored = [c for c in range(state.num_classes) if int(state.counts[c]) > 0]
    if not scored:
        raise InputError("no class has two images yet, so no pair could be compared; add more images")
    per_class = {c: float(state.sums[c] / state.counts[c]) for c in scored}
    return DiversityResult(
        mean=sum(per_class.values()) / len(per_class),
        per_class=per_class,
        pairs={c: int(state.counts[c]) for c in scored},
        kind=state.kind,
        win_size=state.win_size,
    )


class IntraClassDiversity:
    """Accumulating intra-class similarity (see the module docstring). Lower = more diverse.

    Args:
        num_classes: K; taken from ``classifier.num_classes`` when omitted.
        classifier: labels images whose class is not given (arg-max of its
            logits; in eval mode). ``None``: :meth:`update` needs labels.
        pairs_per_class: disjoint pairs scored per class (Slim paper: 200).
        kind: ``"ms_ssim"``, ``"ssim"`` or ``None`` (pick by image size).
        win_size: odd Gaussian window size; ``None``: standard 11 (shrunk to fit for SSIM).
        batch_size: samples per forward pass of ``classifier``.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        *,
        classifier: nn.Module | None = None,
        pairs_per_class: int = DEFAULTS.diversity_pairs_per_class,
        kind: str | None = None,
        win_size: int | None = None,
        batch_size: int = DEFAULTS.metrics_batch_size,
    ) -> None:
        self.classifier = check_module(classifier, "classifier", optional=True)
        self.num_classes = resolve_num_classes(num_classes, classifier, minimum=1)
        self.pairs_per_class = check_count(pairs_per_class, "pairs_per_class")
        self.batch_size = check_count(batch_size, "batch_size")
        _check_settings(kind, win_size)
        self._settings = (kind, win_size)
        self.reset()

    def update(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Add images ``[N, C, H, W]`` in ``[-1, 1]`` with their classes ``[N]`` (or let the classifier label them)."""
        images = _checked_images(images)
        if labels is not None:
            labels = check_labels(labels, "labels", num_classes=self.num_classes, n=images.shape[0]).cpu()
        elif self.classifier is not None:
            labels = predict_labels(self.classifier, images, num_classes=self.num_classes, batch_size=self.batch_size)
        else:
            raise InputError("pass labels=... (the class of each image) or build the metric with a classifier")
        _diversity_update(self._state, images, labels)

    def compute(self) -> DiversityResult:
        """Similarity of the pairs formed so far."""
        return _diversity_compute(self._state)

    def reset(self) -> None:
        """Forget every image and pair."""
        kind, win_size = self._settings
        self._state = _DiversityState(self.num_classes, self.pairs_per_class, kind, win_size)


def intra_class_diversity(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    pairs_per_class: int = DEFAULTS.diversity_pairs_per_class,
    kind: str | None = None,
    win_size: int | None = None,
) -> DiversityResult:
    """Intra-class similarity of ``images`` with classes ``labels``; the functional twin of :class:`IntraClassDiversity`."""
    num_classes = check_count(num_classes, "num_classes", minimum=1)
    images = _checked_images(images)
    labels = check_labels(labels, "labels", num_classes=num_classes, n=images.shape[0]).cpu()
    state = _DiversityState(num_classes, check_count(pairs_per_class, "pairs_per_class"), kind, win_size)
    _diversity_update(state, images, labels)
    return _diversity_compute(state)
