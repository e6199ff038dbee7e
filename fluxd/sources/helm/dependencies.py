"""A chart directory's dependencies, completed as ``helm dependency build`` completes them.

What Flux's source-controller does for a chart built from a GitRepository or a Bucket, and
so what fluxd does:

- the dependencies are those of ``Chart.lock`` when it has any, else those of
  ``Chart.yaml``; each is known by its ``alias`` or else its ``name``;
- a dependency whose chart the directory already carries in ``charts/`` (an archive or a
  directory, matched by the chart's name) is kept as it is; when the chart carries as
  many subcharts as it declares dependencies, nothing is fetched;
- ``repository: file://<path>`` (or no repository) is a chart of the same source tree,
  relative to the chart directory; its version must satisfy the dependency's range;
- ``https://``, ``http://`` and ``oci://`` repositories are asked through
  :class:`RemoteCharts` (which finds the credentials); ``@name`` aliases are refused as
  Flux refuses them, since no local Helm repository configuration exists to resolve them;
- a fetched dependency is added under ``charts/<alias or name>/``, renamed to its alias,
  which is how ``helm package`` lays out the subcharts of a chart.

Any failure is a :class:`DependencyError` naming the dependency, in Flux's words.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import yaml

from fluxd.semver import Constraint, Version
from fluxd.sources.helm.package import ChartFiles, InvalidChart, read_archive, read_directory

__all__ = [
    "Dependency",
    "DependencyError",
    "RemoteCharts",
    "build_dependencies",
    "normalize_url",
]


class DependencyError(Exception):
    """A dependency could not be added to the chart."""


@dataclass(frozen=True)
class Dependency:
    """One entry of a chart's ``dependencies``."""

    name: str
    version: str
    repository: str
    alias: str

    @property
    def key(self) -> str:
        return self.alias or self.name

    @property
    def is_local(self) -> bool:
        return not self.repository or self.repository.startswith("file://")


class RemoteCharts(Protocol):
    """Fetches the chart archive of a dependency from a remote repository."""

    async def fetch(self, repository: str, name: str, version: str) -> bytes:
        """The packaged chart ``name`` in ``version`` (a range) from ``repository`` (a
        normalised URL); :class:`DependencyError` saying why not."""
        ...


async def build_dependencies(
    chart: ChartFiles, tree: Mapping[str, bytes], chart_path: str, remote: RemoteCharts
) -> tuple[ChartFiles, int]:
    """``chart`` (at ``chart_path`` of ``tree``) with its missing dependencies added, and
    how many were."""
    declared = _declared(chart)
    present = _vendored_names(chart)
    if len(present) == len(declared):
        return chart, 0
    missing = [dep for dep in declared if dep.key not in present]
    files = dict(chart.files)
    for dep in missing:
        if dep.is_local:
            try:
                found = _local(dep, tree, chart_path)
            except DependencyError as error:
                raise DependencyError(
                    f"failed to add local dependency '{dep.key}': {error}"
                ) from error
        else:
            try:
                found = await _remote(dep, remote)
            except DependencyError as error:
                raise DependencyError(
                    f"failed to add remote dependency '{dep.key}': {error}"
                ) from error
        files.update(_as_subchart(found, dep))
    return ChartFiles(chart.name, chart.version, chart.metadata, files), len(missing)


def normalize_url(url: str) -> str:
    """A repository URL as Flux compares them: ``oci://`` without a trailing slash,
    anything else with exactly one."""
    if url.startswith("oci://"):
        return url.rstrip("/")
    split = urlsplit(url)
    return split._replace(path=split.path.rstrip("/") + "/").geturl()


def _declared(chart: ChartFiles) -> list[Dependency]:
    entries: object = chart.metadata.get("dependencies") or []
    lock = chart.files.get("Chart.lock")
    if lock is not None:
        try:
            locked = yaml.safe_load(lock) or {}
        except yaml.YAMLError as error:
            raise DependencyError(
                f"Chart.lock of '{chart.name}' is not valid YAML: {error}"
            ) from error
        if isinstance(locked, dict) and locked.get("dependencies"):
            entries = locked["dependencies"]
    if not isinstance(entries, list):
        raise DependencyError(f"the dependencies of chart '{chart.name}' are not a list")
    found: list[Dependency] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise DependencyError(f"dependency [{index}] of chart '{chart.name}' has no name")
        found.append(
            Dependency(
                name=str(entry["name"]),
                version=str(entry.get("version") or ""),
                repository=str(entry.get("repository") or ""),
                alias=str(entry.get("alias") or ""),
            )
        )
    return found


def _vendored_names(chart: ChartFiles) -> set[str]:
    """The chart names of the subcharts in ``charts/``."""
    names: set[str] = set()
    for path, content in chart.files.items():
        parts = path.split("/")
        if len(parts) == 2 and parts[0] == "charts" and parts[1].endswith(".tgz"):
            try:
                names.add(read_archive(content).name)
            except InvalidChart as error:
                raise DependencyError(f"'{path}' of chart '{chart.name}': {error}") from error
        elif len(parts) == 3 and parts[0] == "charts" and parts[2] == "Chart.yaml":
            metadata = _metadata(content, path)
            names.add(str(metadata.get("name") or parts[1]))
    return names


def _metadata(content: bytes, path: str) -> Mapping[str, Any]:
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as error:
        raise DependencyError(f"'{path}' is not valid YAML: {error}") from error
    return document if isinstance(document, dict) else {}


def _local(dep: Dependency, tree: Mapping[str, bytes], chart_path: str) -> ChartFiles:
    base = chart_path.strip("/").removeprefix("./") or "."
    if dep.repository:
        reference = urlsplit(dep.repository)
        relative = reference.netloc + reference.path
    else:
        relative = f"charts/{dep.name}"
    path = posixpath.normpath(posixpath.join(base, relative))
    if path.startswith(".."):
        raise DependencyError(f"'{dep.repository}' leaves the source")
    try:
        found = read_archive(tree[path]) if path in tree else read_directory(tree, path)
    except InvalidChart as error:
        if path not in tree and f"{path}/Chart.yaml" not in tree:
            raise DependencyError(
                f"no chart found at '{path}' (reference '{dep.repository}')"
            ) from error
        raise DependencyError(
            f"failed to load chart from '{path}' (reference '{dep.repository}'): {error}"
        ) from error
    try:
        constraint = Constraint.parse(dep.version or "*")
        version = Version.parse(found.version)
    except ValueError as error:
        raise DependencyError(
            f"invalid version/constraint format '{dep.version}': {error}"
        ) from error
    if not constraint.allows(version):
        raise DependencyError(f"can't get a valid version for constraint '{dep.version}'")
    return found


async def _remote(dep: Dependency, remote: RemoteCharts) -> ChartFiles:
    if dep.repository.startswith("@"):
        raise DependencyError(
            f"aliased repository dependency is not supported: {dep.repository}: "
            "use the repository's URL"
        )
    if not dep.repository.startswith(("https://", "http://", "oci://")):
        raise DependencyError(f"invalid dependency repository URL: {dep.repository}")
    archive = await remote.fetch(normalize_url(dep.repository), dep.name, dep.version)
    try:
        return read_archive(archive)
    except InvalidChart as error:
        raise DependencyError(
            f"failed to load downloaded archive of '{dep.name}': {error}"
        ) from error


def _as_subchart(chart: ChartFiles, dep: Dependency) -> dict[str, bytes]:
    """The files of ``chart`` under ``charts/<alias or name>/``, renamed to its alias."""
    files = dict(chart.files)
    if dep.alias and dep.alias != chart.name:
        document = {**chart.metadata, "name": dep.alias}
        files["Chart.yaml"] = yaml.safe_dump(document, sort_keys=False).encode()
    return {f"charts/{dep.key}/{path}": content for path, content in files.items()}
