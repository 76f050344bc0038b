"""DiffRS: diffusion rejection sampling with DG's time-dependent discriminator (Na et al., ICML 2024).

Na et al., *Diffusion Rejection Sampling*, Section 3: the sampler's
transition kernel ``p_theta(x_{t-1} | x_t)`` differs from the true reverse
transition ``q(x_{t-1} | x_t)``. Writing both through Bayes' rule with the
same forward kernel ``q(x_t | x_{t-1})``,

    q(x_{t-1} | x_t) / p_theta(x_{t-1} | x_t) = [q_{t-1}(x_{t-1}) / p_{t-1}(x_{t-1})] / [q_t(x_t) / p_t(x_t)] = r_{t-1}(x_{t-1}) / r_t(x_t),

with ``r_t = q_t / p_t`` the density ratio of real to generated marginals at
time t, which the DG discriminator estimates: ``log r_t(x) = log d / (1 - d)``
(its logit). Rejection sampling with the model's transition as proposal then
accepts a proposed ``x_{t-1}`` with probability

    A_{t-1} = min(1, r_{t-1}(x_{t-1}) / (M_{t-1} r_t(x_t))),

and the first sample ``x_T`` of the prior with ``min(1, r_T(x_T) / M_T)``.
The bounds M are not known; the reference code (``generate_diffrs.py``,
``rej_percentile``) sets ``log M`` per step to the gamma-quantile of the log
ratios of warm-up samples of the base sampler, floored at 0; so does
:meth:`DiffRS.fit_thresholds`.

A rejected proposal is not redrawn from the same ``x_t``: the sampler backs
off. The rejected ``x_{t-1}`` is diffused forward ``backsteps`` levels with the
forward kernel ``q(x_{t+b-1} | x_{t-1})`` and that sample is checked against the
*marginal* ratio ``min(1, r(x) / M)`` at its level; a rejection there backs off
again, and at the first level (x_T) a rejected sample is replaced by a fresh
draw of the prior. Accepted samples continue denoising from where they are.

Bounded and keyed (both differ from the reference code, which restarts a
sample from scratch when its evaluations exceed ``max_iter`` and draws from
one global generator): every sample may take at most
``max_rounds_per_step * K`` rounds (a round is one proposal or one check);
past that it continues as the plain sampler (no more rejection), so its cost
is at most that many rounds plus K denoiser calls. Every random number of
sample i in round r is keyed by ``(seed, i, stream, r)`` (:mod:`gan_postproc.rng`),
and the rounds advance all samples in lockstep (one event per sample per
round), so a sample's result does not depend on the batch it runs in.

The base sampler is the DDPM ancestral step (Ho et al. 2020, Eq. 6-7: the
posterior ``q(x_{t'} | x_t, x_0)`` with ``x_0`` predicted by the denoiser),
between the sampler's timesteps, with ``x_0`` clipped as the scheduler
clips it: diffusers' ``DDPMScheduler.step`` with ``variance_type="fixed_small"``,
rewritten here because DiffRS needs every sample at its own timestep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from gan_postproc import rng
from gan_postproc.errors import InputError
from gan_postproc.validation import check_count, check_probability

from .defaults import DEFAULTS
from .guidance import PREDICTION_TYPES

__all__ = ["AncestralSchedule", "DiffRSThresholds", "DiffRSStatistics", "DiffRS", "Denoise", "LogRatio"]

#: ``(x [B, ...], t [B] int64) -> prediction [B, ...]`` (epsilon, v or x_0, as the schedule's prediction_type says).
Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``(x [B, ...], t [B] int64) -> log r_t(x) [B]`` (the discriminator's logit).
LogRatio = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.device, torch.float32).view(-1, *([1] * (like.dim() - 1)))


@dataclass(frozen=True)
class AncestralSchedule:
    """The base sampler: DDPM ancestral steps between ``timesteps`` of a ``T``-step training schedule.

    Attributes:
        alphas_cumprod: ``[T]`` abar_t of the training schedule.
        timesteps: the sampler's timesteps, decreasing (``scheduler.timesteps``); level k
            is the sample at ``timesteps[k]``, level K = ``len(timesteps)`` the output x_0.
        prediction_type: ``"epsilon"``, ``"v_prediction"`` or ``"sample"``.
        clip_sample_range: clip the predicted x_0 to ``[-c, c]`` (``None``: no clipping).
    """

    alphas_cumprod: torch.Tensor
    timesteps: torch.Tensor
    prediction_type: str = "epsilon"
    clip_sample_range: float | None = None

    def __post_init__(self) -> None:
        if self.prediction_type not in PREDICTION_TYPES:
            raise InputError(f"prediction_type must be one of {list(PREDICTION_TYPES)}, got {self.prediction_type!r}")
        steps = torch.as_tensor(self.timesteps).long().cpu()
        if steps.dim() != 1 or len(steps) == 0 or bool((steps[1:] >= steps[:-1]).any()) or int(steps.min()) < 0 \
                or int(steps.max()) >= len(self.alphas_cumprod):
            raise InputError(f"timesteps must decrease within [0, {len(self.alphas_cumprod)}), got {steps.tolist()}")
        object.__setattr__(self, "timesteps", steps)
        object.__setattr__(self, "alphas_cumprod", torch.as_tensor(self.alphas_cumprod).double().cpu())

    @property
    def levels(self) -> int:
        """K: the number of denoising steps (levels 0 .. K)."""
        return len(self.timesteps)

    def timestep(self, level: torch.Tensor) -> torch.Tensor:
        """The training timestep of each level; level K (the output) is judged at timestep 0."""
        padded = torch.cat([self.timesteps, torch.zeros(1, dtype=torch.long)]).to(level.device)
        return padded[level]

    def alpha_bar(self, level: torch.Tensor) -> torch.Tensor:
        """abar at each level (1 at level K: x_0 carries no noise)."""
        padded = torch.cat([self.alphas_cumprod[self.timesteps], torch.ones(1, dtype=torch.float64)]).to(level.device)
        return padded[level]

    def predicted_x0(self, x: torch.Tensor, prediction: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
        """x_0 from the prediction (epsilon: (x - sqrt(1 - abar) eps) / sqrt(abar); v: sqrt(abar) x - sqrt(1 - abar) v)."""
        a = _expand(abar, x)
        if self.prediction_type == "epsilon":
            x0 = (x - (1 - a).sqrt() * prediction) / a.sqrt()
        elif self.prediction_type == "v_prediction":
            x0 = a.sqrt() * x - (1 - a).sqrt() * prediction
        else:
            x0 = prediction
        return x0 if self.clip_sample_range is None else x0.clamp(-self.clip_sample_range, self.clip_sample_range)

    def step(self, x: torch.Tensor, prediction: torch.Tensor, level: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One ancestral step from each sample's level k to k + 1 (Ho et al. 2020, Eq. 6-7).

        ``mean = sqrt(abar') beta / (1 - abar) x_0 + sqrt(alpha) (1 - abar') / (1 - abar) x_t``,
        ``var = (1 - abar') / (1 - abar) beta``, with ``alpha = abar / abar'``, ``beta = 1 - alpha``
        and abar' the next level's; no noise is added on the step to x_0.
        """
        abar, abar_next = self.alpha_bar(level), self.alpha_bar(level + 1)
        x0 = self.predicted_x0(x.float(), prediction.float(), abar)
        alpha = abar / abar_next
        beta = 1 - alpha
        mean = _expand(abar_next.sqrt() * beta / (1 - abar), x) * x0 + _expand(alpha.sqrt() * (1 - abar_next) / (1 - abar), x) * x.float()
        variance = ((1 - abar_next) / (1 - abar) * beta).clamp(min=1e-20)
        last = (level + 1) == self.levels
        std = torch.where(last, torch.zeros_like(variance), variance.sqrt())
        return mean + _expand(std, x) * noise

    def renoise(self, x: torch.Tensor, level: torch.Tensor, to_level: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The forward kernel from level k back to an earlier level k' <= k: ``sqrt(abar'/abar) x + sqrt(1 - abar'/abar) z``."""
        ratio = self.alpha_bar(to_level) / self.alpha_bar(level)
        return _expand(ratio.sqrt(), x) * x + _expand((1 - ratio).clamp(min=0).sqrt(), x) * noise


@dataclass(frozen=True)
class DiffRSThresholds:
    """``log M`` per level: ``marginal[k]`` for checks of x at level k, ``transition[k]`` for proposals arriving at level k.

    Both ``[K + 1]`` (``transition[0]`` is unused), floored at 0, from :meth:`DiffRS.fit_thresholds`.
    """

    marginal: torch.Tensor
    transition: torch.Tensor
    percentile: float
    warmup_samples: int

    def as_dict(self) -> dict[str, Any]:
        return {"marginal": self.marginal.tolist(), "transition": self.transition.tolist(), "percentile": self.percentile,
                "warmup_samples": self.warmup_samples}


@dataclass
class DiffRSStatistics:
    """What the rejection did, for the run report.

    Attributes:
        samples: samples produced.
        proposals, accepted: transition proposals made and accepted, in all and per arriving level (``[K + 1]`` lists).
        marginal_checks, marginal_rejections: checks of backed-off samples and of x_T, and how many failed.
        prior_redraws: rejected x_T replaced by fresh prior draws.
        backoffs: rejected samples sent back to an earlier level.
        exhausted: samples that reached their round budget and finished without rejection.
        denoiser_calls: denoiser evaluations per sample (the plain sampler needs K).
        rounds: lockstep rounds of the run.
    """

    samples: int = 0
    proposals: int = 0
    accepted: int = 0
    proposals_per_level: list[int] = field(default_factory=list)
    accepted_per_level: list[int] = field(default_factory=list)
    marginal_checks: int = 0
    marginal_rejections: int = 0
    prior_redraws: int = 0
    backoffs: int = 0
    exhausted: int = 0
    denoiser_calls: list[int] = field(default_factory=list)
    rounds: int = 0

    @property
    def acceptance_rate(self) -> float:
        """Accepted transition proposals / proposals."""
        return self.accepted / self.proposals if self.proposals else float("nan")

    def as_dict(self) -> dict[str, Any]:
        calls = torch.tensor(self.denoiser_calls, dtype=torch.float64) if self.denoiser_calls else torch.zeros(1, dtype=torch.float64)
        return {
            "samples": self.samples, "proposals": self.proposals, "accepted": self.accepted, "acceptance_rate": self.acceptance_rate,
            "acceptance_per_level": [a / p if p else None for a, p in zip(self.accepted_per_level, self.proposals_per_level)],
            "marginal_checks": self.marginal_checks, "marginal_rejections": self.marginal_rejections,
            "prior_redraws": self.prior_redraws, "backoffs": self.backoffs, "exhausted": self.exhausted,
            "denoiser_calls_mean": float(calls.mean()), "denoiser_calls_max": int(calls.max()), "rounds": self.rounds,
        }

    def merge(self, other: DiffRSStatistics) -> None:
        """Add another batch's statistics to these."""
        for name in ("samples", "proposals", "accepted", "marginal_checks", "marginal_rejections", "prior_redraws", "backoffs", "exhausted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.proposals_per_level = [a + b for a, b in zip(self.proposals_per_level or [0] * len(other.proposals_per_level), other.proposals_per_level)]
        self.accepted_per_level = [a + b for a, b in zip(self.accepted_per_level or [0] * len(other.accepted_per_level), other.accepted_per_level)]
        self.denoiser_calls += other.denoiser_calls
        self.rounds = max(self.rounds, other.rounds)


class DiffRS:
    """Diffusion rejection sampling over an :class:`AncestralSchedule` (module docstring).

    Args:
        denoise: the diffusion model, ``(x, t) -> prediction``, batched, per-sample timesteps.
        log_ratio: the discriminator's logit ``(x, t) -> [B]`` (no gradient needed).
        schedule: the base sampler.
        sample_shape: shape of one sample x_t, e.g. ``(C, H, W)``.
        percentile: gamma of the thresholds (quantile of the warm-up log ratios).
        backsteps: levels a rejected sample is sent back by.
        max_rounds_per_step: the round budget of a sample is this times K.
        device: where the samples live (the denoiser's device).
    """

    def __init__(
        self,
        denoise: Denoise,
        log_ratio: LogRatio,
        schedule: AncestralSchedule,
        sample_shape: Sequence[int],
        *,
        percentile: float = DEFAULTS.diffrs_percentile,
        backsteps: int = DEFAULTS.diffrs_backsteps,
        max_rounds_per_step: int = DEFAULTS.diffrs_max_rounds_per_step,
        device: torch.device | str = "cpu",
    ) -> None:
        self.denoise, self.log_ratio, self.schedule = denoise, log_ratio, schedule
        self.sample_shape = tuple(sample_shape)
        self.percentile = check_probability(percentile, "percentile")
        self.backsteps = check_count(backsteps, "backsteps")
        self.max_rounds = check_count(max_rounds_per_step, "max_rounds_per_step") * schedule.levels
        self.device = torch.device(device)
        self.thresholds: DiffRSThresholds | None = None

    def _normal(self, seed: int, indices: torch.Tensor, *keys: int | str) -> torch.Tensor:
        return rng.normal(seed, indices, self.sample_shape, *keys).to(self.device)

    def _uniform(self, seed: int, indices: torch.Tensor, *keys: int | str) -> torch.Tensor:
        return rng.uniform(seed, indices, (), *keys, dtype=torch.float64).to(self.device)

    def fit_thresholds(self, n: int = DEFAULTS.diffrs_warmup_samples, *, seed: int = 0, batch_size: int = 500) -> DiffRSThresholds:
        """Estimate ``log M`` per level from ``n`` samples of the base sampler (their own keyed stream)."""
        n, batch_size = check_count(n, "n"), check_count(batch_size, "batch_size")
        levels = self.schedule.levels
        ratios = []
        for start in range(0, n, batch_size):
            indices = torch.arange(start, min(start + batch_size, n), device=self.device)
            x = self._normal(seed, indices, "diffrs_warmup_prior")
            level = torch.zeros(len(indices), dtype=torch.long, device=self.device)
            per_level = [self.log_ratio(x, self.schedule.timestep(level)).double()]
            for k in range(levels):
                prediction = self.denoise(x, self.schedule.timestep(level))
                x = self.schedule.step(x, prediction, level, self._normal(seed, indices, "diffrs_warmup_step", k))
                level = level + 1
                per_level.append(self.log_ratio(x, self.schedule.timestep(level)).double())
            ratios.append(torch.stack(per_level, dim=1).cpu())
        table = torch.cat(ratios)  # [n, K + 1]
        marginal = torch.quantile(table, self.percentile, dim=0).clamp(min=0)
        transition = torch.cat([torch.zeros(1, dtype=torch.float64),
                                torch.quantile(table[:, 1:] - table[:, :-1], self.percentile, dim=0).clamp(min=0)])
        self.thresholds = DiffRSThresholds(marginal=marginal, transition=transition, percentile=self.percentile, warmup_samples=n)
        return self.thresholds

    def sample(self, indices: torch.Tensor, seed: int) -> tuple[torch.Tensor, DiffRSStatistics]:
        """Samples x_0 ``[N, *sample_shape]`` for the global sample ``indices [N]``, and the run's statistics."""
        if self.thresholds is None:
            raise InputError("DiffRS needs its thresholds first: call fit_thresholds(...) (or set .thresholds)")
        marginal, transition = (self.thresholds.marginal.to(self.device), self.thresholds.transition.to(self.device))
        indices = torch.as_tensor(indices, dtype=torch.long).to(self.device)
        n, levels, schedule = len(indices), self.schedule.levels, self.schedule
        x = self._normal(seed, indices, "diffrs_start")
        level = torch.zeros(n, dtype=torch.long, device=self.device)
        ell = torch.zeros(n, dtype=torch.float64, device=self.device)
        checking = torch.ones(n, dtype=torch.bool, device=self.device)
        done = torch.zeros(n, dtype=torch.bool, device=self.device)
        rounds = torch.zeros(n, dtype=torch.long, device=self.device)
        calls = torch.zeros(n, dtype=torch.long, device=self.device)
        stats = DiffRSStatistics(samples=n, proposals_per_level=[0] * (levels + 1), accepted_per_level=[0] * (levels + 1))
        r = 0
        while not bool(done.all()):
            exhausted = rounds >= self.max_rounds
            check = ~done & checking
            propose = ~done & ~checking
            if bool(check.any()):
                rows = check.nonzero()[:, 0]
                k = level[rows]
                value = self.log_ratio(x[rows], schedule.timestep(k)).double()
                u = self._uniform(seed, indices[rows], "diffrs_accept", r)
                accept = exhausted[rows] | (u.log() <= value - marginal[k])
                stats.marginal_checks += len(rows)
                stats.marginal_rejections += int((~accept).sum())
                ok, bad = rows[accept], rows[~accept]
                ell[ok], checking[ok] = value[accept], False
                at_prior = bad[level[bad] == 0]
                stats.prior_redraws += len(at_prior)
                if len(at_prior):
                    x[at_prior] = self._normal(seed, indices[at_prior], "diffrs_prior", r)
                back = bad[level[bad] > 0]
                if len(back):
                    self._back_off(x, level, back, self._normal(seed, indices[back], "diffrs_back", r), stats)
            if bool(propose.any()):
                rows = propose.nonzero()[:, 0]
                k = level[rows]
                prediction = self.denoise(x[rows], schedule.timestep(k))
                proposal = schedule.step(x[rows], prediction, k, self._normal(seed, indices[rows], "diffrs_step", r))
                calls[rows] += 1
                value = self.log_ratio(proposal, schedule.timestep(k + 1)).double()
                u = self._uniform(seed, indices[rows], "diffrs_accept", r)
                accept = exhausted[rows] | (u.log() <= value - ell[rows] - transition[k + 1])
                stats.proposals += len(rows)
                stats.accepted += int(accept.sum())
                for level_value, accepted in zip((k + 1).tolist(), accept.tolist()):
                    stats.proposals_per_level[level_value] += 1
                    stats.accepted_per_level[level_value] += int(accepted)
                x[rows] = proposal
                level[rows] = k + 1
                ok, bad = rows[accept], rows[~accept]
                ell[ok] = value[accept]
                done[ok] = level[ok] == levels
                if len(bad):
                    checking[bad] = True
                    self._back_off(x, level, bad, self._normal(seed, indices[bad], "diffrs_back", r), stats)
            stats.exhausted += int((~exhausted & ~done & (rounds + 1 >= self.max_rounds)).sum())
            rounds[~done] += 1
            r += 1
        stats.denoiser_calls = calls.tolist()
        stats.rounds = r
        return x, stats

    def _back_off(self, x: torch.Tensor, level: torch.Tensor, rows: torch.Tensor, noise: torch.Tensor, stats: DiffRSStatistics) -> None:
        """Send ``rows`` back ``backsteps`` levels (not below 0) with the forward kernel; in place."""
        target = (level[rows] - self.backsteps).clamp(min=0)
        x[rows] = self.schedule.renoise(x[rows], level[rows], target, noise)
        level[rows] = target
        stats.backoffs += len(rows)
