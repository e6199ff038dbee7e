"""ImagePolicy (``image.toolkit.fluxcd.io/v1``): the latest image of a repository, by policy.

Steps, in order:

1. **policy**: an invalid semver range or ``filterTags`` pattern stalls the object
   (``InvalidPolicy``), before anything is read;
2. **repository**: the ImageRepository ``imageRepositoryRef`` names, in another namespace
   only when its ``accessFrom`` selects this one (``AccessDenied``); missing or not yet
   scanned is ``DependencyNotReady``; the policy wakes when its scan stores tags;
3. **select**: the scanned tags, filtered and ordered as ``spec.policy`` says (see
   :mod:`fluxd.image.tags`); none left is ``Failure``, retried at the next scan;
4. **digest**: with ``digestReflectionPolicy`` ``IfNotPresent`` (once per tag) or
   ``Always`` (every ``interval``) the tag's manifest digest is read from the registry;
5. **status**: ``latestRef`` {name, tag, digest}; the ref it replaces becomes
   ``observedPreviousRef``. A change wakes the ImageUpdateAutomations of the namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from fluxd.api import (
    IMAGE_POLICY,
    IMAGE_REPOSITORY,
    AccessFrom,
    ImagePolicySpec,
    ImageRepositorySpec,
    SpecError,
    parse_duration,
)
from fluxd.image import tags as tag_policy
from fluxd.image.scans import ScanStore
from fluxd.kube.objects import ObjectApi
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.tenancy import UNRESTRICTED, Tenancy
from fluxd.sources import oci

__all__ = ["ImagePolicyReconciler"]

DEPENDENCY_NOT_READY: Final = "DependencyNotReady"
#: How often a policy without ``spec.interval`` is looked at again: scans wake it sooner.
RECHECK_INTERVAL: Final = 600.0
DEPENDENCY_RETRY: Final = 10.0


class ImagePolicyReconciler(Reconciler[ImagePolicySpec]):
    """``image.toolkit.fluxcd.io/v1`` ImagePolicy."""

    kind = IMAGE_POLICY

    def __init__(
        self,
        *,
        objects: ObjectApi,
        scans: ScanStore,
        track_sources: Callable[[ObjectKey, Iterable[ObjectKey]], None],
        wake: Callable[[ObjectKey], object],
        tenancy: Tenancy = UNRESTRICTED,
    ) -> None:
        self.objects = objects
        self.tenancy = tenancy
        self.scans = scans
        self.track_sources = track_sources
        self.wake = wake

    def interval(self, spec: ImagePolicySpec) -> float:
        return parse_duration(spec.interval) if spec.interval else RECHECK_INTERVAL

    def forget(self, key: ObjectKey) -> None:
        self.track_sources(key, ())
        self.wake(ObjectKey.every(self.kind.kind, key.namespace))

    async def reconcile(self, ctx: Context[ImagePolicySpec]) -> None:
        spec = ctx.spec
        try:
            tag_policy.validate(spec)
        except tag_policy.PolicyError as error:
            raise ReconcileError(
                "InvalidPolicy", f"invalid policy: {error}", stalled=True
            ) from error
        ref = spec.image_repository_ref
        namespace = ref.namespace or ctx.key.namespace
        repository_key = ObjectKey(IMAGE_REPOSITORY.kind, namespace, ref.name)
        self.track_sources(ctx.key, [repository_key])
        repository = await self._repository(ctx.key.namespace, namespace, ref.name)
        try:
            image = oci.parse_image(repository.image, insecure=repository.insecure)
        except oci.RegistryError as error:
            raise ReconcileError("ImageURLInvalid", str(error), stalled=True) from error
        scan = self.scans.get(repository_key)
        if scan is None or not scan.tags:
            raise ReconcileError(
                DEPENDENCY_NOT_READY,
                f"ImageRepository '{namespace}/{ref.name}' has no scanned tags yet:"
                " no tags in database",
                retry_after=DEPENDENCY_RETRY,
            )
        try:
            tag = tag_policy.latest_tag(spec, scan.tags)
        except tag_policy.NoMatchError as error:
            raise ReconcileError("Failure", str(error)) from error
        latest = {"name": repository.image, "tag": tag}
        digest = await self._digest(ctx, spec, namespace, repository, image, latest)
        if digest:
            latest["digest"] = digest
        previous = ctx.status.get("latestRef")
        if previous != latest:
            if previous:
                ctx.status["observedPreviousRef"] = previous
            ctx.status["latestRef"] = latest
            ctx.wakes.append(ObjectKey.every(self.kind.kind, ctx.key.namespace))
        ctx.ready_message = _ready_message(latest, ctx.status.get("observedPreviousRef"))

    async def _repository(
        self, own_namespace: str, namespace: str, name: str
    ) -> ImageRepositorySpec:
        """The referenced ImageRepository's spec, when it exists and lets us read it."""
        self.tenancy.check(
            own_namespace,
            namespace,
            f"cannot access 'ImageRepository/{namespace}/{name}', cross-namespace "
            "references have been blocked",
        )
        obj = await self.objects.read(IMAGE_REPOSITORY, namespace, name)
        if obj is None:
            raise ReconcileError(
                DEPENDENCY_NOT_READY,
                f"failed to get the referred ImageRepository: referenced ImageRepository"
                f" '{namespace}/{name}' does not exist",
                retry_after=DEPENDENCY_RETRY,
            )
        try:
            spec = IMAGE_REPOSITORY.parse_spec(obj)
        except SpecError as error:
            raise ReconcileError(
                DEPENDENCY_NOT_READY,
                f"the referred ImageRepository '{namespace}/{name}' is invalid: {error}",
                retry_after=DEPENDENCY_RETRY,
            ) from error
        if namespace != own_namespace:
            await self._check_access(own_namespace, namespace, name, spec.access_from)
        return spec

    async def _check_access(
        self, own_namespace: str, namespace: str, name: str, access_from: AccessFrom | None
    ) -> None:
        """Flux's ACL: another namespace's ImageRepository is readable when one of its
        ``accessFrom.namespaceSelectors`` matches this namespace's labels."""
        where = f"'ImageRepository/{namespace}/{name}'"
        if access_from is None:
            raise ReconcileError(
                "AccessDenied",
                f"access denied: {where} can't be accessed due to missing ACL labels on"
                " 'accessFrom'",
                stalled=True,
            )
        labels = await self.objects.namespace_labels(own_namespace) or {}
        if not any(
            _selects(selector.match_labels, labels) for selector in access_from.namespace_selectors
        ):
            raise ReconcileError(
                "AccessDenied",
                f"access denied: {where} can't be accessed due to ACL labels mismatch on"
                f" namespace '{own_namespace}'",
                stalled=True,
            )

    async def _digest(
        self,
        ctx: Context[ImagePolicySpec],
        spec: ImagePolicySpec,
        namespace: str,
        repository: ImageRepositorySpec,
        image: oci.Repository,
        latest: Mapping[str, str],
    ) -> str | None:
        """The digest ``digestReflectionPolicy`` asks for, read from the registry."""
        previous: dict[str, Any] = ctx.status.get("latestRef") or {}
        if spec.digest_reflection_policy == "Never":
            return None
        if (
            spec.digest_reflection_policy == "IfNotPresent"
            and previous.get("digest")
            and previous.get("name") == latest["name"]
            and previous.get("tag") == latest["tag"]
        ):
            return str(previous["digest"])
        reference = f"{latest['name']}:{latest['tag']}"
        try:
            auth = await oci.spec_registry_auth(self.objects, namespace, repository, image.host)
            proxy = await oci.spec_proxy(self.objects, namespace, repository)
            timeout = parse_duration(repository.timeout or repository.interval)
            async with oci.RegistryClient(image, auth, timeout=timeout, proxy=proxy) as client:
                return await client.resolve(latest["tag"])
        except oci.RegistryError as error:
            raise ReconcileError(
                "Failure", f"failed fetching digest of {reference}: {error}"
            ) from error


def _selects(match_labels: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in match_labels.items())


def _ready_message(latest: Mapping[str, str], previous: Mapping[str, str] | None) -> str:
    """Flux's Ready text: the resolved tag (and digest), and what it replaced."""
    message = f"Latest image tag for {latest['name']} resolved to {latest['tag']}"
    if latest.get("digest"):
        message += f" with digest {latest['digest']}"
    if previous and dict(previous) != dict(latest):
        message += f" (previously {previous.get('name')}:{previous.get('tag')}"
        if previous.get("digest"):
            message += f"@{previous['digest']}"
        message += ")"
    return message
