"""official_ext/modeling/optimization."""
