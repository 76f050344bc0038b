"""The README's "Bad input and what you get" table, checked against what the library really raises.

Each case is one bad input a user can give; the test runs it and checks the
error class and a fragment of its message, and that the README lists exactly
these cases (``python -m tests.contracts.test_bad_input_table`` prints the table).
"""

from __future__ import annotations

import os
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from gan_postproc import Chain, SampleBatch, get_registry, hookimpl
from gan_postproc.cli import main
from gan_postproc.errors import GanPostprocError
from gan_postproc.files.images import list_images, read_images
from gan_postproc.files.loading import load_state_dict_strict, torch_load_weights
from gan_postproc.models.digits import digits_adapter, digits_classifier
from gan_postproc.models.toy2d import toy2d_adapter
from gan_postproc.pipeline.scoring import Classifier
from gan_postproc.plugin_system.manager import get_plugin_manager
from gan_postproc.plugins.classifier_guided.classifier_filter import ClassifierFilter

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_HEADER = "| bad input | error | the message says |\n|---|---|---|\n"


@dataclass(frozen=True)
class Case:
    """One bad input: what is wrong, how to provoke it (``tmp`` is a scratch folder), what comes back."""

    what: str
    provoke: Callable[[Path], object]
    error: str
    says: str
    #: Why the case cannot be provoked on this machine (it is skipped there), or ``None``.
    skip: str | None = None


def _bigroc():
    return get_registry().create("refiner", "bigroc", classifier=digits_classifier(robust=True), eps=0.5, debias=False)


def _refine(images: torch.Tensor, labels: torch.Tensor | None = None):
    return Chain(None, refiners=[_bigroc()]).refine(SampleBatch(images=images, labels=labels))


def _misspelled_hook(_: Path) -> None:
    plugin = types.ModuleType("my_plugin")
    plugin.gan_postproc_register_sampler = hookimpl(lambda: [])
    manager = get_plugin_manager(entry_points=False)
    manager.register_plugin(plugin, "my_plugin")
    manager.check_pending()


def _unsafe_checkpoint(tmp: Path) -> None:
    class RunsCode:
        def __reduce__(self):
            return (os.getcwd, ())

    torch.save({"weight": RunsCode()}, tmp / "evil.pt")
    torch_load_weights(tmp / "evil.pt")


def _broken_image(tmp: Path) -> None:
    (tmp / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    read_images(tmp, list_images(tmp))


def _cli(argv: list[str]) -> Callable[[Path], object]:
    def run(tmp: Path) -> None:
        (tmp / "a_file").write_text("not a folder")
        code = main([arg.replace("TMP", str(tmp)) for arg in argv])
        raise SystemExit(code)

    return run


CASES: list[Case] = [
    Case("latents of the wrong shape", lambda _: digits_adapter(conditional=False).generate(torch.randn(4, 7)),
         "InputError", "latents must have shape [*, 32], got shape (4, 7)"),
    Case("NaN/inf latents", lambda _: digits_adapter(conditional=False).generate(torch.full((4, 32), float("nan"))),
         "InputError", "latents must be finite, got 128 NaN/inf values"),
    Case("images outside the declared range", lambda _: _refine(torch.full((2, 1, 8, 8), 3.0)),
         "InputError", "batch.images must lie in [-1, 1], got values in [3, 3]; state the range your images use"),
    Case("NaN images", lambda _: _refine(torch.full((2, 1, 8, 8), float("nan"))),
         "InputError", "batch.images must be finite"),
    Case("an empty batch", lambda _: _refine(torch.zeros(0, 1, 8, 8)),
         "InputError", "batch.images is empty (shape (0, 1, 8, 8)"),
    Case("labels out of range", lambda _: Chain(digits_adapter(conditional=True)).sample(4, labels=torch.tensor([0, 1, 2, 12])),
         "InputError", "labels must lie in [0, 9] for a model with 10 classes"),
    Case("one-hot labels where indices are expected", lambda _: Chain(digits_adapter(conditional=True)).sample(4, labels=torch.eye(10)[:4]),
         "InputError", "looks one-hot; pass labels.argmax(dim=1)"),
    Case("a classifier with another number of classes",
         lambda _: Chain(digits_adapter(conditional=True), ClassifierFilter(Classifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), 3))).sample(4),
         "InputError", "the classifier has 3 classes but the conditional generator has 10"),
    Case("eps <= 0", lambda _: get_registry().create("refiner", "bigroc", classifier=digits_classifier(robust=True), eps=-1),
         "InputError", "eps must be a finite number > 0, got -1.0"),
    Case("steps = 0", lambda _: get_registry().create("refiner", "bigroc", classifier=digits_classifier(robust=True), eps=0.5, steps=0),
         "InputError", "steps must be an integer >= 1, got 0"),
    Case("a probability threshold outside [0, 1]", lambda _: get_registry().create("sampler", "classifier_filter", threshold=1.5),
         "InputError", "threshold (p_t) must lie in [0, 1], got 1.5"),
    Case("ensemble weights that do not sum to 1",
         lambda _: get_registry().create("sampler", "ensemble", generators=[digits_adapter(conditional=False)] * 2, weights=[0.7, 0.7]),
         "InputError", "weights must sum to 1, got [0.7, 0.7] (sum 1.4); divide them by their sum"),
    Case("a required option left out", lambda _: get_registry().create("refiner", "bigroc"),
         "InputError", "missing required option eps. It takes:"),
    Case("a misspelled option", lambda _: get_registry().create("sampler", "truncation", psii=0.5),
         "InputError", "unknown option psii. It takes:"),
    Case("an unknown method name", lambda _: get_registry().create("sampler", "trunc"),
         "InputError", "no sampler named 'trunc'; registered samplers:"),
    Case("a method without the classifier it needs",
         lambda _: Chain(toy2d_adapter("25gaussians"), get_registry().create("sampler", "classifier_filter")).sample(4),
         "MissingModelError", "classifier_filter needs a classifier, but this TorchAdapter has none; attach one"),
    Case("a density-ratio sampler on a WGAN critic", lambda _: Chain(toy2d_adapter("25gaussians"), get_registry().create("sampler", "drs")).sample(4),
         "UncalibratedDiscriminatorError", "drs needs density ratios p_data(x)/p_g(x), but the discriminator is declared a critic"),
    Case("a layer the generator cannot be split at",
         lambda _: Chain(digits_adapter(conditional=False), refiners=[get_registry().create("refiner", "collaborative", layer="nope")]).sample(4),
         "InputError", "cannot split the generator at 'nope'; valid layers: ['latent', 'fc'"),
    Case("a filter threshold no sample reaches",
         lambda _: Chain(digits_adapter(conditional=True), ClassifierFilter(digits_classifier(robust=False), threshold=1.0, max_rounds=5)).sample(8),
         "AcceptanceError", "still rejected after max_rounds=5 proposals each"),
    Case("a CUDA device on a machine without one", lambda _: digits_adapter(conditional=False).to("cuda"),
         "InputError", "asks for CUDA, but this machine has no usable CUDA device",
         skip="this machine has a CUDA device" if torch.cuda.is_available() else None),
    Case("a file that is not an image", _broken_image, "InputError", "1 of 1 files cannot be used as images"),
    Case("a folder without images", lambda tmp: list_images(tmp), "InputError", "holds no .png/.jpg/.jpeg images"),
    Case("a checkpoint that would run code when unpickled", _unsafe_checkpoint,
         "UnsafeCheckpointError", "refusing to unpickle them, because that could run code stored in the file"),
    Case("a checkpoint of another architecture",
         lambda _: load_state_dict_strict(nn.Linear(4, 2), {"weight": torch.zeros(3, 4), "bias2": torch.zeros(2)}, "ckpt.pt"),
         "CheckpointError", "missing keys: bias; unexpected keys: bias2; shape mismatches: weight"),
    Case("a plugin implementing a misspelled hook", _misspelled_hook,
         "PluginError", "gan_postproc_register_sampler"),
    Case("CLI: an output folder that cannot be created", _cli(["sample", "--model", "digits", "--n", "4", "--output", "TMP/a_file/out"]),
         "exit code 2", "a_file/out is not writable (Not a directory"),
    Case("CLI: a misspelled option (`--outptu`)", _cli(["sample", "--model", "digits", "--n", "4", "--outptu", "x"]),
         "exit code 2", "the following arguments are required: --output"),
]


def render_table() -> str:
    """The README table of :data:`CASES`."""
    rows = "".join(f"| {case.what} | `{case.error}` | {case.says} |\n" for case in CASES)
    return TABLE_HEADER + rows


@pytest.mark.parametrize("case", CASES, ids=[case.what for case in CASES])
def test_each_bad_input_gets_the_documented_error(case: Case, tmp_path: Path, capsys) -> None:
    if case.skip is not None:
        pytest.skip(case.skip)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((GanPostprocError, SystemExit)) as caught:
            case.provoke(tmp_path)
    if case.error.startswith("exit code"):
        assert caught.type is SystemExit and f"exit code {caught.value.code}" == case.error
        assert case.says in capsys.readouterr().err
    else:
        assert caught.type.__name__ == case.error
        assert case.says in str(caught.value)


def test_the_readme_lists_exactly_these_cases() -> None:
    assert render_table() in README.read_text(encoding="utf-8"), "run `python -m tests.contracts.test_bad_input_table` and paste its table"


if __name__ == "__main__":
    print(render_table(), end="")
