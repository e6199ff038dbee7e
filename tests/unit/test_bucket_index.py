"""A Bucket's index: what is indexed after the ignore rules, Flux's revision of it, and
where keys land in the artifact."""

from __future__ import annotations

import hashlib

import pytest

from fluxd.sources.bucket.index import artifact_path, index_digest, select_objects


def test_revision_is_sha256_of_sorted_key_etag_lines() -> None:
    index = {"b.yaml": "2", "a/x.yaml": "1", "B.yaml": "3"}
    expected = hashlib.sha256(b"B.yaml 3\na/x.yaml 1\nb.yaml 2\n").hexdigest()
    assert index_digest(index) == f"sha256:{expected}"


def test_empty_index_digests_the_empty_string() -> None:
    assert index_digest({}) == f"sha256:{hashlib.sha256(b'').hexdigest()}"


def test_folder_markers_and_the_ignore_file_are_not_indexed() -> None:
    objects = [("dir/", "e0"), (".sourceignore", "e1"), ("sub/.sourceignore", "e2")]
    assert select_objects(objects, ignore_file=None, spec_ignore=None) == {
        "sub/.sourceignore": "e2"
    }


def test_sourceignore_then_spec_ignore_and_no_default_excludes() -> None:
    objects = [
        ("logo.png", "1"),
        ("docs/a.md", "2"),
        ("deploy/app.yaml", "3"),
        ("deploy/test/t.yaml", "4"),
        ("deploy/keep.md", "5"),
    ]
    selected = select_objects(
        objects, ignore_file=b"*.md\n", spec_ignore="deploy/test/\n!deploy/keep.md\n"
    )
    # logo.png stays: a Bucket has none of the GitRepository default excludes.
    assert selected == {"logo.png": "1", "deploy/app.yaml": "3", "deploy/keep.md": "5"}


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("a/b.yaml", "a/b.yaml"),
        ("a//b.yaml", "a/b.yaml"),
        ("./a/./b.yaml", "a/b.yaml"),
        ("../../etc/passwd", "etc/passwd"),
        ("/abs.yaml", "abs.yaml"),
        ("a/..", None),
        (".", None),
    ],
)
def test_keys_land_inside_the_artifact(key: str, path: str | None) -> None:
    assert artifact_path(key) == path
