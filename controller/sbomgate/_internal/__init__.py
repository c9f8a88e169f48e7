"""Private helpers shared by sbomgate's modules; not a public API."""
