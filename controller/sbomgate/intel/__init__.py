"""Per-package facts: which trusted repository has a package, when it was published, advisories."""

from sbomgate.intel.snapshot import FactsSnapshot, load_facts_snapshot

__all__ = ["FactsSnapshot", "load_facts_snapshot"]
