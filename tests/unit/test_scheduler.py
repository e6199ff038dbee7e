"""The scheduler's promises: one run per object at a time, timing, backoff, dependents.

Time is a :class:`FakeClock` handed to the scheduler: it moves only when a test moves it,
so intervals and backoff are checked to the instant, and no test waits for them.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from fluxd.runtime.backoff import Backoff
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.scheduler import FLUX_BACKOFF, Outcome, Scheduler

GIT = ObjectKey("GitRepository", "flux-system", "podinfo")
KS = ObjectKey("Kustomization", "flux-system", "apps")

#: Turns of the event loop that let every woken task run until it waits again. The longest
#: chain in these tests (wake-up, dispatch, semaphore, handler, requeue) needs four.
SETTLE_TURNS = 50


async def settle() -> None:
    for _ in range(SETTLE_TURNS):
        await anyio.lowlevel.checkpoint()


class FakeClock:
    """Time that passes only in :meth:`advance` and :meth:`wait_until`; sleepers wake in
    deadline order, and the tasks they wake run before time moves on."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._sequence = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        wake = anyio.Event()
        sleeper = (self.now + seconds, next(self._sequence), wake)
        heapq.heappush(self._sleepers, sleeper)
        try:
            await wake.wait()
        finally:
            if not wake.is_set():
                self._sleepers.remove(sleeper)
                heapq.heapify(self._sleepers)

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, waking each sleeper at its deadline in turn."""
        until = self.now + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= until:
            await self._wake_next()
        self.now = until

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Let time pass until ``condition`` holds, failing if that takes over ``timeout``."""
        limit = self.now + timeout
        await settle()
        while not condition():
            if not self._sleepers or self._sleepers[0][0] > limit:
                pytest.fail(f"condition not met within {timeout}s (now {self.now:.3f}s)")
            await self._wake_next()

    async def _wake_next(self) -> None:
        deadline, _, wake = heapq.heappop(self._sleepers)
        self.now = deadline
        wake.set()
        await settle()


def on(
    clock: FakeClock, handler: Callable[[ObjectKey], Awaitable[Outcome]], **options: Any
) -> Scheduler:
    return Scheduler(handler, clock=clock.time, sleep=clock.sleep, **options)


@asynccontextmanager
async def running(scheduler: Scheduler, clock: FakeClock) -> AsyncIterator[Scheduler]:
    """``scheduler.run()`` for the block; on exit, stopped and its running reconciles done."""
    stopped = anyio.Event()

    async def run() -> None:
        await scheduler.run()
        stopped.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        yield scheduler
        scheduler.stop()
        await clock.wait_until(stopped.is_set)


def recorder(
    clock: FakeClock, outcome: Callable[[ObjectKey, int], Outcome], delay: float = 0.0
) -> tuple[Callable[[ObjectKey], Awaitable[Outcome]], Counter[ObjectKey], list[int]]:
    calls: Counter[ObjectKey] = Counter()
    peak = [0, 0]  # current, maximum concurrent for one key

    async def handler(key: ObjectKey) -> Outcome:
        calls[key] += 1
        peak[0] += 1
        peak[1] = max(peak[1], peak[0])
        await clock.sleep(delay)
        peak[0] -= 1
        return outcome(key, calls[key])

    return handler, calls, peak


async def test_wakeups_during_a_run_never_overlap_and_rerun_once() -> None:
    clock = FakeClock()
    handler, calls, peak = recorder(clock, lambda *_: Outcome.idle(), delay=0.05)
    async with running(on(clock, handler), clock) as scheduler:
        scheduler.enqueue(GIT)
        await clock.wait_until(lambda: calls[GIT] == 1)
        for _ in range(5):
            scheduler.enqueue(GIT)
        await clock.wait_until(lambda: calls[GIT] == 2)
        assert clock.now == pytest.approx(0.05), "the rerun must start when the first run ends"
        await clock.advance(0.1)
    assert peak[1] == 1, "an object was reconciled twice at the same time"
    assert calls[GIT] == 2, "wake-ups during a run must coalesce into one rerun"


async def test_success_requeues_at_interval_and_earlier_wakeup_wins() -> None:
    clock = FakeClock()
    handler, calls, _ = recorder(clock, lambda *_: Outcome.success(0.15))
    async with running(on(clock, handler, jitter=0), clock) as scheduler:
        scheduler.enqueue(GIT)
        await clock.wait_until(lambda: calls[GIT] == 1)
        await clock.advance(0.05)
        assert calls[GIT] == 1, "requeued before its interval"
        await clock.wait_until(lambda: calls[GIT] == 2, timeout=1)
        assert clock.now == pytest.approx(0.15), "requeued later than its interval"
        scheduler.enqueue(GIT, after=10)
        scheduler.enqueue(GIT)
        await clock.wait_until(lambda: calls[GIT] == 3, timeout=1)
        assert clock.now == pytest.approx(0.15), "the wake-up waited for the scheduled run"


async def test_failures_back_off_exponentially_and_success_resets() -> None:
    clock = FakeClock()
    times: list[float] = []

    async def handler(key: ObjectKey) -> Outcome:
        times.append(clock.now)
        return Outcome.failure() if len(times) < 4 else Outcome.idle()

    scheduler = on(clock, handler, backoff=Backoff(initial=0.02, maximum=1))
    async with running(scheduler, clock):
        scheduler.enqueue(GIT)
        await clock.wait_until(lambda: len(times) == 4)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.02, 0.04, 0.08])
    assert not scheduler.is_scheduled(GIT), "an idle outcome must not requeue"


def test_backoff_caps_at_fifteen_minutes_like_flux() -> None:
    backoff = FLUX_BACKOFF
    assert backoff.delay(1) == pytest.approx(0.75)
    assert backoff.delay(2) == pytest.approx(1.5)
    assert backoff.delay(100) == 15 * 60


async def test_per_kind_concurrency_limit_holds() -> None:
    clock = FakeClock()
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    done: list[ObjectKey] = []

    async def handler(key: ObjectKey) -> Outcome:
        active[key.kind] += 1
        peak[key.kind] = max(peak[key.kind], active[key.kind])
        await clock.sleep(0.03)
        active[key.kind] -= 1
        done.append(key)
        return Outcome.idle()

    scheduler = on(clock, handler, concurrency={"GitRepository": 2}, default_concurrency=5)
    async with running(scheduler, clock):
        for index in range(6):
            scheduler.enqueue(ObjectKey("GitRepository", "ns", f"g{index}"))
            scheduler.enqueue(ObjectKey("Kustomization", "ns", f"k{index}"))
        await clock.wait_until(lambda: len(done) == 12)
    assert peak["GitRepository"] == 2
    assert peak["Kustomization"] == 5
    assert clock.now == pytest.approx(0.09), "six GitRepositories two at a time: three rounds"


async def test_new_source_revision_wakes_only_its_dependents() -> None:
    clock = FakeClock()
    handler, calls, _ = recorder(clock, lambda *_: Outcome.idle())
    other = ObjectKey("Kustomization", "flux-system", "unrelated")
    async with running(on(clock, handler), clock) as scheduler:
        scheduler.track_sources(KS, [GIT])
        scheduler.track_sources(other, [ObjectKey("GitRepository", "flux-system", "x")])
        assert scheduler.wake_dependents(GIT) == [KS]
        await clock.wait_until(lambda: calls[KS] == 1)
        scheduler.track_sources(KS, [])
        assert scheduler.wake_dependents(GIT) == []
    assert calls[other] == 0


async def test_forgotten_object_is_not_requeued() -> None:
    clock = FakeClock()
    handler, calls, _ = recorder(clock, lambda *_: Outcome.success(0.01), delay=0.05)
    async with running(on(clock, handler, jitter=0), clock) as scheduler:
        scheduler.enqueue(GIT)
        await clock.wait_until(lambda: calls[GIT] == 1)
        scheduler.forget(GIT)
        await clock.advance(0.15)
    assert calls[GIT] == 1


async def test_stop_lets_the_running_reconcile_finish() -> None:
    clock = FakeClock()
    finished: list[ObjectKey] = []

    async def handler(key: ObjectKey) -> Outcome:
        await clock.sleep(0.05)
        finished.append(key)
        return Outcome.success(60)

    scheduler = on(clock, handler)
    async with running(scheduler, clock):
        scheduler.enqueue(GIT)
        await clock.advance(0.01)
    assert finished == [GIT]
    assert clock.now == pytest.approx(0.05)
    assert not scheduler.is_scheduled(GIT), "a stopping scheduler must not requeue"


async def test_stop_cancels_what_still_runs_after_the_grace_period() -> None:
    clock = FakeClock()
    cancelled: list[ObjectKey] = []

    async def handler(key: ObjectKey) -> Outcome:
        try:
            await clock.sleep(60)
        except anyio.get_cancelled_exc_class():
            cancelled.append(key)
            raise
        return Outcome.idle()

    scheduler = on(clock, handler)
    stopped_at: list[float] = []

    async def run() -> None:
        await scheduler.run(grace_period=5)
        stopped_at.append(clock.now)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        scheduler.enqueue(GIT)
        await clock.advance(1)
        scheduler.stop()
        await clock.wait_until(lambda: bool(stopped_at), timeout=10)
    assert cancelled == [GIT]
    assert stopped_at == [pytest.approx(6)]
