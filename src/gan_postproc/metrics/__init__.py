"""Metrics for generated samples: accumulating classes with functional twins.

.. important::
   **The network that MEASURES must be independent of the network that GUIDES.**
   A method steered by a classifier (BIGRoC, classifier filtering, CBGAN
   weighting) or a discriminator (rejection samplers, DOT, collaborative
   sampling) will look better in that same network's features or labels
   without being better. Compute FID / KID / precision / recall with the
   standard Inception network (:class:`InceptionFeatures`) or a network
   trained separately from every network the method consults, and label
   samples for the class balance with an independent classifier too.

Every metric comes as a class that accumulates over batches (``update`` ...
``compute``; 50k-sample streams never hold all images) and a function that
takes whole sets; both share the same private update/compute helpers.

=====================================  ==============================  =====================
measure                                class                           function
=====================================  ==============================  =====================
Frechet (Inception) distance           :class:`FID`                    :func:`fid`
kernel (Inception) distance            :class:`KID`                    :func:`kid`
Inception Score                        :class:`InceptionScore`         :func:`inception_score`
precision/recall/density/coverage      :class:`PRDC`                   :func:`prdc`
class balance KL                       :class:`ClassBalance`           :func:`balance_kl`
intra-class (MS-)SSIM                  :class:`IntraClassDiversity`    :func:`intra_class_diversity`
Gaussian-mixture mode statistics       :class:`ModeStatistics`         :func:`mode_statistics`
exact EMD (optimal assignment)         (needs whole sets)              :func:`emd`
all standard numbers, streaming        :class:`SampleEvaluator`
=====================================  ==============================  =====================

Samples follow the chain convention (``[N, C, H, W]`` in ``[-1, 1]``, or
``[N, D]`` vectors). Feature metrics take a ``features`` module
(:class:`ModuleFeatures`, :class:`InceptionFeatures`, or any module mapping
samples to ``[N, F]``) or, with ``features=None``, ``[N, F]`` features.
"""

from __future__ import annotations

from .balance import ClassBalance, balance_kl, class_histogram
from .divergence import kl_divergence
from .diversity import DiversityResult, IntraClassDiversity, intra_class_diversity, pair_similarity
from .emd import emd
from .evaluator import SampleEvaluator
from .features import ModuleFeatures, extract_features
from .fid import FID, fid
from .inception import INCEPTION_URL, InceptionFeatures, default_inception_path, load_inception
from .inception_score import InceptionScore, inception_score
from .kid import KID, kid
from .modes import ModeResult, ModeStatistics, mode_statistics
from .prdc import PRDC, knn_radii, prdc

__all__ = [
    "ModuleFeatures",
    "InceptionFeatures",
    "extract_features",
    "load_inception",
    "default_inception_path",
    "INCEPTION_URL",
    "FID",
    "fid",
    "KID",
    "kid",
    "InceptionScore",
    "inception_score",
    "PRDC",
    "prdc",
    "knn_radii",
    "emd",
    "ModeStatistics",
    "ModeResult",
    "mode_statistics",
    "ClassBalance",
    "balance_kl",
    "class_histogram",
    "kl_divergence",
    "IntraClassDiversity",
    "DiversityResult",
    "intra_class_diversity",
    "pair_similarity",
    "SampleEvaluator",
]
