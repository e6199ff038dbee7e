"""GitRepository ``spec.sparseCheckout`` and the observations Flux records with an artifact.

Only the listed paths reach the artifact; changing the list rebuilds the artifact for
the same commit; a listed path the commit lacks fails the fetch, and one outside the
repository stalls. ``status.observed*`` and ``status.includedArtifacts`` say what the
served artifact was made from, and disappear when their field is unset, as in Flux.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxd.api import GIT_REPOSITORY
from tests.gitservers import GitHTTPServer, GitRemote, RepoRoot
from tests.integration.conftest import Fluxd
from tests.integration.test_gitrepository import (
    MANIFEST,
    _ssh_signing_key,
    artifact_files,
    condition,
    revision,
)

pytestmark = pytest.mark.integration

TREE = {
    "deploy/app.yaml": MANIFEST,
    "deploy/base/kustomization.yaml": "resources: []\n",
    "deployment/other.yaml": "other",
    "apps/web.yaml": "web",
    "README.md": "docs",
}


async def test_only_listed_directories_are_in_the_artifact_and_a_new_list_rebuilds_it(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    sha = git_remote.commit(TREE)
    listed = ["./deploy/", "README.md"]
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        {"interval": "1h", "url": git_http.url(git_remote), "sparseCheckout": listed},
    )
    first = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    assert revision(first) == f"master@sha1:{sha}"
    assert set(await artifact_files(fluxd, first)) == {
        "deploy/app.yaml",
        "deploy/base/kustomization.yaml",
        "README.md",
    }
    assert first["status"]["observedSparseCheckout"] == listed

    await fluxd.patch(GIT_REPOSITORY, "app", {"spec": {"sparseCheckout": ["apps"]}})
    second = await fluxd.wait_for(
        GIT_REPOSITORY,
        "app",
        lambda o: o["status"].get("observedSparseCheckout") == ["apps"],
        "an artifact of the new sparse list",
    )
    assert revision(second) == revision(first)
    assert second["status"]["artifact"]["digest"] != first["status"]["artifact"]["digest"]
    assert await artifact_files(fluxd, second) == {"apps/web.yaml": b"web"}

    await fluxd.patch(GIT_REPOSITORY, "app", {"spec": {"sparseCheckout": None}})
    full = await fluxd.wait_for(
        GIT_REPOSITORY,
        "app",
        lambda o: "observedSparseCheckout" not in o["status"],
        "the full artifact again",
    )
    assert set(await artifact_files(fluxd, full)) == set(TREE)


async def test_a_listed_path_missing_from_the_commit_fails_the_fetch_naming_it(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    sha = git_remote.commit(TREE)
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        {"interval": "1h", "url": git_http.url(git_remote), "sparseCheckout": ["deploy", "nope"]},
    )
    obj = await fluxd.wait_not_ready(GIT_REPOSITORY, "app", "GitOperationFailed")
    ready = condition(obj, "Ready")
    assert ready is not None
    assert "sparse checkout dir 'nope' (spec.sparseCheckout) does not exist" in ready["message"]
    assert sha in ready["message"]
    fetch_failed = condition(obj, "FetchFailed")
    assert fetch_failed is not None
    assert fetch_failed["status"] == "True"
    assert "artifact" not in obj["status"]

    git_remote.commit({"nope/now.yaml": "here"})
    await fluxd.patch(GIT_REPOSITORY, "app", {"spec": {"sparseCheckout": ["nope"]}})
    fixed = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    assert await artifact_files(fluxd, fixed) == {"nope/now.yaml": b"here"}
    assert condition(fixed, "FetchFailed") is None


async def test_a_path_outside_the_repository_stalls_naming_the_entry(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    git_remote.commit(TREE)
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        {"interval": "1h", "url": git_http.url(git_remote), "sparseCheckout": ["deploy", "../x"]},
    )
    obj = await fluxd.wait_not_ready(GIT_REPOSITORY, "app", "InvalidSparseCheckout")
    ready = condition(obj, "Ready")
    stalled = condition(obj, "Stalled")
    assert ready is not None
    assert "spec.sparseCheckout[1] '../x'" in ready["message"]
    assert stalled is not None
    assert stalled["status"] == "True"
    assert "artifact" not in obj["status"]


async def test_status_records_included_artifacts_and_observations_and_drops_them_when_unset(
    fluxd: Fluxd, git_root: RepoRoot, git_http: GitHTTPServer
) -> None:
    library, app = git_root.new(), git_root.new()
    library.commit({"lib.yaml": "lib"})
    app.commit(TREE)
    await fluxd.create(GIT_REPOSITORY, "lib", {"interval": "1h", "url": git_http.url(library)})
    lib = await fluxd.wait_ready(GIT_REPOSITORY, "lib")
    include = {"repository": {"name": "lib"}, "toPath": "vendor/lib"}
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        {
            "interval": "1h",
            "url": git_http.url(app),
            "include": [include],
            "ignore": "README.md\n",
            "sparseCheckout": ["deploy"],
        },
    )
    obj = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    status = obj["status"]
    assert status["includedArtifacts"] == [lib["status"]["artifact"]]
    assert status["observedInclude"] == [include]
    assert status["observedIgnore"] == "README.md\n"
    assert status["observedSparseCheckout"] == ["deploy"]
    assert "observedRecurseSubmodules" not in status
    assert "sourceVerificationMode" not in status
    assert set(await artifact_files(fluxd, obj)) == {
        "deploy/app.yaml",
        "deploy/base/kustomization.yaml",
        "vendor/lib/lib.yaml",
    }

    await fluxd.patch(
        GIT_REPOSITORY, "app", {"spec": {"include": None, "ignore": None, "sparseCheckout": None}}
    )
    bare = await fluxd.wait_for(
        GIT_REPOSITORY,
        "app",
        lambda o: "observedSparseCheckout" not in o["status"],
        "the artifact without include, ignore and sparse paths",
    )
    for field in ("includedArtifacts", "observedInclude", "observedIgnore"):
        assert field not in bare["status"], field


async def test_source_verification_mode_is_dropped_with_spec_verify(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, tmp_path: Path
) -> None:
    private, public = _ssh_signing_key(tmp_path)
    git_remote.commit_signed({"a.yaml": MANIFEST}, private)
    await fluxd.secret("keys", {"author.pub": public})
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        {
            "interval": "1h",
            "url": git_http.url(git_remote),
            "verify": {"mode": "HEAD", "secretRef": {"name": "keys"}},
        },
    )
    verified = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    assert verified["status"]["sourceVerificationMode"] == "HEAD"

    await fluxd.patch(GIT_REPOSITORY, "app", {"spec": {"verify": None}})
    unverified = await fluxd.wait_for(
        GIT_REPOSITORY,
        "app",
        lambda o: condition(o, "SourceVerified") is None,
        "the artifact rebuilt without verification",
    )
    assert "sourceVerificationMode" not in unverified["status"]
