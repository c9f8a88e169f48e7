"""The Prometheus metrics of the server, served at GET /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from sbomgate.admission import Observer


class Metrics(Observer):
    """The Prometheus metrics, in a registry of their own (one per app). Also counts registry
    responses (`runtime.RegistryObserver`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sbomgate_admission_requests",
            "Admission reviews answered",
            ["kind", "operation", "decision"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "sbomgate_admission_duration_seconds",
            "Time to answer an admission review",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 10),
            registry=self.registry,
        )
        self.registry_requests = Counter(
            "sbomgate_registry_requests",
            "Requests to OCI registries",
            ["host", "code"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "sbomgate_cache_hits", "Cache hits", ["cache"], registry=self.registry
        )
        self.pins_total = Counter(
            "sbomgate_image_pins",
            "Tag references /mutate pinned to a digest, or could not resolve",
            ["outcome"],
            registry=self.registry,
        )
        self.evaluation_seconds = Histogram(
            "sbomgate_policy_evaluation_seconds",
            "Time to evaluate the policies over one image's SBOMs",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8),
            registry=self.registry,
        )

    def request(self, kind: str, operation: str, decision: str, seconds: float) -> None:
        """Count a request by kind, operation and outcome, and time it."""
        self.requests.labels(kind or "unknown", operation or "unknown", decision).inc()
        self.duration.observe(seconds)

    def cache_hit(self, cache: str) -> None:
        """Count a hit of the named cache."""
        self.cache_hits.labels(cache).inc()

    def evaluation(self, seconds: float) -> None:
        """Time one image's evaluation."""
        self.evaluation_seconds.observe(seconds)

    def pins(self, pinned: int, unresolved: int) -> None:
        """Count the references /mutate pinned and those it could not."""
        self.pins_total.labels("pinned").inc(pinned)
        self.pins_total.labels("unresolved").inc(unresolved)

    def registry_response(self, host: str, code: str) -> None:
        """Count a registry response by host and status."""
        self.registry_requests.labels(host, code).inc()
