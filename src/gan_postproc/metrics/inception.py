"""The standard FID Inception-v3 network, for users who have (or can download) its weights.

FID as published (Heusel et al. 2017) uses the pool3 features (2048) of the
TensorFlow Inception-v3 graph ``2015-12-05``. NVlabs ported that graph to a
TorchScript file, ``inception-2015-12-05.pt``, which StyleGAN2-ADA and
clean-fid load with ``torch.jit.load``; this module loads the same file.

Nothing in gan-postproc downloads it silently into a project folder: with
``download=True`` (the default) and no ``path``, a missing file is fetched once
from :data:`INCEPTION_URL` into the torch hub cache
(``<torch.hub.get_dir()>/checkpoints/``), as ``torch.hub`` does for other
weights. Without internet, put the file there by hand or pass ``path=``. Any
``torch.nn.Module`` also works as the feature network
(:class:`~gan_postproc.metrics.features.ModuleFeatures`); whichever you use
must be independent of the networks that guide the method you measure (see
:mod:`gan_postproc.metrics.features`).

The TorchScript file executes code when loaded (like any TorchScript): load
only the file from NVlabs' URL.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, InputError
from ..validation import check_tensor

__all__ = ["INCEPTION_URL", "INCEPTION_FILENAME", "default_inception_path", "load_inception", "InceptionFeatures"]

#: Public URL of NVlabs' TorchScript port of the TF FID Inception (also used by clean-fid).
INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
#: File name of the weights.
INCEPTION_FILENAME = "inception-2015-12-05.pt"
_INPUT_SIZE = (299, 299)
_NUM_FEATURES = 2048


def default_inception_path() -> Path:
    """Where the weights are looked for (and downloaded to): ``<torch hub dir>/checkpoints/inception-2015-12-05.pt``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILENAME


def _missing_message(path: Path, reason: str) -> str:
    return (
        f"FID with the standard Inception network needs the file {INCEPTION_FILENAME!r} "
        f"(NVlabs' TorchScript Inception-v3, about 95 MB): {reason}. "
        f"Download it from {INCEPTION_URL} and put it at {default_inception_path()} "
        "(or pass path='/where/it/is.pt'). "
        "Or measure with any torch.nn.Module instead, e.g. "
        "gan_postproc.metrics.ModuleFeatures(my_network) with a network trained on your data that is "
        "independent of the classifier/discriminator the method uses."
    )


def _download(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(INCEPTION_URL, str(target), progress=True)
    except Exception as exc:  # no internet, proxy, HTTP error: all mean the same to the user
        raise CheckpointError(
            _missing_message(target, f"downloading it failed ({type(exc).__name__}: {exc})")
        ) from exc


def load_inception(path: str | Path | None = None, *, download: bool = True) -> nn.Module:
    """Load the TorchScript FID Inception network on the CPU, in eval mode.

    Args:
        path: the ``.pt`` file. ``None``: :func:`default_inception_path`,
            downloaded there from :data:`INCEPTION_URL` if missing and
            ``download`` is true. An explicit path is never downloaded to.
        download: whether a missing default file may be downloaded.

    Raises:
        CheckpointError: the file is missing (and could not be downloaded)
            or is not a TorchScript archive. The message says which file is
            needed, where to put it, and that any ``nn.Module`` works instead.
    """
    if path is None:
        target = default_inception_path()
        if not target.is_file():
            if not download:
                raise CheckpointError(_missing_message(target, f"it is not at {target} and download=False"))
            _download(target)
    else:
        target = Path(path).expanduser()
        if not target.is_file():
            raise CheckpointError(_missing_message(target, f"no file at the given path {target}"))
    try:
        with warnings.catch_warnings():
            # torch 2.x marks torch.jit.load deprecated, but the published weights are TorchScript.
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=DeprecationWarning)
            net = torch.jit.load(str(target), map_location="cpu")
    except Exception as exc:
        raise CheckpointError(
            _missing_message(target, f"{target} is not a readable TorchScript file ({type(exc).__name__}: {exc})")
        ) from exc
    return net.eval()


class InceptionFeatures(nn.Module):
    """FID Inception-v3 pool features (2048) of chain-convention images.

    Preprocessing: ``[N, 1 or 3, H, W]`` images in ``[-1, 1]`` are mapped to
    ``[0, 255]``, grey images repeated to 3 channels, and resized to 299 x 299
    (bicubic, antialiased: close to clean-fid's PIL resize, not bit-identical)
    before the network's own ``(x - 128) / 128`` normalisation. Values are
    therefore comparable to, not identical with, clean-fid / StyleGAN2-ADA
    numbers.

    Args:
        path, download: see :func:`load_inception`.
    """

    num_features = _NUM_FEATURES

    def __init__(self, path: str | Path | None = None, *, download: bool = True) -> None:
        super().__init__()
        self.net = load_inception(path, download=download)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """Features ``[N, 2048]`` float32."""
        check_tensor(samples, "images", ndim=4, floating=True)
        channels = samples.shape[1]
        if channels not in (1, 3):
            raise InputError(f"the Inception network takes grey or RGB images (1 or 3 channels), got {channels} channels")
        x = (samples.float() + 1.0) * 127.5
        if channels == 1:
            x = x.expand(-1, 3, -1, -1)
        if tuple(x.shape[-2:]) != _INPUT_SIZE:
            x = F.interpolate(x, size=_INPUT_SIZE, mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 255.0)
        out = self.net(x, return_features=True)
        return out.reshape(samples.shape[0], _NUM_FEATURES).float()
