"""Where an OCI artifact lives and which version of it to pull.

An OCIRepository's ``spec.url`` is ``oci://<registry>/<repository>`` without a tag (Flux
refuses ``:tag`` in it: the version is ``spec.ref``'s). ``spec.ref`` resolves with Flux's
precedence: ``digest`` over ``semver`` (the highest tag in range, among the tags that match
``semverFilter``) over ``tag``, and the tag ``latest`` when nothing is set.

An ImageRepository's ``spec.image`` is a Docker-style name without scheme or tag, read as
go-containerregistry reads it: a first path part with a dot, a colon or ``localhost`` is
the registry, anything else is on Docker Hub (``nginx`` is
``index.docker.io/library/nginx``, the canonical name Flux reports).

Helm stores a chart version ``1.0.0+build`` under the tag ``1.0.0_build`` (``+`` is not
allowed in a tag); with the Helm chart layer selected, tags are read back the same way, as
Flux reads them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from fluxd.semver import Constraint, max_satisfying
from fluxd.sources.oci.errors import READ_OPERATION_FAILED, URL_INVALID, RegistryError

__all__ = [
    "DEFAULT_TAG",
    "HELM_CHART_LAYER",
    "Reference",
    "Repository",
    "parse_image",
    "parse_reference",
    "parse_url",
    "select_semver_tag",
]

DEFAULT_TAG: Final = "latest"
HELM_CHART_LAYER: Final = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
_PREFIX = "oci://"
DOCKER_HUB: Final = "index.docker.io"
_NAME_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Repository:
    """A repository of a registry: ``host`` (with its port) and ``name``."""

    host: str
    name: str
    insecure: bool = False

    @property
    def base_url(self) -> str:
        """The registry's API root: plain HTTP only when ``insecure``, as Flux decides."""
        return f"{'http' if self.insecure else 'https'}://{self.host}/v2"

    def __str__(self) -> str:
        return f"{self.host}/{self.name}"


@dataclass(frozen=True)
class Reference:
    """A version of a repository's artifact: by ``tag`` or by ``digest``."""

    repository: Repository
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """What the manifest endpoint takes: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"


def parse_url(url: str, *, insecure: bool = False) -> Repository:
    """``oci://host[:port]/name`` as a :class:`Repository`; ``URLInvalid`` otherwise."""
    if not url.startswith(_PREFIX):
        raise RegistryError(
            "URL must be in format 'oci://<domain>/<org>/<repo>'", reason=URL_INVALID
        )
    host, _, name = url.removeprefix(_PREFIX).partition("/")
    name = name.rstrip("/")
    if not host or not name:
        raise RegistryError(
            "URL must be in format 'oci://<domain>/<org>/<repo>'", reason=URL_INVALID
        )
    if ":" in name.rsplit("/", 1)[-1] or "@" in name:
        tail = name.rsplit("/", 1)[-1].partition(":")[2] or name.partition("@")[2]
        raise RegistryError(f"URL must not contain a tag; remove ':{tail}'", reason=URL_INVALID)
    if not _NAME_RE.match(name):
        raise RegistryError(
            f"repository name '{name}' is not a valid OCI repository name "
            "(lowercase letters, digits and separators)",
            reason=URL_INVALID,
        )
    return Repository(host=host, name=name, insecure=insecure)


def parse_image(image: str, *, insecure: bool = False) -> Repository:
    """An image name (``ghcr.io/org/app``, ``nginx``) as a :class:`Repository`; its ``str``
    is the canonical name. ``URLInvalid`` for a scheme, a tag or a malformed name."""
    scheme, found, _ = image.partition("://")
    if found:
        raise RegistryError(
            f"image '{image}' should not include URL scheme; remove '{scheme}://'",
            reason=URL_INVALID,
        )
    first, slash, rest = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, name = first, rest
    else:
        host, name = DOCKER_HUB, image if slash else f"library/{image}"
    if host == "docker.io":
        host = DOCKER_HUB
    if ":" in name or "@" in name:
        tail = name.partition("@")[2] if "@" in name else name.partition(":")[2]
        raise RegistryError(
            f"image '{image}' should not include a tag; remove ':{tail}'", reason=URL_INVALID
        )
    if not _NAME_RE.match(name):
        raise RegistryError(
            f"repository name '{name}' of image '{image}' is not a valid repository name "
            "(lowercase letters, digits and separators)",
            reason=URL_INVALID,
        )
    return Repository(host=host, name=name, insecure=insecure)


def parse_reference(text: str, *, insecure: bool = False) -> Reference:
    """``oci://host/name:tag`` or ``oci://host/name@sha256:...`` (the CLI's form)."""
    body, at, digest = text.partition("@")
    tag: str | None = None
    head, _, last = body.rpartition("/")
    if ":" in last:
        last, _, tag = last.partition(":")
        body = f"{head}/{last}"
    if at and not _DIGEST_RE.match(digest):
        raise RegistryError(f"'{digest}' is not a sha256 digest", reason=URL_INVALID)
    if tag is not None and not _TAG_RE.match(tag):
        raise RegistryError(f"'{tag}' is not a valid OCI tag", reason=URL_INVALID)
    repository = parse_url(body, insecure=insecure)
    return Reference(repository, tag=tag, digest=digest or None)


def select_semver_tag(
    tags: Iterable[str], semver: str, semver_filter: str | None, media_type: str | None
) -> str:
    """The tag with the highest version in ``semver`` among those ``semver_filter``
    matches; ``ReadOperationFailed`` naming the range when none does."""
    try:
        constraint = Constraint.parse(semver)
    except ValueError as error:
        raise RegistryError(
            f"semver '{semver}' parse error: {error}", reason=READ_OPERATION_FAILED
        ) from error
    candidates = list(tags)
    if semver_filter:
        try:
            pattern = re.compile(semver_filter)
        except re.error as error:
            raise RegistryError(
                f"semverFilter '{semver_filter}' is not a valid regular expression: {error}",
                reason=READ_OPERATION_FAILED,
            ) from error
        candidates = [tag for tag in candidates if pattern.search(tag)]
    helm = media_type == HELM_CHART_LAYER
    versions = {(tag.replace("_", "+") if helm else tag): tag for tag in candidates}
    best = max_satisfying(versions, constraint)
    if best is None:
        raise RegistryError(f"no match found for semver: {semver}", reason=READ_OPERATION_FAILED)
    return versions[best]
