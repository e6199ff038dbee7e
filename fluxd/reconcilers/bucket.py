"""Bucket: the objects under a prefix of an S3-compatible store, as an artifact.

Steps, in order (each failure carries Flux's reason and the ``FetchFailed`` condition):

1. **refuse** what fluxd does not serve (``provider: gcp|azure``, ``sts``,
   ``serviceAccountName``): Stalled, naming the field;
2. **credentials**: endpoint, region, ``secretRef`` keys (or, for ``provider: aws``,
   the AWS credential chain: environment, shared file, web identity, container agent,
   instance metadata), ``certSecretRef`` TLS and the ``proxySecretRef``
   proxy every request goes through (``AuthenticationFailed``);
3. **list**: one ``ListObjectsV2`` walk into the index of keys and ETags, after the root
   ``.sourceignore`` object and ``spec.ignore`` (``BucketOperationFailed``, naming the
   bucket); its digest is the revision, and when it is the revision already served the
   reconcile ends here: an unchanged bucket costs one listing and no download;
4. **download** the objects whose ETag changed, concurrently and bounded, reusing the
   content held for the others (``BucketOperationFailed`` naming the key); the last good
   artifact stays served while this fails (``ArtifactOutdated`` says a newer revision
   waits);
5. **store** the artifact in the shared cache (Kustomizations read it by the Bucket's
   key, as any source's), ``status.artifact``, ``status.url`` (``latest.tar.gz``) and
   ``observedIgnore`` as Flux writes them; a ``NewArtifact`` event counts the files.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import ClassVar, Final, TypeVar

import anyio

from fluxd.api import BUCKET, BucketSpec, parse_duration
from fluxd.kube.objects import ObjectApi
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime import conditions
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.sources import bucket
from fluxd.sources.artifact import Artifact, artifact_url, make_artifact
from fluxd.sources.bucket.index import artifact_path
from fluxd.sources.cache import ArtifactCache

__all__ = ["BucketReconciler"]

FETCH_FAILED: Final = "FetchFailed"
ARTIFACT_OUTDATED: Final = "ArtifactOutdated"
ARTIFACT_IN_STORAGE: Final = "ArtifactInStorage"
STORAGE_OPERATION_FAILED: Final = "StorageOperationFailed"
BUCKET_OPERATION_FAILED: Final = "BucketOperationFailed"
#: The name ``status.url`` serves the latest artifact under, as Flux's symlink.
LATEST: Final = "latest.tar.gz"
DEFAULT_TIMEOUT: Final = 60.0

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Held:
    """What the served artifact was made from: its index and the ignore file read."""

    index: dict[str, str]
    ignore_file: bucket.IgnoreFile | None


class BucketReconciler(Reconciler[BucketSpec]):
    """``source.toolkit.fluxcd.io/v1`` Bucket."""

    kind = BUCKET
    negative_conditions: ClassVar[tuple[str, ...]] = (
        FETCH_FAILED,
        ARTIFACT_OUTDATED,
        STORAGE_OPERATION_FAILED,
    )

    def __init__(
        self,
        *,
        objects: ObjectApi,
        cache: ArtifactCache,
        artifact_base_url: str,
        max_artifact_bytes: int | None = None,
    ) -> None:
        self.objects = objects
        self.cache = cache
        self.artifact_base_url = artifact_base_url
        self.max_artifact_bytes = max_artifact_bytes
        self._held: dict[ObjectKey, _Held] = {}

    def forget(self, key: ObjectKey) -> None:
        self.cache.remove(key)
        self._held.pop(key, None)

    async def reconcile(self, ctx: Context[BucketSpec]) -> None:
        spec = ctx.spec
        _refuse_unsupported(spec)
        try:
            settings = await bucket.store_settings(self.objects, ctx.key.namespace, spec)
        except bucket.BucketConfigError as error:
            raise ReconcileError(
                error.reason, error.message, condition=FETCH_FAILED, stalled=error.stalled
            ) from error
        timeout = parse_duration(spec.timeout) if spec.timeout else DEFAULT_TIMEOUT
        current = self.cache.get(ctx.key)
        held = self._held.get(ctx.key) if current is not None else None
        async with bucket.S3Client(
            endpoint=settings.endpoint,
            secure=settings.secure,
            region=settings.region,
            credentials=settings.credentials,
            ssl_context=settings.ssl_context,
            proxy=settings.proxy,
        ) as client:
            listing = await _bounded(
                timeout,
                spec.bucket_name,
                bucket.list_index(
                    client,
                    spec.bucket_name,
                    prefix=spec.prefix,
                    spec_ignore=spec.ignore,
                    known_ignore=held.ignore_file if held else None,
                ),
            )
            revision = bucket.index_digest(listing.index)
            if current is not None and held is not None and current.revision == revision:
                self._held[ctx.key] = _Held(held.index, listing.ignore_file)
                self._report(ctx, current)
                return
            if current is not None:
                conditions.mark_true(
                    ctx.status,
                    ARTIFACT_OUTDATED,
                    "NewRevision",
                    f"new upstream revision '{revision}'",
                    generation=ctx.generation,
                )

            def held_content(key: str, etag: str) -> bytes | None:
                if current is None or held is None or held.index.get(key) != etag:
                    return None
                path = artifact_path(key)
                return current.files.get(path) if path is not None else None

            got = await _bounded(
                timeout,
                spec.bucket_name,
                bucket.download(
                    client,
                    spec.bucket_name,
                    listing.index,
                    held=held_content,
                    ignore_file=listing.ignore_file,
                ),
            )
        conditions.delete(ctx.status, FETCH_FAILED)
        artifact = self._store(ctx, got)
        self._held[ctx.key] = _Held(got.index, listing.ignore_file)
        self._report(ctx, artifact)

    def _store(self, ctx: Context[BucketSpec], got: bucket.Download) -> Artifact:
        revision = bucket.index_digest(got.index)
        size = sum(len(content) for content in got.files.values())
        if self.max_artifact_bytes is not None and size > self.max_artifact_bytes:
            raise ReconcileError(
                "ArtifactTooLarge",
                f"the objects of bucket '{ctx.spec.bucket_name}' total {size / 2**20:.1f} MiB, "
                f"over the {self.max_artifact_bytes / 2**20:.0f} MiB fluxd allows an artifact "
                "(--artifact-max-mib): narrow spec.prefix or leave objects out with spec.ignore",
            )
        try:
            artifact = make_artifact(
                kind=self.kind.kind,
                namespace=ctx.key.namespace,
                name=ctx.key.name,
                revision=revision,
                files=got.files,
                alias=LATEST,
                base_url=self.artifact_base_url,
            )
        except ValueError as error:  # keys 'a' and 'a/b': a file and a directory at once
            raise ReconcileError(
                "ArchiveOperationFailed",
                f"unable to archive artifact to storage: {error}",
                condition=STORAGE_OPERATION_FAILED,
            ) from error
        if self.cache.put(ctx.key, artifact):
            ctx.event(
                "Normal",
                "NewArtifact",
                f"stored artifact with {len(got.index)} fetched files from "
                f"'{ctx.spec.bucket_name}' bucket",
                {
                    "source.toolkit.fluxcd.io/revision": artifact.revision,
                    "source.toolkit.fluxcd.io/digest": artifact.digest,
                },
            )
        return self.cache.get(ctx.key) or artifact

    def _report(self, ctx: Context[BucketSpec], artifact: Artifact) -> None:
        status = ctx.status
        status["artifact"] = artifact.to_status()
        status["url"] = artifact_url(self.artifact_base_url, artifact.alias_path or artifact.path)
        if ctx.spec.ignore is None:
            status.pop("observedIgnore", None)
        else:
            status["observedIgnore"] = ctx.spec.ignore
        message = f"stored artifact: revision '{artifact.revision}'"
        conditions.mark_true(
            status, ARTIFACT_IN_STORAGE, "Succeeded", message, generation=ctx.generation
        )
        conditions.delete(status, ARTIFACT_OUTDATED)
        ctx.ready_reason = "Succeeded"
        ctx.ready_message = message


async def _bounded(time_limit: float, bucket_name: str, operation: Awaitable[_T]) -> _T:
    """``operation`` within ``spec.timeout``; its failures as ``BucketOperationFailed``."""
    try:
        with anyio.fail_after(time_limit):
            return await operation
    except TimeoutError as error:
        raise ReconcileError(
            BUCKET_OPERATION_FAILED,
            f"operation on bucket '{bucket_name}' timed out after {time_limit:g}s (spec.timeout)",
            condition=FETCH_FAILED,
        ) from error
    except bucket.BucketFetchError as error:
        raise ReconcileError(BUCKET_OPERATION_FAILED, str(error), condition=FETCH_FAILED) from error


def _refuse_unsupported(spec: BucketSpec) -> None:
    """Stall on fields fluxd does not serve, rather than ignoring them silently."""
    unsupported = []
    if spec.provider in ("gcp", "azure"):
        unsupported.append(f"spec.provider '{spec.provider}' (only 'generic' and 'aws')")
    if spec.sts is not None:
        unsupported.append("spec.sts (temporary credentials from a Security Token Service)")
    if spec.service_account_name is not None:
        unsupported.append("spec.serviceAccountName (workload identity)")
    if unsupported:
        raise ReconcileError(
            "UnsupportedField",
            f"{', '.join(unsupported)} not supported by fluxd yet; remove the field(s)",
            stalled=True,
        )
