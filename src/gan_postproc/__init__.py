"""gan-postproc: better samples from already-trained generative models, without retraining.

The names a user or plugin author needs are re-exported here; the machinery
lives in submodules.
"""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import Any

from .hookspecs import hookimpl  # first: plugin modules import it from here
from .adapter import Adapter
from .batch import SampleBatch
from .chain import Chain, RunReport
from .defaults import DEFAULTS
from .dropin import DropIn, dropin
from .errors import GanPostprocError
from .manager import get_plugin_manager, reset_plugin_manager
from .priors import LatentPrior
from .refiner import Refiner
from .registry import get_registry
from .rejection import RejectionSampler
from .sampler import LatentSampler, PriorSampler, SampleRequest
from .scoring import Classifier, Discriminator, ScoreKind

try:
    __version__ = _metadata.version("gan-postproc")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "hookimpl",
    "get_plugin_manager",
    "reset_plugin_manager",
    "get_registry",
    "Adapter",
    "LatentSampler",
    "RejectionSampler",
    "PriorSampler",
    "Refiner",
    "SampleBatch",
    "SampleRequest",
    "Chain",
    "RunReport",
    "LatentPrior",
    "Discriminator",
    "Classifier",
    "ScoreKind",
    "DropIn",
    "dropin",
    "TorchAdapter",
    "GanPostprocError",
    "DEFAULTS",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # The generic adapter lives with the other integrations; import it on first use.
    if name == "TorchAdapter":
        from .integrations.torch_module import TorchAdapter

        return TorchAdapter
    raise AttributeError(f"module 'gan_postproc' has no attribute {name!r}")
