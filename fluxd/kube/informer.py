"""List+watch of one resource type into an in-memory store, like client-go's reflector.

The life of an :class:`Informer`:

1. LIST in pages (``limit``/``continue``), fill the store, hand every difference to
   ``on_event`` (all ``ADDED`` the first time), then set ``synced``.
2. WATCH from the list's ``resourceVersion`` with ``allowWatchBookmarks``; every event
   moves the remembered resourceVersion forward, bookmarks included. When the server
   ends the watch (its ``timeoutSeconds``, five to ten minutes) the informer resumes
   from that resourceVersion: nothing in between is missed or repeated.
3. ``410 Gone`` (the resourceVersion fell out of the server's window, as an HTTP status
   or as an ``ERROR`` event): LIST again and diff against the store, so the handler sees
   a synthetic ADDED/MODIFIED/DELETED for each change it would have missed.
4. Connection errors and other failures: retry the watch (or the list, before the first
   sync) after an exponential, jittered backoff. Nothing polls.

Handlers receive raw dicts with ``kind`` and ``apiVersion`` filled in (LIST items lack
them) and, by default, without ``metadata.managedFields``, which is often half of an
object's size and useless to a reconciler. The store keeps the same dicts: handlers must
treat them as read-only.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

import aiohttp
import anyio
import structlog
from kubernetes_asyncio.client import ApiClient

from fluxd.kube.client import ApiError, list_page, open_response
from fluxd.kube.resources import Resource, object_key
from fluxd.runtime.backoff import Backoff

__all__ = ["EventHandler", "EventType", "Informer", "relist_diff"]

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
EventHandler = Callable[[EventType, dict[str, Any]], Awaitable[None]]
StoreKey = tuple[str, str]

log = structlog.stdlib.get_logger(__name__)

# A watch that ends sooner than this without delivering anything is treated as a failure
# (backoff), so a server that accepts and hangs up at once cannot make us spin.
_MIN_HEALTHY_WATCH = 1.0


def relist_diff(
    store: Mapping[StoreKey, dict[str, Any]], items: Iterable[dict[str, Any]]
) -> tuple[dict[StoreKey, dict[str, Any]], list[tuple[EventType, dict[str, Any]]]]:
    """The new store after a LIST and the events that turn the old store into it.

    An object is MODIFIED when its resourceVersion differs from the stored one; objects
    the list no longer has are DELETED with their last known state.
    """
    new: dict[StoreKey, dict[str, Any]] = {}
    events: list[tuple[EventType, dict[str, Any]]] = []
    for obj in items:
        key = object_key(obj)
        new[key] = obj
        old = store.get(key)
        if old is None:
            events.append(("ADDED", obj))
        elif _rv(old) != _rv(obj):
            events.append(("MODIFIED", obj))
    events.extend(("DELETED", obj) for key, obj in store.items() if key not in new)
    return new, events


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _newer(obj: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is a later state than ``than``. resourceVersions are opaque by
    contract but etcd revisions in practice; if they are not numbers, trust the caller."""
    new, old = _rv(obj), _rv(than)
    if new.isdigit() and old.isdigit():
        return int(new) > int(old)
    return new != old


class _Expired(Exception):
    """The remembered resourceVersion is gone from the server: relist."""


class Informer:
    """Keeps a local copy of one resource type in sync and reports every change.

    ``on_event`` is awaited for every change, one at a time, in the order the server
    reported them; it should be quick (enqueue work, don't do it). An exception from it
    is logged and the informer carries on.

    :meth:`run` runs until cancelled and may be started again afterwards: it then resumes
    watching from where it stopped (or relists, if that is too old).
    """

    def __init__(
        self,
        api: ApiClient,
        resource: Resource,
        *,
        on_event: EventHandler,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        watch_timeout: float = 300.0,
        backoff: Backoff | None = None,
        strip_managed_fields: bool = True,
    ) -> None:
        self._api = api
        self._resource = resource
        self._on_event = on_event
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._page_size = page_size
        self._watch_timeout = watch_timeout
        self._backoff = backoff or Backoff(initial=0.5, maximum=30.0, jitter=0.25)
        self._failures = 0
        self._strip_managed_fields = strip_managed_fields
        self._store: dict[StoreKey, dict[str, Any]] = {}
        self._resource_version: str | None = None
        self._kind = ""
        self._synced = anyio.Event()
        self._log = log.bind(
            resource=resource.plural, group=resource.group, namespace=namespace or "*"
        )

    @property
    def resource(self) -> Resource:
        return self._resource

    @property
    def synced(self) -> anyio.Event:
        """Set once the first LIST has been delivered to ``on_event``."""
        return self._synced

    @property
    def resource_version(self) -> str | None:
        """The last resourceVersion seen (list, event or bookmark)."""
        return self._resource_version

    def get(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._store.get((namespace or "", name))

    def list(self) -> list[dict[str, Any]]:
        return list(self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def observe(self, obj: dict[str, Any]) -> None:
        """Refresh the stored copy with a newer one, e.g. the answer to our own write.

        A reconcile that follows at once then sees its own write before the watch event
        arrives. Only objects already in the store are refreshed (a write racing with a
        deletion must not resurrect it), and never with an older resourceVersion. No
        event is delivered: the watch still reports the change.
        """
        key = object_key(obj)
        stored = self._store.get(key)
        if stored is not None and _newer(obj, stored):
            self._store[key] = self._prepare(obj)

    def _next_delay(self) -> float:
        self._failures += 1
        return self._backoff.delay(self._failures)

    async def run(self) -> None:
        """List, then watch, until cancelled; failures are logged and retried."""
        while True:
            try:
                if self._resource_version is None:
                    await self._relist()
                    self._failures = 0
                if await self._watch():
                    self._failures = 0
                    continue
                delay = self._next_delay()
                self._log.debug("watch ended early, backing off", delay=round(delay, 2))
            except _Expired:
                self._log.info("resourceVersion expired, relisting")
                self._resource_version = None
                continue
            except ApiError as exc:
                # A 410 while listing (an expired continue token) is retried like any
                # other failure, so that a server that keeps answering 410 is not hammered.
                if exc.gone and self._resource_version is not None:
                    self._log.info("resourceVersion expired, relisting", error=str(exc))
                    self._resource_version = None
                    continue
                delay = self._next_delay()
                self._log.warning(self._failure(), error=str(exc), retry_in=round(delay, 2))
            except Exception as exc:
                # Connection errors, timeouts, a truncated line: like client-go's reflector,
                # an informer never gives up; it retries until cancelled.
                delay = self._next_delay()
                self._log.warning(
                    self._failure(), error=f"{type(exc).__name__}: {exc}", retry_in=round(delay, 2)
                )
            await anyio.sleep(delay)

    def _failure(self) -> str:
        what = "list" if self._resource_version is None else "watch"
        return f"{what} of {self._resource.plural} failed"

    async def _relist(self) -> None:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await list_page(
                self._api,
                self._resource,
                self._namespace,
                label_selector=self._label_selector,
                field_selector=self._field_selector,
                limit=self._page_size,
                continue_token=token,
            )
            kind = str(page.get("kind") or "")
            self._kind = kind.removesuffix("List") or self._kind
            items.extend(self._prepare(obj) for obj in page.get("items") or ())
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                resource_version = str(meta.get("resourceVersion") or "")
                break
        self._store, events = relist_diff(self._store, items)
        self._resource_version = resource_version
        self._log.debug("listed", count=len(items), resource_version=resource_version)
        for event_type, obj in events:
            await self._deliver(event_type, obj)
        self._synced.set()

    async def _watch(self) -> bool:
        """One watch request until the server ends it. True when it was healthy."""
        assert self._resource_version is not None
        timeout_seconds = int(self._watch_timeout * (1.0 + random.random())) or 1
        query = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": self._resource_version,
            "timeoutSeconds": str(timeout_seconds),
        }
        if self._label_selector:
            query["labelSelector"] = self._label_selector
        if self._field_selector:
            query["fieldSelector"] = self._field_selector
        started = anyio.current_time()
        delivered = False
        resp = await open_response(
            self._api,
            "GET",
            self._resource.path(self._namespace),
            query=query,
            # No total timeout: a watch lives for timeoutSeconds. The read timeout catches
            # a connection that died silently.
            http_timeout=aiohttp.ClientTimeout(
                total=None, connect=10, sock_connect=10, sock_read=timeout_seconds + 30
            ),
        )
        try:
            async for line in resp.content:
                if line.strip():
                    delivered = await self._handle(json.loads(line)) or delivered
        finally:
            resp.close()
        return delivered or anyio.current_time() - started >= _MIN_HEALTHY_WATCH

    async def _handle(self, event: dict[str, Any]) -> bool:
        """Apply one watch event to the store; True if it was a change."""
        event_type = event.get("type")
        obj = event.get("object") or {}
        if event_type == "BOOKMARK":
            self._resource_version = _rv(obj) or self._resource_version
            return False
        if event_type == "ERROR":
            code, reason = obj.get("code"), obj.get("reason")
            if code == 410 or reason in ("Expired", "Gone"):
                raise _Expired(obj.get("message"))
            raise ApiError(
                int(code or 500),
                str(reason or ""),
                str(obj.get("message") or obj),
                method="WATCH",
                path=self._resource.path(self._namespace),
            )
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            raise ValueError(f"unknown watch event type {event_type!r}")
        obj = self._prepare(obj)
        key = object_key(obj)
        kind: EventType
        if event_type == "DELETED":
            self._store.pop(key, None)
            kind = "DELETED"
        else:
            stored = self._store.get(key)
            kind = "ADDED" if stored is None else "MODIFIED"
            # observe() may already hold a later state than this event; keep that.
            if stored is None or not _newer(stored, obj):
                self._store[key] = obj
        self._resource_version = _rv(obj) or self._resource_version
        await self._deliver(kind, obj)
        return True

    def _prepare(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.setdefault("apiVersion", self._resource.api_version)
        if self._kind:
            obj.setdefault("kind", self._kind)
        elif obj.get("kind"):
            self._kind = str(obj["kind"])
        if self._strip_managed_fields:
            (obj.get("metadata") or {}).pop("managedFields", None)
        return obj

    async def _deliver(self, event_type: EventType, obj: dict[str, Any]) -> None:
        try:
            await self._on_event(event_type, obj)
        except Exception:
            namespace, name = object_key(obj)
            self._log.exception(
                "event handler failed", event_type=event_type, object=f"{namespace}/{name}"
            )
