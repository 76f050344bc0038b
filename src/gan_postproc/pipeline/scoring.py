"""Wrappers that make discriminators and classifiers speak the chain's convention.

A discriminator's output convention is declared once, when it is wrapped,
never guessed from its values: :class:`ScoreKind` says whether the network
returns a probability ``D(x) = p(real | x)``, a logit of that probability, or
an unbounded critic score (WGAN, hinge) that is *not* a density ratio.
Methods that need density ratios (DRS, MH-GAN, SIR) ask for
:meth:`Discriminator.logit`, which refuses a critic.

A classifier carries its own input preprocessing (value range, resize,
mean/std normalisation), so every method feeds it chain-convention images.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, UncalibratedDiscriminatorError
from ..validation import ValueRange, call_network, check_count, check_value_range
from .ranges import CHAIN_RANGE, rescale

__all__ = ["ScoreKind", "Discriminator", "Classifier", "as_discriminator", "as_classifier", "score_in_groups"]

DiscriminatorCall = Callable[[nn.Module, torch.Tensor, "torch.Tensor | None"], object]
ClassifierCall = Callable[[nn.Module, torch.Tensor], object]


class ScoreKind(str, enum.Enum):
    """What a discriminator's raw output means."""

    PROBABILITY = "probability"  #: D(x) in (0, 1), the probability that x is real.
    LOGIT = "logit"  #: log(D / (1 - D)); an estimate of log p_data(x) / p_model(x).
    CRITIC = "critic"  #: unbounded score, higher = more real (WGAN, hinge); not a density ratio.

    @classmethod
    def parse(cls, value: ScoreKind | str) -> ScoreKind:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(k.value) for k in cls)
            raise InputError(f"discriminator output must be one of {choices}, got {value!r}") from None


def _to_per_sample(raw: object, n: int, what: str) -> torch.Tensor:
    """Reduce a network output of shape [N], [N, 1] (or 0-d when N == 1) to [N] float32."""
    if not isinstance(raw, torch.Tensor):
        raise InputError(
            f"{what} must return a tensor, got {type(raw).__name__}; pass forward_fn= to extract the score"
        )
    if raw.dim() == 0 and n == 1:
        raw = raw.reshape(1)
    if raw.dim() == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.dim() != 1 or raw.shape[0] != n:
        raise InputError(f"{what} must return one score per sample ([{n}] or [{n}, 1]), got shape {tuple(raw.shape)}")
    return raw.float()


def score_in_groups(samples: torch.Tensor, group: int, call: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Scores of a network that judges its batch in groups of ``group`` samples (a minibatch-std layer).

    Such a layer needs a batch that is a multiple of the group (or at most one group). ``samples``
    ``[N, ...]`` is padded to the next multiple by repeating its rows from the first; ``call(padded,
    rows)`` scores the padded batch (``rows`` ``[M]`` says which row of ``samples`` each padded row is,
    to pick its labels), and the padding's scores are dropped. So a real row's score is exactly the
    network's own on a batch it accepts, and depends on its group's members as in training.

    Returns:
        ``call``'s output for the ``N`` real rows.
    """
    n = samples.shape[0]
    rows = torch.arange(-(-n // group) * group, device=samples.device) % n
    return call(samples[rows], rows)[:n]


class Discriminator(nn.Module):
    """A discriminator or critic with a declared output convention.

    Args:
        module: the network. Called as ``module(x)`` or ``module(x, labels)``
            (if ``conditional``) unless ``forward_fn`` is given.
        output: what the raw output means (:class:`ScoreKind` or its value).
        input_range: value range the network expects (``None``: unbounded
            data, passed through unchanged). Chain images are mapped into it.
        conditional: whether the network takes class labels.
        min_batch_size: smallest batch the network accepts (e.g. a StyleGAN
            minibatch-std group size); smaller batches raise a clear error.
        forward_fn: ``(module, x, labels) -> raw`` for networks with other
            call signatures (dict outputs, tuples).
    """

    def __init__(
        self,
        module: nn.Module,
        output: ScoreKind | str,
        *,
        input_range: ValueRange | None = CHAIN_RANGE,
        conditional: bool = False,
        min_batch_size: int = 1,
        forward_fn: DiscriminatorCall | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise InputError(f"discriminator must be a torch.nn.Module, got {type(module).__name__}")
        self.module = module
        self.output = ScoreKind.parse(output)
        self.input_range = None if input_range is None else check_value_range(input_range, "input_range")
        self.conditional = conditional
        self.min_batch_size = check_count(min_batch_size, "min_batch_size")
        self.forward_fn = forward_fn

    @property
    def estimates_density_ratio(self) -> bool:
        """True when the output is a probability or logit of p(real | x)."""
        return self.output is not ScoreKind.CRITIC

    def forward(self, samples: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Raw scores, ``[N]`` float32, in the declared convention. Differentiable."""
        n = samples.shape[0]
        if n < self.min_batch_size:
            raise InputError(
                f"this discriminator needs batches of at least {self.min_batch_size} samples "
                f"(e.g. a minibatch-std group), got {n}; score more samples at once"
            )
        if self.conditional and labels is None:
            raise InputError("this discriminator is conditional and needs labels; pass labels of shape [N]")
        x = rescale(samples, CHAIN_RANGE if self.input_range is not None else None, self.input_range)
        if self.forward_fn is not None:
            raw = call_network("the discriminator", lambda x, y: self.forward_fn(self.module, x, y), x, labels if self.conditional else None)
        elif self.conditional:
            raw = call_network("the discriminator", self.module, x, labels)
        else:
            raw = call_network("the discriminator", self.module, x)
        return _to_per_sample(raw, n, "the discriminator")

    def padded(
        self, samples: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """``samples`` (and ``labels``) padded to :attr:`min_batch_size` rows, and the original row count.

        Methods whose batches shrink (a last partial batch, the samples still
        being refined) score through this, so a minibatch-std discriminator
        sees a full group; the padding repeats rows, detached so it adds no
        gradient, and its scores are to be dropped (``scores[:n]``).
        """
        n = samples.shape[0]
        if n == 0 or n >= self.min_batch_size:
            return samples, labels, n
        extra = torch.arange(n, self.min_batch_size, device=samples.device) % n
        samples = torch.cat([samples, samples[extra].detach()])
        labels = None if labels is None else torch.cat([labels, labels[extra.to(labels.device)]])
        return samples, labels, n

    def logit(self, samples: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``log D(x) / (1 - D(x))``, ``[N]``: the estimated log density ratio.

        Raises:
            UncalibratedDiscriminatorError: for a critic, whose score is not a
                density ratio. Calibrate it first (see the density-ratio
                samplers' ``calibrate`` helpers).
        """
        raw = self(samples, labels)
        if self.output is ScoreKind.LOGIT:
            return raw
        if self.output is ScoreKind.PROBABILITY:
            p = raw.clamp(1e-7, 1 - 1e-7)
            return torch.log(p) - torch.log1p(-p)
        raise UncalibratedDiscriminatorError(
            "this discriminator is declared a critic (WGAN/hinge score), which does not estimate "
            "p(real | x), so it gives no density ratio; fine-tune a calibrated copy with binary "
            "cross-entropy on real vs generated data, or declare output='logit' if it really is one"
        )

    def probability(self, samples: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``D(x) = p(real | x)``, ``[N]`` in (0, 1). Refuses a critic like :meth:`logit`."""
        return torch.sigmoid(self.logit(samples, labels))


class Classifier(nn.Module):
    """An image classifier with its own input preprocessing.

    Args:
        module: network mapping preprocessed images to logits ``[N, K]``.
        num_classes: K.
        input_range: value range the network expects; chain images
            (``[-1, 1]``) are mapped into it. ``None`` for unbounded data.
        mean, std: per-channel normalisation applied after rescaling.
        input_size: ``(H, W)`` to resize to (bilinear, antialiased), or ``None``.
        forward_fn: ``(module, x) -> logits`` for networks with other call
            signatures.
    """

    def __init__(
        self,
        module: nn.Module,
        num_classes: int,
        *,
        input_range: ValueRange | None = CHAIN_RANGE,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        input_size: tuple[int, int] | None = None,
        forward_fn: ClassifierCall | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise InputError(f"classifier must be a torch.nn.Module, got {type(module).__name__}")
        if (mean is None) != (std is None):
            raise InputError("give both mean and std for input normalisation, or neither")
        if mean is not None:
            mean, std = list(mean), list(std)  # type: ignore[arg-type]
            if len(mean) != len(std) or not mean:
                raise InputError(f"mean and std need one value per input channel each, got {len(mean)} and {len(std)} values")
            if not all(math.isfinite(float(v)) for v in mean) or not all(math.isfinite(float(v)) and float(v) > 0 for v in std):
                raise InputError(f"mean must be finite and std finite and > 0, got mean={mean}, std={std}")
        if input_size is not None:
            if not isinstance(input_size, (tuple, list)) or len(input_size) != 2:
                raise InputError(f"input_size must be an (H, W) pair such as (32, 32), or None, got {input_size!r}")
            input_size = (check_count(input_size[0], "input_size[0]"), check_count(input_size[1], "input_size[1]"))
        self.module = module
        self.num_classes = check_count(num_classes, "num_classes", minimum=2)
        self.input_range = None if input_range is None else check_value_range(input_range, "input_range")
        self.input_size = input_size
        self.forward_fn = forward_fn
        self.register_buffer("mean", None if mean is None else torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", None if std is None else torch.tensor(std, dtype=torch.float32))

    def preprocess(self, samples: torch.Tensor) -> torch.Tensor:
        """Chain images -> the network's input (range, size, normalisation)."""
        x = rescale(samples, CHAIN_RANGE if self.input_range is not None else None, self.input_range)
        if self.input_size is not None and tuple(x.shape[-2:]) != tuple(self.input_size):
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        if self.mean is not None:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            x = (x - self.mean.view(shape)) / self.std.view(shape)
        return x

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, num_classes]`` float32 for chain-convention samples. Differentiable."""
        x = self.preprocess(samples)
        network = self.module if self.forward_fn is None else lambda x: self.forward_fn(self.module, x)
        logits = call_network("the classifier", network, x)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape != (samples.shape[0], self.num_classes):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise InputError(
                f"the classifier must return logits of shape [{samples.shape[0]}, {self.num_classes}] "
                f"(num_classes={self.num_classes}), got {shape}; check num_classes or pass forward_fn="
            )
        return logits.float()


def as_discriminator(discriminator: nn.Module | Discriminator | None, output: ScoreKind | str | None) -> Discriminator | None:
    """Wrap a raw module; the output convention must be declared, never guessed."""
    if discriminator is None or isinstance(discriminator, Discriminator):
        if discriminator is not None and output is not None and ScoreKind.parse(output) is not discriminator.output:
            raise InputError(f"discriminator_output={output!r} contradicts the wrapper's declared output {discriminator.output.value!r}")
        return discriminator
    if output is None:
        raise InputError(
            "a discriminator module needs its output convention declared: pass "
            "discriminator_output='probability' (D(x) in (0,1)), 'logit' (log D/(1-D)) or 'critic' (WGAN/hinge score)"
        )
    return Discriminator(discriminator, output)


def as_classifier(classifier: nn.Module | Classifier | None, num_classes: int | None) -> Classifier | None:
    """Wrap a raw module whose class count is known; otherwise ask for a :class:`Classifier`."""
    if classifier is None or isinstance(classifier, Classifier):
        return classifier
    k = getattr(classifier, "num_classes", None) or num_classes
    if k is None:
        raise InputError(
            "cannot tell how many classes this classifier has; wrap it: "
            "Classifier(module, num_classes=K, input_range=(0, 1))"
        )
    return Classifier(classifier, int(k))
