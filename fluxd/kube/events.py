"""Kubernetes Events about Flux objects, recorded the way Flux's controllers record them.

Each :meth:`EventRecorder.emit` writes a ``core/v1`` Event whose ``involvedObject`` is
the Flux object, ``source.component`` the controller name, and whose
``metadata.annotations`` carry Flux's event metadata (``<api group>/revision``,
``<api group>/token``...; see :func:`meta_key`). Like client-go's event correlator, an
identical event (same object, type, reason and message) seen again within ``window``
seconds does not create a new Event: the existing one gets ``count + 1`` and a new
``lastTimestamp``, which is what ``kubectl describe`` shows as ``(x2 over 3m)``.

Emitting never fails a reconcile: API errors are logged and swallowed. Listeners (the
notification dispatcher) see every emitted event, repeats included, as a
:class:`RecordedEvent`; a listener should enqueue rather than do slow work inline.
"""

from __future__ import annotations

import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
import structlog
from kubernetes_asyncio.client import ApiClient

from fluxd.kube.client import ApiError, create, patch
from fluxd.kube.resources import EVENTS

__all__ = [
    "META_DIGEST",
    "META_ORIGIN_REVISION",
    "META_REVISION",
    "META_TOKEN",
    "EventListener",
    "EventRecorder",
    "EventType",
    "RecordedEvent",
    "involved_object",
    "meta_key",
]

EventType = Literal["Normal", "Warning"]

# Flux's event metadata keys (fluxcd/pkg/apis/event); on an Event they are prefixed with
# the API group of the involved object, e.g. ``kustomize.toolkit.fluxcd.io/revision``.
META_REVISION = "revision"
META_ORIGIN_REVISION = "originRevision"
META_DIGEST = "digest"
META_TOKEN = "token"
EVENT_ANNOTATION_PREFIX = "event.toolkit.fluxcd.io/"

log = structlog.stdlib.get_logger(__name__)


def _event_annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    """The object's own ``event.toolkit.fluxcd.io/`` annotations, which Flux's recorder
    adds to every event about it (``change_request`` names its pull request)."""
    own = (obj.get("metadata") or {}).get("annotations") or {}
    return {k: str(v) for k, v in own.items() if k.startswith(EVENT_ANNOTATION_PREFIX)}


def meta_key(obj: Mapping[str, Any], key: str) -> str:
    """The annotation key for Flux event metadata ``key`` about ``obj``."""
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    return f"{group}/{key}" if group else key


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """What a listener is told about one emitted event."""

    involved_object: Mapping[str, str]
    type: EventType
    reason: str
    message: str
    annotations: Mapping[str, str]
    timestamp: datetime
    reporting_controller: str
    reporting_instance: str
    count: int

    @property
    def severity(self) -> Literal["info", "error"]:
        """Flux's notification severity: Warning events are errors."""
        return "error" if self.type == "Warning" else "info"


EventListener = Callable[[RecordedEvent], Awaitable[None]]
_Key = tuple[Any, ...]
_LOCK_STRIPES = 64


@dataclass(slots=True)
class _Series:
    """The Event object that repeats of one (object, type, reason, message) bump."""

    name: str = ""
    namespace: str = ""
    count: int = 0
    last_seen: float = 0.0


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def involved_object(obj: Mapping[str, Any]) -> dict[str, str]:
    """The ``ObjectReference`` of ``obj`` as an Event's ``involvedObject``."""
    meta = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    return {k: str(v) for k, v in ref.items() if v}


class EventRecorder:
    """Writes Events for ``component`` (``source.component``) running on ``host``."""

    def __init__(
        self,
        api: ApiClient,
        *,
        component: str = "fluxd",
        host: str | None = None,
        window: float = 600.0,
        cache_size: int = 4096,
    ) -> None:
        self._api = api
        self._component = component
        self._host = host or socket.gethostname()
        self._window = window
        self._cache_size = cache_size
        self._series: OrderedDict[_Key, _Series] = OrderedDict()
        # Writes of one series are serialised by the stripe its key hashes to: a lock per
        # series would cost more than the rest of the series cache together.
        self._locks = tuple(anyio.Lock() for _ in range(_LOCK_STRIPES))
        self._listeners: list[EventListener] = []

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: EventListener) -> None:
        self._listeners.remove(listener)

    async def emit(
        self,
        obj: Mapping[str, Any],
        *,
        type: EventType,
        reason: str,
        message: str,
        annotations: Mapping[str, str] | None = None,
        component: str | None = None,
    ) -> None:
        """Record an event about ``obj``; never raises (except on cancellation).

        ``component`` names the reporting controller when it is not the recorder's own.
        """
        ref = involved_object(obj)
        component = component or self._component
        annotations = {**(annotations or {}), **_event_annotations(obj)}
        now = datetime.now(UTC)
        # client-go's aggregation key: everything but the object's resourceVersion.
        identity = tuple(sorted((k, v) for k, v in ref.items() if k != "resourceVersion"))
        key = (identity, type, reason, message)
        series = self._series_for(key)
        async with self._locks[hash(key) % _LOCK_STRIPES]:
            try:
                await self._write(
                    series, ref, type, reason, message, annotations or {}, now, component
                )
            except Exception as exc:
                series.name = ""
                log.warning(
                    "cannot record event",
                    object=f"{ref.get('kind')}/{ref.get('namespace', '')}/{ref.get('name')}",
                    reason=reason,
                    error=str(exc),
                )
            count = max(series.count, 1)  # 1 when even the first write failed
        record = RecordedEvent(
            involved_object=ref,
            type=type,
            reason=reason,
            message=message,
            annotations=dict(annotations or {}),
            timestamp=now,
            reporting_controller=component,
            reporting_instance=self._host,
            count=count,
        )
        for listener in list(self._listeners):
            try:
                await listener(record)
            except Exception:
                log.exception("event listener failed", reason=reason)

    def _series_for(self, key: _Key) -> _Series:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
            while len(self._series) > self._cache_size:
                self._series.popitem(last=False)
        else:
            self._series.move_to_end(key)
        return series

    async def _write(
        self,
        series: _Series,
        ref: Mapping[str, str],
        type: EventType,
        reason: str,
        message: str,
        annotations: Mapping[str, str],
        now: datetime,
        component: str,
    ) -> None:
        fresh = time.monotonic() - series.last_seen <= self._window
        if series.name and fresh:
            try:
                await patch(
                    self._api,
                    EVENTS,
                    series.namespace,
                    series.name,
                    {"count": series.count + 1, "lastTimestamp": _timestamp(now)},
                )
            except ApiError as exc:
                if not exc.not_found:
                    raise
                # Events expire (the API server's --event-ttl): start a new one.
            else:
                series.count += 1
                series.last_seen = time.monotonic()
                return
        # client-go names events <object name>.<unix nanoseconds in hex>.
        name = f"{ref.get('name', 'unknown')}.{time.time_ns():x}"
        namespace = ref.get("namespace") or "default"
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": dict(ref),
            "type": type,
            "reason": reason,
            "message": message,
            "source": {"component": component, "host": self._host},
            "reportingComponent": component,
            "reportingInstance": self._host,
            "firstTimestamp": _timestamp(now),
            "lastTimestamp": _timestamp(now),
            "count": 1,
        }
        if annotations:
            body["metadata"]["annotations"] = dict(annotations)
        await create(self._api, EVENTS, body)
        series.name, series.namespace, series.count = name, namespace, 1
        series.last_seen = time.monotonic()
