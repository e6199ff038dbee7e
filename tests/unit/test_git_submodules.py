"""Submodules in a commit's tree (fluxd.sources.git.submodules, no network).

The fetching of one commit is the module's seam: these tests hand it a dictionary of
known commits, so what is checked is the recursion, URL resolution and error naming.
"""

from __future__ import annotations

import re

import pytest

from fluxd.sources.git import GitError
from fluxd.sources.git.submodules import (
    MAX_DEPTH,
    Snapshot,
    populate,
    resolve_url,
    submodule_urls,
)

PARENT = "https://git.example.com/org/app.git"
LIB_SHA = "1" * 40
LEAF_SHA = "2" * 40


def gitmodules(*entries: tuple[str, str]) -> bytes:
    return "".join(
        f'[submodule "{path}"]\n\tpath = {path}\n\turl = {url}\n' for path, url in entries
    ).encode()


class Commits:
    """Known commits by (url, sha); records what was asked for."""

    def __init__(self, known: dict[tuple[str, str], Snapshot]) -> None:
        self.known = known
        self.asked: list[tuple[str, str]] = []

    def __call__(self, url: str, sha: str) -> Snapshot:
        self.asked.append((url, sha))
        try:
            return self.known[(url, sha)]
        except KeyError:
            raise GitError("repository not found (HTTP 404)") from None


def everything(path: str) -> bool:
    return True


@pytest.mark.parametrize(
    ("written", "base", "resolved"),
    [
        ("../lib.git", PARENT, "https://git.example.com/org/lib.git"),
        ("../../other/lib.git", PARENT, "https://git.example.com/other/lib.git"),
        ("./lib.git", PARENT, "https://git.example.com/org/app.git/lib.git"),
        ("../lib", "https://git.example.com/org/app/", "https://git.example.com/org/lib"),
        ("../lib.git", "ssh://git@host:2222/srv/app.git", "ssh://git@host:2222/srv/lib.git"),
        ("git@github.com:org/lib.git", PARENT, "ssh://git@github.com/org/lib.git"),
        ("https://other.example.com/lib.git", PARENT, "https://other.example.com/lib.git"),
    ],
)
def test_submodule_urls_resolve_as_git_resolves_them(
    written: str, base: str, resolved: str
) -> None:
    assert resolve_url(written, base) == resolved


def test_gitmodules_maps_paths_to_urls() -> None:
    content = gitmodules(("libs/lib", "../lib.git"), ("vendor/leaf/", "https://h/leaf.git"))
    assert submodule_urls(content) == {
        "libs/lib": "../lib.git",
        "vendor/leaf": "https://h/leaf.git",
    }
    assert submodule_urls(None) == {}


def test_a_malformed_gitmodules_names_the_file() -> None:
    with pytest.raises(GitError, match=re.escape("cannot parse 'libs/lib/.gitmodules'")):
        submodule_urls(b'[submodule "x"\n\tpath = x\n', where="libs/lib/")


def test_nested_submodules_land_under_their_paths_at_the_pinned_commits() -> None:
    parent = Snapshot(
        {"app.yaml": b"app", ".gitmodules": gitmodules(("libs/lib", "../lib.git"))},
        {"libs/lib": LIB_SHA},
    )
    lib_url = "https://git.example.com/org/lib.git"
    leaf_url = "https://git.example.com/org/leaf.git"
    commits = Commits(
        {
            (lib_url, LIB_SHA): Snapshot(
                {"lib.yaml": b"lib", ".gitmodules": gitmodules(("vendor/leaf", "./../leaf.git"))},
                {"vendor/leaf": LEAF_SHA},
            ),
            (leaf_url, LEAF_SHA): Snapshot({"leaf.yaml": b"leaf"}),
        }
    )
    result = populate(parent, PARENT, commits, wanted=everything)
    assert result.files == {
        "app.yaml": b"app",
        ".gitmodules": parent.files[".gitmodules"],
        "libs/lib/lib.yaml": b"lib",
        "libs/lib/.gitmodules": commits.known[(lib_url, LIB_SHA)].files[".gitmodules"],
        "libs/lib/vendor/leaf/leaf.yaml": b"leaf",
    }
    assert result.gitlinks == {"libs/lib": LIB_SHA, "libs/lib/vendor/leaf": LEAF_SHA}
    assert commits.asked == [(lib_url, LIB_SHA), (leaf_url, LEAF_SHA)]


def test_a_gitlink_without_a_gitmodules_entry_stays_empty_as_in_go_git() -> None:
    parent = Snapshot({"app.yaml": b"app"}, {"embedded": LIB_SHA})
    commits = Commits({})
    assert populate(parent, PARENT, commits, wanted=everything).files == {"app.yaml": b"app"}
    assert commits.asked == []


def test_unwanted_submodules_are_not_fetched() -> None:
    parent = Snapshot(
        {".gitmodules": gitmodules(("outside", "https://unreachable.invalid/x.git"))},
        {"outside": LIB_SHA},
    )
    commits = Commits({})
    populate(parent, PARENT, commits, wanted=lambda path: path != "outside")
    assert commits.asked == []


def test_a_failing_submodule_names_its_path_url_and_commit() -> None:
    parent = Snapshot(
        {".gitmodules": gitmodules(("libs/lib", "../lib.git"))}, {"libs/lib": LIB_SHA}
    )
    with pytest.raises(GitError) as raised:
        populate(parent, PARENT, Commits({}), wanted=everything)
    assert raised.value.message == (
        "failed to fetch submodule 'libs/lib' from 'https://git.example.com/org/lib.git' at "
        f"commit '{LIB_SHA}': repository not found (HTTP 404)"
    )


def test_a_failing_nested_submodule_names_its_full_path() -> None:
    lib_url = "https://git.example.com/org/lib.git"
    parent = Snapshot({".gitmodules": gitmodules(("lib", "../lib.git"))}, {"lib": LIB_SHA})
    commits = Commits(
        {
            (lib_url, LIB_SHA): Snapshot(
                {".gitmodules": gitmodules(("deep", "../gone.git"))}, {"deep": LEAF_SHA}
            )
        }
    )
    with pytest.raises(GitError, match="failed to fetch submodule 'lib/deep' from"):
        populate(parent, PARENT, commits, wanted=everything)


def test_recursion_stops_with_an_error_past_the_depth_limit() -> None:
    endless = Snapshot({".gitmodules": gitmodules(("sub", "./sub"))}, {"sub": LIB_SHA})

    def fetch(url: str, sha: str) -> Snapshot:
        return endless

    with pytest.raises(GitError, match=f"nested more than {MAX_DEPTH} levels deep"):
        populate(endless, PARENT, fetch, wanted=everything)
