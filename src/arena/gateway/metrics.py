"""Prometheus metrics of one gateway app, in its own ``CollectorRegistry`` (no global state).

Requests, latency, time to first token, tokens, upstream errors, routed requests per target,
in-flight requests and live workers per model (read from the worker pool at scrape time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _WorkerCollector(Collector):
    def __init__(self, counts: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        live = GaugeMetricFamily(
            "arena_workers", "Registered live workers per model", labels=["model", "healthy"]
        )
        for model, (healthy, unhealthy) in sorted(self._counts().items()):
            live.add_metric([model, "true"], healthy)
            live.add_metric([model, "false"], unhealthy)
        yield live


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "arena_requests", "Requests answered", ["endpoint", "model", "status"], registry=r
        )
        self.latency = Histogram(
            "arena_request_latency_seconds",
            "Time from request to the last byte of the answer",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "arena_time_to_first_token_seconds",
            "Time from request to the first delta from the backend",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "arena_tokens", "Tokens reported by backends", ["model", "kind"], registry=r
        )
        self.upstream_errors = Counter(
            "arena_upstream_errors", "Backend failures", ["model", "code"], registry=r
        )
        self.routed = Counter(
            "arena_routed_requests",
            "Requests to a router model, by the model it chose",
            ["model", "target"],
            registry=r,
        )
        self.in_flight = Gauge(
            "arena_requests_in_flight", "Requests being answered", ["endpoint"], registry=r
        )
        self._cached: dict[tuple[str, ...], object] = {}

    def watch_workers(self, counts: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self.registry.register(_WorkerCollector(counts))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def child(self, metric: object, *labels: str) -> object:
        """``metric.labels(...)`` memoized: label lookups are the costly part per request."""
        key = (str(id(metric)), *labels)
        found = self._cached.get(key)
        if found is None:
            found = self._cached[key] = metric.labels(*labels)  # type: ignore[attr-defined]
        return found
