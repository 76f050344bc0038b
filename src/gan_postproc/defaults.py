"""The core's table of defaults, read by the Python API and the CLI alike.

A default is written once; function signatures and CLI options refer to
``DEFAULTS.<field>`` so they can never disagree. This table holds the fields
of the core (runs, the rejection loop, metrics, classifier training); each
method family has its own table extending it, beside the family's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._moved import moved_default

__all__ = ["Defaults", "DEFAULTS"]


@dataclass(frozen=True)
class Defaults:
    """The core's default settings. Each field documents its unit and where it comes from.

    Each method family extends this table with its own fields (``plugins/<family>/defaults.py``,
    or a table inside a single-file method): one frozen table per family, read by its Python
    signatures and its command-line options alike, so they cannot disagree, and holding the
    core's fields too, so a family module reads every default from one ``DEFAULTS``. Reading a
    method field from the core's table still works until 0.3, with a warning
    (:func:`gan_postproc._moved.moved_default`).
    """

    #: Seed of a run when none is given.
    seed: int = 0
    #: Samples a chain generates per batch; setup and scoring passes (burn-in, calibration, probes,
    #: pools) put at most this many through a network at once too (gan_postproc.pipeline.batching).
    batch_size: int = 256
    #: Most proposals per sample a rejection sampler makes before giving up.
    rejection_max_rounds: int = 10_000
    #: A rejection sampler gives up if its acceptance rate falls below this ...
    rejection_min_acceptance_rate: float = 1e-4
    #: ... once it has made at least this many proposals.
    rejection_min_proposals_for_check: int = 20_000
    #: Most times a chain re-draws samples rejected by a filter hook.
    filter_max_attempts: int = 100
    #: Samples per method in ``gan-postproc demo``.
    demo_samples: int = 1000
    #: Samples per shard written by ``gan-postproc sample`` (the unit of resuming).
    sample_shard_size: int = 1000
    # -- metrics (gan_postproc.metrics) --
    #: Samples per forward pass when a metric runs a feature network or classifier.
    metrics_batch_size: int = 256
    #: k of the k-NN manifolds of precision / recall / density / coverage
    #: (Naeem et al. 2020 recommend k = 5; Kynkaanniemi et al. 2019 use k = 3).
    metrics_nearest_k: int = 5
    #: Most entries of one block of a pairwise-distance matrix, so 50k x 50k
    #: comparisons run in bounded memory (2**24 float32 entries = 64 MiB).
    metrics_distance_block: int = 2**24
    #: KID: number of random subsets (Binkowski et al. 2018; torch-fidelity's default).
    kid_subsets: int = 100
    #: KID: largest subset size; smaller sample sets use all their samples per subset.
    kid_subset_size: int = 1000
    #: Inception Score: number of splits (Salimans et al. 2016).
    inception_score_splits: int = 10
    #: Mode statistics: a sample is "good" within this many standard deviations of
    #: its nearest mode (collaborative-sampling paper, Fig. 4: 3; its 2-D code: 4).
    mode_num_std: float = 3.0
    #: Class balance: added to both histograms before the KL divergence (CBGAN code).
    balance_epsilon: float = 1e-5
    #: Intra-class diversity: disjoint image pairs per class (Slim paper, Sec. 4.3: 200).
    diversity_pairs_per_class: int = 200
    # -- classifier training (gan_postproc.plugins.bigroc) --
    #: Samples per optimiser step when training a classifier (plain or robust).
    train_batch_size: int = 128
    #: Adam learning rate when training a classifier.
    train_lr: float = 1e-3
    #: Seeds passed to a real-data function ``(n, seed)`` lie below this (the benchmark
    #: suites reserve higher seeds for the points they measure against).
    real_data_seed_limit: int = 10_000

    def __getattr__(self, name: str) -> Any:
        # Only called for fields this table lacks: the method fields of 0.1 (gan_postproc._moved).
        if name.startswith("__"):
            raise AttributeError(name)
        return moved_default(name)

DEFAULTS = Defaults()
