"""The last Events of each Flux object, kept in memory for the UI's object page.

fluxd hears every Event it records (an :class:`~fluxd.kube.events.EventRecorder`
listener), so the object page can list them without listing Events from the API server.
A repeat of the same event (type, reason, message) updates its entry's count and time,
as ``kubectl describe`` shows ``(x3 over 5m)``, instead of pushing older events out.

Memory is bounded twice: ``per_object`` events per object, and ``max_objects`` objects,
the least recently heard-of dropped first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from fluxd.kube.events import RecordedEvent

__all__ = ["RecentEvents"]

_Key = tuple[str, str, str]


class RecentEvents:
    """The newest events per ``(kind, namespace, name)``, oldest first."""

    def __init__(self, *, per_object: int = 20, max_objects: int = 1000) -> None:
        self._per_object = per_object
        self._max_objects = max_objects
        self._events: OrderedDict[_Key, deque[dict[str, Any]]] = OrderedDict()

    async def listen(self, event: RecordedEvent) -> None:
        """The EventRecorder listener: remember ``event``."""
        self.add(event)

    def add(self, event: RecordedEvent) -> None:
        ref = event.involved_object
        key = (ref.get("kind", ""), ref.get("namespace", ""), ref.get("name", ""))
        kept = self._events.get(key)
        if kept is None:
            kept = self._events[key] = deque(maxlen=self._per_object)
            while len(self._events) > self._max_objects:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        entry = {
            "type": event.type,
            "reason": event.reason,
            "message": event.message,
            "time": event.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "count": event.count,
        }
        for previous in kept:
            if (previous["type"], previous["reason"], previous["message"]) == (
                event.type,
                event.reason,
                event.message,
            ):
                kept.remove(previous)
                entry["count"] = max(event.count, previous["count"] + 1)
                break
        kept.append(entry)

    def of(self, kind: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """The object's events, newest first."""
        return [dict(entry) for entry in reversed(self._events.get((kind, namespace, name), ()))]

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Drop a deleted object's events."""
        self._events.pop((kind, namespace, name), None)
