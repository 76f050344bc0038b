"""Plugin ``bigroc``: BIGRoC, Boosting Image Generation via a Robust Classifier.

Ganz & Elad, "BIGRoC: Boosting Image Generation via a Robust Classifier"
(paper 000 in shared/papers). A generated image ``x_gen`` is refined by a
*targeted* projected gradient attack on an adversarially robust classifier
``f``: instead of pushing the image away from its class, the steps raise
``p(y | x)`` for the image's own class ``y``. Robust classifiers have
perceptually aligned gradients, so these small steps change the image towards
a better-looking member of its class (Section 3).

Algorithm 1 (targeted PGD), with ``Pi_eps`` the projection onto the threat
model ``Delta = {delta : ||delta|| <= eps}``::

    delta_0 = 0
    for t in 0 .. T-1:  delta_{t+1} = Pi_eps(delta_t - a * step(grad_delta CE(f(x + delta_t), y)))
    x_boost = x + delta_T

``step`` normalises the gradient per sample (L2 threat model, the paper's
choice, Section 3) or takes its sign (L-inf, the paper's ablation, Appendix
D.1). As in the reference code, there is no random start, the whole
perturbation is projected onto the ball around the ORIGINAL image ``x`` at
every step (the reference notebook re-centres the ball on the first iterate,
a bug not copied here), and the result is clamped to the valid value range.
Defaults (Appendix E.1): ``T = 7``, ``a = 1.5 * eps / T``.

Algorithm 2 (BIGRoC): the target labels are the generator's own labels when
it is conditional (BIGRoC_GT), otherwise pseudo labels (BIGRoC_PL)
``y = argmax(f(x_gen) + d)`` with the debiasing offsets of Section 3 (Eq. 2),
``d_c = a - E_{x_gen}[logit_c(x_gen)]`` with ``a = 1``, the mean estimated on a
validation set of generated images. Adding ``d`` makes every class's mean
logit over generated images equal, so the pseudo labels are closer to
balanced than a plain argmax.

``eps`` is stated in the units of an image range the caller names
(``eps_range``: the paper quotes ``[-1, 1]`` for CIFAR-10 and ``[0, 1]`` for
ImageNet, Appendix E) and converted to the chain's ``[-1, 1]``; the
classifier's own input range and normalisation live in its
:class:`~gan_postproc.pipeline.scoring.Classifier` wrapper.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from gan_postproc import hookimpl, rng
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup
from gan_postproc.errors import CheckpointError, InputError, InputTypeError, MissingModelError
from gan_postproc.files.loading import read_json, read_safetensors
from gan_postproc.files.writing import atomic_write, atomic_write_json
from gan_postproc.gradients import autograd_ready
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch, check_batch
from gan_postproc.pipeline.batching import row_slices, work_batch_size
from gan_postproc.pipeline.chain import RunReport
from gan_postproc.pipeline.numerics import FiniteGuard
from gan_postproc.pipeline.ranges import CHAIN_RANGE, clamp_to, rescale
from gan_postproc.pipeline.refiner import Refiner
from gan_postproc.pipeline.scoring import Classifier
from gan_postproc.plugins.bigroc.pgd import NORMS, Norm, pgd
from gan_postproc.validation import (
    ValueRange,
    check_choice,
    check_count,
    check_finite,
    check_images,
    check_labels,
    check_model_output,
    check_positive,
    check_tensor,
    check_value_range,
)

from .defaults import DEFAULTS

__all__ = ["BIGRoC", "LogitDebias", "targeted_pgd", "LABEL_MODES"]

LabelMode = Literal["auto", "given", "pseudo"]
#: Where target labels come from: ``"auto"`` (the batch's labels if it has any, else pseudo
#: labels), ``"given"`` (the batch's labels, required) or ``"pseudo"`` (always pseudo labels).
LABEL_MODES: tuple[str, ...] = ("auto", "given", "pseudo")
#: Format tag written into saved debiasing offsets.
DEBIAS_FORMAT = "gan_postproc.bigroc_debias/1"
#: The constant ``a`` of Section 3 (``d_c = a - E[logit_c]``; "WLOG, a = 1").
DEBIAS_A = 1.0


def _autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """Mixed precision for the classifier's forward pass (bfloat16 on CPU, float16 on CUDA)."""
    return torch.autocast(device_type=device.type, enabled=enabled)


def targeted_pgd(
    classifier: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    steps: int = DEFAULTS.bigroc_steps,
    step_size: float | None = None,
    norm: Norm = "l2",
    value_range: ValueRange | None = CHAIN_RANGE,
    autocast: bool = False,
    guard: FiniteGuard | None = None,
) -> torch.Tensor:
    """Algorithm 1 of BIGRoC: targeted PGD raising ``p(labels | x)`` inside the ``eps``-ball around ``images``.

    Each step moves along ``g = grad_x log p(y | x) = -grad_x CE(f(x), y)``,
    normalised per sample (``"l2"``: ``g / (||g||_2 + 1e-10)``, as in the
    reference code) or by sign (``"linf"``); the total perturbation is then
    projected onto the ball of radius ``eps`` around the original ``images``
    and the result clamped to ``value_range``. No random start. The projected
    ascent itself is the project's one PGD, :func:`gan_postproc.plugins.bigroc.pgd.pgd`
    (also behind adversarial training); here its objective is the targeted
    ``log p(y | x)``. Every sample is refined independently of the others, so
    results do not depend on batching.

    Args:
        classifier: the (robust) classifier, fed chain-convention images.
        images: ``[N, C, H, W]`` (or ``[N, D]``) float, inside ``value_range``; the ball centres.
        labels: ``[N]`` int64 target classes in ``[0, classifier.num_classes)``.
        eps: ball radius in the units of ``images`` (chain units inside a chain).
        steps: number of steps ``T``.
        step_size: step length ``a``; default ``1.5 * eps / steps`` (Appendix E.1).
        norm: threat model, ``"l2"`` or ``"linf"``.
        value_range: range to clamp to; ``None`` for unbounded data.
        autocast: run the classifier under :func:`torch.autocast`.
        guard: a :class:`~gan_postproc.pipeline.numerics.FiniteGuard` over the ``N`` images:
            a step that makes an image NaN/inf is undone (it keeps its last finite iterate).

    Returns:
        ``[N, ...]`` detached refined images with ``||x - images|| <= eps`` per
        sample (in ``norm``) and values inside ``value_range``.
    """
    eps = check_positive(eps, "eps")
    steps = check_count(steps, "steps")
    step_size = DEFAULTS.bigroc_step_ratio * eps / steps if step_size is None else check_positive(step_size, "step_size")
    norm = check_choice(norm, "norm", NORMS)
    labels = autograd_ready(check_labels(labels, "labels", num_classes=classifier.num_classes, n=images.shape[0]))

    def log_likelihood(x: torch.Tensor) -> torch.Tensor:
        """``[N]`` log p(labels | x): Algorithm 1's targeted objective (minus the cross-entropy)."""
        with _autocast(x.device, autocast):
            logits = classifier(x)
        return -F.cross_entropy(logits.float(), labels, reduction="none")

    return pgd(log_likelihood, images, eps=eps, steps=steps, step_size=step_size, norm=norm, value_range=value_range, guard=guard)


# --- debiasing (Section 3, Eq. 2) ------------------------------------------------


@dataclass(frozen=True)
class LogitDebias:
    """The per-class logit offsets of BIGRoC's debiasing (Section 3, Eq. 2).

    ``offsets[c] = a - mean over generated images of logit_c`` with ``a = 1``;
    pseudo labels are ``argmax(logits + offsets)``.

    Attributes:
        offsets: ``[K]`` float32 offsets ``d``.
        num_samples: how many generated images the mean was estimated from.
    """

    offsets: torch.Tensor
    num_samples: int

    def __post_init__(self) -> None:
        offsets = check_tensor(self.offsets, "debias offsets", ndim=1, floating=True)
        check_finite(offsets, "debias offsets")
        if offsets.shape[0] < 2:
            raise InputError(f"debias offsets need one entry per class (at least 2), got {offsets.shape[0]}")
        object.__setattr__(self, "offsets", offsets.detach().to("cpu", torch.float32))
        object.__setattr__(self, "num_samples", check_count(self.num_samples, "num_samples"))

    @property
    def num_classes(self) -> int:
        """K, the number of classes the offsets are for."""
        return int(self.offsets.shape[0])

    @classmethod
    def from_mean_logits(cls, mean_logits: torch.Tensor, num_samples: int) -> LogitDebias:
        """Offsets ``d = a - mean_logits`` (``a = 1``) for ``[K]`` mean logits."""
        return cls(offsets=DEBIAS_A - mean_logits.detach().double().cpu(), num_samples=num_samples)

    @classmethod
    def estimate(
        cls,
        classifier: Classifier,
        images: torch.Tensor | Iterable[torch.Tensor],
        *,
        batch_size: int = DEFAULTS.batch_size,
        autocast: bool = False,
    ) -> LogitDebias:
        """Estimate the offsets from generated images (the paper's validation set).

        Args:
            classifier: the classifier whose logits are debiased.
            images: ``[N, C, H, W]`` chain-convention generated images, or an
                iterable of such batches (streamed, never held at once).
            batch_size: rows per classifier call when ``images`` is one tensor.
            autocast: run the classifier under :func:`torch.autocast`.
        """
        batches = images.split(check_count(batch_size, "batch_size")) if isinstance(images, torch.Tensor) else images
        total, count = _sum_logits(classifier, batches, autocast)
        if count == 0:
            raise InputError("estimating debias offsets needs at least one generated image, got none")
        return cls.from_mean_logits(total / count, count)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Debiased logits ``logits + d`` for ``[N, K]`` logits."""
        return logits + self.offsets.to(logits.device, logits.dtype)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the offsets to ``path`` atomically: ``.json`` (readable) or ``.safetensors``."""
        path = Path(path)
        if path.suffix == ".json":
            return atomic_write_json(path, {"format": DEBIAS_FORMAT, "a": DEBIAS_A, "num_samples": self.num_samples, "offsets": self.offsets.tolist()})
        if path.suffix == ".safetensors":
            metadata = {"format": DEBIAS_FORMAT, "a": str(DEBIAS_A), "num_samples": str(self.num_samples)}
            return atomic_write(path, lambda temp: save_file({"offsets": self.offsets.contiguous()}, str(temp), metadata=metadata))
        raise InputError(f"debias offsets are saved as .json or .safetensors, got {path.name!r}; change the file extension")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LogitDebias:
        """Read offsets written by :meth:`save` (``.json`` or ``.safetensors``)."""
        path = Path(path)
        fix = "write one with LogitDebias.save or BIGRoC.debias_offsets.save"
        if path.suffix == ".json":
            stored = read_json(path, "debias offsets file", fix=fix)
            fmt = stored.get("format") if isinstance(stored, dict) else None
            if fmt == DEBIAS_FORMAT:
                offsets, num_samples = stored.get("offsets"), stored.get("num_samples")
        elif path.suffix == ".safetensors":
            tensors, metadata = read_safetensors(path, "debias offsets file", fix=fix)
            fmt = metadata.get("format")
            if fmt == DEBIAS_FORMAT:
                offsets, num_samples = tensors.get("offsets"), metadata.get("num_samples")
        else:
            raise InputError(f"debias offsets are read from .json or .safetensors files, got {path.name!r}")
        if fmt != DEBIAS_FORMAT:
            raise CheckpointError(f"{path} has format {fmt!r}, expected {DEBIAS_FORMAT!r}; {fix}")
        try:
            return cls(offsets=torch.as_tensor(offsets, dtype=torch.float32), num_samples=int(num_samples))
        except (TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{path} is not a valid BIGRoC debias file ({type(error).__name__}: {error}); {fix}") from error


def _sum_logits(classifier: Classifier, batches: Iterable[torch.Tensor], autocast: bool) -> tuple[torch.Tensor, int]:
    """Sum of the logits ``[K]`` (float64) over all images of ``batches``, and how many there were."""
    device = _device_of(classifier)
    total = torch.zeros(classifier.num_classes, dtype=torch.float64, device=device)  # summed on the device: no copy per batch
    count = 0
    with torch.no_grad():
        for batch in batches:
            batch = check_tensor(batch, "debias images", floating=True)
            check_finite(batch, "debias images")
            with _autocast(device, autocast):
                logits = classifier(batch.to(device))
            total += logits.double().sum(0)
            count += batch.shape[0]
    return total.cpu(), count


def _device_of(module: torch.nn.Module) -> torch.device:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


# --- the refiner -------------------------------------------------------------------


class BIGRoC(Refiner):
    """BIGRoC (Ganz & Elad, Algorithm 2): refine images by targeted PGD on a robust classifier.

    Works on any image batch: after any sampler in a chain, inside the drop-in
    wrapper, or on standalone images (``Chain(None, refiners=[BIGRoC(...)])``).

    Args:
        classifier: the adversarially robust classifier, wrapped in a
            :class:`~gan_postproc.pipeline.scoring.Classifier` that carries its input
            range and normalisation (put in eval mode). ``None``: use the
            adapter's classifier.
        eps: radius of the threat model, in the units of ``eps_range``
            (required: the paper tunes it per generator, Appendix E, Tables 8-10).
        eps_range: the image range ``eps`` and ``step_size`` are stated in:
            ``(-1, 1)`` (the chain's, default) or e.g. ``(0, 1)``; converted to
            chain units (an L2 or L-inf radius scales with the range's width).
        steps: ``T``, default 7.
        step_size: step length in ``eps_range`` units; default ``1.5 * eps / T``.
        norm: ``"l2"`` (default) or ``"linf"``.
        labels: ``"auto"`` (the batch's labels when the generator is
            conditional: BIGRoC_GT; pseudo labels otherwise: BIGRoC_PL),
            ``"given"`` or ``"pseudo"``.
        debias: for pseudo labels: ``True`` (estimate the offsets in
            :meth:`setup` from ``debias_samples`` generated images, or call
            :meth:`fit_debias` for standalone images), ``False`` (plain argmax),
            or ready offsets (a :class:`LogitDebias`, a ``[K]`` tensor ``d``, or
            the path of a file written by :meth:`LogitDebias.save`).
        debias_samples: generated images used to estimate the offsets.
        batch_size: images per classifier call while estimating the offsets; ``None`` (default):
            the chain's ``batch_size`` (:func:`~gan_postproc.pipeline.batching.work_batch_size`).
        autocast: run the classifier under :func:`torch.autocast` (bfloat16 on
            CPU, float16 on CUDA); gradients and the update stay in float32.

    The refined batch carries the target labels in ``provenance["bigroc_target"]`` and
    ``provenance["nonfinite_restored"]`` (1 for an image whose PGD step went NaN/inf and that
    kept its last finite iterate; see :class:`~gan_postproc.pipeline.numerics.FiniteGuard`).
    """

    name = "bigroc"

    def __init__(
        self,
        classifier: Classifier | None = None,
        *,
        eps: float,
        eps_range: ValueRange | None = CHAIN_RANGE,
        steps: int = DEFAULTS.bigroc_steps,
        step_size: float | None = None,
        norm: Norm = DEFAULTS.bigroc_norm,  # type: ignore[assignment]
        labels: LabelMode = "auto",
        debias: bool | LogitDebias | torch.Tensor | str | os.PathLike[str] = True,
        debias_samples: int = DEFAULTS.bigroc_debias_samples,
        batch_size: int | None = None,
        autocast: bool = False,
    ) -> None:
        if classifier is not None and not isinstance(classifier, Classifier):
            raise InputTypeError(
                f"classifier must be a gan_postproc.Classifier, got {type(classifier).__name__}; wrap the network so its "
                "input convention is explicit: Classifier(net, num_classes=K, input_range=(0, 1), mean=..., std=...)"
            )
        self.classifier = None if classifier is None else classifier.eval()
        self.eps = check_positive(eps, "eps")
        self.eps_range = None if eps_range is None else check_value_range(eps_range, "eps_range")
        self.steps = check_count(steps, "steps")
        self.step_size = DEFAULTS.bigroc_step_ratio * self.eps / self.steps if step_size is None else check_positive(step_size, "step_size")
        self.norm: Norm = check_choice(norm, "norm", NORMS)
        self.labels: LabelMode = check_choice(labels, "labels", LABEL_MODES)
        self.debias_samples = check_count(debias_samples, "debias_samples")
        self.batch_size = None if batch_size is None else check_count(batch_size, "batch_size")
        if not isinstance(autocast, bool):
            raise InputTypeError(f"autocast must be True or False, got {autocast!r}")
        self.autocast = autocast
        self.debias_offsets: LogitDebias | None = None
        self._estimate_debias = False
        self._estimated_for: tuple[int, int] | None = None
        if isinstance(debias, bool):
            self._estimate_debias = debias
        elif isinstance(debias, LogitDebias):
            self.debias_offsets = debias
        elif isinstance(debias, torch.Tensor):
            self.debias_offsets = LogitDebias(offsets=debias, num_samples=1)
        elif isinstance(debias, (str, os.PathLike)):
            self.debias_offsets = LogitDebias.load(debias)
        else:
            raise InputTypeError(f"debias must be True, False, a LogitDebias, a [K] tensor or a file path, got {type(debias).__name__}")
        if self.classifier is not None:
            self._check_offsets(self.classifier)

    # --- units --------------------------------------------------------------

    def _chain_scale(self, value_range: ValueRange | None) -> float:
        """Factor turning a length in ``eps_range`` units into chain units."""
        if self.eps_range is None:
            return 1.0
        if value_range is None and tuple(self.eps_range) != tuple(CHAIN_RANGE):
            raise InputError(
                f"eps_range={self.eps_range} converts image units, but this batch holds unbounded data (value_range None); "
                "give eps in the data's own units with eps_range=None"
            )
        return (CHAIN_RANGE[1] - CHAIN_RANGE[0]) / (self.eps_range[1] - self.eps_range[0])

    # --- models ---------------------------------------------------------------

    def _resolve_classifier(self, adapter: Adapter | None) -> Classifier:
        if self.classifier is not None:
            return self.classifier
        if adapter is None:
            raise MissingModelError(
                "BIGRoC needs a robust classifier and there is no generator adapter to take one from; "
                "pass BIGRoC(classifier=Classifier(net, num_classes=K, input_range=...), eps=...)"
            )
        return adapter.require_classifier("BIGRoC").eval()

    def _check_offsets(self, classifier: Classifier) -> None:
        if self.debias_offsets is not None and self.debias_offsets.num_classes != classifier.num_classes:
            raise InputError(
                f"the debias offsets are for {self.debias_offsets.num_classes} classes but the classifier has "
                f"{classifier.num_classes}; estimate offsets for this classifier (BIGRoC.fit_debias)"
            )

    def _check_adapter(self, classifier: Classifier, adapter: Adapter | None) -> None:
        if adapter is not None and adapter.num_classes is not None and adapter.num_classes != classifier.num_classes:
            raise InputError(
                f"the generator is conditional with {adapter.num_classes} classes but BIGRoC's classifier has "
                f"{classifier.num_classes}; BIGRoC_GT needs a classifier over the generator's classes"
            )

    def _uses_pseudo_labels(self, adapter: Adapter | None) -> bool:
        return self.labels == "pseudo" or (self.labels == "auto" and (adapter is None or not adapter.conditional))

    # --- setup ------------------------------------------------------------------

    def setup(self, adapter: Adapter | None, seed: int) -> None:
        """Check the classifier against the generator and, for BIGRoC_PL, estimate the debias offsets.

        The offsets are estimated from ``debias_samples`` images generated
        from the adapter's prior, keyed by ``seed`` on a stream of their own
        (so the validation images are not the samples being refined). Without
        an adapter (standalone images) call :meth:`fit_debias` instead.
        """
        classifier = self._resolve_classifier(adapter)
        self._check_adapter(classifier, adapter)
        self._check_offsets(classifier)
        wants_estimate = self._estimate_debias and self._uses_pseudo_labels(adapter) and adapter is not None
        if wants_estimate and self._estimated_for != (id(adapter), seed):
            self.debias_offsets = LogitDebias.estimate(
                classifier, self._validation_images(adapter, seed), autocast=self.autocast
            )
            self._estimated_for = (id(adapter), seed)

    def _validation_images(self, adapter: Adapter, seed: int) -> Iterator[torch.Tensor]:
        """Generated images for the debias estimate, in chain units, batch by batch."""
        for rows in row_slices(self.debias_samples, self.batch_size):
            indices = torch.arange(rows.start, rows.stop)
            latents = adapter.prior.sample(seed, indices, "bigroc_debias", device=adapter.device)
            labels = None
            if adapter.conditional:
                labels = rng.randint(seed, indices, adapter.num_classes, "bigroc_debias_label", device=adapter.device)
            with torch.no_grad():
                images = adapter.generate_finite(latents, labels)
            yield rescale(images, adapter.value_range, CHAIN_RANGE)

    def fit_debias(self, images: torch.Tensor | Iterable[torch.Tensor], *, value_range: ValueRange | None = CHAIN_RANGE) -> LogitDebias:
        """Estimate the debias offsets from a validation set of generated images (standalone use).

        Args:
            images: ``[N, C, H, W]`` generated images in ``value_range``, or an
                iterable of such batches; use images from the same generator
                as the ones to refine (not the very same images, ideally).
            value_range: the images' range (converted to the chain's).

        Returns:
            The offsets, also stored in :attr:`debias_offsets` and kept from
            then on (a later :meth:`setup` does not re-estimate them).
        """
        batches = images.split(self.batch_size or work_batch_size()) if isinstance(images, torch.Tensor) else images
        chain_batches = (_to_chain(b, value_range, "images") for b in batches)
        self.debias_offsets = LogitDebias.estimate(self._resolve_classifier(None), chain_batches, autocast=self.autocast)
        self._estimate_debias = False  # explicitly fitted offsets are kept, like given ones
        return self.debias_offsets

    def fit_standalone(self, batches: Iterable[SampleBatch]) -> None:
        """Estimate the debias offsets from the standalone images to be refined (``gan-postproc refine``).

        Only images that will get pseudo labels count (those without labels,
        or all with ``labels="pseudo"``); nothing is estimated when debiasing
        is off, offsets were given, or every image has a label.
        """
        if not self._estimate_debias or self.labels == "given":
            return
        relevant = (b for b in batches if self.labels == "pseudo" or b.labels is None)
        images = (_to_chain(b.images, b.value_range, "images") for b in relevant)
        total, count = _sum_logits(self._resolve_classifier(None), images, self.autocast)
        if count:
            self.debias_offsets = LogitDebias.from_mean_logits(total / count, count)
            self._estimated_for = None

    # --- refinement -------------------------------------------------------------

    def pseudo_labels(self, images: torch.Tensor, classifier: Classifier | None = None) -> torch.Tensor:
        """``argmax(f(x) + d)`` (Algorithm 2), ``[N]`` int64, for chain-convention images ``[N, ...]``.

        ``d`` is the debias offsets when debiasing is on, else zero.
        """
        classifier = classifier if classifier is not None else self._resolve_classifier(None)
        if self._estimate_debias and self.debias_offsets is None:
            raise InputError(
                "BIGRoC_PL with debiasing needs offsets estimated from a validation set of generated images: run it in a "
                "Chain with a generator (setup estimates them), call bigroc.fit_debias(images) first, pass "
                "debias=PATH of saved offsets, or debias=False for the plain argmax"
            )
        with torch.no_grad(), _autocast(images.device, self.autocast):
            logits = check_model_output(classifier(images).float(), "BIGRoC's classifier")
        if self.debias_offsets is not None:
            logits = self.debias_offsets.apply(logits)
        return logits.argmax(dim=1)

    def refine(self, batch: SampleBatch, adapter: Adapter | None) -> SampleBatch:
        """Refine ``batch.images`` (``[N, C, H, W]`` in ``batch.value_range``); rows and order kept.

        Raises:
            InputError: NaN/inf images, images outside the batch's value range,
                labels outside the classifier's classes, ``labels="given"``
                without labels, or a classifier whose class count does not
                match the generator's.
        """
        check_batch(batch, self.name)
        classifier = self._resolve_classifier(adapter)
        self._check_adapter(classifier, adapter)
        self._check_offsets(classifier)
        images = batch.images
        n = images.shape[0]
        device = _device_of(classifier)
        # The centres are inside the range up to check_in_range's rounding tolerance; clamping them
        # makes both guarantees exact: the result is in the range and in the ball around its centre.
        x = rescale(images.detach().to(device, torch.float32), batch.value_range, CHAIN_RANGE)
        x = x if batch.value_range is None else clamp_to(x, CHAIN_RANGE)
        if self.labels != "pseudo" and batch.labels is not None:
            targets = check_labels(batch.labels, "batch.labels", num_classes=classifier.num_classes, n=n).to(device)
        elif self.labels == "given":
            raise InputError("BIGRoC was built with labels='given' but the batch has no labels; pass labels, or use labels='auto'")
        else:
            targets = self.pseudo_labels(x, classifier)
        scale = self._chain_scale(batch.value_range)
        guard = FiniteGuard(self.name, n)
        refined = targeted_pgd(
            classifier,
            x,
            targets,
            eps=self.eps * scale,
            steps=self.steps,
            step_size=self.step_size * scale,
            norm=self.norm,
            value_range=None if batch.value_range is None else CHAIN_RANGE,
            autocast=self.autocast,
            guard=guard,
        )
        refined = rescale(refined, CHAIN_RANGE, batch.value_range).to(batch.images.device, batch.images.dtype)
        return guard.report(batch.replace(images=refined).with_provenance(bigroc_target=targets.to(batch.images.device)))

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "eps": self.eps,
            "eps_range": None if self.eps_range is None else list(self.eps_range),
            "steps": self.steps,
            "step_size": self.step_size,
            "norm": self.norm,
            "labels": self.labels,
            "debias": self._estimate_debias or self.debias_offsets is not None,
            "debias_samples": self.debias_samples if self._estimate_debias else None,
            "autocast": self.autocast,
        }


def _to_chain(images: object, value_range: ValueRange | None, name: str) -> torch.Tensor:
    """Checked images (:func:`~gan_postproc.validation.check_images`) mapped from ``value_range`` to the chain's range."""
    return rescale(check_images(images, name, value_range), value_range, CHAIN_RANGE)


# --- plugin hooks ------------------------------------------------------------------


@hookimpl
def gan_postproc_register_refiners() -> list[type[Refiner]]:
    return [BIGRoC]


def _floor(refiner: BIGRoC, classifier: Classifier, pseudo: bool) -> Callable[[SampleBatch, RunReport], None]:
    """The classifier passes BIGRoC cannot avoid: a forward pass for pseudo labels, then T forward+backward passes."""

    def floor(batch: SampleBatch, report: RunReport) -> None:
        x = batch.images.detach().to(_device_of(classifier))
        if pseudo:
            with torch.no_grad():
                classifier(x)
        with torch.enable_grad():
            for _ in range(refiner.steps):
                x = x.detach().requires_grad_(True)
                torch.autograd.grad(classifier(x).sum(), x)

    return floor


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    """BIGRoC_PL on the unconditional digits GAN and BIGRoC_GT on the conditional one, guided by the
    shipped robust classifier (never by the measuring feature network)."""
    classifier = context.models.get("robust_classifier")
    if context.dataset != "digits" or classifier is None:
        return []
    samples = DEFAULTS.bigroc_debias_samples_quick if context.quick else DEFAULTS.bigroc_debias_samples
    pl = BIGRoC(classifier, eps=DEFAULTS.bigroc_digits_eps_pl, debias_samples=samples)
    rows = [
        BenchmarkSetup(
            "bigroc_pl",
            refiners=[pl],
            floor=_floor(pl, classifier, pseudo=True),
            note=f"BIGRoC_PL: L2 eps {pl.eps:g} in [-1, 1] units, T={pl.steps}, debiased pseudo labels ({samples} images)",
        )
    ]
    if context.conditional_adapter is not None:
        gt = BIGRoC(classifier, eps=DEFAULTS.bigroc_digits_eps_gt)
        rows.append(
            BenchmarkSetup(
                "bigroc_gt",
                refiners=[gt],
                conditional=True,
                floor=_floor(gt, classifier, pseudo=False),
                note=f"BIGRoC_GT: L2 eps {gt.eps:g} in [-1, 1] units, T={gt.steps}, the generator's labels",
            )
        )
    return rows
