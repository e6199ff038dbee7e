"""Helm charts stored in an OCI registry: a HelmRepository of ``type: oci``, and the
``oci://`` dependencies of a chart.

A repository ``oci://registry/path`` holds each chart as the image ``registry/path/<chart>``,
one tag per chart version. Helm writes a version's ``+`` as ``_`` in the tag (``+`` is not
allowed there) and reads it back the same way, as Flux does:

- a request that is an exact version (``1.2.3``, ``v1.2.3``, ``1.2.3+build``) names its
  tag directly, and nothing is listed;
- anything else (a range, ``*``, nothing) lists the tags, keeps those that are versions,
  takes a tag equal to the request first, then the newest in range; ``*`` and nothing mean
  the newest that is not a prerelease;
- the chart is the manifest's layer of Helm's chart media type, as Helm packaged it.

Credentials are the HelmRepository's as Flux reads them: ``spec.secretRef`` is either a
dockerconfigjson Secret (the entry of the registry's host) or one with ``username`` and
``password``; ``spec.certSecretRef`` holds ``ca.crt`` and ``tls.crt``/``tls.key``;
``spec.insecure`` allows plain HTTP.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Protocol

from fluxd.kube.objects import SecretNotFound
from fluxd.semver import Constraint, Version
from fluxd.sources import oci
from fluxd.sources.helm.repository import MAX_CHART_BYTES

__all__ = [
    "ChartRegistrySpec",
    "TagLister",
    "chart_image",
    "chart_registry_auth",
    "chart_tag",
    "pull_chart",
    "select_chart_version",
]

#: A version Flux takes literally, as a tag: strict semver, a leading ``v`` allowed.
_EXACT_VERSION_RE = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


class SecretReader(Protocol):
    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]: ...


class ChartRegistrySpec(Protocol):
    """The fields of a HelmRepository spec that say how to reach its registry."""

    @property
    def secret_ref(self) -> object | None: ...

    @property
    def cert_secret_ref(self) -> object | None: ...


def chart_image(repository_url: str, chart: str, *, insecure: bool) -> oci.Repository:
    """The image of chart ``chart`` in the OCI repository ``repository_url``."""
    return oci.parse_url(f"{repository_url.rstrip('/')}/{chart}", insecure=insecure)


def chart_tag(version: str) -> str:
    """The tag Helm stores chart ``version`` under."""
    return version.replace("+", "_")


async def chart_registry_auth(
    secrets: SecretReader, namespace: str, spec: ChartRegistrySpec, host: str
) -> oci.RegistryAuth:
    """What the HelmRepository's Secrets give for ``host``; ``AuthenticationFailed``
    naming the Secret when one is missing or unusable."""
    auth = oci.RegistryAuth()
    if spec.secret_ref is not None:
        name = _name(spec.secret_ref)
        data = await _secret(secrets, namespace, name, "spec.secretRef")
        if ".dockerconfigjson" in data:
            auth = oci.docker_config_auth(data, host, secret=f"{namespace}/{name}")
        elif "username" in data and "password" in data:
            auth = oci.RegistryAuth(
                username=data["username"].decode(), password=data["password"].decode()
            )
        else:
            raise oci.RegistryError(
                f"invalid '{namespace}/{name}' secret data: it needs '.dockerconfigjson', or "
                "'username' and 'password'",
                reason=oci.AUTHENTICATION_FAILED,
            )
    if spec.cert_secret_ref is not None:
        data = await _secret(secrets, namespace, _name(spec.cert_secret_ref), "spec.certSecretRef")
        auth = replace(
            auth, ca=data.get("ca.crt"), cert=data.get("tls.crt"), key=data.get("tls.key")
        )
        auth.ssl_context()
    return auth


class TagLister(Protocol):
    """What choosing a version needs of a registry client: its repository and tags."""

    @property
    def repository(self) -> oci.Repository: ...

    async def tags(self) -> list[str]: ...


async def select_chart_version(client: TagLister, request: str) -> str:
    """The chart version ``request`` names in the client's repository (see the module
    docstring); :class:`~fluxd.sources.oci.RegistryError` when none does."""
    request = request.strip()
    if _EXACT_VERSION_RE.match(request):
        return request
    versions = [tag.replace("_", "+") for tag in await client.tags()]
    if not versions:
        raise oci.RegistryError(
            f"unable to locate any tags in provided repository: {client.repository}"
        )
    if request and request in versions:
        return request
    try:
        constraint = Constraint.parse(request if request and request != "*" else "*")
    except ValueError as error:
        raise oci.RegistryError(str(error)) from error
    best: tuple[Version, str] | None = None
    for text in versions:
        try:
            version = Version.parse(text)
        except ValueError:
            continue
        if constraint.allows(version) and (best is None or (version, text) > best):
            best = (version, text)
    if best is None:
        raise oci.RegistryError(
            f"could not locate a version matching provided version string {request or '*'}"
        )
    return best[1]


async def pull_chart(
    client: oci.RegistryClient, version: str, *, digest: str | None = None
) -> bytes:
    """The packaged chart of ``version``: its manifest's Helm chart layer, the manifest
    read by ``digest`` when one is given (a verified one, so a moved tag cannot swap it)."""
    manifest = (await client.manifest(digest or chart_tag(version))).json()
    layer = oci.select_layer(manifest, oci.HELM_CHART_LAYER)
    return await client.blob(layer.digest, limit=MAX_CHART_BYTES)


def _name(ref: object) -> str:
    return str(getattr(ref, "name", ref))


async def _secret(secrets: SecretReader, namespace: str, name: str, field: str) -> dict[str, bytes]:
    try:
        return await secrets.secret_data(namespace, name)
    except SecretNotFound as error:
        raise oci.RegistryError(
            f"failed to get credentials: {error}: create it or fix {field}",
            reason=oci.AUTHENTICATION_FAILED,
        ) from error
