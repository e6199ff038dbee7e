"""Session-wide Kubernetes for the integration tests.

One real control plane per test session (see ``fluxd.devcluster``), or an existing
cluster when ``FLUXD_TEST_KUBECONFIG`` names its kubeconfig (kind, k3d, ...). Either way
fluxd's CRDs from ``manifests/crds/`` are installed and ``Established`` before the first
test gets the kubeconfig, so tests never race CRD registration.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.devcluster import LocalControlPlane, install_crds
from fluxd.kube.client import connect

pytest_plugins = ["tests.gitservers"]


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    """Kubeconfig of the session's cluster, with fluxd's CRDs installed."""
    existing = os.environ.get("FLUXD_TEST_KUBECONFIG")
    if existing:
        path = Path(existing).expanduser()
        install_crds(path)
        yield path
        return
    with LocalControlPlane() as control_plane:
        install_crds(control_plane.kubeconfig)
        yield control_plane.kubeconfig


@pytest.fixture
async def api_client(kubeconfig: Path) -> AsyncIterator[ApiClient]:
    """An API client (fluxd's own connection code) for the session's cluster."""
    api = await connect(str(kubeconfig))
    try:
        yield api
    finally:
        await api.close()
