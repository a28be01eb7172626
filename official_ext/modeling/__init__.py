"""official_ext/modeling."""
