"""Every file loader against missing, empty, truncated, corrupted and foreign files, and wrong architectures.

Each case writes a valid file with the writer gan-postproc (or the framework)
uses, and loads it with the public loader. A damaged file must give a
:class:`~gan_postproc.errors.GanPostprocError` whose message names the file;
never another exception. Random truncations and byte changes (hypothesis,
derandomized so CI runs the same examples every time) may also still load (a
changed value inside a tensor cannot be detected without a checksum), but
never crash. Files whose loading runs code the user explicitly trusted
(``allow_pickle``, ``allow_code_execution``) are out of that promise: a
damaged trusted pickle may fail in any way; for them the tests check that
nothing is unpickled without the opt-in.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from gan_postproc.errors import CheckpointError, GanPostprocError, UnsafeCheckpointError
from gan_postproc.files.checkpoints import load_checkpoint, save_checkpoint
from gan_postproc.files.classifiers import ConvClassifier, load_classifier, read_classifier_spec, save_classifier
from gan_postproc.files.images import read_label_file, read_npz_images
from gan_postproc.files.loading import CodeExecutionWarning, torch_load_weights
from gan_postproc.models import assets
from gan_postproc.models.assets import load_weights
from gan_postproc.pipeline.scoring import Classifier
from gan_postproc.runs.sample_run import iter_shards, read_manifest, sample_to_disk

from ..helpers.sample_models import image_chain

CONFIG = {"in_channels": 1, "num_classes": 3, "image_size": [8, 8], "width": 4}


@dataclass
class Case:
    """A loader and how to make a valid file for it."""

    name: str
    make: Callable[[Path], Path]  # writes a valid file into the folder, returns its path
    load: Callable[[Path], object]  # loads it (raises on a bad file)
    missing_ok: bool = False  # a missing file is a valid state (no run yet)
    #: For files whose loading runs code the user opted in to (out of scope for "never crash"):
    #: the same loader without the opt-in, which must refuse before unpickling.
    without_opt_in: Callable[[Path], object] | None = None


def _linear(out_features: int = 3) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(4, out_features)


def _weights(folder: Path) -> Path:
    save_file(_linear().state_dict(), str(folder / "w.safetensors"))
    return folder / "w.safetensors"


def _classifier(folder: Path) -> Path:
    torch.manual_seed(0)
    return save_classifier(folder / "c.safetensors", Classifier(ConvClassifier(**CONFIG), 3), architecture="ConvClassifier", config=CONFIG)


def _pickled_classifier(folder: Path) -> Path:
    torch.save(ConvClassifier(**CONFIG), folder / "c.pt")
    return folder / "c.pt"


def _trusting(load: Callable[..., object], **opt_in: bool) -> Callable[[Path], object]:
    """``load`` with the user's opt-in to running the file's code (and its warning silenced)."""

    def trusted(path: Path) -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CodeExecutionWarning)
            return load(path, **opt_in)

    return trusted


def _calibration(folder: Path) -> Path:
    from gan_postproc.plugins.density_ratio.calibration import calibrate_discriminator

    from ..helpers.density_ratio_models import critic_adapter, real_data

    calibrate_discriminator(critic_adapter(), real_data, steps=2, eval_every=1, holdout=50, checkpoint=folder / "cal.safetensors", progress=False)
    return folder / "cal.safetensors"


def _load_calibration(path: Path) -> object:
    from gan_postproc.plugins.density_ratio.calibration import load_calibrated_discriminator

    from ..helpers.density_ratio_models import critic_adapter

    return load_calibrated_discriminator(path, critic_adapter().discriminator)


def _shaped(folder: Path) -> Path:
    from gan_postproc.plugins.collaborative import shape_discriminator

    from ..plugins.collaborative.test_shaping import REAL, REFINER, _adapter

    shape_discriminator(_adapter(), REAL, refiner=REFINER, iterations=1, batch_size=8, out=folder / "d.safetensors", progress=False)
    return folder / "d.safetensors"


def _load_shaped(path: Path) -> object:
    from gan_postproc.plugins.collaborative import load_shaped_discriminator

    from ..plugins.collaborative.test_shaping import _adapter

    return load_shaped_discriminator(path, _adapter().discriminator)


def _training_checkpoint(folder: Path) -> Path:
    model = _linear()
    return save_checkpoint(folder / "last.safetensors", modules={"model": model}, optimizers={"adam": torch.optim.Adam(model.parameters())}, state={"epoch": 1})


def _load_training_checkpoint(path: Path) -> object:
    model = _linear()
    return load_checkpoint(path, modules={"model": model}, optimizers={"adam": torch.optim.Adam(model.parameters())})


def _debias(suffix: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        from gan_postproc.plugins.bigroc import LogitDebias

        return Path(LogitDebias(offsets=torch.tensor([0.5, -0.25, 0.0]), num_samples=7).save(folder / f"offsets{suffix}"))

    return make


def _load_debias(path: Path) -> object:
    from gan_postproc.plugins.bigroc import LogitDebias

    return LogitDebias.load(path)


def _npz_images(folder: Path) -> Path:
    np.savez(folder / "images.npz", images=np.zeros((4, 1, 8, 8), dtype=np.uint8), seeds=np.arange(4))
    return folder / "images.npz"


def _labels(suffix: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / f"labels{suffix}"
        labels = np.array([0, 1, 2, 1])
        if suffix == ".npy":
            np.save(path, labels)
        elif suffix == ".npz":
            np.savez(path, labels=labels)
        elif suffix == ".json":
            path.write_text(json.dumps(labels.tolist()))
        else:
            path.write_text("\n".join(str(v) for v in labels))
        return path

    return make


def _sample_run(folder: Path, member: str) -> Path:
    sample_to_disk(image_chain(batch_size=4), 8, folder / "run", format="png", shard_size=4, progress=False)
    return folder / "run" / member


def _biggan(member: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        from ..integrations.test_biggan import CONFIG as BIGGAN_CONFIG
        from ..integrations.test_biggan import tiny_biggan

        (folder / "config.json").write_text(json.dumps(BIGGAN_CONFIG))
        torch.save(tiny_biggan().state_dict(), folder / "pytorch_model.bin")
        return folder / member

    return make


def _load_biggan(path: Path) -> object:
    from gan_postproc.integrations.biggan import load_biggan

    return load_biggan(path.parent)


def _mimicry(folder: Path) -> Path:
    torch.save({"model_state_dict": _linear().state_dict(), "global_step": 3}, folder / "netG.pth")
    return folder / "netG.pth"


def _load_mimicry(path: Path) -> object:
    from gan_postproc.integrations.mimicry import load_mimicry_checkpoint

    return load_mimicry_checkpoint(_linear(), path)


def _rosinality(folder: Path) -> Path:
    torch.save({"g_ema": _linear().state_dict(), "args": argparse.Namespace(size=8)}, folder / "ckpt.pt")
    return folder / "ckpt.pt"


def _load_rosinality(path: Path) -> object:
    from gan_postproc.integrations.stylegan2 import load_rosinality_checkpoint

    return load_rosinality_checkpoint(path)


def _nvlabs(folder: Path) -> Path:
    with open(folder / "network.pkl", "wb") as file:
        pickle.dump({"G_ema": _linear(), "D": _linear(1)}, file)
    return folder / "network.pkl"


def _load_nvlabs(path: Path, **opt_in: bool) -> object:
    from gan_postproc.integrations.stylegan2 import load_nvlabs_pickle

    return load_nvlabs_pickle(path, **opt_in)


def _importance_network(folder: Path) -> Path:
    from gan_postproc.plugins.latent_reweighting.latent_rs import ImportanceNetwork

    torch.manual_seed(0)
    return ImportanceNetwork(2, width=8).save(folder / "w.safetensors", info={"note": "test"})


def _load_importance_network(path: Path) -> object:
    from gan_postproc.plugins.latent_reweighting.latent_rs import ImportanceNetwork

    return ImportanceNetwork.load(path), ImportanceNetwork.read_info(path)


def _train_importance(folder: Path) -> object:
    """Two updates of Algorithm 1 on a tiny problem, checkpointing to ``folder`` (resumes from it)."""
    from gan_postproc.plugins.latent_reweighting.latent_rs import train_importance_network

    from ..plugins.latent_reweighting.test_latent_reweighting import _identity_adapter, _right_half

    return train_importance_network(
        _identity_adapter(), _right_half(64, 0), validation_data=_right_half(16, 1), steps=2, critic_steps=1, critic_warmup=1,
        batch_size=8, eval_every=1, eval_samples=16, eval_pool=32, checkpoint_dir=folder, seed=0, progress=False,
    )


def _importance_checkpoint(folder: Path) -> Path:
    return _train_importance(folder).checkpoint


CASES = [
    Case("weights (load_weights)", _weights, lambda p: load_weights(_linear(), p)),
    Case("classifier file", _classifier, load_classifier),
    Case("classifier description", _classifier, read_classifier_spec),
    Case("pickled classifier (allow_pickle)", _pickled_classifier, _trusting(load_classifier, allow_pickle=True), without_opt_in=load_classifier),
    Case("calibration checkpoint", _calibration, _load_calibration),
    Case("shaped discriminator", _shaped, _load_shaped),
    Case("training checkpoint", _training_checkpoint, _load_training_checkpoint),
    Case("debias offsets .json", _debias(".json"), _load_debias),
    Case("debias offsets .safetensors", _debias(".safetensors"), _load_debias),
    Case("npz images", _npz_images, read_npz_images),
    *[Case(f"labels {suffix}", _labels(suffix), lambda p: read_label_file(p, count=4)) for suffix in (".npy", ".npz", ".json", ".txt")],
    Case("sample run manifest", lambda f: _sample_run(f, "manifest.json"), lambda p: read_manifest(p.parent), missing_ok=True),
    Case("sample run shard", lambda f: _sample_run(f, "shards/shard-000001.npz"), lambda p: list(iter_shards(p.parent.parent))),
    Case("sample run png", lambda f: _sample_run(f, "images/000000005.png"), lambda p: list(iter_shards(p.parent.parent))),
    Case("biggan config.json", _biggan("config.json"), _load_biggan),
    Case("biggan pytorch_model.bin", _biggan("pytorch_model.bin"), _load_biggan),
    Case("mimicry checkpoint", _mimicry, _load_mimicry),
    Case("rosinality checkpoint", _rosinality, _load_rosinality),
    Case("nvlabs pickle (allow_code_execution)", _nvlabs, _trusting(_load_nvlabs, allow_code_execution=True), without_opt_in=_load_nvlabs),
    Case("importance network", _importance_network, _load_importance_network),
    Case("importance training checkpoint", _importance_checkpoint, lambda p: _train_importance(p.parent), missing_ok=True),
]
BY_NAME = {case.name: case for case in CASES}
NAMES = list(BY_NAME)
#: Files only data is read from: no damage may crash their loader.
UNTRUSTED = [case.name for case in CASES if case.without_opt_in is None]


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], bytes]:
    """The bytes of one valid file per case, by case name (each made once, when first asked for)."""
    made: dict[str, bytes] = {}

    def valid(name: str) -> bytes:
        if name not in made:
            made[name] = BY_NAME[name].make(tmp_path_factory.mktemp("valid")).read_bytes()
        return made[name]

    return valid


def _loaded_or_clear_error(case: Case, path: Path) -> GanPostprocError | None:
    """Load ``path``; return the library error it raised (checked to name the file), or None if it loaded."""
    try:
        case.load(path)
    except GanPostprocError as error:
        assert str(path) in str(error) or str(path.parent) in str(error), f"the message does not name the file: {error}"
        assert "\n" not in str(error).strip()
        return error
    return None


def _fresh(case: Case, tmp_path: Path, content: bytes | None) -> Path:
    """A freshly made valid file (with its siblings), then overwritten with ``content`` (None: deleted)."""
    path = case.make(tmp_path)
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("name", NAMES)
def test_the_valid_file_loads(name, tmp_path):
    case = BY_NAME[name]
    assert _loaded_or_clear_error(case, case.make(tmp_path)) is None


@pytest.mark.parametrize("name", UNTRUSTED)
def test_missing_empty_foreign_and_truncated_files_give_a_clear_error(name, tmp_path, valid_files):
    case = BY_NAME[name]
    original = valid_files(name)
    png = tmp_path / "picture.png"
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(png)
    bad = {
        "missing": None,
        "empty": b"",
        "one byte": original[:1],
        "half": original[: len(original) // 2],
        "foreign (a PNG)": png.read_bytes(),
        "text": b"hello, this is not a model file\n",
    }
    for what, content in bad.items():
        folder = tmp_path / what.replace(" ", "_").replace("(", "").replace(")", "")
        folder.mkdir()
        path = _fresh(case, folder, content)
        error = _loaded_or_clear_error(case, path)
        if what == "missing" and case.missing_ok:
            continue
        assert error is not None, f"{name}: a {what} file loaded without an error"
        if what == "empty" and not name.startswith("sample run png"):
            assert "empty" in str(error) or "does not exist" in str(error) or "no " in str(error), str(error)


#: Bytes at either end of a file where its structure (headers, directories) lies.
_EDGE = 1024


@pytest.mark.parametrize("name", UNTRUSTED)
@settings(max_examples=25, derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_truncations_and_byte_changes_never_crash(name, tmp_path_factory, valid_files, data):
    original = bytearray(valid_files(name))
    size = len(original)
    # headers (safetensors, PyTorch zip entries) sit at the start, zip directories (.npz, .pt) at the end
    position = st.one_of(st.integers(0, min(size, _EDGE) - 1), st.integers(max(0, size - _EDGE), size - 1), st.integers(0, size - 1))
    if data.draw(st.booleans(), label="truncate"):
        content = bytes(original[: data.draw(position, label="keep")])
    else:
        for _ in range(data.draw(st.integers(1, 4), label="changes")):
            original[data.draw(position, label="at")] = data.draw(st.integers(0, 255), label="byte")
        content = bytes(original)
    _loaded_or_clear_error(BY_NAME[name], _fresh(BY_NAME[name], tmp_path_factory.mktemp("fuzz"), content))


@pytest.mark.parametrize("name", [name for name in NAMES if name not in UNTRUSTED])
def test_trusted_pickles_are_not_unpickled_without_the_opt_in(name, tmp_path, capsys):
    case = BY_NAME[name]
    path = case.make(tmp_path)
    path.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(UnsafeCheckpointError, match=re.escape(str(path))):
        case.without_opt_in(path)
    assert "this ran" not in capsys.readouterr().out


# --- wrong architecture: the error names the keys that differ ------------------------------------------


def test_weights_of_another_architecture_name_the_differing_keys(tmp_path):
    path = _weights(tmp_path)
    with pytest.raises(CheckpointError, match=r"shape mismatches: bias \(checkpoint \(3,\), model \(2,\)\), weight \(checkpoint \(3, 4\), model \(2, 4\)\)"):
        load_weights(_linear(2), path)
    with pytest.raises(CheckpointError, match=r"missing keys: 0\.bias, 0\.weight.*unexpected keys: bias, weight"):
        load_weights(nn.Sequential(_linear()), path)


def test_training_checkpoints_of_another_architecture_name_the_keys(tmp_path):
    path = _training_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"\[model\] does not fit Linear: shape mismatches: bias"):
        load_checkpoint(path, modules={"model": _linear(2)})


def test_a_classifier_file_whose_tensors_do_not_fit_its_description(tmp_path):
    path = _classifier(tmp_path)
    from safetensors.torch import load_file

    from gan_postproc.files.classifiers import METADATA_KEY

    spec = read_classifier_spec(path)
    spec["config"]["width"] = 8
    save_file(load_file(str(path)), str(path), metadata={METADATA_KEY: json.dumps(spec)})
    with pytest.raises(CheckpointError, match="does not fit ConvClassifier: shape mismatches"):
        load_classifier(path)


def test_a_calibration_checkpoint_of_another_discriminator_names_the_keys(tmp_path):
    from gan_postproc import Discriminator
    from gan_postproc.plugins.density_ratio.calibration import load_calibrated_discriminator

    path = _calibration(tmp_path)
    other = Discriminator(nn.Sequential(nn.Linear(1, 5), nn.ReLU(), nn.Linear(5, 1)), "critic")
    with pytest.raises(CheckpointError, match="does not fit CalibratedScore: (missing|unexpected) keys"):
        load_calibrated_discriminator(path, other)


def test_a_shaped_discriminator_into_another_architecture_names_the_keys(tmp_path):
    from gan_postproc import Discriminator
    from gan_postproc.plugins.collaborative import load_shaped_discriminator

    path = _shaped(tmp_path)
    other = Discriminator(nn.Sequential(nn.Linear(6, 4), nn.Linear(4, 1)), "logit")
    with pytest.raises(CheckpointError, match="does not fit Sequential: .*(missing|unexpected|shape)"):
        load_shaped_discriminator(path, other)


def test_a_mimicry_checkpoint_of_another_architecture_names_the_keys(tmp_path):
    from gan_postproc.integrations.mimicry import load_mimicry_checkpoint

    with pytest.raises(CheckpointError, match="does not fit Linear: shape mismatches"):
        load_mimicry_checkpoint(_linear(2), _mimicry(tmp_path))


# --- metadata that parses but lacks entries ------------------------------------------------------------


def _rewrite_metadata(path: Path, change: Callable[[dict[str, str]], None]) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
    change(metadata)
    save_file(load_file(str(path)), str(path), metadata=metadata)


def _without(entry: str, *keys: str) -> Callable[[dict[str, str]], None]:
    def change(metadata: dict[str, str]) -> None:
        value = json.loads(metadata[entry])
        target = value
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
        metadata[entry] = json.dumps(value)

    return change


def test_a_calibration_checkpoint_lacking_state_entries_names_them(tmp_path):
    path = _calibration(tmp_path)
    _rewrite_metadata(path, _without("state", "best_loss"))
    with pytest.raises(CheckpointError, match=r"'state' metadata lacks best_loss; delete it to start over"):
        _load_calibration(path)
    path = _calibration(tmp_path / "again")
    _rewrite_metadata(path, _without("state", "config", "mode"))
    with pytest.raises(CheckpointError, match=r"'state.config' metadata lacks mode"):
        _load_calibration(path)


def test_an_importance_training_checkpoint_lacking_state_entries_names_them(tmp_path):
    path = _importance_checkpoint(tmp_path)
    _rewrite_metadata(path, _without("state", "history"))
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: its 'state' metadata lacks history; it is damaged"):
        _train_importance(tmp_path)


def test_an_importance_network_whose_settings_do_not_build_names_the_file(tmp_path):
    path = _importance_network(tmp_path)
    _rewrite_metadata(path, lambda metadata: metadata.update(config=json.dumps({"input_dim": 2, "width": -1})))
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: its stored settings do not build a network \(width"):
        _load_importance_network(path)
    _rewrite_metadata(path, lambda metadata: metadata.update(config="[2, 8]"))
    with pytest.raises(CheckpointError, match="'config' metadata is a list, not an object"):
        _load_importance_network(path)


# --- code execution only with the opt-in ---------------------------------------------------------------


class _Payload:
    def __reduce__(self):
        return (print, ("this ran while unpickling",))


def test_torch_pickles_with_objects_are_refused_without_running_them(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(2), "payload": _Payload()}, path)
    with pytest.raises(UnsafeCheckpointError, match="refusing to unpickle"):
        torch_load_weights(path)
    from gan_postproc.integrations.mimicry import load_mimicry_checkpoint

    with pytest.raises(UnsafeCheckpointError, match="refusing to unpickle"):
        load_mimicry_checkpoint(_linear(), path)
    assert "this ran" not in capsys.readouterr().out


def test_code_pickles_need_the_opt_in_and_warn_when_loaded(tmp_path, capsys):
    path = _pickled_classifier(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match="allow_pickle=True"):
        load_classifier(path)
    with pytest.warns(CodeExecutionWarning, match=str(path)):
        load_classifier(path, allow_pickle=True)


# --- shipped assets ---------------------------------------------------------------------------------


def test_a_damaged_shipped_asset_says_reinstall(tmp_path, monkeypatch):
    from gan_postproc.models import toy2d

    damaged = tmp_path / "G.npz"
    damaged.write_bytes(b"PK\x03\x04 truncated")
    monkeypatch.setattr(toy2d, "asset_path", lambda group, name: damaged)
    with pytest.raises(CheckpointError, match=f"cannot read shipped DOT weights file {damaged} .*reinstall gan-postproc"):
        toy2d.load_toy2d_generator("25gaussians")

    manifest = tmp_path / "manifest.json"
    manifest.write_text("{not json")
    monkeypatch.setattr(assets, "asset_path", lambda group, name: manifest)
    assets.read_manifest.cache_clear()
    try:
        with pytest.raises(CheckpointError, match="cannot read asset manifest .*reinstall gan-postproc"):
            assets.load_shipped_state("digits", "generator.safetensors")
    finally:
        assets.read_manifest.cache_clear()
