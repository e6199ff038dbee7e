"""GitRepository ``spec.recurseSubmodules`` end to end: real git servers, real API server.

The repositories are served over smart HTTP behind basic auth, so a submodule that
arrives in the artifact proves it was fetched with the parent's credentials.
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import GIT_REPOSITORY
from tests.gitservers import (
    HTTP_PASSWORD,
    HTTP_USERNAME,
    GitHTTPServer,
    RepoRoot,
    SSHServer,
    free_port,
)
from tests.integration.conftest import Fluxd
from tests.integration.test_gitrepository import (
    MANIFEST,
    artifact_files,
    condition,
    request_reconcile,
    revision,
)

pytestmark = pytest.mark.integration


async def _credentials(fluxd: Fluxd) -> None:
    await fluxd.secret("creds", {"username": HTTP_USERNAME, "password": HTTP_PASSWORD})


def _spec(url: str, **extra: Any) -> dict[str, Any]:
    return {"interval": "1h", "url": url, "secretRef": {"name": "creds"}, **extra}


async def test_nested_and_relative_submodules_are_fetched_with_the_parent_credentials(
    fluxd: Fluxd, git_root: RepoRoot, git_http: GitHTTPServer
) -> None:
    leaf, lib, app = git_root.new(), git_root.new(), git_root.new()
    leaf_sha = leaf.commit({"leaf.yaml": "leaf"})
    lib.commit({"lib.yaml": "pinned"})
    pinned = lib.add_submodule("vendor/leaf", git_http.url(leaf, "basic"), leaf_sha)
    lib.commit({"lib.yaml": "newer, not pinned"})
    app.commit({"app.yaml": MANIFEST})
    sha = app.add_submodule("libs/lib", f"../{lib.name}", pinned)
    await _credentials(fluxd)
    await fluxd.create(
        GIT_REPOSITORY, "app", _spec(git_http.url(app, "basic"), recurseSubmodules=True)
    )

    obj = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    assert revision(obj) == f"master@sha1:{sha}"
    assert await artifact_files(fluxd, obj) == {
        "app.yaml": MANIFEST.encode(),
        "libs/lib/lib.yaml": b"pinned",
        "libs/lib/vendor/leaf/leaf.yaml": b"leaf",
    }
    assert obj["status"]["observedRecurseSubmodules"] is True
    fetched = {path for _, path, auth in git_http.requests if auth and "upload-pack" in path}
    assert f"/basic/{lib.name}/git-upload-pack" in fetched, "relative URL, parent credentials"
    assert f"/basic/{leaf.name}/git-upload-pack" in fetched


async def test_a_relative_submodule_of_an_ssh_parent_is_fetched_with_its_ssh_key(
    fluxd: Fluxd, git_root: RepoRoot, git_sshd: SSHServer
) -> None:
    lib, app = git_root.new(), git_root.new()
    lib_sha = lib.commit({"lib.yaml": "over ssh"})
    app.commit({"app.yaml": MANIFEST})
    app.add_submodule("lib", f"../{lib.name}", lib_sha)
    keys = git_sshd.keys
    await fluxd.secret("ssh", {"identity": keys.identity, "known_hosts": keys.known_hosts})
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        {
            "interval": "1h",
            "url": git_sshd.url(app, git_root),
            "secretRef": {"name": "ssh"},
            "recurseSubmodules": True,
        },
    )
    obj = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    assert (await artifact_files(fluxd, obj))["lib/lib.yaml"] == b"over ssh"


async def test_submodules_stay_out_until_asked_for_and_asking_makes_a_new_artifact(
    fluxd: Fluxd, git_root: RepoRoot, git_http: GitHTTPServer
) -> None:
    lib, app = git_root.new(), git_root.new()
    lib_sha = lib.commit({"lib.yaml": "lib"})
    app.commit({"app.yaml": MANIFEST})
    app.add_submodule("libs/lib", git_http.url(lib, "basic"), lib_sha)
    await _credentials(fluxd)
    await fluxd.create(GIT_REPOSITORY, "app", _spec(git_http.url(app, "basic")))
    plain = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    assert await artifact_files(fluxd, plain) == {"app.yaml": MANIFEST.encode()}
    assert "observedRecurseSubmodules" not in plain["status"]

    await fluxd.patch(GIT_REPOSITORY, "app", {"spec": {"recurseSubmodules": True}})
    recursed = await fluxd.wait_for(
        GIT_REPOSITORY,
        "app",
        lambda o: o["status"].get("observedRecurseSubmodules") is True,
        "an artifact built with submodules (same commit)",
    )
    assert revision(recursed) == revision(plain)
    assert recursed["status"]["artifact"]["digest"] != plain["status"]["artifact"]["digest"]
    assert set(await artifact_files(fluxd, recursed)) == {"app.yaml", "libs/lib/lib.yaml"}


async def test_an_unchanged_parent_does_not_fetch_its_submodules_again(
    fluxd: Fluxd, git_root: RepoRoot, git_http: GitHTTPServer
) -> None:
    lib, app = git_root.new(), git_root.new()
    lib_sha = lib.commit({"lib.yaml": "lib"})
    app.commit({"app.yaml": MANIFEST})
    app.add_submodule("lib", git_http.url(lib, "basic"), lib_sha)
    await _credentials(fluxd)
    await fluxd.create(
        GIT_REPOSITORY, "app", _spec(git_http.url(app, "basic"), recurseSubmodules=True)
    )
    first = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    seen = len(git_http.requests)

    stamp = await request_reconcile(fluxd, "app")
    again = await fluxd.wait_for(
        GIT_REPOSITORY,
        "app",
        lambda o: o["status"].get("lastHandledReconcileAt") == stamp,
        "the requested reconcile handled",
    )
    assert again["status"]["artifact"] == first["status"]["artifact"]
    after = git_http.requests[seen:]
    assert not [path for _, path, _ in after if lib.name in path], "submodule fetched again"
    # Protocol v2: a handshake (GET info/refs) then one POST per command; ls-remote is
    # ls-refs alone, a fetch would add a second POST (the pack).
    handshakes = [path for method, path, _ in after if method == "GET"]
    commands = [path for method, path, _ in after if method == "POST"]
    assert handshakes
    assert len(commands) == len(handshakes), "only ls-remote, no fetch"


@pytest.mark.parametrize(
    ("where", "cause"),
    [
        ("closed port", "connection refused"),
        ("commit never pushed", "it does not have it (was it pushed?)"),
    ],
)
async def test_a_submodule_that_cannot_be_fetched_fails_naming_it_and_stores_nothing(
    fluxd: Fluxd, git_root: RepoRoot, git_http: GitHTTPServer, where: str, cause: str
) -> None:
    lib, app = git_root.new(), git_root.new()
    lib.commit({"lib.yaml": "lib"})
    app.commit({"app.yaml": MANIFEST})
    url = (
        f"http://127.0.0.1:{free_port()}/gone.git"
        if where == "closed port"
        else git_http.url(lib, "basic")
    )
    app.add_submodule("libs/gone", url, "1" * 40)
    await _credentials(fluxd)
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        _spec(git_http.url(app, "basic"), recurseSubmodules=True, timeout="10s"),
    )

    obj = await fluxd.wait_not_ready(GIT_REPOSITORY, "app", "GitOperationFailed")
    ready = condition(obj, "Ready")
    assert ready is not None
    assert (
        f"failed to fetch submodule 'libs/gone' from '{url}' at commit '{'1' * 40}'"
        in (ready["message"])
    )
    assert cause in ready["message"]
    assert HTTP_PASSWORD not in ready["message"]
    fetch_failed = condition(obj, "FetchFailed")
    assert fetch_failed is not None
    assert fetch_failed["status"] == "True"
    assert "artifact" not in obj["status"]
    assert "observedRecurseSubmodules" not in obj["status"]


async def test_a_submodule_outside_the_sparse_paths_is_not_fetched(
    fluxd: Fluxd, git_root: RepoRoot, git_http: GitHTTPServer
) -> None:
    lib, app = git_root.new(), git_root.new()
    lib_sha = lib.commit({"manifests/lib.yaml": "lib", "docs/README.md": "docs"})
    app.commit({"deploy/app.yaml": MANIFEST, "other/x.yaml": "x"})
    app.add_submodule("deploy/lib", git_http.url(lib, "basic"), lib_sha)
    app.add_submodule("other/gone", f"http://127.0.0.1:{free_port()}/gone.git", "1" * 40)
    await _credentials(fluxd)
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        _spec(
            git_http.url(app, "basic"),
            recurseSubmodules=True,
            sparseCheckout=["deploy/app.yaml", "deploy/lib/manifests"],
        ),
    )

    obj = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    assert await artifact_files(fluxd, obj) == {
        "deploy/app.yaml": MANIFEST.encode(),
        "deploy/lib/manifests/lib.yaml": b"lib",
    }
