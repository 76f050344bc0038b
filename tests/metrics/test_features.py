"""Feature extractors: ModuleFeatures (range, named layer), batching, and the Inception loader's paths."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from gan_postproc.errors import CheckpointError, InputError, InputTypeError
from gan_postproc.metrics import InceptionFeatures, ModuleFeatures, extract_features, load_inception
from gan_postproc.metrics import inception as inception_module


class _RangeProbe(nn.Module):
    """Returns each sample's min and max: shows which range the network received."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return torch.stack([flat.min(1).values, flat.max(1).values], dim=1)


def test_module_features_maps_chain_images_into_the_networks_range() -> None:
    images = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3).expand(2, 1, 1, 3)
    assert extract_features(ModuleFeatures(_RangeProbe(), input_range=(0, 1)), images).tolist() == [[0.0, 1.0]] * 2
    assert extract_features(ModuleFeatures(_RangeProbe()), images).tolist() == [[-1.0, 1.0]] * 2
    points = torch.tensor([[5.0, -7.0]])
    assert extract_features(ModuleFeatures(_RangeProbe(), input_range=None), points).tolist() == [[-7.0, 5.0]]


def test_module_features_reads_a_named_layer_and_leaves_no_hook_behind() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    images = torch.rand(20, 1, 8, 8) * 2 - 1
    feats = extract_features(ModuleFeatures(net, layer="2"), images, batch_size=6)
    with torch.no_grad():
        assert torch.allclose(feats, net[2](net[1](net[0](images))))
    assert feats.shape == (20, 16)
    assert not net[2]._forward_hooks
    assert list(ModuleFeatures(net, layer="2").state_dict()) == [f"module.{key}" for key in net.state_dict()]
    with pytest.raises(InputError, match=r"no layer named 'fc'; its layers are: '0', '1', '2', '3'"):
        ModuleFeatures(net, layer="fc")


def test_outputs_are_flattened_and_independent_of_batch_size() -> None:
    torch.manual_seed(1)
    conv = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Tanh()).eval()
    images = torch.rand(17, 1, 8, 8) * 2 - 1
    one = extract_features(ModuleFeatures(conv), images, batch_size=17)
    assert one.shape == (17, 3 * 6 * 6)
    assert torch.allclose(extract_features(ModuleFeatures(conv), images, batch_size=4), one, atol=1e-6)


def test_feature_networks_in_training_mode_or_with_bad_outputs_are_refused() -> None:
    images = torch.zeros(4, 1, 8, 8)
    with pytest.raises(InputError, match=r"BatchNorm2d layer \(1\) in training mode.*call .eval\(\)"):
        extract_features(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten()), images)
    with pytest.raises(InputError, match=r"shape \[4, F\].*ModuleFeatures"):
        extract_features(nn.Conv2d(1, 2, 3), images)
    with pytest.raises(InputTypeError, match="must be a torch.nn.Module"):
        extract_features(lambda x: x, images)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"must lie in \[-1, 1\]"):
        extract_features(nn.Flatten(), images + 2)
    with pytest.raises(InputError, match="2 or 4 dimensions"):
        extract_features(nn.Flatten(), torch.zeros(4, 8, 8))


def test_inception_missing_file_error_says_what_where_and_the_alternative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(CheckpointError) as info:
        InceptionFeatures(download=False)
    message = str(info.value)
    assert "inception-2015-12-05.pt" in message
    assert str(tmp_path / "hub" / "checkpoints" / "inception-2015-12-05.pt") in message
    assert inception_module.INCEPTION_URL in message
    assert "any torch.nn.Module" in message and "ModuleFeatures" in message
    with pytest.raises(CheckpointError, match="no file at the given path"):
        load_inception(tmp_path / "elsewhere.pt")


def test_inception_download_failure_is_reported_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    calls = []

    def offline(url: str, dst: str, progress: bool = True) -> None:
        calls.append((url, dst))
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(CheckpointError, match=r"downloading it failed \(OSError: Network is unreachable\)"):
        load_inception()
    assert calls == [(inception_module.INCEPTION_URL, str(tmp_path / "hub" / "checkpoints" / "inception-2015-12-05.pt"))]


def test_inception_refuses_a_file_that_is_not_torchscript(tmp_path: Path) -> None:
    bogus = tmp_path / "inception-2015-12-05.pt"
    bogus.write_bytes(b"not a zip archive")
    with pytest.raises(CheckpointError, match="not a readable TorchScript file"):
        load_inception(bogus)


class _FakeInception(nn.Module):
    """Same call signature as NVlabs' TorchScript network; its 'features' describe the input it got."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        stats = torch.stack([x.amin(dim=(1, 2, 3)), x.amax(dim=(1, 2, 3)), torch.full_like(x[:, 0, 0, 0], float(x.shape[1]))], 1)
        size = torch.full_like(stats[:, :1], float(x.shape[2] * 1000 + x.shape[3]))
        return torch.cat([stats, size, torch.zeros(x.shape[0], 2044)], dim=1)


def test_inception_loads_torchscript_and_feeds_it_299px_rgb_in_0_255(tmp_path: Path) -> None:
    path = tmp_path / "inception-2015-12-05.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(_FakeInception()), str(path))
    features = InceptionFeatures(path)
    grey = torch.tensor([-1.0, 1.0]).repeat(32).view(1, 1, 8, 8).expand(3, 1, 8, 8)
    out = extract_features(features, grey)
    assert out.shape == (3, 2048) and out.dtype == torch.float32
    low, high, channels, size = out[0, :4].tolist()
    assert 0.0 <= low < 30.0 and 225.0 < high <= 255.0  # [-1, 1] became [0, 255] (the resize softens extremes)
    assert channels == 3.0 and size == 299 * 1000 + 299
    with pytest.raises(InputError, match="1 or 3 channels"):
        features(torch.zeros(1, 2, 8, 8))
