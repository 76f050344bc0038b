"""The plugin machinery: the pluggy manager (discovery, blocking, tracing) and the registry of classes."""
