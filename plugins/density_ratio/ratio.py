"""What DRS, MH-GAN and SIR share: density ratios from a discriminator.

The three samplers rest on one fact (Goodfellow et al. 2014, Prop. 1): the
discriminator trained with binary cross-entropy to optimality is
``D*(x) = p_data(x) / (p_data(x) + p_g(x))``, so its logit estimates the log
density ratio ``log p_data(x) / p_g(x)`` (Eq. 2 of the latent-reweighting
paper, Issenhuth et al.). A WGAN critic or a hinge discriminator is trained
with another loss and estimates no such ratio: using its raw score as one
makes samples worse (measured on the DOT 2-D critics: EMD 1.7-4x worse). So

* :class:`DensityRatio` resolves the discriminator a sampler uses (given
  explicitly, else the adapter's), refuses a critic unless the user opts in
  with ``allow_uncalibrated=True`` (then warns), refuses a discriminator whose
  output is (nearly) constant, and optionally calibrates its output with
  isotonic regression on held-out real and generated samples
  (:class:`IsotonicCalibrator`, as the MH-GAN reference code does);
* :func:`~gan_postproc.plugins.density_ratio.calibrate_discriminator` turns a critic into
  a density-ratio estimator by fine-tuning a copy with binary cross-entropy
  (the fix the latent-reweighting paper uses for its SIR baseline, Sec. 4.3).

Everything here works in float64 on log ratios, so ratios of ``1e-30`` or
``1e30`` neither underflow nor overflow.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from gan_postproc import rng
from gan_postproc.errors import InputError, UncalibratedDiscriminatorError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.batching import row_slices, work_batch_size
from gan_postproc.pipeline.sampler import SampleRequest
from gan_postproc.pipeline.scoring import Discriminator, ScoreKind
from gan_postproc.validation import (
    check_count,
    check_finite,
    check_labels,
    check_model_output,
    check_sample_shape,
    check_tensor,
)

from .defaults import DEFAULTS
from .real_samples import RealData, load_real_data, prior_batches, real_order, real_samples

if TYPE_CHECKING:
    from gan_postproc.bench.setups import BenchmarkContext, FloorFn
    from gan_postproc.pipeline.chain import RunReport

__all__ = [
    "Calibration",
    "UncalibratedDiscriminatorWarning",
    "IsotonicCalibrator",
    "CalibrationReport",
    "DensityRatio",
    "check_informative",
    "network_floor",
    "benchmark_calibration",
    "ScoredProposals",
    "scored_proposals",
    "HeldProposals",
]

#: How a sampler calibrates the discriminator's output: ``"isotonic"`` or ``None``.
Calibration = Literal["isotonic"] | None

#: A discriminator whose logits over the probe span less than this is called constant.
_CONSTANT_SPREAD = 1e-6


class UncalibratedDiscriminatorWarning(UserWarning):
    """A density-ratio sampler runs on a critic because the user allowed it explicitly."""


class IsotonicCalibrator:
    """Isotonic regression from a discriminator's logit to ``p(real | x)``.

    The MH-GAN reference code (Turner et al. 2019, Sec. 4) calibrates its
    discriminator this way: fit a non-decreasing map from score to the
    fraction of real samples, on real and generated samples the discriminator
    was not trained on. The map is piecewise linear between the fitted
    thresholds and constant beyond them.

    Probabilities of exactly 0 and 1: the lowest block of the fit may hold
    only generated samples (p = 0) and the highest only real ones (p = 1),
    which would make density ratios 0 or infinite (an MH chain that reaches a
    p = 1 sample never leaves it). Such a block of ``n`` samples gets the
    rule-of-succession estimate instead: ``1 / (n + 2)`` for the bottom block,
    ``(n + 1) / (n + 2)`` for the top one, kept monotone with the
    neighbouring blocks. So every calibrated probability lies strictly inside
    (0, 1) and every ratio is finite.

    Attributes:
        thresholds: ``[T]`` float64 sorted logits of the fitted map.
        probabilities: ``[T]`` float64 non-decreasing probabilities at them, in (0, 1).
    """

    def __init__(self, thresholds: torch.Tensor, probabilities: torch.Tensor) -> None:
        self.thresholds = thresholds.double().cpu()
        self.probabilities = probabilities.double().cpu()
        if not (bool((self.probabilities > 0).all()) and bool((self.probabilities < 1).all())):
            raise InputError("calibrated probabilities must lie strictly inside (0, 1)")

    @classmethod
    def fit(cls, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> IsotonicCalibrator:
        """Fit on the logits of real (label 1) and generated (label 0) samples, ``[n_real]`` and ``[n_fake]``."""
        from sklearn.isotonic import IsotonicRegression  # here, not at the top: scikit-learn is slow to import

        for name, values in (("real_logits", real_logits), ("fake_logits", fake_logits)):
            check_tensor(values, name, ndim=1, floating=True)
            check_finite(values, name)
        scores = torch.cat([real_logits, fake_logits]).double().cpu().numpy()
        targets = np.concatenate([np.ones(len(real_logits)), np.zeros(len(fake_logits))])
        model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(scores, targets)
        fitted = model.predict(scores)
        levels = np.asarray(model.y_thresholds_, dtype=np.float64).copy()
        inner = levels[(levels > 0) & (levels < 1)]
        n_top, n_bottom = int((fitted >= 1).sum()), int((fitted <= 0).sum())
        top = max((n_top + 1) / (n_top + 2), float(inner.max()) if inner.size else 0.5)
        bottom = min(1 / (n_bottom + 2), float(inner.min()) if inner.size else 0.5)
        levels[levels >= 1] = top
        levels[levels <= 0] = bottom
        return cls(torch.from_numpy(np.asarray(model.X_thresholds_, dtype=np.float64)), torch.from_numpy(levels))

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated ``p(real | x)``, ``[N]`` float64 strictly inside (0, 1)."""
        values = np.interp(logits.detach().double().cpu().numpy(), self.thresholds.numpy(), self.probabilities.numpy())
        return torch.from_numpy(values).to(logits.device)

    def log_ratio(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated ``log p / (1 - p)``, ``[N]`` float64, finite."""
        p = self.probability(logits)
        return torch.log(p) - torch.log1p(-p)


@dataclass(frozen=True)
class CalibrationReport:
    """How well a sampler's isotonic calibration fits held-out samples.

    Attributes:
        held_out: real and generated samples each in the held-out half.
        log_loss_raw / log_loss_calibrated: binary cross-entropy (nats) of the
            discriminator's own probability and of the calibrated one.
        brier_raw / brier_calibrated: mean squared error of the same.
        z_raw / z_calibrated: Dawid's calibration statistic
            ``sum(y - p) / sqrt(sum p (1 - p))``; |z| > 2 means miscalibrated
            (the MH-GAN paper's diagnostic).
    """

    held_out: int
    log_loss_raw: float
    log_loss_calibrated: float
    brier_raw: float
    brier_calibrated: float
    z_raw: float
    z_calibrated: float

    def as_dict(self) -> dict[str, float]:
        """JSON-friendly form."""
        return dict(self.__dict__)

    @classmethod
    def measure(cls, calibrator: IsotonicCalibrator, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> CalibrationReport:
        """Score the raw and the calibrated probabilities on held-out real and generated logits."""
        logits = torch.cat([real_logits, fake_logits]).double()
        y = torch.cat([torch.ones(len(real_logits)), torch.zeros(len(fake_logits))]).double()
        raw = _calibration_scores(torch.sigmoid(logits), y)
        calibrated = _calibration_scores(calibrator.probability(logits), y)
        return cls(len(real_logits), raw[0], calibrated[0], raw[1], calibrated[1], raw[2], calibrated[2])


def _calibration_scores(p: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """(log loss, Brier score, Dawid's z) of probabilities ``p`` for binary labels ``y``."""
    p = p.double().clamp(1e-12, 1 - 1e-12)
    log_loss = float(-(y * torch.log(p) + (1 - y) * torch.log1p(-p)).mean())
    brier = float(((p - y) ** 2).mean())
    z = float((y - p).sum() / torch.sqrt((p * (1 - p)).sum()))
    return log_loss, brier, z


class DensityRatio:
    """The log density ratio ``log p_data(x) / p_g(x)`` a density-ratio sampler uses.

    Args:
        method: the sampler's name, for error messages.
        discriminator: the discriminator to use; ``None`` takes the adapter's
            (:meth:`~gan_postproc.Adapter.require_discriminator`).
        allow_uncalibrated: run on a critic (``output="critic"``), whose raw
            score then stands in for the logit. Off by default: a critic is
            not a density ratio; calibrate it with
            :func:`~gan_postproc.plugins.density_ratio.calibrate_discriminator`, or pass
            ``calibrate_critic_on``.
        calibrate_critic_on: real data (as ``real_data``) to calibrate a critic
            on in :meth:`setup`: a copy is fine-tuned with binary cross-entropy
            (:func:`~gan_postproc.plugins.density_ratio.calibrated_copy`, default
            settings, the setup seed; shared by every sampler that asks for
            the same critic, data and seed). Ignored for a discriminator that
            already estimates density ratios.
        calibration: ``"isotonic"`` to fit :class:`IsotonicCalibrator` in
            :meth:`setup` on ``real_data`` and freshly generated samples, or
            ``None`` to use the discriminator's logit as it is.
        real_data: real samples for the isotonic fit (and for MH-GAN's chain
            start): a tensor in chain convention or a function ``(n, seed)``.
        real_labels: ``[N]`` class labels of a real-data tensor, needed when the
            discriminator is conditional.
        calibration_size: real and generated samples each for the fit; half
            fits, half is held out for :attr:`report`.

    Attributes (after :meth:`setup`):
        discriminator: the resolved :class:`~gan_postproc.Discriminator`.
        calibrator: the fitted :class:`IsotonicCalibrator` or ``None``.
        report: the :class:`CalibrationReport` of the isotonic fit, or ``None``.
        real: the real samples drawn for the fit (``[n, ...]``), or ``None``.
        real_labels_drawn: their labels, or ``None``.
        real_log_ratio: calibrated log ratios of :attr:`real`, ``[n]`` float64.
    """

    def __init__(
        self,
        method: str,
        discriminator: Discriminator | None = None,
        *,
        allow_uncalibrated: bool = False,
        calibrate_critic_on: RealData | None = None,
        calibration: Calibration = None,
        real_data: RealData | None = None,
        real_labels: torch.Tensor | None = None,
        calibration_size: int = DEFAULTS.isotonic_calibration_size,
    ) -> None:
        if discriminator is not None and not isinstance(discriminator, Discriminator):
            raise InputError(
                f"{method}: discriminator must be a gan_postproc.Discriminator with its output declared, got "
                f"{type(discriminator).__name__}; wrap it: Discriminator(module, output='logit')"
            )
        if calibration not in ("isotonic", None):
            raise InputError(f"{method}: calibration must be 'isotonic' or None, got {calibration!r}")
        if calibration == "isotonic" and real_data is None:
            raise InputError(
                f"{method}: calibration='isotonic' needs real samples to fit on; pass real_data= "
                "(a tensor of real samples in chain convention, or a function (n, seed) -> samples)"
            )
        if isinstance(real_data, str):
            real_data = load_real_data(real_data)
        if isinstance(calibrate_critic_on, str):
            calibrate_critic_on = load_real_data(calibrate_critic_on)
        if real_labels is not None and not isinstance(real_data, torch.Tensor):
            raise InputError(f"{method}: real_labels are only accepted with a real_data tensor (one label per row)")
        self.method = method
        self.explicit = discriminator
        self.allow_uncalibrated = bool(allow_uncalibrated)
        self.calibrate_critic_on = calibrate_critic_on
        self.calibration = calibration
        self.real_data = real_data
        self.real_labels = real_labels
        self.calibration_size = check_count(calibration_size, "calibration_size", minimum=4)
        self.discriminator: Discriminator | None = None
        self.calibrator: IsotonicCalibrator | None = None
        self.report: CalibrationReport | None = None
        self.real: torch.Tensor | None = None
        self.real_labels_drawn: torch.Tensor | None = None
        self.real_log_ratio: torch.Tensor | None = None

    # --- setup ------------------------------------------------------------------

    def resolve(self, adapter: Adapter, seed: int) -> Discriminator:
        """The discriminator to use: a critic is calibrated (``calibrate_critic_on``), refused, or
        (``allow_uncalibrated``) used raw with a warning."""
        discriminator = self.explicit if self.explicit is not None else adapter.require_discriminator(self.method)
        if discriminator.output is ScoreKind.CRITIC and self.calibrate_critic_on is not None:
            from .calibration import calibrated_copy

            discriminator = calibrated_copy(adapter, discriminator, self.calibrate_critic_on, seed)
        if discriminator.output is ScoreKind.CRITIC:
            if not self.allow_uncalibrated:
                raise UncalibratedDiscriminatorError(
                    f"{self.method} needs density ratios p_data(x)/p_g(x), but the discriminator is declared a critic "
                    "(WGAN/hinge score), which estimates none (used raw, it makes samples worse). Calibrate a copy "
                    "first: pass calibrate_critic_on=<real data> (a copy is calibrated in setup), or "
                    "D_cal = gan_postproc.plugins.density_ratio.calibrate_discriminator(adapter, real_data) and pass "
                    f"discriminator=D_cal; or, to run on the raw critic anyway, pass allow_uncalibrated=True"
                )
            warnings.warn(
                f"{self.method} runs on a critic's raw score as if it were a logit (allow_uncalibrated=True); "
                "its 'density ratios' are not ones, expect worse samples than with a calibrated discriminator",
                UncalibratedDiscriminatorWarning,
                stacklevel=3,
            )
        self.discriminator = discriminator
        return discriminator

    def setup(self, adapter: Adapter, seed: int) -> None:
        """Resolve the discriminator, check it separates samples, and fit the calibration.

        Scores generated samples (``calibration_size`` of them with real data,
        else ``DEFAULTS.density_ratio_probe_size``) and refuses a
        discriminator whose output is (nearly) constant on them. With
        ``calibration="isotonic"`` fits :attr:`calibrator` on the first half of
        the real and generated samples and reports its quality on the other
        half (:attr:`report`). Deterministic given ``seed``.
        """
        self.resolve(adapter, seed)
        if self.real_data is None:
            probe, _ = self.prior_raw_logits(adapter, DEFAULTS.density_ratio_probe_size, seed, f"{self.method}_probe")
            check_informative(probe, self.method, "generated samples")
            return
        real, labels = self._draw_real(adapter, seed)
        fake_logits, sample_shape = self.prior_raw_logits(adapter, len(real), seed, f"{self.method}_calibration")
        check_sample_shape(real, "real_data", sample_shape, "the generator")
        real_logits = self.raw_logit(real, labels)
        check_informative(fake_logits, self.method, "generated samples")
        if self.calibration == "isotonic":
            half = len(real) // 2
            self.calibrator = IsotonicCalibrator.fit(real_logits[:half], fake_logits[:half])
            self.report = CalibrationReport.measure(self.calibrator, real_logits[half:], fake_logits[half:])
            check_informative(self.calibrator.log_ratio(fake_logits), self.method, "generated samples after isotonic calibration")
        self.real, self.real_labels_drawn = real, labels
        self.real_log_ratio = self.calibrate(real_logits)

    def prior_raw_logits(self, adapter: Adapter, n: int, seed: int, stream: str) -> tuple[torch.Tensor, torch.Size]:
        """Raw logits (:meth:`raw_logit`) of ``n`` samples of :func:`prior_batches`, generated and scored a
        batch at a time (only the logits are kept), and the generated samples' shape.

        Returns:
            ``([n] float64 on the CPU, the shape of one sample)``.
        """
        parts, shape = [], torch.Size()
        for _, labels, samples in prior_batches(adapter, n, seed, stream):
            parts.append(self.raw_logit(samples, labels))
            shape = samples.shape[1:]
        return torch.cat(parts), shape

    def _draw_real(self, adapter: Adapter, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert self.discriminator is not None and self.real_data is not None
        n = self.calibration_size
        stream = f"{self.method}_real"
        real = real_samples(self.real_data, n, seed, stream, adapter.value_range)
        labels = None
        if self.real_labels is not None:
            assert isinstance(self.real_data, torch.Tensor)
            check_labels(self.real_labels, "real_labels", num_classes=adapter.num_classes, n=len(self.real_data))
            labels = self.real_labels[real_order(seed, len(self.real_data), stream)[:n]].cpu()
        elif self.discriminator.conditional:
            raise InputError(
                f"{self.method}: the discriminator is conditional, so real samples need labels; "
                "pass real_data=<tensor> with real_labels=<[N] class indices>"
            )
        if len(real) < 4:
            raise InputError(f"{self.method} needs at least 4 real samples, got {len(real)}")
        return real, labels

    # --- scoring ----------------------------------------------------------------

    def raw_logit(self, samples: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The discriminator's logit (a critic's raw score, if allowed), ``[N]`` float64, no gradients.

        Scores in batches of :func:`~gan_postproc.pipeline.batching.work_batch_size`; a batch smaller than the discriminator's
        ``min_batch_size`` is padded by repeating rows (the padding is dropped).
        """
        discriminator = self.discriminator
        if discriminator is None:
            raise InputError(f"{self.method}: call setup(adapter, seed) before scoring (a Chain does it for you)")
        device = next((p.device for p in discriminator.parameters()), samples.device)
        parts = []
        with torch.no_grad():
            for rows in row_slices(len(samples)):
                x = samples[rows].to(device)
                y = None if labels is None else labels[rows].to(device)
                x, y, n = discriminator.padded(x, y)
                if discriminator.output is ScoreKind.CRITIC:
                    scores = discriminator(x, y)
                else:
                    scores = discriminator.logit(x, y)
                parts.append(scores[:n].double())
        return check_model_output(torch.cat(parts).cpu(), f"{self.method}: the discriminator")

    def calibrate(self, logits: torch.Tensor) -> torch.Tensor:
        """Raw logits -> the log ratios the sampler uses (isotonic-calibrated if fitted), float64."""
        return logits if self.calibrator is None else self.calibrator.log_ratio(logits)

    def log_ratio(self, samples: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Estimated ``log p_data(x) / p_g(x)``, ``[N]`` float64 on the CPU."""
        return self.calibrate(self.raw_logit(samples, labels))

    def describe(self) -> dict[str, object]:
        """Settings and calibration quality, for run manifests."""
        info: dict[str, object] = {
            "discriminator": None if self.discriminator is None else self.discriminator.output.value,
            "allow_uncalibrated": self.allow_uncalibrated,
            "calibration": self.calibration,
        }
        if self.report is not None:
            info["calibration_report"] = self.report.as_dict()
        return info


def check_informative(log_ratios: torch.Tensor, method: str, what: str) -> None:
    """Refuse (nearly) constant scores: they carry no density ratio to sample with."""
    spread = float(log_ratios.max() - log_ratios.min())
    if spread <= _CONSTANT_SPREAD * max(1.0, float(log_ratios.abs().max())):
        raise InputError(
            f"{method}: the discriminator gives (nearly) the same score to all {len(log_ratios)} {what} "
            f"(logits span {spread:.3g} around {float(log_ratios.mean()):.4g}); it cannot tell samples apart, "
            "so every density ratio would be equal. Check that it is trained and not saturated "
            "(a probability output stuck at 0 or 1), or calibrate it with calibrate_discriminator"
        )


def benchmark_calibration(context: BenchmarkContext) -> tuple[RealData | None, str]:
    """For a benchmark row: real data to calibrate the suite's critic on in setup
    (``None`` when its discriminator already estimates density ratios), and a note
    saying which discriminator the row uses. Rows of one suite share the calibration."""
    source = context.adapter.require_discriminator("the density-ratio benchmark rows")
    if source.estimates_density_ratio:
        return None, f"the suite's discriminator (declared {source.output.value})"
    note = (f"calibrated copy of the {source.output.value} (BCE fine-tune, {DEFAULTS.calibration_steps} steps "
            "on context.real_data, in setup, shared by the density-ratio rows)")
    return context.real_data, note


def network_floor(adapter: Adapter, ratio: DensityRatio) -> FloorFn:
    """A benchmark ``floor``: generate and score as many proposals as the method made for a batch.

    The count is ``batch.provenance["proposals"].sum()`` (every density-ratio
    sampler records its proposals per sample there). The floor draws that many
    prior latents and runs the generator and the discriminator ``ratio``
    resolved in setup on them, ``len(batch)`` at a time (the method's own
    batch shape): the network passes a density-ratio sampler cannot avoid.
    """

    def floor(batch: SampleBatch, report: RunReport) -> None:
        discriminator = ratio.discriminator
        if discriminator is None:
            raise InputError(f"{ratio.method}: the floor needs the sampler's setup to have run first")
        total = int(batch.provenance["proposals"].sum())
        for rows in row_slices(total, len(batch)):  # the method's batch shape: len(batch) proposals per call at most
            indices = torch.arange(rows.start, rows.stop)
            latents = adapter.prior.sample(0, indices, "floor", device=adapter.device)
            labels = None if adapter.num_classes is None else rng.randint(0, indices, adapter.num_classes, "floor", device=adapter.device)
            with torch.no_grad():
                samples, labels, _ = discriminator.padded(adapter.generate(latents, labels), labels)  # as raw_logit pads
                if discriminator.output is ScoreKind.CRITIC:
                    discriminator(samples, labels)
                else:
                    discriminator.logit(samples, labels)

    return floor


@dataclass(frozen=True)
class ScoredProposals:
    """A block of proposal rounds for every index of a request.

    Attributes:
        rounds: the proposal rounds in this block (``range``).
        latents: ``[len(rounds), n, *latent_shape]``.
        samples: ``[len(rounds), n, ...]`` generated samples (chain convention).
        log_ratio: ``[len(rounds), n]`` float64 estimated log density ratios.
    """

    rounds: range
    latents: torch.Tensor
    samples: torch.Tensor
    log_ratio: torch.Tensor


def scored_proposals(
    adapter: Adapter, request: SampleRequest, ratio: DensityRatio, count: int, stream: str, labels: torch.Tensor | None
) -> Iterator[ScoredProposals]:
    """Generate and score ``count`` proposals per requested index, a block of rounds at a time.

    Proposal ``k`` of index ``i`` is keyed by ``(seed, i, attempt, k, stream)``
    (round 0 uses the caller's latents, if given), so it does not depend on
    the batch. Rounds are grouped so that one network call handles at most
    :func:`~gan_postproc.pipeline.batching.work_batch_size` samples (one round when the
    request is a full batch); only one block is in memory at a time, so a
    sampler that folds the blocks (MH-GAN, SIR) never holds all ``count * n`` samples.
    """
    n = len(request)
    per_block = max(1, work_batch_size() // n)
    for begin in range(0, count, per_block):
        rounds = range(begin, min(count, begin + per_block))
        latents = torch.stack([request.draw_latents(adapter, stream, round=k) for k in rounds])
        flat_labels = None if labels is None else labels.repeat(len(rounds))
        with torch.no_grad():
            samples = adapter.generate_finite(latents.flatten(0, 1), flat_labels)
        log_ratio = ratio.log_ratio(samples, flat_labels).view(len(rounds), n)
        yield ScoredProposals(rounds, latents, samples.view(len(rounds), n, *samples.shape[1:]), log_ratio)


@dataclass
class HeldProposals:
    """The proposal each requested index currently holds, replaced row by row (MH-GAN's chain state, SIR's pick).

    Attributes:
        latents: ``[n, *latent_shape]``.
        samples: ``[n, ...]``.
        log_ratio: ``[n]`` float64 log density ratio of the held proposal.
        round: ``[n]`` int64 proposal round it came from (``-1``: none yet).
    """

    latents: torch.Tensor
    samples: torch.Tensor
    log_ratio: torch.Tensor
    round: torch.Tensor

    @classmethod
    def first_of(cls, block: ScoredProposals) -> HeldProposals:
        """Hold the first proposal of ``block`` for every index."""
        n = block.log_ratio.shape[1]
        first = torch.full((n,), block.rounds.start, dtype=torch.int64)
        return cls(block.latents[0].clone(), block.samples[0].clone(), block.log_ratio[0].clone(), first)

    def take(self, rows: torch.Tensor, block: ScoredProposals, offset: int) -> None:
        """Replace the held proposal by proposal ``block.rounds[offset]`` where ``rows`` (``[n]`` bool) is True."""
        on_latents = rows.to(self.latents.device)
        self.latents[on_latents] = block.latents[offset][on_latents]
        on_samples = on_latents.to(self.samples.device)
        self.samples[on_samples] = block.samples[offset][on_samples]
        self.log_ratio = torch.where(rows, block.log_ratio[offset], self.log_ratio)
        self.round[rows] = block.rounds[offset]
