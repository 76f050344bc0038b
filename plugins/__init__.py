"""Method plugins: latent samplers and refiners, one algorithm per module."""
