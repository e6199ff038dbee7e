"""ImageRepository (``image.toolkit.fluxcd.io/v1``): the tags of one image, scanned.

Steps, in order:

1. **refuse** what fluxd does not serve: a cloud ``provider`` (aws, azure, gcp) stalls
   the object (``UnsupportedField``, naming the field);
2. **image**: a name without scheme or tag (``ImageURLInvalid``, stalled, as Flux);
3. **credentials**: ``secretRef`` (dockerconfigjson), else the ``imagePullSecrets`` of
   ``serviceAccountName``; ``certSecretRef`` for TLS; ``insecure`` talks plain HTTP;
   ``proxySecretRef`` sends every registry request through its proxy
   (``AuthenticationFailed`` when a Secret or the service account is missing);
4. **scan**: every tag, page after page, with the registry's token or basic auth, within
   ``timeout`` (the interval when unset) (``ReadOperationFailed``);
5. **store**: the tags ``exclusionList`` does not match go to the shared scan store; the
   status gets ``lastScanResult`` (tag count, the ten newest tags, scan time, revision),
   ``canonicalImageName`` and ``observedExclusionList``. When the tags changed, the
   ImagePolicies of this repository wake at once.

A failed scan keeps the last stored tags: policies go on from what was last seen.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from fluxd.api import IMAGE_REPOSITORY, ImageRepositorySpec, parse_duration
from fluxd.image.scans import Scan, ScanStore, exclude_tags
from fluxd.kube.objects import ObjectApi
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.sources import oci
from fluxd.sources.proxy import Proxy

__all__ = ["ImageRepositoryReconciler"]

READ_OPERATION_FAILED: Final = "ReadOperationFailed"
IMAGE_URL_INVALID: Final = "ImageURLInvalid"


class ImageRepositoryReconciler(Reconciler[ImageRepositorySpec]):
    """``image.toolkit.fluxcd.io/v1`` ImageRepository."""

    kind = IMAGE_REPOSITORY

    def __init__(
        self, *, objects: ObjectApi, scans: ScanStore, wake: Callable[[ObjectKey], object]
    ) -> None:
        self.objects = objects
        self.scans = scans
        self.wake = wake

    def forget(self, key: ObjectKey) -> None:
        self.scans.forget(key)

    async def reconcile(self, ctx: Context[ImageRepositorySpec]) -> None:
        spec = ctx.spec
        _refuse_unsupported(spec)
        try:
            repository = oci.parse_image(spec.image, insecure=spec.insecure)
        except oci.RegistryError as error:
            raise ReconcileError(IMAGE_URL_INVALID, str(error), stalled=True) from error
        auth, proxy = await self._auth(ctx.key.namespace, spec, repository.host)
        timeout = parse_duration(spec.timeout or spec.interval)
        try:
            async with oci.RegistryClient(repository, auth, timeout=timeout, proxy=proxy) as client:
                tags = await client.tags()
        except oci.RegistryError as error:
            hint = " (spec.secretRef)" if error.status in (401, 403) else ""
            raise ReconcileError(READ_OPERATION_FAILED, f"scan failed: {error}{hint}") from error
        try:
            kept = exclude_tags(tags, spec.exclusion_list)
        except ValueError as error:
            raise ReconcileError(
                READ_OPERATION_FAILED, f"scan failed: spec.exclusionList: {error}", stalled=True
            ) from error
        scan = Scan.of(str(repository), kept)
        changed = self.scans.put(ctx.key, scan)
        result: dict[str, object] = {
            "revision": scan.revision,
            "tagCount": len(scan.tags),
            "scanTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if scan.tags:
            result["latestTags"] = scan.latest_tags
        ctx.status["lastScanResult"] = result
        ctx.status["canonicalImageName"] = scan.canonical_name
        ctx.status["observedExclusionList"] = list(spec.exclusion_list)
        ctx.ready_message = (
            f"successful scan: found {len(scan.tags)} tags with checksum {scan.revision}"
        )
        if changed:
            self.wake(ctx.key)

    async def _auth(
        self, namespace: str, spec: ImageRepositorySpec, host: str
    ) -> tuple[oci.RegistryAuth, Proxy | None]:
        try:
            auth = await oci.spec_registry_auth(self.objects, namespace, spec, host)
            return auth, await oci.spec_proxy(self.objects, namespace, spec)
        except oci.RegistryError as error:
            raise ReconcileError(
                oci.AUTHENTICATION_FAILED,
                f"failed to configure authentication options: {error}",
            ) from error


def _refuse_unsupported(spec: ImageRepositorySpec) -> None:
    """Stall on fields fluxd does not serve, rather than ignoring them silently."""
    unsupported = []
    if spec.provider != "generic":
        unsupported.append(f"spec.provider '{spec.provider}' (cloud registry login)")
    if unsupported:
        raise ReconcileError(
            "UnsupportedField",
            f"fluxd does not support {', '.join(unsupported)} yet",
            stalled=True,
        )
