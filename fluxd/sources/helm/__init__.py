"""Helm chart sources: repositories that serve an index, and the charts they list.

- :mod:`~fluxd.sources.helm.index`: a repository's ``index.yaml``, cleaned and searched
  as Flux does (version ranges, newest first);
- :mod:`~fluxd.sources.helm.repository`: fetching the index and charts over HTTP(S)
  with a HelmRepository's credentials and TLS settings;
- :mod:`~fluxd.sources.helm.indexes`: parsed indexes shared by the charts that read them;
- :mod:`~fluxd.sources.helm.package`: reading and repackaging a chart archive (its
  metadata, values files merged in), without the Helm SDK.
- :mod:`~fluxd.sources.helm.oci`: charts in an OCI registry (a HelmRepository of
  ``type: oci``): version selection among tags, credentials, the chart layer;
- :mod:`~fluxd.sources.helm.dependencies`: a chart directory's missing dependencies
  completed as ``helm dependency build`` does;
- :mod:`~fluxd.sources.helm.remotes`: where those come from, the namespace's
  HelmRepositories lending credentials and stored indexes.
"""

from fluxd.sources.helm.index import ChartVersion, InvalidIndex, RepositoryIndex, parse_index
from fluxd.sources.helm.repository import (
    RepositoryAuth,
    RepositoryError,
    download_chart,
    fetch_index,
    repository_auth,
)

__all__ = [
    "ChartVersion",
    "InvalidIndex",
    "RepositoryAuth",
    "RepositoryError",
    "RepositoryIndex",
    "download_chart",
    "fetch_index",
    "parse_index",
    "repository_auth",
]
