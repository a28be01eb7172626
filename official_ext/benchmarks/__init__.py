"""official_ext/benchmarks."""
