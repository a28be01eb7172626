"""official_ext/experiments."""
