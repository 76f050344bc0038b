"""Discriminator shaping (Algorithm 2): only the copy changes; files, resuming, conventions, errors."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from torch import nn

from gan_postproc import Discriminator, TorchAdapter
from gan_postproc.errors import CheckpointError, InputError
from gan_postproc.plugins.collaborative import CollaborativeRefiner, load_shaped_discriminator, shape_discriminator

from ...helpers.faults import interrupt_part_way, safetensors_content
from ...helpers.tiny_models import TinyGenerator


class SmallD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.net = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


REAL = torch.tanh(torch.randn(40, 6, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.3)
REFINER = CollaborativeRefiner(layer="1", steps=3, step_size=0.1)


def _adapter(output: str = "logit") -> TorchAdapter:
    return TorchAdapter(TinyGenerator(), discriminator=SmallD(), discriminator_output=output)


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_shaping_changes_only_the_copy():
    adapter = _adapter()
    original = adapter.discriminator
    before = _state(original)
    shaped = shape_discriminator(adapter, REAL, refiner=REFINER, iterations=5, batch_size=8, lr=1e-2, progress=False)
    assert shaped is not original and shaped.module is not original.module
    assert _equal(_state(original), before), "the original discriminator was changed"
    assert not _equal(_state(shaped.module), before), "the copy was not trained"
    assert shaped.output is original.output and not shaped.training
    assert all(p.grad is None for p in original.parameters())
    assert not any(p.requires_grad for p in shaped.parameters())


def test_shaping_lowers_the_score_of_refined_samples_relative_to_real_ones():
    adapter = _adapter()
    shaped = shape_discriminator(adapter, REAL, refiner=REFINER, iterations=40, batch_size=16, lr=1e-2, progress=False)
    fake = adapter.generate(adapter.prior.sample(9, torch.arange(64))).detach()
    with torch.no_grad():
        gap_before = float(adapter.discriminator(REAL).mean() - adapter.discriminator(fake).mean())
        gap_after = float(shaped(REAL).mean() - shaped(fake).mean())
    assert gap_after > gap_before


def test_the_shaped_discriminator_is_saved_reloaded_and_not_retrained(tmp_path: Path):
    adapter = _adapter()
    out = tmp_path / "shaped.safetensors"
    shaped = shape_discriminator(adapter, REAL, refiner=REFINER, iterations=4, batch_size=8, lr=1e-2, out=out, progress=False)
    assert out.is_file() and not Path(str(out) + ".ckpt").exists()
    loaded = load_shaped_discriminator(out, adapter.discriminator)
    assert _equal(_state(loaded.module), _state(shaped.module))
    assert loaded.output is adapter.discriminator.output
    # Same settings again: loaded from the file, no training.
    again = shape_discriminator(adapter, REAL, refiner=REFINER, iterations=4, batch_size=8, lr=1e-2, out=out, progress=False)
    assert _equal(_state(again.module), _state(shaped.module))
    # Other settings: refused, naming what differs.
    with pytest.raises(CheckpointError, match="lr"):
        shape_discriminator(adapter, REAL, refiner=REFINER, iterations=4, batch_size=8, lr=1e-3, out=out, progress=False)
    with pytest.raises(CheckpointError, match="critic"):
        load_shaped_discriminator(out, Discriminator(SmallD(), "critic"))


class Interrupting:
    """Real batches that raise once, on the first pass, after ``after`` batches (a crash mid-run)."""

    def __init__(self, data: torch.Tensor, after: int) -> None:
        self.data, self.after, self.crashed = data, after, False

    def __iter__(self):
        for position, batch in enumerate(self.data.split(8)):
            if position == self.after and not self.crashed:
                self.crashed = True
                raise KeyboardInterrupt
            yield batch


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path: Path):
    settings = dict(refiner=REFINER, iterations=6, batch_size=8, lr=1e-2, checkpoint_every=2, progress=False)
    reference = shape_discriminator(_adapter(), REAL, **settings)
    out = tmp_path / "d.safetensors"
    data = Interrupting(REAL, after=3)
    with pytest.raises(KeyboardInterrupt):
        shape_discriminator(_adapter(), data, out=out, **settings)
    assert Path(str(out) + ".ckpt").is_file() and not out.exists()
    resumed = shape_discriminator(_adapter(), data, out=out, **settings)
    for key, value in _state(reference.module).items():
        torch.testing.assert_close(resumed.module.state_dict()[key], value, rtol=0, atol=1e-6)


def test_a_critic_is_shaped_with_the_wgan_gp_loss():
    adapter = _adapter("critic")
    before = _state(adapter.discriminator)
    shaped = shape_discriminator(adapter, REAL, refiner=REFINER, iterations=3, batch_size=8, lr=1e-2, progress=False)
    assert not _equal(_state(shaped.module), before) and _equal(_state(adapter.discriminator), before)


def test_clear_errors():
    adapter = _adapter()
    with pytest.raises(InputError, match="valid layers"):
        shape_discriminator(adapter, REAL, refiner=CollaborativeRefiner(layer="nope"), iterations=1, progress=False)
    with pytest.raises(InputError, match="one-shot"):
        shape_discriminator(adapter, (b for b in REAL.split(8)), refiner=REFINER, iterations=20, batch_size=8, progress=False)
    with pytest.raises(InputError, match="must lie in"):
        shape_discriminator(adapter, REAL * 3, refiner=REFINER, iterations=1, batch_size=8, progress=False)
    conditional = TorchAdapter(TinyGenerator(), discriminator=Discriminator(SmallD(), "logit", conditional=True))
    with pytest.raises(InputError, match="conditional"):
        shape_discriminator(conditional, REAL, refiner=REFINER, iterations=1, progress=False)


def cli_adapter() -> TorchAdapter:
    """``--model tests.plugins.collaborative.test_shaping:cli_adapter``."""
    return _adapter()


def cli_real() -> torch.Tensor:
    """``--real-data tests.plugins.collaborative.test_shaping:cli_real``."""
    return REAL


def test_the_cli_command_shapes_saves_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from gan_postproc.cli import main

    out = tmp_path / "cli.safetensors"
    argv = ["shape-discriminator", "--model", "tests.plugins.collaborative.test_shaping:cli_adapter", "--real-data", "tests.plugins.collaborative.test_shaping:cli_real",
            "--out", str(out), "--layer", "1", "--steps", "3", "--iterations", "4", "--batch-size", "8", "--lr", "0.01", "--no-progress"]
    assert main(argv) == 0
    expected = shape_discriminator(_adapter(), REAL, refiner=REFINER, iterations=4, batch_size=8, lr=1e-2, progress=False)
    assert _equal(_state(load_shaped_discriminator(out, _adapter().discriminator).module), _state(expected.module))
    assert main(argv) == 0  # done already: loads the file
    assert main([*argv[:-1], "--lr", "0.5", "--no-progress"]) == 2
    assert "other shaping settings" in capsys.readouterr().err
    assert main([*argv[:5], "--out", str(tmp_path / "other.safetensors"), "--layer", "nope", "--no-progress"]) == 2
    assert "valid layers" in capsys.readouterr().err


def test_the_cli_command_killed_part_way_resumes_to_the_uninterrupted_file(tmp_path: Path):
    from gan_postproc.cli import main

    def command(out: Path) -> list[str]:
        return ["shape-discriminator", "--model", "tests.plugins.collaborative.test_shaping:cli_adapter", "--real-data", "tests.plugins.collaborative.test_shaping:cli_real",
                "--out", str(out), "--layer", "1", "--steps", "3", "--iterations", "30", "--checkpoint-every", "3",
                "--batch-size", "8", "--lr", "0.01", "--no-progress"]

    reference, killed = tmp_path / "reference.safetensors", tmp_path / "killed.safetensors"
    assert main(command(reference)) == 0
    checkpoint = Path(str(killed) + ".ckpt")
    stopped = interrupt_part_way(command(killed), started=checkpoint.is_file, finished=killed.is_file)
    assert stopped.returncode == -signal.SIGKILL
    assert main(command(killed)) == 0
    assert safetensors_content(killed) == safetensors_content(reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed.safetensors", "reference.safetensors"]  # checkpoint and temp files gone
