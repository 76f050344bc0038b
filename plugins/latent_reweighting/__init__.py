"""Latent reweighting (Issenhuth et al., WACV 2022): an importance network w(z) on the latent space and the
samplers that use it (latentRS, latentGA, latentRS+GA), with its training (Algorithm 1)."""

from .defaults import DEFAULTS
from .importance_network import IMPORTANCE_FORMAT, SHIPPED_NETWORKS, ImportanceNetwork, as_importance_network, load_shipped_importance_network
from .latent_ga import LatentGA, ascend_importance, project_to_prior
from .latent_rs import LatentRS
from .latent_rs_ga import LatentRSGA
from .training import ImportanceTraining, train_importance_network

__all__ = [
    "DEFAULTS",
    "LatentRS",
    "LatentGA",
    "LatentRSGA",
    "ImportanceNetwork",
    "IMPORTANCE_FORMAT",
    "SHIPPED_NETWORKS",
    "as_importance_network",
    "load_shipped_importance_network",
    "ascend_importance",
    "project_to_prior",
    "ImportanceTraining",
    "train_importance_network",
]
