"""The artifact server serves the artifacts fluxd holds, by their exact path, and nothing
else: no listing, no path that walks out of a source's directory, no replaced revision."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp.test_utils import TestClient, TestServer

from fluxd.daemon.http import artifact_app
from fluxd.runtime.keys import ObjectKey
from fluxd.sources.artifact import Artifact
from fluxd.sources.cache import ArtifactCache

SOURCE = ObjectKey("GitRepository", "flux-system", "apps")


def artifact(revision: str) -> Artifact:
    return Artifact(
        revision=revision,
        digest="sha256:0",
        size=0,
        path=f"gitrepository/flux-system/apps/{revision}.tar.gz",
        url=f"http://fluxd/{revision}.tar.gz",
        last_update_time=datetime.now(UTC),
        files={"a.yaml": b"a: 1\n"},
    )


async def test_only_the_current_artifact_paths_are_served() -> None:
    cache = ArtifactCache()
    cache.put(SOURCE, artifact("one"))
    cache.put(SOURCE, artifact("two"))
    async with TestClient(TestServer(artifact_app(cache))) as http:
        served = await http.get("/gitrepository/flux-system/apps/two.tar.gz")
        assert served.status == 200
        assert served.headers["Content-Type"] == "application/gzip"
        assert len(await served.read()) > 0

        for path in (
            "/",
            "/gitrepository/",
            "/gitrepository/flux-system/apps/",
            "/gitrepository/flux-system/apps/one.tar.gz",  # replaced by two
            "/gitrepository/flux-system/apps/../../../etc/passwd",
            "/gitrepository/flux-system/apps/%2e%2e/%2e%2e/etc/passwd",
            "/etc/passwd",
        ):
            refused = await http.get(path)
            assert refused.status == 404, path
            assert b"a: 1" not in await refused.read()
