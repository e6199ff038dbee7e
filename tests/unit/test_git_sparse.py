"""Which paths ``spec.sparseCheckout`` keeps (fluxd.sources.git.sparse, no network)."""

from __future__ import annotations

import pytest

from fluxd.sources.git import InvalidSparsePath, SparseCheckout

TREE = {
    "deploy/app.yaml": b"app",
    "deploy/base/kustomization.yaml": b"base",
    "deployment/other.yaml": b"other",
    "deploy.yaml": b"file",
    "apps/web/web.yaml": b"web",
    "README.md": b"docs",
}


def test_listed_directories_keep_their_subtree_on_path_boundaries() -> None:
    sparse = SparseCheckout.from_spec(["deploy"])
    assert sparse.select(TREE) == {
        "deploy/app.yaml": b"app",
        "deploy/base/kustomization.yaml": b"base",
    }


def test_leading_dot_slash_and_trailing_slash_are_the_same_directory() -> None:
    assert SparseCheckout.from_spec(["./deploy/", "apps/web/"]).paths == ("deploy", "apps/web")
    assert SparseCheckout.from_spec(["./deploy/"]).select(TREE) == SparseCheckout.from_spec(
        ["deploy"]
    ).select(TREE)


def test_a_listed_file_is_kept() -> None:
    assert SparseCheckout.from_spec(["README.md"]).select(TREE) == {"README.md": b"docs"}


def test_no_entries_or_the_root_keep_everything() -> None:
    assert SparseCheckout.from_spec([]).paths == ()
    assert SparseCheckout.from_spec([]).select(TREE) == TREE
    assert SparseCheckout.from_spec(["deploy", "./"]).select(TREE) == TREE
    assert SparseCheckout.from_spec(["deploy", "./"]).missing(TREE, ()) == []
    assert SparseCheckout.from_spec(["."]).select(TREE) == TREE


@pytest.mark.parametrize("entry", ["/deploy", "../elsewhere", "deploy/../../x", ".."])
def test_paths_outside_the_repository_are_refused_naming_the_entry(entry: str) -> None:
    with pytest.raises(InvalidSparsePath) as raised:
        SparseCheckout.from_spec(["deploy", entry])
    assert f"spec.sparseCheckout[1] '{entry}'" in str(raised.value)


def test_missing_names_listed_paths_the_tree_does_not_have() -> None:
    sparse = SparseCheckout.from_spec(["deploy/base", "apps", "nope", "deploy/app.yaml/x"])
    assert sparse.missing(TREE, ()) == ["nope", "deploy/app.yaml/x"]


def test_a_submodule_path_exists_even_when_its_files_were_not_fetched() -> None:
    sparse = SparseCheckout.from_spec(["vendor/lib"])
    assert sparse.missing(TREE, {"vendor/lib": "0" * 40}) == []


def test_submodules_are_reached_only_where_listed_paths_lead() -> None:
    sparse = SparseCheckout.from_spec(["deploy", "vendor/lib/manifests"])
    assert sparse.reaches("deploy/charts")  # inside a listed directory
    assert sparse.reaches("vendor/lib")  # holds a listed directory
    assert not sparse.reaches("vendor/other")
    assert not sparse.reaches("deployment")
    assert SparseCheckout.from_spec([]).reaches("anything")
