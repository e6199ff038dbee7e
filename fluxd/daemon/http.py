"""The daemon's HTTP surface: metrics and probes on one listener, artifacts on another.

Flux's source-controller serves artifacts on its own port (9090) behind the
``source-controller`` Service, and probes and metrics on others; fluxd keeps that split so
a NetworkPolicy can expose artifacts to workloads without exposing metrics.

- ``GET /metrics``: Prometheus text format.
- ``GET /healthz``: the process is alive (the event loop answers).
- ``GET /readyz``: every informer has finished its first list, so reconciles see the
  whole cluster; a standby replica (not leader) is ready too, as in controller-runtime.
- ``GET /<kind>/<namespace>/<name>/<file>``: an artifact of the cache, at the path that
  ``status.artifact.url`` names; a tarball is built on request in a worker thread
  (deterministic, so its digest is ``status.artifact.digest``) and not kept, a one-file
  artifact (an index, a chart) is its file. A HelmRepository's index is also at
  ``.../index.yaml`` (its ``status.url``, as Flux serves it).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread
from aiohttp import web

from fluxd.runtime.metrics import Metrics
from fluxd.sources.cache import ArtifactCache

__all__ = ["artifact_app", "probes_app", "serve"]


def probes_app(metrics: Metrics, *, ready: Callable[[], bool]) -> web.Application:
    """The metrics and health endpoints."""

    async def metrics_handler(_: web.Request) -> web.Response:
        # With thousands of objects the text runs to tens of thousands of lines: render it
        # in a worker thread so a scrape does not stall every reconcile for a second.
        metrics.sample()
        body = await anyio.to_thread.run_sync(metrics.exposition)
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ok")
        return web.Response(status=503, text="informers have not synced yet")

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def artifact_app(cache: ArtifactCache, *, hooks: web.Application | None = None) -> web.Application:
    """Serves artifacts by their ``status.artifact.path``; ``hooks``, Flux's webhook
    receiver (``POST /hook/<digest>``), is mounted at ``/hook``."""

    async def artifact(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        found = cache.by_path(path)
        if found is None:
            raise web.HTTPNotFound(text=f"no artifact at {path!r}: it may have been replaced")
        content = await anyio.to_thread.run_sync(found.content)
        gzipped = path.endswith((".tar.gz", ".tgz"))
        return web.Response(
            body=content,
            content_type="application/gzip" if gzipped else "application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{path.rsplit("/", 1)[-1]}"'},
        )

    app = web.Application()
    if hooks is not None:
        app.add_subapp("/hook", hooks)
    app.router.add_get("/{path:.+}", artifact)
    return app


async def serve(app: web.Application, address: str) -> web.AppRunner:
    """Start ``app`` on ``host:port`` (``:8080`` means all interfaces); caller cleans up."""
    host, _, port = address.rpartition(":")
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host or None, int(port))
    await site.start()
    return runner
