"""Listing a bucket into its index, and downloading only what changed since last time.

:func:`list_index` costs one ``ListObjectsV2`` walk (a page per thousand keys). The
root ``.sourceignore`` object, whose patterns decide what is indexed, is read from the
listing's ETag: downloaded only when it is new or changed (when ``spec.prefix`` keeps it
out of the listing, a GET conditional on the ETag last seen asks the same question
without a download). Flux downloads it on every reconcile; the result is the same.

:func:`download` fetches the objects of a changed index concurrently, at most
:data:`MAX_CONCURRENT_FETCHES` at once, and reuses the content of every object whose
ETag is the one already held. An object deleted between listing and download is left
out, and one changed in between is indexed with the ETag it was downloaded at, as Flux
does both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import anyio

from fluxd.sources.bucket.index import IGNORE_FILE, artifact_path, select_objects
from fluxd.sources.bucket.s3 import S3Client, S3Error

__all__ = [
    "MAX_CONCURRENT_FETCHES",
    "BucketFetchError",
    "Download",
    "IgnoreFile",
    "Listing",
    "download",
    "list_index",
]

#: Objects downloaded at once per Bucket (Flux allows 100 with one goroutine each; here
#: each costs a connection and a buffer on a process that serves every kind).
MAX_CONCURRENT_FETCHES: Final = 16


class BucketFetchError(Exception):
    """The store refused or failed a request; the message names the bucket or key."""


@dataclass(frozen=True)
class IgnoreFile:
    """The root ``.sourceignore`` object as last read."""

    etag: str
    content: bytes


@dataclass(frozen=True)
class Listing:
    """What a listing found: the index (key -> ETag) and the ignore file applied."""

    index: dict[str, str]
    ignore_file: IgnoreFile | None


@dataclass(frozen=True)
class Download:
    """The artifact's files (path -> content), the index they were downloaded at, and
    how many objects had to be downloaded."""

    files: dict[str, bytes]
    index: dict[str, str]
    downloaded: int


async def list_index(
    client: S3Client,
    bucket: str,
    *,
    prefix: str | None,
    spec_ignore: str | None,
    known_ignore: IgnoreFile | None,
) -> Listing:
    """The index of ``bucket`` under ``prefix`` after the ignore rules."""
    objects: list[tuple[str, str]] = []
    try:
        async for item in client.list_objects(bucket, prefix):
            objects.append((item.key, item.etag))
    except S3Error as error:
        if error.code == "NoSuchBucket":
            raise BucketFetchError(f"bucket '{bucket}' not found") from error
        raise BucketFetchError(
            f"indexation of objects from bucket '{bucket}' failed: listing objects from "
            f"bucket '{bucket}' failed: {error}"
        ) from error
    ignore_file = await _ignore_file(client, bucket, prefix, objects, known_ignore)
    index = select_objects(
        objects,
        ignore_file=ignore_file.content if ignore_file else None,
        spec_ignore=spec_ignore,
    )
    return Listing(index=index, ignore_file=ignore_file)


async def _ignore_file(
    client: S3Client,
    bucket: str,
    prefix: str | None,
    objects: list[tuple[str, str]],
    known: IgnoreFile | None,
) -> IgnoreFile | None:
    listed = IGNORE_FILE.startswith(prefix or "")
    if listed:
        etag = next((etag for key, etag in objects if key == IGNORE_FILE), None)
        if etag is None:
            return None
        if known is not None and known.etag == etag:
            return known
    try:
        got = await client.get_object(
            bucket, IGNORE_FILE, unless_etag=known.etag if known and not listed else None
        )
    except S3Error as error:
        if error.code == "NoSuchKey":
            return None
        raise BucketFetchError(f"failed to get Etag for '{IGNORE_FILE}' object: {error}") from error
    if got is None:
        return known
    content, etag = got
    return IgnoreFile(etag=etag, content=content)


async def download(
    client: S3Client,
    bucket: str,
    index: Mapping[str, str],
    *,
    held: Callable[[str, str], bytes | None],
    ignore_file: IgnoreFile | None,
) -> Download:
    """The files of ``index``; ``held(key, etag)`` gives the content already held of
    an object at that ETag (``None``: download it). The root ``.sourceignore`` goes into
    the files too, as Flux archives it with the objects."""
    files: dict[str, bytes] = {}
    fetched: dict[str, str] = {}
    failure: BucketFetchError | None = None
    downloaded = 0
    limiter = anyio.CapacityLimiter(MAX_CONCURRENT_FETCHES)

    async def fetch(key: str, path: str, scope: anyio.CancelScope) -> None:
        nonlocal failure, downloaded
        async with limiter:
            try:
                got = await client.get_object(bucket, key)
            except S3Error as error:
                if error.code == "NoSuchKey":
                    return
                failure = failure or BucketFetchError(
                    f"fetch from bucket '{bucket}' failed: failed to get '{key}' object: {error}"
                )
                scope.cancel()
                return
        if got is not None:
            files[path], fetched[key] = got
            downloaded += 1

    async with anyio.create_task_group() as group:
        for key, etag in index.items():
            path = artifact_path(key)
            if path is None:  # indexed (the revision counts it) but names no file
                fetched[key] = etag
                continue
            content = held(key, etag)
            if content is not None:
                files[path], fetched[key] = content, etag
            else:
                group.start_soon(fetch, key, path, group.cancel_scope)
    if failure is not None:
        raise failure
    if ignore_file is not None:
        files.setdefault(IGNORE_FILE, ignore_file.content)
    return Download(files=files, index=fetched, downloaded=downloaded)
