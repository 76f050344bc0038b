"""Long runs: samples written to disk in shards (resumable), synthetic datasets drawn from a chain."""
