"""Classifier training (plain and L2-PGD adversarial), its checkpoints, and the PGD helper."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_postproc.classifier_training import classifier_accuracy, train_classifier
from gan_postproc.errors import CheckpointError, InputError
from gan_postproc.files import writing as io_module
from gan_postproc.files.checkpoints import load_checkpoint, read_checkpoint_state, save_checkpoint
from gan_postproc.plugins.bigroc import AttackSettings, train_robust_classifier
from gan_postproc.plugins.bigroc.pgd import pgd_l2, random_l2_start


def toy_data(n: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of 4x4 images in [-1, 1]: bright top half vs bright bottom half, plus noise."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    images = torch.full((n, 1, 4, 4), -0.6)
    images[labels == 0, :, :2] = 0.6
    images[labels == 1, :, 2:] = 0.6
    images = (images + 0.2 * torch.randn(images.shape, generator=g)).clamp(-1, 1)
    return images, labels


def toy_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_pgd_stays_in_the_ball_and_range_and_raises_the_loss() -> None:
    images, labels = toy_data()
    model = toy_model()
    loss = lambda x: F.cross_entropy(model(x), labels, reduction="none")  # noqa: E731
    start = random_l2_start(images, 0.5, torch.Generator().manual_seed(1))
    assert float(start.flatten(1).norm(dim=1).max()) <= 0.5 + 1e-6
    adversarial = pgd_l2(loss, images, eps=0.5, steps=10, step_size=0.1, start=start)
    delta = (adversarial - images).flatten(1).norm(dim=1)
    assert float(delta.max()) <= 0.5 + 1e-5
    assert float(adversarial.min()) >= -1 and float(adversarial.max()) <= 1
    with torch.no_grad():
        assert float(loss(adversarial).mean()) > float(loss(images).mean())


def test_pgd_matches_a_plain_loop() -> None:
    """Independent reference: the same steps written out with .backward() on a copy."""
    images, labels = toy_data(8)
    model = toy_model()
    got = pgd_l2(lambda x: F.cross_entropy(model(x), labels, reduction="none"), images, eps=0.3, steps=3, step_size=0.2)
    x = images.clone()
    for _ in range(3):
        x = x.clone().requires_grad_(True)
        F.cross_entropy(model(x), labels, reduction="sum").backward()
        g = x.grad.flatten(1)
        x = x.detach() + 0.2 * (g / (g.norm(dim=1, keepdim=True) + 1e-10)).view_as(x)
        d = (x - images).flatten(1)
        d = d * torch.clamp(0.3 / (d.norm(dim=1, keepdim=True) + 1e-10), max=1.0)
        x = (images + d.view_as(x)).clamp(-1, 1)
    torch.testing.assert_close(got, x)


def test_attack_settings_default_step_size() -> None:
    assert AttackSettings(eps=1.4, steps=7).step_size == pytest.approx(2.5 * 1.4 / 7)
    with pytest.raises(InputError):
        AttackSettings(eps=0.0)


def test_plain_training_learns_and_is_seeded() -> None:
    images, labels = toy_data()
    first, second = toy_model(), toy_model()
    report = train_classifier(first, images, labels, epochs=15, batch_size=16, lr=1e-2, progress=False)
    train_classifier(second, images, labels, epochs=15, batch_size=16, lr=1e-2, progress=False)
    assert report.epochs == 15 and report.start_epoch == 0 and report.checkpoint is None
    assert classifier_accuracy(first, images, labels) == 1.0
    assert same_weights(first, second)
    assert not first.training


def test_robust_training_writes_a_checkpoint_and_resumes_exactly(tmp_path: Path) -> None:
    images, labels = toy_data()
    settings = dict(eps=0.5, steps=2, batch_size=16, lr=1e-2, progress=False)

    uninterrupted = toy_model()
    train_robust_classifier(uninterrupted, images, labels, epochs=3, **settings)

    interrupted = toy_model()
    first = train_robust_classifier(interrupted, images, labels, epochs=2, checkpoint_dir=tmp_path, **settings)
    assert first.checkpoint == tmp_path / "last.safetensors" and first.checkpoint.is_file()
    assert os.listdir(tmp_path) == ["last.safetensors"]  # no temporary file left behind
    assert read_checkpoint_state(first.checkpoint)["epoch"] == 2

    resumed = toy_model(seed=99)  # a fresh process would rebuild the model from scratch
    report = train_robust_classifier(resumed, images, labels, epochs=3, checkpoint_dir=tmp_path, **settings)
    assert report.start_epoch == 2 and report.epochs == 3
    assert [h["epoch"] for h in report.history] == [1, 2, 3]
    assert same_weights(resumed, uninterrupted)

    # Asking for no more epochs than done loads the checkpoint and trains nothing.
    again = toy_model(seed=5)
    done = train_robust_classifier(again, images, labels, epochs=3, checkpoint_dir=tmp_path, **settings)
    assert done.start_epoch == 3 and same_weights(again, uninterrupted)


def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    images, labels = toy_data()
    train_robust_classifier(toy_model(), images, labels, eps=0.5, steps=2, epochs=1, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="attack"):
        train_robust_classifier(toy_model(), images, labels, eps=0.7, steps=2, epochs=2, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="data_sha256"):
        train_robust_classifier(toy_model(), images.flip(0), labels, eps=0.5, steps=2, epochs=2, checkpoint_dir=tmp_path, progress=False)


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = toy_model()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(2, 1, 4, 4)).sum().backward()
    optimizer.step()
    path = save_checkpoint(tmp_path / "c.safetensors", modules={"model": model}, optimizers={"opt": optimizer}, state={"epoch": 1})
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(io_module.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, modules={"model": toy_model(seed=3)}, state={"epoch": 2})
    assert path.read_bytes() == before  # the old checkpoint survives a failed write
    assert os.listdir(tmp_path) == ["c.safetensors"]
    monkeypatch.undo()

    restored = toy_model(seed=7)
    restored_optimizer = torch.optim.Adam(restored.parameters())
    assert load_checkpoint(path, modules={"model": restored}, optimizers={"opt": restored_optimizer}) == {"epoch": 1}
    assert same_weights(restored, model)
    assert torch.equal(restored_optimizer.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_bad_inputs_are_refused_before_training() -> None:
    images, labels = toy_data()
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        train_classifier(toy_model(), images, labels + 1, epochs=1, progress=False)
    with pytest.raises(InputError, match="must lie in"):
        train_classifier(toy_model(), images * 3, labels, epochs=1, progress=False)
    with pytest.raises(InputError, match="same number"):
        train_classifier(toy_model(), images, labels[:-1], epochs=1, progress=False)
    with pytest.raises(CheckpointError, match="not a gan-postproc training checkpoint|cannot read"):
        read_checkpoint_state(Path(__file__))
