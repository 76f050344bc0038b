"""The one table of defaults, read by the Python API and the CLI alike.

A default is written here once; function signatures and CLI options refer
to ``DEFAULTS.<field>`` so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Defaults", "DEFAULTS"]


@dataclass(frozen=True)
class Defaults:
    """Default settings. Each field documents its unit and where it comes from."""

    #: Seed of a run when none is given.
    seed: int = 0
    #: Samples a chain generates per batch.
    batch_size: int = 256
    #: Most proposals per sample a rejection sampler makes before giving up.
    rejection_max_rounds: int = 10_000
    #: A rejection sampler gives up if its acceptance rate falls below this ...
    rejection_min_acceptance_rate: float = 1e-4
    #: ... once it has made at least this many proposals.
    rejection_min_proposals_for_check: int = 20_000
    #: Most times a chain re-draws samples rejected by a filter hook.
    filter_max_attempts: int = 100
    #: Samples per shard written by ``gan-postproc sample`` (the unit of resuming).
    sample_shard_size: int = 1000


DEFAULTS = Defaults()
