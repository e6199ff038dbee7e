"""The reconcilers' view of the cluster: cached reads, status writes, secrets, events.

Reconcilers never talk to the API client directly. Reads of Flux objects come from the
informer stores (no request per reconcile); writes go through the status subresource and
merge patches of metadata; Secrets are read on demand (watching every Secret in the
cluster would cost memory for data fluxd rarely needs). After a write, the informer store
is refreshed with the answer, so a reconcile that follows at once does not act on the
state from before its own write.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from kubernetes_asyncio.client import ApiClient

from fluxd.api import KindInfo, kind_for
from fluxd.kube import client
from fluxd.kube.events import EventRecorder
from fluxd.kube.informer import Informer
from fluxd.kube.resources import CONFIGMAPS, NAMESPACES, SECRETS, SERVICE_ACCOUNTS, Resource

__all__ = [
    "ConfigMapNotFound",
    "EventType",
    "ObjectApi",
    "SecretNotFound",
    "ServiceAccountNotFound",
    "resource_of",
]

EventType = Literal["Normal", "Warning"]


class SecretNotFound(LookupError):
    """A referenced Secret does not exist; the message names it."""


class ConfigMapNotFound(LookupError):
    """A referenced ConfigMap does not exist; the message names it."""


class ServiceAccountNotFound(LookupError):
    """A referenced ServiceAccount does not exist; the message names it."""


def resource_of(kind: KindInfo[Any]) -> Resource:
    """The REST collection of a Flux kind, at the version fluxd stores and reads."""
    return Resource(kind.group, kind.storage_version, kind.plural, namespaced=kind.namespaced)


class ObjectApi:
    """Everything a reconciler reads from or writes to the API server."""

    def __init__(
        self,
        api: ApiClient,
        *,
        informers: Mapping[str, Informer],
        events: EventRecorder,
    ) -> None:
        self.api = api
        self._informers = informers
        self._events = events
        #: What :meth:`apply` last wrote to each object, and the object (uid, generation)
        #: that made.
        self._applied: dict[tuple[str, str, str], tuple[bytes, str, int]] = {}

    def cached(self, kind: KindInfo[Any], namespace: str, name: str) -> dict[str, Any] | None:
        """The informer's copy of a Flux object, or ``None`` when it does not exist."""
        return self._informers[kind.kind].get(namespace, name)

    def cached_list(self, kind: KindInfo[Any], namespace: str) -> list[dict[str, Any]]:
        """The informer's copies of every object of ``kind`` in ``namespace``."""
        return [
            obj
            for obj in self._informers[kind.kind].list()
            if obj["metadata"].get("namespace") == namespace
        ]

    async def read(self, kind: KindInfo[Any], namespace: str, name: str) -> dict[str, Any] | None:
        """The informer's copy of a Flux object, else the API server's: an object outside
        what this daemon watches (another namespace under ``--watch-namespace``, another
        shard's label) is still found, as Flux finds it. ``None`` when it does not exist."""
        cached = self.cached(kind, namespace, name)
        if cached is not None:
            return cached
        return await client.get(self.api, resource_of(kind), namespace, name, missing_ok=True)

    async def patch_status(
        self, kind: KindInfo[Any], obj: Mapping[str, Any], patch: Mapping[str, Any]
    ) -> None:
        """Merge-patch ``status`` (``None`` values delete fields)."""
        metadata = obj["metadata"]
        updated = await client.patch_status(
            self.api, resource_of(kind), metadata.get("namespace"), metadata["name"], patch
        )
        self._informers[kind.kind].observe(updated)

    async def add_finalizer(
        self, kind: KindInfo[Any], obj: Mapping[str, Any], finalizer: str
    ) -> None:
        """Add ``finalizer``, conditional on the object not having changed meanwhile."""
        await self._set_finalizers(
            kind, obj, [*(obj["metadata"].get("finalizers") or []), finalizer]
        )

    async def remove_finalizer(
        self, kind: KindInfo[Any], obj: Mapping[str, Any], finalizer: str
    ) -> None:
        """Remove ``finalizer``; the API server deletes the object once none is left."""
        kept = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        await self._set_finalizers(kind, obj, kept)

    async def _set_finalizers(
        self, kind: KindInfo[Any], obj: Mapping[str, Any], finalizers: list[str]
    ) -> None:
        metadata = obj["metadata"]
        try:
            updated = await client.patch_metadata(
                self.api,
                resource_of(kind),
                metadata.get("namespace"),
                metadata["name"],
                finalizers=finalizers,
                resource_version=metadata.get("resourceVersion"),
            )
        except client.ApiError as error:
            if error.not_found:
                return
            raise
        self._informers[kind.kind].observe(updated)

    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        """The decoded ``data`` of a Secret; :class:`SecretNotFound` names it if missing."""
        secret = await client.get(self.api, SECRETS, namespace, name, missing_ok=True)
        if secret is None:
            raise SecretNotFound(f"secret '{namespace}/{name}' not found")
        data: dict[str, str] = secret.get("data") or {}
        decoded = {key: base64.b64decode(value) for key, value in data.items()}
        for key, value in (secret.get("stringData") or {}).items():
            decoded[key] = str(value).encode()
        return decoded

    async def namespace_labels(self, name: str) -> dict[str, str] | None:
        """The labels of namespace ``name``; ``None`` when it does not exist."""
        found = await client.get(self.api, NAMESPACES, None, name, missing_ok=True)
        if found is None:
            return None
        return dict(found["metadata"].get("labels") or {})

    async def image_pull_secrets(self, namespace: str, service_account: str) -> list[str]:
        """The names of a ServiceAccount's ``imagePullSecrets``;
        :class:`ServiceAccountNotFound` naming it when it does not exist."""
        found = await client.get(
            self.api, SERVICE_ACCOUNTS, namespace, service_account, missing_ok=True
        )
        if found is None:
            raise ServiceAccountNotFound(
                f"serviceaccount '{namespace}/{service_account}' not found"
            )
        return [
            str(entry["name"])
            for entry in found.get("imagePullSecrets") or []
            if isinstance(entry, Mapping) and entry.get("name")
        ]

    async def config_map_data(self, namespace: str, name: str) -> dict[str, str]:
        """The ``data`` of a ConfigMap; :class:`ConfigMapNotFound` names it if missing."""
        found = await client.get(self.api, CONFIGMAPS, namespace, name, missing_ok=True)
        if found is None:
            raise ConfigMapNotFound(f"configmap '{namespace}/{name}' not found")
        return dict(found.get("data") or {})

    async def apply(
        self, kind: KindInfo[Any], body: Mapping[str, Any], *, field_manager: str
    ) -> bool:
        """Server-side apply a Flux object fluxd generates (a HelmRelease's HelmChart),
        taking over its fields; True when the API server changed it.

        The same body applied again to an object nobody changed since (the same
        generation, and the labels and annotations still there) is not sent: the apply
        would change nothing, and a HelmRelease applies its HelmChart at every reconcile.
        """
        metadata = body["metadata"]
        key = (kind.kind, metadata["namespace"], metadata["name"])
        intent = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
        before = self.cached(kind, metadata["namespace"], metadata["name"])
        if before is not None and self._applied.get(key) == (intent, *_version(before)):
            kept = before.get("metadata") or {}
            if all(
                _contains(kept.get(field) or {}, metadata.get(field) or {})
                for field in ("labels", "annotations")
            ):
                return False
        updated = await client.patch(
            self.api,
            resource_of(kind),
            metadata["namespace"],
            metadata["name"],
            {"apiVersion": kind.api_version, "kind": kind.kind, **body},
            patch_type="apply",
            field_manager=field_manager,
            force=True,
        )
        self._informers[kind.kind].observe(updated)
        self._applied[key] = (intent, *_version(updated))
        old_version = (before or {}).get("metadata", {}).get("resourceVersion")
        return bool(old_version != updated["metadata"].get("resourceVersion"))

    async def delete(self, kind: KindInfo[Any], namespace: str, name: str) -> bool:
        """Delete a Flux object; False when it was already gone."""
        self._applied.pop((kind.kind, namespace, name), None)
        try:
            await client.delete(self.api, resource_of(kind), namespace, name)
        except client.ApiError as error:
            if error.not_found:
                return False
            raise
        return True

    async def record_event(
        self,
        obj: Mapping[str, Any],
        type_: EventType,
        reason: str,
        message: str,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        """Record a Kubernetes Event about ``obj`` (never raises), reported by the Flux
        controller of its kind (``kustomize-controller``...), as Flux reports it."""
        component: str | None = None
        with contextlib.suppress(KeyError):
            component = kind_for(str(obj.get("apiVersion")), str(obj.get("kind"))).controller
        await self._events.emit(
            dict(obj),
            type=type_,
            reason=reason,
            message=message,
            annotations=annotations,
            component=component,
        )


def _version(obj: Mapping[str, Any]) -> tuple[str, int]:
    """Which object, at which generation of its spec."""
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or ""), int(meta.get("generation") or 0)


def _contains(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(found.get(key) == value for key, value in wanted.items())
