"""The stuck-reconcile watchdog: ``/metrics`` shows reconciles running past their timeout.

The scheduler runs on the :class:`FakeClock` of the scheduler tests, so a reconcile can
"hang" for minutes while the test moves time by hand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.metrics import Metrics
from fluxd.runtime.scheduler import Outcome, Scheduler
from fluxd.runtime.watchdog import DEFAULT_TIMEOUT, reconcile_timeout
from tests.unit.test_scheduler import FakeClock, on, running

HUNG = ObjectKey("GitRepository", "flux-system", "hung")
QUICK = ObjectKey("GitRepository", "flux-system", "quick")
APPS = ObjectKey("Kustomization", "flux-system", "apps")

TIMEOUTS = {HUNG: 60.0, QUICK: 60.0, APPS: 300.0}


def held_until_released(
    clock: FakeClock, durations: dict[ObjectKey, float]
) -> tuple[Callable[[ObjectKey], Awaitable[Outcome]], dict[ObjectKey, anyio.Event]]:
    """A handler that takes ``durations[key]`` seconds, or hangs until its event is set."""
    release = {key: anyio.Event() for key in TIMEOUTS}

    async def handler(key: ObjectKey) -> Outcome:
        if key in durations:
            await clock.sleep(durations[key])
        else:
            await release[key].wait()
        return Outcome.idle()

    return handler, release


def watched(scheduler: Scheduler) -> Metrics:
    metrics = Metrics()
    metrics.track_in_flight(scheduler.in_flight, TIMEOUTS.__getitem__)
    return metrics


def gauge(metrics: Metrics, name: str, kind: str) -> float | None:
    metrics.sample()
    return metrics.registry.get_sample_value(name, {"kind": kind})


async def test_a_reconcile_past_its_timeout_is_counted_stuck_until_it_ends() -> None:
    clock = FakeClock()
    handler, release = held_until_released(clock, {QUICK: 5.0})
    async with running(on(clock, handler), clock) as scheduler:
        metrics = watched(scheduler)
        scheduler.enqueue(HUNG)
        scheduler.enqueue(QUICK)
        await clock.advance(30.0)
        assert gauge(metrics, "fluxd_reconcile_stuck", "GitRepository") == 0
        assert gauge(metrics, "fluxd_reconcile_oldest_seconds", "GitRepository") == 30.0

        await clock.advance(45.0)
        assert gauge(metrics, "fluxd_reconcile_stuck", "GitRepository") == 1, (
            "a reconcile 75 s into a 60 s timeout must show as stuck"
        )
        assert gauge(metrics, "fluxd_reconcile_oldest_seconds", "GitRepository") == 75.0
        assert metrics.exposition().count(b'fluxd_reconcile_stuck{kind="GitRepository"} 1.0') == 1

        release[HUNG].set()
        await clock.advance(1.0)
        assert gauge(metrics, "fluxd_reconcile_stuck", "GitRepository") == 0, (
            "the series must drop back to 0 (not vanish) so that an alert on it resolves"
        )
        assert gauge(metrics, "fluxd_reconcile_oldest_seconds", "GitRepository") == 0


async def test_each_object_is_judged_by_its_own_timeout() -> None:
    clock = FakeClock()
    handler, release = held_until_released(clock, {})
    async with running(on(clock, handler), clock) as scheduler:
        metrics = watched(scheduler)
        scheduler.enqueue(HUNG)
        scheduler.enqueue(APPS)
        await clock.advance(120.0)
        assert gauge(metrics, "fluxd_reconcile_stuck", "GitRepository") == 1
        assert gauge(metrics, "fluxd_reconcile_stuck", "Kustomization") == 0, (
            "120 s is within the Kustomization's 5 m timeout"
        )
        for event in release.values():
            event.set()


async def test_waiting_for_a_concurrency_slot_is_not_running() -> None:
    clock = FakeClock()
    handler, release = held_until_released(clock, {})
    async with running(on(clock, handler, default_concurrency=1), clock) as scheduler:
        scheduler.enqueue(HUNG)
        scheduler.enqueue(QUICK)
        await clock.advance(90.0)
        assert scheduler.in_flight() == {HUNG: 90.0}, "QUICK only waits for HUNG's slot"
        assert scheduler.depth == 1

        release[HUNG].set()
        await clock.advance(10.0)
        assert scheduler.in_flight() == {QUICK: 10.0}, "QUICK's clock starts with its run"
        release[QUICK].set()


def test_the_timeout_comes_from_the_object_or_flux_defaults() -> None:
    git = {"spec": {"interval": "10m", "timeout": "90s"}}
    assert reconcile_timeout("GitRepository", git) == 90.0
    assert reconcile_timeout("GitRepository", {"spec": {"interval": "10m"}}) == DEFAULT_TIMEOUT
    kustomization = {"spec": {"interval": "5m"}}
    assert reconcile_timeout("Kustomization", kustomization) == 300.0, (
        "a Kustomization's timeout defaults to its interval, as in Flux"
    )
    assert reconcile_timeout("HelmRelease", {"spec": {"interval": "1m"}}) == 300.0
    assert reconcile_timeout("Alert", None) == DEFAULT_TIMEOUT, "an object gone from the cache"
    assert reconcile_timeout("GitRepository", {"spec": {"timeout": "soon"}}) == DEFAULT_TIMEOUT
