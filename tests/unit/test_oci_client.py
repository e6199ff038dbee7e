"""The registry client against a small distribution server on loopback: tag pages
followed through ``Link``, the bearer and basic challenges, image indexes, and answers
that must not be trusted (wrong digest, too large, errors)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from fluxd.sources import oci
from tests.loopback import serve_on_loopback

USER, PASSWORD = "me", "secret"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
TOKEN = "t0ken"


@dataclass
class Server:
    host: str
    auth: str  # "none" | "bearer" | "basic"
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    token_scopes: list[str] = field(default_factory=list)
    head_digest: bool = True

    def repository(self) -> oci.Repository:
        return oci.Repository(host=self.host, name="org/app", insecure=True)


def _authorized(server: Server, request: web.Request) -> web.Response | None:
    given = request.headers.get("Authorization")
    if server.auth == "bearer" and given != f"Bearer {TOKEN}":
        realm = f"http://{server.host}/token"
        challenge = f'Bearer realm="{realm}",service="test",scope="repository:org/app:pull"'
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})
    if server.auth == "basic" and given != BASIC:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    return None


def _app(server: Server) -> web.Application:
    async def token(request: web.Request) -> web.Response:
        server.token_scopes.append(request.query.get("scope", ""))
        if request.headers.get("Authorization") != BASIC:
            return web.json_response({"errors": [{"code": "DENIED", "message": "no"}]}, status=401)
        return web.json_response({"token": TOKEN})

    async def manifest(request: web.Request) -> web.Response:
        denied = _authorized(server, request)
        if denied:
            return denied
        found = server.manifests.get(request.match_info["ref"])
        if found is None:
            body = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
            return web.json_response(body, status=404)
        data, media_type = found
        headers = {"Content-Type": media_type}
        if server.head_digest or request.method != "HEAD":
            headers["Docker-Content-Digest"] = f"sha256:{hashlib.sha256(data).hexdigest()}"
        return web.Response(body=data, headers=headers)

    async def blob(request: web.Request) -> web.Response:
        denied = _authorized(server, request)
        if denied:
            return denied
        data = server.blobs.get(request.match_info["digest"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def tags(request: web.Request) -> web.Response:
        denied = _authorized(server, request)
        if denied:
            return denied
        start = int(request.query.get("last", "0"))
        page = server.tags[start : start + 2]
        headers = {}
        if start + 2 < len(server.tags):
            headers["Link"] = f'</v2/org/app/tags/list?n=2&last={start + 2}>; rel="next"'
        return web.json_response({"name": "org/app", "tags": page}, headers=headers)

    app = web.Application()
    app.router.add_get("/token", token)
    app.router.add_route("*", "/v2/org/app/manifests/{ref}", manifest)
    app.router.add_get("/v2/org/app/blobs/{digest}", blob)
    app.router.add_get("/v2/org/app/tags/list", tags)
    return app


async def _serve(auth: str) -> AsyncIterator[Server]:
    server = Server(host="", auth=auth)
    async with serve_on_loopback(_app(server)) as address:
        server.host = address
        yield server


@pytest.fixture
async def open_registry() -> AsyncIterator[Server]:
    async for server in _serve("none"):
        yield server


@pytest.fixture
async def token_registry() -> AsyncIterator[Server]:
    async for server in _serve("bearer"):
        yield server


@pytest.fixture
async def basic_registry() -> AsyncIterator[Server]:
    async for server in _serve("basic"):
        yield server


def add_manifest(server: Server, tag: str, layers: list[bytes]) -> str:
    for layer in layers:
        server.blobs[f"sha256:{hashlib.sha256(layer).hexdigest()}"] = layer
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "layers": [
            {
                "mediaType": oci.CONTENT_MEDIA_TYPE,
                "digest": f"sha256:{hashlib.sha256(layer).hexdigest()}",
                "size": len(layer),
            }
            for layer in layers
        ],
        "annotations": {oci.REVISION_ANNOTATION: "main@sha1:1"},
    }
    data = json.dumps(document).encode()
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    server.manifests[tag] = server.manifests[digest] = (
        data,
        "application/vnd.oci.image.manifest.v1+json",
    )
    return digest


async def test_tag_lists_are_followed_page_after_page(open_registry: Server) -> None:
    open_registry.tags = ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0"]
    digest = add_manifest(open_registry, "1.2.0", [b"layer"])
    async with oci.RegistryClient(open_registry.repository()) as client:
        assert await client.tags() == open_registry.tags
        assert (await oci.resolve(client, semver="1.x")).revision == f"1.2.0@{digest}"


async def test_bearer_challenge_gets_a_token_once_for_the_scope(token_registry: Server) -> None:
    digest = add_manifest(token_registry, "v1", [b"layer"])
    auth = oci.RegistryAuth(username=USER, password=PASSWORD)
    async with oci.RegistryClient(token_registry.repository(), auth) as client:
        resolved = await oci.resolve(client, tag="v1")
        pulled = await oci.pull(client, resolved.digest, media_type=None, limit=1024)
    assert resolved.revision == f"v1@{digest}"
    assert pulled.content == b"layer"
    assert pulled.annotations == {oci.REVISION_ANNOTATION: "main@sha1:1"}
    assert token_registry.token_scopes == ["repository:org/app:pull"]


async def test_a_refused_token_names_the_realm_and_status(token_registry: Server) -> None:
    add_manifest(token_registry, "v1", [b"layer"])
    async with oci.RegistryClient(token_registry.repository()) as client:
        with pytest.raises(oci.RegistryError) as raised:
            await client.resolve("v1")
    text = str(raised.value)
    assert f"token request to http://{token_registry.host}/token" in text
    assert "401 (DENIED: no)" in text
    assert raised.value.status == 401


async def test_basic_challenge_is_answered_only_with_credentials(basic_registry: Server) -> None:
    digest = add_manifest(basic_registry, "v1", [b"layer"])
    auth = oci.RegistryAuth(username=USER, password=PASSWORD)
    async with oci.RegistryClient(basic_registry.repository(), auth) as client:
        assert await client.resolve("v1") == digest
    async with oci.RegistryClient(basic_registry.repository()) as client:
        with pytest.raises(oci.RegistryError, match="check the registry credentials"):
            await client.resolve("v1")


async def test_head_without_digest_falls_back_to_get(open_registry: Server) -> None:
    digest = add_manifest(open_registry, "v1", [b"layer"])
    open_registry.head_digest = False
    async with oci.RegistryClient(open_registry.repository()) as client:
        assert await client.resolve("v1") == digest


async def test_unknown_manifest_names_the_ref_and_the_registry_error(
    open_registry: Server,
) -> None:
    async with oci.RegistryClient(open_registry.repository()) as client:
        with pytest.raises(oci.RegistryError) as raised:
            await client.manifest("nope")
    assert "404 (MANIFEST_UNKNOWN: manifest unknown)" in str(raised.value)
    assert f"manifest 'nope' does not exist in {open_registry.host}/org/app" in str(raised.value)


async def test_index_resolves_to_the_linux_amd64_manifest(open_registry: Server) -> None:
    amd64 = add_manifest(open_registry, "amd64", [b"amd64 layer"])
    arm64 = add_manifest(open_registry, "arm64", [b"arm64 layer"])
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"digest": arm64, "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": amd64, "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    open_registry.manifests["multi"] = (
        json.dumps(index).encode(),
        "application/vnd.oci.image.index.v1+json",
    )
    async with oci.RegistryClient(open_registry.repository()) as client:
        pulled = await oci.pull(client, "multi", media_type=None, limit=1024)
    assert pulled.content == b"amd64 layer"


async def test_blobs_are_checked_against_digest_and_limit(open_registry: Server) -> None:
    digest = add_manifest(open_registry, "v1", [b"the real layer"])
    layer_digest = f"sha256:{hashlib.sha256(b'the real layer').hexdigest()}"
    async with oci.RegistryClient(open_registry.repository()) as client:
        with pytest.raises(oci.RegistryError, match=r"over 4 allowed|more than allowed"):
            await oci.pull(client, digest, media_type=None, limit=4)
        open_registry.blobs[layer_digest] = b"tampered"
        with pytest.raises(oci.RegistryError, match="has the digest sha256:"):
            await client.blob(layer_digest, limit=1024)


async def test_an_unreachable_registry_names_the_url() -> None:
    repository = oci.Repository(host="127.0.0.1:1", name="org/app", insecure=True)
    async with oci.RegistryClient(repository, timeout=5) as client:
        with pytest.raises(oci.RegistryError, match=r"HEAD http://127\.0\.0\.1:1/v2/org/app"):
            await client.resolve("v1")
