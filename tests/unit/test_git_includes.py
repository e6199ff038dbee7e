"""An artifact's files from a commit, its includes and the ignore rules
(fluxd.sources.git.includes)."""

from __future__ import annotations

from fluxd.api import GitRepositoryInclude, LocalObjectReference
from fluxd.sources.git import artifact_files, include_paths


def include(
    name: str, from_path: str | None = None, to_path: str | None = None
) -> GitRepositoryInclude:
    return GitRepositoryInclude(
        repository=LocalObjectReference(name=name), from_path=from_path, to_path=to_path
    )


def test_include_paths_default_to_the_whole_artifact_under_the_repository_name() -> None:
    assert include_paths(include("lib")) == (".", "lib")
    assert include_paths(include("lib", "deploy", "vendor/lib")) == ("deploy", "vendor/lib")


def test_included_files_are_copied_under_to_path_over_the_commit() -> None:
    files = {"app.yaml": b"app", "vendor/lib/lib.yaml": b"stale"}
    included = {"lib.yaml": b"fresh", "README.md": b"docs"}
    assert artifact_files(files, [(included, ".", "vendor/lib")], ignore=None) == {
        "app.yaml": b"app",
        "vendor/lib/lib.yaml": b"fresh",
        "vendor/lib/README.md": b"docs",
    }


def test_from_path_selects_a_subtree_and_a_root_to_path_keeps_paths() -> None:
    included = {"deploy/a.yaml": b"a", "deploy/sub/b.yaml": b"b", "deployment.yaml": b"no"}
    assert artifact_files({}, [(included, "/deploy/", ".")], ignore=None) == {
        "a.yaml": b"a",
        "sub/b.yaml": b"b",
    }


def test_ignore_rules_apply_to_the_merged_files() -> None:
    files = {"app.yaml": b"app", "logo.png": b"png"}
    included = {"lib.yaml": b"lib", "notes.txt": b"txt"}
    assert artifact_files(files, [(included, ".", "lib")], ignore=None) == {
        "app.yaml": b"app",
        "lib/lib.yaml": b"lib",
        "lib/notes.txt": b"txt",
    }
    assert artifact_files(files, [(included, ".", "lib")], ignore="*.txt") == {
        "app.yaml": b"app",
        "logo.png": b"png",
        "lib/lib.yaml": b"lib",
    }
