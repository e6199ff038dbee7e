"""Receiver (``notification.toolkit.fluxcd.io/v1``): the webhook path a sender calls.

Steps, as Flux's receiver controller:

1. fields fluxd does not serve stall the Receiver (``UnsupportedField``, naming them):
   a type other than those :data:`~fluxd.notify.SUPPORTED_RECEIVER_TYPES` lists,
   ``resourceFilter``, ``resources[].filter``, ``oidcProviders[].variables``; an
   ``oidcProviders[].validations`` expression that does not compile stalls it too
   (``InvalidCELExpression``);
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
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime.errors import ReconcileError

__all__ = ["ReceiverReconciler"]


def _unserved(spec: ReceiverSpec) -> list[str]:
    fields = []
    if spec.type not in SUPPORTED_RECEIVER_TYPES:
        supported = ", ".join(sorted(SUPPORTED_RECEIVER_TYPES))
        fields.append(f"spec.type '{spec.type}' (supported: {supported})")
    if spec.resource_filter:
        fields.append("spec.resourceFilter")
    fields += [f"spec.resources[{i}].filter" for i, r in enumerate(spec.resources) if r.filter]
    fields += [
        f"spec.oidcProviders[{i}].variables"
        for i, provider in enumerate(spec.oidc_providers)
        if provider.variables
    ]
    return fields


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
        invalid = invalid_expressions(spec)
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
