"""The status UI's HTTP server: static pages, a JSON API over the informer caches, a
server-sent event stream, and the actions a user may take.

Routes (every ``/api`` answer is JSON with ``Cache-Control: no-store``):

- ``GET /`` and ``GET /static/<file>``: the files of ``fluxd/ui/static`` only, by name
  (no directories, no listing), each with an ``ETag`` and revalidated on every load
  (``no-cache``: a 304 when unchanged), so an upgrade never mixes old and new modules;
- ``GET /api/objects``, ``/api/objects/{kind}/{namespace}/{name}``, ``/api/graph``:
  computed by :mod:`fluxd.ui.model` from the informers' stores, no API request;
- ``GET /api/objects/.../health``: the kstatus health of the inventory, read live from
  the API server (at most :data:`HEALTH_LIMIT` objects, a few at a time);
- ``GET /api/stream``: ``changed``/``deleted`` events from :class:`~fluxd.ui.hub.UiHub`;
- ``POST /api/actions/{action}/{kind}/{namespace}/{name}``: the annotation or spec patch
  ``flux reconcile``/``suspend``/``resume`` make, only when actions are enabled.

With ``auth``, every ``/api`` request needs a bearer token the cluster accepts
(TokenReview), and each action a SubjectAccessReview allowing ``patch`` on the object.
Without it, anyone who reaches the port sees the overview, and enabled actions run with
fluxd's own rights: keep actions off, or the port private, unless auth is on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from fluxd.api import KindInfo
from fluxd.apply import ApplyError, RESTMapper
from fluxd.apply.health import compute_status
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.informer import Informer
from fluxd.kube.objects import resource_of
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.metrics import LastReconcile, Metrics
from fluxd.ui import model
from fluxd.ui.access import AccessReviewer, User
from fluxd.ui.events import RecentEvents
from fluxd.ui.hub import UiHub

__all__ = ["ACTIONS", "HEALTH_LIMIT", "STATIC_DIR", "ui_app"]

STATIC_DIR = Path(__file__).parent / "static"
#: Inventory entries whose live health one request reads, at most.
HEALTH_LIMIT = 200
ACTIONS = ("reconcile", "reconcile-source", "suspend", "resume")
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"

_STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_USER = web.RequestKey("user", User)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class _Static:
    """The package's static files, read when they change (an ETag per content)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._cache: dict[str, tuple[int, int, bytes, str]] = {}

    def read(self, name: str) -> tuple[bytes, str] | None:
        if not _STATIC_NAME.fullmatch(name):
            return None
        path = self._root / name
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        cached = self._cache.get(name)
        if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2], cached[3]
        content = path.read_bytes()
        etag = f'"{hashlib.sha256(content).hexdigest()[:16]}"'
        self._cache[name] = (stat.st_mtime_ns, stat.st_size, content, etag)
        return content, etag

    def response(self, request: web.Request, name: str, cache_control: str) -> web.Response:
        found = self.read(name)
        if found is None:
            raise web.HTTPNotFound(text=f"no file {name!r} in the UI")
        content, etag = found
        headers = {"ETag": etag, "Cache-Control": cache_control}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        suffix = Path(name).suffix
        return web.Response(
            body=content,
            headers=headers,
            content_type=_CONTENT_TYPES.get(suffix, "application/octet-stream"),
            charset="utf-8" if suffix in (".html", ".js", ".css", ".svg", ".json") else None,
        )


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if request.path == "/api/stream":
        return request.query.get("token", "")
    return ""


def ui_app(
    *,
    api: ApiClient,
    kinds: Sequence[KindInfo[Any]],
    informers: Mapping[str, Informer],
    metrics: Metrics,
    events: RecentEvents,
    hub: UiHub,
    auth: bool = False,
    actions: bool = False,
    keepalive: float = 15.0,
) -> web.Application:
    """The UI application over the daemon's caches; ``kinds`` are the reconciled ones."""
    by_kind = {kind.kind: kind for kind in kinds}
    static = _Static(STATIC_DIR)
    reviewer = AccessReviewer(api)
    mapper = RESTMapper(api)

    def all_objects() -> list[tuple[str, dict[str, Any]]]:
        return [
            (kind, obj) for kind in by_kind if kind in informers for obj in informers[kind].list()
        ]

    def last_of(kind: str, obj: Mapping[str, Any]) -> LastReconcile | None:
        metadata = obj.get("metadata") or {}
        return metrics.last_reconcile(
            ObjectKey(kind, str(metadata.get("namespace") or ""), str(metadata.get("name")))
        )

    def find(request: web.Request) -> tuple[KindInfo[Any], dict[str, Any]]:
        kind_name = request.match_info["kind"]
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        kind = by_kind.get(kind_name)
        informer = informers.get(kind_name)
        if kind is None or informer is None:
            raise web.HTTPNotFound(text=f"{kind_name} is not a kind fluxd reconciles")
        obj = informer.get(namespace, name)
        if obj is None:
            raise web.HTTPNotFound(text=f"{kind_name} {namespace}/{name} not found")
        return kind, obj

    @web.middleware
    async def api_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        try:
            if auth:
                token = _bearer(request)
                if not token:
                    return _no_store(_error(401, "a bearer token is needed (Authorization)"))
                try:
                    user = await reviewer.authenticate(token)
                except (client.ApiError, aiohttp.ClientError, TimeoutError) as error:
                    return _no_store(_error(503, f"cannot review the token: {error}"))
                if user is None:
                    return _no_store(_error(401, "the token is not accepted by the cluster"))
                request[_USER] = user
            response = await handler(request)
        except web.HTTPException as error:
            response = _error(error.status, error.text or error.reason)
        return _no_store(response)

    async def index(request: web.Request) -> web.Response:
        return static.response(request, "index.html", "no-cache")

    async def asset(request: web.Request) -> web.Response:
        # Revalidated on every load (a 304 by ETag): the modules import each other by
        # plain name, so after an upgrade a cached old one would meet a new one.
        return static.response(request, request.match_info["name"], "no-cache")

    async def objects(_: web.Request) -> web.Response:
        rows = [model.row(kind, obj, last_of(kind, obj)) for kind, obj in all_objects()]
        rows.sort(key=lambda line: (line["kind"], line["namespace"], line["name"]))
        return web.json_response(
            {"objects": rows, "kinds": model.kind_counts(rows), "actions": actions}
        )

    async def object_detail(request: web.Request) -> web.Response:
        kind, obj = find(request)
        metadata = obj["metadata"]
        recent = events.of(kind.kind, metadata.get("namespace", ""), metadata["name"])
        page = model.detail(
            kind.kind, obj, all_objects(), last=last_of(kind.kind, obj), events=recent
        )
        return web.json_response(page)

    async def health(request: web.Request) -> web.Response:
        _, obj = find(request)
        entries = model.inventory(obj)[:HEALTH_LIMIT]
        limit = asyncio.Semaphore(8)

        async def read(entry: Mapping[str, Any]) -> dict[str, Any]:
            async with limit:
                verdict, message = await _live_health(api, mapper, entry)
            return {"id": entry["id"], "health": verdict, "message": message}

        found = await asyncio.gather(*(read(entry) for entry in entries))
        return web.json_response({"inventory": list(found)})

    async def graph(_: web.Request) -> web.Response:
        return web.json_response(model.graph(all_objects()))

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        with hub.subscribe() as subscription:
            await response.prepare(request)
            try:
                await response.write(b": connected\n\n")
                while True:
                    try:
                        message = await asyncio.wait_for(subscription.queue.get(), keepalive)
                    except TimeoutError:
                        await response.write(b": keepalive\n\n")
                        continue
                    if message is None:
                        break
                    name, data = message
                    await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            except ConnectionResetError:
                pass  # the browser went away: nothing left to send
        return response

    async def action(request: web.Request) -> web.Response:
        verb = request.match_info["action"]
        if verb not in ACTIONS:
            raise web.HTTPNotFound(text=f"no action {verb!r}; actions are {', '.join(ACTIONS)}")
        if not actions:
            return _error(403, "actions are disabled")
        kind, obj = find(request)
        metadata = obj["metadata"]
        target = (kind, str(metadata.get("namespace") or ""), str(metadata["name"]))
        targets = [target]
        if verb == "reconcile-source":
            source = model.source_of(kind.kind, obj)
            if source is None:
                raise web.HTTPBadRequest(text=f"{kind.kind} {target[1]}/{target[2]} has no source")
            source_kind_name, source_namespace, source_name = source.split("/", 2)
            source_kind = by_kind.get(source_kind_name)
            if source_kind is None:
                raise web.HTTPBadRequest(
                    text=f"the source {source} is not a kind fluxd reconciles; reconcile it "
                    "where it is produced"
                )
            targets.insert(0, (source_kind, source_namespace, source_name))
        user = request.get(_USER)
        if auth and user is not None:
            for each_kind, namespace, name in targets:
                resource = resource_of(each_kind)
                try:
                    allowed = await reviewer.allowed(
                        user, verb="patch", resource=resource, namespace=namespace, name=name
                    )
                except (client.ApiError, aiohttp.ClientError, TimeoutError) as error:
                    return _error(503, f"cannot review the access of {user.username}: {error}")
                if not allowed:
                    return _error(
                        403,
                        f'user "{user.username}" cannot patch resource "{resource.plural}" '
                        f'in API group "{resource.group}" in the namespace "{namespace}" '
                        f"({each_kind.kind} {name})",
                    )
        now = datetime.now(UTC).isoformat()
        for index, (each_kind, namespace, name) in enumerate(targets):
            body = _action_patch(verb if index == len(targets) - 1 else "reconcile", now)
            try:
                await client.patch(api, resource_of(each_kind), namespace, name, body)
            except (client.ApiError, aiohttp.ClientError, TimeoutError) as error:
                status = error.status if isinstance(error, client.ApiError) else 503
                return _error(status, f"{each_kind.kind} {namespace}/{name}: {error}")
        return web.json_response({"ok": True})

    async def end_streams(_: web.Application) -> None:
        hub.close()

    app = web.Application(middlewares=[api_middleware])
    app.on_shutdown.append(end_streams)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", asset)
    app.router.add_get("/api/objects", objects)
    app.router.add_get("/api/objects/{kind}/{namespace}/{name}", object_detail)
    app.router.add_get("/api/objects/{kind}/{namespace}/{name}/health", health)
    app.router.add_get("/api/graph", graph)
    app.router.add_get("/api/stream", stream)
    app.router.add_post("/api/actions/{action}/{kind}/{namespace}/{name}", action)
    return app


def _no_store(response: web.StreamResponse) -> web.StreamResponse:
    if not response.prepared:
        response.headers["Cache-Control"] = "no-store"
    return response


def _action_patch(verb: str, now: str) -> dict[str, Any]:
    """The patch ``flux reconcile`` (``requestedAt``), ``flux suspend`` and ``flux resume``
    (unsuspend and request a reconcile) make."""
    requested = {"metadata": {"annotations": {REQUESTED_AT: now}}}
    if verb == "suspend":
        return {"spec": {"suspend": True}}
    if verb == "resume":
        return {**requested, "spec": {"suspend": False}}
    return requested


async def _live_health(
    api: ApiClient, mapper: RESTMapper, entry: Mapping[str, Any]
) -> tuple[str, str]:
    """kstatus' verdict on one inventory entry, read from the API server now."""
    group, version = str(entry.get("group") or ""), str(entry.get("version") or "")
    api_version = f"{group}/{version}" if group else version
    try:
        resource = await mapper.resource_for(api_version or "v1", str(entry["kind"]))
        live = await client.get(
            api, resource, entry.get("namespace") or None, str(entry["name"]), missing_ok=True
        )
    except (ApplyError, client.ApiError, aiohttp.ClientError, TimeoutError) as error:
        return "Unknown", f"reading it failed: {error}"
    if live is None:
        return "NotFound", "Resource not found"
    verdict = compute_status(live)
    status = str(verdict.status)
    if status not in ("Current", "InProgress", "Failed", "NotFound"):
        return "Unknown", f"{status}: {verdict.message}"
    return status, verdict.message
