"""official_ext/launcher: the parts of `python -m official_ext.train`."""
