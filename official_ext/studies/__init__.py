"""Research studies run with official_ext's optimizers (not experiments)."""
