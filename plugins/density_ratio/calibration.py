"""Turning a critic into a density-ratio estimator: BCE fine-tuning of a copy.

DRS, MH-GAN and SIR need ``D(x) = p(real | x)``, whose logit estimates
``log p_data(x) / p_g(x)``. A WGAN critic or a hinge discriminator does not
estimate it. The latent-reweighting paper (Issenhuth et al., Sec. 4.3) runs
its SIR baseline on "the discriminator at the end of the adversarial
training, fine-tuned with the binary cross-entropy loss", selecting the best
fine-tuned model; :func:`calibrate_discriminator` does that to a *copy* of
the discriminator, against the frozen generator:

    minimise  E_real[-log sigmoid(f(x))] + E_fake[-log(1 - sigmoid(f(G(z))))]

whose minimiser is ``f = log p_data / p_g`` (Goodfellow et al. 2014, Prop. 1).
Two ways to parameterise ``f`` (``mode``):

* ``"finetune"``: the whole copy, followed by an affine map
  ``f(x) = a * s(x) + b`` of its raw score ``s`` (a probability output is
  first turned into its logit). ``a, b`` start from Platt scaling (a
  logistic regression of the labels on ``s``), so training starts from the
  best monotone rescaling of the critic;
* ``"head"``: a logistic head (one linear layer) on the features of the
  copy's submodule ``feature_layer``, everything else frozen.

The best step is selected on held-out real and generated samples by BCE
(``select_on="bce"``, the criterion the calibration itself optimises) or, as
the paper does, by EMD (``select_on="emd"``: SIR-resampled generated samples
against held-out real ones), which :func:`calibrated_copy` uses. The copy stays in eval mode
(batch-norm statistics frozen, dropout off). As in the paper, the WGAN-GP
gradient penalty (Gulrajani et al. 2017) is kept during fine-tuning
(``gradient_penalty``, weight 10 by default): it bounds the slope of the
calibrated logit, so the estimated density ratios cannot become steep
enough to starve whole modes of tightly concentrated data.

With ``checkpoint=path`` the run writes a safetensors checkpoint (atomically)
at every evaluation and resumes from it when re-run with the same settings;
:func:`load_calibrated_discriminator` rebuilds the calibrated copy from it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from gan_postproc import rng
from gan_postproc.errors import CheckpointError, InputError, InputTypeError
from gan_postproc.files.loading import checked_entries, load_state_dict_strict, metadata_json, read_safetensors
from gan_postproc.files.writing import atomic_write, check_writable, remove_stale_temp_files
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batching import row_slices
from gan_postproc.pipeline.ranges import CHAIN_RANGE, rescale
from gan_postproc.pipeline.scoring import Discriminator, ScoreKind, _to_per_sample
from gan_postproc.pipeline.splitting import capture_output
from gan_postproc.validation import check_count, check_labels, check_positive, check_sample_shape

from .defaults import DEFAULTS
from .real_samples import RealData, draw_prior_samples, prior_batches, real_order, real_samples

__all__ = [
    "CHECKPOINT_FORMAT",
    "CalibratedScore",
    "CalibratedHead",
    "calibrate_discriminator",
    "load_calibrated_discriminator",
    "calibrated_copy",
]

#: Written into every calibration checkpoint's metadata.
CHECKPOINT_FORMAT = "gan_postproc.calibration/1"

CalibrationMode = Literal["finetune", "head"]
#: How the best fine-tuning step is selected: ``"bce"``, ``"emd"``, or a criterion (lower is better).
SelectOn = Literal["bce", "emd"] | Callable[[Discriminator], float]

#: Real and generated samples each used for the Platt-scaling start of ``"finetune"``.
_PLATT_SAMPLES = 5_000


def _raw_score(module: nn.Module, source: Discriminator, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """The source discriminator's per-sample output on network-range input, as a logit or critic score."""
    if source.forward_fn is not None:
        raw = source.forward_fn(module, x, labels if source.conditional else None)
    elif source.conditional:
        raw = module(x, labels)
    else:
        raw = module(x)
    score = _to_per_sample(raw, x.shape[0], "the discriminator")
    if source.output is ScoreKind.PROBABILITY:
        p = score.clamp(1e-7, 1 - 1e-7)
        score = torch.log(p) - torch.log1p(-p)
    return score


class CalibratedScore(nn.Module):
    """A copy of a discriminator with an affine output map: ``f(x) = scale * s(x) + bias``.

    ``s`` is the copy's raw score (its logit, for a probability output). Takes
    input already in the source network's range (the returned
    :class:`~gan_postproc.Discriminator` maps chain images into it).
    """

    def __init__(self, source: Discriminator) -> None:
        super().__init__()
        self.source = _SourceSpec(source)
        self.body = copy.deepcopy(source.module).eval()
        self.scale = nn.Parameter(torch.ones(()))
        self.bias = nn.Parameter(torch.zeros(()))

    def score(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The copy's raw score ``s(x)``, ``[N]``."""
        return _raw_score(self.body, self.source.wrapper, x, labels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.scale * self.score(x, labels) + self.bias


class CalibratedHead(nn.Module):
    """A logistic head on the features of submodule ``feature_layer`` of a frozen copy of a discriminator.

    ``width`` is the number of features (the flattened size of the layer's
    output); :meth:`probed` measures it with one forward pass.
    """

    def __init__(self, source: Discriminator, feature_layer: str, width: int) -> None:
        super().__init__()
        self.source = _SourceSpec(source)
        self.body = copy.deepcopy(source.module).eval()
        self.body.requires_grad_(False)
        names = [name for name, _ in self.body.named_modules() if name]
        if feature_layer not in names:
            raise InputError(f"feature_layer {feature_layer!r} is not a submodule of the discriminator; submodules: {names}")
        self.feature_layer = feature_layer
        self.head = nn.Linear(width, 1)

    @classmethod
    def probed(cls, source: Discriminator, feature_layer: str, probe: torch.Tensor, probe_labels: torch.Tensor | None) -> CalibratedHead:
        """A head sized by running the copy on ``probe`` (network-range input)."""
        head = cls(source, feature_layer, 1)
        with torch.no_grad():
            width = head.features(probe, probe_labels).shape[1]
        head.head = nn.Linear(width, 1)
        return head

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Flattened output of ``feature_layer``, ``[N, F]``; the rest of the network is not run."""
        layer = self.body.get_submodule(self.feature_layer)
        features = capture_output(layer, lambda: _raw_score(self.body, self.source.wrapper, x, labels), name=f"feature_layer {self.feature_layer!r}")
        if not isinstance(features, torch.Tensor):
            raise InputError(f"feature_layer {self.feature_layer!r} produced no tensor in the discriminator's forward pass")
        return features.flatten(1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, labels))[:, 0]


class _SourceSpec:
    """The source wrapper's conventions, kept outside the module tree (not a submodule, not in the state dict)."""

    def __init__(self, wrapper: Discriminator) -> None:
        self.wrapper = wrapper


def _call_calibrated(module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    return module(x, labels)


def _wrap(module: nn.Module, source: Discriminator) -> Discriminator:
    """The calibrated module as a Discriminator declared ``"logit"``, with the source's input conventions."""
    return Discriminator(
        module,
        ScoreKind.LOGIT,
        input_range=source.input_range,
        conditional=source.conditional,
        min_batch_size=source.min_batch_size,
        forward_fn=_call_calibrated,
    )


def _build(source: Discriminator, mode: str, feature_layer: str | None, probe: torch.Tensor, probe_labels: torch.Tensor | None) -> nn.Module:
    if mode == "finetune":
        return CalibratedScore(source)
    if mode == "head":
        if feature_layer is None:
            raise InputError("mode='head' needs feature_layer=<name of the discriminator submodule whose output are the features>")
        return CalibratedHead.probed(source, feature_layer, probe, probe_labels)
    raise InputError(f"mode must be 'finetune' or 'head', got {mode!r}")


def _network_input(source: Discriminator, samples: torch.Tensor) -> torch.Tensor:
    """Chain-convention samples -> the source network's input range (what the calibrated module takes)."""
    return rescale(samples, CHAIN_RANGE if source.input_range is not None else None, source.input_range)


def _bce(module: nn.Module, real: torch.Tensor, real_labels: torch.Tensor | None, fake: torch.Tensor, fake_labels: torch.Tensor | None) -> torch.Tensor:
    """Balanced binary cross-entropy of the module's logits: real -> 1, generated -> 0."""
    real_logit = module(real, real_labels)
    fake_logit = module(fake, fake_labels)
    return 0.5 * (
        F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
        + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    )


def _gradient_penalty(
    module: nn.Module, real: torch.Tensor, real_labels: torch.Tensor | None, fake: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP penalty ``E[(||grad_x f(x_hat)||_2 - 1)^2]`` of the logit ``f`` (Gulrajani et al. 2017, Eq. 3).

    ``x_hat = eps * real + (1 - eps) * fake`` with ``eps`` ``[B]`` in (0, 1);
    a conditional module is evaluated with the real samples' labels. The
    gradient is taken w.r.t. the interpolates only, with a graph, so the
    penalty trains the module's parameters.
    """
    shape = (-1,) + (1,) * (real.dim() - 1)
    mixed = (eps.view(shape).to(real) * real + (1 - eps.view(shape).to(real)) * fake).detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(module(mixed, real_labels).sum(), mixed, create_graph=True)
    return ((gradient.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _selection_criterion(
    adapter: Adapter, select_on: SelectOn, real_val: torch.Tensor, seed: int
) -> Callable[[Discriminator], float] | None:
    """The function :func:`calibrate_discriminator` selects with (``None`` for held-out BCE)."""
    if select_on == "bce":
        return None
    if callable(select_on):
        return select_on
    if select_on != "emd":
        raise InputError(f"select_on must be 'bce', 'emd' or a function (Discriminator) -> float, got {select_on!r}")
    from gan_postproc.metrics import emd  # here, not at the top: scipy is slow to import

    n, pool = min(len(real_val), DEFAULTS.calibration_select_emd_samples), DEFAULTS.sir_pool_size
    _, labels, fake = draw_prior_samples(adapter, n * pool, seed, "calibration_select")
    gumbel = -torch.log(-torch.log(rng.uniform(seed, torch.arange(n * pool), (), "calibration_select_gumbel", dtype=torch.float64)))
    real = real_val[:n].flatten(1)

    def resampled_emd(discriminator: Discriminator) -> float:
        device = next((p.device for p in discriminator.parameters()), adapter.device)
        logits = torch.cat([
            discriminator.logit(fake[rows].to(device), None if labels is None else labels[rows].to(device)).double()
            for rows in row_slices(len(fake))
        ]).cpu()
        pick = (logits + gumbel).view(n, pool).argmax(dim=1)  # Gumbel-max: an exact SIR draw from each pool
        return emd(fake.view(n, pool, -1)[torch.arange(n), pick], real)

    return resampled_emd


def _held_out_loss(module: nn.Module, real: torch.Tensor, real_labels: torch.Tensor | None, fake: torch.Tensor, fake_labels: torch.Tensor | None) -> float:
    """Mean balanced BCE over held-out sets (held anywhere, e.g. on the CPU), moved to the module's device a batch at a time."""
    device = _device(module)
    total = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad():
        for rows in row_slices(len(real)):
            part = _bce(module, real[rows].to(device), _rows_to(real_labels, rows, device), fake[rows].to(device), _rows_to(fake_labels, rows, device))
            total += part.double() * (rows.stop - rows.start)
    return float(total) / len(real)


def _rows_to(labels: torch.Tensor | None, rows: slice, device: torch.device) -> torch.Tensor | None:
    return None if labels is None else labels[rows].to(device)


def _device(module: nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def _platt_start(
    module: CalibratedScore,
    to_net: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    real_labels: torch.Tensor | None,
    fake: torch.Tensor,
    fake_labels: torch.Tensor | None,
) -> None:
    """Set ``scale, bias`` by logistic regression of real/generated on the raw score (Platt scaling).

    ``real`` and ``fake`` are chain-convention samples held anywhere; ``to_net`` maps a batch of them to
    the network's input on its device, so only a batch is on the device at a time.
    """
    n = min(len(real), len(fake), _PLATT_SAMPLES)
    device = _device(module)
    with torch.no_grad():
        scores = torch.cat([
            module.score(to_net(x[rows]), _rows_to(y, rows, device)) for x, y in ((real, real_labels), (fake, fake_labels)) for rows in row_slices(n)
        ])
    targets = torch.cat([torch.ones(n), torch.zeros(n)])
    from sklearn.linear_model import LogisticRegression  # here, not at the top: scikit-learn is slow to import

    fit = LogisticRegression().fit(scores.double().cpu().numpy()[:, None], targets.numpy())
    with torch.no_grad():
        module.scale.fill_(float(fit.coef_[0, 0]))
        module.bias.fill_(float(fit.intercept_[0]))


# --- checkpoints ----------------------------------------------------------------


def _save_checkpoint(path: Path, model: nn.Module, best: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in best.items()})
    optimizer_state = optimizer.state_dict()
    for index, entries in optimizer_state["state"].items():
        tensors.update({f"optimizer.{index}.{key}": value for key, value in entries.items()})
    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in tensors.items()}
    metadata = {"format": CHECKPOINT_FORMAT, "state": json.dumps(state), "param_groups": json.dumps(optimizer_state["param_groups"])}
    atomic_write(path, lambda temp: save_file(tensors, str(temp), metadata=metadata))


def _read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, str]]:
    tensors, metadata = read_safetensors(path, "calibration checkpoint", fix=_DELETE)
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a calibration checkpoint (format {metadata.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
    metadata_json(metadata, "param_groups", path, "calibration checkpoint")
    state = checked_entries(metadata_json(metadata, "state", path, "calibration checkpoint"), _STATE_KEYS, path, "calibration checkpoint", "state", fix=_DELETE)
    checked_entries(state["config"], _CONFIG_KEYS, path, "calibration checkpoint", "state.config", fix=_DELETE)
    return state, tensors, metadata


#: Entries every calibration checkpoint's ``state`` metadata holds (and its ``config``).
_STATE_KEYS = ("config", "step", "best_step", "best_loss", "history")
_CONFIG_KEYS = ("source_output", "mode", "feature_layer")
#: What to do about a damaged calibration checkpoint.
_DELETE = "delete it to start over, or choose another checkpoint path"


def _section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) + 1 :]: value for key, value in tensors.items() if key.startswith(prefix + ".")}


def _load_module(module: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    load_state_dict_strict(module, weights, f"calibration checkpoint {path}")


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in _section(tensors, "optimizer").items():
        index, _, entry = key.partition(".")
        state.setdefault(int(index), {})[entry] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(metadata["param_groups"])})


# --- the public functions -----------------------------------------------------------


def calibrate_discriminator(
    adapter: Adapter,
    real_data: RealData,
    *,
    discriminator: Discriminator | None = None,
    real_labels: torch.Tensor | None = None,
    mode: CalibrationMode = DEFAULTS.calibration_mode,  # type: ignore[assignment]
    feature_layer: str | None = None,
    steps: int = DEFAULTS.calibration_steps,
    batch_size: int = DEFAULTS.calibration_batch_size,
    lr: float = DEFAULTS.calibration_lr,
    holdout: int = DEFAULTS.calibration_holdout,
    eval_every: int = DEFAULTS.calibration_eval_every,
    gradient_penalty: float = DEFAULTS.calibration_gradient_penalty,
    select_on: SelectOn = DEFAULTS.calibration_select_on,  # type: ignore[assignment]
    seed: int = DEFAULTS.seed,
    checkpoint: str | Path | None = None,
    progress: bool = False,
) -> Discriminator:
    """Fine-tune a copy of a discriminator with binary cross-entropy; return it declared ``"logit"``.

    Args:
        adapter: the frozen generator, and the discriminator (unless given).
        real_data: real samples in chain convention: a tensor ``[N, ...]``
            (a fifth, at most ``holdout`` rows, is held out) or a function
            ``(n, seed) -> [n, ...]`` (``DEFAULTS.calibration_real_pool``
            training samples and ``holdout`` held-out ones are drawn with
            different seeds).
        discriminator: the discriminator to calibrate; ``None`` takes the
            adapter's. Any output kind (a critic is the usual case); the
            original is never modified.
        real_labels: ``[N]`` labels of a real-data tensor, for a conditional discriminator.
        mode: ``"finetune"`` (whole copy + affine output) or ``"head"``
            (logistic head on ``feature_layer``'s output, rest frozen).
        feature_layer: submodule name for ``mode="head"``.
        steps: optimiser steps; each sees ``batch_size`` real and generated samples.
        lr: Adam learning rate (betas 0.5, 0.999); a head trains well with 1e-3.
        holdout: real and generated samples each held out to pick the best step.
        eval_every: steps between held-out evaluations and checkpoints.
        gradient_penalty: weight ``lambda`` of the WGAN-GP gradient penalty on
            the calibrated logit, added to the BCE loss at every step
            (Gulrajani et al. 2017, Eq. 3; kept during fine-tuning as the
            latent-reweighting paper does, Sec. 4.3); ``0`` for plain BCE.
            It bounds how fast the log density ratio can change: plain BCE
            on data with tight modes learns ratios so steep that resampling
            starves whole modes.
        select_on: how the best step is selected, lower is better:
            ``"bce"`` (held-out binary cross-entropy), ``"emd"`` (the exact EMD
            between ``DEFAULTS.calibration_select_emd_samples`` held-out real
            samples and as many generated ones resampled by SIR with the
            copy's density ratios, pools of ``DEFAULTS.sir_pool_size``; the
            paper selects "the best model in terms of EMD"), or a function
            called with the copy (a ``"logit"`` Discriminator) returning a float.
        seed: keys the data order and the generated samples; same seed, same result.
        checkpoint: safetensors file to write at every evaluation and to
            resume from when it exists (with the same settings).
        progress: show a progress bar.

    Returns:
        A :class:`~gan_postproc.Discriminator` declared ``"logit"`` wrapping the
        calibrated copy at its best held-out step, in eval mode with its
        parameters frozen (``requires_grad=False``). Its module carries
        ``history`` (``[(step, selection criterion), ...]``) and ``best_step``.

    Raises:
        InputError: bad settings, too little real data, missing labels.
        CheckpointError: a checkpoint from other settings or another network.
    """
    source = discriminator if discriminator is not None else adapter.require_discriminator("calibrate_discriminator")
    if not isinstance(source, Discriminator):
        raise InputTypeError(f"discriminator must be a gan_postproc.Discriminator, got {type(source).__name__}")
    steps = check_count(steps, "steps", minimum=0)
    batch_size = check_count(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    holdout = check_count(holdout, "holdout", minimum=2)
    eval_every = check_count(eval_every, "eval_every")
    gradient_penalty = check_positive(gradient_penalty, "gradient_penalty", allow_zero=True)
    if source.conditional and real_labels is None:
        raise InputError("the discriminator is conditional: pass real_data as a tensor with real_labels=<[N] class indices>")
    if checkpoint is not None:
        check_writable(checkpoint, "checkpoint")
        remove_stale_temp_files(checkpoint)
    real_train, real_train_labels, real_val, real_val_labels = _split_real(adapter, real_data, real_labels, holdout, seed)
    device = next((p.device for p in source.parameters()), adapter.device)
    _, fake_val_labels, fake_val = draw_prior_samples(adapter, len(real_val), seed, "calibration_holdout")  # held on the CPU
    check_sample_shape(real_val, "real_data", fake_val.shape[1:], "the generator")
    to_net = lambda x: _network_input(source, x).to(device)  # noqa: E731
    criterion = _selection_criterion(adapter, select_on, real_val, seed)
    real_val_net, fake_val_net = _network_input(source, real_val), _network_input(source, fake_val)  # moved a batch at a time
    _, probe_labels, probe = draw_prior_samples(adapter, min(batch_size, 8), seed, "calibration_probe")
    module = _build(source, mode, feature_layer, to_net(probe), None if probe_labels is None else probe_labels.to(device)).to(device)
    config = {"mode": mode, "feature_layer": feature_layer, "batch_size": batch_size, "lr": lr, "holdout": len(real_val),
              "eval_every": eval_every, "gradient_penalty": gradient_penalty,
              "select_on": select_on if isinstance(select_on, str) else "function", "seed": seed, "source_output": source.output.value, "real_train": len(real_train)}
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr, betas=(0.5, 0.999))
    path = None if checkpoint is None else Path(checkpoint)
    step, best, best_step, best_loss, history = 0, None, 0, float("inf"), []
    if path is not None and path.exists():
        state, tensors, metadata = _read_checkpoint(path)
        differing = {k: (state["config"].get(k), v) for k, v in config.items() if state["config"].get(k) != v}
        if differing:
            raise CheckpointError(
                f"{path} was written with other settings ({', '.join(f'{k}: stored {a!r}, now {b!r}' for k, (a, b) in differing.items())}); "
                "use the same settings to resume, or another checkpoint path"
            )
        _load_module(module, _section(tensors, "model"), path)
        _restore_optimizer(optimizer, tensors, metadata)
        best = _section(tensors, "best")
        step, best_step, best_loss, history = state["step"], state["best_step"], state["best_loss"], [tuple(h) for h in state["history"]]
    elif isinstance(module, CalibratedScore):
        _, platt_labels, platt_fake = draw_prior_samples(adapter, min(len(real_train), _PLATT_SAMPLES), seed, "calibration_platt")
        _platt_start(module, to_net, real_train, real_train_labels, platt_fake, platt_labels)

    def evaluate_and_save() -> None:
        nonlocal best, best_step, best_loss
        if select_on == "bce":
            loss = _held_out_loss(module, real_val_net, real_val_labels, fake_val_net, fake_val_labels)
        else:
            with torch.no_grad():
                loss = float(criterion(_wrap(module, source)))
        history.append((step, loss))
        if loss < best_loss or best is None:
            best, best_step, best_loss = {k: v.detach().clone() for k, v in module.state_dict().items()}, step, loss
        if path is not None:
            state = {"config": config, "step": step, "best_step": best_step, "best_loss": best_loss, "history": history}
            _save_checkpoint(path, module, best, optimizer, state)

    if step == 0 and not history:
        evaluate_and_save()
    bar = tqdm(total=steps, initial=min(step, steps), desc="calibrate", unit="step", disable=not progress)
    while step < steps:
        indices = torch.arange(step * batch_size, (step + 1) * batch_size)
        rows = rng.randint(seed, indices, len(real_train), "calibration_batch")
        fake, fake_labels = _generated(adapter, batch_size, seed, "calibration_train", step * batch_size)
        real, real_batch_labels = to_net(real_train[rows]), None if real_train_labels is None else real_train_labels[rows].to(device)
        fake = to_net(fake)
        loss = _bce(module, real, real_batch_labels, fake, None if fake_labels is None else fake_labels.to(device))
        if gradient_penalty > 0:
            eps = rng.uniform(seed, indices, (), "calibration_penalty")
            loss = loss + gradient_penalty * _gradient_penalty(module, real, real_batch_labels, fake, eps)
        gradients = torch.autograd.grad(loss, [p for p in module.parameters() if p.requires_grad])
        for parameter, gradient in zip([p for p in module.parameters() if p.requires_grad], gradients):
            parameter.grad = gradient
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        if step % eval_every == 0 or step == steps:
            evaluate_and_save()
            bar.set_postfix(held_out_bce=f"{history[-1][1]:.4f}", best_step=best_step)
    bar.close()
    assert best is not None
    module.load_state_dict(best)
    module.history, module.best_step = history, best_step  # type: ignore[assignment]
    return _wrap(module.eval().requires_grad_(False), source)


def _generated(adapter: Adapter, n: int, seed: int, stream: str, offset: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One training batch of ``n`` generated samples and labels, on the adapter's device (no trip through the CPU)."""
    parts = list(prior_batches(adapter, n, seed, stream, offset=offset))
    labels = None if parts[0][1] is None else torch.cat([y for _, y, _ in parts])
    return torch.cat([x for _, _, x in parts]), labels


def _split_real(
    adapter: Adapter, real_data: RealData, real_labels: torch.Tensor | None, holdout: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    """(train, train labels, held-out, held-out labels) real samples."""
    if isinstance(real_data, torch.Tensor):
        data = real_samples(real_data, len(real_data), seed, "calibration_real", adapter.value_range)
        held = min(holdout, len(data) // 5)
        if held < 2 or len(data) - held < 2:
            raise InputError(f"calibrate_discriminator needs at least 10 real samples, got {len(data)}")
        labels = None
        if real_labels is not None:
            check_labels(real_labels, "real_labels", num_classes=adapter.num_classes, n=len(real_data))
            labels = real_labels[real_order(seed, len(real_data), "calibration_real")].cpu()
        return data[held:], None if labels is None else labels[held:], data[:held], None if labels is None else labels[:held]
    if real_labels is not None:
        raise InputError("real_labels are only accepted with a real_data tensor (one label per row)")
    train = real_samples(real_data, DEFAULTS.calibration_real_pool, seed, "calibration_real", adapter.value_range)
    held_out = real_samples(real_data, holdout, seed, "calibration_holdout", adapter.value_range)
    return train, None, held_out, None


def load_calibrated_discriminator(path: str | Path, discriminator: Discriminator) -> Discriminator:
    """Rebuild the calibrated copy written by :func:`calibrate_discriminator` (``checkpoint=path``).

    Args:
        path: the calibration checkpoint.
        discriminator: the original discriminator it was calibrated from
            (its architecture and conventions; its weights are replaced by
            the stored ones in a copy).

    Returns:
        The copy at its best held-out step, declared ``"logit"``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"calibration checkpoint {path} does not exist")
    state, tensors, _ = _read_checkpoint(path)
    config = state["config"]
    if config["source_output"] != discriminator.output.value:
        raise CheckpointError(
            f"{path} was calibrated from a discriminator declared {config['source_output']!r}, "
            f"but this one is declared {discriminator.output.value!r}"
        )
    best = _section(tensors, "best")
    if config["mode"] == "head":
        width = best["head.weight"].shape[1]
        module: nn.Module = CalibratedHead(discriminator, config["feature_layer"], width)
    else:
        module = CalibratedScore(discriminator)
    _load_module(module, best, path)
    module.history = [tuple(h) for h in state["history"]]  # type: ignore[assignment]
    module.best_step = state["best_step"]  # type: ignore[assignment]
    return _wrap(module.eval().requires_grad_(False), discriminator)


_calibrated: dict[tuple[int, int, int], tuple[Discriminator, Any, Discriminator]] = {}


def calibrated_copy(adapter: Adapter, critic: Discriminator, real_data: RealData, seed: int) -> Discriminator:
    """A copy of ``critic`` calibrated with :func:`calibrate_discriminator` (default settings, ``seed``),
    the best step selected by ``DEFAULTS.calibration_copy_select_on`` (``"emd"``: held-out BCE
    selected steep, late copies with which DRS, SIR and MH-GAN made EMD about 2x worse on the
    DOT 2-D models; selected by EMD, they roughly match the bare generator or beat it).

    Cached per (critic, real data, seed) in this process, so several samplers
    that need the same critic calibrated (DRS, MH-GAN and SIR rows of one
    benchmark suite) share one calibration.
    """
    key = (id(critic), id(real_data), seed)
    cached = _calibrated.get(key)
    if cached is None or cached[0] is not critic or cached[1] is not real_data:
        calibrated = calibrate_discriminator(adapter, real_data, discriminator=critic, select_on=DEFAULTS.calibration_copy_select_on, seed=seed)  # type: ignore[arg-type]
        cached = _calibrated[key] = (critic, real_data, calibrated)
    return cached[2]
