"""Commit changed files on top of a checkout and push them, as image automation does.

The commit is built in memory on the checkout's objects (:func:`~fluxd.sources.git.remote.
checkout`, depth 1): new blobs for the changed files, new trees up their paths, one
commit whose parent is the checked-out tip; only those new objects are sent. The push
is conditional: when the remote's branch no longer points where it did at checkout time
(someone pushed meanwhile), nothing is sent and :class:`PushConflict` tells the caller to
start again from a fresh checkout, so a concurrent commit is never overwritten.

Refspecs (``spec.git.push.refspec``) push the same commit to more refs: their source must
be the pushed commit (``HEAD``, the branch, or ``refs/heads/<branch>``), a ``+`` forces.

A branch the remote does not have yet (an empty repository has none) is started by
:func:`unborn_checkout`: its first commit has no parent, and the push creates the branch
only if nobody created it meanwhile. :func:`branch_checkout` picks one or the other, as
``fluxd bootstrap`` needs.
"""

from __future__ import annotations

import functools
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import anyio
import anyio.to_thread
from dulwich.objects import Blob, ObjectID, Tree
from dulwich.objects import Commit as DulwichCommit
from dulwich.pack import UnpackedObject
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo

from fluxd.api import GitRepositoryRef
from fluxd.sources.git.remote import Checkout, Commit, checkout, explain_failure
from fluxd.sources.git.transport import GitAuth, GitError, open_client, redact_url

__all__ = [
    "Author",
    "PushConflict",
    "Refspec",
    "branch_checkout",
    "commit_and_push",
    "parse_refspec",
    "unborn_checkout",
]

#: What a git server says of a ref that moved under the push (a race with another push).
_MOVED = ("non-fast-forward", "fetch first", "failed to update ref", "failed to lock")
_REFSPEC_RE = re.compile(r"^(\+?)([^:]+):(refs/\S+)$")


class PushConflict(GitError):
    """The remote branch moved since the checkout: retry on a fresh one."""


@dataclass(frozen=True)
class Author:
    """Who the commit is by (author and committer alike, as Flux commits)."""

    name: str
    email: str

    def line(self) -> bytes:
        return f"{self.name} <{self.email}>".encode()


@dataclass(frozen=True)
class Refspec:
    """One extra ref the commit is pushed to."""

    destination: str
    force: bool


def parse_refspec(text: str, branch: str) -> Refspec:
    """``[+]<src>:<refs/...>`` whose source is the pushed commit; ValueError otherwise."""
    m = _REFSPEC_RE.match(text.strip())
    if m is None:
        raise ValueError(f"refspec '{text}' is not '[+]<source>:refs/<destination>'")
    force, source, destination = m.groups()
    if source not in ("HEAD", branch, f"refs/heads/{branch}"):
        raise ValueError(
            f"refspec '{text}': the source must be the pushed commit"
            f" ('HEAD' or the branch '{branch}')"
        )
    return Refspec(destination, bool(force))


def unborn_checkout(branch: str) -> Checkout:
    """A checkout of ``branch`` where the remote has no such branch: no files, no commit;
    :func:`commit_and_push` on it makes a root commit and creates the branch."""
    nothing = Commit(
        sha="", revision="", message="", author="", signed_payload=None, signature=None
    )
    return Checkout(nothing, {}, MemoryRepo(), branch, None)


async def branch_checkout(
    url: str,
    auth: GitAuth,
    timeout: float,  # noqa: ASYNC109 - the caller's deadline for each git connection
    *,
    branch: str,
) -> Checkout:
    """The tip of ``branch`` to commit on (depth 1), or :func:`unborn_checkout` when the
    remote has no such branch; GitError when the remote cannot be listed."""
    work = functools.partial(_has_branch_sync, url, auth, timeout, branch)
    try:
        with anyio.fail_after(timeout):
            exists = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except TimeoutError:
        raise GitError(
            f"unable to list the branches of '{redact_url(url)}': timed out after {timeout:g}s"
        ) from None
    if not exists:
        return unborn_checkout(branch)
    return await checkout(url, GitRepositoryRef(branch=branch), auth, timeout, branch=branch)


def _has_branch_sync(url: str, auth: GitAuth, timeout: float, branch: str) -> bool:
    wanted = f"refs/heads/{branch}".encode()
    try:
        client, path = open_client(url, auth, timeout)
        try:
            refs = client.get_refs(path.encode(), ref_prefix=[wanted]).refs
        finally:
            client.close()
    except GitError:
        raise
    except Exception as error:
        cause, reason = explain_failure(error)
        message = f"unable to list the branches of '{redact_url(url)}': {cause}"
        raise GitError(_redacted(message, auth), reason=reason) from error
    return any(bytes(name) == wanted for name in refs)


async def commit_and_push(
    checkout: Checkout,
    url: str,
    auth: GitAuth,
    timeout: float,  # noqa: ASYNC109 - the reconciler passes spec.timeout through
    *,
    files: Mapping[str, bytes],
    author: Author,
    message: str,
    refspecs: Sequence[Refspec] = (),
    options: Mapping[str, str] | None = None,
    sign: Callable[[bytes], bytes] | None = None,
) -> str:
    """Commit ``files`` (changed contents by path) on the checkout and push it to the
    checkout's branch and ``refspecs``, with push ``options`` (``key=value``, or ``key``
    for an empty value); the new commit's sha. :class:`PushConflict` when
    the branch moved, GitError when the server refuses the push."""
    work = functools.partial(
        _commit_and_push_sync,
        checkout,
        url,
        auth,
        timeout,
        files,
        author,
        message,
        refspecs,
        [
            (f"{key}={value}" if value else key).encode()
            for key, value in sorted((options or {}).items())
        ],
        sign,
    )
    try:
        with anyio.fail_after(timeout):
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except TimeoutError:
        raise GitError(
            f"unable to push to '{redact_url(url)}': timed out after {timeout:g}s"
        ) from None


def _commit_and_push_sync(
    checkout: Checkout,
    url: str,
    auth: GitAuth,
    timeout: float,
    files: Mapping[str, bytes],
    author: Author,
    message: str,
    refspecs: Sequence[Refspec],
    options: Sequence[bytes],
    sign: Callable[[bytes], bytes] | None,
) -> str:
    store = checkout.repo.object_store
    commit = DulwichCommit()
    if checkout.commit.sha:
        base = store[ObjectID(checkout.commit.sha.encode("ascii"))]
        assert isinstance(base, DulwichCommit)
        commit.tree = _replace_files(store, base.tree, _split(files))
        commit.parents = [base.id]
    else:  # an unborn branch: the root commit
        commit.tree = _replace_files(store, b"", _split(files))
        commit.parents = []
    commit.author = commit.committer = author.line()
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message.encode()
    if sign is not None:
        commit.gpgsig = sign(commit.as_raw_string())
    store.add_object(commit)
    try:
        _push(checkout, url, auth, timeout, commit.id, refspecs, options)
    except GitError as error:
        raise type(error)(_redacted(error.message, auth), reason=error.reason) from error
    except Exception as error:
        cause, reason = explain_failure(error)
        message = f"unable to push to '{redact_url(url)}': {cause}"
        raise GitError(_redacted(message, auth), reason=reason) from error
    return commit.id.decode("ascii")


def _push(
    checkout: Checkout,
    url: str,
    auth: GitAuth,
    timeout: float,
    sha: bytes,
    refspecs: Sequence[Refspec],
    options: Sequence[bytes],
) -> None:
    branch_ref = Ref(f"refs/heads/{checkout.branch}".encode())
    moved: list[bytes | None] = []

    def update_refs(refs: dict[Ref, ObjectID]) -> dict[Ref, ObjectID]:
        current = refs.get(branch_ref)
        if current != checkout.remote_tip:
            moved.append(current)
            return refs
        wanted = dict(refs)
        wanted[branch_ref] = ObjectID(sha)
        for spec in refspecs:
            wanted[Ref(spec.destination.encode())] = ObjectID(sha)
        return wanted

    def pack(
        have: AbstractSet[ObjectID],
        want: AbstractSet[ObjectID],
        *,
        ofs_delta: bool = False,
        progress: Callable[[bytes], None] | None = None,
    ) -> tuple[int, Iterator[UnpackedObject]]:
        return checkout.repo.generate_pack_data(set(have), set(want), ofs_delta=ofs_delta)

    client, path = open_client(url, auth, timeout)
    try:
        result = client.send_pack(
            path.encode(), update_refs, generate_pack_data=pack, push_options=options or None
        )
    finally:
        client.close()
    if moved:
        raise PushConflict(
            f"branch '{checkout.branch}' moved on the remote since the checkout"
            f" (now at {moved[0].decode() if moved[0] else 'nothing'})"
        )
    _raise_refused(result.ref_status or {}, checkout.branch)


def _raise_refused(ref_status: Mapping[bytes, str | None], branch: str) -> None:
    refused = {ref.decode(): why for ref, why in ref_status.items() if why}
    if not refused:
        return
    detail = "; ".join(f"{ref}: {why}" for ref, why in sorted(refused.items()))
    if any(word in why for why in refused.values() for word in _MOVED):
        raise PushConflict(f"branch '{branch}' moved on the remote during the push ({detail})")
    raise GitError(f"the server rejected the push: {detail}")


def _split(files: Mapping[str, bytes]) -> dict[tuple[str, ...], bytes]:
    return {tuple(path.split("/")): data for path, data in files.items()}


def _replace_files(
    store: object, tree_id: bytes, changes: Mapping[tuple[str, ...], bytes]
) -> ObjectID:
    """The id of ``tree_id`` with ``changes`` (path parts -> content) written into it;
    a file keeps its mode, a new one is a regular file."""
    tree = Tree()
    entries: dict[bytes, tuple[int, bytes]] = {}
    if tree_id:
        old = store[tree_id]  # type: ignore[index]
        assert isinstance(old, Tree)
        entries = {entry.path: (entry.mode, entry.sha) for entry in old.iteritems()}
    nested: dict[str, dict[tuple[str, ...], bytes]] = {}
    for parts, data in changes.items():
        if len(parts) > 1:
            nested.setdefault(parts[0], {})[parts[1:]] = data
            continue
        blob = Blob.from_string(data)
        store.add_object(blob)  # type: ignore[attr-defined]
        name = parts[0].encode()
        mode = entries.get(name, (stat.S_IFREG | 0o644, b""))[0]
        entries[name] = (mode, blob.id)
    for directory, inner in nested.items():
        name = directory.encode()
        mode, sub_id = entries.get(name, (stat.S_IFDIR, b""))
        entries[name] = (stat.S_IFDIR, _replace_files(store, sub_id, inner))
    for name, (mode, sha) in entries.items():
        tree.add(name, mode, ObjectID(sha))
    store.add_object(tree)  # type: ignore[attr-defined]
    return tree.id


def _redacted(message: str, auth: GitAuth) -> str:
    for secret in auth.secrets():
        message = message.replace(secret, "***")
    return message
