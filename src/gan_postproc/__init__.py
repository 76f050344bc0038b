"""gan-postproc: better samples from already-trained generative models, without retraining.

The names a user or plugin author needs are re-exported here; the machinery
lives in submodules.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from . import _moved
from .defaults import DEFAULTS
from .errors import GanPostprocError
from .hookspecs import hookimpl  # plugin modules import it from here
from .pipeline.adapter import Adapter
from .pipeline.batch import SampleBatch
from .pipeline.chain import Chain, RunReport
from .pipeline.dropin import DropIn, dropin
from .pipeline.priors import LatentPrior
from .pipeline.refiner import Refiner
from .pipeline.rejection import RejectionSampler
from .pipeline.sampler import LatentSampler, PriorSampler, SampleRequest
from .pipeline.scoring import Classifier, Discriminator, ScoreKind
from .pipeline.torch_adapter import TorchAdapter
from .plugin_system.manager import get_plugin_manager, reset_plugin_manager
from .plugin_system.registry import get_registry

_moved.install()  # old import paths (gan_postproc.density_ratio, gan_postproc.plugins.drs, ...) keep working until 0.3

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

