"""official_ext/core: the launcher's building blocks."""
