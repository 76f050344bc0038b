"""The shipped digits models: data split, offline loading, shapes, quality floors, adapter, errors."""

from __future__ import annotations

import json
import socket

import pytest
import torch
from safetensors.torch import save_file

from gan_postproc import Chain, Classifier
from gan_postproc.classifier_training import classifier_accuracy
from gan_postproc.errors import CheckpointError, InputError
from gan_postproc.models import assets
from gan_postproc.models.digits import (
    DIGITS_FILES,
    DigitsClassifier,
    DigitsGenerator,
    digits_adapter,
    digits_classifier,
    digits_dataset,
    digits_feature_extractor,
    load_digits_classifier,
    load_digits_discriminator,
    load_digits_feature_net,
    load_digits_generator,
)
from gan_postproc.pipeline.scoring import ScoreKind
from gan_postproc.plugins.bigroc import AttackSettings


@pytest.fixture(scope="module")
def test_split() -> tuple[torch.Tensor, torch.Tensor]:
    return digits_dataset("test")


def test_split_is_fixed_stratified_and_in_chain_range() -> None:
    train_x, train_y = digits_dataset("train")
    test_x, test_y = digits_dataset("test")
    all_x, _ = digits_dataset("all")
    assert train_x.shape == (1347, 1, 8, 8) and test_x.shape == (450, 1, 8, 8) and all_x.shape == (1797, 1, 8, 8)
    assert train_x.dtype == torch.float32 and train_y.dtype == torch.int64
    assert float(train_x.min()) == -1.0 and float(train_x.max()) == 1.0
    # Stratified: every class keeps its share of the 1797 images, within one image.
    _, all_y = digits_dataset("all")
    share = torch.bincount(all_y).double() * 450 / 1797
    assert ((torch.bincount(test_y).double() - share).abs() < 1).all()
    # Pinned: the split recorded in the manifest (train_test_split, random_state 0).
    assert torch.bincount(test_y).tolist() == [45, 46, 44, 46, 45, 46, 45, 45, 43, 45]
    # Fixed: the same split every call, the two parts disjoint and together the whole data set.
    again_x, again_y = digits_dataset("test")
    assert torch.equal(again_x, test_x) and torch.equal(again_y, test_y)
    assert test_y[:12].tolist() == [2, 0, 4, 9, 4, 1, 2, 4, 6, 7, 9, 1]
    pooled = torch.cat([train_x, test_x]).flatten(1)
    assert torch.unique(pooled, dim=0).shape[0] == torch.unique(all_x.flatten(1), dim=0).shape[0]
    with pytest.raises(InputError, match="split"):
        digits_dataset("validation")  # type: ignore[arg-type]


def test_every_model_loads_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("loading a shipped model tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assets.read_manifest.cache_clear()
    models = [
        load_digits_generator(),
        load_digits_generator(conditional=True),
        load_digits_discriminator(),
        load_digits_discriminator(conditional=True),
        load_digits_classifier(),
        load_digits_classifier(robust=True),
        load_digits_feature_net(),
    ]
    assert all(not m.training for m in models)


def test_manifest_records_every_file_with_its_hash() -> None:
    manifest = assets.read_manifest("digits")
    # The models of train_digits.py, plus method-specific assets that other scripts add (each names its command).
    assert set(DIGITS_FILES.values()) <= set(manifest["files"])
    folder = assets.asset_path("digits", "manifest.json").parent
    assert {p.name for p in folder.iterdir() if p.name != "manifest.json"} == set(manifest["files"])
    for name in set(manifest["files"]) - set(DIGITS_FILES.values()):
        assert manifest["files"][name]["training"]["command"].startswith("python benchmarks/"), name
    total = 0
    for name, entry in manifest["files"].items():
        path = assets.asset_path("digits", name)
        assert assets.sha256_of(path) == entry["sha256"], name
        assert entry["architecture"] and entry["training"]["seed"] is not None and entry["what"]
        total += path.stat().st_size
    assert total < 5_000_000
    assert manifest["command"].startswith("python benchmarks/train_digits.py")
    assert manifest["split"]["n_train"] == 1347 and manifest["split"]["n_test"] == 450
    assert "eps" in manifest["files"]["robust_classifier.safetensors"]["training"]


def test_shapes_and_ranges() -> None:
    z = torch.randn(6, 32, generator=torch.Generator().manual_seed(0))
    y = torch.arange(6)
    with torch.no_grad():
        x = load_digits_generator()(z)
        xc = load_digits_generator(conditional=True)(z, y)
        d = load_digits_discriminator()(x)
        dc = load_digits_discriminator(conditional=True)(xc, y)
        logits = load_digits_classifier()(x)
        features = digits_feature_extractor()(x)
    assert x.shape == xc.shape == (6, 1, 8, 8)
    assert float(x.abs().max()) <= 1.0 and float(xc.abs().max()) <= 1.0
    assert d.shape == dc.shape == (6,)
    assert logits.shape == (6, 10)
    assert features.shape == (6, 64) and digits_feature_extractor().num_features == 64
    with pytest.raises(InputError, match="conditional"):
        load_digits_generator(conditional=True)(z)
    with pytest.raises(InputError, match="unconditional"):
        load_digits_discriminator()(x, y)


def test_classifiers_and_feature_net_are_accurate(test_split: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Measured when trained: 0.980 (normal), 0.987 (robust), 0.976 (feature net)."""
    images, labels = test_split
    assert classifier_accuracy(load_digits_classifier(), images, labels) > 0.96
    assert classifier_accuracy(load_digits_classifier(robust=True), images, labels) > 0.96
    assert classifier_accuracy(load_digits_feature_net(), images, labels) > 0.95


def test_robust_classifier_resists_an_l2_attack_the_normal_one_does_not(test_split: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Measured with 20 steps at eps 1.0: 0.82 (robust) vs 0.57 (normal)."""
    images, labels = test_split
    attack = AttackSettings(eps=1.0, steps=10)
    robust = classifier_accuracy(load_digits_classifier(robust=True), images[:200], labels[:200], attack=attack)
    normal = classifier_accuracy(load_digits_classifier(), images[:200], labels[:200], attack=attack)
    assert robust > 0.7 and robust > normal + 0.15, (robust, normal)


@pytest.mark.parametrize("conditional", [False, True])
def test_adapter_runs_in_a_chain(conditional: bool) -> None:
    adapter = digits_adapter(conditional=conditional)
    assert adapter.prior.kind == "normal" and adapter.prior.shape == (32,)
    assert adapter.value_range == (-1.0, 1.0)
    assert adapter.num_classes == (10 if conditional else None)
    assert adapter.discriminator.output is ScoreKind.LOGIT and adapter.discriminator.conditional is conditional
    assert isinstance(adapter.classifier, Classifier) and adapter.classifier.num_classes == 10
    assert {"fc", "block1", "block2", "to_image"} <= set(adapter.layer_names())
    labels = torch.arange(20) % 10 if conditional else None
    batch = Chain(adapter, batch_size=7).sample(20, seed=3, labels=labels)
    assert batch.images.shape == (20, 1, 8, 8) and float(batch.images.abs().max()) <= 1.0
    same = Chain(adapter, batch_size=20).sample(20, seed=3, labels=labels)
    torch.testing.assert_close(batch.images, same.images)
    with torch.no_grad():
        scores = adapter.discriminator(batch.images, batch.labels)
        probabilities = adapter.classifier(batch.images).softmax(1)
        # The split at a middle layer re-decodes exactly.
        middle = adapter.generate_to(batch.latents, batch.labels, "block1")
        decoded = adapter.generate_from(middle, batch.latents, batch.labels, "block1")
    assert scores.shape == (20,) and torch.isfinite(scores).all()
    assert middle.shape == (20, 64, 4, 4)
    torch.testing.assert_close(decoded, batch.images)
    if conditional:
        # The conditional GAN mostly draws the requested class (measured: 0.92 of 2000 samples).
        assert float((probabilities.argmax(1) == labels).float().mean()) >= 0.7


def test_adapter_classifier_choices() -> None:
    assert digits_adapter(classifier=None).classifier is None
    normal = digits_classifier(robust=False)
    assert digits_adapter(classifier=normal).classifier is normal
    with pytest.raises(InputError, match="robust"):
        digits_adapter(classifier="resnet")  # type: ignore[arg-type]


def test_wrong_architecture_names_the_differing_keys(tmp_path) -> None:
    other = tmp_path / "classifier_as_generator.safetensors"
    save_file(DigitsClassifier().state_dict(), str(other))
    with pytest.raises(CheckpointError) as error:
        load_digits_generator(path=other)
    message = str(error.value)
    assert "missing keys: block1.conv.bias" in message and "unexpected keys: body.0.bias" in message

    narrow = tmp_path / "narrow_generator.safetensors"
    save_file(DigitsGenerator(width=16).state_dict(), str(narrow))
    with pytest.raises(CheckpointError, match=r"shape mismatches: block1\.conv\.bias \(checkpoint \(32,\), model \(64,\)\)"):
        load_digits_generator(path=narrow)

    with pytest.raises(CheckpointError, match="does not exist"):
        load_digits_generator(path=tmp_path / "missing.safetensors")


def test_weights_from_a_path_load_into_the_shipped_architecture(tmp_path) -> None:
    shipped = load_digits_classifier(robust=True)
    copy = tmp_path / "robust.safetensors"
    save_file(shipped.state_dict(), str(copy))
    loaded = load_digits_classifier(path=copy)
    for key, value in shipped.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_a_changed_shipped_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = json.loads(json.dumps(assets.read_manifest("digits")))
    manifest["files"]["generator.safetensors"]["sha256"] = "0" * 64
    monkeypatch.setattr(assets, "read_manifest", lambda group: manifest)
    with pytest.raises(CheckpointError, match="SHA-256"):
        assets.load_shipped_state("digits", "generator.safetensors")
