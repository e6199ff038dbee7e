"""Loaded charts, one per chart archive digest, shared by every release of that chart.

A HelmChart artifact is the packaged chart; the SDK loads it into Go memory. Five hundred
HelmReleases of one chart load it once: a chart stays loaded while any reconcile holds
it (a weak reference), and is freed with its last holder. Its CRD files are read from
the SDK once, when it loads (in the caller's worker thread): every call into the SDK can
wait for the Go runtime, which the event loop must never do.

When it loads, the archive is also read for hooks that Helm runs after its wait for the
release's objects (``post-install``, ``post-upgrade``): a release of a chart without them
can be installed without Helm's waiter and waited for by fluxd, since nothing Helm does
depends on that wait's end (see :mod:`fluxd.helm.storage`). The scan is textual, over
every file of the chart and its subcharts: a ``helm.sh/hook`` annotation whose events are
templated, or spelled out of pieces, counts as such a hook, so in doubt Helm waits.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from fluxd.helm.errors import HelmActionError
from fluxd.helm.sdk import sdk

__all__ = ["LoadedChart", "load_chart", "mentions_late_hooks"]


@dataclass(eq=False)
class LoadedChart:
    """A chart in the SDK, with its ``Chart.yaml``."""

    digest: str
    handle: Any = field(repr=False)
    metadata: dict[str, Any]
    #: The YAML of each file in the chart's (and its subcharts') ``crds/``.
    crds: tuple[str, ...] = field(repr=False)
    #: Whether a template may declare a hook Helm runs after its wait.
    hooks_after_wait: bool = True

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", ""))

    @property
    def app_version(self) -> str:
        return str(self.metadata.get("appVersion", ""))

    @property
    def default_values(self) -> dict[str, Any]:
        """The chart's ``values.yaml``."""
        return dict(self.handle.values)

    async def render(
        self, values: dict[str, Any], *, name: str, namespace: str, upgrade: bool = False
    ) -> dict[str, str]:
        """The chart rendered offline (``lookup`` finds nothing): template path to manifest,
        in a worker thread. Raises :class:`HelmActionError` (action
        ``render``) with Helm's message."""

        def render() -> dict[str, str]:
            try:
                rendered: dict[str, str] = self.handle.render(
                    values,
                    name=name,
                    namespace=namespace,
                    is_install=not upgrade,
                    is_upgrade=upgrade,
                )
            except sdk().HelmError as error:
                raise HelmActionError("render", str(error)) from error
            return rendered

        return await anyio.to_thread.run_sync(render)

    def __del__(self) -> None:
        self.handle.close()


_lock = threading.Lock()
_loaded: weakref.WeakValueDictionary[str, LoadedChart] = weakref.WeakValueDictionary()


def load_chart(archive: bytes, digest: str) -> LoadedChart:
    """The chart in ``archive`` (whose sha256 is ``digest``), loaded once while in use.
    Raises the SDK's ``HelmError`` for an archive that is no chart."""
    with _lock:
        found = _loaded.get(digest)
        if found is not None:
            return found
        handle = sdk().Chart.load_archive(archive)
        crds = tuple(str(crd.get("data") or "") for crd in handle.crds)
        chart = LoadedChart(digest, handle, handle.metadata, crds, _archive_has_late_hooks(archive))
        _loaded[digest] = chart
        return chart


#: Hook events Helm runs after it waits for an install's or an upgrade's objects.
_LATE_HOOKS = frozenset({"post-install", "post-upgrade"})
_HOOK_ANNOTATION = re.compile(rb"""helm\.sh/hook['"]?\s*:\s*([^\n]*)""")


def mentions_late_hooks(text: bytes) -> bool:
    """Whether ``text`` declares a ``helm.sh/hook`` that is, or may be, a post-install or
    post-upgrade hook (templated events count)."""
    for match in _HOOK_ANNOTATION.finditer(text):
        value = match.group(1).decode("utf-8", "replace")
        if "{{" in value:
            return True
        value = value.partition("}")[0].strip().strip("\"',")  # JSON goes on after it
        if not value:
            return True
        events = {event.strip().strip("\"'") for event in value.split(",")}
        if events & _LATE_HOOKS:
            return True
    return False


def _archive_has_late_hooks(archive: bytes) -> bool:
    """:func:`mentions_late_hooks` over every file of a chart archive, subchart archives
    included; an archive that cannot be read counts as having them."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                if member.name.endswith(".tgz"):
                    if _archive_has_late_hooks(data):
                        return True
                elif mentions_late_hooks(data):
                    return True
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError):
        return True
    return False
