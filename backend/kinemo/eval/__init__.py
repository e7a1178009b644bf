"""Metrics and benchmarks (not tests)."""
