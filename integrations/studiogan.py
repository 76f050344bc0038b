"""Plugin ``studiogan``: PyTorch-StudioGAN checkouts get any chain with one call.

StudioGAN is not a package; every evaluation and sampling path of a checkout
draws its fake images through ``utils.sample.generate_images(z_prior,
truncation_factor, batch_size, z_dim, num_classes, y_sampler, radius,
generator, discriminator, is_train, LOSS, RUN, MODEL, device, is_stylegan,
generator_mapping, generator_synthesis, style_mixing_p, stylegan_update_emas,
cal_trsp_cost)``, always called as a module attribute, which returns
``(fake_images, fake_labels, fake_images_eps, trsp_cost, ws,
info_discrete_c, info_conti_c)``.

:func:`patch` replaces that attribute with a :class:`StudioGANDropIn` taking
the same arguments and returning the same 7-tuple, produced by a chain: the
chain's sampler picks the latents (from StudioGAN's prior: ``z_prior``,
``truncation_factor``), labels follow ``y_sampler``, the refiners refine the
images. Training calls (``is_train=True``) go to the original function
untouched. Randomness is keyed by a running sample counter and the seed, so
a fixed sequence of calls is reproducible.

:class:`StudioGANAdapter` (``"studiogan"``) knows StudioGAN's conventions:
generators ``G(z, label, eval=True)`` (StyleGAN2 ones as
``generator_mapping(z, one_hot, truncation_psi=, truncation_cutoff=,
update_emas=False)`` then ``generator_synthesis(ws, update_emas=False)``),
discriminators ``D(x, label, eval=True) -> dict`` whose ``adv_output`` is
``[B]`` (0-d when B == 1), ``[B, 1]``, or ``[B, num_classes + 1]`` for the
multi-hinge loss; :func:`studiogan_scores` reduces every form to ``[B]``.
The output convention follows the adversarial loss the model was trained
with (``LOSS.adv_loss``). A StyleGAN2 discriminator judges its batch in
minibatch-std groups (``STYLEGAN.d_epilogue_mbstd_group_size``, 32 in the CIFAR
configs): its wrapper refuses smaller batches and pads others to a multiple of
the group by repeating samples, as the NVlabs wrapper does. Networks wrapped in
``DataParallel`` / ``DistributedDataParallel`` are unwrapped. The adapter does not change the models' train/eval
modes: StudioGAN manages them (standing statistics, ``eval=``).
"""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_postproc import hookimpl, rng
from gan_postproc.defaults import DEFAULTS
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.chain import Chain
from gan_postproc.pipeline.priors import LatentPrior
from gan_postproc.pipeline.refiner import Refiner
from gan_postproc.pipeline.sampler import LatentSampler, SampleRequest
from gan_postproc.pipeline.scoring import Classifier, Discriminator, ScoreKind, as_classifier, score_in_groups
from gan_postproc.pipeline.splitting import capture_output, module_device, substitute_output, unwrap_parallel
from gan_postproc.validation import check_count, check_probability

__all__ = [
    "StudioGANAdapter",
    "StudioGANDropIn",
    "patch",
    "studiogan_discriminator",
    "studiogan_scores",
    "minibatch_std_group",
    "ADV_LOSS_OUTPUT",
    "GENERATE_IMAGES_PARAMETERS",
]

#: What StudioGAN's ``adv_output`` means, by ``LOSS.adv_loss``. The multi-hinge
#: loss ("MH") is read as the Crammer-Singer margin, a critic score.
ADV_LOSS_OUTPUT: dict[str, ScoreKind] = {
    "vanilla": ScoreKind.LOGIT,
    "logistic": ScoreKind.LOGIT,
    "least_square": ScoreKind.CRITIC,
    "wasserstein": ScoreKind.CRITIC,
    "hinge": ScoreKind.CRITIC,
    "MH": ScoreKind.CRITIC,
}

#: ``utils.sample.generate_images``'s parameters, in order (StudioGAN 0.4).
GENERATE_IMAGES_PARAMETERS = (
    "z_prior", "truncation_factor", "batch_size", "z_dim", "num_classes", "y_sampler", "radius", "generator",
    "discriminator", "is_train", "LOSS", "RUN", "MODEL", "device", "is_stylegan", "generator_mapping",
    "generator_synthesis", "style_mixing_p", "stylegan_update_emas", "cal_trsp_cost",
)  # fmt: skip

MAPPING_LAYER = "mapping"


# --- discriminators --------------------------------------------------------------------------------


def studiogan_scores(output: object, n: int, labels: torch.Tensor | None = None, num_classes: int | None = None) -> torch.Tensor:
    """A StudioGAN discriminator's ``adv_output`` as ``[n]`` scores.

    Accepts ``[n]``, a 0-d tensor for ``n == 1`` (``torch.squeeze`` of
    ``[1, 1]``), ``[n, 1]``, and the multi-hinge ``[n, num_classes + 1]``
    (``[num_classes + 1]`` when ``n == 1``), which becomes the Crammer-Singer
    margin ``adv[y] - max_{j != y} adv[j]`` of the sample's class ``y``: the
    quantity StudioGAN's MH generator loss raises.
    """
    if not isinstance(output, dict) or "adv_output" not in output:
        got = sorted(output) if isinstance(output, dict) else type(output).__name__
        raise InputError(f"a StudioGAN discriminator returns a dict with 'adv_output', got {got}")
    adv = output["adv_output"]
    multi_hinge = num_classes is not None and adv.dim() >= 1 and adv.shape[-1] == num_classes + 1 and (adv.dim() == 2 or n == 1)
    if adv.dim() == 0 and n == 1:
        return adv.reshape(1).float()
    if adv.dim() == 1 and adv.shape[0] == n and not multi_hinge:
        return adv.float()
    if adv.dim() == 2 and adv.shape == (n, 1):
        return adv[:, 0].float()
    if multi_hinge:
        if labels is None:
            raise InputError("a multi-hinge discriminator scores a sample against its class; pass labels")
        adv = adv.reshape(n, num_classes + 1).float()
        target = adv.gather(1, labels.view(-1, 1).to(adv.device))[:, 0]
        others = adv.scatter(1, labels.view(-1, 1).to(adv.device), float("-inf"))
        return target - others.max(dim=1).values
    raise InputError(
        f"adv_output of shape {tuple(adv.shape)} does not fit a batch of {n}: expected [{n}], [{n}, 1], or "
        f"[{n}, num_classes + 1] for the multi-hinge loss (num_classes={num_classes})"
    )


def minibatch_std_group(discriminator: nn.Module) -> int:
    """The minibatch-std group size of a StudioGAN StyleGAN2 discriminator (``D.b4.mbstd.group_size``,
    ``STYLEGAN.d_epilogue_mbstd_group_size``); 1 for discriminators without such a layer, or whose
    group is the whole batch (``None``)."""
    mbstd = getattr(getattr(discriminator, "b4", None), "mbstd", None)
    group = getattr(mbstd, "group_size", None)
    return 1 if group is None else int(group)


def studiogan_discriminator(
    discriminator: nn.Module | Discriminator,
    *,
    adv_loss: str | None = None,
    output: ScoreKind | str | None = None,
    num_classes: int | None = None,
    group_size: int | None = None,
) -> Discriminator:
    """Wrap a StudioGAN discriminator ``D(x, label, eval=True) -> dict``.

    Args:
        discriminator: the network, or it wrapped in ``DataParallel`` /
            ``DistributedDataParallel`` (the network itself is called); images in [-1, 1].
        adv_loss: ``LOSS.adv_loss`` of its config; declares the output (:data:`ADV_LOSS_OUTPUT`).
        output: the convention, instead of ``adv_loss``.
        num_classes: classes of a conditional discriminator (its labels are
            passed; the multi-hinge output needs them); ``None``: unconditional
            (it gets zeros as labels, which it ignores).
        group_size: the minibatch-std group of a StyleGAN2 discriminator
            (default: read from it, :func:`minibatch_std_group`). Batches
            smaller than it are refused; others are padded to a multiple of it
            by repeating samples (:func:`~gan_postproc.pipeline.scoring.score_in_groups`).
    """
    if isinstance(discriminator, Discriminator):
        return discriminator
    if not isinstance(discriminator, nn.Module):
        raise InputTypeError(f"discriminator must be a torch.nn.Module, got {type(discriminator).__name__}")
    discriminator = unwrap_parallel(discriminator)
    group = check_count(minibatch_std_group(discriminator) if group_size is None else group_size, "group_size")
    if output is None:
        if adv_loss not in ADV_LOSS_OUTPUT:
            raise InputError(
                f"declare what the discriminator outputs: pass adv_loss (LOSS.adv_loss, one of {sorted(ADV_LOSS_OUTPUT)}) "
                f"or output='logit' / 'probability' / 'critic'; got adv_loss={adv_loss!r}"
            )
        output = ADV_LOSS_OUTPUT[adv_loss]

    def forward(module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        given = labels if labels is not None else torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)

        def scores(images: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return studiogan_scores(module(images, given[rows], eval=True), images.shape[0], None if labels is None else labels[rows], num_classes)

        return score_in_groups(x, group, scores)

    return Discriminator(discriminator, output, conditional=num_classes is not None, min_batch_size=group, forward_fn=forward)


# --- the adapter -------------------------------------------------------------------------------------


def _studiogan_prior(z_dim: int, z_prior: str, truncation_factor: float, is_stylegan: bool) -> LatentPrior:
    """StudioGAN's ``sample_zy``: N(0, 1), truncated to [-t, t] for ``truncation_factor`` t > 0
    (not for StyleGAN, which truncates in w), or U[-1, 1]."""
    if z_prior == "uniform":
        return LatentPrior.of(z_dim, "uniform", low=-1.0, high=1.0)
    if z_prior != "gaussian":
        raise InputError(f"z_prior must be 'gaussian' or 'uniform' (StudioGAN's MODEL.z_prior), got {z_prior!r}")
    if is_stylegan or truncation_factor == -1:
        return LatentPrior.of(z_dim)
    if not truncation_factor > 0:
        raise InputError(f"truncation_factor must be -1 (none) or > 0, got {truncation_factor}")
    return LatentPrior.of(z_dim, "truncated_normal", low=-truncation_factor, high=truncation_factor)


def _split_points(generator: nn.Module) -> list[str]:
    """Parameterised top-level layers of a StudioGAN generator and the layers inside ``blocks``, in call order.

    Label embeddings (``shared``) are not on the main path; parameter-free
    activations may be shared between layers. Neither is a split point.
    """
    names = []
    for name, child in generator.named_children():
        if isinstance(child, nn.ModuleList):
            names += [f"{name}.{i}.{j}" for i, inner in enumerate(child) for j in range(len(inner) if isinstance(inner, nn.ModuleList) else 1)]
        elif name != "shared" and any(True for _ in child.parameters()):
            names.append(name)
    return names


class StudioGANAdapter(Adapter):
    """Adapter for StudioGAN generators (see the module docs for the conventions).

    Args:
        generator: ``G(z, label, eval=True)``; for StyleGAN2 models pass
            ``generator_mapping`` and ``generator_synthesis`` (``generator``
            may then be ``None``). Models wrapped in ``DataParallel`` or
            ``DistributedDataParallel`` (as StudioGAN wraps them for several
            GPUs) are unwrapped: the chain runs the networks themselves, on
            their device, and splits them at their own layers.
        z_dim: latent size (``MODEL.z_dim``).
        num_classes: classes of a conditional generator (``DATA.num_classes``
            when ``MODEL.g_cond_mtd != "W/O"``), else ``None``.
        label_dim: width of the one-hot labels StyleGAN2 mapping networks take
            (StudioGAN passes ``DATA.num_classes`` also for unconditional
            models); default ``num_classes`` (0 if unconditional).
        z_prior: ``"gaussian"`` or ``"uniform"`` (``MODEL.z_prior``).
        truncation_factor: ``-1`` (none) or t > 0: latents from N(0, 1)
            truncated to [-t, t]; for StyleGAN2 the psi of w-space truncation
            (the default; the ``truncation`` sampler overrides it per chain).
        truncation_cutoff: StyleGAN2's ``RUN.truncation_cutoff``.
        synthesis_kwargs: extra arguments of ``generator_synthesis``; default
            ``{"noise_mode": "const"}`` so runs are reproducible (StudioGAN
            itself draws random noise).
        discriminator, adv_loss, discriminator_output, discriminator_classes:
            see :func:`studiogan_discriminator` (``discriminator_classes``
            is its ``num_classes``).
        classifier: a :class:`Classifier`.
    """

    name = "studiogan"

    def __init__(
        self,
        generator: nn.Module | None,
        *,
        z_dim: int,
        num_classes: int | None = None,
        label_dim: int | None = None,
        z_prior: str = "gaussian",
        truncation_factor: float = -1.0,
        generator_mapping: nn.Module | None = None,
        generator_synthesis: nn.Module | None = None,
        truncation_cutoff: int | None = None,
        synthesis_kwargs: dict[str, Any] | None = None,
        discriminator: nn.Module | Discriminator | None = None,
        adv_loss: str | None = None,
        discriminator_output: ScoreKind | str | None = None,
        discriminator_classes: int | None = None,
        classifier: nn.Module | Classifier | None = None,
    ) -> None:
        self.is_stylegan = generator_mapping is not None or generator_synthesis is not None
        if self.is_stylegan and (generator_mapping is None or generator_synthesis is None):
            raise InputError("a StudioGAN StyleGAN2 model needs both generator_mapping and generator_synthesis")
        if not self.is_stylegan and not isinstance(generator, nn.Module):
            raise InputTypeError(f"generator must be a StudioGAN generator module, got {type(generator).__name__}")
        if self.is_stylegan and not 0 <= truncation_factor <= 1 and truncation_factor != -1:
            raise InputError(f"StyleGAN2 truncation_factor is psi in [0, 1] or -1 (none), got {truncation_factor}")
        self.generator = None if generator is None else unwrap_parallel(generator)
        self.generator_mapping = None if generator_mapping is None else unwrap_parallel(generator_mapping)
        self.generator_synthesis = None if generator_synthesis is None else unwrap_parallel(generator_synthesis)
        self.prior = _studiogan_prior(check_count(z_dim, "z_dim"), z_prior, truncation_factor, self.is_stylegan)
        self.num_classes = None if num_classes is None else check_count(num_classes, "num_classes", minimum=2)
        self.label_dim = label_dim if label_dim is not None else (self.num_classes or 0)
        self.truncation_factor = truncation_factor
        self.truncation_cutoff = truncation_cutoff
        self.synthesis_kwargs = {"noise_mode": "const"} if synthesis_kwargs is None else dict(synthesis_kwargs)
        self.mapping_layer = MAPPING_LAYER if self.is_stylegan else None
        # StyleGAN2 truncates in w (the truncation sampler then calls the mapping network's own
        # truncation); other StudioGAN models truncate the prior, which the sampler's prior mode does.
        self.native_truncation = self.is_stylegan
        self.discriminator = None
        if discriminator is not None:
            self.discriminator = studiogan_discriminator(
                discriminator, adv_loss=adv_loss, output=discriminator_output, num_classes=discriminator_classes
            )
        self.classifier = as_classifier(classifier, self.num_classes)

    @property
    def device(self) -> torch.device:
        return module_device(self.generator if not self.is_stylegan else self.generator_mapping)

    def to(self, device: torch.device | str) -> StudioGANAdapter:
        return self._move_models(device, self.generator, self.generator_mapping, self.generator_synthesis, self.discriminator, self.classifier)  # type: ignore[return-value]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "truncation_factor": self.truncation_factor, "stylegan": self.is_stylegan}

    def _labels(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """StudioGAN always passes labels; unconditional generators ignore them."""
        return labels if labels is not None else torch.zeros(latents.shape[0], dtype=torch.int64, device=latents.device)

    def mapping(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float | None = None) -> torch.Tensor:
        """StyleGAN2 ``ws`` as StudioGAN's ``stylegan_generate_images`` computes them (no style mixing),
        truncated with ``psi`` (default: ``truncation_factor``; -1 means none)."""
        psi = self.truncation_factor if psi is None else psi
        one_hot = F.one_hot(self._labels(latents, labels), self.label_dim) if self.label_dim else torch.zeros(latents.shape[0], 0, device=latents.device)
        if psi == -1:
            return self.generator_mapping(latents, one_hot, truncation_psi=1, update_emas=False)
        return self.generator_mapping(latents, one_hot, truncation_psi=psi, truncation_cutoff=self.truncation_cutoff, update_emas=False)

    def _synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return self.generator_synthesis(ws, update_emas=False, **self.synthesis_kwargs).clamp(-1.0, 1.0)

    def _generate(self, latents: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.is_stylegan:
            return self._synthesis(self.mapping(latents, labels))
        return self.generator(latents, self._labels(latents, labels), eval=True)

    def _generate_truncated(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        """StyleGAN2 models: w-space truncation with ``psi`` in (0, 1] instead of ``truncation_factor``."""
        return self._synthesis(self.mapping(latents, labels, check_probability(psi, "psi (w-space truncation)", open_low=True)))

    def _inner_layer_names(self) -> list[str]:
        return [MAPPING_LAYER] if self.is_stylegan else _split_points(self.generator)

    def _activation_at(self, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        if self.is_stylegan:
            return self.mapping(latents, labels)
        return capture_output(self.generator.get_submodule(layer), lambda: self._generate(latents, labels), name=f"layer {layer!r}")

    def _decode_from(self, activation: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor | None, layer: str) -> torch.Tensor:
        if self.is_stylegan:
            return self._synthesis(activation)
        return substitute_output(
            self.generator.get_submodule(layer), activation, lambda: self._generate(latents, labels), name=f"layer {layer!r}"
        )


# --- the drop-in generate_images ---------------------------------------------------------------------


def _y_sampler_labels(y_sampler: object, batch_size: int, num_classes: int, seed: int, indices: torch.Tensor) -> torch.Tensor:
    """Labels as StudioGAN's ``sample_y`` arranges them, with randomness keyed by sample index."""
    if y_sampler == "totally_random":
        return rng.randint(seed, indices, num_classes, "studiogan_label")
    if y_sampler == "acending_some":
        if batch_size % 8:
            raise InputError(f"y_sampler='acending_some' needs a batch size that is a multiple of 8, got {batch_size}")
        order = rng.uniform(seed, torch.arange(num_classes), (), "studiogan_acending_some", int(indices[0]))
        return torch.argsort(order)[: batch_size // 8].repeat_interleave(8)
    if y_sampler == "acending_all":
        return torch.arange(num_classes).repeat_interleave(8)
    if isinstance(y_sampler, int) and not isinstance(y_sampler, bool):
        if not 0 <= y_sampler < num_classes:
            raise InputError(f"y_sampler={y_sampler} is not a class of this {num_classes}-class model")
        return torch.full((batch_size,), y_sampler, dtype=torch.int64)
    raise InputError(f"y_sampler must be 'totally_random', 'acending_some', 'acending_all' or a class index, got {y_sampler!r}")


def _setting(config: object, name: str, default: object) -> object:
    return getattr(config, name, default) if config is not None else default


class StudioGANDropIn:
    """A replacement for ``utils.sample.generate_images`` that runs a chain (see :func:`patch`).

    Calls with ``is_train=True`` go to the original function. Evaluation
    calls build (and cache) a :class:`StudioGANAdapter` for the call's
    settings, draw ``batch_size`` samples through the chain, and return
    ``(fake_images, fake_labels, fake_images_eps, None, ws, None, None)``:
    images in [-1, 1] on ``device``; labels per ``y_sampler``; for
    ``radius > 0`` the images of the final latents moved by ``radius`` times
    prior noise (generated without the refiners); ``ws`` for StyleGAN2.

    StudioGAN's own evaluation-time latent methods are not run: calls with
    ``RUN.langevin_sampling`` (its DDLS), ``LOSS.apply_lo`` (latent
    optimisation), InfoGAN codes (``MODEL.info_type``) or style mixing are
    refused with an error; the chain's sampler takes their place.

    Attributes:
        original: the function it replaced.
        module: the module it was installed in.
        samples_drawn: samples produced so far (the next sample index).
    """

    def __init__(
        self,
        *,
        sampler: LatentSampler | None = None,
        refiners: Sequence[Refiner] = (),
        seed: int = DEFAULTS.seed,
        classifier: nn.Module | Classifier | None = None,
        discriminator_output: ScoreKind | str | None = None,
        synthesis_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if sampler is not None and not isinstance(sampler, LatentSampler):
            raise InputTypeError(f"sampler must be a gan_postproc.LatentSampler, got {type(sampler).__name__}")
        for position, refiner in enumerate(refiners):
            if not isinstance(refiner, Refiner):
                raise InputTypeError(f"refiners[{position}] must be a gan_postproc.Refiner, got {type(refiner).__name__}")
        self.sampler, self.refiners = sampler, list(refiners)
        self.seed = seed
        self.classifier = classifier
        self.discriminator_output = discriminator_output
        self.synthesis_kwargs = synthesis_kwargs
        self.samples_drawn = 0
        self.original: Any = None
        self.module: types.ModuleType | None = None
        self._cached: tuple[tuple[Any, ...], Chain] | None = None

    def install(self, sample_module: types.ModuleType | str = "utils.sample") -> StudioGANDropIn:
        """Replace ``sample_module.generate_images`` with this drop-in; returns ``self``.

        Raises:
            InputError: if the module cannot be imported, its ``generate_images``
                has other parameters (another StudioGAN version), or it is patched already.
        """
        if isinstance(sample_module, str):
            try:
                module = importlib.import_module(sample_module)
            except ImportError as error:
                raise InputError(
                    f"cannot import {sample_module!r} ({error}); run inside a StudioGAN checkout with its src/ on sys.path, "
                    "or pass the module: patch(utils.sample, ...)"
                ) from error
        else:
            module = sample_module
        original = getattr(module, "generate_images", None)
        if isinstance(original, StudioGANDropIn):
            raise InputError(f"{module.__name__}.generate_images is patched already; call .restore() on the first patch")
        if not callable(original):
            raise InputError(f"{getattr(module, '__name__', module)!r} has no generate_images to patch; pass StudioGAN's utils.sample")
        parameters = tuple(inspect.signature(original).parameters)
        if parameters != GENERATE_IMAGES_PARAMETERS:
            raise InputError(
                f"{module.__name__}.generate_images takes {parameters}, not the StudioGAN signature this drop-in "
                f"implements {GENERATE_IMAGES_PARAMETERS}; update the checkout or gan-postproc"
            )
        self.original, self.module = original, module
        module.generate_images = self
        return self

    def restore(self) -> None:
        """Put the original ``generate_images`` back."""
        if self.module is not None and getattr(self.module, "generate_images", None) is self:
            self.module.generate_images = self.original

    def __enter__(self) -> StudioGANDropIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def chain_for(
        self, *, z_prior: str, truncation_factor: float, z_dim: int, num_classes: int, generator: Any, discriminator: Any,
        LOSS: Any, RUN: Any, MODEL: Any, device: Any, is_stylegan: bool, generator_mapping: Any, generator_synthesis: Any,
    ) -> Chain:
        """The chain for one call's settings (built once per distinct settings, the latest kept)."""
        g_conditional = _setting(MODEL, "g_cond_mtd", "W/O") != "W/O"
        d_conditional = _setting(MODEL, "d_cond_mtd", "W/O") != "W/O"
        adv_loss = _setting(LOSS, "adv_loss", None)
        key = (
            id(generator), id(discriminator), id(generator_mapping), id(generator_synthesis), z_prior, truncation_factor,
            z_dim, num_classes, is_stylegan, _setting(RUN, "truncation_cutoff", None), g_conditional, d_conditional, adv_loss, str(device),
        )  # fmt: skip
        if self._cached is None or self._cached[0] != key:
            adapter = StudioGANAdapter(
                None if is_stylegan else generator,
                z_dim=z_dim,
                num_classes=num_classes if g_conditional else None,
                label_dim=num_classes,
                z_prior=z_prior,
                truncation_factor=truncation_factor,
                generator_mapping=generator_mapping if is_stylegan else None,
                generator_synthesis=generator_synthesis if is_stylegan else None,
                truncation_cutoff=_setting(RUN, "truncation_cutoff", None),
                synthesis_kwargs=self.synthesis_kwargs,
                discriminator=discriminator,
                adv_loss=adv_loss if self.discriminator_output is None else None,
                discriminator_output=self.discriminator_output,
                discriminator_classes=num_classes if d_conditional else None,
                classifier=self.classifier,
            )
            chain = Chain(adapter, self.sampler, self.refiners)
            chain.setup(self.seed)
            self._cached = (key, chain)
        return self._cached[1]

    def __call__(
        self, z_prior, truncation_factor, batch_size, z_dim, num_classes, y_sampler, radius, generator, discriminator,
        is_train, LOSS, RUN, MODEL, device, is_stylegan, generator_mapping, generator_synthesis, style_mixing_p,
        stylegan_update_emas, cal_trsp_cost,
    ):  # fmt: skip
        """``utils.sample.generate_images``, same arguments and 7-tuple (see the class docs)."""
        if is_train:
            return self.original(
                z_prior, truncation_factor, batch_size, z_dim, num_classes, y_sampler, radius, generator, discriminator,
                is_train, LOSS, RUN, MODEL, device, is_stylegan, generator_mapping, generator_synthesis, style_mixing_p,
                stylegan_update_emas, cal_trsp_cost,
            )  # fmt: skip
        self._refuse_unsupported(LOSS, RUN, MODEL, style_mixing_p)
        if y_sampler == "acending_all":
            batch_size = num_classes * 8
        batch_size = check_count(batch_size, "batch_size")
        indices = torch.arange(self.samples_drawn, self.samples_drawn + batch_size)
        self.samples_drawn += batch_size
        labels = _y_sampler_labels(y_sampler, batch_size, num_classes, self.seed, indices)
        chain = self.chain_for(
            z_prior=z_prior, truncation_factor=truncation_factor, z_dim=z_dim, num_classes=num_classes, generator=generator,
            discriminator=discriminator, LOSS=LOSS, RUN=RUN, MODEL=MODEL, device=device, is_stylegan=is_stylegan,
            generator_mapping=generator_mapping, generator_synthesis=generator_synthesis,
        )  # fmt: skip
        adapter = chain.adapter
        request = SampleRequest(indices=indices, seed=self.seed, labels=labels if adapter.conditional else None)
        batch = chain.run_request(request)
        with torch.no_grad():
            ws = adapter.mapping(batch.latents, batch.labels) if is_stylegan else None
            images_eps = None
            if isinstance(radius, float) and radius > 0.0:
                noise = request.normal(adapter.prior.shape, "studiogan_radius")
                if adapter.prior.kind == "uniform":
                    noise = 2 * request.uniform(adapter.prior.shape, "studiogan_radius") - 1
                # StudioGAN perturbs without projecting back onto the prior, so call the generator directly.
                images_eps = adapter._generate(batch.latents + radius * noise.to(adapter.device), batch.labels).to(device)
        return batch.images.to(device), labels.to(device), images_eps, None, ws, None, None

    @staticmethod
    def _refuse_unsupported(LOSS: Any, RUN: Any, MODEL: Any, style_mixing_p: float) -> None:
        if _setting(RUN, "langevin_sampling", False):
            raise InputError("RUN.langevin_sampling is StudioGAN's DDLS; with a chain patched in, turn it off and put a DDLS sampler in the chain")
        if _setting(LOSS, "apply_lo", False):
            raise InputError("LOSS.apply_lo (latent optimisation) is not run by the chain; turn it off to evaluate through the patched chain")
        if _setting(MODEL, "info_type", "N/A") not in ("N/A", None):
            raise InputError("InfoGAN codes (MODEL.info_type) are not supported by the patched generate_images")
        if style_mixing_p and style_mixing_p > 0:
            raise InputError("style mixing (style_mixing_p > 0) is a training augmentation; pass 0 when evaluating through the chain")


def patch(sample_module: types.ModuleType | str = "utils.sample", **options: Any) -> StudioGANDropIn:
    """Replace ``sample_module.generate_images`` with a :class:`StudioGANDropIn` running a chain.

    Call it once in a StudioGAN checkout (``src/`` on ``sys.path``) before
    evaluating or sampling; every caller of ``sample.generate_images`` then
    gets the chain's samples. Undo with ``.restore()`` or use the result as a
    context manager.

    Args:
        sample_module: StudioGAN's ``utils.sample`` module, or its import name.
        **options: the drop-in's settings: ``sampler``, ``refiners``, ``seed``,
            ``classifier`` (attached to the adapter, e.g. for BIGRoC),
            ``discriminator_output`` (overrides what ``LOSS.adv_loss``
            declares), ``synthesis_kwargs`` (StyleGAN2; default
            ``{"noise_mode": "const"}``).

    Raises:
        InputError: see :meth:`StudioGANDropIn.install`.

    Example::

        import utils.sample
        patch(utils.sample, sampler=registry.create("sampler", "ddls"), refiners=[...])
    """
    return StudioGANDropIn(**options).install(sample_module)


@hookimpl
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    return [StudioGANAdapter]
