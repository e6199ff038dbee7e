"""A Helm repository's ``index.yaml``: parsed, cleaned as Flux cleans it, and searched.

What source-controller does with an index, and so what fluxd does:

- an empty document, or one without ``apiVersion``, is not an index;
- a chart version without a name, or whose version is not semver, is dropped (Helm's
  metadata validation), the rest of the index stays usable;
- each chart's versions are sorted newest first, so the JSON artifact lists them as
  ``helm search`` would;
- a version request matches an exact version string first, then as a Masterminds range;
  an empty request or ``*`` means the newest version that is not a prerelease; versions
  equal but for build metadata go to the one created last.

Timestamps (``created``, ``generated``) are kept as the text the index has: they are only
compared and written back, never interpreted beyond ordering.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import yaml

from fluxd.semver import Constraint, Version

__all__ = ["ChartVersion", "InvalidIndex", "RepositoryIndex", "parse_index"]

#: Helm's limit on an index (``helm.MaxIndexSize``, as Flux enforces it): 50 MiB.
MAX_INDEX_BYTES = 50 * 1024 * 1024


class InvalidIndex(ValueError):
    """The bytes are not a usable chart repository index."""


@dataclass(frozen=True)
class ChartVersion:
    """One version of one chart, as its index entry describes it."""

    name: str
    version: str
    urls: tuple[str, ...]
    digest: str | None
    created: str
    entry: Mapping[str, Any]

    @property
    def semver(self) -> Version:
        return Version.parse(self.version)


class RepositoryIndex:
    """The usable entries of one index, newest version first per chart."""

    def __init__(self, document: Mapping[str, Any], charts: dict[str, list[ChartVersion]]):
        self._document = document
        self.charts = charts

    def find(self, name: str, request: str) -> ChartVersion:
        """The version of chart ``name`` that ``request`` (a version or range) selects;
        LookupError saying what is missing, ValueError for a malformed range."""
        versions = self.charts.get(name)
        if versions is None:
            raise LookupError(f"no chart name found: '{name}' is not in the repository index")
        if not versions:
            raise LookupError(f"no chart version found for '{name}'")
        request = request.strip()
        if request:
            for candidate in versions:
                if candidate.version == request:
                    return candidate
        constraint = Constraint.parse(request if request and request != "*" else "*")
        matching = [v for v in versions if constraint.allows(v.semver)]
        if not matching:
            raise LookupError(f"no '{name}' chart with version matching '{request}' found")
        return max(matching, key=lambda v: (v.semver, v.created))

    def to_json(self) -> bytes:
        """The cleaned index as indented JSON: the artifact Flux stores for a repository."""
        entries = {name: [dict(v.entry) for v in found] for name, found in self.charts.items()}
        document = {**self._document, "entries": entries}
        return json.dumps(document, indent=2, sort_keys=True, default=str).encode()


def parse_index(data: bytes) -> RepositoryIndex:
    """Parse index bytes (YAML or JSON); :class:`InvalidIndex` when they are no index."""
    if not data.strip():
        raise InvalidIndex("the index is empty")
    if len(data) > MAX_INDEX_BYTES:
        raise InvalidIndex(f"the index is larger than {MAX_INDEX_BYTES // 2**20} MiB")
    document = _load(data)
    if not isinstance(document, dict):
        raise InvalidIndex("the index is not a YAML mapping")
    if not document.get("apiVersion"):
        raise InvalidIndex("no API version specified in the index")
    raw_entries = document.get("entries") or {}
    if not isinstance(raw_entries, dict):
        raise InvalidIndex("the index 'entries' is not a mapping of chart names")
    charts: dict[str, list[ChartVersion]] = {}
    for name, raw_versions in raw_entries.items():
        charts[str(name)] = _versions(raw_versions)
    return RepositoryIndex(document, charts)


_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _IndexLoader(_SafeLoader):  # type: ignore[misc]
    """libyaml's safe loader, leaving timestamps as the text the index has."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
    }


def _load(data: bytes) -> Any:
    """JSON (a stored index) with the json module, anything else as YAML through libyaml."""
    if data.lstrip().startswith(b"{"):
        try:
            return json.loads(data)
        except ValueError:
            pass  # YAML flow mappings start with a brace too
    try:
        return yaml.load(data, Loader=_IndexLoader)
    except yaml.YAMLError as error:
        raise InvalidIndex(f"the index is not valid YAML: {error}") from error


def _versions(raw: object) -> list[ChartVersion]:
    found: list[ChartVersion] = []
    for entry in raw if isinstance(raw, Sequence) and not isinstance(raw, str) else ():
        if not isinstance(entry, dict):
            continue
        name, version = entry.get("name"), entry.get("version")
        if not name or version is None:
            continue
        try:
            Version.parse(str(version))
        except ValueError:
            continue
        urls = entry.get("urls") or []
        found.append(
            ChartVersion(
                name=str(name),
                version=str(version),
                urls=tuple(str(u) for u in urls) if isinstance(urls, list) else (),
                digest=str(entry["digest"]) if entry.get("digest") else None,
                created=str(entry.get("created") or ""),
                entry=entry,
            )
        )
    found.sort(key=lambda v: (v.semver, v.created), reverse=True)
    return found
