"""``gan-postproc train-robust-classifier``: user images in, a classifier file for BIGRoC out."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from gan_postproc.cli.app import main
from gan_postproc.files.classifiers import load_classifier, read_classifier_spec

from ...helpers.faults import files, interrupt_part_way, safetensors_content


def _patterns(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three easy classes of 8x8 grayscale images: a bright left half, right half, or top half, plus noise."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((3, 8, 8), dtype=bool)
    masks[0, :, :4] = masks[1, :, 4:] = masks[2, :4, :] = True
    images, labels = [], []
    for label in range(3):
        for _ in range(n_per_class):
            pixels = rng.integers(0, 60, (8, 8)) + 180 * masks[label]
            images.append(pixels.astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels)


@pytest.fixture
def class_folders(tmp_path: Path) -> Path:
    images, labels = _patterns(6)
    root = tmp_path / "data"
    for i, (pixels, label) in enumerate(zip(images, labels)):
        folder = root / ["left", "right", "top"][label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def train_args(data: Path, output: Path, *extra: str) -> list[str]:
    return ["train-robust-classifier", "--data", str(data), "--output", str(output), "--eps", "0.5", "--steps", "2",
            "--width", "4", "--batch-size", "8", "--holdout", "0", "--no-progress", *extra]


def test_trains_a_classifier_file_from_class_folders(tmp_path, class_folders):
    output = tmp_path / "robust.safetensors"
    assert main(train_args(class_folders, output, "--epochs", "2")) == 0
    spec = read_classifier_spec(output)
    assert spec["classes"] == ["left", "right", "top"] and spec["num_classes"] == 3
    assert spec["architecture"] == "ConvClassifier" and spec["config"]["image_size"] == [8, 8]
    assert spec["training"]["eps"] == 0.5 and len(spec["training"]["history"]) == 2
    classifier = load_classifier(output)
    assert classifier(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_weights(tmp_path, class_folders, capsys):
    straight = tmp_path / "straight.safetensors"
    assert main(train_args(class_folders, straight, "--epochs", "2")) == 0
    resumed = tmp_path / "resumed.safetensors"
    assert main(train_args(class_folders, resumed, "--epochs", "1")) == 0  # stopped after one epoch ...
    assert (tmp_path / "resumed.safetensors.ckpt" / "last.safetensors").is_file()
    assert main(train_args(class_folders, resumed, "--epochs", "2")) == 0  # ... and continued
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_killed_part_way_resumes_to_the_uninterrupted_file(tmp_path, class_folders):
    reference, killed = tmp_path / "reference.safetensors", tmp_path / "killed.safetensors"
    assert main(train_args(class_folders, reference, "--epochs", "6")) == 0
    checkpoint = tmp_path / "killed.safetensors.ckpt" / "last.safetensors"
    stopped = interrupt_part_way(train_args(class_folders, killed, "--epochs", "6"), started=checkpoint.is_file, finished=killed.is_file)
    assert stopped.returncode == -signal.SIGKILL
    assert main(train_args(class_folders, killed, "--epochs", "6")) == 0
    assert killed.read_bytes() == reference.read_bytes()  # weights and recorded history, bit for bit
    assert sorted(files(tmp_path / "killed.safetensors.ckpt")) == ["last.safetensors"]  # no temp file left
    assert safetensors_content(checkpoint) == safetensors_content(tmp_path / "reference.safetensors.ckpt" / "last.safetensors")


def test_trains_from_an_npz_and_reports_held_out_accuracy(tmp_path, capsys):
    images, labels = _patterns(10, seed=1)
    data = tmp_path / "data.npz"
    np.savez(data, images=images, labels=labels)
    output = tmp_path / "robust.safetensors"
    args = train_args(data, output, "--epochs", "3")
    args[args.index("--holdout") + 1] = "0.3"
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "clean accuracy" in out and "accuracy under the training attack" in out
    spec = read_classifier_spec(output)
    assert 0.0 <= spec["training"]["holdout_clean_accuracy"] <= 1.0 and spec["training"]["train_images"] == 21


@pytest.mark.parametrize(
    "change, message",
    [
        ("one_class", "one sub-folder of images per class"),
        ("odd_size", "differ in size or colour mode"),
        ("bad_output", "must be a .safetensors file"),
        ("negative_eps", "--eps must be a finite number > 0"),
    ],
)
def test_bad_data_and_settings_are_refused(tmp_path, class_folders, capsys, change, message):
    output = tmp_path / ("robust.pt" if change == "bad_output" else "robust.safetensors")
    data = class_folders
    if change == "one_class":
        data = class_folders / "left"
        (data / "only").mkdir()
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(data / "only" / "x.png")
    if change == "odd_size":
        Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(class_folders / "top" / "odd.png")
    args = train_args(data, output, "--epochs", "1")
    if change == "negative_eps":
        args[args.index("--eps") + 1] = "-1"
    assert main(args) == 2
    assert message in capsys.readouterr().err
