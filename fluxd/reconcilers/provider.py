"""Provider (``notification.toolkit.fluxcd.io/v1beta3``): checks that events can go out.

Flux's v1beta3 Provider has no reconciler of its own (the event server reads it when an
event arrives); fluxd checks it up front so a broken one says so in ``kubectl get``:

1. a type fluxd does not deliver to, or ``serviceAccountName`` (workload identity),
   stalls it (``UnsupportedField``, naming the type or field);
2. its Secrets (``secretRef``, ``proxySecretRef``, ``certSecretRef``) are read and its
   address resolved (``SecretNotFound`` / ``InvalidConfig``, retried: a Secret may
   appear later);
3. a request is built for a sample event, so an address no request can go to stalls it
   (``InvalidConfig``).

Then ``Ready=True``, ``Initialized``, as Flux v1beta2 reported it. A suspended Provider
is skipped by the driver, and the dispatcher sends nothing through it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fluxd.api import PROVIDER, ProviderSpec
from fluxd.kube.objects import ObjectApi
from fluxd.notify import (
    InvalidProvider,
    Notification,
    ProviderError,
    build_request,
    refusal,
    resolve,
)
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime.errors import ReconcileError

__all__ = ["ProviderReconciler"]

#: How often a Provider's Secrets are checked again (``spec.interval`` is unused in Flux).
RECHECK_INTERVAL = 600.0


class ProviderReconciler(Reconciler[ProviderSpec]):
    """``notification.toolkit.fluxcd.io/v1beta3`` Provider."""

    kind = PROVIDER

    def __init__(self, *, objects: ObjectApi) -> None:
        self.objects = objects

    def interval(self, spec: ProviderSpec) -> float:
        return RECHECK_INTERVAL

    async def reconcile(self, ctx: Context[ProviderSpec]) -> None:
        why = refusal(ctx.spec)
        if why is not None:
            raise ReconcileError("UnsupportedField", why, stalled=True)
        try:
            resolved = await resolve(self.objects, ctx.obj, ctx.spec)
        except ProviderError as error:
            raise ReconcileError(error.reason, error.message) from error
        sample = Notification(
            involved_object={"kind": "GitRepository", "name": "sample", "namespace": "default"},
            severity="info",
            timestamp=datetime.now(UTC),
            message="sample",
            reason="Sample",
            # A revision, so the git services' builders check their whole address.
            metadata={"revision": f"main@sha1:{'0' * 40}"},
        )
        try:
            build_request(resolved.settings, sample)
        except InvalidProvider as error:
            raise ReconcileError("InvalidConfig", str(error), stalled=True) from error
        ctx.ready_message = "Initialized"
