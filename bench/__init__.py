"""Benchmarks (make bench): figures, never assertions."""
