"""The artifact a source reconciler produces: a file tree and Flux's tarball of it.

In-process consumers (kustomize, helm) read `Artifact.files` directly (a
:class:`~fluxd.sources.store.Tree` once the cache holds it, so contents are shared).
The tarball is not kept: its digest and size are computed while it is streamed into a
hash, and the HTTP artifact server builds it again when asked, byte for byte the same.

Some artifacts are one file served as is, not a tarball: a HelmRepository's index, a
HelmChart's packaged chart. Such an artifact names that file as its ``blob``; its
digest and size are the file's own, and the content store keeps it like any other file.
`status.artifact` keeps Flux's contract:

- `path`: `<kind lowercased>/<namespace>/<name>/<file name>`. For a GitRepository the
  file name is `<commit hex>.tar.gz` (source-controller `NewArtifactFor(kind, obj,
  revision, fmt.Sprintf("%s.tar.gz", commit.Hash))`), e.g.
  `gitrepository/flux-system/podinfo/4d6f...e1.tar.gz`.
- `url`: `http://<storage host>/<path>`; when the configured base already carries a
  scheme (`http://` or `https://`) it is used as is (source-controller `SetArtifactURL`).
- `digest`: `sha256:<hex>` of the `.tar.gz` bytes; `size`: their length.
- `lastUpdateTime`: when the tarball was built, RFC 3339 in UTC with seconds precision.

The tarball is built like source-controller's `Storage.Archive`: entries in the order of
Go's `filepath.Walk` (a `.` entry for the root, then depth-first, names sorted within
each directory, directories before their contents), uid/gid 0, empty user and group
names, zero mtime, mode 0o750 for directories, 0o600 for files and 0o700 for
executables (fluxcd/pkg `artifact/storage` since 2025), gzip without a timestamp. The
same tree therefore always yields the same bytes and digest within one zlib build; the
bytes are not identical to Flux's, since Go's deflate encoder differs from zlib's.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Protocol

from fluxd.sources.store import Tree

__all__ = [
    "Artifact",
    "artifact_path",
    "artifact_url",
    "build_tarball",
    "make_artifact",
    "write_tarball",
]

DIR_MODE = 0o750
FILE_MODE = 0o600
EXEC_MODE = 0o700
_GZIP_LEVEL = 6  # Go's gzip.DefaultCompression


@dataclass(frozen=True)
class Artifact:
    revision: str
    digest: str
    size: int
    path: str
    url: str
    last_update_time: datetime
    files: Mapping[str, bytes] = field(repr=False, compare=False)
    executables: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    #: The file of `files` that is the artifact itself, for a one-file artifact.
    blob: str | None = field(default=None, repr=False, compare=False)
    #: Another file name, in the directory of `path`, the artifact is served under while
    #: it is the latest: Flux's symlink that `status.url` names (`index.yaml` of a
    #: HelmRepository, `latest.tar.gz` of a HelmChart).
    alias: str | None = field(default=None, repr=False, compare=False)

    @property
    def alias_path(self) -> str | None:
        if self.alias is None:
            return None
        return f"{self.path.rpartition('/')[0]}/{self.alias}"

    def content(self) -> bytes:
        """The bytes whose digest is `digest`: the blob, or the `.tar.gz` of `files` built
        again."""
        if self.blob is not None:
            return self.files[self.blob]
        return build_tarball(self.files, executables=self.executables)

    def to_status(self) -> dict[str, object]:
        """The `status.artifact` object, field names and formats as Flux writes them."""
        return {
            "path": self.path,
            "url": self.url,
            "revision": self.revision,
            "digest": self.digest,
            "lastUpdateTime": self.last_update_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "size": self.size,
        }


def artifact_path(*, kind: str, namespace: str, name: str, file_name: str) -> str:
    return f"{kind.lower()}/{namespace}/{name}/{file_name}"


def artifact_url(base_url: str, path: str) -> str:
    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        base = f"http://{base}"
    return f"{base}/{path.lstrip('/')}"


def build_tarball(files: Mapping[str, bytes], *, executables: Collection[str] = ()) -> bytes:
    """A deterministic `.tar.gz` of `files` (relative `/`-separated path -> content)."""
    out = io.BytesIO()
    write_tarball(files, out, executables=executables)
    return out.getvalue()


class Sink(Protocol):
    """Where a tarball is written: a file, a buffer, a hash."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


def write_tarball(
    files: Mapping[str, bytes], out: Sink, *, executables: Collection[str] = ()
) -> None:
    """Stream the deterministic `.tar.gz` of `files` into `out`, one file at a time."""
    paths = {path: _split_path(path) for path in files}
    unknown = set(executables) - paths.keys()
    if unknown:
        raise ValueError(f"executables not among the files: {sorted(unknown)}")
    entries: dict[tuple[str, ...], str | None] = {}
    for path, parts in paths.items():
        for depth in range(1, len(parts)):
            prefix = parts[:depth]
            if entries.get(prefix) is not None:
                raise ValueError(f"{'/'.join(prefix)!r} is both a file and a directory")
            entries[prefix] = None
        if parts in entries:
            raise ValueError(f"{path!r} is both a file and a directory")
        entries[parts] = path

    with (
        gzip.GzipFile(
            fileobj=out, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0, filename=""
        ) as compressed,
        tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(_header(".", tarfile.DIRTYPE, DIR_MODE, 0))
        # Sorting component tuples reproduces filepath.Walk's lexical depth-first order.
        for parts in sorted(entries):
            source = entries[parts]
            name = "/".join(parts)
            if source is None:
                tar.addfile(_header(name, tarfile.DIRTYPE, DIR_MODE, 0))
                continue
            content = files[source]
            mode = EXEC_MODE if source in executables else FILE_MODE
            tar.addfile(_header(name, tarfile.REGTYPE, mode, len(content)), io.BytesIO(content))


class _Digest:
    """A sink that keeps only the sha256 and length of what it is given."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""


def make_artifact(
    *,
    kind: str,
    namespace: str,
    name: str,
    revision: str,
    files: Mapping[str, bytes],
    base_url: str,
    file_name: str | None = None,
    executables: Collection[str] = (),
    blob: str | None = None,
    alias: str | None = None,
    now: datetime | None = None,
) -> Artifact:
    """Every `status.artifact` field for `files`; the tarball is hashed, not kept.

    `file_name` defaults to `<hex>.tar.gz` with the hex digest that ends `revision`
    (`main@sha1:<hex>` -> the commit), or the tarball's own digest when the revision
    has none. With `blob`, the artifact is that one file of `files` (its digest and
    size), and `file_name` defaults to the blob's name.
    """
    frozen: Mapping[str, bytes]
    if blob is not None:
        frozen = files if isinstance(files, Tree) else MappingProxyType(dict(files))
        content = frozen[blob]
        digest_hex, size = hashlib.sha256(content).hexdigest(), len(content)
        file_name = file_name or blob.rpartition("/")[2]
    elif isinstance(files, Tree):
        frozen = files
        if executables:
            digest_hex, size = _tarball_digest(files, executables)
        else:
            files.tarball = files.tarball or _tarball_digest(files, executables)
            digest_hex, size = files.tarball
    else:
        frozen = MappingProxyType(dict(sorted(files.items())))
        digest_hex, size = _tarball_digest(frozen, executables)
    if file_name is None:
        file_name = f"{_revision_hex(revision) or digest_hex}.tar.gz"
    path = artifact_path(kind=kind, namespace=namespace, name=name, file_name=file_name)
    when = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return Artifact(
        revision=revision,
        digest=f"sha256:{digest_hex}",
        size=size,
        path=path,
        url=artifact_url(base_url, path),
        last_update_time=when,
        files=frozen,
        executables=frozenset(executables),
        blob=blob,
        alias=alias,
    )


def _tarball_digest(files: Mapping[str, bytes], executables: Collection[str]) -> tuple[str, int]:
    digest = _Digest()
    write_tarball(files, digest, executables=executables)
    return digest.sha256.hexdigest(), digest.size


def _revision_hex(revision: str) -> str | None:
    _, sep, tail = revision.rpartition(":")
    if sep and tail and all(c in "0123456789abcdef" for c in tail):
        return tail
    return None


def _split_path(path: str) -> tuple[str, ...]:
    parts = tuple(path.split("/"))
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"artifact file path must be relative and normalised: {path!r}")
    return parts


def _header(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
