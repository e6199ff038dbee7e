"""Alert (``notification.toolkit.fluxcd.io/v1beta3``): checks that events can be routed.

The routing itself is the dispatcher's (:mod:`fluxd.notify.dispatcher`), reading the
Alert from the informer store at every event. This reconciler reports what would make
it route nothing: ``inclusionList``/``exclusionList`` entries that do not compile
(stalled, ``InvalidConfig``, naming the entry) and a ``providerRef`` that does not exist
(``ValidationFailed``, retried until it appears). Then ``Ready=True``, ``Initialized``,
as Flux v1beta2 reported it.

An Alert's spec has no ``interval``: it is checked again every
:data:`RECHECK_INTERVAL` seconds.
"""

from __future__ import annotations

from typing import Any

from fluxd.api import ALERT, PROVIDER, AlertSpec
from fluxd.kube.objects import ObjectApi
from fluxd.notify import invalid_patterns
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime.errors import ReconcileError

__all__ = ["AlertReconciler"]

RECHECK_INTERVAL = 600.0


class AlertReconciler(Reconciler[Any]):
    """``notification.toolkit.fluxcd.io/v1beta3`` Alert (its spec has no interval, hence
    the ``Any``: the driver's spec type requires one)."""

    kind = ALERT

    def __init__(self, *, objects: ObjectApi) -> None:
        self.objects = objects

    def interval(self, spec: Any) -> float:
        return RECHECK_INTERVAL

    async def reconcile(self, ctx: Context[Any]) -> None:
        spec: AlertSpec = ctx.spec
        problems = invalid_patterns(spec)
        if problems:
            raise ReconcileError(
                "InvalidConfig", "invalid regular expression: " + "; ".join(problems), stalled=True
            )
        name = spec.provider_ref.name
        provider = await self.objects.read(PROVIDER, ctx.key.namespace, name)
        if provider is None:
            raise ReconcileError(
                "ValidationFailed",
                f"failed to get provider {ctx.key.namespace}/{name}: Provider not found",
            )
        ctx.ready_message = "Initialized"
