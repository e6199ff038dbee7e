"""Ref selection, revision strings and secret hygiene of fluxd.sources.git.remote (no network)."""

from __future__ import annotations

import pytest

from fluxd.api import GitRepositoryRef as Ref
from fluxd.sources.git import GitAuth, GitError, format_revision
from fluxd.sources.git.remote import _describe, _Missing, _select
from fluxd.sources.git.transport import open_client, redact_url

C1 = b"1" * 40
C2 = b"2" * 40
TAG_OBJ = b"a" * 40
REFS: dict[bytes, bytes | None] = {
    b"HEAD": C2,
    b"refs/heads/master": C2,
    b"refs/heads/main": C1,
    b"refs/heads/main-old": C2,
    b"refs/tags/v1.0.0": TAG_OBJ,
    b"refs/tags/v1.0.0^{}": C1,
    b"refs/tags/v1.2.0": C2,
    b"refs/tags/v2.0.0-rc.1": C2,
    b"refs/pull/1/head": C1,
}


@pytest.mark.parametrize(
    ("ref", "name", "target", "full"),
    [
        (Ref(), "master", C2, b"refs/heads/master"),
        (Ref(branch="main"), "main", C1, b"refs/heads/main"),
        (Ref(tag="v1.0.0"), "v1.0.0", TAG_OBJ, b"refs/tags/v1.0.0"),
        (Ref(semver="^1"), "v1.2.0", C2, b"refs/tags/v1.2.0"),
        (Ref(semver="~1.0"), "v1.0.0", TAG_OBJ, b"refs/tags/v1.0.0"),
        (Ref(name="refs/pull/1/head"), "refs/pull/1/head", C1, b"refs/pull/1/head"),
        (Ref(name="refs/heads/main"), "main", C1, b"refs/heads/main"),
        (Ref(name="refs/tags/v1.2.0"), "v1.2.0", C2, b"refs/tags/v1.2.0"),
        (Ref(branch="main", commit="C" * 40), "main", b"c" * 40, None),
        (Ref(commit="c" * 40), "", b"c" * 40, None),
        (Ref(branch="main", tag="v1.2.0"), "v1.2.0", C2, b"refs/tags/v1.2.0"),
        (Ref(tag="v1.2.0", semver="~1.0"), "v1.0.0", TAG_OBJ, b"refs/tags/v1.0.0"),
        (Ref(semver="^1", name="refs/pull/1/head"), "refs/pull/1/head", C1, b"refs/pull/1/head"),
    ],
)
def test_select_follows_flux_precedence(
    ref: Ref, name: str, target: bytes, full: bytes | None
) -> None:
    selection = _select(REFS, ref)
    assert (selection.name, selection.target, selection.ref) == (name, target, full)


def test_commit_without_branch_wants_every_branch_tip() -> None:
    selection = _select(REFS, Ref(commit="c" * 40))
    assert set(selection.wants) == {C1, C2}


def test_branch_match_is_exact_not_prefix() -> None:
    assert _select(REFS, Ref(branch="main")).target == C1
    with pytest.raises(_Missing, match="couldn't find remote ref 'refs/heads/mai'"):
        _select(REFS, Ref(branch="mai"))


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (Ref(tag="v3"), "couldn't find remote ref 'refs/tags/v3'"),
        (Ref(semver=">=5"), "no tag matches semver range '>=5'"),
        (Ref(semver="bogus"), "invalid semver constraint 'bogus'"),
        (Ref(branch="gone", commit="c" * 40), "couldn't find remote ref 'refs/heads/gone'"),
    ],
)
def test_select_missing(ref: Ref, message: str) -> None:
    with pytest.raises(_Missing, match=message):
        _select(REFS, ref)


def test_revision_format() -> None:
    assert format_revision("main", "ab" * 20) == f"main@sha1:{'ab' * 20}"
    assert format_revision("refs/pull/1/head", "ab" * 20) == f"refs/pull/1/head@sha1:{'ab' * 20}"
    assert format_revision("", "ab" * 20) == f"sha1:{'ab' * 20}"


def test_ref_descriptions_for_messages() -> None:
    assert _describe(Ref()) == "branch 'master'"
    assert _describe(Ref(branch="main", commit="abc")) == "commit 'abc' on branch 'main'"
    assert _describe(Ref(semver="^1", tag="x")) == "semver range '^1'"
    assert _describe(Ref(name="refs/pull/1/head", tag="x")) == "ref 'refs/pull/1/head'"
    assert _describe(Ref(tag="v1", branch="main")) == "tag 'v1'"


def test_urls_in_messages_lose_credentials() -> None:
    assert redact_url("https://bob:hunter2@git.example.com/r.git") == (
        "https://git.example.com/r.git"
    )
    assert redact_url("ssh://git@host:2222/r.git") == "ssh://git@host:2222/r.git"
    assert redact_url("https://git.example.com/r.git") == "https://git.example.com/r.git"


def test_auth_repr_hides_secrets() -> None:
    auth = GitAuth(username="bob", password="hunter2", bearer_token="tok", identity=b"KEY")
    text = repr(auth)
    assert "hunter2" not in text
    assert "tok" not in text.replace("bearer_token", "")
    assert "KEY" not in text
    assert "password" in text


@pytest.mark.parametrize(
    ("url", "reason", "words"),
    [
        ("ftp://host/r.git", "URLInvalid", "unsupported git URL scheme 'ftp'"),
        ("https:///r.git", "URLInvalid", "no host"),
    ],
)
def test_bad_urls(url: str, reason: str, words: str) -> None:
    with pytest.raises(GitError) as err:
        open_client(url, GitAuth(), 1)
    assert err.value.reason == reason
    assert words in err.value.message
