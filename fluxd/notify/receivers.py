"""Flux's webhook receiver: ``POST /hook/<digest>`` asks the Receiver's resources to
reconcile now.

A Receiver's ``status.webhookPath`` (``/hook/`` + sha256 of token + name + namespace,
written by its reconciler) is the only way in: a request is matched against the
Receivers in the informer's store by that path, so an unknown path is a 404 and
nothing is read from the API server for it. Then, as Flux's receiver server:

- a path called more often than its token bucket allows answers 429 with
  ``Retry-After``, before anything else is done (:mod:`~fluxd.notify.ratelimit`; Flux
  has no such limit);
- a suspended Receiver, or one that is not Ready, answers 503;
- bodies over 3 MiB answer 413 (Flux's limit);
- the request is authenticated by ``spec.type`` with the Secret's ``token``:
  ``generic`` (the secret path is the credential), ``generic-hmac`` (``X-Signature``,
  ``sha1=``/``sha256=``/``sha512=`` HMAC of the body), ``github``
  (``X-Hub-Signature-256``, else ``X-Hub-Signature``; ``spec.events`` filters
  ``X-GitHub-Event``), ``gitlab`` (``X-Gitlab-Token``; ``spec.events`` filters
  ``X-Gitlab-Event``), ``bitbucket`` (``X-Hub-Signature``; ``X-Event-Key``),
  ``cdevents`` (the path is the credential; the body must be a CDEvent, see
  :mod:`~fluxd.notify.cdevents`; ``spec.events`` filters ``Ce-Type``),
  ``harbor`` (``Authorization`` equals the token, verbatim), ``nexus``
  (``X-Nexus-Webhook-Signature``, the hex HMAC-SHA1 of the body, and a body that
  decodes), ``quay``, ``dockerhub``, ``acr`` (the path is the credential; the body must
  decode as the registry's push payload, see :mod:`~fluxd.notify.payloads`),
  ``generic-oidc`` (an ``Authorization: Bearer`` JWT from one of ``spec.oidcProviders``,
  see :mod:`~fluxd.notify.oidc`), ``gcr`` (a Google Pub/Sub push: an ``Authorization:
  Bearer`` ID token Google signed for the Secret's ``email`` and ``audience``, see
  :mod:`~fluxd.notify.google_idtoken`, then a body whose ``message.data`` is the base64
  JSON of a registry event, which the filters see as ``req``; a Secret lacking either
  key answers 503). A bad
  signature or token answers 401 (Flux answers 400), an event type not in
  ``spec.events`` or a payload that does not decode 400; nothing is triggered by a
  rejected request;
- each object of the ``spec.resources`` entries (``name: '*'`` with ``matchLabels``)
  that ``resourceFilter`` and the entry's ``filter`` accept (see
  :mod:`~fluxd.notify.resource_filter`) gets ``reconcile.fluxcd.io/requestedAt``, which
  wakes it at once; 200 when all were annotated, 500 (naming the failures, such as a
  filter that failed on an object, which is then left alone) otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from fluxd.api import (
    RECEIVER,
    KindInfo,
    ReceiverResource,
    ReceiverSpec,
    SpecError,
    kind_for,
    lookup,
)
from fluxd.kube import client
from fluxd.kube.informer import Informer
from fluxd.kube.objects import ObjectApi, SecretNotFound, resource_of
from fluxd.notify import cdevents, google_idtoken, oidc, payloads
from fluxd.notify.ratelimit import PathRateLimiter
from fluxd.notify.resource_filter import FilterError, ResourceFilters, request_document
from fluxd.runtime import conditions

__all__ = [
    "HOOK_PREFIX",
    "MAX_BODY_BYTES",
    "SUPPORTED_RECEIVER_TYPES",
    "ReceiverServer",
    "webhook_path",
]

HOOK_PREFIX = "/hook/"
MAX_BODY_BYTES = 3 * 1024 * 1024
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
SUPPORTED_RECEIVER_TYPES = frozenset(
    {
        "generic",
        "generic-hmac",
        "github",
        "gitlab",
        "bitbucket",
        "cdevents",
        "harbor",
        "nexus",
        "quay",
        "dockerhub",
        "acr",
        "generic-oidc",
        "gcr",
    }
)
#: The registries whose push payload must decode, the name Flux's messages give them,
#: and whether Flux decodes the whole body (else only its first JSON value).
_REGISTRY_PAYLOADS = {
    "quay": ("Quay", payloads.QUAY, False),
    "dockerhub": ("DockerHub", payloads.DOCKERHUB, False),
    "acr": ("ACR", payloads.ACR, False),
    "nexus": ("Nexus", payloads.NEXUS, True),
}
#: A Pub/Sub push as Flux decodes it, and the registry event its ``message.data`` holds.
_PUBSUB_PUSH: payloads.Shape = {
    "message": {"data": str, "messageId": str, "publishTime": str, "subscription": str}
}
_GCR_EVENT: payloads.Shape = {"action": str, "digest": str, "tag": str}
#: The form Go's ``time.Time`` reads from JSON (RFC 3339), for ``message.publishTime``.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}

log = structlog.stdlib.get_logger(__name__)


def webhook_path(token: str, name: str, namespace: str) -> str:
    """The path a Receiver listens at, as Flux derives it."""
    return HOOK_PREFIX + hashlib.sha256((token + name + namespace).encode()).hexdigest()


class Rejected(Exception):
    """The request is refused with ``status``; the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def signature_valid(header: str, body: bytes, key: bytes) -> bool:
    """Whether ``header`` (``<algorithm>=<hex>``) is the HMAC of ``body`` with ``key``."""
    algorithm, _, signature = header.partition("=")
    digest = _DIGESTS.get(algorithm)
    if digest is None or not signature:
        return False
    expected = hmac.new(key, body, digest).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def _allowed(spec: ReceiverSpec, event: str, what: str) -> None:
    if spec.events and not any(event.lower() == e.lower() for e in spec.events):
        raise Rejected(400, f"the {what} event {event!r} is not authorised")


def authenticate(spec: ReceiverSpec, headers: Mapping[str, str], body: bytes, token: str) -> str:
    """Check the request against the Receiver's type; returns the event type it names
    (for registries, what their payload names; empty for generic and harbor receivers).
    :class:`Rejected` with 401 or 400 otherwise."""
    key = token.encode()
    if spec.type == "generic":
        return ""
    if spec.type == "generic-hmac":
        if not signature_valid(headers.get("X-Signature", ""), body, key):
            raise Rejected(401, "unable to validate HMAC signature (X-Signature)")
        return ""
    if spec.type in ("github", "bitbucket"):
        header = headers.get("X-Hub-Signature-256") or headers.get("X-Hub-Signature", "")
        if spec.type == "bitbucket":
            header = headers.get("X-Hub-Signature", "")
        if not signature_valid(header, body, key):
            raise Rejected(401, f"the {spec.type} signature header is invalid")
        if spec.type == "github":
            event = headers.get("X-GitHub-Event", "")
            _allowed(spec, event, "GitHub")
        else:
            event = headers.get("X-Event-Key", "")
            _allowed(spec, event, "Bitbucket server")
        return event
    if spec.type == "gitlab":
        if not hmac.compare_digest(headers.get("X-Gitlab-Token", "").encode(), key):
            raise Rejected(401, "the X-Gitlab-Token header value does not match the receiver token")
        event = headers.get("X-Gitlab-Event", "")
        _allowed(spec, event, "GitLab")
        return event
    if spec.type == "cdevents":
        try:
            cdevents.event_type(body)
        except cdevents.InvalidCDEvent as error:
            raise Rejected(400, f"unable to validate CDEvent event: {error}") from error
        event = headers.get("Ce-Type", "")
        _allowed(spec, event, "CDEvent")
        return event
    if spec.type == "harbor":
        if not hmac.compare_digest(headers.get("Authorization", "").encode(), key):
            raise Rejected(
                401, "the Harbor Authorization header value does not match the receiver token"
            )
        return ""
    if spec.type == "nexus":
        _check_nexus_signature(headers.get("X-Nexus-Webhook-Signature", ""), body, key)
    if spec.type in _REGISTRY_PAYLOADS:
        return _registry_push(spec.type, body)
    raise Rejected(503, f"receiver type {spec.type!r} is not supported by fluxd")


def _check_nexus_signature(signature: str, body: bytes, key: bytes) -> None:
    if not signature:
        raise Rejected(401, "the Nexus signature is missing from header")
    # Nexus sends the lower-case hex digest; Flux compares it byte for byte.
    expected = hmac.new(key, body, hashlib.sha1).hexdigest()
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise Rejected(401, "invalid Nexus signature")


def _registry_push(receiver_type: str, body: bytes) -> str:
    """What a registry's push payload names (repository, tag), once it decodes."""
    registry, shape, whole = _REGISTRY_PAYLOADS[receiver_type]
    try:
        found = payloads.decode(body, shape, whole=whole)
    except payloads.PayloadError as error:
        raise Rejected(400, f"cannot decode {registry} webhook payload: {error}") from error
    return " ".join(f"{name}={value}" for name, value in sorted(found.items()))


def _gcr_push(body: bytes) -> dict[str, str]:
    """The registry event inside a Pub/Sub push: its ``action``, ``digest`` and ``tag``."""
    try:
        push = payloads.decode(body, _PUBSUB_PUSH, whole=False)
    except payloads.PayloadError as error:
        raise Rejected(400, f"cannot decode GCR webhook payload: {error}") from error
    published = push.get("message.publishTime")
    if published is not None and not _RFC3339.fullmatch(published):
        raise Rejected(
            400,
            f"cannot decode GCR webhook payload: message.publishTime {published!r} "
            "is not an RFC 3339 time",
        )
    try:
        event = base64.b64decode(push.get("message.data", ""), validate=True)
    except (binascii.Error, ValueError):
        event = b""  # Flux ignores a data field that is not base64; the event then fails
    try:
        found = payloads.decode(event, _GCR_EVENT, whole=True)
    except payloads.PayloadError as error:
        raise Rejected(400, f"cannot decode GCR webhook body: {error}") from error
    return {name: found.get(name, "") for name in _GCR_EVENT}


def _requested_at() -> str:
    """A fresh annotation value, in the form Go's ``metav1.Now().String()`` prints."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond:06d}000 +0000 UTC"


def _kind_of(resource: ReceiverResource) -> KindInfo[Any]:
    try:
        if resource.api_version:
            return kind_for(resource.api_version, resource.kind)
        return lookup(resource.kind)
    except KeyError as error:
        raise LookupError(
            f"apiVersion {resource.api_version or ''} kind {resource.kind}: {error}"
        ) from error


class ReceiverServer:
    """Answers webhook requests for the Receivers in the informer store."""

    def __init__(self, *, objects: ObjectApi, informers: Mapping[str, Informer]) -> None:
        self._objects = objects
        self._informers = informers
        self._limiter = PathRateLimiter()
        self._google_keys = google_idtoken.GoogleKeys()

    def app(self) -> web.Application:
        """The routes, to mount at ``/hook`` on an HTTP listener."""
        app = web.Application()
        app.router.add_post("/{digest}", self.handle)
        return app

    def _find(self, path: str) -> dict[str, Any] | None:
        receivers = self._informers.get(RECEIVER.kind)
        if receivers is None:
            return None
        for receiver in receivers.list():
            if (receiver.get("status") or {}).get("webhookPath") == path:
                return receiver
        return None

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp handler of ``POST /hook/{digest}``."""
        receiver = self._find(request.path)
        if receiver is None:
            return web.Response(status=404, text=f"no receiver at {request.path}")
        meta = receiver["metadata"]
        where = f"Receiver {meta.get('namespace')}/{meta['name']}"
        if not self._limiter.allow(request.path):
            retry_after = self._limiter.retry_after(request.path)
            log.warning("webhook rate limited", receiver=where, retry_after=retry_after)
            return web.Response(
                status=429,
                headers={"Retry-After": str(retry_after)},
                text=f"{where}: too many requests, retry in {retry_after}s",
            )
        try:
            await self._accept(receiver, request)
        except Rejected as rejected:
            log.warning(
                "webhook rejected", receiver=where, status=rejected.status, error=str(rejected)
            )
            return web.Response(status=rejected.status, text=f"{where}: {rejected}")
        return web.Response(text=f"{where}: reconciliation requested")

    async def _accept(self, receiver: dict[str, Any], request: web.Request) -> None:
        try:
            spec: ReceiverSpec = RECEIVER.parse_spec(receiver)
        except SpecError as error:
            raise Rejected(503, f"receiver is not ready: {error}") from error
        if spec.suspend:
            raise Rejected(503, "receiver is suspended")
        if not conditions.is_ready(receiver.get("status") or {}):
            raise Rejected(503, "receiver is not ready")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise Rejected(413, f"request body exceeds the maximum size of {MAX_BODY_BYTES} bytes")
        body = await request.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise Rejected(413, f"request body exceeds the maximum size of {MAX_BODY_BYTES} bytes")
        namespace = receiver["metadata"].get("namespace", "")
        token = ""
        data: dict[str, bytes] = {}
        if spec.secret_ref is not None:
            try:
                data = await self._objects.secret_data(namespace, spec.secret_ref.name)
            except SecretNotFound as error:
                raise Rejected(503, f"unable to read secret: {error}") from error
            if "token" not in data:
                raise Rejected(
                    503,
                    f"invalid '{namespace}/{spec.secret_ref.name}' secret data: "
                    "required field 'token'",
                )
            token = data["token"].decode()
        claims = None
        if spec.type == "generic-oidc":
            try:
                claims = await oidc.verify_bearer(
                    spec.oidc_providers, request.headers.get("Authorization", "")
                )
            except oidc.TokenRefused as refused:
                raise Rejected(401, str(refused)) from refused
            event = ""
        elif spec.type == "gcr":
            secret = f"{namespace}/{spec.secret_ref.name}" if spec.secret_ref else namespace
            gcr_event = await self._authenticate_gcr(request, secret, data, body)
            event = " ".join(f"{name}={value}" for name, value in gcr_event.items())
            # As in Flux, the filters' ``req`` is the unwrapped event, not the push.
            body = json.dumps(gcr_event).encode()
        else:
            event = authenticate(spec, request.headers, body, token)
        filters = _filters(spec, request.headers.get("Content-Type", ""), body, claims)
        log.info(
            "handling webhook",
            receiver=f"{namespace}/{receiver['metadata']['name']}",
            webhook_event=event,
        )
        failures = []
        for index, resource in enumerate(spec.resources):
            try:
                failures += await self._request_reconciliation(resource, namespace, filters, index)
            except (LookupError, client.ApiError) as error:
                failures.append(f"{resource.kind}/{resource.name}: {error}")
        if failures:
            raise Rejected(500, "unable to request reconciliation of " + "; ".join(failures))

    async def _authenticate_gcr(
        self, request: web.Request, secret: str, data: Mapping[str, bytes], body: bytes
    ) -> dict[str, str]:
        """Accept a Pub/Sub push whose ID token names the Secret's ``email`` and
        ``audience``; the registry event it carries."""
        settings = {}
        for key in ("email", "audience"):
            settings[key] = data.get(key, b"").decode(errors="replace")
            if not settings[key]:
                raise Rejected(
                    503,
                    f"invalid '{secret}' secret data: required field '{key}' for GCR receiver",
                )
        try:
            await google_idtoken.verify(
                request.headers.get("Authorization", ""),
                email=settings["email"],
                audience=settings["audience"],
                keys=self._google_keys,
            )
        except google_idtoken.TokenRefused as refused:
            raise Rejected(401, f"cannot authenticate GCR request: {refused}") from refused
        return _gcr_push(body)

    async def _request_reconciliation(
        self,
        resource: ReceiverResource,
        default_namespace: str,
        filters: ResourceFilters | None,
        index: int,
    ) -> list[str]:
        """Annotate the objects of ``resource`` its filters accept; the failures of
        filters that could not decide on an object."""
        namespace = resource.namespace or default_namespace
        kind = _kind_of(resource)
        collection = resource_of(kind)
        api = self._objects.api
        if resource.name == "*":
            if not resource.match_labels:
                raise LookupError("matchLabels field not set when using wildcard '*' as name")
            selector = ",".join(f"{k}={v}" for k, v in sorted(resource.match_labels.items()))
            listed = await client.list_page(api, collection, namespace, label_selector=selector)
            found = [
                item | {"apiVersion": kind.api_version, "kind": kind.kind}
                for item in listed.get("items", [])
            ]
            if not found:
                log.warning(
                    "no resources match the receiver's labels", kind=kind.kind, selector=selector
                )
        elif filters is not None and filters.applies_to(index):
            found = [await client.get(api, collection, namespace, resource.name)]
        else:
            found = [{"metadata": {"name": resource.name}}]
        failures = []
        names = []
        for obj in found:
            name = obj["metadata"]["name"]
            try:
                accepted = filters is None or filters.accepts(index, obj)
            except FilterError as error:
                log.error("resource filter failed", kind=kind.kind, name=name, error=str(error))
                failures.append(f"{kind.kind}/{name}: {error}")
                continue
            if accepted:
                names.append(name)
            else:
                log.info("resource not annotated: filtered out", kind=kind.kind, name=name)
        stamp = _requested_at()
        for name in names:
            await client.patch(
                api,
                collection,
                namespace,
                name,
                {"metadata": {"annotations": {REQUESTED_AT: stamp}}},
            )
            log.info("resource annotated", kind=kind.kind, namespace=namespace, name=name)
        return failures


def _filters(
    spec: ReceiverSpec, content_type: str, body: bytes, claims: Mapping[str, Any] | None
) -> ResourceFilters | None:
    """The Receiver's compiled filters for this request; None when it has none."""
    if not spec.resource_filter and not any(r.filter for r in spec.resources):
        return None
    try:
        return ResourceFilters(spec, request=request_document(content_type, body), claims=claims)
    except (FilterError, ValueError) as error:
        raise Rejected(500, f"unable to create resource filters: {error}") from error
