"""Live updates for the UI: the daemon's informer events, turned into row changes and
fanned out to every open ``/api/stream``.

The daemon calls :meth:`UiHub.changed` and :meth:`UiHub.deleted` from its informer event
handlers; both are synchronous and never wait. Only a *row* change is published (state,
reason, message, revision, suspension...): most informer events are fluxd's own status
writes that change nothing a user sees in the overview, and a resourceVersion bump
alone would be noise.

Each subscriber has a bounded queue. A client that does not read fast enough is dropped
(its queue is replaced by an end-of-stream marker) rather than slowing the daemon or
growing memory; the browser's EventSource reconnects and reloads the overview.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.metrics import Metrics
from fluxd.ui import model
from fluxd.ui.events import RecentEvents

__all__ = ["Message", "Subscription", "UiHub"]

#: ``(event name, data)`` as the stream writes it; ``None`` ends a dropped client's stream.
Message = tuple[str, dict[str, Any]] | None


class Subscription:
    """One stream client's queue of messages."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=size)
        self.dropped = False

    def offer(self, message: Message) -> bool:
        """Queue ``message``; False (and the client marked dropped) when it is full."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True
            self.end()
            return False
        return True

    def end(self) -> None:
        """Replace whatever is queued by the end-of-stream marker."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class UiHub:
    """The latest row of every object seen, and the clients to tell when one changes."""

    def __init__(self, *, metrics: Metrics, events: RecentEvents, queue_size: int = 1000) -> None:
        self._metrics = metrics
        self._events = events
        self._queue_size = queue_size
        self._rows: dict[str, dict[str, Any]] = {}
        self._subscribers: set[Subscription] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def changed(self, kind: str, obj: Mapping[str, Any]) -> None:
        """An object was added or modified: publish its row if that changed."""
        metadata = obj.get("metadata") or {}
        key = ObjectKey(kind, str(metadata.get("namespace") or ""), str(metadata.get("name")))
        line = model.row(kind, obj, self._metrics.last_reconcile(key))
        if self._rows.get(line["key"]) == line:
            return
        self._rows[line["key"]] = line
        self._publish(("changed", line))

    def deleted(self, kind: str, obj: Mapping[str, Any]) -> None:
        """An object is gone: publish its key and forget its recent events."""
        metadata = obj.get("metadata") or {}
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name"))
        key = model.object_key(kind, namespace, name)
        self._rows.pop(key, None)
        self._events.forget(kind, namespace, name)
        self._publish(("deleted", {"key": key}))

    def _publish(self, message: Message) -> None:
        for subscription in list(self._subscribers):
            if not subscription.offer(message):
                self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every open stream (the daemon is stopping)."""
        for subscription in list(self._subscribers):
            subscription.end()
        self._subscribers.clear()

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """A queue of the messages published while the ``with`` block runs."""
        subscription = Subscription(self._queue_size)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)
