"""Every event fluxd records, matched against Alerts and delivered to their Providers.

The :class:`Dispatcher` listens on the :class:`~fluxd.kube.events.EventRecorder`. Its
listener runs inline in the reconcile that emitted the event, so it only does
in-memory work: Alerts and Providers come from the informers' stores, duplicates are
dropped, and each delivery is put on a bounded queue. :meth:`Dispatcher.run` takes them
off and sends them concurrently, each Provider at most :data:`PER_PROVIDER_CONCURRENCY`
at a time with at most :data:`PER_PROVIDER_PENDING` waiting: a Provider that hangs or
keeps failing fills its own slots, never a reconcile's time or another Provider's.

Duplicates are rate limited as Flux's event server limits them: one event per object,
message, revision, origin revision and token within ``rate_limit_interval`` (Flux's
``--rate-limit-interval``, 5 minutes), whatever the number of Alerts. A delivery that
fails for good is reported as Flux reports it: a Warning Event
``NotificationDispatchFailed`` on the Alert, the token masked. As in Flux, commit
status providers only get commit status updates, events naming a commit and errors,
and only they and the generic types get commit status updates
(:func:`~fluxd.notify.commit_status.takes_event`). With ``no_cross_namespace_refs``
(Flux's ``--no-cross-namespace-refs``) an Alert gets only the events of its own
namespace's objects, whatever its ``eventSources`` say.
"""

from __future__ import annotations

import time
from collections import OrderedDict, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import structlog

from fluxd.api import ALERT, PROVIDER, AlertSpec, ProviderSpec, SpecError
from fluxd.kube.events import RecordedEvent
from fluxd.kube.informer import Informer
from fluxd.kube.objects import ObjectApi
from fluxd.notify.commit_status import takes_event
from fluxd.notify.delivery import DeliveryError, send
from fluxd.notify.event import Notification, notification_of
from fluxd.notify.matching import alert_matches
from fluxd.notify.providers import InvalidProvider, NothingToSend, UnsendableEvent, build_request
from fluxd.notify.settings import ProviderError, refusal, resolve

__all__ = ["PER_PROVIDER_CONCURRENCY", "PER_PROVIDER_PENDING", "Dispatcher"]

PER_PROVIDER_CONCURRENCY = 4
PER_PROVIDER_PENDING = 64
QUEUE_SIZE = 1024
RATE_LIMIT_INTERVAL = 300.0
#: Bound of the duplicate detector's memory (oldest keys forgotten first).
SEEN_LIMIT = 8192

log = structlog.stdlib.get_logger(__name__)


@dataclass(frozen=True)
class _Delivery:
    alert: dict[str, Any]
    provider: dict[str, Any]
    spec: ProviderSpec
    notification: Notification

    @property
    def provider_key(self) -> tuple[str, str]:
        meta = self.provider["metadata"]
        return meta.get("namespace", ""), meta["name"]


def _mask(text: str, token: str) -> str:
    return text.replace(token, "*****") if token else text


class Dispatcher:
    """Routes recorded events to Providers; :meth:`listen` is the recorder's listener."""

    def __init__(
        self,
        *,
        objects: ObjectApi,
        informers: Mapping[str, Informer],
        rate_limit_interval: float = RATE_LIMIT_INTERVAL,
        queue_size: int = QUEUE_SIZE,
        no_cross_namespace_refs: bool = False,
    ) -> None:
        self._objects = objects
        self._own_namespace_only = no_cross_namespace_refs
        self._informers = informers
        self._interval = rate_limit_interval
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._queue_in, self._queue_out = anyio.create_memory_object_stream[_Delivery](queue_size)
        self._pending: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._limiters: dict[tuple[str, str], anyio.CapacityLimiter] = {}

    # -- the listener: in-memory only ------------------------------------------------------

    async def listen(self, event: RecordedEvent) -> None:
        alerts = self._informers.get(ALERT.kind)
        if alerts is None or not len(alerts):
            return
        notification = notification_of(event)
        if self._duplicate(notification.dedupe_key()):
            log.debug("discarding event, rate limiting duplicate events", reason=event.reason)
            return
        notification = notification.without_internal_metadata()
        for alert in alerts.list():
            self._route(alert, notification)

    def _duplicate(self, key: str) -> bool:
        now = time.monotonic()
        last = self._seen.get(key)
        if last is not None and now - last < self._interval:
            return True
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        return False

    def _labels_of(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        informer = self._informers.get(kind)
        found = informer.get(namespace, name) if informer is not None else None
        return (found["metadata"].get("labels") or {}) if found is not None else None

    def _route(self, alert: dict[str, Any], notification: Notification) -> None:
        try:
            spec: AlertSpec = ALERT.parse_spec(alert)
        except SpecError:
            return  # its reconciler reports the invalid spec
        if not alert_matches(
            alert,
            spec,
            notification.involved_object,
            notification.severity,
            notification.message,
            self._labels_of,
        ):
            return
        namespace = alert["metadata"].get("namespace", "")
        involved = notification.involved_object
        if self._own_namespace_only and involved.get("namespace") != namespace:
            log.warning(
                "discarding event, access denied to cross-namespace sources: alert "
                f"'{namespace}/{alert['metadata']['name']}' can't process event from "
                f"'{involved.get('kind')}/{involved.get('namespace')}/{involved.get('name')}', "
                "cross-namespace references have been blocked"
            )
            return
        providers = self._informers.get(PROVIDER.kind)
        provider = providers.get(namespace, spec.provider_ref.name) if providers else None
        if provider is None:
            log.warning(
                "discarding event: the alert's provider does not exist",
                alert=f"{namespace}/{alert['metadata']['name']}",
                provider=spec.provider_ref.name,
            )
            return
        try:
            provider_spec: ProviderSpec = PROVIDER.parse_spec(provider)
        except SpecError:
            return
        if provider_spec.suspend or refusal(provider_spec) is not None:
            return
        if not takes_event(provider_spec.type, notification):
            log.debug(
                "event not for this provider type",
                provider=spec.provider_ref.name,
                type=provider_spec.type,
                reason=notification.reason,
            )
            return
        delivery = _Delivery(
            alert,
            provider,
            provider_spec,
            notification.for_alert(spec.event_metadata, spec.summary),
        )
        key = delivery.provider_key
        if self._pending[key] >= PER_PROVIDER_PENDING:
            log.warning("provider backlog full: notification dropped", provider="/".join(key))
            return
        try:
            self._queue_in.send_nowait(delivery)
        except anyio.WouldBlock:
            log.warning("notification queue full: notification dropped", provider="/".join(key))
            return
        self._pending[key] += 1

    # -- the senders -----------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver queued notifications until cancelled."""
        async with anyio.create_task_group() as tg, self._queue_out:
            async for delivery in self._queue_out:
                tg.start_soon(
                    self._deliver, delivery, name=f"notify {'/'.join(delivery.provider_key)}"
                )

    async def _deliver(self, delivery: _Delivery) -> None:
        key = delivery.provider_key
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = anyio.CapacityLimiter(PER_PROVIDER_CONCURRENCY)
        token = ""
        event = delivery.notification
        try:
            async with limiter:
                resolved = await resolve(self._objects, delivery.provider, delivery.spec)
                token = resolved.settings.token
                request = build_request(
                    resolved.settings, event, alert=delivery.alert, provider=delivery.provider
                )
                await send(request, resolved.transport)
        except NothingToSend as skipped:
            log.debug("nothing to send", provider="/".join(key), why=str(skipped))
        except (ProviderError, InvalidProvider, UnsendableEvent, DeliveryError) as error:
            message = (
                f"failed to send notification for {event.kind}/{event.namespace}/{event.name}: "
                f"{_mask(str(error), token)}"
            )
            log.warning("notification not delivered", provider="/".join(key), error=message)
            await self._objects.record_event(
                delivery.alert, "Warning", "NotificationDispatchFailed", message
            )
        else:
            log.info("notification delivered", provider="/".join(key), reason=event.reason)
        finally:
            self._pending[key] -= 1
            if not self._pending[key]:
                del self._pending[key]
                self._limiters.pop(key, None)
