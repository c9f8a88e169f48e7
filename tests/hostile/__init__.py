"""sbomgate's own black-box hostile corpus (see README.md in this folder)."""
