"""A third-party ExternalArtifact producer, played by the tests.

It serves tarballs over HTTP on 127.0.0.1 and publishes them in an ExternalArtifact's
``status.artifact``, as a controller of its own would; Kustomization and HelmRelease
tests consume what it publishes.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from kubernetes_asyncio.client import ApiClient

from fluxd.api import EXTERNAL_ARTIFACT
from fluxd.kube import client
from fluxd.kube.objects import resource_of

__all__ = ["ORIGIN", "ArtifactServer", "serve_artifacts"]

#: The origin revision every publication carries in its metadata.
ORIGIN = "main@sha1:0123456789abcdef0123456789abcdef01234567"


class ArtifactServer:
    """Tarballs by file name over HTTP (404 for any other name)."""

    def __init__(self) -> None:
        self.tarballs: dict[str, bytes] = {}
        self.base = ""

    async def serve(self, request: web.Request) -> web.Response:
        body = self.tarballs.get(request.match_info["name"])
        return web.Response(status=404) if body is None else web.Response(body=body)

    async def publish(
        self,
        api: ApiClient,
        namespace: str,
        name: str,
        tarball: bytes,
        *,
        producer: str = "producer",
        digest: str = "",
        revision: str = "",
    ) -> str:
        """Serve ``tarball`` as ``name`` and publish it in the ExternalArtifact
        ``producer``; the revision published (``latest@<digest>`` unless given;
        ``digest`` overrides the true digest)."""
        self.tarballs[name] = tarball
        true_digest = "sha256:" + hashlib.sha256(tarball).hexdigest()
        revision = revision or f"latest@{true_digest}"
        artifact = {
            "path": f"{producer}/{name}",
            "url": f"{self.base}/{name}",
            "revision": revision,
            "digest": digest or true_digest,
            "size": len(tarball),
            "lastUpdateTime": "2026-01-01T00:00:00Z",
            "metadata": {"org.opencontainers.image.revision": ORIGIN},
        }
        await client.patch_status(
            api, resource_of(EXTERNAL_ARTIFACT), namespace, producer, {"artifact": artifact}
        )
        return revision


@asynccontextmanager
async def serve_artifacts() -> AsyncIterator[ArtifactServer]:
    server = ArtifactServer()
    app = web.Application()
    app.router.add_get("/{name}", server.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    server.base = f"http://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()
