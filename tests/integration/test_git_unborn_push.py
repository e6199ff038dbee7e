"""Starting a branch the remote lacks (``fluxd.sources.git.push.branch_checkout`` and
``unborn_checkout``), against the real smart-HTTP server: the first commit is a root
commit, and a branch created by someone else meanwhile is never overwritten."""

from __future__ import annotations

import pytest

from fluxd.sources.git.push import (
    Author,
    PushConflict,
    branch_checkout,
    commit_and_push,
    unborn_checkout,
)
from fluxd.sources.git.transport import GitAuth
from tests.gitservers import HTTP_PASSWORD, HTTP_USERNAME, GitHTTPServer, GitRemote

pytestmark = pytest.mark.integration

AUTH = GitAuth(username=HTTP_USERNAME, password=HTTP_PASSWORD)
AUTHOR = Author("Flux", "flux@example.com")


async def test_an_empty_repository_gets_a_root_commit(
    git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    url = git_http.url(git_remote, "basic")
    checkout = await branch_checkout(url, AUTH, 10, branch="main")
    assert (checkout.remote_tip, checkout.files) == (None, {})

    sha = await commit_and_push(
        checkout, url, AUTH, 10, files={"a/b.txt": b"hello\n"}, author=AUTHOR, message="first"
    )

    assert git_remote.rev("refs/heads/main") == sha
    assert git_remote.git("rev-list", "--parents", "main", cwd=git_remote.bare) == sha
    assert git_remote.git("show", "main:a/b.txt", cwd=git_remote.bare) == "hello"
    again = await branch_checkout(url, AUTH, 10, branch="main")
    assert (again.commit.sha, again.files) == (sha, {"a/b.txt": b"hello\n"})


async def test_a_branch_created_meanwhile_is_not_overwritten(
    git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    url = git_http.url(git_remote, "basic")
    checkout = unborn_checkout("main")
    theirs = git_remote.commit({"theirs.txt": "x"}, "theirs", branch="main")

    with pytest.raises(PushConflict, match="branch 'main' moved"):
        await commit_and_push(
            checkout, url, AUTH, 10, files={"mine.txt": b"y"}, author=AUTHOR, message="mine"
        )

    assert git_remote.rev("refs/heads/main") == theirs
