"""The real framework code for tests: NVlabs StyleGAN2-ADA and StyleGAN3, rosinality's StyleGAN2, PyTorch-StudioGAN.

That code is the unmodified upstream source in ``shared/third_party`` (its README names the commits),
never copied into this project. It is looked for at ``$GAN_POSTPROC_THIRD_PARTY``, else at the first
``shared/third_party`` in a folder above the repository root (``../shared/third_party`` of a checkout
beside ``shared/``), else at ``/work/shared/third_party``. Tests that need it skip, naming where they
looked, when it is absent (a user's clone has no ``shared/``).

Importing it on a CPU-only machine with this project's dependencies takes three stand-ins, each confined
to the import itself:

* rosinality's ``op/`` compiles CUDA kernels at import (``torch.utils.cpp_extension.load``): that call
  returns a placeholder while ``model.py`` imports; on CPU its ops take their pure-torch paths;
* NVlabs' and StudioGAN's ``conv2d_gradfix`` import ``pkg_resources`` (gone from setuptools 81): where it
  is missing, a module with ``parse_version = packaging.version.parse`` stands in;
* StudioGAN's ``utils/misc.py`` imports torchvision and seaborn, ``utils/simclr_aug.py`` kornia: none is a
  dependency here (torchvision does not even import beside torch 2.13), so modules whose every attribute
  raises when used stand in where they do not import. ``utils.misc.save_images_png`` saves through
  torchvision's ``save_image``; tests put a recorder in its place.

The frameworks' top-level packages clash (``training``, ``torch_utils``, ``dnnlib`` in both NVlabs
repositories, ``utils`` and ``models`` in StudioGAN), so each framework keeps its own ``sys.modules``
entries, put in place only inside :meth:`Framework.active`. NVlabs' ``persistence`` pickles every network
by module name when it is built, so the builders here build inside it.

The networks are the real classes at small widths (16-32 px, a few channels), with random weights.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import os
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import packaging.version
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_VARIABLE = "GAN_POSTPROC_THIRD_PARTY"
FALLBACK = Path("/work/shared/third_party")

NVLABS_PACKAGES = ("dnnlib", "torch_utils", "training", "legacy")
#: folder -> (the folder put on sys.path, its top-level modules)
FRAMEWORKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "stylegan2-ada-pytorch": ("stylegan2-ada-pytorch", NVLABS_PACKAGES),
    "stylegan3": ("stylegan3", NVLABS_PACKAGES),
    "rosinality": ("stylegan2-pytorch-rosinality", ("model", "op", "distributed", "dataset", "non_leaking", "swagan")),
    "studiogan": ("PyTorch-StudioGAN/src", ("config", "models", "utils", "metrics", "sync_batchnorm", "worker", "loader")),
}
#: Optional dependencies of the frameworks that this project does not install (see the module docs).
UNUSED_DEPENDENCIES = ("torchvision", "torchvision.datasets", "torchvision.utils", "torchvision.transforms", "seaborn", "kornia", "kornia.filters")


def _candidates() -> list[Path]:
    found = [Path(os.environ[ENV_VARIABLE])] if os.environ.get(ENV_VARIABLE) else []
    found += [folder / "shared" / "third_party" for folder in REPO_ROOT.parents]
    return found + [FALLBACK]


@functools.cache
def third_party_root() -> Path | None:
    """The ``shared/third_party`` folder, or ``None`` when there is none (see the module docs)."""
    return next((path for path in _candidates() if (path / "README.md").is_file()), None)


class _Absent(types.ModuleType):
    """A module that is not installed: importing works, using anything from it raises."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def absent(*args: object, **kwargs: object) -> None:
            raise RuntimeError(f"{self.__name__}.{name} is not installed for the tests (see tests/third_party.py)")

        return absent


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - torchvision beside torch 2.13 fails with RuntimeError, not ImportError
        return False
    return True


@functools.cache
def _stand_ins() -> dict[str, types.ModuleType]:
    """Modules for the frameworks' imports that do not import here (see the module docs)."""
    modules: dict[str, types.ModuleType] = {}
    if not _importable("pkg_resources"):
        modules["pkg_resources"] = types.ModuleType("pkg_resources")
        modules["pkg_resources"].parse_version = packaging.version.parse  # type: ignore[attr-defined]
    for name in UNUSED_DEPENDENCIES:
        if name.split(".")[0] in {m.split(".")[0] for m in modules} or not _importable(name):
            modules[name] = _Absent(name)
    return modules


class Framework:
    """One framework's modules, imported from ``path`` and kept apart from the other frameworks'."""

    def __init__(self, name: str, path: Path, packages: tuple[str, ...]) -> None:
        self.name, self.path, self.packages = name, path, packages
        self._modules: dict[str, types.ModuleType] = {}

    def _owned(self, module_name: str) -> bool:
        return module_name.split(".")[0] in self.packages

    @contextlib.contextmanager
    def active(self) -> Iterator[Framework]:
        """Inside: this framework's modules (and the stand-ins) are in ``sys.modules``, its folder on ``sys.path``."""
        stand_ins = _stand_ins()
        saved = {name: sys.modules.pop(name) for name in list(sys.modules) if self._owned(name) or name in stand_ins}
        sys.modules.update(stand_ins)
        sys.modules.update(self._modules)
        sys.path.insert(0, str(self.path))
        try:
            with warnings.catch_warnings():  # StudioGAN's config.py has a string with "\in" in it
                warnings.filterwarnings("ignore", message="invalid escape sequence", category=DeprecationWarning)
                yield self
        finally:
            sys.path.remove(str(self.path))
            for name in list(sys.modules):
                if self._owned(name):
                    self._modules[name] = sys.modules.pop(name)
                elif name in stand_ins:
                    del sys.modules[name]
            sys.modules.update(saved)

    @contextlib.contextmanager
    def imported_anew(self) -> Iterator[None]:
        """Inside: none of this framework's modules is in ``sys.modules`` (an unpickler given its folder
        imports them afresh); every module of its packages imported inside is removed after."""
        stand_ins = _stand_ins()
        saved = {name: sys.modules.pop(name) for name in list(sys.modules) if self._owned(name) or name in stand_ins}
        sys.modules.update(stand_ins)
        try:
            yield
        finally:
            for name in list(sys.modules):
                if self._owned(name) or name in stand_ins:
                    del sys.modules[name]
            sys.modules.update(saved)

    def module(self, name: str) -> types.ModuleType:
        """``import name`` from this framework."""
        with self.active():
            return importlib.import_module(name)


@functools.cache
def framework(name: str) -> Framework:
    """The framework ``name`` (a key of :data:`FRAMEWORKS`); skips the test when ``shared/third_party`` is absent."""
    root = third_party_root()
    if root is None:
        pytest.skip(f"the real framework code (shared/third_party) is absent; looked in {[str(p) for p in _candidates()]}")
    folder, packages = FRAMEWORKS[name]
    return Framework(name, root / folder, packages)


# --- NVlabs StyleGAN2-ADA and StyleGAN3 -----------------------------------------------------------

Z_DIM = W_DIM = 8


#: Strength of the per-pixel noise after training (the constructors start it at zero, where noise modes cannot differ).
NOISE_STRENGTH = 0.1


def _trained_looking(G: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``G`` in eval mode with what training changes from the constructor's zeros: a ``w_avg`` drawn from
    ``seed`` and noise strengths of :data:`NOISE_STRENGTH`."""
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn(W_DIM, generator=torch.Generator().manual_seed(seed)) * 0.5)
        for module in G.modules():
            if isinstance(getattr(module, "noise_strength", None), torch.nn.Parameter):
                module.noise_strength.fill_(NOISE_STRENGTH)
    return G.eval()


def nvlabs_pair(
    repo: str = "stylegan2-ada-pytorch", *, c_dim: int = 0, resolution: int = 16, fp16_res: int = 0, architecture: str = "skip",
    mbstd_group_size: int = 4, seed: int = 0,
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """NVlabs StyleGAN2 ``G`` and ``D`` (``training/networks.py``; StyleGAN3's ``networks_stylegan2.py``), eval mode.

    ``fp16_res`` highest resolutions run in float16 with ``conv_clamp=256``, as ``train.py --fp16`` builds them.
    """
    fw = framework(repo)
    with fw.active():
        networks = importlib.import_module("training.networks" if repo == "stylegan2-ada-pytorch" else "training.networks_stylegan2")
        widths = {"channel_base": 256, "channel_max": 16, "num_fp16_res": fp16_res, "conv_clamp": 256 if fp16_res else None}
        synthesis = {**widths, "architecture": architecture}
        # stylegan2-ada-pytorch takes synthesis_kwargs={...}; StyleGAN3's networks_stylegan2 takes them as **kwargs
        synthesis = {"synthesis_kwargs": synthesis} if repo == "stylegan2-ada-pytorch" else synthesis
        torch.manual_seed(seed)
        G = networks.Generator(z_dim=Z_DIM, c_dim=c_dim, w_dim=W_DIM, img_resolution=resolution, img_channels=3, mapping_kwargs={"num_layers": 2}, **synthesis)
        D = networks.Discriminator(
            c_dim=c_dim, img_resolution=resolution, img_channels=3, **widths, epilogue_kwargs={"mbstd_group_size": mbstd_group_size}
        )
    return _trained_looking(G, seed), D.eval()


def stylegan3_generator(config: str = "stylegan3-t", *, c_dim: int = 0, resolution: int = 16, seed: int = 0) -> torch.nn.Module:
    """StyleGAN3's ``training/networks_stylegan3.Generator`` with ``train.py``'s settings for ``--cfg=config``
    (``stylegan3-r``: 1x1 convolutions, twice the channels, radial filters) at a small size, eval mode."""
    if config not in ("stylegan3-t", "stylegan3-r"):
        raise ValueError(config)
    fw = framework("stylegan3")
    with fw.active():
        networks = importlib.import_module("training.networks_stylegan3")
        settings: dict[str, Any] = {"channel_base": 256, "channel_max": 16, "num_layers": 4, "magnitude_ema_beta": 0.999}
        if config == "stylegan3-r":
            settings.update(conv_kernel=1, channel_base=512, channel_max=32, use_radial_filters=True)
        torch.manual_seed(seed)
        G = networks.Generator(
            z_dim=Z_DIM, c_dim=c_dim, w_dim=W_DIM, img_resolution=resolution, img_channels=3, mapping_kwargs={"num_layers": 2}, **settings
        )
    return _trained_looking(G, seed)


# --- rosinality -------------------------------------------------------------------------------------

#: Channels of the small rosinality generator, by resolution (its constructor has 512 up to 32 px).
ROSINALITY_CHANNELS = {4: 16, 8: 16, 16: 8, 32: 8}


@functools.cache
def rosinality_model() -> types.ModuleType:
    """rosinality's ``model.py``, imported with ``torch.utils.cpp_extension.load`` stubbed (see the module docs)."""
    import torch.utils.cpp_extension as cpp_extension

    fw = framework("rosinality")
    original = cpp_extension.load
    cpp_extension.load = lambda *args, **kwargs: types.SimpleNamespace()  # CUDA kernels: unused on CPU
    try:
        return fw.module("model")
    finally:
        cpp_extension.load = original


def rosinality_pair(size: int = 16, *, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """rosinality's ``Generator(size, 8, 2)`` at :data:`ROSINALITY_CHANNELS` widths (noise weights
    :data:`NOISE_STRENGTH`) and its ``Discriminator(size)``, eval mode.

    The generator's widths come from ``self.channels``, which its constructor sets to 512 for 4-32 px;
    a subclass ignores that assignment and reads small widths instead, so every layer is rosinality's
    own code. The discriminator keeps its 512 channels (they are a local of its constructor).
    """
    model = rosinality_model()

    class SmallGenerator(model.Generator):
        channels = property(lambda self: ROSINALITY_CHANNELS, lambda self, value: None)

    torch.manual_seed(seed)
    G = SmallGenerator(size, Z_DIM, 2)
    with torch.no_grad():
        for module in G.modules():
            if isinstance(module, model.NoiseInjection):
                module.weight.fill_(NOISE_STRENGTH)  # zero at construction (see _trained_looking)
    return G.eval(), model.Discriminator(size).eval()


# --- StudioGAN ------------------------------------------------------------------------------------

#: RUN settings StudioGAN's ``main.py`` sets from its command line (its defaults), read by model building and sampling.
STUDIOGAN_RUN = {"mixed_precision": False, "langevin_sampling": False, "truncation_cutoff": None, "distributed_data_parallel": False}
#: Small widths for the configs' networks (StudioGAN's big_resnet needs z_dim divisible by its blocks + 1).
STUDIOGAN_SMALL = {"z_dim": 16, "g_conv_dim": 4, "d_conv_dim": 4, "g_shared_dim": 8, "d_embed_dim": 8, "w_dim": 8}


def studiogan() -> Framework:
    return framework("studiogan")


def studiogan_config(config: str, **model: Any) -> Any:
    """StudioGAN's ``config.Configurations`` for ``src/configs/<config>`` with MODEL fields overridden."""
    fw = studiogan()
    with fw.active():
        cfgs = importlib.import_module("config").Configurations(str(fw.path / "configs" / config))
    cfgs.update_cfgs(dict(STUDIOGAN_RUN), super="RUN")
    for key, value in {**{k: v for k, v in STUDIOGAN_SMALL.items() if getattr(cfgs.MODEL, k) != "N/A"}, **model}.items():
        setattr(cfgs.MODEL, key, value)
    return cfgs


def studiogan_models(config: str, *, seed: int = 0, mbstd_group_size: int | None = None, **model: Any) -> types.SimpleNamespace:
    """StudioGAN's networks for ``src/configs/<config>`` at small widths, eval mode, as ``namespace(cfgs, G, mapping, synthesis, D)``.

    Built by ``models/model.py``'s ``load_generator_discriminator``, except StyleGAN2, whose widths that
    function fixes (``channel_base`` 16384 or 32768): its Generator and Discriminator are built with the
    same arguments at ``channel_base=256, channel_max=16``. ``mbstd_group_size`` overrides the config's
    ``STYLEGAN.d_epilogue_mbstd_group_size``.
    """
    cfgs = studiogan_config(config, **model)
    fw = studiogan()
    torch.manual_seed(seed)
    with fw.active():
        if cfgs.MODEL.backbone == "stylegan2":
            G, D = _studiogan_stylegan2(cfgs, mbstd_group_size)
            mapping, synthesis = G.mapping, G.synthesis
        else:
            load = importlib.import_module("models.model").load_generator_discriminator
            G, mapping, synthesis, D, *_ = load(cfgs.DATA, cfgs.OPTIMIZATION, cfgs.MODEL, cfgs.STYLEGAN, cfgs.MODULES, cfgs.RUN, "cpu", None)
    if cfgs.MODEL.backbone == "stylegan2":
        with torch.no_grad():
            mapping.w_avg.copy_(torch.randn(mapping.w_dim, generator=torch.Generator().manual_seed(seed)) * 0.5)
    else:
        _train_mode_passes(G, D, cfgs, seed)
    return types.SimpleNamespace(cfgs=cfgs, G=G.eval(), mapping=mapping, synthesis=synthesis, D=D.eval())


def _train_mode_passes(G: torch.nn.Module, D: torch.nn.Module, cfgs: Any, seed: int, passes: int = 4) -> None:
    """A few train-mode forward passes, as training starts: spectral norm's power iterations settle (from
    their random start, scores come out near 1e12) and batch norm gathers statistics."""
    generator = torch.Generator().manual_seed(seed)
    G.train(), D.train()
    with torch.no_grad():
        for _ in range(passes):
            z = torch.randn(16, cfgs.MODEL.z_dim, generator=generator)
            y = torch.randint(0, cfgs.DATA.num_classes, (16,), generator=generator)
            D(G(z, y), y)


def _studiogan_stylegan2(cfgs: Any, mbstd_group_size: int | None) -> tuple[torch.nn.Module, torch.nn.Module]:
    DATA, MODEL, STYLEGAN = cfgs.DATA, cfgs.MODEL, cfgs.STYLEGAN
    stylegan2 = importlib.import_module("models.stylegan2")
    widths = {"channel_base": 256, "channel_max": 16, "num_fp16_res": 0, "conv_clamp": None}
    G = stylegan2.Generator(
        z_dim=MODEL.z_dim, c_dim=DATA.num_classes if MODEL.g_cond_mtd == "cAdaIN" else 0, w_dim=MODEL.w_dim,
        img_resolution=DATA.img_size, img_channels=DATA.img_channels, MODEL=MODEL,
        mapping_kwargs={"num_layers": STYLEGAN.mapping_network}, synthesis_kwargs=widths,
    )
    group = STYLEGAN.d_epilogue_mbstd_group_size if mbstd_group_size is None else mbstd_group_size
    D = stylegan2.Discriminator(
        c_dim=DATA.num_classes if MODEL.d_cond_mtd in STYLEGAN.cond_type else 0, img_resolution=DATA.img_size,
        img_channels=DATA.img_channels, architecture=STYLEGAN.d_architecture, **widths, cmap_dim=None,
        d_cond_mtd=MODEL.d_cond_mtd, aux_cls_type=MODEL.aux_cls_type, d_embed_dim=MODEL.d_embed_dim, num_classes=DATA.num_classes,
        normalize_d_embed=MODEL.normalize_d_embed, block_kwargs={}, mapping_kwargs={}, epilogue_kwargs={"mbstd_group_size": group}, MODEL=MODEL,
    )
    return G, D


def studiogan_run(cfgs: Any, **changes: Any) -> Any:
    """A copy of ``cfgs.RUN`` with ``changes`` (the configs are shared by the tests of a module)."""
    run = copy.copy(cfgs.RUN)
    for key, value in changes.items():
        setattr(run, key, value)
    return run
