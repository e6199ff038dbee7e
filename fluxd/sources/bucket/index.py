"""A Bucket's object index: which keys make its artifact, and the revision they digest to.

Flux (source-controller's bucket controller and ``internal/index``) indexes a bucket as
the map of object key to ETag, and its revision is ``sha256:`` of the index written one
``<key> <etag>\\n`` line per key in byte order of the keys. fluxd computes the same
string, so a Bucket moved between Flux and fluxd keeps its revision, and an unchanged
bucket is recognised from its listing alone.

What is indexed follows Flux too: keys ending in ``/`` (folder markers) and the root
``.sourceignore`` object itself are left out; the rest is filtered by the patterns of
that ``.sourceignore`` (anchored at the bucket's root, whatever ``spec.prefix`` is) and
then ``spec.ignore``. Unlike a GitRepository, no default excludes apply: Flux builds the
bucket's matcher from these two sources only.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable, Mapping

from fluxd.sources.gitignore import Matcher, parse_patterns
from fluxd.sources.ignore import IGNORE_FILE

__all__ = ["IGNORE_FILE", "artifact_path", "index_digest", "select_objects"]


def index_digest(index: Mapping[str, str]) -> str:
    """The revision of an index of key -> ETag: ``sha256:<hex>``, as Flux digests it."""
    digest = hashlib.sha256()
    for key in sorted(index):
        digest.update(f"{key} {index[key]}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def select_objects(
    objects: Iterable[tuple[str, str]],
    *,
    ignore_file: bytes | None,
    spec_ignore: str | None,
) -> dict[str, str]:
    """The index of the listed ``(key, etag)`` pairs that go into the artifact."""
    patterns = []
    if ignore_file is not None:
        patterns.extend(parse_patterns(ignore_file.decode("utf-8", errors="surrogateescape")))
    if spec_ignore is not None:
        patterns.extend(parse_patterns(spec_ignore))
    matcher = Matcher(patterns)
    return {
        key: etag
        for key, etag in objects
        if not key.endswith("/")
        and key != IGNORE_FILE
        and not matcher.is_ignored(key.split("/"), is_dir=False)
    }


def artifact_path(key: str) -> str | None:
    """Where object ``key`` lands in the artifact's tree: the key read as a path inside
    the root, ``..`` unable to climb out (as Flux's secure join places it); ``None`` for
    a key that names no file (``.``, ``a/..``)."""
    cleaned = posixpath.normpath("/" + key).lstrip("/")
    return cleaned if cleaned and cleaned != "." else None
