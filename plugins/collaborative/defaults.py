"""The defaults of collaborative sampling (Algorithm 1) and discriminator shaping (Algorithm 2): the
core's table plus these (see :class:`gan_postproc.defaults.Defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_postproc.defaults import Defaults

__all__ = ["CollaborativeDefaults", "DEFAULTS"]


@dataclass(frozen=True)
class CollaborativeDefaults(Defaults):
    """Each field documents its unit and where it comes from."""

    #: Collaborative sampling: split point refined when none is named ("output" = data space;
    #: the paper recommends a middle layer, which only the caller can name).
    collaborative_layer: str = "output"
    #: Collaborative sampling: most refinement steps K (paper, Sec. 5.2: at most 50 updates).
    collaborative_steps: int = 50
    #: Collaborative sampling: step size lambda of Eq. 4 (paper, Sec. 5.2: 0.1).
    collaborative_step_size: float = 0.1
    #: Collaborative sampling: "threshold" (Algorithm 1: stop a sample once D(x) reaches the
    #: mean D on real data) or "best" (the reference code: keep the iterate with the highest D).
    collaborative_selection: str = "threshold"
    #: Discriminator shaping (Algorithm 2): optimiser steps of the discriminator copy.
    shaping_iterations: int = 500
    #: Discriminator shaping: real and refined samples per step (m of Algorithm 2).
    shaping_batch_size: int = 64
    #: Discriminator shaping: Adam learning rate (reference code, MNIST: 1e-5; small, so the copy
    #: stays close to the trained discriminator).
    shaping_lr: float = 1e-5
    #: Discriminator shaping: write a resumable checkpoint every this many steps.
    shaping_checkpoint_every: int = 100
    #: Discriminator shaping of a WGAN critic: gradient-penalty weight (Gulrajani et al. 2017).
    shaping_gradient_penalty: float = 10.0


DEFAULTS = CollaborativeDefaults()
