"""The table of docs/bad_input.md ("Bad input and what you get"), checked against what the library really raises.

The page is the source of truth: each row names one bad input a user can give, the error it gets and a
fragment of the message. :data:`PROVOKE` says how to give each bad input (by the row's first cell); the
test runs every row and checks the error class and the fragment, and that the page and :data:`PROVOKE`
name exactly the same cases.
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

PAGE = Path(__file__).resolve().parents[2] / "docs" / "bad_input.md"
TABLE_HEADER = "| bad input | error | the message says |"


@dataclass(frozen=True)
class Case:
    """One row of the page: what is wrong, how to provoke it (``tmp`` is a scratch folder), what comes back."""

    what: str
    provoke: Callable[[Path], object]
    error: str
    says: str


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


#: How to provoke each row of the page, keyed by the row's first cell.
PROVOKE: dict[str, Callable[[Path], object]] = {
    'latents of the wrong shape':
        lambda _: digits_adapter(conditional=False).generate(torch.randn(4, 7)),
    'NaN/inf latents':
        lambda _: digits_adapter(conditional=False).generate(torch.full((4, 32), float("nan"))),
    'images outside the declared range':
        lambda _: _refine(torch.full((2, 1, 8, 8), 3.0)),
    'NaN images':
        lambda _: _refine(torch.full((2, 1, 8, 8), float("nan"))),
    'an empty batch':
        lambda _: _refine(torch.zeros(0, 1, 8, 8)),
    'labels out of range':
        lambda _: Chain(digits_adapter(conditional=True)).sample(4, labels=torch.tensor([0, 1, 2, 12])),
    'one-hot labels where indices are expected':
        lambda _: Chain(digits_adapter(conditional=True)).sample(4, labels=torch.eye(10)[:4]),
    'a classifier with another number of classes':
        lambda _: Chain(digits_adapter(conditional=True), ClassifierFilter(Classifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), 3))).sample(4),
    'eps <= 0':
        lambda _: get_registry().create("refiner", "bigroc", classifier=digits_classifier(robust=True), eps=-1),
    'steps = 0':
        lambda _: get_registry().create("refiner", "bigroc", classifier=digits_classifier(robust=True), eps=0.5, steps=0),
    'a probability threshold outside [0, 1]':
        lambda _: get_registry().create("sampler", "classifier_filter", threshold=1.5),
    'ensemble weights that do not sum to 1':
        lambda _: get_registry().create("sampler", "ensemble", generators=[digits_adapter(conditional=False)] * 2, weights=[0.7, 0.7]),
    'a required option left out':
        lambda _: get_registry().create("refiner", "bigroc"),
    'a misspelled option':
        lambda _: get_registry().create("sampler", "truncation", psii=0.5),
    'an unknown method name':
        lambda _: get_registry().create("sampler", "trunc"),
    'a method without the classifier it needs':
        lambda _: Chain(toy2d_adapter("25gaussians"), get_registry().create("sampler", "classifier_filter")).sample(4),
    'a density-ratio sampler on a WGAN critic':
        lambda _: Chain(toy2d_adapter("25gaussians"), get_registry().create("sampler", "drs")).sample(4),
    'a layer the generator cannot be split at':
        lambda _: Chain(digits_adapter(conditional=False), refiners=[get_registry().create("refiner", "collaborative", layer="nope")]).sample(4),
    'a filter threshold no sample reaches':
        lambda _: Chain(digits_adapter(conditional=True), ClassifierFilter(digits_classifier(robust=False), threshold=1.0, max_rounds=5)).sample(8),
    'a CUDA device on a machine without one':
        lambda _: digits_adapter(conditional=False).to("cuda"),
    'a file that is not an image':
        _broken_image,
    'a folder without images':
        lambda tmp: list_images(tmp),
    'a checkpoint that would run code when unpickled':
        _unsafe_checkpoint,
    'a checkpoint of another architecture':
        lambda _: load_state_dict_strict(nn.Linear(4, 2), {"weight": torch.zeros(3, 4), "bias2": torch.zeros(2)}, "ckpt.pt"),
    'a plugin implementing a misspelled hook':
        _misspelled_hook,
    'CLI: an output folder that cannot be created':
        _cli(["sample", "--model", "digits", "--n", "4", "--output", "TMP/a_file/out"]),
    'CLI: a misspelled option (`--outptu`)':
        _cli(["sample", "--model", "digits", "--n", "4", "--outptu", "x"]),
}


#: Why a case cannot be provoked on this machine (it is skipped there), by the row's first cell.
SKIP: dict[str, str | None] = {
    "a CUDA device on a machine without one": "this machine has a CUDA device" if torch.cuda.is_available() else None,
}


def _cells(line: str) -> list[str]:
    """The cells of a markdown table row."""
    return [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def documented_cases() -> list[Case]:
    """The rows of the page's table, each with the function that provokes it."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index(TABLE_HEADER) + 2
    cases = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        what, error, says = _cells(line)
        cases.append(Case(what, PROVOKE.get(what, _no_way_to_provoke), error.strip("`"), says))
    return cases


def _no_way_to_provoke(_: Path) -> None:
    raise AssertionError("this row of docs/bad_input.md has no entry in PROVOKE: add how to provoke it")


CASES = documented_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.what for case in CASES])
def test_each_bad_input_gets_the_documented_error(case: Case, tmp_path: Path, capsys) -> None:
    assert case.what in PROVOKE, f"no way to provoke {case.what!r}: add it to PROVOKE"
    if SKIP.get(case.what) is not None:
        pytest.skip(SKIP[case.what])
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


def test_the_page_lists_exactly_the_provoked_cases() -> None:
    documented = [case.what for case in CASES]
    assert len(documented) == len(set(documented)), "a row of docs/bad_input.md appears twice"
    assert len(documented) >= 27
    assert sorted(documented) == sorted(PROVOKE), (
        f"rows without a way to provoke them: {sorted(set(documented) - set(PROVOKE))}; "
        f"provoked cases missing from docs/bad_input.md: {sorted(set(PROVOKE) - set(documented))}")
