"""Chart archives without the Helm SDK: read a chart's metadata, package a chart directory,
merge values files into a chart as Flux's HelmChart ``valuesFiles`` does.

A chart archive is a gzipped tar with one top directory named after the chart, holding
``Chart.yaml``, ``values.yaml``, ``templates/``... The source side of fluxd only needs
to read ``Chart.yaml``, swap ``values.yaml`` and write the archive again, all of which is
plain tar and YAML: the SDK (tens of MiB) stays out of the daemon until a release needs
it. Archives are written deterministically (sorted entries, zero mtime), so the same
chart gives the same digest and a periodic rebuild makes no new artifact.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["ChartFiles", "InvalidChart", "merge_values_files", "read_archive", "read_directory"]

#: Flux's default ``--helm-chart-file-max-size``: a single file of a chart.
MAX_FILE_BYTES = 5 * 1024 * 1024
VALUES_FILE = "values.yaml"


class InvalidChart(ValueError):
    """The archive or directory is not a chart."""


@dataclass(frozen=True)
class ChartFiles:
    """A chart: its name and version from ``Chart.yaml``, and its files by path relative
    to the chart directory."""

    name: str
    version: str
    metadata: Mapping[str, Any]
    files: Mapping[str, bytes]

    def archive(self) -> bytes:
        """The chart packaged as ``helm package`` lays it out, deterministically."""
        out = io.BytesIO()
        with (
            gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as compressed,
            tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in sorted(self.files):
                content = self.files[path]
                info = tarfile.TarInfo(f"{self.name}/{path}")
                info.size = len(content)
                info.mode = 0o644
                info.mtime = 0
                tar.addfile(info, io.BytesIO(content))
        return out.getvalue()


def read_archive(data: bytes) -> ChartFiles:
    """The chart in a ``.tgz``; :class:`InvalidChart` when it is none."""
    files: dict[str, bytes] = {}
    top: str | None = None
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = posixpath.normpath(member.name)
                head, _, rest = name.partition("/")
                if not rest or name.startswith(("/", "..")):
                    continue
                if top is not None and head != top:
                    raise InvalidChart(
                        f"the archive holds more than one chart directory ('{top}', '{head}')"
                    )
                top = head
                if member.size > MAX_FILE_BYTES:
                    raise InvalidChart(f"'{name}' is larger than {MAX_FILE_BYTES // 2**20} MiB")
                extracted = tar.extractfile(member)
                if extracted is not None:
                    files[rest] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise InvalidChart(f"not a chart archive (gzipped tar): {error}") from error
    return _chart(files)


def read_directory(tree: Mapping[str, bytes], directory: str) -> ChartFiles:
    """The chart at ``directory`` of an artifact's files (``./`` and trailing ``/`` allowed)."""
    prefix = posixpath.normpath(directory.strip("/") or ".")
    if prefix.startswith(".."):
        raise InvalidChart(f"chart path '{directory}' leaves the source")
    prefix = "" if prefix == "." else prefix + "/"
    files = {path[len(prefix) :]: tree[path] for path in tree if path.startswith(prefix)}
    if "Chart.yaml" not in files:
        raise InvalidChart(f"no Chart.yaml at '{directory}' in the source")
    return _chart(files)


def merge_values_files(
    chart: ChartFiles, paths: Sequence[str], *, ignore_missing: bool
) -> tuple[ChartFiles, list[str]]:
    """``chart`` with ``values.yaml`` replaced by the deep merge of ``paths`` (files of the
    chart, later ones win; ``values.yaml`` itself may be listed), and the paths merged.
    A missing file is an :class:`InvalidChart` unless ``ignore_missing``."""
    merged: dict[str, Any] = {}
    used: list[str] = []
    for path in paths:
        clean = posixpath.normpath(path)
        content = chart.files.get(clean)
        if content is None:
            if ignore_missing:
                continue
            raise InvalidChart(f"no values file found at path '{path}'")
        try:
            values = yaml.safe_load(content) or {}
        except yaml.YAMLError as error:
            raise InvalidChart(f"unmarshaling values from '{path}' failed: {error}") from error
        if not isinstance(values, dict):
            raise InvalidChart(f"unmarshaling values from '{path}' failed: not a mapping")
        merged = merge_maps(merged, values)
        used.append(path)
    files = dict(chart.files)
    files[VALUES_FILE] = yaml.safe_dump(merged, sort_keys=True).encode()
    return ChartFiles(chart.name, chart.version, chart.metadata, files), used


def merge_maps(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in ``override`` wins."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_maps(current, value)
        else:
            merged[key] = value
    return merged


def _chart(files: dict[str, bytes]) -> ChartFiles:
    raw = files.get("Chart.yaml")
    if raw is None:
        raise InvalidChart("no Chart.yaml in the chart")
    try:
        metadata = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise InvalidChart(f"Chart.yaml is not valid YAML: {error}") from error
    if not isinstance(metadata, dict):
        raise InvalidChart("Chart.yaml is not a mapping")
    name, version = metadata.get("name"), metadata.get("version")
    if not name:
        raise InvalidChart("Chart.yaml has no name")
    if not version:
        raise InvalidChart(f"Chart.yaml of '{name}' has no version")
    return ChartFiles(str(name), str(version), metadata, files)
