"""The pipeline types: adapters, priors, batches, samplers, refiners, the chain, attached models."""
