"""Prometheus metrics, with Flux's names where Flux has them.

Dashboards and alerts written for Flux keep working: ``gotk_reconcile_duration_seconds``
is the same histogram with the same labels. fluxd adds what one process can tell that six
could not: a per-object info gauge (ready, suspended, revision), the depth of the single
work queue, reconcile totals by result, and a watchdog over the reconciles in flight (how
many run past their object's timeout, and how long the oldest has run).

Each :class:`Metrics` owns its registry, so two daemons in one test process do not collide.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fluxd.runtime.keys import ObjectKey

__all__ = ["LastReconcile", "Metrics"]

# Flux's buckets for gotk_reconcile_duration_seconds (controller-runtime style, in seconds).
_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class LastReconcile(NamedTuple):
    """The latest finished reconcile of one object, for the status UI."""

    finished: float  # wall-clock time (seconds since the epoch)
    seconds: float
    result: str


class Metrics:
    """The daemon's metric families and the bookkeeping that keeps them tidy."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconcile_duration = Histogram(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a reconciliation.",
            ["kind", "name", "namespace"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_total = Counter(
            "fluxd_reconcile",
            "Reconciliations finished, by kind and result (success, failure, stalled).",
            ["kind", "result"],
            registry=self.registry,
        )
        self.resource_info = Gauge(
            "gotk_resource_info",
            "One series per Flux object; its labels carry the object's current state.",
            ["kind", "name", "namespace", "ready", "suspended", "revision"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "fluxd_queue_depth",
            "Objects due for reconciliation that have not started yet.",
            registry=self.registry,
        )
        self.reconcile_stuck = Gauge(
            "fluxd_reconcile_stuck",
            "Reconciles running longer than their object's timeout, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.reconcile_oldest = Gauge(
            "fluxd_reconcile_oldest_seconds",
            "How long the longest-running reconcile of each kind has been running.",
            ["kind"],
            registry=self.registry,
        )
        self._info_labels: dict[ObjectKey, tuple[str, ...]] = {}
        self._last: dict[ObjectKey, LastReconcile] = {}
        self._depth: Callable[[], int] | None = None
        self._in_flight: Callable[[], Mapping[ObjectKey, float]] | None = None
        self._timeout_of: Callable[[ObjectKey], float] | None = None
        self._watched_kinds: set[str] = set()

    def track_queue_depth(self, depth: Callable[[], int]) -> None:
        """Read the queue depth from the scheduler at each scrape (see :meth:`sample`)."""
        self._depth = depth

    def track_in_flight(
        self,
        in_flight: Callable[[], Mapping[ObjectKey, float]],
        timeout_of: Callable[[ObjectKey], float],
    ) -> None:
        """Read the running reconciles' ages (seconds, by object) at each scrape, and judge
        each against ``timeout_of(key)`` for ``fluxd_reconcile_stuck``."""
        self._in_flight = in_flight
        self._timeout_of = timeout_of

    def sample(self) -> None:
        """Update the gauges read from live state; call on the event loop before rendering,
        since :meth:`exposition` may run in a worker thread."""
        if self._depth is not None:
            self.queue_depth.set(self._depth())
        if self._in_flight is not None and self._timeout_of is not None:
            self._sample_in_flight(self._in_flight(), self._timeout_of)

    def _sample_in_flight(
        self, ages: Mapping[ObjectKey, float], timeout_of: Callable[[ObjectKey], float]
    ) -> None:
        stuck: dict[str, int] = {}
        oldest: dict[str, float] = {}
        for key, age in ages.items():
            oldest[key.kind] = max(oldest.get(key.kind, 0.0), age)
            if age > timeout_of(key):
                stuck[key.kind] = stuck.get(key.kind, 0) + 1
        # A kind keeps its series at 0 once seen, so that an alert on it resolves.
        self._watched_kinds.update(oldest)
        for kind in self._watched_kinds:
            self.reconcile_stuck.labels(kind).set(stuck.get(kind, 0))
            self.reconcile_oldest.labels(kind).set(oldest.get(kind, 0.0))

    def observe_reconcile(self, key: ObjectKey, seconds: float, result: str) -> None:
        """Record one finished reconcile."""
        self.reconcile_duration.labels(key.kind, key.name, key.namespace).observe(seconds)
        self.reconcile_total.labels(key.kind, result).inc()
        self._last[key] = LastReconcile(time.time(), seconds, result)

    def last_reconcile(self, key: ObjectKey) -> LastReconcile | None:
        """When the object's latest reconcile finished, how long it took, and its result."""
        return self._last.get(key)

    def set_state(self, key: ObjectKey, *, ready: str, suspended: bool, revision: str) -> None:
        """Point the object's info series at its current state, dropping the stale one."""
        labels = (key.kind, key.name, key.namespace, ready, str(suspended).lower(), revision)
        previous = self._info_labels.get(key)
        if previous == labels:
            return
        if previous is not None:
            self.resource_info.remove(*previous)
        self.resource_info.labels(*labels).set(1)
        self._info_labels[key] = labels

    def forget(self, key: ObjectKey) -> None:
        """Remove every series of a deleted object."""
        previous = self._info_labels.pop(key, None)
        if previous is not None:
            self.resource_info.remove(*previous)
        self._last.pop(key, None)
        with contextlib.suppress(KeyError):
            self.reconcile_duration.remove(key.kind, key.name, key.namespace)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
