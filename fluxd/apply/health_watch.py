"""Waits for objects to become healthy, reading workloads from watches every wait shares.

:func:`~fluxd.apply.health.wait_for_health` reads each object with a GET every half
second: right for one Kustomization's health checks, wasteful when hundreds of
HelmReleases wait at once for their Deployments (Helm's own waiter is worse: it lists and
watches every Deployment, ReplicaSet and Pod of the namespace, per release). A
:class:`HealthWatches` keeps one watch per (client, resource, namespace) for the workload
kinds whose status their controllers move along (Deployments, StatefulSets, DaemonSets,
ReplicaSets, Pods, Jobs), shared by every wait on objects of that kind there, and wakes a
wait only when one of its objects changes (or every :data:`ROUND` seconds, for kstatus'
time-based rules). Objects of other kinds (ConfigMaps, Services, custom resources...) are
read with a GET at each round until they are ``Current``, then not again: kstatus reads
them from their own status, which nothing moves back once it says ``Current``, or they
have none.

Every object is read once with a GET when its wait starts: the watch may not have
delivered the write that was just made (an upgraded Deployment's new generation), and a
stale copy of a healthy object must not end the wait early. From then on the newer of the
two copies counts.

A watch starts with the first wait that needs it and stops :attr:`linger` seconds after the
last one ends, so a burst of releases shares it and an idle daemon holds none. A watch the
identity may not list (RBAC, an unknown resource) is not retried: its objects are read with
GETs as other kinds are.

Verdicts come from :func:`~fluxd.apply.health.compute_status` and failures raise the same
:class:`~fluxd.apply.health.HealthCheckError` (through :func:`~fluxd.apply.health.settled`),
so a wait here decides exactly what ``wait_for_health`` would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import aiohttp

from fluxd.apply.health import (
    HealthRef,
    ObjectHealth,
    ObjectStatus,
    Status,
    StatusRule,
    compute_status,
    read_status,
    settled,
)
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.informer import EventType, Informer
from fluxd.kube.resources import Resource, object_key

__all__ = ["ROUND", "WATCHED", "HealthWatches"]

#: Resources read from a shared watch: the workloads whose controllers report progress.
WATCHED = frozenset(
    {
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("apps", "replicasets"),
        ("batch", "jobs"),
        ("", "pods"),
    }
)
#: Seconds between two looks at a wait's objects when no watch event wakes it.
ROUND = 1.0

_FeedKey = tuple[ApiClient, Resource, str | None]
_ObjectKey = tuple[str, str]


def _version(obj: Mapping[str, Any] | None) -> int:
    text = str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else -1


class _Feed:
    """One shared watch, the waits it wakes, and whether it can be used."""

    def __init__(self, api: ApiClient, resource: Resource, namespace: str | None) -> None:
        self.api = api
        self.namespace = namespace
        self.informer = Informer(api, resource, on_event=self.wake, namespace=namespace)
        self.waiters: dict[_ObjectKey, set[asyncio.Event]] = {}
        self.users = 0
        self.refused = False
        self.task: asyncio.Task[None] | None = None
        self.stopper: asyncio.TimerHandle | None = None

    @property
    def usable(self) -> bool:
        return not self.refused and self.informer.synced.is_set()

    async def wake(self, _: EventType, obj: dict[str, Any]) -> None:
        namespace, name = object_key(obj)
        for event in self.waiters.get((namespace, name), ()):
            event.set()

    async def run(self) -> None:
        """Watch, once one LIST shows the identity may; otherwise mark the feed refused."""
        try:
            await client.list_page(self.api, self.informer.resource, self.namespace, limit=1)
        except client.ApiError as error:
            if error.status in (401, 403, 404):
                self.refused = True
                return
        except (aiohttp.ClientError, TimeoutError):
            pass  # the informer retries the connection with backoff
        await self.informer.run()

    def stop(self) -> None:
        if self.stopper is not None:
            self.stopper.cancel()
        if self.task is not None:
            self.task.cancel()


class HealthWatches:
    """Health waits whose workload objects are read from shared watches."""

    def __init__(self, *, linger: float = 30.0) -> None:
        self.linger = linger
        self._feeds: dict[_FeedKey, _Feed] = {}

    async def wait(
        self,
        api: ApiClient,
        refs: Sequence[tuple[Resource, str | None, str, str]],
        *,
        timeout: float,  # noqa: ASYNC109 - the action's timeout, part of the result
        rules: Mapping[tuple[str, str], StatusRule] | None = None,
    ) -> None:
        """Wait until every object is ``Current``, as ``wait_for_health`` does."""
        targets = [HealthRef(*ref) for ref in refs]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        wake = asyncio.Event()
        with self._subscribed(api, targets, wake) as feeds:
            fetched = await self._first_reads(api, targets)
            current: set[HealthRef] = set()
            while True:
                pending = []
                for ref in targets:
                    if ref in current:
                        continue
                    feed = feeds.get(ref)
                    found = await self._status(api, ref, feed, fetched.get(ref), rules)
                    if found.status == Status.CURRENT:
                        if feed is None:
                            current.add(ref)  # nothing moves it back: not read again
                        continue
                    pending.append(ObjectHealth(ref, found))
                remaining = deadline - loop.time()
                if settled(pending, remaining):
                    return
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(ROUND, remaining)):
                        await wake.wait()

    async def close(self) -> None:
        """Stop every watch (the daemon is stopping)."""
        feeds = list(self._feeds.values())
        self._feeds.clear()
        for feed in feeds:
            feed.stop()
        await asyncio.gather(*(f.task for f in feeds if f.task), return_exceptions=True)

    async def _first_reads(
        self, api: ApiClient, targets: Sequence[HealthRef]
    ) -> dict[HealthRef, dict[str, Any]]:
        """Each watched object as the API server has it now (absent when missing or
        unreadable: its watch, or a GET at the next round, tells then)."""

        async def read(ref: HealthRef) -> tuple[HealthRef, dict[str, Any] | None]:
            try:
                return ref, await client.get(
                    api, ref.resource, ref.namespace, ref.name, missing_ok=True
                )
            except Exception:
                return ref, None

        watched = [ref for ref in targets if _watched(ref.resource)]
        found = await asyncio.gather(*(read(ref) for ref in watched))
        return {ref: obj for ref, obj in found if obj is not None}

    async def _status(
        self,
        api: ApiClient,
        ref: HealthRef,
        feed: _Feed | None,
        fetched: dict[str, Any] | None,
        rules: Mapping[tuple[str, str], StatusRule] | None,
    ) -> ObjectStatus:
        if feed is None or not feed.usable:
            return await read_status(api, ref, rules)
        stored = feed.informer.get(ref.namespace, ref.name)
        if stored is None and fetched is not None:
            # Not delivered yet, or deleted since it was read: the watch knows which.
            seen = feed.informer.resource_version or ""
            if not (seen.isdigit() and int(seen) > _version(fetched)):
                stored = fetched
        elif stored is not None and _version(fetched) > _version(stored):
            stored = fetched
        if stored is None:
            return ObjectStatus(Status.NOT_FOUND, "Resource not found")
        return compute_status(stored, rules)

    @contextlib.contextmanager
    def _subscribed(
        self, api: ApiClient, targets: Sequence[HealthRef], wake: asyncio.Event
    ) -> Iterator[dict[HealthRef, _Feed]]:
        feeds: dict[HealthRef, _Feed] = {}
        for ref in targets:
            if _watched(ref.resource):
                feed = feeds[ref] = self._acquire(api, ref.resource, ref.namespace)
                feed.waiters.setdefault((ref.namespace or "", ref.name), set()).add(wake)
        try:
            yield feeds
        finally:
            for ref, feed in feeds.items():
                key = (ref.namespace or "", ref.name)
                events = feed.waiters.get(key)
                if events is not None:
                    events.discard(wake)
                    if not events:
                        del feed.waiters[key]
                self._release((api, ref.resource, ref.namespace), feed)

    def _acquire(self, api: ApiClient, resource: Resource, namespace: str | None) -> _Feed:
        key = (api, resource, namespace)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = _Feed(api, resource, namespace)
            feed.task = asyncio.get_running_loop().create_task(feed.run())
        if feed.stopper is not None:
            feed.stopper.cancel()
            feed.stopper = None
        feed.users += 1
        return feed

    def _release(self, key: _FeedKey, feed: _Feed) -> None:
        feed.users -= 1
        if feed.users == 0 and feed.stopper is None:
            feed.stopper = asyncio.get_running_loop().call_later(
                self.linger, self._expire, key, feed
            )

    def _expire(self, key: _FeedKey, feed: _Feed) -> None:
        if feed.users == 0 and self._feeds.get(key) is feed:
            del self._feeds[key]
            feed.stop()


def _watched(resource: Resource) -> bool:
    return (resource.group, resource.plural) in WATCHED
