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
from kubernetes_asyncio import client, config

from fluxd.devcluster import LocalControlPlane, install_crds

pytest_plugins = ["tests.gitservers"]


async def _api_client(kubeconfig: Path) -> client.ApiClient:
    # A Configuration of its own: load_kube_config without one would change the
    # process-wide default that other clients in the same test might rely on.
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


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
async def api_client(kubeconfig: Path) -> AsyncIterator[client.ApiClient]:
    """A kubernetes_asyncio ApiClient for the session's cluster, closed after the test."""
    async with await _api_client(kubeconfig) as api:
        yield api
