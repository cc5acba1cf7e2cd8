"""Benchmarks of the pipeline and the service (not part of the runtime package)."""
