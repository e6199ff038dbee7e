"""``spec.recurseSubmodules``: a commit's submodules, recursively, in its file tree.

A submodule is a *gitlink* in the parent's tree (the pinned commit) plus an entry in
the parent's ``.gitmodules`` (its path and URL). :func:`populate` fetches each pinned
commit and places its files under the submodule path, then does the same for the
submodule's own submodules, as ``git clone --recurse-submodules`` (and Flux's go-git)
does. Because the parent commit pins every submodule commit, the parent's sha alone
says whether anything changed: the reconciler's one ``ls-remote`` stays enough.

Git's rules, kept here:

- a URL starting with ``./`` or ``../`` is relative to the URL of the repository whose
  ``.gitmodules`` names it (the parent, or the enclosing submodule when nested), taken
  as a directory: ``../lib.git`` next to ``https://host/org/app.git`` is
  ``https://host/org/lib.git``;
- the scp-like ``git@host:org/lib.git`` form means ``ssh://git@host/org/lib.git``;
- a gitlink that ``.gitmodules`` does not name is not a submodule: it stays empty, as
  in go-git;
- nesting deeper than :data:`MAX_DEPTH` levels (go-git's default recursion depth) is an
  error naming the submodule, where go-git would leave the deeper ones out silently.

The fetching itself is the caller's (:mod:`~fluxd.sources.git.remote` passes a
function fetching one commit with the parent's credentials); a failure names the
submodule path and URL.
"""

from __future__ import annotations

import io
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from dulwich.config import ConfigFile, parse_submodules

from fluxd.sources.git.transport import GitError, redact_url

__all__ = ["MAX_DEPTH", "FetchCommit", "Snapshot", "populate", "resolve_url", "submodule_urls"]

MAX_DEPTH = 10
GITMODULES = ".gitmodules"

_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]+):(?P<path>.+)$")
_V = TypeVar("_V")


@dataclass(frozen=True)
class Snapshot:
    """A commit's tree: regular files (and symlinks) by path, gitlinks by path -> sha."""

    files: dict[str, bytes]
    gitlinks: dict[str, str] = field(default_factory=dict)


FetchCommit = Callable[[str, str], Snapshot]
"""``(url, commit sha) -> Snapshot`` of that commit; raises GitError."""


def populate(
    snapshot: Snapshot, url: str, fetch_commit: FetchCommit, *, wanted: Callable[[str], bool]
) -> Snapshot:
    """``snapshot`` with the files of every submodule ``wanted(path)`` accepts, nested
    submodules included; the gitlinks of the result are all the submodule paths seen."""
    return _populate(snapshot, url, fetch_commit, wanted, prefix="", depth=1)


def submodule_urls(gitmodules: bytes | None, *, where: str = "") -> dict[str, str]:
    """``{submodule path: url as written}`` from a ``.gitmodules`` file's content."""
    if gitmodules is None:
        return {}
    try:
        config = ConfigFile.from_file(io.BytesIO(gitmodules))
    except ValueError as exc:
        raise GitError(f"cannot parse '{where}{GITMODULES}': {exc}") from exc
    return {
        posixpath.normpath(path.decode("utf-8", "surrogateescape")): url.decode(
            "utf-8", "surrogateescape"
        )
        for path, url, _ in parse_submodules(config)
    }


def resolve_url(url: str, base: str) -> str:
    """The URL git fetches submodule ``url`` from when its superproject is at ``base``."""
    if url.startswith(("./", "../")):
        parts = urlsplit(base)
        joined = posixpath.normpath(posixpath.join(parts.path.rstrip("/") or "/", url))
        return urlunsplit((parts.scheme, parts.netloc, joined, "", ""))
    if "://" not in url and (scp := _SCP_LIKE.match(url)):
        user = f"{scp['user']}@" if scp["user"] else ""
        return f"ssh://{user}{scp['host']}/{scp['path'].lstrip('/')}"
    return url


def _populate(
    snapshot: Snapshot,
    url: str,
    fetch_commit: FetchCommit,
    wanted: Callable[[str], bool],
    *,
    prefix: str,
    depth: int,
) -> Snapshot:
    files = _prefixed(snapshot.files, prefix)
    gitlinks = _prefixed(snapshot.gitlinks, prefix)
    if not snapshot.gitlinks:
        return Snapshot(files, gitlinks)
    urls = submodule_urls(snapshot.files.get(GITMODULES), where=prefix)
    for path, sha in sorted(snapshot.gitlinks.items()):
        location = prefix + path
        written = urls.get(path)
        if written is None or not wanted(location):
            continue
        if depth > MAX_DEPTH:
            raise GitError(
                f"submodule '{location}' is nested more than {MAX_DEPTH} levels deep;"
                " fluxd stops recursing there"
            )
        source = resolve_url(written, url)
        try:
            fetched = fetch_commit(source, sha)
        except GitError as error:
            raise GitError(
                f"failed to fetch submodule '{location}' from '{redact_url(source)}' at commit"
                f" '{sha}': {error.message}",
                reason=error.reason,
            ) from error
        nested = _populate(
            fetched, source, fetch_commit, wanted, prefix=location + "/", depth=depth + 1
        )
        files.update(nested.files)
        gitlinks.update(nested.gitlinks)
    return Snapshot(files, gitlinks)


def _prefixed(entries: Mapping[str, _V], prefix: str) -> dict[str, _V]:
    return {prefix + path: value for path, value in entries.items()}
