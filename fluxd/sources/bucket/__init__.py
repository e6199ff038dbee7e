"""Bucket sources: S3-compatible object stores as artifacts.

- :mod:`~fluxd.sources.bucket.sigv4`: AWS Signature Version 4 request signing;
- :mod:`~fluxd.sources.bucket.s3`: the S3 calls (list, get) over aiohttp;
- :mod:`~fluxd.sources.bucket.credentials`: endpoint, region, keys and TLS from a
  Bucket's spec and Secrets;
- :mod:`~fluxd.sources.bucket.aws_chain`: the AWS default credential chain for
  ``provider: aws`` without a Secret;
- :mod:`~fluxd.sources.bucket.index`: the object index, its ignore rules and Flux's
  revision of it;
- :mod:`~fluxd.sources.bucket.fetch`: listing into an index, downloading what changed.
"""

from fluxd.sources.bucket.credentials import (
    BucketConfigError,
    StoreSettings,
    store_settings,
)
from fluxd.sources.bucket.fetch import (
    BucketFetchError,
    Download,
    IgnoreFile,
    Listing,
    download,
    list_index,
)
from fluxd.sources.bucket.index import index_digest, select_objects
from fluxd.sources.bucket.s3 import S3Client, S3Error
from fluxd.sources.bucket.sigv4 import Credentials

__all__ = [
    "BucketConfigError",
    "BucketFetchError",
    "Credentials",
    "Download",
    "IgnoreFile",
    "Listing",
    "S3Client",
    "S3Error",
    "StoreSettings",
    "download",
    "index_digest",
    "list_index",
    "select_objects",
    "store_settings",
]
