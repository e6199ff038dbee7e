"""ExternalArtifact sources: a tarball another controller publishes, fetched over HTTP.

An ``ExternalArtifact`` (``source.toolkit.fluxcd.io/v1``) is written by a third-party
producer; fluxd never reconciles it, it only consumes its ``status.artifact``: the
tarball at ``url`` is downloaded, its bytes must hash to ``digest`` (``sha256:<hex>``),
and it is unpacked as Flux artifacts are packed (a ``.tar.gz`` of regular files and
directories). Nothing unverified is ever built from.

A packed instance (``packed=True``, what HelmReleases use: their ExternalArtifact is a
packaged chart, which the Helm SDK loads whole) keeps the verified tarball as it came, a
one-file artifact whose content is those exact bytes; the chart loader judges it.

Fetched artifacts are kept by digest, their files in the shared content store, so
reconciling again, or several consumers sharing one ExternalArtifact, costs no
download; an entry is dropped once no consumer uses its digest any more (its consumer
moved to another artifact or was forgotten). ``metadata`` of the artifact is passed on,
since it carries the ``org.opencontainers.image.revision`` Flux records as the origin
revision.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import posixpath
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

import aiohttp

from fluxd.runtime.keys import ObjectKey
from fluxd.sources.artifact import Artifact
from fluxd.sources.store import ContentStore

__all__ = [
    "ORIGIN_REVISION_KEY",
    "ExternalArtifactError",
    "ExternalArtifacts",
    "FetchedArtifact",
    "Problem",
]

#: The artifact metadata key holding the revision the artifact was built from.
ORIGIN_REVISION_KEY = "org.opencontainers.image.revision"
_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=300)


#: How far the producer got when its artifact cannot be used: no ExternalArtifact
#: (``absent``), no ``status.artifact`` yet (``unpublished``), the tarball not (yet) at
#: its URL (``missing``, which a retry may fix), or an artifact that is wrong (``invalid``).
Problem = Literal["absent", "unpublished", "missing", "invalid"]


class ExternalArtifactError(Exception):
    """The artifact cannot be used; the message says what and where, ``problem`` how far
    the producer got (each consumer words that as its Flux controller does)."""

    def __init__(self, message: str, *, problem: Problem = "invalid") -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class FetchedArtifact:
    """A verified, unpacked external artifact and the metadata its producer gave it."""

    artifact: Artifact
    metadata: Mapping[str, str]

    @property
    def origin_revision(self) -> str:
        return self.metadata.get(ORIGIN_REVISION_KEY, "")


class ExternalArtifacts:
    """Downloads of ExternalArtifacts' tarballs, kept by digest while a consumer uses them."""

    def __init__(self, store: ContentStore | None = None, *, packed: bool = False) -> None:
        self.store = store or ContentStore()
        self.packed = packed
        self._by_digest: dict[str, Artifact] = {}
        self._digest_of: dict[ObjectKey, str] = {}

    async def fetch(
        self, consumer: ObjectKey, source: ObjectKey, found: Mapping[str, Any] | None
    ) -> FetchedArtifact:
        """The artifact the ExternalArtifact ``source`` (``found`` as read, ``None`` when
        it does not exist) publishes in ``status.artifact``, downloaded and verified unless
        its digest is known; kept while ``consumer`` uses it."""
        where = f"ExternalArtifact '{source.namespace}/{source.name}'"
        if found is None:
            self.forget(consumer)
            raise ExternalArtifactError(f"{where} not found", problem="absent")
        status_artifact = (found.get("status") or {}).get("artifact")
        if not status_artifact:
            raise ExternalArtifactError(
                f"{where} has not published status.artifact yet", problem="unpublished"
            )
        url = str(status_artifact.get("url") or "")
        digest = str(status_artifact.get("digest") or "")
        revision = str(status_artifact.get("revision") or "")
        path = str(status_artifact.get("path") or "")
        if not url or not digest.startswith("sha256:"):
            raise ExternalArtifactError(
                f"{where}: status.artifact needs a url and a digest 'sha256:<hex>' "
                f"(got url {url!r}, digest {digest!r})"
            )
        metadata = {str(k): str(v) for k, v in (status_artifact.get("metadata") or {}).items()}
        artifact = self._by_digest.get(digest)
        if artifact is not None and (artifact.revision, artifact.url, artifact.path) != (
            revision,
            url,
            path,
        ):
            # The same bytes published again under another name: no download.
            artifact = dataclasses.replace(artifact, revision=revision, url=url, path=path)
        if artifact is None:
            tarball = await _download(url, where)
            computed = "sha256:" + hashlib.sha256(tarball).hexdigest()
            if computed != digest:
                raise ExternalArtifactError(
                    f"{where}: the tarball at {url} has digest {computed}, but "
                    f"status.artifact.digest is {digest}: refusing to build from it"
                )
            blob = posixpath.basename(path) or "artifact.tar.gz"
            artifact = Artifact(
                revision=revision,
                digest=digest,
                size=len(tarball),
                path=path,
                url=url,
                last_update_time=datetime.now(UTC).replace(microsecond=0),
                files=self.store.tree({blob: tarball} if self.packed else _unpack(tarball, where)),
                blob=blob if self.packed else None,
            )
        self._remember(consumer, artifact)
        return FetchedArtifact(artifact, MappingProxyType(metadata))

    def forget(self, consumer: ObjectKey) -> None:
        """``consumer`` no longer uses an artifact (it went away, or its source did)."""
        self._remember(consumer, None)

    def _remember(self, consumer: ObjectKey, artifact: Artifact | None) -> None:
        previous = self._digest_of.pop(consumer, None)
        if artifact is not None:
            self._digest_of[consumer] = artifact.digest
            self._by_digest[artifact.digest] = artifact
        if previous is not None and previous not in self._digest_of.values():
            self._by_digest.pop(previous, None)


async def _download(url: str, where: str) -> bytes:
    try:
        async with (
            aiohttp.ClientSession(timeout=_FETCH_TIMEOUT) as session,
            session.get(url) as response,
        ):
            if response.status == 404:
                raise ExternalArtifactError(
                    f"{where}: artifact not found at {url} (HTTP 404)", problem="missing"
                )
            if response.status != 200:
                raise ExternalArtifactError(
                    f"{where}: fetching {url} failed: HTTP {response.status} {response.reason}"
                )
            return await response.read()
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ExternalArtifactError(f"{where}: fetching {url} failed: {error}") from error


def _unpack(tarball: bytes, where: str) -> Mapping[str, bytes]:
    """The regular files of a ``.tar.gz``; a path leaving the root fails the artifact."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tarball)), mode="r:") as tar:
            for member in tar:
                name = posixpath.normpath(member.name)
                if name.startswith(("/", "../")) or name == "..":
                    raise ExternalArtifactError(
                        f"{where}: the tarball entry {member.name!r} points outside the artifact"
                    )
                if member.isdir() or name == ".":
                    continue
                if not member.isfile():
                    raise ExternalArtifactError(
                        f"{where}: the tarball entry {member.name!r} is not a regular file "
                        "or directory (links are not allowed in artifacts)"
                    )
                extracted = tar.extractfile(member)
                files[name] = extracted.read() if extracted is not None else b""
    except (OSError, EOFError, tarfile.TarError) as error:
        raise ExternalArtifactError(
            f"{where}: the artifact is not a valid .tar.gz: {error}"
        ) from error
    return MappingProxyType(dict(sorted(files.items())))
