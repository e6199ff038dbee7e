"""Receiver (``notification.toolkit.fluxcd.io/v1``): the webhook path a sender calls.

Steps, as Flux's receiver controller:

1. a type fluxd does not serve (not in :data:`~fluxd.notify.SUPPORTED_RECEIVER_TYPES`,
   which holds every type of Flux's Receiver API today, so only a type a newer API adds
   can meet this) stalls the Receiver (``UnsupportedField``, naming it); a
   ``resourceFilter``, ``resources[].filter`` or ``oidcProviders[]`` variable or
   validation expression that does not compile stalls it too (``InvalidCELExpression``,
   naming the field);
2. the ``token`` of ``spec.secretRef`` is read (``TokenNotFound``, retried: the Secret
   may appear later; ``status.webhookPath`` is cleared meanwhile, so the old path stops
   answering);
3. ``status.webhookPath`` = ``/hook/`` + sha256(token + name + namespace), and
   ``Ready=True`` with ``Receiver initialized for path: <path>``.

The requests to that path are answered by :class:`~fluxd.notify.ReceiverServer`.
"""

from __future__ import annotations

from fluxd.api import RECEIVER, ReceiverSpec
from fluxd.kube.objects import ObjectApi, SecretNotFound
from fluxd.notify import SUPPORTED_RECEIVER_TYPES, webhook_path
from fluxd.notify.oidc import invalid_expressions
from fluxd.notify.resource_filter import invalid_filters
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime.errors import ReconcileError

__all__ = ["ReceiverReconciler"]


def _unserved(spec: ReceiverSpec) -> list[str]:
    if spec.type in SUPPORTED_RECEIVER_TYPES:
        return []
    supported = ", ".join(sorted(SUPPORTED_RECEIVER_TYPES))
    return [f"spec.type '{spec.type}' (supported: {supported})"]


class ReceiverReconciler(Reconciler[ReceiverSpec]):
    """``notification.toolkit.fluxcd.io/v1`` Receiver."""

    kind = RECEIVER

    def __init__(self, *, objects: ObjectApi) -> None:
        self.objects = objects

    async def reconcile(self, ctx: Context[ReceiverSpec]) -> None:
        spec = ctx.spec
        unserved = _unserved(spec)
        if unserved:
            raise ReconcileError(
                "UnsupportedField",
                "not supported by fluxd yet: " + ", ".join(unserved),
                stalled=True,
            )
        invalid = invalid_filters(spec) + invalid_expressions(spec)
        if invalid:
            raise ReconcileError("InvalidCELExpression", "; ".join(invalid), stalled=True)
        token = ""
        if spec.secret_ref is not None:
            secret = f"{ctx.key.namespace}/{spec.secret_ref.name}"
            try:
                data = await self.objects.secret_data(ctx.key.namespace, spec.secret_ref.name)
            except SecretNotFound as error:
                ctx.status.pop("webhookPath", None)
                raise ReconcileError(
                    "TokenNotFound", f"unable to read token from secret '{secret}' error: {error}"
                ) from error
            if "token" not in data:
                ctx.status.pop("webhookPath", None)
                raise ReconcileError(
                    "TokenNotFound", f"invalid '{secret}' secret data: required fields 'token'"
                )
            token = data["token"].decode()
        path = webhook_path(token, ctx.key.name, ctx.key.namespace)
        ctx.status["webhookPath"] = path
        ctx.ready_message = f"Receiver initialized for path: {path}"
