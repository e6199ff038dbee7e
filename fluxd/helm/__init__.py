"""Helm releases with the real Helm v4 SDK, in the daemon's process.

- :mod:`~fluxd.helm.sdk`: the SDK, loaded on first use, writing as ``helm-controller``;
- :mod:`~fluxd.helm.charts`: charts loaded once per archive digest;
- :mod:`~fluxd.helm.digest_version`: an OCI chart's version carrying its artifact digest;
- :mod:`~fluxd.helm.values`: a HelmRelease's values from ``valuesFrom`` and ``values``;
- :mod:`~fluxd.helm.manifest`: the objects of a release (inventory, health checks);
- :mod:`~fluxd.helm.releases`: install, upgrade, rollback, uninstall, test, and a
  release's latest record, as the ``helm`` CLI stores them.

Importing this package does not load the SDK.
"""

from fluxd.helm.charts import LoadedChart, load_chart, mentions_late_hooks
from fluxd.helm.digest_version import DigestVersionError, NotAChartError, stamp_digest
from fluxd.helm.errors import HelmActionError
from fluxd.helm.manifest import inventory_entries, release_refs
from fluxd.helm.releases import ActionOptions, Release, Releases, TestHook
from fluxd.helm.storage import record_failed_wait
from fluxd.helm.values import (
    ValuesError,
    merge_document,
    release_values,
    set_path,
    values_digest,
)

__all__ = [
    "ActionOptions",
    "DigestVersionError",
    "HelmActionError",
    "LoadedChart",
    "NotAChartError",
    "Release",
    "Releases",
    "TestHook",
    "ValuesError",
    "inventory_entries",
    "load_chart",
    "mentions_late_hooks",
    "merge_document",
    "record_failed_wait",
    "release_refs",
    "release_values",
    "set_path",
    "stamp_digest",
    "values_digest",
]
