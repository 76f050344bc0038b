"""Training the latent importance network ``w_phi`` (Algorithm 1); public through ``gan_postproc.plugins.latent_reweighting``.

Issenhuth, Tanielian, Picard, Mary, "Latent reweighting, an almost free
improvement for GANs" (WACV 2022), Section 3.2, Algorithm 1. With the
generator ``G`` frozen, a WGAN-GP critic ``D`` and the importance network
``w`` play

    inf_w sup_D  E_{x ~ data} D(x) - E_{z ~ prior} w(z) D(G(z))          (Eq. 5)

alternating ``n_d`` critic updates, each minimising
``-(mean D(x) - mean w(z) D(G(z))) + lambda_GP * GP`` (GP: the gradient
penalty of Gulrajani et al. on real/fake interpolates), with one update of
``w`` maximising Eq. 6,

    mean w(z) (D(G(z)) - Delta) - lambda1 (mean w(z) - 1)^2 - lambda2 mean max(0, w(z) - m)^2,

where ``Delta = min_batch D(G(z))`` keeps the reward non-negative (so ``w``
cannot win by going to 0 where the critic is negative), the
self-normalisation term keeps ``E w = 1`` (Lemma 1) and the soft clipping
keeps ``w <= m`` (the rejection bound of latentRS, and a guard against
collapse onto a few latents, Theorem 1).

Choices the paper leaves open, made here and documented:

* the critic starts from a copy of the GAN's own discriminator (Algorithm 1
  takes "Disc. D_alpha" as input; the user's network is never changed) or
  from ``critic=`` (e.g. a fresh, smaller critic), and first gets
  ``critic_warmup`` updates against the unweighted generator;
* ``w`` starts at exactly 1 everywhere (see :class:`ImportanceNetwork`);
* model selection on held-out real data: every ``eval_every`` updates the
  reweighted model (a fixed pool of prior draws, weighted by
  ``min(w / mean w, m)``: the distribution latentRS samples from) is scored
  by its sliced Wasserstein-1 distance to held-out real samples, and the
  best snapshot is returned; step 0 (``w = 1``, the bare generator) is a
  candidate, so selection never returns a network that scored worse than no
  reweighting on the held-out data. The sliced distance of a weighted pool
  is exact and smooth in the weights. Tried first on the DOT 2-D models: an
  EMD of points resampled from the pool changed by about 0.01 (7%) when
  ``w`` barely changed (a new resample), so selecting on it picked noise; the
  energy distance was smooth but disagreed with the EMD (swissroll: -44%
  energy distance, +14% EMD).
  Without ``validation_data`` the last iterate is returned;
* the returned network is normalised so ``E_prior[w] = 1`` exactly (its
  ``scale``), which makes latentRS's acceptance rate ``1/m``.

Training is deterministic for a given seed (every random number is keyed
by seed, step and stream via :mod:`gan_postproc.rng`), checkpointed to
safetensors atomically, and resumes where it stopped when re-run with the
same ``checkpoint_dir`` (with tensor data, a resumed run computes exactly
what an uninterrupted one does).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gan_postproc import rng
from gan_postproc.errors import CheckpointError, InputError, InputTypeError, MissingModelError
from gan_postproc.files.checkpoints import load_checkpoint, read_checkpoint_state, save_checkpoint
from gan_postproc.files.loading import checked_entries, differing_keys
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batching import row_slices
from gan_postproc.pipeline.ranges import CHAIN_RANGE
from gan_postproc.pipeline.scoring import Discriminator, ScoreKind
from gan_postproc.plugins.latent_reweighting.importance_network import (
    ImportanceNetwork,
    as_importance_network,
    check_max_weight,
    network_inputs,
    resolve_layer,
)
from gan_postproc.validation import check_count, check_images, check_positive, check_sample_shape

from .defaults import DEFAULTS

__all__ = ["ImportanceNetwork", "ImportanceTraining", "train_importance_network", "as_importance_network"]

#: File names inside ``checkpoint_dir``.
CHECKPOINT_NAME = "last.safetensors"
#: Entries of a checkpoint's ``state`` metadata.
_STATE_KEYS = ("config", "step", "history", "best_step", "best_score", "baseline_score")
#: What to do about a damaged checkpoint.
_DAMAGED = "it is damaged: delete it to start over"
#: Rows per pass of the (small) importance MLP over the evaluation pool's stored inputs.
_CHUNK = 4096
#: Random directions of the sliced Wasserstein distance used for selection.
_DIRECTIONS = 128

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ImportanceTraining:
    """What :func:`train_importance_network` returns.

    Attributes:
        network: the selected network (best held-out EMD; the last one
            without validation data), normalised so ``E_prior[w] = 1``, in eval mode.
        critic: the critic at the end of training.
        steps: updates of ``w`` done in total.
        history: one record per evaluation: ``step``, ``critic_loss``,
            ``importance_loss``, ``wasserstein_estimate`` (the critic's
            ``mean D(x) - mean w D(G(z))`` on the last batch), ``mean_weight``
            and ``acceptance`` (``E min(w / mean w, m) / m`` over the pool),
            and ``heldout_sliced_w1`` (sliced Wasserstein-1 distance to the
            held-out data, ``None`` without validation data).
        best_step: the step of ``network`` (0 means ``w = 1``: no
            reweighting scored better on the held-out data).
        baseline_score: held-out sliced W1 of the unweighted generator (step 0).
        best_score: held-out sliced W1 of ``network``.
        checkpoint: the checkpoint file, if any.
    """

    network: ImportanceNetwork
    critic: Discriminator
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int | None = None
    baseline_score: float | None = None
    best_score: float | None = None
    checkpoint: Path | None = None


def train_importance_network(
    adapter: Adapter,
    real_data: torch.Tensor | Iterable[Any],
    *,
    validation_data: torch.Tensor | None = None,
    critic: nn.Module | Discriminator | None = None,
    network: ImportanceNetwork | None = None,
    layer: str | None = None,
    max_weight: float | None = None,
    steps: int = DEFAULTS.importance_steps,
    critic_steps: int = DEFAULTS.importance_critic_steps,
    critic_warmup: int = DEFAULTS.importance_critic_warmup,
    batch_size: int = DEFAULTS.importance_batch_size,
    lr: float = DEFAULTS.importance_lr,
    critic_lr: float = DEFAULTS.importance_critic_lr,
    lambda_norm: float = DEFAULTS.importance_lambda_norm,
    lambda_clip: float = DEFAULTS.importance_lambda_clip,
    gp_weight: float = DEFAULTS.importance_gp_weight,
    eval_every: int = DEFAULTS.importance_eval_every,
    eval_samples: int = DEFAULTS.importance_eval_samples,
    eval_pool: int = DEFAULTS.importance_eval_pool,
    selection_features: FeatureFn | None = None,
    checkpoint_dir: str | Path | None = None,
    seed: int = DEFAULTS.seed,
    progress: bool = True,
) -> ImportanceTraining:
    """Train ``w_phi`` for a frozen generator by Algorithm 1 (see the module docstring).

    Args:
        adapter: the unconditional generator; its ``discriminator`` is the
            default starting critic.
        real_data: real samples in chain convention (images ``[N, C, H, W]``
            in ``[-1, 1]``, vectors ``[N, D]``): a tensor (batches of
            ``batch_size`` are drawn from it by seed) or any re-iterable of
            batches (tensors, or tuples/lists whose first item is the batch,
            e.g. a ``DataLoader``); it is cycled.
        validation_data: held-out real samples ``[M, ...]`` (not in
            ``real_data``) for model selection; ``None`` returns the last iterate.
        critic: the starting critic (module taking chain-convention samples,
            or a :class:`Discriminator`); default the adapter's discriminator.
            Always copied; its output is trained as a WGAN critic.
        network: the network to train (copied); default a new
            :class:`ImportanceNetwork` on ``layer``.
        layer: the network's input: ``"latent"``, or the adapter's
            ``mapping_layer`` (the default when the adapter has one).
        max_weight: ``m`` of Eq. 6 (default the network's, else
            ``DEFAULTS.importance_max_weight``).
        steps: total updates of ``w`` (a resumed run continues up to it).
        critic_steps: critic updates per update of ``w`` (``n_d``).
        critic_warmup: critic updates before the first update of ``w``.
        batch_size: fake (and, for tensor data, real) samples per update.
        lr, critic_lr: Adam learning rates (betas 0.5, 0.9) of ``w`` and the critic.
        lambda_norm, lambda_clip: ``lambda1``, ``lambda2`` of Eq. 6.
        gp_weight: gradient-penalty weight of the critic loss.
        eval_every: updates of ``w`` between evaluations and checkpoints.
        eval_samples: held-out samples compared at each evaluation (at most ``M``).
        eval_pool: prior draws defining the reweighted model at each evaluation
            (their sorted projections are kept: 128 directions x ``eval_pool`` values).
        selection_features: ``samples [N, ...] -> [N, F]`` in which the
            held-out sliced W1 is measured; default the flattened samples. Must
            not be the network your final metric uses.
        checkpoint_dir: folder for ``last.safetensors``; re-running with it resumes.
        seed: keys every random number of the run.
        progress: show a progress bar.
    """
    if not isinstance(adapter, Adapter):
        raise InputTypeError(f"train_importance_network needs a gan_postproc.Adapter, got {type(adapter).__name__}; wrap a module with TorchAdapter(G)")
    steps = check_count(steps, "steps")
    settings = {
        "critic_steps": check_count(critic_steps, "critic_steps"),
        "critic_warmup": check_count(critic_warmup, "critic_warmup", minimum=0),
        "batch_size": check_count(batch_size, "batch_size", minimum=2),
        "lr": check_positive(lr, "lr"),
        "critic_lr": check_positive(critic_lr, "critic_lr"),
        "lambda_norm": check_positive(lambda_norm, "lambda_norm", allow_zero=True),
        "lambda_clip": check_positive(lambda_clip, "lambda_clip", allow_zero=True),
        "gp_weight": check_positive(gp_weight, "gp_weight", allow_zero=True),
        "eval_every": check_count(eval_every, "eval_every"),
        "eval_samples": check_count(eval_samples, "eval_samples", minimum=2),
        "eval_pool": check_count(eval_pool, "eval_pool", minimum=2),
        "seed": check_count(seed, "seed", minimum=0),
    }
    if selection_features is not None and not callable(selection_features):
        raise InputTypeError(f"selection_features must be a function [N, ...] samples -> [N, F] features, got {type(selection_features).__name__}")
    # every input is checked before the first generator pass of the evaluation pool and the first update
    network = _make_network(adapter, network, layer, max_weight)
    device = adapter.device
    sample_shape = _sample_shape(adapter)
    real = _RealBatches(real_data, sample_shape, adapter, settings["batch_size"], seed)
    if validation_data is not None:
        validation_data = _check_samples(validation_data, "validation_data", sample_shape, adapter)
    start_critic = _make_critic(adapter, critic).to(device)
    heldout = _HeldOut(adapter, network, validation_data, settings, selection_features)
    trainer = _Trainer(adapter, network.to(device).train(), start_critic, real, settings)
    config = json.loads(json.dumps({
        **settings,
        "network": network.config(),
        "real_data": real.digest,
        "validation_data": heldout.digest,
    }))
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    if checkpoint is not None and checkpoint.exists():
        state = trainer.resume(checkpoint, config)
    else:
        state = {"step": 0, "history": [], "best_step": None, "best_score": None, "baseline_score": None}
        trainer.warm_up()
        state = trainer.evaluate(state, heldout, 0)
        trainer.save(checkpoint, config, state)
    bar = tqdm(total=steps, initial=min(state["step"], steps), desc="training importance network", unit="step", disable=not progress)
    try:
        for step in range(state["step"], steps):
            trainer.update(step)
            bar.update(1)
            if (step + 1) % settings["eval_every"] == 0 or step + 1 == steps:
                state = trainer.evaluate(state, heldout, step + 1)
                trainer.save(checkpoint, config, state)
                record = state["history"][-1]
                bar.set_postfix(mean_w=f"{record['mean_weight']:.3f}", heldout_sw1=_fmt(record["heldout_sliced_w1"]))
    finally:
        bar.close()
    selected = trainer.selected(heldout)
    return ImportanceTraining(
        network=selected,
        critic=trainer.critic.eval(),
        steps=max(state["step"], steps),
        history=state["history"],
        best_step=state["best_step"],
        baseline_score=state["baseline_score"],
        best_score=state["best_score"],
        checkpoint=checkpoint,
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


# --- inputs -------------------------------------------------------------------


def _make_network(adapter: Adapter, network: ImportanceNetwork | None, layer: str | None, max_weight: float | None) -> ImportanceNetwork:
    if network is None:
        resolved = resolve_layer(adapter, layer)
        m = DEFAULTS.importance_max_weight if max_weight is None else check_max_weight(max_weight)
        probe = adapter.prior.sample(0, torch.zeros(1, dtype=torch.int64), "importance-probe").to(adapter.device)
        with torch.no_grad():
            size = network_inputs(adapter, probe, resolved).shape[1]
        network = ImportanceNetwork(size, layer=resolved, max_weight=m)
    else:
        if not isinstance(network, ImportanceNetwork):
            raise InputTypeError(f"network must be an ImportanceNetwork, got {type(network).__name__}")
        if layer is not None and layer != network.layer:
            raise InputError(f"layer={layer!r} contradicts the given network's layer {network.layer!r}; pass one of them")
        if max_weight is not None and check_max_weight(max_weight) != network.max_weight:
            raise InputError(f"max_weight={max_weight} contradicts the given network's max_weight {network.max_weight}; pass one of them")
        network = copy.deepcopy(network.check_parameters("train_importance_network"))
        network.scale.fill_(1.0)
    network.check_adapter(adapter, "train_importance_network")
    return network


def _make_critic(adapter: Adapter, critic: nn.Module | Discriminator | None) -> Discriminator:
    source = adapter.discriminator if critic is None else critic
    if source is None:
        raise MissingModelError(
            "train_importance_network needs a critic to start from: attach the GAN's discriminator to the adapter "
            "(e.g. TorchAdapter(G, discriminator=D, discriminator_output='critic')) or pass critic=..."
        )
    if isinstance(source, Discriminator):
        wrapped = copy.deepcopy(source)
    elif isinstance(source, nn.Module):
        wrapped = Discriminator(copy.deepcopy(source), ScoreKind.CRITIC, input_range=CHAIN_RANGE if adapter.value_range is not None else None)
    else:
        raise InputTypeError(f"critic must be a torch.nn.Module or a Discriminator, got {type(source).__name__}")
    if wrapped.conditional:
        raise InputError("train_importance_network trains an unconditional WGAN critic; pass an unconditional critic=...")
    wrapped.output = ScoreKind.CRITIC  # its score is trained as a Wasserstein critic from here on
    return wrapped.requires_grad_(True).train()


def _sample_shape(adapter: Adapter) -> tuple[int, ...]:
    probe = adapter.prior.sample(0, torch.zeros(1, dtype=torch.int64), "importance-probe")
    with torch.no_grad():
        return tuple(adapter.generate_finite(probe).shape[1:])


def _digest(x: torch.Tensor) -> str:
    return hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _check_samples(x: object, name: str, sample_shape: tuple[int, ...], adapter: Adapter) -> torch.Tensor:
    """Real samples in chain convention: floating ``[N, *sample_shape]``, finite, in the generator's value range."""
    return check_sample_shape(check_images(x, name, adapter.value_range), name, sample_shape, "the generator")


class _RealBatches:
    """Real batches by (step, update): drawn by seed from a tensor, or taken in turn from an iterable."""

    def __init__(self, data: object, sample_shape: tuple[int, ...], adapter: Adapter, batch_size: int, seed: int) -> None:
        self.sample_shape, self.adapter, self.batch_size, self.seed = sample_shape, adapter, batch_size, seed
        self.iterator: Iterator[Any] | None = None
        if isinstance(data, torch.Tensor):
            self.tensor: torch.Tensor | None = _check_samples(data, "real_data", sample_shape, adapter)
            self.digest = _digest(self.tensor)
        elif isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
            self.tensor, self.iterable, self.digest = None, data, "iterable"
        else:
            raise InputTypeError(
                f"real_data must be a tensor [N, {', '.join(map(str, sample_shape))}] or an iterable of such batches "
                f"(e.g. a DataLoader), got {type(data).__name__}"
            )

    def batch(self, *key: int | str) -> torch.Tensor:
        if self.tensor is not None:
            rows = rng.randint(self.seed, torch.arange(self.batch_size), self.tensor.shape[0], "importance-real", *key)
            return self.tensor[rows].to(self.adapter.device)
        item = self._next()
        if isinstance(item, (tuple, list)) and item:
            item = item[0]
        return _check_samples(item, "a real_data batch", self.sample_shape, self.adapter).to(self.adapter.device)

    def _next(self) -> Any:
        for _ in range(2):
            if self.iterator is None:
                self.iterator = iter(self.iterable)
            try:
                return next(self.iterator)
            except StopIteration:
                self.iterator = None
        raise InputError(
            "real_data yielded no batch (it is empty, or a one-shot iterator that is used up); pass a tensor or a "
            "re-iterable such as a list or a DataLoader"
        )


class _HeldOut:
    """A fixed pool of prior draws (generated once) and held-out real samples: scores a network.

    The score is the sliced Wasserstein-1 distance between the pool weighted
    by ``p_i ~ min(w_i / mean w, m)`` (the distribution latentRS samples
    from) and the held-out samples, in the selection features: the mean over
    ``_DIRECTIONS`` fixed random unit directions of the exact 1-D
    Wasserstein-1 distance between the projected weighted pool and the
    projected held-out samples (the area between their CDFs). It is a
    transport distance like the EMD the benchmarks report, exact for the
    weighted pool, and smooth in the weights.
    """

    def __init__(
        self,
        adapter: Adapter,
        network: ImportanceNetwork,
        validation: torch.Tensor | None,
        settings: dict[str, Any],
        features: FeatureFn | None,
    ) -> None:
        self.features = features if features is not None else (lambda x: x.reshape(x.shape[0], -1))
        self.max_weight = network.max_weight
        pool = settings["eval_pool"]
        inputs, fakes = [], []
        with torch.no_grad():
            for rows in row_slices(pool):  # a batch of the pool at a time through the generator
                chunk = adapter.prior.sample(settings["seed"], torch.arange(rows.start, rows.stop), "importance-eval", device=adapter.device)
                inputs.append(network.inputs(adapter, chunk))
                if validation is not None:
                    fakes.append(self._featurise(adapter.generate_finite(chunk)))
        self.inputs = torch.cat(inputs)
        self.digest = None
        self.order: torch.Tensor | None = None
        if validation is not None:
            n = min(validation.shape[0], settings["eval_samples"])
            with torch.no_grad():
                real = torch.cat([self._featurise(validation[rows].to(adapter.device)) for rows in row_slices(n)]).double()
            fake = torch.cat(fakes).double()
            directions = rng.normal(settings["seed"], torch.arange(_DIRECTIONS), (fake.shape[1],), "importance-directions", dtype=torch.float64)
            directions = directions / directions.norm(dim=1, keepdim=True)
            values = torch.cat([fake, real]) @ directions.T  # [pool + n, D]
            self.order = values.argsort(dim=0).T  # [D, pool + n]: merged sort order per direction
            ordered = torch.gather(values.T, 1, self.order)
            self.gaps = ordered[:, 1:] - ordered[:, :-1]  # [D, pool + n - 1]
            is_real = (self.order >= pool).double()
            self.real_cdf = (is_real / n).cumsum(dim=1)[:, :-1]
            self.pool = pool
            self.digest = _digest(validation)

    def _featurise(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x)
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
            raise InputError(f"selection_features must map [N, ...] samples to [N, F] features, got {getattr(out, 'shape', type(out).__name__)}")
        return out.detach().float().cpu()

    @torch.no_grad()
    def weights(self, network: ImportanceNetwork) -> torch.Tensor:
        return torch.cat([network(self.inputs[rows]) for rows in row_slices(len(self.inputs), _CHUNK)]).cpu()

    def score(self, network: ImportanceNetwork) -> dict[str, Any]:
        """Mean weight, latentRS acceptance and (with validation data) held-out sliced W1 of the reweighted model."""
        w = self.weights(network)
        mean = float(w.mean())
        if not mean > 0:
            return {"mean_weight": mean, "acceptance": 0.0, "heldout_sliced_w1": None}
        clipped = (w / mean).clamp(max=self.max_weight)
        record: dict[str, Any] = {"mean_weight": mean, "acceptance": float(clipped.mean()) / self.max_weight, "heldout_sliced_w1": None}
        if self.order is not None:
            p = clipped.double() / clipped.double().sum()
            mass = torch.cat([p, torch.zeros(self.order.shape[1] - self.pool, dtype=torch.float64)])[self.order]
            pool_cdf = mass.cumsum(dim=1)[:, :-1]
            record["heldout_sliced_w1"] = float(((pool_cdf - self.real_cdf).abs() * self.gaps).sum(dim=1).mean())
        return record


class _Trainer:
    """The two players of Algorithm 1 and their optimizers."""

    def __init__(self, adapter: Adapter, network: ImportanceNetwork, critic: Discriminator, real: _RealBatches, settings: dict[str, Any]) -> None:
        self.adapter, self.network, self.critic, self.real, self.settings = adapter, network, critic, real, settings
        self.optimizer = torch.optim.Adam(network.parameters(), lr=settings["lr"], betas=(0.5, 0.9))
        self.critic_optimizer = torch.optim.Adam(critic.parameters(), lr=settings["critic_lr"], betas=(0.5, 0.9))
        self.best = copy.deepcopy(network)
        self.last: dict[str, float | None] = {"critic_loss": None, "importance_loss": None, "wasserstein_estimate": None}

    def _fakes(self, n: int, *key: int | str) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.adapter.prior.sample(self.settings["seed"], torch.arange(n), "importance", *key, device=self.adapter.device)
        with torch.no_grad():
            return self.adapter.generate_finite(z), self.network.inputs(self.adapter, z)

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor]) -> None:
        grads = torch.autograd.grad(loss, params)
        for param, grad in zip(params, grads):
            param.grad = grad
        optimizer.step()

    def critic_update(self, *key: int | str) -> None:
        """One critic update of Algorithm 1: minimise -(mean D(x) - mean w(z) D(G(z))) + lambda_GP * GP.

        The weights are divided by their batch mean (self-normalised, so the
        reweighted batch is a probability measure, Lemma 1): with raw weights
        whose mean drifts from 1, the critic can grow its estimate without
        bound by shifting D by a constant, which the gradient penalty does not
        see (measured on the DOT 2-D models: the estimate went from 0.05 to
        200 in 1500 updates).
        """
        real = self.real.batch(*key)
        fake, inputs = self._fakes(real.shape[0], "critic", *key)
        with torch.no_grad():
            weights = self.network(inputs)
            weights = weights / weights.mean().clamp_min(1e-12)
        alpha = rng.uniform(self.settings["seed"], torch.arange(real.shape[0]), (1,) * (real.dim() - 1), "importance-gp", *key, device=real.device)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        with torch.enable_grad():
            (slope,) = torch.autograd.grad(self.critic(mixed).sum(), mixed, create_graph=True)
            penalty = ((slope.reshape(slope.shape[0], -1).norm(dim=1) - 1) ** 2).mean()
            estimate = self.critic(real).mean() - (weights * self.critic(fake)).mean()
            loss = -estimate + self.settings["gp_weight"] * penalty
            self._step(self.critic_optimizer, loss, list(self.critic.parameters()))
        self.last["critic_loss"], self.last["wasserstein_estimate"] = float(loss.detach()), float(estimate.detach())

    def importance_update(self, step: int) -> None:
        """One update of w: maximise Eq. 6 (minimise its negative)."""
        fake, inputs = self._fakes(self.settings["batch_size"], "weights", step)
        with torch.no_grad():
            score = self.critic(fake)
        with torch.enable_grad():
            w = self.network(inputs)
            reward = (w * (score - score.min())).mean()
            normalisation = (w.mean() - 1.0) ** 2
            clipping = F.relu(w - self.network.max_weight).pow(2).mean()
            loss = -reward + self.settings["lambda_norm"] * normalisation + self.settings["lambda_clip"] * clipping
            self._step(self.optimizer, loss, list(self.network.parameters()))
        self.last["importance_loss"] = float(loss.detach())

    def warm_up(self) -> None:
        for k in range(self.settings["critic_warmup"]):
            self.critic_update("warmup", k)

    def update(self, step: int) -> None:
        for k in range(self.settings["critic_steps"]):
            self.critic_update(step, k)
        self.importance_update(step)

    def evaluate(self, state: dict[str, Any], heldout: _HeldOut, step: int) -> dict[str, Any]:
        record = {"step": step, **self.last, **heldout.score(self.network)}
        state = {**state, "step": step, "history": [*state["history"], record]}
        score = record["heldout_sliced_w1"]
        if step == 0:
            state["baseline_score"] = score
        if score is None or state["best_score"] is None or score < state["best_score"]:
            state["best_step"], state["best_score"] = step, score
            self.best.load_state_dict(self.network.state_dict())
        return state

    def selected(self, heldout: _HeldOut) -> ImportanceNetwork:
        network = copy.deepcopy(self.best).eval().check_parameters("train_importance_network")
        mean = float(heldout.weights(network).mean())
        if not mean > 0:
            raise InputError(
                "the trained importance network outputs 0 on every prior draw of the evaluation pool; "
                "lower lr, raise lambda_norm, or train a critic that is not constant"
            )
        return network.normalise_(mean)

    # --- checkpoints ----------------------------------------------------------

    def _modules(self) -> dict[str, nn.Module]:
        return {"importance": self.network, "best": self.best, "critic": self.critic}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"importance_optimizer": self.optimizer, "critic_optimizer": self.critic_optimizer}

    def save(self, checkpoint: Path | None, config: dict[str, Any], state: dict[str, Any]) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, modules=self._modules(), optimizers=self._optimizers(), state={**state, "config": config})

    def resume(self, checkpoint: Path, config: dict[str, Any]) -> dict[str, Any]:
        stored = checked_entries(read_checkpoint_state(checkpoint), _STATE_KEYS, checkpoint, "training checkpoint", "state", fix=_DAMAGED)["config"]
        if not isinstance(stored, dict):
            raise CheckpointError(f"{checkpoint}: its stored run settings are a {type(stored).__name__}, not an object; {_DAMAGED}")
        if stored != config:
            changed = differing_keys(stored, config)
            raise CheckpointError(
                f"{checkpoint} was written by a run with different settings ({', '.join(changed)} differ); resume with "
                "the same data and arguments (only steps may grow), or pass another checkpoint_dir to start afresh"
            )
        state = load_checkpoint(checkpoint, modules=self._modules(), optimizers=self._optimizers())
        state.pop("config")
        return state

