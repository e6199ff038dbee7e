"""The scheduler's promises: one run per object at a time, timing, backoff, dependents."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from fluxd.objectkey import ObjectKey
from fluxd.scheduler import Backoff, Outcome, Scheduler

GIT = ObjectKey("GitRepository", "flux-system", "podinfo")
KS = ObjectKey("Kustomization", "flux-system", "apps")


@asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[Scheduler]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run)
        yield scheduler
        scheduler.stop()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.005)


def recorder(
    outcome: Callable[[ObjectKey, int], Outcome], delay: float = 0.0
) -> tuple[Callable[[ObjectKey], Awaitable[Outcome]], Counter[ObjectKey], list[int]]:
    calls: Counter[ObjectKey] = Counter()
    peak = [0, 0]  # current, maximum concurrent for one key

    async def handler(key: ObjectKey) -> Outcome:
        calls[key] += 1
        peak[0] += 1
        peak[1] = max(peak[1], peak[0])
        await anyio.sleep(delay)
        peak[0] -= 1
        return outcome(key, calls[key])

    return handler, calls, peak


async def test_wakeups_during_a_run_never_overlap_and_rerun_once() -> None:
    handler, calls, peak = recorder(lambda *_: Outcome.idle(), delay=0.05)
    async with running(Scheduler(handler)) as scheduler:
        scheduler.enqueue(GIT)
        await wait_until(lambda: calls[GIT] == 1)
        for _ in range(5):
            scheduler.enqueue(GIT)
        await wait_until(lambda: calls[GIT] == 2)
        await anyio.sleep(0.1)
    assert peak[1] == 1, "an object was reconciled twice at the same time"
    assert calls[GIT] == 2, "wake-ups during a run must coalesce into one rerun"


async def test_success_requeues_at_interval_and_earlier_wakeup_wins() -> None:
    handler, calls, _ = recorder(lambda *_: Outcome.success(0.15))
    async with running(Scheduler(handler, jitter=0)) as scheduler:
        scheduler.enqueue(GIT)
        await wait_until(lambda: calls[GIT] == 1)
        await anyio.sleep(0.05)
        assert calls[GIT] == 1, "requeued before its interval"
        await wait_until(lambda: calls[GIT] == 2, timeout=1)
        scheduler.enqueue(GIT, after=10)
        scheduler.enqueue(GIT)
        await wait_until(lambda: calls[GIT] == 3, timeout=1)


async def test_failures_back_off_exponentially_and_success_resets() -> None:
    times: list[float] = []

    async def handler(key: ObjectKey) -> Outcome:
        times.append(anyio.current_time())
        return Outcome.failure() if len(times) < 4 else Outcome.idle()

    scheduler = Scheduler(handler, backoff=Backoff(initial=0.02, maximum=1))
    async with running(scheduler):
        scheduler.enqueue(GIT)
        await wait_until(lambda: len(times) == 4)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps[0] >= 0.02
    assert gaps[1] >= 0.04
    assert gaps[2] >= 0.08
    assert not scheduler.is_scheduled(GIT), "an idle outcome must not requeue"


def test_backoff_caps_at_fifteen_minutes_like_flux() -> None:
    backoff = Backoff()
    assert backoff.delay(1) == pytest.approx(0.75)
    assert backoff.delay(2) == pytest.approx(1.5)
    assert backoff.delay(100) == 15 * 60


async def test_per_kind_concurrency_limit_holds() -> None:
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    done: list[ObjectKey] = []

    async def handler(key: ObjectKey) -> Outcome:
        active[key.kind] += 1
        peak[key.kind] = max(peak[key.kind], active[key.kind])
        await anyio.sleep(0.03)
        active[key.kind] -= 1
        done.append(key)
        return Outcome.idle()

    scheduler = Scheduler(handler, concurrency={"GitRepository": 2}, default_concurrency=5)
    async with running(scheduler):
        for index in range(6):
            scheduler.enqueue(ObjectKey("GitRepository", "ns", f"g{index}"))
            scheduler.enqueue(ObjectKey("Kustomization", "ns", f"k{index}"))
        await wait_until(lambda: len(done) == 12)
    assert peak["GitRepository"] == 2
    assert peak["Kustomization"] == 5


async def test_new_source_revision_wakes_only_its_dependents() -> None:
    handler, calls, _ = recorder(lambda *_: Outcome.idle())
    other = ObjectKey("Kustomization", "flux-system", "unrelated")
    async with running(Scheduler(handler)) as scheduler:
        scheduler.track_sources(KS, [GIT])
        scheduler.track_sources(other, [ObjectKey("GitRepository", "flux-system", "x")])
        assert scheduler.wake_dependents(GIT) == [KS]
        await wait_until(lambda: calls[KS] == 1)
        scheduler.track_sources(KS, [])
        assert scheduler.wake_dependents(GIT) == []
    assert calls[other] == 0


async def test_forgotten_object_is_not_requeued() -> None:
    handler, calls, _ = recorder(lambda *_: Outcome.success(0.01), delay=0.05)
    async with running(Scheduler(handler, jitter=0)) as scheduler:
        scheduler.enqueue(GIT)
        await wait_until(lambda: calls[GIT] == 1)
        scheduler.forget(GIT)
        await anyio.sleep(0.15)
    assert calls[GIT] == 1


async def test_stop_lets_the_running_reconcile_finish() -> None:
    finished: list[ObjectKey] = []

    async def handler(key: ObjectKey) -> Outcome:
        await anyio.sleep(0.05)
        finished.append(key)
        return Outcome.success(60)

    scheduler = Scheduler(handler)
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run)
        scheduler.enqueue(GIT)
        await anyio.sleep(0.01)
        scheduler.stop()
    assert finished == [GIT]
    assert not scheduler.is_scheduled(GIT), "a stopping scheduler must not requeue"
