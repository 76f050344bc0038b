"""Framework adapters: one self-contained module per framework, each an adapter plugin."""
