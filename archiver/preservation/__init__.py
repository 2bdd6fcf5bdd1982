"""Hand-off to preservation repositories: digests recorded at close, fixity checks, BagIt bags."""
