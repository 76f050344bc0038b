"""``gan-postproc refine`` on standalone images, and the classifier file format it reads."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from gan_postproc import Classifier
from gan_postproc.cli import refine_command
from gan_postproc.cli.app import main
from gan_postproc.errors import CheckpointError, InputError, UnsafeCheckpointError
from gan_postproc.files.classifiers import ConvClassifier, load_classifier, read_classifier_spec, save_classifier
from gan_postproc.files.images import read_image, to_chain
from gan_postproc.files.loading import CodeExecutionWarning

from ..helpers.faults import files, interrupt_part_way

CONFIG = {"in_channels": 1, "num_classes": 3, "image_size": [8, 8], "width": 8}


@pytest.fixture
def classifier_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    classifier = Classifier(ConvClassifier(**CONFIG), 3)
    return save_classifier(tmp_path / "robust.safetensors", classifier, architecture="ConvClassifier", config=CONFIG, classes=["a", "b", "c"])


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "generated"
    (root / "sub").mkdir(parents=True)
    for i in range(9):
        name = f"sub/img{i}.png" if i % 3 == 0 else f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / name)
    return root


def refine_args(classifier_file: Path, source: Path, output: Path, *extra: str) -> list[str]:
    return ["refine", "--refiner", "bigroc", "--classifier", str(classifier_file), "--refiner-option", "bigroc.eps=2.0",
            "--input", str(source), "--output", str(output), "--batch-size", "4", "--no-progress", *extra]


@contextlib.contextmanager
def interrupted_after(job_class: type, writes: int) -> Iterator[None]:
    """Make ``job_class.write`` raise KeyboardInterrupt (Ctrl-C) after ``writes`` successful writes."""
    original = job_class.write
    done = {"writes": 0}

    def write(self, key, refined):
        if done["writes"] == writes:
            raise KeyboardInterrupt
        done["writes"] += 1
        original(self, key, refined)

    job_class.write = write
    try:
        yield
    finally:
        job_class.write = original


def folder_pixels(root: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(root).as_posix(): read_image(p) for p in sorted(root.rglob("*.png"))}


# --- classifier files ----------------------------------------------------------------------


def test_a_classifier_file_round_trips_with_its_input_convention(tmp_path):
    torch.manual_seed(1)
    original = Classifier(ConvClassifier(3, 4, (16, 16), width=4), 4, input_range=(0, 1), mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.2], input_size=(16, 16))
    path = save_classifier(tmp_path / "c.safetensors", original, architecture="ConvClassifier",
                           config={"in_channels": 3, "num_classes": 4, "image_size": [16, 16], "width": 4}, training={"eps": 0.5})
    loaded = load_classifier(path)
    x = torch.rand(5, 3, 20, 20) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), original(x))
    assert loaded.input_range == (0.0, 1.0) and loaded.input_size == (16, 16)
    assert read_classifier_spec(path)["training"] == {"eps": 0.5}


def test_classifier_files_that_say_nothing_or_lie_are_refused(tmp_path, classifier_file):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="without a classifier description"):
        load_classifier(plain)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_classifier(tmp_path / "missing.safetensors")
    spec = read_classifier_spec(classifier_file)
    from safetensors.torch import load_file

    lying = tmp_path / "lying.safetensors"
    spec["config"]["width"] = 16
    save_file(load_file(str(classifier_file)), str(lying), metadata={"gan_postproc.classifier": json.dumps(spec)})
    with pytest.raises(CheckpointError, match="does not fit ConvClassifier: shape mismatches"):
        load_classifier(lying)
    with pytest.raises(InputError, match="no shipped classifier named 'cifar-robust'"):
        load_classifier("cifar-robust")


def test_shipped_classifiers_load_by_name():
    from gan_postproc.models.digits import digits_classifier

    x = torch.rand(3, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(load_classifier("digits-robust")(x), digits_classifier(robust=True)(x))
        torch.testing.assert_close(load_classifier("digits")(x), digits_classifier(robust=False)(x))


def test_pickles_load_only_with_an_explicit_opt_in(tmp_path):
    torch.manual_seed(0)
    net = ConvClassifier(**CONFIG)
    path = tmp_path / "net.pt"
    torch.save(net, path)
    with pytest.raises(UnsafeCheckpointError, match="allow_pickle=True"):
        load_classifier(path)
    with pytest.warns(CodeExecutionWarning, match="executes the code"):
        loaded = load_classifier(path, allow_pickle=True)
    assert loaded.num_classes == 3


# --- the command -----------------------------------------------------------------------------


def test_refining_a_folder_keeps_names_and_stays_near_the_inputs(tmp_path, classifier_file, image_folder):
    out = tmp_path / "refined"
    assert main(refine_args(classifier_file, image_folder, out)) == 0
    before, after = folder_pixels(image_folder), folder_pixels(out)
    assert sorted(after) == sorted(before)
    changed = 0
    for name in before:
        a, b = to_chain(before[name][None]), to_chain(after[name][None])
        # eps 2.0 in [-1, 1] units, plus rounding to 8 bits (half a level per pixel)
        assert float((b - a).norm()) <= 2.0 + 8 * (1 / 127.5)
        changed += int(not np.array_equal(before[name], after[name]))
    assert changed == len(before)
    manifest = json.loads((out / refine_command.MANIFEST).read_text())
    assert manifest["refiner"]["name"] == "bigroc" and manifest["refiner"]["eps"] == 2.0


def test_an_interrupted_folder_run_resumes_to_the_same_result(tmp_path, classifier_file, image_folder, capsys):
    complete = tmp_path / "complete"
    assert main(refine_args(classifier_file, image_folder, complete)) == 0
    interrupted = tmp_path / "interrupted"
    with interrupted_after(refine_command._Folder, writes=1):
        assert main(refine_args(classifier_file, image_folder, interrupted)) == 130
    assert len(folder_pixels(interrupted)) == 4  # the first batch only, every file whole
    capsys.readouterr()
    assert main(refine_args(classifier_file, image_folder, interrupted)) == 0
    assert "refined 5 of 9 images (4 written by an earlier run)" in capsys.readouterr().out
    resumed, reference = folder_pixels(interrupted), folder_pixels(complete)
    assert sorted(resumed) == sorted(reference)
    assert all(np.array_equal(resumed[name], reference[name]) for name in reference)


def test_a_corrupt_output_file_is_redone(tmp_path, classifier_file, image_folder, capsys):
    out = tmp_path / "refined"
    assert main(refine_args(classifier_file, image_folder, out)) == 0
    (out / "img1.png").write_bytes(b"not a png")
    capsys.readouterr()
    assert main(refine_args(classifier_file, image_folder, out)) == 0
    assert "refined 4 of 9" in capsys.readouterr().out
    assert read_image(out / "img1.png").shape == (1, 8, 8)


def test_refining_an_npz_keeps_its_other_arrays_and_resumes(tmp_path, classifier_file):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (10, 8, 8, 1), dtype=np.uint8)  # NHWC
    source = tmp_path / "samples.npz"
    np.savez(source, images=images, seeds=np.arange(10))
    labels = tmp_path / "labels.npy"
    np.save(labels, np.arange(10) % 3)
    complete = tmp_path / "complete"
    assert main(refine_args(classifier_file, source, complete, "--labels", str(labels))) == 0
    with np.load(complete / "samples.npz") as done:
        assert sorted(done.files) == ["images", "seeds"]
        assert done["images"].shape == images.shape and done["images"].dtype == np.uint8
        assert np.array_equal(done["seeds"], np.arange(10))
        assert not np.array_equal(done["images"], images)
        reference = done["images"]
    resumed_dir = tmp_path / "resumed"
    with interrupted_after(refine_command._Npz, writes=2):
        assert main(refine_args(classifier_file, source, resumed_dir, "--labels", str(labels))) == 130
    assert not (resumed_dir / "samples.npz").exists()
    assert main(refine_args(classifier_file, source, resumed_dir, "--labels", str(labels))) == 0
    with np.load(resumed_dir / "samples.npz") as done:
        assert np.array_equal(done["images"], reference)
    assert not any(p.name.endswith(".parts") for p in resumed_dir.iterdir())


@pytest.mark.parametrize("kind", ["folder", "npz"])
def test_a_run_killed_part_way_resumes_to_the_uninterrupted_result(tmp_path, classifier_file, kind):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (24, 8, 8), dtype=np.uint8)
    if kind == "folder":
        source = tmp_path / "inputs"
        source.mkdir()
        for i, image in enumerate(pixels):
            Image.fromarray(image).save(source / f"{i:02d}.png")
    else:
        source = tmp_path / "inputs.npz"
        np.savez(source, images=pixels[:, None])
    reference, out = tmp_path / "reference", tmp_path / "killed"
    args = lambda output: refine_args(classifier_file, source, output, "--batch-size", "2")  # noqa: E731
    assert main(args(reference)) == 0

    def written() -> int:
        return len(list(out.glob("*.png"))) if kind == "folder" else len(list(out.glob(".inputs.parts/*.npz")))

    done = lambda: written() == 24 if kind == "folder" else (out / "inputs.npz").exists()  # noqa: E731
    stopped = interrupt_part_way(args(out), started=lambda: written() >= 2, finished=done)
    assert stopped.returncode == -signal.SIGKILL
    assert main(args(out)) == 0
    assert files(out) == files(reference)  # every image once, bit-identical, no temp or part files left


def test_float_arrays_need_their_value_range(tmp_path, classifier_file, capsys):
    source = tmp_path / "float.npz"
    np.savez(source, images=np.random.default_rng(0).uniform(0, 1, (4, 1, 8, 8)).astype(np.float32))
    assert main(refine_args(classifier_file, source, tmp_path / "a")) == 2
    assert "--value-range" in capsys.readouterr().err
    assert main(refine_args(classifier_file, source, tmp_path / "b", "--value-range", "0", "1", "--refiner-option", "bigroc.debias=false")) == 0
    with np.load(tmp_path / "b" / "float.npz") as done:
        refined = done["images"]
    assert refined.dtype == np.float32 and refined.min() >= 0 and refined.max() <= 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--refiner-option", "bigroc.eps=-1"], "eps must be a finite number > 0"),
        (["--refiner-option", "bigroc.steps=0"], "steps must be an integer >= 1"),
        (["--refiner-option", "dot.steps=3"], "--refiner-option must look like NAME.key=value with NAME one of ['bigroc']"),
        (["--labels", "LABELS_OUT_OF_RANGE"], "must lie in [0, 2] for a model with 3 classes"),
        (["--labels", "LABELS_TOO_FEW"], "holds 2 labels for 9 input images"),
    ],
)
def test_bad_settings_and_labels_exit_with_a_clear_message(tmp_path, classifier_file, image_folder, capsys, extra, message):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([0, 3, 1, 2, 0, 1, 2, 0, 1]) if "LABELS_OUT_OF_RANGE" in extra else np.array([0, 1]))
    extra = [str(bad) if e.startswith("LABELS_") else e for e in extra]
    assert main(refine_args(classifier_file, image_folder, tmp_path / "out", *extra)) == 2
    assert message in capsys.readouterr().err


def test_folder_labels_by_file_name(tmp_path, classifier_file, image_folder):
    names = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.rglob("*.png"))
    labels = tmp_path / "labels.csv"
    labels.write_text("name,label\n" + "".join(f"{name},{i % 3}\n" for i, name in enumerate(names)))
    assert main(refine_args(classifier_file, image_folder, tmp_path / "out", "--labels", str(labels))) == 0


def test_other_input_problems_are_named(tmp_path, classifier_file, image_folder, capsys):
    assert main(refine_args(classifier_file, tmp_path / "nowhere", tmp_path / "out")) == 2
    assert "does not exist" in capsys.readouterr().err
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).save(image_folder / "odd.png")
    assert main(refine_args(classifier_file, image_folder, tmp_path / "out2")) == 2
    assert "one size" in capsys.readouterr().err
    (image_folder / "odd.png").unlink()
    torch.save(ConvClassifier(**CONFIG), tmp_path / "net.pt")
    args = refine_args(classifier_file, image_folder, tmp_path / "out3")
    args[args.index(str(classifier_file))] = str(tmp_path / "net.pt")
    assert main(args) == 2
    assert "--allow-pickle" in capsys.readouterr().err


def test_the_bigroc_flags_of_0_1_still_work_with_a_warning_naming_the_new_spelling(tmp_path, classifier_file, image_folder, capsys):
    """--eps, --steps, --norm, --debias, ... map to --refiner-option bigroc.*: same images, same settings record (resumable)."""
    new = refine_args(classifier_file, image_folder, tmp_path / "new", "--refiner-option", "bigroc.steps=2",
                      "--refiner-option", "bigroc.norm=linf", "--refiner-option", "bigroc.debias=false")
    old = ["refine", "--refiner", "bigroc", "--classifier", str(classifier_file), "--eps", "2.0", "--steps", "2", "--norm", "linf",
           "--debias", "off", "--input", str(image_folder), "--output", str(tmp_path / "old"), "--batch-size", "4", "--no-progress"]
    assert main(new) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert main(old) == 0
    err = capsys.readouterr().err
    for hint in ("--eps is deprecated; use --refiner-option bigroc.eps=2.0", "--steps is deprecated; use --refiner-option bigroc.steps=2",
                 "--norm is deprecated; use --refiner-option bigroc.norm=\"linf\"", "--debias is deprecated; use --refiner-option bigroc.debias=false"):
        assert hint in err
    assert files(tmp_path / "new") == files(tmp_path / "old")
    assert json.loads((tmp_path / "new" / refine_command.MANIFEST).read_text())["refiner"] == json.loads((tmp_path / "old" / refine_command.MANIFEST).read_text())["refiner"]
