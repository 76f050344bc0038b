"""Benchmarks and the demo: every plugin contributes its own rows through a hook."""

from .setups import BenchmarkContext, BenchmarkSetup, collect_setups

__all__ = ["BenchmarkContext", "BenchmarkSetup", "collect_setups"]
