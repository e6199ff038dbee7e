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
from tests.loopback import serve_on_loopback

__all__ = ["ORIGIN", "ArtifactServer", "serve_artifacts"]

#: The origin revision every publication carries in its metadata.
ORIGIN = "main@sha1:0123456789abcdef0123456789abcdef01234567"


class ArtifactServer:
    """Tarballs by file name over HTTP (404 for any other name), and the names asked."""

    def __init__(self) -> None:
        self.tarballs: dict[str, bytes] = {}
        self.requested: list[str] = []
        self.base = ""

    async def serve(self, request: web.Request) -> web.Response:
        self.requested.append(request.match_info["name"])
        body = self.tarballs.get(request.match_info["name"])
        return web.Response(status=404) if body is None else web.Response(body=body)

    def status_artifact(
        self,
        name: str,
        tarball: bytes,
        *,
        producer: str = "producer",
        digest: str = "",
        revision: str = "",
    ) -> dict[str, object]:
        """Serve ``tarball`` as ``name``; the ``status.artifact`` that publishes it
        (revision ``latest@<digest>`` unless given; ``digest`` overrides the true one)."""
        self.tarballs[name] = tarball
        true_digest = "sha256:" + hashlib.sha256(tarball).hexdigest()
        return {
            "path": f"{producer}/{name}",
            "url": f"{self.base}/{name}",
            "revision": revision or f"latest@{true_digest}",
            "digest": digest or true_digest,
            "size": len(tarball),
            "lastUpdateTime": "2026-01-01T00:00:00Z",
            "metadata": {"org.opencontainers.image.revision": ORIGIN},
        }

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
        ``producer`` (as :meth:`status_artifact`); the revision published."""
        artifact = self.status_artifact(
            name, tarball, producer=producer, digest=digest, revision=revision
        )
        await client.patch_status(
            api, resource_of(EXTERNAL_ARTIFACT), namespace, producer, {"artifact": artifact}
        )
        return str(artifact["revision"])


@asynccontextmanager
async def serve_artifacts() -> AsyncIterator[ArtifactServer]:
    server = ArtifactServer()
    app = web.Application()
    app.router.add_get("/{name}", server.serve)
    async with serve_on_loopback(app) as address:
        server.base = f"http://{address}"
        yield server
