"""A chart from an OCI artifact released under a version that carries the artifact's digest.

A chart pulled through an OCIRepository comes from a tag, and tags move: the same
``6.5.4`` may be pushed twice with different content. As helm-controller does, the
release's chart version then gets the first 12 hex digits of the artifact digest as semver
build metadata (``6.5.4+0123456789ab``), so a re-pushed tag is a new chart version, an
upgrade, and a line in ``helm history``. The version lives in the chart's ``Chart.yaml``,
so the archive is rewritten with it before the SDK loads it.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile

from fluxd.semver import Version
from fluxd.yaml import YamlError, load_values

__all__ = ["DigestVersionError", "NotAChartError", "digest_version", "stamp_digest"]

_VERSION_LINE = re.compile(rb"^version:[^\n]*$", re.MULTILINE)


class DigestVersionError(ValueError):
    """The artifact revision cannot be put into the chart's version (Flux's message)."""


class NotAChartError(DigestVersionError):
    """The archive holds no readable chart: a load failure rather than a version one."""


def digest_version(chart_version: str, revision: str) -> tuple[str, str]:
    """The chart version for ``revision`` (``<tag>@sha256:<hex>`` or ``sha256:<hex>``) and
    the digest it carries; a semver tag must be the chart's own version. As Flux, the
    digest of a revision whose tag is not semver (``latest@sha256:<hex>``) is the whole
    revision."""
    try:
        version = Version.parse(chart_version)
    except ValueError as error:
        raise DigestVersionError(f"invalid chart version {chart_version}") from error
    tag, at, digest = revision.rpartition("@")
    tagged: Version | None = None
    if at:
        try:
            tagged = Version.parse(tag.replace("_", "+"))
        except ValueError:
            tagged = None
        if tagged is not None and tagged != version:
            raise DigestVersionError(
                f"artifact revision {tag} does not match chart version {chart_version}"
            )
    _, colon, hex_digest = digest.partition(":")
    if not colon or ":" in hex_digest or len(hex_digest) < 12:
        raise DigestVersionError(f"invalid artifact revision {revision}")
    stamped = Version(version.major, version.minor, version.patch, version.prerelease)
    return f"{stamped}+{hex_digest[:12]}", digest if tagged is not None else revision


def stamp_digest(archive: bytes, revision: str) -> tuple[bytes, str, str]:
    """``archive`` (a packaged chart) with its ``Chart.yaml`` version carrying the digest
    of ``revision``, every other member unchanged; also that version and the digest.
    :class:`NotAChartError` when the archive holds no readable chart,
    :class:`DigestVersionError` when the revision does not fit the chart."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source:
            members = [(m, _read(source, m)) for m in source.getmembers()]
    except (tarfile.TarError, OSError, EOFError) as error:
        raise NotAChartError(f"the chart archive cannot be read: {error}") from error
    charts = [
        i
        for i, (member, content) in enumerate(members)
        if content is not None and _is_chart_yaml(member.name)
    ]
    if not charts:
        raise NotAChartError("the chart archive has no Chart.yaml")
    member, content = members[charts[0]]
    assert content is not None
    try:
        metadata = load_values(content, source=member.name)
    except YamlError as error:
        raise NotAChartError(str(error)) from error
    current = metadata[0].get("version") if metadata and isinstance(metadata[0], dict) else None
    version, digest = digest_version(str(current or ""), revision)
    members[charts[0]] = (member, _set_version(content, version))
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as target,
    ):
        for member, data in members:
            if data is None:
                target.addfile(member)
                continue
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    return out.getvalue(), version, digest


def _read(source: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    handle = source.extractfile(member) if member.isfile() else None
    return handle.read() if handle is not None else None


def _is_chart_yaml(name: str) -> bool:
    parts = name.strip("/").split("/")
    return len(parts) == 2 and parts[1] == "Chart.yaml"


def _set_version(chart_yaml: bytes, version: str) -> bytes:
    line = b"version: " + version.encode()
    if _VERSION_LINE.search(chart_yaml):
        return _VERSION_LINE.sub(lambda _: line, chart_yaml, count=1)
    return chart_yaml.rstrip(b"\n") + b"\n" + line + b"\n"
