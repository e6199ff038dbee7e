"""Fetch one git revision into memory, the way Flux's source-controller picks it.

``resolve`` is the cheap "did it move?" check: one ls-remote, no objects.
``fetch`` downloads the chosen commit (shallow where it can) into a dulwich
``MemoryRepo`` and returns its file tree as ``{posix path: bytes}``; nothing
touches the disk. On request it also fetches the commit's submodules (see
:mod:`~fluxd.sources.git.submodules`; each pinned commit is asked for directly, depth
1, with the parent's credentials) and keeps only the ``spec.sparseCheckout`` paths
(see :mod:`~fluxd.sources.git.sparse`).

Reference precedence and revision strings follow Flux v1:

==========================  =========================  ==============================
``spec.ref``                 what is fetched            revision
==========================  =========================  ==============================
(empty)                      branch ``master``          ``master@sha1:<hex>``
``branch: main``             tip of the branch, depth 1 ``main@sha1:<hex>``
``tag: v1``                  the tag, peeled, depth 1   ``v1@sha1:<hex>``
``semver: ^1``               highest matching tag       ``v1.4.0@sha1:<hex>``
``name: refs/pull/1/head``   that ref, depth 1          ``refs/pull/1/head@sha1:<hex>``
``commit`` (+ ``branch``)    history of the branch(es)  ``main@sha1:<hex>`` / ``sha1:<hex>``
==========================  =========================  ==============================

with precedence commit > name > semver > tag > branch. The reference is the API's
``GitRepositoryRef`` as parsed from ``spec.ref``, and its ``effective()`` is the one
place that precedence is decided: the ref filter, the selection and the messages here
all ask it. ``refs/heads/x`` and ``refs/tags/x`` given as ``name`` are shortened to
``x`` as Flux does.

dulwich is synchronous, so the work runs in a worker thread under an anyio
deadline; the transports also carry socket timeouts (see ``git_transport``) so
that an abandoned thread ends on its own.
"""

from __future__ import annotations

import functools
import http.client
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread
import paramiko
import urllib3.exceptions
from dulwich.client import GitClient, HTTPUnauthorized
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.objects import Blob, ObjectID, Tag, Tree
from dulwich.objects import Commit as DulwichCommit
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo

from fluxd import semver
from fluxd.api import GitRepositoryRef
from fluxd.sources.git.sparse import FULL_CHECKOUT, SparseCheckout
from fluxd.sources.git.submodules import Snapshot, populate
from fluxd.sources.git.transport import GitAuth, GitError, open_client, redact_url

if TYPE_CHECKING:
    from dulwich.client import DetermineWantsFunc

__all__ = [
    "Checkout",
    "Commit",
    "checkout",
    "explain_failure",
    "fetch",
    "format_revision",
    "resolve",
]

_PEELED = b"^{}"
_T = TypeVar("_T")
_LABELS = {"name": "ref", "semver": "semver range", "tag": "tag", "branch": "branch"}


@dataclass(frozen=True)
class Commit:
    """The fetched commit, with what signature verification needs."""

    sha: str
    revision: str
    message: str
    author: str
    signed_payload: bytes | None  # the raw commit without its gpgsig header
    signature: bytes | None  # the gpgsig header value (PGP or SSH armour)
    tag_payload: bytes | None = None  # same for the annotated tag, if the ref was one
    tag_signature: bytes | None = None


@dataclass(frozen=True)
class Checkout:
    """A commit fetched to be committed on top of and pushed: its files and objects."""

    commit: Commit
    files: dict[str, bytes]
    repo: MemoryRepo
    #: The branch the checkout is on: the push branch when the remote has it.
    branch: str
    #: What the remote's ``refs/heads/<branch>`` was at fetch time; None: no such branch.
    remote_tip: bytes | None


def format_revision(ref_name: str, sha: str) -> str:
    """Flux's revision string: ``<short ref>@sha1:<hex>``, or ``sha1:<hex>`` without a ref."""
    return f"{ref_name}@sha1:{sha}" if ref_name else f"sha1:{sha}"


async def resolve(
    url: str,
    ref: GitRepositoryRef,
    auth: GitAuth,
    timeout: float,  # noqa: ASYNC109 - the reconciler passes spec.timeout through
) -> tuple[str, str]:
    """``(ref name as in the revision, commit sha)`` from one ls-remote.

    Annotated tags are peeled to their commit when the server advertises the
    peeled value (all git servers do); a ``commit`` ref resolves to itself.
    """
    work = functools.partial(_resolve_sync, url, ref, auth, timeout)
    return await _in_thread(url, ref, timeout, work)


async def fetch(
    url: str,
    ref: GitRepositoryRef,
    auth: GitAuth,
    timeout: float,  # noqa: ASYNC109 - the reconciler passes spec.timeout through
    *,
    recurse_submodules: bool = False,
    sparse: SparseCheckout = FULL_CHECKOUT,
) -> tuple[Commit, dict[str, bytes]]:
    """The commit ``ref`` points at and its files; GitError on any failure.

    Files are regular blobs by path; a symlink maps to its target path as
    bytes. Submodules (gitlinks) are left out, as Flux does by default, unless
    ``recurse_submodules``: then their files are fetched too, nested ones included.
    With ``sparse`` paths, only those are kept, and a listed path the tree does not
    have is a GitError. The whole fetch, submodules included, runs under ``timeout``.
    """
    work = functools.partial(
        _fetch_sync,
        url,
        ref,
        auth,
        timeout,
        recurse_submodules=recurse_submodules,
        sparse=sparse,
    )
    return await _in_thread(url, ref, timeout, work)


async def checkout(
    url: str,
    ref: GitRepositoryRef,
    auth: GitAuth,
    timeout: float,  # noqa: ASYNC109 - the reconciler passes spec.timeout through
    *,
    branch: str,
) -> Checkout:
    """The commit to update and push to ``branch``: that branch's tip when the remote
    has it, else the commit ``ref`` selects (the new branch starts there), as Flux's
    image automation switches branches. One connection, depth 1; GitError on failure."""
    work = functools.partial(_checkout_sync, url, ref, auth, timeout, branch)
    return await _in_thread(url, ref, timeout, work)


async def _in_thread(
    url: str, ref: GitRepositoryRef, deadline: float, work: Callable[[], _T]
) -> _T:
    try:
        with anyio.fail_after(deadline):
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except TimeoutError:
        raise GitError(
            f"unable to fetch '{redact_url(url)}' at {_describe(ref)}: timed out after"
            f" {deadline:g}s; check that the server is reachable or raise spec.timeout"
        ) from None


# --- selection: which advertised ref and which objects to ask for ----------------------


@dataclass(frozen=True)
class _Selection:
    name: str  # as in the revision; "" for a bare commit
    wants: tuple[bytes, ...]  # object ids to request
    target: bytes  # object to peel to the commit (ref value, or the commit itself)
    ref: bytes | None = None  # the full ref name, when the target is a ref's value


def _describe(ref: GitRepositoryRef) -> str:
    """How the reference reads in a message, e.g. ``branch 'main'``."""
    kind, value = ref.effective()
    if kind == "commit":
        where = f" on branch '{ref.branch}'" if ref.branch else ""
        return f"commit '{value}'{where}"
    return f"{_LABELS[kind]} '{value}'"


def _ref_prefixes(ref: GitRepositoryRef) -> list[bytes]:
    """Server-side ref filters (protocol v2), narrowing big repositories' adverts."""
    kind, value = ref.effective()
    if kind == "commit":
        return [f"refs/heads/{ref.branch}".encode()] if ref.branch else [b"refs/heads/"]
    if kind == "name":
        return [value.encode()]
    if kind == "semver":
        return [b"refs/tags/"]
    if kind == "tag":
        return [f"refs/tags/{value}".encode()]
    return [f"refs/heads/{value}".encode()]


def _short_name(full: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if full.startswith(prefix):
            return full[len(prefix) :]
    return full


def _select(refs: Mapping[bytes, bytes | None], ref: GitRepositoryRef) -> _Selection:
    """Pick the ref per Flux precedence; raises _Missing naming what was not found."""
    kind, value = ref.effective()
    if kind == "commit":
        commit = value.lower().encode()
        if ref.branch:
            tip = refs.get(f"refs/heads/{ref.branch}".encode())
            if tip is None:
                raise _Missing(f"couldn't find remote ref 'refs/heads/{ref.branch}'")
            return _Selection(ref.branch, (tip,), commit)
        heads = tuple(
            sha
            for name, sha in refs.items()
            if sha is not None and name.startswith(b"refs/heads/") and not name.endswith(_PEELED)
        )
        if not heads:
            raise _Missing("the repository has no branches to search for the commit")
        return _Selection("", heads, commit)
    if kind == "name":
        full = value
    elif kind == "semver":
        try:
            constraint = semver.Constraint.parse(value)
        except ValueError as exc:
            raise _Missing(f"{exc}; see Masterminds semver constraint syntax") from exc
        tags = [
            name[len(b"refs/tags/") :].decode("utf-8", "replace")
            for name in refs
            if name.startswith(b"refs/tags/") and not name.endswith(_PEELED)
        ]
        best = semver.max_satisfying(tags, constraint)
        if best is None:
            raise _Missing(f"no tag matches semver range '{value}'")
        full = f"refs/tags/{best}"
    elif kind == "tag":
        full = f"refs/tags/{value}"
    else:
        full = f"refs/heads/{value}"
    sha = refs.get(full.encode())
    if sha is None:
        raise _Missing(f"couldn't find remote ref '{full}'")
    return _Selection(_short_name(full), (sha,), sha, full.encode())


class _Missing(Exception):
    """The wanted ref or commit is not on the remote."""


# --- the synchronous work, run in a worker thread ---------------------------------------


def _resolve_sync(
    url: str, ref: GitRepositoryRef, auth: GitAuth, timeout: float
) -> tuple[str, str]:
    return _guarded(url, ref, auth, functools.partial(_ls_remote, url, ref, auth, timeout))


def _ls_remote(url: str, ref: GitRepositoryRef, auth: GitAuth, timeout: float) -> tuple[str, str]:
    client, path = open_client(url, auth, timeout)
    try:
        result = client.get_refs(path.encode(), ref_prefix=_ref_prefixes(ref))
    finally:
        client.close()
    refs = {bytes(name): sha for name, sha in result.refs.items()}
    selection = _select(refs, ref)
    if selection.ref is None:  # a commit: it cannot move
        return selection.name, selection.target.decode("ascii")
    peeled = refs.get(selection.ref + _PEELED)
    return selection.name, (peeled or selection.target).decode("ascii")


def _fetch_sync(
    url: str,
    ref: GitRepositoryRef,
    auth: GitAuth,
    timeout: float,
    *,
    recurse_submodules: bool = False,
    sparse: SparseCheckout = FULL_CHECKOUT,
) -> tuple[Commit, dict[str, bytes]]:
    def work() -> tuple[Commit, dict[str, bytes]]:
        commit, snapshot = _fetch_objects(url, ref, auth, timeout)
        if recurse_submodules:
            fetch_commit = functools.partial(_fetch_commit, auth, timeout)
            snapshot = populate(snapshot, url, fetch_commit, wanted=sparse.reaches)
        missing = sparse.missing(snapshot.files, snapshot.gitlinks)
        if missing:
            listed = ", ".join(f"'{path}'" for path in missing)
            raise GitError(
                f"sparse checkout dir {listed} (spec.sparseCheckout) does not exist in the"
                f" repository at commit '{commit.sha}'"
            )
        return commit, sparse.select(snapshot.files)

    return _guarded(url, ref, auth, work)


def _checkout_sync(
    url: str, ref: GitRepositoryRef, auth: GitAuth, timeout: float, branch: str
) -> Checkout:
    branch_ref = f"refs/heads/{branch}".encode()
    found: list[tuple[_Selection, bytes | None]] = []
    missing: list[_Missing] = []

    def determine_wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
        advertised = {bytes(name): sha for name, sha in refs.items()}
        tip = advertised.get(branch_ref)
        if tip is not None:
            selection = _Selection(branch, (tip,), tip, branch_ref)
        else:
            try:
                selection = _select(advertised, ref)
            except _Missing as exc:
                missing.append(exc)
                return []
        found.append((selection, tip))
        return [ObjectID(sha) for sha in dict.fromkeys(selection.wants)]

    def work() -> Checkout:
        client, path = open_client(url, auth, timeout)
        repo = MemoryRepo()
        kind, _ = ref.effective()
        try:
            client.fetch(
                path.encode(),
                repo,
                determine_wants=determine_wants,
                depth=None if kind == "commit" else 1,
                ref_prefix=[*_ref_prefixes(ref), branch_ref],
            )
        finally:
            client.close()
        if missing:
            raise missing[0]
        selection, tip = found[0]
        commit, snapshot = _checkout(repo, selection)
        return Checkout(commit, snapshot.files, repo, branch, tip)

    return _guarded(url, ref, auth, work)


def _fetch_commit(auth: GitAuth, timeout: float, url: str, sha: str) -> Snapshot:
    """The tree of commit ``sha`` at ``url``, asked for by id at depth 1 (a submodule's
    pinned commit need not be a branch tip); GitError explaining any failure."""
    target = sha.encode("ascii")
    try:
        client, path = open_client(url, auth, timeout)
        repo = MemoryRepo()
        try:
            client.fetch(
                path.encode(),
                repo,
                determine_wants=lambda refs, depth=None: [ObjectID(target)],
                depth=1,
            )
        finally:
            client.close()
        _, snapshot = _checkout(repo, _Selection("", (target,), target))
    except GitError:
        raise
    except HangupException as exc:
        # What a server does when asked for an object it will not send (over HTTP
        # without a word on stderr), so say what the likely causes are.
        cause, reason = explain_failure(exc)
        raise GitError(
            f"{cause} when asked for the commit: it does not have it (was it pushed?) or"
            " does not serve commits by id (protocol v2 servers do)",
            reason=reason,
        ) from exc
    except Exception as exc:
        cause, reason = explain_failure(exc)
        raise GitError(cause, reason=reason) from exc
    return snapshot


def _fetch_objects(
    url: str, ref: GitRepositoryRef, auth: GitAuth, timeout: float
) -> tuple[Commit, Snapshot]:
    client, path = open_client(url, auth, timeout)
    repo = MemoryRepo()
    chosen: list[_Selection] = []
    missing: list[_Missing] = []

    def determine_wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
        # Selecting inside the fetch uses the refs of this very connection,
        # so a ref that moves between two round trips cannot be mixed up.
        try:
            selection = _select({bytes(name): sha for name, sha in refs.items()}, ref)
        except _Missing as exc:
            missing.append(exc)
            return []
        chosen.append(selection)
        return [ObjectID(sha) for sha in dict.fromkeys(selection.wants)]

    try:
        _do_fetch(client, path, repo, determine_wants, ref)
    finally:
        client.close()
    if missing:
        raise missing[0]
    selection = chosen[0]
    return _checkout(repo, selection)


def _do_fetch(
    client: GitClient,
    path: str,
    repo: MemoryRepo,
    determine_wants: DetermineWantsFunc,
    ref: GitRepositoryRef,
) -> None:
    kind, _ = ref.effective()
    client.fetch(
        path.encode(),
        repo,
        determine_wants=determine_wants,
        # A commit is looked for in the history of the branch tips, not at a tip.
        depth=None if kind == "commit" else 1,
        ref_prefix=_ref_prefixes(ref),
    )


def _checkout(repo: MemoryRepo, selection: _Selection) -> tuple[Commit, Snapshot]:
    store = repo.object_store
    if ObjectID(selection.target) not in store:
        raise _Missing(
            f"commit '{selection.target.decode()}' not found"
            + (f" in branch '{selection.name}'" if selection.name else " in any branch")
        )
    obj = store[ObjectID(selection.target)]
    tag_payload: bytes | None = None
    tag_signature: bytes | None = None
    while isinstance(obj, Tag):
        if tag_payload is None:
            tag_payload = obj.raw_without_sig()
            tag_signature = obj.signature or None
        obj = store[obj.object[1]]
    if not isinstance(obj, DulwichCommit):
        raise _Missing(f"'{selection.name}' points at a {obj.type_name.decode()}, not a commit")
    sha = obj.id.decode("ascii")
    commit = Commit(
        sha=sha,
        revision=format_revision(selection.name, sha),
        message=obj.message.decode("utf-8", "replace"),
        author=obj.author.decode("utf-8", "replace"),
        signed_payload=obj.raw_without_sig() if obj.gpgsig else None,
        signature=obj.gpgsig or None,
        tag_payload=tag_payload,
        tag_signature=tag_signature,
    )
    snapshot = Snapshot({})
    _walk(store, obj.tree, "", snapshot)
    return commit, snapshot


def _walk(store: object, tree_id: bytes, prefix: str, snapshot: Snapshot) -> None:
    tree = store[tree_id]  # type: ignore[index]
    assert isinstance(tree, Tree)
    for entry in tree.iteritems():
        name = prefix + entry.path.decode("utf-8", "surrogateescape")
        if stat.S_ISDIR(entry.mode):
            _walk(store, entry.sha, name + "/", snapshot)
        elif stat.S_IFMT(entry.mode) == 0o160000:  # gitlink: a submodule's pinned commit
            snapshot.gitlinks[name] = entry.sha.decode("ascii")
        else:
            blob = store[entry.sha]  # type: ignore[index]
            assert isinstance(blob, Blob)
            snapshot.files[name] = blob.data


# --- errors ------------------------------------------------------------------------------


def _guarded(url: str, ref: GitRepositoryRef, auth: GitAuth, work: Callable[[], _T]) -> _T:
    """Run ``work``; any failure becomes a GitError naming URL, ref and cause, minus secrets."""
    try:
        return work()
    except Exception as exc:
        where = f"'{redact_url(url)}' at {_describe(ref)}"
        if isinstance(exc, GitError):
            message, reason = f"{exc.message} (fetching {where})", exc.reason
        else:
            cause, reason = explain_failure(exc)
            message = f"unable to fetch {where}: {cause}"
        for secret in auth.secrets():
            message = message.replace(secret, "***")
        raise GitError(message, reason=reason) from exc


def explain_failure(exc: Exception) -> tuple[str, str]:
    """What went wrong, in a user's words, and the Flux reason."""
    if isinstance(exc, _Missing):
        return str(exc), "GitOperationFailed"
    if isinstance(exc, HTTPUnauthorized):
        return (
            "authentication failed (HTTP 401): check username/password or bearerToken"
            " in the Secret",
            "GitOperationFailed",
        )
    if isinstance(exc, paramiko.BadHostKeyException):
        return (
            f"the SSH host key of '{exc.hostname}' does not match known_hosts:"
            " update known_hosts in the Secret if the key was rotated",
            "GitOperationFailed",
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return (
            "SSH authentication failed: the server did not accept the identity key in the Secret",
            "GitOperationFailed",
        )
    if isinstance(exc, paramiko.SSHException) and "known_hosts" in str(exc):
        return (
            f"the SSH host key is unknown: {exc}; add the host's key to known_hosts in the Secret",
            "GitOperationFailed",
        )
    if isinstance(exc, NotGitRepository):
        return "repository not found (HTTP 404)", "GitOperationFailed"
    if isinstance(exc, HangupException):
        lines = [line.decode("utf-8", "replace") for line in (exc.stderr_lines or [])]
        detail = "; ".join(line.strip() for line in lines if line.strip())
        return f"the server hung up{': ' + detail if detail else ''}", "GitOperationFailed"
    if isinstance(exc, GitProtocolError):
        return _explain_http(exc)
    if isinstance(exc, ConnectionRefusedError | paramiko.ssh_exception.NoValidConnectionsError):
        return "connection refused: is the server running and the port right?", "GitOperationFailed"
    if isinstance(exc, TimeoutError):
        return "the server did not answer in time", "GitOperationFailed"
    if isinstance(exc, OSError | paramiko.SSHException):
        return f"{type(exc).__name__}: {exc}", "GitOperationFailed"
    return f"{type(exc).__name__}: {exc}", "GitOperationFailed"


def _explain_http(exc: GitProtocolError) -> tuple[str, str]:
    # dulwich flattens urllib3's errors into a GitProtocolError whose text is a
    # long pool repr; the exception chain still says what actually happened.
    causes: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in causes:
        causes.append(link)
        if isinstance(link, urllib3.exceptions.MaxRetryError) and link.__cause__ is None:
            link = link.reason
        else:
            link = link.__cause__

    def seen(kind: type[BaseException]) -> bool:
        return any(isinstance(cause, kind) for cause in causes)

    # NameResolutionError is a NewConnectionError, which is a urllib3 TimeoutError.
    if seen(urllib3.exceptions.NameResolutionError):
        return "cannot resolve the host name: check the URL", "GitOperationFailed"
    if seen(urllib3.exceptions.NewConnectionError):
        return "connection refused: is the server running and the port right?", "GitOperationFailed"
    if seen(urllib3.exceptions.TimeoutError):
        return "the server did not answer in time", "GitOperationFailed"
    text = str(causes[-1])
    if seen(http.client.IncompleteRead) or "ended prematurely" in text:
        return (
            f"the connection broke mid-transfer, the response was truncated ({text}):"
            " the server or a proxy in between closed it early",
            "GitOperationFailed",
        )
    if seen(urllib3.exceptions.SSLError) or "certificate verify failed" in text:
        return (
            f"TLS certificate verification failed ({text}); set ca.crt in the Secret"
            " for a private CA",
            "GitOperationFailed",
        )
    return str(exc), "GitOperationFailed"
