"""Marks a release failed in Helm's own storage, as Helm does when its wait fails.

fluxd runs installs and upgrades without Helm's waiter when it can wait better itself
(:mod:`fluxd.apply.health_watch`); Helm then stores the new revision as ``deployed`` (and
an upgrade's previous one as ``superseded``) before anything is ready. When fluxd's wait
fails, this module rewrites those records as Helm's own failed wait leaves them: the new
revision ``failed`` with Helm's description (``Release "x" failed: ...`` after an
install, ``Upgrade "x" failed: ...`` after an upgrade), and the revision the upgrade
replaced ``deployed`` again. ``helm history``, ``helm rollback`` and the next reconcile
then see what they would have seen with Helm's waiter.

Records are Helm's Secret driver's: Secret ``sh.helm.release.v1.<name>.v<revision>`` in
the storage namespace, type ``helm.sh/release.v1``, the release as gzipped JSON in base64
under ``release``, its status repeated in the ``status`` label and the time of the change
in ``modifiedAt``. Writes are conditional on the version read, and go out as the
HelmRelease's identity, as Helm's own storage writes do.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any

from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.resources import SECRETS

__all__ = ["record_failed_wait"]


def _secret_name(name: str, revision: int) -> str:
    return f"sh.helm.release.v1.{name}.v{revision}"


def _decode(secret: dict[str, Any]) -> dict[str, Any]:
    stored = base64.b64decode((secret.get("data") or {}).get("release") or "")
    document: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(stored)))
    return document


def _encode(release: dict[str, Any]) -> str:
    packed = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return base64.b64encode(packed).decode()


async def _set_status(
    api: ApiClient, namespace: str, name: str, revision: int, status: str, description: str
) -> None:
    secret = await client.get(api, SECRETS, namespace, _secret_name(name, revision))
    release = _decode(secret)
    info = release.setdefault("info", {})
    info["status"] = status
    if description:
        info["description"] = description
    labels = secret.setdefault("metadata", {}).setdefault("labels", {})
    labels["status"] = status
    labels["modifiedAt"] = str(int(time.time()))
    secret["data"] = {**(secret.get("data") or {}), "release": _encode(release)}
    await client.replace(api, SECRETS, secret)


async def record_failed_wait(
    api: ApiClient,
    *,
    namespace: str,
    name: str,
    action: str,
    revision: int,
    error: str,
    replaced: int | None = None,
) -> None:
    """Store revision ``revision`` of release ``name`` as failed by ``action`` (install
    or upgrade) with ``error``, and the ``replaced`` revision as deployed again."""
    what = "Release" if action == "install" else "Upgrade"
    await _set_status(api, namespace, name, revision, "failed", f'{what} "{name}" failed: {error}')
    if replaced is not None:
        await _set_status(api, namespace, name, replaced, "deployed", "")
