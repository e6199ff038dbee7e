"""One queue for every object of every kind, and the rules for when each runs next.

Flux runs a controller-runtime work queue per controller. fluxd has one process and so one
scheduler, keyed by :class:`~fluxd.runtime.keys.ObjectKey`, with these guarantees:

- **At most one reconcile per object at a time.** A wake-up that arrives while the object
  is being reconciled marks it *dirty*; it runs again as soon as the current run ends, so
  the latest spec is always seen and nothing runs twice concurrently.
- **Per-kind concurrency.** Each kind has its own limit (Flux's ``--concurrent``), so a slow
  HelmRelease cannot starve GitRepositories.
- **Timing.** A success requeues after the object's interval, jittered by a few percent so
  that thousands of objects created together do not fire together. A failure requeues
  with exponential backoff per object (Flux: 750 ms doubling up to 15 min), reset by the
  next success. An earlier wake-up always wins over a later scheduled one.
- **Dependents.** A reverse index maps a source to the objects that consume it, so that a
  new artifact revision wakes them at once instead of at their next interval.
- **Watchdog.** :meth:`Scheduler.in_flight` tells how long each running reconcile has
  been running, so that one stuck past its timeout shows on ``/metrics``.

The scheduler knows nothing of Kubernetes: it calls one ``handler(key) -> Outcome``. Every
due time, wait and grace period is measured on one clock, the event loop's unless another
``clock``/``sleep`` pair is given, so that tests can step through intervals and backoff
without waiting for them.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import anyio
import anyio.abc
import structlog

from fluxd.runtime.backoff import Backoff
from fluxd.runtime.keys import ObjectKey

__all__ = ["FLUX_BACKOFF", "Outcome", "Scheduler"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a reconcile asks of the scheduler.

    ``requeue_after`` is the success interval (jittered), ``None`` when the object should
    only run again on a wake-up (suspended, stalled, deleted). A failure uses the per-object
    backoff unless ``retry_after`` fixes the delay (Kustomization ``retryInterval``).
    """

    requeue_after: float | None
    failed: bool = False
    retry_after: float | None = None

    @classmethod
    def success(cls, interval: float) -> Outcome:
        return cls(requeue_after=interval)

    @classmethod
    def failure(cls, retry_after: float | None = None) -> Outcome:
        return cls(requeue_after=None, failed=True, retry_after=retry_after)

    @classmethod
    def idle(cls) -> Outcome:
        return cls(requeue_after=None)


#: Flux's failure backoff for an object: 750 ms doubling up to 15 minutes.
FLUX_BACKOFF = Backoff(initial=0.75, maximum=15 * 60.0)

Handler = Callable[[ObjectKey], Awaitable[Outcome]]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Scheduler:
    """The single work queue; see the module docstring for its guarantees."""

    def __init__(
        self,
        handler: Handler,
        *,
        concurrency: Mapping[str, int] | None = None,
        default_concurrency: int = 4,
        backoff: Backoff | None = None,
        jitter: float = 0.05,
        clock: Clock = anyio.current_time,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self._handler = handler
        self._clock = clock
        self._sleep = sleep
        self._concurrency = dict(concurrency or {})
        self._default_concurrency = default_concurrency
        self._backoff = backoff or FLUX_BACKOFF
        self._jitter = jitter
        self._heap: list[tuple[float, int, ObjectKey]] = []
        self._due: dict[ObjectKey, float] = {}
        self._sequence = itertools.count()
        self._running: set[ObjectKey] = set()
        self._started: dict[ObjectKey, float] = {}
        self._dirty: set[ObjectKey] = set()
        self._forgotten: set[ObjectKey] = set()
        self._failures: dict[ObjectKey, int] = defaultdict(int)
        self._limits: dict[str, anyio.Semaphore] = {}
        self._waiting = 0
        self._nap_scope: anyio.CancelScope | None = None
        self._stopping = False
        self._dependents: dict[ObjectKey, set[ObjectKey]] = defaultdict(set)
        self._sources: dict[ObjectKey, set[ObjectKey]] = {}

    # -- queue -----------------------------------------------------------------------------

    def enqueue(self, key: ObjectKey, *, after: float = 0.0) -> None:
        """Run ``key`` after ``after`` seconds, unless it is already due sooner."""
        self._forgotten.discard(key)
        if key in self._running and after <= 0:
            self._dirty.add(key)
            return
        due = self._clock() + max(after, 0.0)
        if self._due.get(key, math.inf) <= due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._sequence), key))
        self._rouse()

    def forget(self, key: ObjectKey) -> None:
        """Drop every trace of ``key`` (the object was deleted); a running reconcile ends."""
        self._due.pop(key, None)
        self._dirty.discard(key)
        self._failures.pop(key, None)
        self.track_sources(key, ())
        if key in self._running:
            self._forgotten.add(key)

    @property
    def depth(self) -> int:
        """Objects due now or waiting for a concurrency slot: the work not yet started."""
        now = self._clock()
        due_now = sum(1 for due in self._due.values() if due <= now)
        return due_now + self._waiting

    def in_flight(self) -> dict[ObjectKey, float]:
        """Seconds each running reconcile has run so far, for the stuck-reconcile watchdog.

        Time spent waiting for a concurrency slot is not counted: that is queue depth.
        """
        now = self._clock()
        return {key: now - started for key, started in self._started.items()}

    def is_scheduled(self, key: ObjectKey) -> bool:
        """Whether ``key`` has a pending run (used by tests and the suspend logic)."""
        return key in self._due or key in self._dirty

    # -- dependents ------------------------------------------------------------------------

    def track_sources(self, dependent: ObjectKey, sources: Iterable[ObjectKey]) -> None:
        """Record which sources ``dependent`` consumes, replacing what was recorded before."""
        for source in self._sources.pop(dependent, set()):
            self._dependents[source].discard(dependent)
            if not self._dependents[source]:
                del self._dependents[source]
        wanted = set(sources)
        if wanted:
            self._sources[dependent] = wanted
            for source in wanted:
                self._dependents[source].add(dependent)

    def wake_dependents(self, source: ObjectKey) -> list[ObjectKey]:
        """Enqueue every object that consumes ``source`` now; returns them."""
        woken = sorted(self._dependents.get(source, ()))
        for dependent in woken:
            self.enqueue(dependent)
        return woken

    # -- running ---------------------------------------------------------------------------

    async def run(self, *, grace_period: float = 30.0) -> None:
        """Dispatch work until :meth:`stop`; then let running reconciles finish.

        After ``grace_period`` seconds of draining, what still runs is cancelled (its status
        patch is shielded by the reconcile driver, so the object keeps an honest condition).
        """
        async with anyio.create_task_group() as workers:
            while not self._stopping:
                self._dispatch_due(workers)
                await self._nap(self._next_due() - self._clock())
            deadline = self._clock() + grace_period
            while self._running and self._clock() < deadline:
                await self._nap(deadline - self._clock())
            workers.cancel_scope.cancel()

    def stop(self) -> None:
        """Stop taking new work; :meth:`run` returns once running reconciles are done."""
        self._stopping = True
        self._rouse()

    async def _nap(self, seconds: float) -> None:
        """Sleep ``seconds`` on the scheduler's clock, or until :meth:`_rouse`."""
        # A cancel scope rather than an event with a timeout: the injected sleep is then
        # the only thing that waits for time, whichever clock it runs on.
        with anyio.CancelScope() as scope:
            self._nap_scope = scope
            try:
                await self._sleep(max(seconds, 0.0))
            finally:
                self._nap_scope = None

    def _rouse(self) -> None:
        """End :meth:`run`'s nap: work may be due sooner, or the drain may be over."""
        if self._nap_scope is not None:
            self._nap_scope.cancel()

    def _next_due(self) -> float:
        while self._heap:
            due, _, key = self._heap[0]
            if self._due.get(key) == due:
                return due
            heapq.heappop(self._heap)
        return math.inf

    def _dispatch_due(self, workers: anyio.abc.TaskGroup) -> None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            if self._due.get(key) != due:
                continue
            del self._due[key]
            if key in self._running:
                self._dirty.add(key)
                continue
            self._running.add(key)
            workers.start_soon(self._work, key, name=f"reconcile {key}")

    async def _work(self, key: ObjectKey) -> None:
        limit = self._limits.get(key.kind)
        if limit is None:
            slots = self._concurrency.get(key.kind, self._default_concurrency)
            limit = self._limits[key.kind] = anyio.Semaphore(slots)
        outcome = Outcome.failure()
        try:
            self._waiting += 1
            try:
                await limit.acquire()
            finally:
                self._waiting -= 1
            self._started[key] = self._clock()
            try:
                outcome = await self._handler(key)
            except Exception:
                log.exception("reconcile handler crashed", object=str(key))
            finally:
                del self._started[key]
                limit.release()
        finally:
            self._running.discard(key)
            self._after(key, outcome)
            if self._stopping and not self._running:
                self._rouse()

    def _after(self, key: ObjectKey, outcome: Outcome) -> None:
        if key in self._forgotten:
            self._forgotten.discard(key)
            return
        if outcome.failed:
            self._failures[key] += 1
            delay = outcome.retry_after
            if delay is None:
                delay = self._backoff.delay(self._failures[key])
        else:
            self._failures.pop(key, None)
            delay = self._jittered(outcome.requeue_after)
        if key in self._dirty:
            self._dirty.discard(key)
            delay = 0.0
        if delay is not None and not self._stopping:
            self.enqueue(key, after=delay)

    def _jittered(self, interval: float | None) -> float | None:
        if interval is None or self._jitter <= 0:
            return interval
        return interval * (1 + random.uniform(-self._jitter, self._jitter))
